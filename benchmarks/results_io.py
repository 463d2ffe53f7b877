"""Per-point cost of saving results in a long sweep: appending each finished point to ``results.csv`` versus the
earlier path that rewrote the whole table after every point.

What is measured
    ``simulator.engine.sweep.run_scenario`` end to end into a fresh temporary directory, for an uncoded QPSK
    ``digital`` link (64-bit blocks) over AWGN on a grid of ``--points`` SNR points (default 1,000) with one
    example per point (``batch_size: 1``, ``max_samples: 1``, ``target_errors: 0``), so that nearly all of a
    point's time is bookkeeping. Two sides, run alternately (``--repeats`` times each, the best of each figure
    counts):

    * ``append`` (semsim as it is): each finished point's two rows (``ber``, ``bler``) are appended to
      ``results.csv`` in one write and ``fsync``; the table is rewritten in plan order once, at the end;
    * ``rewrite`` (the reference, the earlier path, kept here): after each finished point, every row so far is
      concatenated, sorted in plan order and the whole ``results.csv`` rewritten atomically, so the cost of a
      point grows with the points before it. It is swapped in for the sweep's per-point append, nothing else
      changes.

    Figures per side: ``sweep_ms_per_point`` (the sweep's wall time over the number of points: compute, writes,
    the end's report), ``results_ms_per_point`` (time in the per-point results write alone), the same for the
    first and the last tenth of the points (growth with the table's size), and ``manifest_ms_per_point`` (the
    ``manifest.json`` rewrite after each point, the same on both sides). ``fsync_ms`` is the median time of one
    ``fsync`` after a one-line append in a temporary folder, sampled before every timed run (the floor of a durable
    append here; it varies with the disk's other traffic). Ratios are ``rewrite / append``. Both sides'
    ``results.csv`` are checked to hold the same rows (but for ``seconds``).

How to run
    ``.venv/bin/python benchmarks/results_io.py`` (about 5 minutes on 2 CPU cores, nearly all of it the
    ``rewrite`` side), or ``--quick`` for a smoke run (40 points, one repeat, a few seconds after imports).
    Results are printed and written to ``benchmarks/results/results_io.json`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from _common import environment, write_json

import simulator.engine.sweep as sweep
from simulator.config.scenario import parse_scenario
from simulator.io.results import COLUMNS, load_results, save_results

RESULTS = Path(__file__).resolve().parent / "results" / "results_io.json"


def scenario(points: int) -> dict:
    return {
        "name": "results-io",
        "seed": 1,
        "links": [{"name": "qpsk", "type": "digital", "bits_per_symbol": 2, "block_bits": 64}],
        "channels": [{"type": "awgn"}],
        "snr_db": [round(-10 + 30 * i / points, 6) for i in range(points)],
        "monte_carlo": {"batch_size": 1, "max_samples": 1, "target_errors": 0},
    }


class RewriteEverything:
    """The earlier per-point save, as ``on_point_done`` did it: keep every row, concatenate, sort in plan order,
    rewrite the whole file (:func:`simulator.io.results.save_results`, atomic)."""

    def __init__(self, data: dict):
        spec = parse_scenario(data)
        self.plan = {(link.key, channel.key, snr): i for i, (link, channel, snr) in enumerate(
            (link, channel, snr) for link in spec.links for channel in spec.channels for snr in spec.snr_points())}
        self.rows: list[pd.DataFrame] = []
        self.order: dict[str, int] = {}

    def __call__(self, new: pd.DataFrame, path: Path) -> None:
        first = new.iloc[0]
        self.order[first.point_id] = self.plan[(first.link, first.channel, float(first.snr_db))]
        self.rows.append(new)
        save_results(sweep._sorted(sweep._concat(self.rows), self.order), path)


@contextlib.contextmanager
def instrumented(side: str, data: dict):
    """Inside, the sweep saves each point the ``side`` way, and the time of each results and manifest write is
    recorded (in seconds) in the yielded lists."""
    times: dict[str, list[float]] = {"results": [], "manifest": []}
    append, write_json = sweep._append_results, sweep._write_json
    write = RewriteEverything(data) if side == "rewrite" else append

    def timed_write(rows, path):
        t0 = time.perf_counter()
        write(rows, path)
        times["results"].append(time.perf_counter() - t0)

    def timed_json(path, content):
        t0 = time.perf_counter()
        write_json(path, content)
        if path.name == "manifest.json" and content.get("status") == "running":
            times["manifest"].append(time.perf_counter() - t0)

    sweep._append_results, sweep._write_json = timed_write, timed_json
    try:
        yield times
    finally:
        sweep._append_results, sweep._write_json = append, write_json


def timed_run(data: dict, side: str) -> tuple[dict, pd.DataFrame]:
    points = len(data["snr_db"])
    with tempfile.TemporaryDirectory() as out, instrumented(side, data) as times, \
            open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):  # the one log line per point
        t0 = time.perf_counter()
        outcome = sweep.run_scenario(parse_scenario(data), out, progress=False)
        seconds = time.perf_counter() - t0
        saved = load_results(Path(out) / "results.csv")
    assert outcome.computed == points and len(times["results"]) == points
    tenth = max(1, points // 10)
    ms = [1000 * t for t in times["results"]]
    figures = {
        "sweep_ms_per_point": 1000 * seconds / points,
        "results_ms_per_point": statistics.fmean(ms),
        "results_ms_first_tenth": statistics.fmean(ms[:tenth]),
        "results_ms_last_tenth": statistics.fmean(ms[-tenth:]),
        "manifest_ms_per_point": 1000 * statistics.fmean(times["manifest"]),
    }
    return figures, saved


def fsync_times(samples: int = 20) -> list[float]:
    """Times of ``samples`` ``fsync`` calls, each after appending one line to a file in a temporary folder (ms)."""
    with tempfile.TemporaryDirectory() as folder:
        fd = os.open(Path(folder) / "f.csv", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            times = []
            for _ in range(samples):
                os.write(fd, b"x" * 150 + b"\n")
                t0 = time.perf_counter()
                os.fsync(fd)
                times.append(time.perf_counter() - t0)
        finally:
            os.close(fd)
    return [1000 * t for t in times]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--points", type=int, default=None, help="SNR points of the sweep (default 1,000)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per side, alternating (best counts)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    points = args.points or (40 if args.quick else 1000)
    repeats = args.repeats or (1 if args.quick else 2)
    data = scenario(points)

    timed_run(scenario(20), "append")  # warm-up: imports, Sionna's first calls
    runs: dict[str, list[dict]] = {"rewrite": [], "append": []}
    tables = {}
    fsyncs: list[float] = []
    for r in range(repeats):
        for side in (("rewrite", "append") if r % 2 == 0 else ("append", "rewrite")):
            fsyncs += fsync_times()
            figures, tables[side] = timed_run(data, side)
            runs[side].append(figures)
    same = COLUMNS[:-2] + ["point_id"]  # every column but the wall time of a point
    identical = tables["rewrite"][same].equals(tables["append"][same])
    assert identical, "the two sides saved different results"

    report: dict = {"quick": args.quick, "points": points, "repeats": repeats, "rows_per_point": 2,
                    "sizes": {"link": "digital, uncoded QPSK, 64-bit blocks", "channel": "awgn",
                              "examples_per_point": 1, "batch_size": 1}}
    for side, figures in runs.items():
        report[side] = {name: round(min(f[name] for f in figures), 4) for name in figures[0]}
    report["ratios"] = {
        name: round(report["rewrite"][name] / report["append"][name], 3)
        for name in ("sweep_ms_per_point", "results_ms_per_point", "results_ms_last_tenth")
    }
    report["fsync_ms"] = round(statistics.median(fsyncs), 4)
    report["identical_results"] = identical
    report["environment"] = environment("cpu")
    write_json(report, args.output)

    print(f"sweep: {points} points x 1 example, 2 rows each; best of {repeats} per side, run alternately")
    print(f"{'ms per point':<28} {'rewrite':>9} {'append':>9} {'ratio':>7}")
    for name, label in (("sweep_ms_per_point", "whole sweep"), ("results_ms_per_point", "results write"),
                        ("results_ms_first_tenth", "  first tenth of points"),
                        ("results_ms_last_tenth", "  last tenth of points"),
                        ("manifest_ms_per_point", "manifest rewrite")):
        a, b = report["rewrite"][name], report["append"][name]
        print(f"{label:<28} {a:>9.3f} {b:>9.3f} {a / b:>7.2f}")
    print(f"one fsync here (median of {len(fsyncs)}): {report['fsync_ms']:.3f} ms")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
