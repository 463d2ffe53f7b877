"""Shared fixtures: scenario construction helpers and a CLI runner."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from simulator.scenario import parse_scenario
from simulator.sweep import run_scenario

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
