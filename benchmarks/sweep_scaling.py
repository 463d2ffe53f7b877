"""Wall time of one sweep with the local executor versus the Ray executor with 1 and 2 workers, and Ray's
per-task overhead.

What is measured
    ``simulator.engine.sweep.run_scenario`` end to end (Monte-Carlo loop, ``results.csv``, report, manifest) into
    a fresh temporary directory, for a digital link (uncoded 16-QAM, 1,024-bit blocks) over AWGN and Rayleigh block
    fading on an SNR grid, with a fixed number of examples per point (``target_errors: 0``):

    * ``local``: the local executor, torch limited to ``--threads`` intra-op threads (default 1, as each Ray
      task), so the comparison is one core against one or two;
    * ``ray_1`` / ``ray_2``: the Ray executor on a local Ray instance started with 1 or 2 CPUs (so 1 or 2 tasks run
      at once), one task per (channel, SNR point). Starting the instance is never timed; the first sweep on it
      (which also starts the worker processes and imports torch and Sionna in them) is reported apart as
      ``first_run_seconds`` and the best of ``--repeats`` later runs counts;
    * ``overhead_per_task_ms``: the same sweep with one example per point (so nearly all time is bookkeeping),
      Ray with 1 worker minus local, divided by the number of tasks.

    Every side computes the same numbers (the test suite checks this); ratios are wall-time ratios to ``local``.

How to run
    ``.venv/bin/python benchmarks/sweep_scaling.py`` (about 6 minutes on 2 CPU cores), or ``--quick`` for a smoke
    run (about a minute: 2 x 3 points of 200 examples, one repeat). Results are printed and written to
    ``benchmarks/results/sweep_scaling.json`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import environment, write_json

from simulator.config.scenario import parse_scenario
from simulator.engine.sweep import run_scenario

RESULTS = Path(__file__).resolve().parent / "results" / "sweep_scaling.json"


def scenario(snr_points: int, batch_size: int, max_samples: int) -> dict:
    return {
        "name": "sweep-scaling",
        "seed": 1,
        "links": [{"name": "16qam", "type": "digital", "bits_per_symbol": 4, "block_bits": 1024}],
        "channels": [{"type": "awgn"}, {"type": "rayleigh", "fading": "block", "block_length": 16}],
        "snr_db": [float(2 * i) for i in range(snr_points)],
        "monte_carlo": {"batch_size": batch_size, "max_samples": max_samples, "target_errors": 0},
        "executor": {"type": "ray", "chunk_points": 1, "num_cpus": 1},
    }


def timed_run(data: dict, executor: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        outcome = run_scenario(parse_scenario(data), out, executor=executor, progress=False)
        seconds = time.perf_counter() - t0
    assert outcome.computed == len(data["snr_db"]) * len(data["channels"])
    return seconds


def best(data: dict, executor: str, repeats: int) -> float:
    return min(timed_run(data, executor) for _ in range(repeats))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per side (best counts)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads of the local executor")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import ray

    torch.set_num_threads(args.threads)
    if args.quick:
        sweep, repeats = scenario(3, 100, 200), args.repeats or 1
    else:
        sweep, repeats = scenario(8, 1000, 8000), args.repeats or 2
    tiny = {**sweep, "monte_carlo": {"batch_size": 1, "max_samples": 1, "target_errors": 0}}
    tasks = len(sweep["snr_db"]) * len(sweep["channels"])

    timed_run(sweep, "local")  # warm-up: imports, Sionna's first calls
    local = best(sweep, "local", repeats)
    local_tiny = best(tiny, "local", repeats)
    report: dict = {"quick": args.quick, "repeats": repeats, "tasks": tasks,
                    "sizes": {"snr_db": sweep["snr_db"], "channels": [c["type"] for c in sweep["channels"]],
                              "examples_per_point": sweep["monte_carlo"]["max_samples"],
                              "batch_size": sweep["monte_carlo"]["batch_size"]},
                    "local": {"best_seconds": round(local, 4), "tiny_seconds": round(local_tiny, 4)}}
    for workers in (1, 2):
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        try:
            first = timed_run(sweep, "ray")
            seconds = best(sweep, "ray", repeats)
            side = {"best_seconds": round(seconds, 4), "first_run_seconds": round(first, 4)}
            if workers == 1:
                side["tiny_seconds"] = round(best(tiny, "ray", repeats), 4)
        finally:
            ray.shutdown()
        report[f"ray_{workers}"] = side

    report["overhead_per_task_ms"] = round(1000 * (report["ray_1"]["tiny_seconds"] - local_tiny) / tasks, 2)
    report["ratios"] = {
        "ray_1_to_local": round(report["ray_1"]["best_seconds"] / local, 3),
        "ray_2_to_local": round(report["ray_2"]["best_seconds"] / local, 3),
        "ray_2_speedup_over_ray_1": round(report["ray_1"]["best_seconds"] / report["ray_2"]["best_seconds"], 3),
    }
    report["environment"] = environment("cpu")
    write_json(report, args.output)

    print(f"sweep: {tasks} points x {sweep['monte_carlo']['max_samples']} examples; best of {repeats}")
    print(f"{'side':<8} {'seconds':>9} {'ratio to local':>15} {'first run':>10}")
    print(f"{'local':<8} {local:>9.3f} {1:>15.3f} {'':>10}")
    for workers in (1, 2):
        side = report[f"ray_{workers}"]
        ratio = report["ratios"][f"ray_{workers}_to_local"]
        print(f"{'ray_' + str(workers):<8} {side['best_seconds']:>9.3f} {ratio:>15.3f} "
              f"{side['first_run_seconds']:>10.3f}")
    print(f"ray 2 workers over 1: speedup {report['ratios']['ray_2_speedup_over_ray_1']:.3f}")
    print(f"ray per-task overhead: {report['overhead_per_task_ms']:.1f} ms ({tasks} one-example tasks)")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
