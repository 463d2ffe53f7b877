"""Per-call cost of the PyTorch <-> TensorFlow bridge versus tensor size, against copying through numpy.

What is measured
    Wall time per call, in microseconds, of moving one float32 tensor of ``n`` elements between the frameworks on
    the CPU, for ``n`` log-spaced from 1 to 2^24 (64 MiB), six ways, in one run:

    * ``to_tf``: ``simulator.interop.bridge.to_tf(x)`` (DLPack, zero-copy);
    * ``to_torch``: ``simulator.interop.bridge.to_torch(t)`` (DLPack, zero-copy);
    * ``round_trip``: ``to_torch(to_tf(x))``;
    * ``numpy_to_tf``: ``tf.convert_to_tensor(x.numpy())`` (one copy: TensorFlow copies the array);
    * ``numpy_to_torch``: ``torch.from_numpy(t.numpy())`` (one copy: ``t.numpy()`` copies the tensor);
    * ``numpy_round_trip``: ``torch.from_numpy(tf.convert_to_tensor(x.numpy()).numpy())`` (two copies).

    The run first checks that the numpy paths really copy and the bridge really shares (by writing through one
    side and reading the other); the JSON records it. Each figure is the median over ``--repeats`` samples; a
    sample times a loop of calls long enough (about 2 ms) for the clock, and the six ways are interleaved within
    each repeat so that they see the same machine load.

How to run
    ``.venv/bin/python benchmarks/bridge.py`` (about 10-20 s on 2 CPU cores; needs the ``tf`` extra), or
    ``--quick`` (sizes 1, 2^10 and 2^20, a few seconds). Results are printed as a table and written to
    ``benchmarks/results/bridge.json`` (``--output`` to change).

How to read it
    The bridge's cost should not grow with the size (``overhead_us``: its median over sizes, and ``spread``: the
    slowest size over the fastest); the numpy copy grows linearly. ``crossover`` is, per direction, the smallest
    measured size from which the bridge is cheaper than the numpy copy at that size and every larger one (1 when it
    is cheaper everywhere, ``null`` when never). Timings depend on load: compare the columns of one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
from _common import environment, load_average, write_json

from simulator.interop.bridge import import_tf, to_tf, to_torch

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "bridge.json"
SIZES = [4 ** k for k in range(13)]  # 1 .. 2^24 elements
QUICK_SIZES = [1, 2 ** 10, 2 ** 20]
WAYS = ("to_tf", "to_torch", "round_trip", "numpy_to_tf", "numpy_to_torch", "numpy_round_trip")
DIRECTIONS = {"to_tf": "numpy_to_tf", "to_torch": "numpy_to_torch", "round_trip": "numpy_round_trip"}
SAMPLE_SECONDS = 2e-3
SEED = 0


def make_calls(n: int) -> dict[str, Callable[[], object]]:
    """The six ways of moving ``n`` float32 elements, as zero-argument callables."""
    tf = import_tf()
    x = torch.randn(n, generator=torch.Generator().manual_seed(SEED))
    t = tf.random.stateless_normal([n], seed=[SEED, 1])
    return {
        "to_tf": lambda: to_tf(x),
        "to_torch": lambda: to_torch(t),
        "round_trip": lambda: to_torch(to_tf(x)),
        "numpy_to_tf": lambda: tf.convert_to_tensor(x.numpy()),
        "numpy_to_torch": lambda: torch.from_numpy(t.numpy()),
        "numpy_round_trip": lambda: torch.from_numpy(tf.convert_to_tensor(x.numpy()).numpy()),
    }


def check_sharing() -> dict[str, bool]:
    """Whether each way shares memory (True) or copies (False), found by writing through one side."""
    tf = import_tf()
    result = {}
    x = torch.zeros(1024)
    for way, convert in (("to_tf", to_tf), ("numpy_to_tf", lambda a: tf.convert_to_tensor(a.numpy()))):
        x.zero_()
        t = convert(x)
        x[0] = 1.0
        result[way] = bool(t.numpy()[0] == 1.0)
    for way, convert in (("to_torch", to_torch), ("numpy_to_torch", lambda a: torch.from_numpy(a.numpy()))):
        t = tf.cast(tf.fill([1024], 0), tf.float32)
        y = convert(t)
        y[0] = 1.0
        result[way] = bool(t.numpy()[0] == 1.0)
    return result


def _loop_count(call: Callable[[], object]) -> int:
    """Calls per sample so that one sample lasts about ``SAMPLE_SECONDS``."""
    call()  # warm-up
    t0 = time.perf_counter()
    call()
    once = time.perf_counter() - t0
    return max(1, min(10_000, int(SAMPLE_SECONDS / max(once, 1e-7))))


def measure_size(n: int, repeats: int) -> dict:
    """Median microseconds per call of each way at ``n`` elements."""
    calls = make_calls(n)
    loops = {way: _loop_count(call) for way, call in calls.items()}
    samples: dict[str, list[float]] = {way: [] for way in WAYS}
    for _ in range(repeats):
        for way in WAYS:
            call, count = calls[way], loops[way]
            t0 = time.perf_counter()
            for _ in range(count):
                call()
            samples[way].append((time.perf_counter() - t0) / count * 1e6)
    row = {"elements": n, "bytes": 4 * n, "calls_per_sample": loops}
    row.update({f"{way}_us": statistics.median(samples[way]) for way in WAYS})
    return row


def crossover(rows: list[dict], bridge: str, numpy_way: str) -> int | None:
    """Smallest measured size from which ``bridge`` is cheaper than ``numpy_way`` at every larger size too."""
    result = None
    for row in reversed(rows):
        if row[f"{bridge}_us"] < row[f"{numpy_way}_us"]:
            result = row["elements"]
        else:
            break
    return result


def summarise(rows: list[dict]) -> dict:
    """Crossover sizes and the bridge's per-call overhead (median over sizes, and its spread)."""
    summary: dict = {"crossover_elements": {}, "overhead_us": {}, "spread": {}, "speedup_at_largest": {}}
    for bridge, numpy_way in DIRECTIONS.items():
        times = [row[f"{bridge}_us"] for row in rows]
        summary["crossover_elements"][bridge] = crossover(rows, bridge, numpy_way)
        summary["overhead_us"][bridge] = statistics.median(times)
        summary["spread"][bridge] = max(times) / min(times)
        summary["speedup_at_largest"][bridge] = rows[-1][f"{numpy_way}_us"] / rows[-1][f"{bridge}_us"]
    largest = rows[-1]
    summary["numpy_copy_gb_per_s_at_largest"] = largest["bytes"] / (largest["numpy_to_tf_us"] * 1e-6) / 1e9
    return summary


def format_table(rows: list[dict], summary: dict) -> str:
    """The printed table (microseconds per call) and the summary lines."""
    header = f"{'elements':>10}{'MiB':>9}" + "".join(f"{way:>18}" for way in WAYS)
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row['elements']:>10}{row['bytes'] / 2 ** 20:>9.3f}"
                     + "".join(f"{row[f'{way}_us']:>18.2f}" for way in WAYS))
    lines.append("microseconds per call, median of repeats (float32, CPU)")
    for bridge in DIRECTIONS:
        cross = summary["crossover_elements"][bridge]
        where = "never" if cross is None else ("every size measured" if cross == rows[0]["elements"]
                                               else f"from {cross} elements ({4 * cross} bytes)")
        lines.append(f"{bridge}: overhead {summary['overhead_us'][bridge]:.2f} us per call (spread "
                     f"{summary['spread'][bridge]:.2f}x over sizes); cheaper than numpy {where}; "
                     f"{summary['speedup_at_largest'][bridge]:.0f}x faster at the largest size")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="sizes 1, 2^10 and 2^20 only, fewer repeats")
    parser.add_argument("--repeats", type=int, help="samples per way and size; the median counts (default 15, "
                        "quick 7)")
    parser.add_argument("--max-log2", type=int, help="largest size as a power of two (default 24)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's default)")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.max_log2 is not None and not 0 <= args.max_log2 <= 28:
        parser.error("--max-log2 must be between 0 and 28")
    if args.repeats is None:
        args.repeats = 7 if args.quick else 15
    return args


def sizes_for(args: argparse.Namespace) -> list[int]:
    """The element counts to measure."""
    if args.quick:
        sizes = QUICK_SIZES
    else:
        sizes = SIZES
    if args.max_log2 is not None:
        sizes = [n for n in sizes if n <= 2 ** args.max_log2]
        if 2 ** args.max_log2 not in sizes:
            sizes.append(2 ** args.max_log2)
    return sizes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tf = import_tf()
    load_before = load_average()
    sharing = check_sharing()
    sizes = sizes_for(args)
    print(f"[benchmark] bridge: {len(sizes)} sizes from {sizes[0]} to {sizes[-1]} float32 elements, "
          f"{args.repeats} repeats", file=sys.stderr, flush=True)
    rows = [measure_size(n, args.repeats) for n in sizes]
    summary = summarise(rows)
    env = environment("cpu")
    env["versions"]["tensorflow"] = tf.__version__
    report = {
        "benchmark": "bridge",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "unit": "microseconds of wall time per call, median of repeats; float32 tensors on the CPU",
        "quick": args.quick,
        "repeats": args.repeats,
        "dtype": "float32",
        "ways": {
            "to_tf": "simulator.interop.bridge.to_tf(x)",
            "to_torch": "simulator.interop.bridge.to_torch(t)",
            "round_trip": "to_torch(to_tf(x))",
            "numpy_to_tf": "tf.convert_to_tensor(x.numpy())",
            "numpy_to_torch": "torch.from_numpy(t.numpy())",
            "numpy_round_trip": "torch.from_numpy(tf.convert_to_tensor(x.numpy()).numpy())",
        },
        "shares_memory": sharing,
        "rows": rows,
        **summary,
        "environment": {**env, "load_average_1min_before": load_before},
    }
    write_json(report, args.output)
    print(format_table(rows, summary))
    print(f"results in {args.output}")
    if not (sharing["to_tf"] and sharing["to_torch"]) or sharing["numpy_to_tf"] or sharing["numpy_to_torch"]:
        print(f"warning: sharing is not as expected: {sharing}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
