"""Baselines on the RKD-SC stage-1 student: ``kd-analog`` (analog embedding) and ``digital-features`` (bits + LDPC).

One RKD-SC link is trained at toy size once for the module; every baseline then loads its artifacts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import scenario_dict

import links.baselines.features as features
import links.rkdsc.pipeline as pipeline
import links.teacher_stage as teacher_stage
from links.baselines.digital_features import DigitalFeaturesLink, ldpc_blocks
from links.baselines.features import embed
from links.baselines.kd_analog import KDAnalogLink
from links.rkdsc.link import RKDSCLink
from simulator.core.errors import UserError
from simulator.core.link import LinkContext
from simulator.data.source import DigitsSource

#: toy training settings that still give a student well above chance (about 0.8 on digits)
TRAINING = {
    "teacher": {"type": "vit", "dim": 16, "depth": 1, "heads": 2, "patch_size": 4, "epochs": 5, "batch_size": 64,
                "lr": 5e-3, "warmup_epochs": 1},
    "search": {"cells": 1, "nodes": 2, "channels": 8, "epochs": 1, "batch_size": 128},
    "stage1": {"epochs": 8, "batch_size": 32, "lr": 1e-2, "kl_weight": 1.0, "augment": None},
}
RKDSC_ONLY = {
    "stage2": {"epochs": 1, "batch_size": 128, "channels": ["awgn"]},
    "cat": {"tokens": 2, "width": 8, "depth": 1, "heads": 1, "max_symbols": 8, "budgets": [4, 8]},
}
SEED = 7
TEST_IMAGES = 360  # the digits test split
EMBED_DIM = TRAINING["teacher"]["dim"]


def context() -> LinkContext:
    return LinkContext(data=DigitsSource(seed=SEED), seed=SEED)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache holding the artifacts of an ``rkdsc`` link trained with :data:`TRAINING` (built first)."""
    root = tmp_path_factory.mktemp("feature-links") / "cache"
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEMSIM_CACHE_DIR", str(root))
        # toy models are dominated by threading overhead: one thread is many times faster on shared cores
        torch.set_num_threads(1)
        try:
            RKDSCLink(RKDSCLink.Params(**TRAINING, **RKDSC_ONLY, symbols=4), context())
            yield root
        finally:
            torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def kd_links(cache):
    return {symbols: KDAnalogLink(KDAnalogLink.Params(**TRAINING, symbols=symbols), context())
            for symbols in (4, 10)}


@pytest.fixture(scope="module")
def features_link(cache):
    return DigitalFeaturesLink(DigitalFeaturesLink.Params(**TRAINING), context())


def test_baselines_reuse_the_rkdsc_artifacts_and_train_nothing(cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a cached stage was retrained")

    monkeypatch.setattr(teacher_stage, "_train", refuse)
    for stage in ("_search", "_stage1", "_stage2"):
        monkeypatch.setattr(pipeline, stage, refuse)
    before = sorted(p.name for p in cache.iterdir())
    assert sorted(name.split("-")[0] for name in before) == ["search", "stage2", "student", "teacher"]
    kd = KDAnalogLink(KDAnalogLink.Params(**TRAINING, symbols=4), context())
    digital = DigitalFeaturesLink(DigitalFeaturesLink.Params(**TRAINING), context())
    assert sorted(p.name for p in cache.iterdir()) == before
    for link in (kd, digital):
        facts = link.describe()
        assert facts["student_clean_test_accuracy"] > 0.5  # the toy student is far above chance (0.1)
        assert facts["tx_parameters"] > facts["student_parameters"] > 0
        assert facts["rx_macs"] >= 10 * EMBED_DIM  # at least the head
        assert facts["channel_uses"] == link.params.symbols


def test_kd_analog_symbols_have_unit_energy_per_example(kd_links):
    generator = torch.Generator().manual_seed(0)
    for symbols, link in kd_links.items():
        batch = link.sample(0, 50, generator)
        x = link.encode(batch)["symbols"]
        assert x.dtype == torch.complex64 and x.shape == (50, symbols)
        torch.testing.assert_close(x.abs().pow(2).mean(dim=1), torch.ones(50), atol=1e-5, rtol=0)
    assert kd_links[4].pca.components == 8 and kd_links[10].pca is None  # PCA branch, padding branch
    assert not KDAnalogLink.snr_adaptive


def noiseless_reference(link: KDAnalogLink, symbols: int) -> tuple[float, float]:
    """Accuracy over the test split of the projection computed here: plain (``head(P P^T (e - mu) + mu)``) and
    with the receiver's scaling (each example's reals rescaled to the training-split mean norm)."""
    data, f = link.data, link.features
    train = embed(f.student, data.split("train").images)
    test = embed(f.student, data.split("test").images)
    labels = data.split("test").labels
    mean = train.double().mean(dim=0)
    if 2 * symbols < EMBED_DIM:
        basis = torch.linalg.svd(train.double() - mean, full_matrices=False).Vh[: 2 * symbols].T
    else:
        basis = torch.eye(EMBED_DIM, dtype=torch.float64)
    reals = (test.double() - mean) @ basis
    scale = ((train.double() - mean) @ basis).norm(dim=1).mean()
    scaled = reals / reals.norm(dim=1, keepdim=True) * scale

    def accuracy(r):
        logits = f.head((r @ basis.T + mean).float())
        return float((logits.argmax(dim=1) == labels).float().mean())

    return accuracy(reals), accuracy(scaled)


def test_kd_analog_reaches_the_noiseless_projection_at_high_snr_and_falls_at_low_snr(kd_links, run_dict):
    scenario = scenario_dict(
        data={"type": "digits"}, seed=SEED,
        links=[{"name": f"kd{s}", "type": "kd-analog", "symbols": s, **TRAINING} for s in kd_links],
        channels=[{"type": "awgn"}], snr_db=[-10.0, 60.0], metrics=["accuracy"],
        monte_carlo={"batch_size": TEST_IMAGES, "max_samples": TEST_IMAGES, "target_errors": 0},
    )
    table = run_dict(scenario).table
    for symbols, link in kd_links.items():
        rows = table[table.link == f"kd{symbols}"].set_index("snr_db")
        plain, scaled = noiseless_reference(link, symbols)
        high, low = rows.value[60.0], rows.value[-10.0]
        assert abs(high - scaled) <= 2 / TEST_IMAGES  # the same chain without noise, up to float rounding
        assert abs(high - plain) <= 0.05  # the norm rescaling costs little
        assert low < high - 0.2
        assert (rows.channel_uses == symbols).all()


def quantised_reference(link: DigitalFeaturesLink) -> int:
    """Correct test predictions of quantise -> dequantise -> head with the link's (components, bits), computed
    here."""
    data, f, pca = link.data, link.features, link.pca
    bits = link.quantiser.bits
    train = pca.project(embed(f.student, data.split("train").images)).numpy()
    test = pca.project(embed(f.student, data.split("test").images)).numpy()
    low, high = np.percentile(train, [0.5, 99.5], axis=0)
    step = (high - low) / 2**bits
    index = np.clip(np.floor((test - low) / step), 0, 2**bits - 1)
    values = torch.from_numpy((low + (index + 0.5) * step).astype(np.float32))
    logits = f.head(pca.restore(values))
    return int((logits.argmax(dim=1) == data.split("test").labels).sum())


def test_digital_features_fit_the_bit_budget(features_link):
    link = features_link
    budget = 64 * 4 // 2
    assert link.info_bits == budget and link.channel_uses == 64
    assert link.feature_bits <= link.info_bits
    components, bits = link.pca.components, link.quantiser.bits
    assert components == min(EMBED_DIM, budget // bits)
    for symbols, m, rate in ((64, 4, 0.5), (100, 2, 0.33), (4096, 8, 0.9), (4096, 10, 0.92), (30, 6, 0.2),
                             (1000, 1, 0.75)):
        blocks, code = ldpc_blocks(symbols, m, rate)
        assert blocks * code.n == symbols * m
        assert blocks * code.k <= math.floor(symbols * m * rate + 1e-9)
        assert 12 <= code.k <= 8448


def test_digital_features_against_quantised_reference_and_the_digital_link(features_link, run_dict, tmp_path):
    link = {"name": "features", "type": "digital-features", **TRAINING}
    budget = {"batch_size": TEST_IMAGES, "max_samples": TEST_IMAGES, "target_errors": 0}
    table = run_dict(scenario_dict(data={"type": "digits"}, seed=SEED, links=[link], channels=[{"type": "awgn"}],
                                   snr_db=[-10.0, 40.0], monte_carlo=budget), tmp_path / "extremes").table
    value = table.set_index(["metric", "snr_db"]).value
    correct = table.set_index(["metric", "snr_db"])["count"]
    assert correct["accuracy", 40.0] == quantised_reference(features_link)  # every test image once
    assert value["ber", 40.0] == 0 and value["bler", 40.0] == 0
    assert value["bler", -10.0] == 1
    assert value["accuracy", -10.0] < value["accuracy", 40.0] - 0.2
    assert (table.channel_uses == 64).all()
    assert table.ebno_db.sub(table.snr_db).round(6).eq(round(-10 * math.log10(2), 6)).all()

    # the same code and QAM order as the digital reference link: the same block error rate at a mid SNR
    mid = 7.0
    digital = {"name": "digital", "type": "digital", "bits_per_symbol": 4, "ldpc": {"k": 128, "n": 256}}
    table = run_dict(scenario_dict(data={"type": "digits"}, seed=SEED, links=[link, digital],
                                   channels=[{"type": "awgn"}], snr_db=[mid], metrics=["bler"], monte_carlo=budget),
                     tmp_path / "mid").table
    p1, p2 = table.set_index("link").value[["features", "digital"]]
    assert 0.05 < p2 < 0.95  # a mid SNR: the comparison has power
    pooled = (p1 + p2) / 2
    assert abs(p1 - p2) <= 3.5 * math.sqrt(pooled * (1 - pooled) * 2 / TEST_IMAGES)


@pytest.mark.parametrize(("fields", "message"), [
    ({"symbols": 2, "bits_per_symbol": 2}, "cannot be coded by 5G LDPC"),
    ({"symbols": 4093, "bits_per_symbol": 10, "code_rate": 0.9}, "cannot be coded by 5G LDPC"),
])
def test_bad_bit_budgets_are_one_line_user_errors(fields, message, monkeypatch):
    monkeypatch.setattr(features, "prepare_teacher", lambda *a, **k: pytest.fail("trained before checking"))
    with pytest.raises(UserError) as error:
        DigitalFeaturesLink(DigitalFeaturesLink.Params(**fields), context())
    text = str(error.value)
    assert message in text and "\n" not in text and "symbols" in text


def test_out_of_range_fields_are_rejected():
    with pytest.raises(ValueError, match="code_rate"):
        DigitalFeaturesLink.Params(code_rate=0.1)
    with pytest.raises(ValueError, match="symbols"):
        KDAnalogLink.Params(symbols=0)
