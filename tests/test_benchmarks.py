"""Smoke test of the benchmarks: they run at tiny size and write well-formed results (timings are not checked)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_digital_link_benchmark_quick(tmp_path: Path):
    output = tmp_path / "x.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/digital_link.py", "--quick", "--output", str(output)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert output.is_file()
    report = json.loads(output.read_text(encoding="utf-8"))

    assert set(report["configs"]) == {"uncoded", "ldpc"}
    for name, figures in report["configs"].items():
        expected_bits = figures["sizes"]["info_bits_per_run"]
        for side in ("direct", "semsim", "engine"):
            assert figures[side]["mbit_per_s"] > 0, (name, side)
            assert figures[side]["best_seconds"] > 0, (name, side)
            assert figures[side]["info_bits"] == expected_bits, (name, side)
        for ratio in ("ratio", "engine_ratio"):
            assert math.isfinite(figures[ratio]) and figures[ratio] > 0, (name, ratio)
    env = report["environment"]
    assert env["torch_threads"] >= 1
    assert env["device"] == "cpu"
    assert env["versions"]["torch"] and env["versions"]["sionna"]
    assert "ratio" in proc.stdout  # the printed table


def run_quick(script: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``benchmarks/<script> --quick`` as a subprocess; its completed process and the JSON it wrote."""
    output = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, f"benchmarks/{script}", "--quick", "--output", str(output)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads(output.read_text(encoding="utf-8"))


def test_cli_latency_benchmark_quick(tmp_path: Path):
    proc, report = run_quick("cli_latency.py", tmp_path)
    assert set(report["commands"]) == {"import torch (reference)", "import sionna.phy (reference)", "semsim list",
                                       "semsim validate", "semsim report"}
    for figures in report["commands"].values():
        assert figures["best_seconds"] > 0 and figures["peak_mib"] > 10
    assert "x import torch" in proc.stdout


def test_ldpc_decoders_benchmark_quick(tmp_path: Path, capsys):
    # in this process (the imports of a subprocess would cost more than the run); main sets one torch thread
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    threads = torch.get_num_threads()
    try:
        import ldpc_decoders

        output = tmp_path / "ldpc.json"
        assert ldpc_decoders.main(["--quick", "--output", str(output)]) == 0
    finally:
        torch.set_num_threads(threads)
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    report = json.loads(output.read_text(encoding="utf-8"))
    names = {"sionna", "numba", "numba-minsum", "numba-offset-minsum", "numba-normalized-minsum"}
    assert set(report["decoders"]) == names
    assert set(report["codes"]) == {"k512-n1024-qpsk", "k768-n1024-16qam"}
    for code in report["codes"].values():
        assert len(code["points"]) == 1
        for point in code["points"]:
            assert set(point["decoders"]) == names
            for figures in point["decoders"].values():
                assert figures["mbit_per_s"] > 0 and math.isfinite(figures["speedup"])
                low, high = figures["bler_ci95"]
                assert 0 <= low <= figures["bler"] <= high <= 1
                assert 1 <= figures["mean_iterations"] <= report["num_iter"]
            assert point["decoders"]["sionna"]["speedup"] == 1.0
            assert point["decoders"]["sionna"]["differ_from_reference"] == 0
            assert point["decoders"]["sionna"]["mean_iterations"] == report["num_iter"]
        assert code["summary"]["numba"]["speedup"] > 0
    assert report["first_call"] is None  # not measured in --quick
    assert report["environment"]["torch_threads"] == 1
    assert "x sionna" in capsys.readouterr().out  # the printed table


def test_ofdm_channel_benchmark_quick(tmp_path: Path):
    proc, report = run_quick("ofdm_channel.py", tmp_path)
    row = report["us_per_example"]["32"]
    for side in ("sionna", "closed-form", "closed-form + raw"):
        assert row[side] > 0
    assert math.isfinite(row["ratio"]) and row["ratio"] > 0
    assert list(report["peak_mib_added"]) == ["500"]
    assert set(report["peak_mib_added"]["500"]) == {"sionna", "closed-form"}
    assert "x sionna" in proc.stdout


def test_conv_layout_benchmark_quick(tmp_path: Path):
    proc, report = run_quick("conv_layout.py", tmp_path)
    rows = {(row["work"], row["variant"]): row for row in report["rows"]}
    assert set(rows) == {(work, variant) for work in ("infer", "train") for variant in ("contiguous", "channels_last")}
    for (work, variant), row in rows.items():
        assert row["model"] == "student" and row["ms"] > 0
        assert row["ratio"] == 1.0 if variant == "contiguous" else math.isfinite(row["ratio"])
        # the layouts compute the same function: differences are rounding (train: after one Adam step)
        assert row["max_abs_diff"] < (1e-5 if work == "infer" else 1e-3)
    assert report["settings"]["threads"] == 1
    assert "channels_last" in proc.stdout
