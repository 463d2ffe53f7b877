"""Smoke test of benchmarks/sweep_scaling.py: it runs at tiny size (local executor, Ray with 1 and 2 workers) and
writes well-formed results (timings are not checked)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_sweep_scaling_benchmark_quick(tmp_path: Path):
    pytest.importorskip("ray")
    output = tmp_path / "x.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/sweep_scaling.py", "--quick", "--output", str(output)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(output.read_text(encoding="utf-8"))
    assert report["quick"] and report["tasks"] == 6
    for side in ("local", "ray_1", "ray_2"):
        assert report[side]["best_seconds"] > 0, side
    assert report["ray_1"]["first_run_seconds"] > 0
    assert math.isfinite(report["overhead_per_task_ms"])
    assert set(report["ratios"]) == {"ray_1_to_local", "ray_2_to_local", "ray_2_speedup_over_ray_1"}
    for name, ratio in report["ratios"].items():
        assert math.isfinite(ratio) and ratio > 0, name
    assert report["environment"]["versions"]["torch"]
    assert "per-task overhead" in proc.stdout
