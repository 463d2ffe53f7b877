"""OFDM channel cost: the closed-form receiver on the used resource elements against Sionna's blocks.

What is measured
    Microseconds per example of one ``OFDMChannel`` call (TDL-A, LS estimation with linear interpolation, LMMSE:
    the quickstart's ``ofdm-tdl-a``) at several symbol counts ``n`` per example, for

    * ``sionna``: Sionna's mapper, OFDM channel, ``LSChannelEstimator`` and ``LMMSEEqualizer`` on every RE of every
      grid (``implementation: sionna``, the reference);
    * ``closed-form``: the default, reading only ``symbols`` and ``no_eff`` (what every built-in receiver reads);
    * ``closed-form + raw``: the same, and then ``raw`` and ``state`` (what a receiver that equalises itself pays).

    The three take turns call by call in one process at one torch thread; the ratio is Sionna's time over the
    closed form's. A default grid holds 768 data REs, so ``n = 32`` fills 4 % of it and ``n = 768`` all of it.

    Peak memory: the resident-set peak of a fresh process that makes one call of ``--memory-batch`` examples of
    ``n = 32`` symbols (by default 10,000 and 40,000, to show whether it grows with the batch), minus that of a
    process that builds the same channel and input without calling it.

Run ``python benchmarks/ofdm_channel.py`` (``--quick`` for a small run); it prints two tables and writes
``benchmarks/results/ofdm_channel.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, write_json  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SIDES = ("sionna", "closed-form", "closed-form + raw")

#: one channel call in a fresh process (argv: implementation, batch, n, "call" or "build"); prints peak RSS in KiB
_MEMORY = """
import resource, sys, torch
torch.set_num_threads(1)
from simulator.channels.ofdm import OFDMChannel
from simulator.core.seeding import seeded
implementation, batch, n, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
channel = OFDMChannel(OFDMChannel.Params(implementation=implementation))
x = torch.ones(batch, n, dtype=torch.complex64)
if mode == "call":
    with seeded(0):
        out = channel(x, torch.full((batch,), 10.0))
    float(out.symbols.abs().mean())
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def time_calls(symbols: tuple[int, ...], batch: int, repeats: int) -> dict[str, dict[str, float]]:
    """Best microseconds per example of each side at each ``n``, the sides interleaved call by call."""
    from simulator.channels.ofdm import OFDMChannel
    from simulator.core.seeding import seeded

    channels = {"sionna": OFDMChannel(OFDMChannel.Params(implementation="sionna")),
                "closed-form": OFDMChannel(OFDMChannel.Params())}
    results = {}
    for n in symbols:
        generator = torch.Generator().manual_seed(n)
        x = torch.complex(torch.randn(batch, n, generator=generator), torch.randn(batch, n, generator=generator))
        x = (x / 2**0.5).to(torch.complex64)
        snr = torch.full((batch,), 10.0)
        best = dict.fromkeys(SIDES, float("inf"))
        for repeat in range(repeats + 1):  # the first round warms up
            for side in SIDES:
                channel = channels["sionna" if side == "sionna" else "closed-form"]
                start = time.perf_counter()
                with seeded(repeat):
                    out = channel(x, snr)
                    out.symbols.abs().sum().item()
                    if side == "closed-form + raw":
                        out.raw.abs().sum().item()
                seconds = time.perf_counter() - start
                if repeat:
                    best[side] = min(best[side], seconds)
        results[str(n)] = {side: best[side] / batch * 1e6 for side in SIDES}
        results[str(n)]["ratio"] = best["sionna"] / best["closed-form"]
        results[str(n)]["ratio_with_raw"] = best["sionna"] / best["closed-form + raw"]
    return results


def peak_memory(batch: int) -> dict[str, float]:
    """Peak resident MiB a call of ``batch`` 32-symbol examples adds, per implementation (0 where the call fits in
    memory the process had already taken and freed while importing)."""
    def peak(implementation: str, mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", _MEMORY, implementation, str(batch), "32", mode], cwd=REPO_ROOT,
                             check=True, capture_output=True, text=True).stdout.split()[-1]
        return int(out) / 1024

    return {implementation: peak(implementation, "call") - peak(implementation, "build")
            for implementation in ("sionna", "closed-form")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[32, 256, 768, 2000])
    parser.add_argument("--batch", type=int, default=360, help="examples per call (the quickstart's batch)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory-batch", type=int, nargs="+", default=[10_000, 40_000])
    parser.add_argument("--quick", action="store_true", help="n = 32, 20 examples, one repeat")
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" / "ofdm_channel.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.symbols, args.batch, args.repeats, args.memory_batch = [32], 20, 1, [500]
    torch.set_num_threads(1)

    timings = time_calls(tuple(args.symbols), args.batch, args.repeats)
    memory = {str(batch): peak_memory(batch) for batch in args.memory_batch}
    print(f"OFDM TDL-A, LS (lin) + LMMSE, {args.batch} examples per call, 1 thread: microseconds per example")
    print("| n | sionna | closed-form | closed-form + raw | x sionna | x sionna (with raw) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n, row in timings.items():
        print(f"| {n} | {row['sionna']:.0f} | {row['closed-form']:.0f} | {row['closed-form + raw']:.0f} "
              f"| {row['ratio']:.2f} | {row['ratio_with_raw']:.2f} |")
    for batch, added in memory.items():
        print(f"peak memory added by one call of {batch} examples of 32 symbols (MiB): "
              + ", ".join(f"{k} {v:.0f}" for k, v in added.items()))
    write_json({"environment": environment("cpu"), "batch": args.batch, "repeats": args.repeats,
                "us_per_example": timings, "memory_batch": args.memory_batch, "peak_mib_added": memory},
               Path(args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
