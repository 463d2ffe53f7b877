"""The RKD-SC pipeline and link at toy sizes: stages train, cache, retrain selectively, and sweep."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import scenario_dict, stopped_after_first_epoch
from safetensors.torch import load_file

import links.rkdsc.pipeline as pipeline
import links.teacher_stage as teacher_stage
from simulator.cli import main
from simulator.data.source import DigitsSource

TINY = {
    "teacher": {"type": "vit", "dim": 16, "depth": 1, "heads": 2, "epochs": 1, "batch_size": 128},
    "search": {"cells": 1, "nodes": 1, "channels": 4, "epochs": 1, "batch_size": 128},
    "stage1": {"epochs": 1, "batch_size": 128},
    "stage2": {"epochs": 1, "batch_size": 128, "channels": ["awgn", "rayleigh"]},
    "cat": {"tokens": 2, "width": 8, "depth": 1, "heads": 1, "max_symbols": 8, "budgets": [4, 8]},
}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def rkdsc_scenario(**link_overrides) -> dict:
    return scenario_dict(
        data={"type": "digits"},
        links=[{"name": "rkdsc", "type": "rkdsc", "symbols": 4, **TINY, **link_overrides}],
        channels=[{"type": "awgn"}, {"type": "rayleigh", "fading": "block"}],
        snr_db=[-10.0, 20.0],
        metrics=["accuracy"],
        monte_carlo={"batch_size": 120, "max_samples": 240, "target_errors": 0},
    )


def test_link_trains_every_stage_then_sweeps_accuracy(cache, run_dict):
    table = run_dict(rkdsc_scenario()).table
    assert set(table.metric) == {"accuracy"} and len(table) == 4
    assert (table.channel_uses == 4).all() and (table.trials == 240).all()
    assert ((table.value >= 0) & (table.value <= 1)).all()
    kinds = sorted(p.name.split("-")[0] for p in cache.iterdir())
    assert kinds == ["search", "stage2", "student", "teacher"]
    student = json.loads(next(cache.glob("student-*/meta.json")).read_text())
    assert student["has_weights"] and student["metrics"]["parameters"] < student["metrics"]["teacher_parameters"]
    assert (next(cache.glob("student-*")) / "card.md").read_text().startswith("# Student")
    assert not list(cache.glob("*/checkpoint.*"))  # training state is dropped once an artifact is complete


def test_cached_stages_are_reused_and_a_change_retrains_only_what_depends_on_it(cache, run_dict, tmp_path,
                                                                                monkeypatch):
    run_dict(rkdsc_scenario(), tmp_path / "a")
    before = {p.name for p in cache.iterdir()}

    def refuse(*args, **kwargs):
        raise AssertionError("a cached stage was retrained")

    monkeypatch.setattr(teacher_stage, "_train", refuse)
    for stage in ("_search", "_stage1"):
        monkeypatch.setattr(pipeline, stage, refuse)
    changed = {**TINY, "stage2": {**TINY["stage2"], "lr": 1e-3}}
    run_dict(rkdsc_scenario(**changed), tmp_path / "b")  # new stage 2 only
    after = {p.name for p in cache.iterdir()}
    assert len(after - before) == 1 and next(iter(after - before)).startswith("stage2-")
    monkeypatch.setattr(pipeline, "_stage2", refuse)
    run_dict(rkdsc_scenario(symbols=8), tmp_path / "c")  # another budget: nothing to train


def test_rkdsc_without_data_is_a_one_line_error(cache, tmp_path, capsys):
    data = rkdsc_scenario()
    del data["data"]
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(data))
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "needs images: add a data source" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_train_command_prepares_every_link_without_sweeping(cache, tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(rkdsc_scenario()))
    assert main(["train", str(path)]) == 0
    assert "semsim: rkdsc: ready (4 channel uses per example)" in capsys.readouterr().out
    assert len(list(cache.glob("*/meta.json"))) == 4
    assert not (tmp_path / "results").exists()


def test_stage1_distillation_lowers_the_loss_and_leaves_the_student_frozen(cache, single_thread):
    params = pipeline.PipelineParams(**{**TINY, "stage1": {"epochs": 4, "batch_size": 64}})
    data = DigitsSource()
    teacher = teacher_stage.prepare_teacher(params.teacher, data, {"type": "digits"}, params.train_seed)
    stage = pipeline.prepare_student(params, teacher, data)
    losses = [h["loss"] for h in stage.report["student"]["history"]]
    assert len(losses) == 4
    assert losses[-1] < losses[0] / 2
    assert not stage.student.training and not any(q.requires_grad for q in stage.student.parameters())


def test_interrupted_stages_resume_to_the_same_weights(cache, monkeypatch, single_thread):
    """Each trained stage stopped after its first of two epochs, then resumed from its checkpoint, ends with the
    weights of an uninterrupted run."""
    two = {stage: {**TINY[stage], "epochs": 2} for stage in ("teacher", "stage1", "stage2")}
    params, data = pipeline.PipelineParams(**{**TINY, **two}), DigitsSource()

    def weights(models) -> dict[str, dict[str, torch.Tensor]]:
        return {name: load_file(str(art.weights_path)) for name, art in models.artifacts.items()
                if art.weights_path.is_file()}

    whole = weights(pipeline.prepare(params, data, {"type": "digits"}))
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(cache.parent / "resumed"))
    with stopped_after_first_epoch() as stopped:
        for _ in range(3):  # the teacher, the student, stage 2: each stops once
            with pytest.raises(KeyboardInterrupt):
                pipeline.prepare(params, data, {"type": "digits"})
    assert sorted(name.split("-")[0] for name in stopped) == ["stage2", "student", "teacher"]
    resumed = weights(pipeline.prepare(params, data, {"type": "digits"}))
    assert whole.keys() == resumed.keys() == {"teacher", "student", "stage2"}
    for name, tensors in whole.items():
        assert tensors.keys() == resumed[name].keys()
        assert all(torch.equal(tensors[k], resumed[name][k]) for k in tensors), name
