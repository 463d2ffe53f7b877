"""The ``separate`` link (image codec + CRC + 5G LDPC + QAM, classifier at the receiver) and its source codecs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import scenario_dict

import links.teacher_stage as teacher_stage
from links.baselines.separate import SeparateLink, plan_code
from links.baselines.source_codec import QUALITY_BITS, RawCodec, make_codec
from links.params import TeacherParams
from simulator.channels.awgn import AWGNChannel
from simulator.core.errors import UserError
from simulator.core.link import LinkContext
from simulator.core.seeding import seeded
from simulator.data.source import DigitsSource

#: a tiny teacher that still learns the digits (about 66 % test accuracy) in a few seconds
TEACHER = {"type": "vit", "dim": 16, "depth": 1, "heads": 2, "epochs": 8, "batch_size": 64, "lr": 3e-3,
           "warmup_epochs": 0}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One artifact cache for this file (the teacher trains once), never the user's."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("separate") / "cache"
        patch.setenv("SEMSIM_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tensors here are tiny: one thread is as fast as two, and two threads crawl on a busy machine (the teacher
    trained in 4 s with one thread, 43 s with two, while other jobs ran)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return DigitsSource()


def build(digits, **params) -> SeparateLink:
    return SeparateLink(SeparateLink.Params(**{"teacher": TEACHER, **params}), LinkContext(data=digits))


def reference_teacher(digits):
    """The classifier loaded by the RKD-SC pipeline's own call, independently of the link."""
    return teacher_stage.prepare_teacher(TeacherParams(**TEACHER), digits, digits.key_config(), 0).teacher


def transmit(link: SeparateLink, count: int, snr_db: float):
    batch = link.sample(0, count, torch.Generator())
    symbols = link.encode(batch)["symbols"]
    snr = torch.full((count,), snr_db)
    with seeded(11):
        received = AWGNChannel()(symbols, snr)
    return batch, link.receive(received, snr)


def smooth_rgb(size: int = 32) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack([x, y, (torch.sin(6 * x) * torch.cos(5 * y) + 1) / 2])


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float((a - b).square().mean()))


def padded(bits: np.ndarray, size: int) -> np.ndarray:
    frame = np.zeros(size, dtype=np.uint8)
    frame[: len(bits)] = bits
    return frame


# ------------------------------------------------------------------------------------------------ source codecs


def test_raw_codec_at_full_depth_is_lossless_up_to_quantisation(digits):
    images = digits.split("test").images[:20]
    codec = RawCodec()
    assert codec.scales((1, 8, 8)) == [1, 2, 4, 8]  # 8x8 .. 1x1: a 2-bit header
    header = 2
    frames, depth, used = codec.encode_batch(images, header + 64 * 8)
    assert (depth == 8).all() and (used == header + 64 * 8).all()
    decoded, ok = codec.decode_batch(frames, (1, 8, 8))
    assert ok.all() and float((decoded - images).abs().max()) <= 0.5 / 255 + 1e-6


def test_raw_codec_picks_the_deepest_quantisation_that_fits_at_each_scale_and_never_overflows(digits):
    images = digits.split("test").images[:50]
    codec = RawCodec()
    for budget in (5, 40, 112, 300):
        frames, depth, used = codec.encode_batch(images, budget)
        assert (used <= budget).all()
        for i in range(len(images)):
            code = codec.encode(images[i], budget)
            h = 8 // code.scale
            assert len(code.bits) == 2 + h * h * code.quality <= budget
            assert code.quality == 8 or 2 + h * h * (code.quality + 1) > budget  # one more bit would not fit
        decoded, ok = codec.decode_batch(frames, (1, 8, 8))
        per_image = [codec.decode(frames[i], (1, 8, 8)) for i in range(3)]
        assert ok.all() and all(torch.equal(decoded[i], per_image[i]) for i in range(3))


@pytest.mark.parametrize("name", ["jpeg", "webp"])
def test_pillow_codecs_fit_the_budget_with_the_best_quality_and_psnr_rises_with_it(name):
    image, codec = smooth_rgb(), make_codec(name)
    previous = -math.inf
    for budget in (512, 1024, 2048):
        code = codec.encode(image, budget)
        assert len(code.bits) <= budget
        scale_bits, length_bits = codec._header_bits(budget)
        room = (budget - scale_bits - QUALITY_BITS - length_bits) // 8
        assert len(code.bits) == scale_bits + QUALITY_BITS + length_bits + 8 * len(
            codec._stream(image, code.scale, code.quality))
        if code.quality < 100:  # the next quality does not fit: the search found the largest
            assert len(codec._stream(image, code.scale, code.quality + 1)) > room
        decoded = codec.decode(padded(code.bits, budget), (3, 32, 32))
        assert decoded.shape == (3, 32, 32)
        quality = psnr(decoded, image)
        assert quality > previous + 1.0
        previous = quality
    assert previous > 30.0  # a faithful image at 2,048 bits: the abbreviated stream decodes to the real one


@pytest.mark.parametrize("name", ["jpeg", "webp"])
def test_streams_pillow_rejects_or_nonsense_headers_decode_to_none(name):
    image, codec = smooth_rgb(), make_codec(name)
    code = codec.encode(image, 1024)
    scale_bits, length_bits = codec._header_bits(1024)
    body = scale_bits + QUALITY_BITS + length_bits  # where the stream starts
    assert codec.decode(padded(code.bits, 1024), (3, 32, 32)) is not None
    assert codec.decode(np.zeros(1024, dtype=np.uint8), (3, 32, 32)) is None  # length 0
    assert codec.decode(np.ones(1024, dtype=np.uint8), (3, 32, 32)) is None  # quality 128, length past the end
    corrupt = padded(code.bits, 1024)
    if name == "jpeg":  # libjpeg conceals most damage (hence the link's CRC), but not a new image inside the scan
        corrupt[body : body + 16] = np.unpackbits(np.frombuffer(b"\xff\xd8", dtype=np.uint8))
    else:  # a truncated VP8 frame: the same stream announced 8 bytes shorter
        length = int("".join(map(str, corrupt[scale_bits + QUALITY_BITS : body])), 2)
        corrupt[scale_bits + QUALITY_BITS : body] = [int(b) for b in format(length - 8, f"0{length_bits}b")]
    assert codec.decode(corrupt, (3, 32, 32)) is None
    assert codec.encode(image, 40) is None  # not even quality 1 of a 4x4 thumbnail fits 40 bits


# -------------------------------------------------------------------------------------------------------- link


def test_code_plan_fills_the_budget_with_supported_5g_codewords():
    assert plan_code(64, 4, 0.5, None) == (1, 256, 128)
    assert plan_code(20_000, 4, 0.5, None) == (5, 16_000, 8_000)  # k <= 8448 needs five codewords
    assert plan_code(64, 4, 0.5, 2) == (2, 128, 64)
    with pytest.raises(UserError, match=r"symbols \(4\) is too small .* use symbols >= 6$"):
        plan_code(4, 4, 0.5, None)


def test_too_small_a_budget_is_a_one_line_error_naming_symbols(cache, digits):
    with pytest.raises(UserError) as raised:
        build(digits, symbols=8, bits_per_symbol=4, crc="CRC24A")
    message = str(raised.value)
    assert "\n" not in message and message.startswith("symbols (8) is too small")
    least = int(message.rsplit(">= ", 1)[1].split()[0])
    build(digits, symbols=least, bits_per_symbol=4, crc="CRC24A")  # the advertised minimum works
    with pytest.raises(UserError, match="symbols"):
        build(digits, symbols=least - 1, bits_per_symbol=4, crc="CRC24A")
    build(digits, symbols=16)  # 16 payload bits hold raw pixels but not a JPEG header
    with pytest.raises(UserError, match=r"symbols \(16\) is too small for codec jpeg"):
        build(digits, symbols=16, codec="jpeg")


def test_above_the_cliff_every_image_decodes_and_is_classified_like_the_local_reconstruction(cache, digits):
    link = build(digits)
    batch, estimate = transmit(link, 60, 40.0)
    tallies = {name: tally.totals() for name, tally in link.score(batch, estimate).items()}
    assert tallies["bler"] == (0, 60) and tallies["ber"] == (0, 60 * 128) and not estimate["lost"].any()

    codec = make_codec("raw")  # the reference: the codec's own round trip, then the separately loaded teacher
    frames, _, used = codec.encode_batch(batch["images"], 128 - 16)
    assert (used <= 128 - 16).all()
    images, ok = codec.decode_batch(frames, (1, 8, 8))
    reference = reference_teacher(digits)(images)[1].argmax(dim=1)
    assert ok.all() and torch.equal(estimate["prediction"], reference)
    correct = int((reference == batch["labels"]).sum())
    assert tallies["accuracy"] == (correct, 60) and correct > 12  # well above chance (6 of 60)


def test_below_the_cliff_every_image_is_lost_and_scored_by_the_failure_policy(cache, digits):
    error, blank = build(digits), build(digits, on_failure="blank", codewords=2)  # two codewords of n = 128
    batch, estimate = transmit(error, 60, -10.0)
    tallies = {name: tally.totals() for name, tally in error.score(batch, estimate).items()}
    assert tallies["bler"] == (60, 60) and estimate["lost"].all() and tallies["accuracy"] == (0, 60)

    batch, estimate = transmit(blank, 60, -10.0)
    assert estimate["lost"].all()
    reference = reference_teacher(digits)(torch.zeros(60, 1, 8, 8))[1].argmax(dim=1)
    assert torch.equal(estimate["prediction"], reference)
    correct = int((reference == batch["labels"]).sum())
    tallies = {name: tally.totals() for name, tally in blank.score(batch, estimate).items()}
    assert tallies["accuracy"] == (correct, 60) and tallies["bler"] == (120, 120)


def test_codeword_errors_match_the_digital_link_with_the_same_code_at_the_cliff(cache, run_dict):
    scenario = scenario_dict(
        data={"type": "digits"},
        links=[{"name": "separate", "type": "separate", "teacher": TEACHER},
               {"name": "digital", "type": "digital", "bits_per_symbol": 4, "ldpc": {"k": 128, "n": 256}}],
        snr_db=[6.0], metrics=["bler"],
        monte_carlo={"batch_size": 200, "max_samples": 200, "target_errors": 0},
    )
    outcome = run_dict(scenario)
    rows = outcome.table.set_index("link")
    (a, n), (b, m) = ((int(rows.loc[x, "count"]), int(rows.loc[x, "trials"])) for x in ("separate", "digital"))
    assert n == m == 200 and 0.15 < b / m < 0.85  # 6 dB is on the waterfall of this rate-1/2 16-QAM code
    pooled = (a + b) / (n + m)
    z = (a / n - b / m) / math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    assert abs(z) < 3.5  # two-proportion test: same BLER
    facts = json.loads((outcome.output_dir / "links.json").read_text())["separate"]
    assert facts["channel_uses"] == 64 and facts["payload_bits"] == 112 and facts["code_rate"] == 0.5
    assert facts["tx_parameters"] == 0 and facts["rx_parameters"] > 0
    assert 0.2 < facts["error_free_accuracy"] <= 1.0 and facts["unfit_fraction"] == 0.0


def test_the_classifier_is_rkdsc_teacher_artifact_and_is_not_retrained(cache, digits, monkeypatch):
    build(digits)

    def refuse(*args, **kwargs):
        raise AssertionError("the cached teacher was retrained")

    monkeypatch.setattr(teacher_stage, "_train", refuse)
    link = build(digits, symbols=128, codec="raw", on_failure="mean")
    teachers = list(cache.glob("teacher-*"))
    assert len(teachers) == 1 and link.describe()["classifier_clean_test_accuracy"] == json.loads(
        (teachers[0] / "meta.json").read_text())["metrics"]["test_accuracy"]
