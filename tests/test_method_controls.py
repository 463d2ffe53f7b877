"""The CNN teacher, augmentation, and the settings the ablation study is made of: random genotypes, scratch
students, and the CAT variants (no SNR input, no per-symbol no_eff, MLP-Mixer backbone)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import scenario_dict
from test_rkdsc import TINY

from links.augment import augment
from links.params import AugmentParams, TeacherParams
from links.rkdsc import darts
from links.rkdsc.cat import CATDecoder, CATEncoder
from links.rkdsc.params import CATParams, SearchParams, Stage1Params
from links.teacher import CNNTeacher, build_teacher


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ------------------------------------------------------------------------------------------------- the teacher


def test_cnn_teacher_is_the_default_and_its_outputs_are_per_example():
    params = TeacherParams()
    assert params.type == "cnn" and params.augment is not None
    torch.manual_seed(0)
    teacher = build_teacher(params, 1, 8, 10).eval()
    assert isinstance(teacher, CNNTeacher)
    images = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        embedding, logits = teacher(images)
        alone = teacher(images[3:4])[0]
        other_mates = teacher(torch.cat([images[3:4], torch.ones(4, 1, 8, 8)]))[0][:1]
    assert embedding.shape == (5, params.dim) and logits.shape == (5, 10)
    assert torch.allclose(embedding[3:4], alone, atol=1e-5) and torch.allclose(other_mates, alone, atol=1e-5)


def test_cnn_teacher_works_on_larger_colour_images():
    teacher = build_teacher(TeacherParams(width=8, dim=16), 3, 32, 100).eval()
    with torch.no_grad():
        embedding, logits = teacher(torch.rand(2, 3, 32, 32))
    assert embedding.shape == (2, 16) and logits.shape == (2, 100)


def test_teacher_types_keep_their_own_defaults_and_reject_foreign_fields():
    vit = TeacherParams(type="vit")
    assert (vit.batch_size, vit.lr, vit.augment) == (32, 1e-3, None)
    assert TeacherParams(type="vit", batch_size=8).batch_size == 8
    with pytest.raises(ValueError, match="width do not apply to teacher type vit"):
        TeacherParams(type="vit", width=16)
    with pytest.raises(ValueError, match="depth, heads do not apply to teacher type cnn"):
        TeacherParams(depth=2, heads=2)
    with pytest.raises(ValueError, match="augment do not apply to teacher type clip"):
        TeacherParams(type="clip", augment={"rotate_deg": 5})
    assert TeacherParams(type="clip").augmentation is None


# ----------------------------------------------------------------------------------------------- augmentation


def test_augmentation_without_ranges_is_the_identity():
    images = torch.rand(4, 1, 8, 8)
    still = augment(images, AugmentParams(rotate_deg=0, scale=0, shift=0), torch.Generator().manual_seed(0))
    assert torch.allclose(still, images, atol=1e-5)


def test_augmentation_is_seeded_and_shifts_content_by_at_most_the_range():
    images = torch.zeros(64, 1, 8, 8)
    images[:, :, 3:5, 3:5] = 1.0  # a blob at the centre: its centre of mass is (3.5, 3.5)
    params = AugmentParams(rotate_deg=0, scale=0, shift=1.0)
    first = augment(images, params, torch.Generator().manual_seed(1))
    assert torch.equal(first, augment(images, params, torch.Generator().manual_seed(1)))
    assert not torch.equal(first, augment(images, params, torch.Generator().manual_seed(2)))
    grid = torch.arange(8, dtype=torch.float32)
    mass = first.sum(dim=(1, 2, 3))
    centre_y = (first.sum(dim=(1, 3)) * grid).sum(dim=1) / mass
    centre_x = (first.sum(dim=(1, 2)) * grid).sum(dim=1) / mass
    moved = torch.stack([centre_y - 3.5, centre_x - 3.5], dim=1)
    assert moved.abs().max() <= 1.0 + 1e-4 and moved.abs().max() > 0.5  # the range is used, never exceeded
    assert torch.allclose(mass, torch.full((64,), 4.0), atol=1e-3)  # bilinear shifts inside the image keep mass


# ------------------------------------------------------------------------------------------------- the search


def test_random_genotypes_are_seeded_members_of_the_search_space():
    config = darts.SearchParams(cells=3, nodes=3, channels=8, edges_per_node=2)
    draws = [darts.random_genotype(config, 8, torch.Generator().manual_seed(s)) for s in range(6)]
    again = darts.random_genotype(config, 8, torch.Generator().manual_seed(0))
    assert again == draws[0] and len(set(draws)) > 1
    for genotype in draws:
        assert genotype.reductions == darts.reduction_cells(3, 8) and genotype.channels == 8
        for cell in genotype.cells:
            for node, choices in enumerate(cell):
                inputs = [state for _, state in choices]
                assert len(set(inputs)) == len(inputs) == min(2, node + 1)
                assert all(op in darts.CANDIDATE_OPS[1:] for op, _ in choices)
        out = darts.build_student(genotype, 1, 16)(torch.rand(2, 1, 8, 8))
        assert out.shape == (2, 16)


def test_control_settings_are_validated():
    assert SearchParams(mode="random").mode == "random"
    with pytest.raises(ValueError, match="kl_weight do not apply to mode scratch"):
        Stage1Params(mode="scratch", kl_weight=1.0)


# ------------------------------------------------------------------------------------------------ CAT variants


def _codec(**changes):
    params = CATParams(tokens=4, width=16, depth=1, encoder_width=8, heads=2, max_symbols=16, budgets=(4, 8, 16),
                       **changes)
    torch.manual_seed(0)
    return CATEncoder(params, 32).eval(), CATDecoder(params, 32).eval()


def test_encoder_without_snr_input_ignores_the_snr():
    encoder, _ = _codec(encoder_snr=False)
    embedding = torch.randn(3, 32)
    low, high = encoder(embedding, torch.full((3,), -10.0), 8), encoder(embedding, torch.full((3,), 20.0), 8)
    assert torch.equal(low, high) and torch.equal(low, encoder(embedding, None, 8))


def test_decoder_without_no_eff_sees_only_the_snr():
    _, decoder = _codec(decoder_no_eff=False)
    symbols, snr = torch.randn(2, 8, dtype=torch.complex64), torch.tensor([0.0, 10.0])
    faded = decoder(symbols, torch.rand(2, 8) * 100, snr)
    assert torch.equal(faded, decoder(symbols, torch.full((2, 8), 0.01), snr))
    assert not torch.allclose(faded, decoder(symbols, torch.rand(2, 8), torch.tensor([20.0, 20.0])))
    _, aware = _codec()
    assert not torch.allclose(aware(symbols, torch.full((2, 8), 0.01), snr), aware(symbols, torch.full((2, 8), 10.0),
                                                                                    snr))


def test_mlp_backbone_keeps_examples_apart_and_codes_prefix_free():
    encoder, decoder = _codec(backbone="mlp")
    embedding, snr = torch.randn(4, 32), torch.linspace(-5, 15, 4)
    together = encoder(embedding, snr, 16)
    alone = encoder(embedding[1:2], snr[1:2], 16)
    assert torch.allclose(together[1:2], alone, atol=1e-6)
    short = encoder(embedding, snr, 4)
    prefix = together[:, :4] / together[:, :4].abs().pow(2).mean(dim=1, keepdim=True).sqrt()
    assert torch.allclose(short, prefix, atol=1e-5)
    assert decoder(together, torch.ones(4, 16), snr).shape == (4, 32)


def test_light_encoder_is_much_smaller_than_the_decoder():
    params = CATParams()
    encoder, decoder = CATEncoder(params, 128), CATDecoder(params, 128)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(encoder) * 10 < count(decoder)


# -------------------------------------------------------------------------------------------- through the link


def _scenario(**link):
    return scenario_dict(
        data={"type": "digits"},
        links=[{"name": "variant", "type": "rkdsc", "symbols": 4, **TINY, **link}],
        channels=[{"type": "awgn"}], snr_db=[0.0, 20.0], metrics=["accuracy"],
        monte_carlo={"batch_size": 120, "max_samples": 120, "target_errors": 0},
    )


def test_scratch_student_trains_its_own_head_and_random_search_trains_no_supernet(cache, run_dict, tmp_path):
    run_dict(_scenario(stage1={**TINY["stage1"], "mode": "scratch"}, search={**TINY["search"], "mode": "random"}))
    search = json.loads(next(cache.glob("search-*/meta.json")).read_text())
    assert search["metrics"]["mode"] == "random" and search["metrics"]["history"] == []
    student = json.loads(next(cache.glob("student-*/meta.json")).read_text())
    assert student["metrics"]["mode"] == "scratch" and student["metrics"]["embedding_mse_test"] is None
    facts = json.loads((tmp_path / "out" / "links.json").read_text())["variant"]
    assert facts["student_mode"] == "scratch" and facts["search_mode"] == "random"


def test_encoder_without_snr_runs_once_per_batch(cache, run_dict, tmp_path):
    from links.rkdsc.link import RKDSCLink
    from simulator.core.link import LinkContext
    from simulator.data.source import DigitsSource

    outcome = run_dict(_scenario(cat={**TINY["cat"], "encoder_snr": False}))
    assert len(outcome.table) == 2
    link = RKDSCLink(RKDSCLink.Params(**{**TINY, "symbols": 4, "cat": {**TINY["cat"], "encoder_snr": False}}),
                     LinkContext(data=DigitsSource()))
    assert link.snr_adaptive is False
    facts = link.describe()
    assert facts["tx_to_teacher_parameters"] == pytest.approx(facts["tx_parameters"] / facts["teacher_parameters"])
