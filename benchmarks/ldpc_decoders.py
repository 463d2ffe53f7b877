"""LDPC decoders side by side: Sionna's ``LDPC5GDecoder`` against the numba CPU decoder, on identical LLRs.

What is measured
    For each code and Eb/N0 point, ``--codewords`` random information words are 5G-LDPC encoded (Sionna's
    ``LDPC5GEncoder``, rate matching and output interleaver), QAM-mapped, sent over AWGN and demapped (APP) once;
    every decoder then decodes exactly these LLRs, in calls of ``--batch-size`` codewords, with 20 iterations at
    most. Per decoder and point: information throughput (Mbit/s = 1e6 information bits decoded per second of
    wall time, one thread: torch and numba both on one core), the ratio to Sionna's throughput on the same calls,
    the block error rate with its 95 % Wilson interval, the bit error rate, the mean iterations (the numba decoder
    stops a codeword once every parity check holds; Sionna always runs 20), and how many codewords a decoder
    decoded differently from Sionna.

    Decoders: ``sionna`` (reference; exact boxplus, ``cn_update: boxplus-phi``), ``numba`` (the same rule), and
    the numba decoder's min-sum rules ``numba-minsum``, ``numba-offset-minsum``, ``numba-normalized-minsum``.
    Codes: k=512 n=1024 QPSK (base graph 2, 128 filler bits) and k=768 n=1024 16-QAM (base graph 1, rate 3/4,
    24 filler bits, heavily punctured).

    The decoders take turns call by call (one batch through every decoder, then the next batch), so that a change
    in machine load hits all of them alike; the ratios are what to compare, not absolute throughputs.

    First-call cost: two fresh Python processes share a new, empty numba cache directory; each times its first
    decoder call (the first compiles the kernel and writes the cache, the second loads it) and a second call.

How to run
    ``.venv/bin/python benchmarks/ldpc_decoders.py`` (3-6 minutes on 2 CPU cores, most of it Sionna), or
    ``--quick`` for a smoke run of a few seconds (tiny sizes, no first-call measurement). Results are printed as a
    table and written to ``benchmarks/results/ldpc_decoders.json`` (``--output`` to change). Figures recorded so
    far: ``benchmarks/NOTES.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from _common import environment, load_average, write_json
from sionna.phy.fec.ldpc import LDPC5GEncoder
from sionna.phy.mapping import Constellation, Demapper, Mapper
from sionna.phy.utils import ebnodb2no

from links.modem import build_ldpc_decoder
from links.params import LDPCParams
from simulator.core.metrics import proportion_interval

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "ldpc_decoders.json"
SEED = 0
NUM_ITER = 20
REFERENCE = "sionna"
#: name -> (decoder, cn_update)
DECODERS = {
    "sionna": ("sionna", "boxplus-phi"),
    "numba": ("numba", "boxplus-phi"),
    "numba-minsum": ("numba", "minsum"),
    "numba-offset-minsum": ("numba", "offset-minsum"),
    "numba-normalized-minsum": ("numba", "normalized-minsum"),
}


@dataclass(frozen=True)
class Code:
    """One benchmarked code: ``k`` information bits, ``n`` coded bits, 2^m-QAM, an Eb/N0 grid (dB)."""

    name: str
    k: int
    n: int
    bits_per_symbol: int
    ebno_db: tuple[float, ...]


CODES = (
    Code("k512-n1024-qpsk", 512, 1024, 2, (1.0, 1.5, 2.0, 2.5)),
    Code("k768-n1024-16qam", 768, 1024, 4, (5.0, 5.5, 6.0, 6.5)),
)


def make_llrs(code: Code, ebno_db: float, codewords: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(bits [codewords, k], llr [codewords, n])``: random words, encoded, mapped, AWGN at ``ebno_db``, APP-demapped
    (Sionna's logits, ``log p(1)/p(0)``). Deterministic in ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    m = code.bits_per_symbol
    encoder = LDPC5GEncoder(code.k, code.n, num_bits_per_symbol=m)
    constellation = Constellation("pam" if m == 1 else "qam", m, normalize=True)
    bits = torch.randint(0, 2, (codewords, code.k), generator=generator).float()
    symbols = Mapper(constellation=constellation)(encoder(bits))
    no = float(ebnodb2no(ebno_db, m, code.k / code.n))  # noise variance per complex symbol (unit-energy symbols)
    noise = torch.complex(*(torch.randn(symbols.shape, generator=generator) for _ in range(2)))
    llr = Demapper("app", constellation=constellation)(symbols + (no / 2) ** 0.5 * noise, torch.tensor(no))
    return bits, llr


def build_decoders(code: Code, names: list[str]) -> dict:
    """Each named decoder for ``code``'s encoder (all on the CPU)."""
    encoder = LDPC5GEncoder(code.k, code.n, num_bits_per_symbol=code.bits_per_symbol)
    decoders = {}
    for name in names:
        decoder, cn_update = DECODERS[name]
        params = LDPCParams(k=code.k, n=code.n, num_iter=NUM_ITER, cn_update=cn_update, decoder=decoder)
        decoders[name] = build_ldpc_decoder(encoder, params, decoder)
        if decoder == "numba":
            decoders[name].threads = 1
    return decoders


@torch.no_grad()
def measure_point(code: Code, ebno_db: float, codewords: int, batch_size: int, names: list[str]) -> dict:
    """All decoders on the same LLRs of one point, call by call in turn; figures per decoder."""
    bits, llr = make_llrs(code, ebno_db, codewords, seed=SEED + int(round(ebno_db * 1000)))
    decoders = build_decoders(code, names)
    for decoder in decoders.values():  # warm-up: first calls allocate, load lazily, compile
        decoder(llr[:2])
    seconds = dict.fromkeys(names, 0.0)
    decoded = {name: [] for name in names}
    iterations = {name: [] for name in names}
    for start in range(0, codewords, batch_size):
        batch = llr[start:start + batch_size]
        for name, decoder in decoders.items():
            t0 = time.perf_counter()
            out = decoder(batch)
            seconds[name] += time.perf_counter() - t0
            decoded[name].append(out)
            iterations[name].append(getattr(decoder, "last_iterations", np.full(len(batch), NUM_ITER)))
    reference = torch.cat(decoded[REFERENCE]) if REFERENCE in decoded else None
    figures = {}
    for name in names:
        out = torch.cat(decoded[name])
        block_errors = int((out != bits).any(dim=1).sum())
        low, high = proportion_interval(block_errors, codewords)
        figures[name] = {
            "seconds": seconds[name],
            "mbit_per_s": codewords * code.k / seconds[name] / 1e6,
            "block_errors": block_errors,
            "bler": block_errors / codewords,
            "bler_ci95": [low, high],
            "bit_errors": int((out != bits).sum()),
            "ber": float((out != bits).float().mean()),
            "mean_iterations": float(np.concatenate(iterations[name]).mean()),
            "differ_from_reference": None if reference is None else int((out != reference).any(dim=1).sum()),
        }
    if REFERENCE in figures:
        for name in names:
            figures[name]["speedup"] = figures[REFERENCE]["seconds"] / figures[name]["seconds"]
    return {"ebno_db": ebno_db, "codewords": codewords, "decoders": figures}


def summarise(points: list[dict], names: list[str], k: int) -> dict:
    """Throughput over all points of a code (same work for every decoder) and its ratio to the reference."""
    summary = {}
    for name in names:
        seconds = sum(p["decoders"][name]["seconds"] for p in points)
        bits = sum(p["codewords"] for p in points) * k
        summary[name] = {"seconds": seconds, "mbit_per_s": bits / seconds / 1e6}
    if REFERENCE in summary:
        for name in names:
            summary[name]["speedup"] = summary[REFERENCE]["seconds"] / summary[name]["seconds"]
    return summary


FIRST_CALL_SCRIPT = """
import json, time
t0 = time.perf_counter()
import numpy as np
from sionna.phy.fec.ldpc import LDPC5GEncoder
from links.ldpc_cpu import NumbaLDPC5GDecoder
t1 = time.perf_counter()
decoder = NumbaLDPC5GDecoder(LDPC5GEncoder(512, 1024, num_bits_per_symbol=2), threads=1)
llr = np.zeros((8, 1024), np.float32)
t2 = time.perf_counter()
decoder(llr)
t3 = time.perf_counter()
decoder(llr)
t4 = time.perf_counter()
print(json.dumps({"import_seconds": t1 - t0, "first_call_seconds": t3 - t2, "second_call_seconds": t4 - t3}))
"""


def first_call_cost() -> dict:
    """First-call seconds of the numba decoder in two fresh processes sharing a new cache: compile, then load."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="semsim-numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
        for label in ("cold_cache", "warm_cache"):
            proc = subprocess.run([sys.executable, "-c", FIRST_CALL_SCRIPT], capture_output=True, text=True,
                                  env=env, cwd=REPO_ROOT, timeout=300)
            if proc.returncode:
                raise RuntimeError(f"first-call measurement failed: {proc.stderr[-2000:]}")
            results[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def format_table(codes: dict[str, dict], names: list[str]) -> str:
    """The printed table: one row per code, point and decoder."""
    header = (f"{'code':<18}{'Eb/N0':>6}  {'decoder':<24}{'Mbit/s':>8}{'x sionna':>9}{'BLER':>9}  "
              f"{'95% interval':<18}{'iters':>6}{'differ':>7}")
    lines = [header, "-" * len(header)]
    for code_name, result in codes.items():
        for point in result["points"]:
            for name in names:
                f = point["decoders"][name]
                low, high = f["bler_ci95"]
                speedup = f"{f['speedup']:.2f}" if "speedup" in f else "-"
                differ = "-" if f["differ_from_reference"] is None else str(f["differ_from_reference"])
                lines.append(f"{code_name:<18}{point['ebno_db']:>6.2f}  {name:<24}{f['mbit_per_s']:>8.3f}"
                             f"{speedup:>9}{f['bler']:>9.4f}  [{low:.4f}, {high:.4f}]  "
                             f"{f['mean_iterations']:>6.2f}{differ:>7}")
        for name, s in result["summary"].items():
            speedup = f"{s['speedup']:.2f}" if "speedup" in s else "-"
            lines.append(f"{code_name:<18}{'all':>6}  {name:<24}{s['mbit_per_s']:>8.3f}{speedup:>9}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--codewords", type=int, help="codewords per Eb/N0 point (default 2000; quick: 8)")
    parser.add_argument("--batch-size", type=int, default=None, help="codewords per decoder call (default 100)")
    parser.add_argument("--points", type=int, help="the first POINTS Eb/N0 points of each code (default: all 4; "
                        "quick: 1)")
    parser.add_argument("--decoders", nargs="+", choices=list(DECODERS), default=list(DECODERS),
                        help="decoders to compare (default: all; the ratio needs sionna)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no first-call measurement (smoke test)")
    parser.add_argument("--no-first-call", action="store_true", help="skip the first-call (compile) measurement")
    args = parser.parse_args(argv)
    for name in ("codewords", "batch_size", "points"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    args.codewords = args.codewords or (8 if args.quick else 2000)
    args.batch_size = args.batch_size or (8 if args.quick else 100)
    args.points = args.points or (1 if args.quick else None)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)  # per core: Sionna's torch ops and the numba decoder on one thread each
    load_before = load_average()
    names = list(dict.fromkeys(args.decoders))
    codes = {}
    for code in CODES:
        code = replace(code, ebno_db=code.ebno_db[:args.points])
        print(f"[benchmark] {code.name}: Eb/N0 {list(code.ebno_db)} dB x {args.codewords} codewords "
              f"(calls of {args.batch_size}), decoders {', '.join(names)}", file=sys.stderr, flush=True)
        points = [measure_point(code, ebno, args.codewords, args.batch_size, names) for ebno in code.ebno_db]
        codes[code.name] = {"k": code.k, "n": code.n, "bits_per_symbol": code.bits_per_symbol, "points": points,
                            "summary": summarise(points, names, code.k)}
    first_call = None if args.quick or args.no_first_call else first_call_cost()
    report = {
        "benchmark": "ldpc_decoders",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "unit": "Mbit/s of decoded information bits (1e6 bit/s), one thread; speedup = sionna seconds / decoder "
                "seconds on the same calls, taken in turn in one process",
        "num_iter": NUM_ITER,
        "batch_size": args.batch_size,
        "quick": args.quick,
        "decoders": {name: {"decoder": d, "cn_update": cn} for name, (d, cn) in DECODERS.items() if name in names},
        "environment": {**environment("cpu"), "load_average_1min_before": load_before},
        "codes": codes,
        "first_call": first_call,
    }
    write_json(report, args.output)
    print(format_table(codes, names))
    if first_call:
        cold, warm = first_call["cold_cache"], first_call["warm_cache"]
        print(f"numba first call: {cold['first_call_seconds']:.2f} s compiling (empty cache), "
              f"{warm['first_call_seconds']:.2f} s from the cache; imports {warm['import_seconds']:.2f} s")
    print(f"x sionna = decoder throughput / Sionna's on the same calls (same run); results in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
