"""Start-up cost of the light commands: ``semsim list``, ``semsim validate`` and ``semsim report``.

What is measured
    Wall time and peak resident memory of each command as a fresh process (``python -m simulator.cli ...``), best
    of ``--repeats`` runs, against two references measured in the same run, interleaved:

    * ``python -c "import torch"``: what every command paid while resolving a link type imported its torch
      module (before link types were declared apart from their implementation, ``links/declarations.py``);
    * ``python -c "import sionna.phy"``: what the commands paid before Sionna was imported lazily.

    ``report`` rebuilds the tables and plots of a small results directory made first (one uncoded link, two SNR
    points), so it also pays for matplotlib. The ratios (command / torch import) compare machines; the seconds
    depend on the machine and on what else runs on it (the load average is recorded).

Run ``python benchmarks/cli_latency.py`` (``--quick`` for one repeat); it prints a table and writes
``benchmarks/results/cli_latency.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, write_json  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SCENARIO = {"name": "latency", "links": [{"name": "qpsk", "type": "digital", "bits_per_symbol": 2,
                                          "block_bits": 64}],
            "channels": [{"type": "awgn"}], "snr_db": [0.0, 6.0],
            "monte_carlo": {"batch_size": 20, "max_samples": 20, "target_errors": 0}}


#: runs argv[1:] and prints its peak resident memory in KiB: a fresh parent per command, so the peak is its own
_PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds (of the command alone) and peak resident MiB of ``command`` run as a child process."""
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    peak = subprocess.run([sys.executable, "-c", _PEAK, *command], cwd=REPO_ROOT, check=True, capture_output=True,
                          text=True).stdout.split()[-1]
    return seconds, int(peak) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one repeat")
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" / "cli_latency.json"))
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats

    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "latency.yaml"
        scenario.write_text(yaml.safe_dump(SCENARIO))
        results = Path(tmp) / "results"
        subprocess.run([sys.executable, "-m", "simulator.cli", "run", str(scenario), "-o", str(results),
                        "--no-progress"], cwd=REPO_ROOT, check=True, capture_output=True)
        commands = {
            "import torch (reference)": [sys.executable, "-c", "import torch"],
            "import sionna.phy (reference)": [sys.executable, "-c", "import sionna.phy"],
            "semsim list": [sys.executable, "-m", "simulator.cli", "list"],
            "semsim validate": [sys.executable, "-m", "simulator.cli", "validate", str(scenario)],
            "semsim report": [sys.executable, "-m", "simulator.cli", "report", str(results)],
        }
        best = {name: (float("inf"), 0.0) for name in commands}
        for _ in range(repeats):  # interleaved, so that a change in load hits every command alike
            for name, command in commands.items():
                seconds, mib = timed(command)
                best[name] = (min(best[name][0], seconds), mib)

    floor = best["import torch (reference)"][0]
    figures = {name: {"best_seconds": round(s, 3), "peak_mib": round(m, 1), "ratio_to_torch_import":
                      round(s / floor, 3)} for name, (s, m) in best.items()}
    print(f"{'command':<32}{'best s':>9}{'peak MiB':>10}{'x import torch':>16}")
    for name, f in figures.items():
        print(f"{name:<32}{f['best_seconds']:>9.2f}{f['peak_mib']:>10.0f}{f['ratio_to_torch_import']:>16.2f}")
    write_json({"repeats": repeats, "commands": figures, "environment": environment("cpu")}, Path(args.output))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
