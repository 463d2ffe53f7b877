"""Shared fixtures: scenario construction helpers and a CLI runner."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import pytest
import torch

import simulator.engine.sweep
from simulator.config.scenario import parse_scenario
from simulator.engine.sweep import run_scenario
from simulator.io.artifacts import Artifact

BASE_SCENARIO = {
    "name": "test",
    "seed": 7,
    "links": [{"name": "qpsk", "type": "digital", "bits_per_symbol": 2, "block_bits": 256}],
    "channels": [{"type": "awgn"}],
    "snr_db": [0.0, 4.0],
    "monte_carlo": {"batch_size": 50, "max_samples": 100, "target_errors": 0},
}


def scenario_dict(**overrides) -> dict:
    """A small valid scenario as a dict, with top-level fields replaced by ``overrides``."""
    data = copy.deepcopy(BASE_SCENARIO)
    data.update(copy.deepcopy(overrides))
    return data


@pytest.fixture
def run_dict(tmp_path: Path):
    """Run a scenario given as a dict into a fresh directory; returns the SweepOutcome."""

    def run(data: dict, output: Path | None = None, **kwargs):
        scenario = parse_scenario(data)
        return run_scenario(scenario, output or tmp_path / "out", progress=False, **kwargs)

    return run


@contextlib.contextmanager
def interrupted_after(points: int):
    """Inside, a sweep raises ``KeyboardInterrupt`` (as Ctrl-C would) when its ``points + 1``-th point finishes,
    before that point's rows are written."""
    real_point_rows = simulator.engine.sweep.point_rows
    calls = {"n": 0}

    def interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > points:
            raise KeyboardInterrupt
        return real_point_rows(*args, **kwargs)

    simulator.engine.sweep.point_rows = interrupt
    try:
        yield
    finally:
        simulator.engine.sweep.point_rows = real_point_rows


@pytest.fixture
def single_thread():
    """One torch intra-op thread for the test: toy models train several times faster so on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def stopped_after_first_epoch():
    """Inside, every artifact's training raises ``KeyboardInterrupt`` (as Ctrl-C would) right after it saves its
    first checkpoint, once per artifact; yields the set of the stopped artifacts' directory names."""
    real_save = Artifact.save_checkpoint
    stopped: set[str] = set()

    def save_then_stop(self, *args, **kwargs):
        real_save(self, *args, **kwargs)
        if self.directory.name not in stopped:
            stopped.add(self.directory.name)
            raise KeyboardInterrupt

    Artifact.save_checkpoint = save_then_stop
    try:
        yield stopped
    finally:
        Artifact.save_checkpoint = real_save
