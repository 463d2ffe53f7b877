"""Smoke test of benchmarks/results_io.py: it runs at tiny size (both sides: per-point append and the earlier
whole-table rewrite) and writes well-formed results (timings are not checked)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FIGURES = {"sweep_ms_per_point", "results_ms_per_point", "results_ms_first_tenth", "results_ms_last_tenth",
           "manifest_ms_per_point"}


def test_results_io_benchmark_quick(tmp_path: Path):
    output = tmp_path / "x.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/results_io.py", "--quick", "--points", "30", "--output", str(output)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(output.read_text(encoding="utf-8"))
    assert report["quick"] and report["points"] == 30 and report["repeats"] == 1
    assert report["identical_results"] is True  # both sides saved the same rows
    for side in ("rewrite", "append"):
        assert set(report[side]) == FIGURES, side
        for name, value in report[side].items():
            assert math.isfinite(value) and value > 0, (side, name)
    assert set(report["ratios"]) == {"sweep_ms_per_point", "results_ms_per_point", "results_ms_last_tenth"}
    for name, ratio in report["ratios"].items():
        assert math.isfinite(ratio) and ratio > 0, name
    assert report["fsync_ms"] >= 0
    assert report["environment"]["versions"]["torch"]
    assert "results write" in proc.stdout
