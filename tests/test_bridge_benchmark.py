"""benchmarks/bridge.py at quick size: the JSON is complete, the bridge shares memory where the numpy path copies,
and at 2^20 elements the bridge costs far less than copying through numpy (ratios with wide margins: the measured
ones are ~100-400x; a loaded 2-core machine slows both sides)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
WAYS = ("to_tf", "to_torch", "round_trip", "numpy_to_tf", "numpy_to_torch", "numpy_round_trip")
DIRECTIONS = ("to_tf", "to_torch", "round_trip")


def test_bridge_benchmark_quick(tmp_path: Path):
    output = tmp_path / "bridge.json"
    proc = subprocess.run([sys.executable, "benchmarks/bridge.py", "--quick", "--output", str(output)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(output.read_text(encoding="utf-8"))

    assert report["benchmark"] == "bridge" and report["quick"] is True and report["dtype"] == "float32"
    assert report["shares_memory"] == {"to_tf": True, "to_torch": True, "numpy_to_tf": False,
                                       "numpy_to_torch": False}
    rows = report["rows"]
    assert [row["elements"] for row in rows] == [1, 2 ** 10, 2 ** 20]
    for row in rows:
        assert row["bytes"] == 4 * row["elements"]
        for way in WAYS:
            assert math.isfinite(row[f"{way}_us"]) and row[f"{way}_us"] > 0, (row["elements"], way)
    for direction in DIRECTIONS:
        assert report["overhead_us"][direction] > 0 and report["spread"][direction] >= 1.0
        cross = report["crossover_elements"][direction]
        assert cross is None or cross in {row["elements"] for row in rows}

    smallest, largest = rows[0], rows[-1]
    for direction in DIRECTIONS:  # 4 MiB: the bridge shares, the numpy path copies
        assert largest[f"{direction}_us"] * 10 < largest[f"numpy_{direction}_us"], (direction, largest)
    # the bridge does not grow with size (a copy of 4 MiB would take hundreds of microseconds)
    assert largest["round_trip_us"] < 5 * smallest["round_trip_us"] + 50, (smallest, largest)
    assert report["crossover_elements"]["round_trip"] is not None
    assert report["environment"]["versions"]["tensorflow"]
    assert "round_trip: overhead" in proc.stdout  # the printed summary
