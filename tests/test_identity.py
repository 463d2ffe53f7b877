"""A result's identity sees what determines it: plug-in weight files, retrained artifacts, recipe versions."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import scenario_dict
from safetensors.torch import load_file, save_file
from test_rkdsc import TINY

import links.rkdsc.pipeline as pipeline
import links.teacher_stage as teacher_stage
from simulator.config.scenario import parse_scenario
from simulator.engine.sweep import plan_points
from simulator.io.artifacts import artifact_key


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_new_weights_in_the_same_file_are_recomputed_not_reused(run_dict, tmp_path):
    weights = tmp_path / "threshold.txt"
    weights.write_text("0.0")
    data = scenario_dict(links=[{"name": "plug", "type": "plugins:WeightFileLink", "weights": str(weights)}],
                         snr_db=[4.0, 8.0], monte_carlo={"batch_size": 100, "max_samples": 200, "target_errors": 0})
    first = run_dict(data, tmp_path / "out")
    assert (first.computed, first.reused) == (2, 0)
    assert (first.table.value < 0.05).all()
    again = run_dict(data, tmp_path / "out")  # same weights: nothing to do
    assert (again.computed, again.reused) == (0, 2)
    weights.write_text("3.0")  # "retrained" into the same path: every bit of 1 is now decided as 0
    retrained = run_dict(data, tmp_path / "out")
    assert (retrained.computed, retrained.reused) == (2, 0)
    assert (retrained.table.value > 0.4).all()
    assert (tmp_path / "out" / "superseded.csv").is_file()  # the old rows are kept aside, not mixed in


def test_links_without_fingerprints_keep_their_point_ids():
    scenario = parse_scenario(scenario_dict(snr_db=[0.0]))
    label = scenario.links[0].key
    assert plan_points(scenario) == plan_points(scenario, {("link", label): None})
    assert plan_points(scenario) != plan_points(scenario, {("link", label): "abc"})


def _rkdsc(output):
    return scenario_dict(data={"type": "digits"}, links=[{"name": "rkdsc", "type": "rkdsc", "symbols": 4, **TINY}],
                         channels=[{"type": "awgn"}], snr_db=[10.0], metrics=["accuracy"],
                         monte_carlo={"batch_size": 120, "max_samples": 120, "target_errors": 0}, output=str(output))


def test_a_retrained_artifact_under_the_same_key_recomputes_its_points(cache, run_dict, tmp_path):
    out = tmp_path / "out"
    assert run_dict(_rkdsc(out), out).computed == 1
    weights = next(cache.glob("stage2-*")) / "weights.safetensors"
    tensors = load_file(str(weights))
    name = next(k for k in tensors if k.startswith("head."))
    tensors[name] = tensors[name] + 1.0  # different weights, same key: what retraining with other numerics does
    save_file(tensors, str(weights))
    outcome = run_dict(_rkdsc(out), out)
    assert (outcome.computed, outcome.reused) == (1, 0)


def test_artifacts_record_their_key_material_and_a_recipe_bump_retrains_only_that_stage(cache, run_dict, tmp_path,
                                                                                         monkeypatch):
    run_dict(_rkdsc(tmp_path / "a"), tmp_path / "a")
    for meta_path in cache.glob("*/meta.json"):
        meta = json.loads(meta_path.read_text())
        kind = meta["kind"]
        assert meta["recipe"] == pipeline.RECIPES[kind]
        assert meta["key"] == artifact_key(kind, meta["config"], meta["parents"], meta["recipe"])
        assert bool(meta["parents"]) == (kind != "teacher")  # every stage but the teacher names what it builds on
    before = {p.name for p in cache.iterdir()}
    monkeypatch.setitem(pipeline.RECIPES, "stage2", pipeline.RECIPES["stage2"] + 1)
    monkeypatch.setattr(teacher_stage, "_train", lambda *a, **k: pytest.fail("an unchanged stage was retrained"))
    for stage in ("_search", "_stage1"):
        monkeypatch.setattr(pipeline, stage, lambda *a, **k: pytest.fail("an unchanged stage was retrained"))
    outcome = run_dict(_rkdsc(tmp_path / "a"), tmp_path / "a")
    new = {p.name for p in cache.iterdir()} - before
    assert len(new) == 1 and next(iter(new)).startswith("stage2-")
    assert (outcome.computed, outcome.reused) == (1, 0)  # new weights: the point is recomputed


def test_results_of_other_numerics_are_not_mixed_into_one_table(run_dict, tmp_path, capsys):
    from simulator.cli import main

    data = scenario_dict(snr_db=[0.0], threads=2,
                         monte_carlo={"batch_size": 100, "max_samples": 100, "target_errors": 0})
    out = tmp_path / "out"
    run_dict(data, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["numerics"] == {"device_type": "cpu", "threads": 2}
    before = (out / "results.csv").read_text()
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(data))
    assert main(["run", str(path), "-o", str(out), "--no-progress", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "computed on cpu with 2 torch threads; this run would compute on cpu with 1 torch thread" in err
    assert (out / "results.csv").read_text() == before  # nothing touched
    assert main(["run", str(path), "-o", str(out), "--no-progress"]) == 0  # the scenario's 2 threads resume
    assert "0 points computed, 1 reused" in capsys.readouterr().out


def conv_receiver(batch_size: int, **overrides) -> dict:
    """A scenario of :class:`plugins.ConvReceiverLink` at three SNR points, three batches each."""
    return scenario_dict(**{
        "links": [{"name": "conv", "type": "plugins:ConvReceiverLink"}], "channels": [{"type": "awgn"}],
        "snr_db": [0.0, 5.0, 10.0], **overrides,
        "monte_carlo": {"batch_size": batch_size, "max_samples": 3 * batch_size, "target_errors": 0}})


def _mse(outcome, snr_db: float) -> float:
    table = outcome.table
    return float(table[(table.snr_db == snr_db) & (table.metric == "mse")].value.iloc[0])


@pytest.mark.parametrize("process_threads", [1, 2])
def test_results_do_not_depend_on_the_callers_thread_count(run_dict, tmp_path, process_threads):
    """A CNN receiver's outputs can differ in their last bits at 1 and 2 torch threads; the sweep computes at the
    scenario's thread count whatever the calling process uses, and restores the caller's afterwards."""
    import torch

    reference = run_dict(conv_receiver(200, threads=1), tmp_path / "ref")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(process_threads)
        again = run_dict(conv_receiver(200, threads=1), tmp_path / f"at{process_threads}")
        assert torch.get_num_threads() == process_threads
    finally:
        torch.set_num_threads(before)
    assert [_mse(again, s) for s in (0.0, 5.0, 10.0)] == [_mse(reference, s) for s in (0.0, 5.0, 10.0)]


def test_thread_count_is_part_of_the_numerics_not_of_the_point_id(run_dict, tmp_path):
    one = run_dict(conv_receiver(200, threads=1), tmp_path / "one")
    two = run_dict(conv_receiver(200, threads=2), tmp_path / "two")
    assert list(one.table.point_id) == list(two.table.point_id)
    # whether a CNN's last bits follow the thread count depends on the CPU and its kernels, so the thread count
    # is recorded beside the results (the numerics guard) instead of being assumed to change them
    numerics = [json.loads((tmp_path / name / "manifest.json").read_text())["numerics"] for name in ("one", "two")]
    assert numerics == [{"device_type": "cpu", "threads": 1}, {"device_type": "cpu", "threads": 2}]


def test_a_points_numbers_do_not_depend_on_the_points_beside_it(run_dict, tmp_path):
    """The CNN's outputs for 10 examples can differ in their last bits between a call of 10 and one of 30; the
    runner never packs points into one call, so a point alone equals the same point among others."""
    together = run_dict(conv_receiver(10), tmp_path / "together")
    alone = run_dict(conv_receiver(10, snr_db=[5.0]), tmp_path / "alone")
    assert _mse(alone, 5.0) == _mse(together, 5.0)
    assert alone.table.point_id.iloc[0] == together.table[together.table.snr_db == 5.0].point_id.iloc[0]


def test_local_worker_processes_give_the_numbers_of_one_process(run_dict, tmp_path):
    """``executor: {type: local, workers: 2}``: tasks of one link on one channel in two spawned processes, at the
    scenario's thread count, give exactly the single-process numbers (a CNN receiver and a digital link, two
    channels), and the outcome files too."""
    import numpy as np

    from simulator.io.outcomes import load_outcomes

    links = [{"name": "conv", "type": "plugins:ConvReceiverLink"},
             {"name": "qpsk", "type": "digital", "bits_per_symbol": 2, "block_bits": 64}]
    channels = [{"type": "awgn"}, {"type": "rayleigh", "fading": "block", "block_length": 8}]
    one = run_dict(conv_receiver(100, links=links, channels=channels), tmp_path / "one")
    two = run_dict(conv_receiver(100, links=links, channels=channels, executor={"type": "local", "workers": 2}),
                   tmp_path / "two")
    columns = ["link", "channel", "snr_db", "metric", "value", "ci_low", "ci_high", "count", "trials", "examples",
               "point_id"]
    pd.testing.assert_frame_equal(one.table[columns], two.table[columns])
    for point_id in set(one.table[one.table.link == "qpsk"].point_id):
        a, b = load_outcomes(tmp_path / "one", point_id), load_outcomes(tmp_path / "two", point_id)
        assert list(a) == ["bler"] and np.array_equal(a["bler"], b["bler"])
