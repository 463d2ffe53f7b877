"""Smoke test of benchmarks/semantic_sweep.py: it runs at tiny size and writes well-formed results (timings are
not checked)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SIDES = ("plain", "semsim", "engine", "floor", "receiver")


def test_semantic_sweep_benchmark_quick(tmp_path: Path):
    output = tmp_path / "x.json"
    env = {**os.environ, "SEMSIM_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "benchmarks/semantic_sweep.py", "--quick", "--output", str(output)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert output.is_file()
    report = json.loads(output.read_text(encoding="utf-8"))

    sizes = report["sizes"]
    expected = sizes["images_per_run"]
    assert expected == len(sizes["channels"]) * len(sizes["snr_db"]) * sizes["images_per_point"] > 0
    for side in SIDES:
        figures = report[side]
        assert figures["images_per_s"] > 0, side
        assert figures["best_seconds"] > 0, side
        assert figures["images"] == expected, side  # every side evaluated the same number of images
        assert 0 <= figures["accuracy"] <= 1, side
    assert set(report["ratios"]) == {"speedup", "engine_speedup", "engine_to_floor", "semsim_to_floor",
                                     "semsim_to_receiver", "engine_to_receiver", "plain_to_receiver"}
    # the floor does the plain loop's work without re-running the student per point: same draws, same decisions
    assert report["floor"]["correct"] == report["plain"]["correct"]
    for name, ratio in report["ratios"].items():
        assert math.isfinite(ratio) and ratio > 0, name
    env_info = report["environment"]
    assert env_info["torch_threads"] == 1  # every side at the scenario default
    assert env_info["device"] == "cpu"
    assert env_info["versions"]["torch"] and env_info["versions"]["sionna"]
    assert report["quick"] and report["link"]["type"] == "rkdsc"
    assert "speedup" in proc.stdout  # the printed table
