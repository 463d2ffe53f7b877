"""The SNR-adaptive deep JSCC classifier (ADJSCC-style) and the deep JSCC reconstruction baseline, at toy size."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import scenario_dict

from links.baselines.deepjscc import DeepJSCCLink
from links.baselines.jscc_reconstruction import DeepJSCCReconstructionLink
from links.baselines.params import DeepJSCCParams
from simulator.core.link import LinkContext
from simulator.core.metrics import psnr_db
from simulator.data.source import DigitsSource

TINY = {"symbols": 8, "width": 8, "epochs": 8, "batch_size": 128, "lr": 0.01}
TEACHER = {"type": "vit", "dim": 16, "depth": 1, "heads": 2, "patch_size": 4, "epochs": 4, "batch_size": 64,
           "lr": 5e-3}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEMSIM_CACHE_DIR", str(path))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # toy models: one thread is several times faster on a loaded 2-core machine
        yield path
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def recon(cache):
    return DeepJSCCReconstructionLink(DeepJSCCReconstructionLink.Params(**TINY, teacher=TEACHER),
                                      LinkContext(data=DigitsSource()))


def test_snr_adaptive_classifier_conditions_both_ends_on_the_snr(cache):
    link = DeepJSCCLink(DeepJSCCParams(**TINY, snr_adaptive=True, train_snr_range=(-5.0, 15.0)),
                        LinkContext(data=DigitsSource()))
    assert link.snr_adaptive
    images = DigitsSource().split("test").images[:4]
    encoded = link.encode({"images": images})
    low = link.adapt_to_snr(encoded, torch.full((4,), -5.0))
    high = link.adapt_to_snr(encoded, torch.full((4,), 15.0))
    assert low.shape == (4, 8) and not torch.allclose(low, high)
    assert torch.allclose(low.abs().pow(2).mean(dim=1), torch.ones(4), atol=1e-5)
    facts = link.describe()
    assert facts["snr_adaptive"] and facts["train_snr_range"] == [-5.0, 15.0] and facts["train_snr_db"] is None
    assert {"val_accuracy_-5dB", "val_accuracy_5dB", "val_accuracy_15dB"} <= set(facts)


@pytest.mark.parametrize(("fields", "message"), [
    ({"train_snr_range": [0, 10]}, "train_snr_range applies only with snr_adaptive: true"),
    ({"snr_adaptive": True, "train_snr_db": 5}, "train_snr_db does not apply with snr_adaptive: true"),
    ({"snr_adaptive": True, "train_snr_range": [10, 0]}, "train_snr_range must be [low, high]"),
    ({"snr_adaptive": True, "encoder": "teacher"}, "snr_adaptive applies only to encoder: conv"),
])
def test_snr_adaptive_settings_are_checked(fields, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        DeepJSCCParams(**fields)


def test_reconstruction_learns_images_and_scores_psnr_ssim_and_accuracy(recon):
    test = DigitsSource().split("test")
    batch = {"images": test.images[:120], "labels": test.labels[:120]}
    symbols = recon.encode(batch)["symbols"]
    from simulator.core.channel import ChannelOutput

    clean = ChannelOutput(symbols=symbols, no_eff=torch.zeros(120, 8))
    estimate = recon.receive(clean, torch.full((120,), 40.0))
    assert estimate["images"].shape == (120, 1, 8, 8)
    assert ((estimate["images"] >= 0) & (estimate["images"] <= 1)).all()
    # the trained decoder beats the best constant guess (the mean image): PSNR is computed from per-image MSE
    mean_image = DigitsSource().split("train").images.mean(dim=0, keepdim=True).expand(120, -1, -1, -1)
    assert psnr_db(estimate["images"], batch["images"]).mean() > psnr_db(mean_image, batch["images"]).mean() + 1
    scores = recon.score(batch, estimate)
    assert set(scores) == {"psnr", "ssim", "accuracy"}
    assert scores["ssim"].values.shape == (120,) and (scores["ssim"].values <= 1 + 1e-6).all()


def test_reconstruction_sweep_writes_mean_metrics_with_intervals(recon, cache, run_dict, tmp_path):
    data = scenario_dict(data={"type": "digits"},
                         links=[{"name": "recon", "type": "deepjscc-recon", **TINY, "teacher": TEACHER}],
                         snr_db=[-10.0, 20.0], monte_carlo={"batch_size": 120, "max_samples": 240, "target_errors": 0})
    table = run_dict(data).table
    psnr = table[table.metric == "psnr"].set_index("snr_db")
    assert psnr.loc[20.0].value > psnr.loc[-10.0].value  # less noise, sharper images
    assert (psnr.ci_low < psnr.value).all() and (psnr.value < psnr.ci_high).all()
    assert set(table.metric) == {"psnr", "ssim", "accuracy"}
    facts = json.loads((tmp_path / "out" / "links.json").read_text())["recon"]
    assert facts["rx_parameters"] > facts["tx_parameters"] > 0  # the receiver holds the classifier
    assert (tmp_path / "out" / "psnr.png").is_file()
