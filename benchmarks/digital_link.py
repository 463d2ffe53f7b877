"""Throughput of the digital link through semsim versus the same Sionna blocks in a plain loop.

What is measured
    Information bits simulated per second (Mbit/s = 1e6 information bits per second of wall time) for two
    configurations of the ``digital`` link over AWGN, each over an SNR grid with a fixed number of examples per
    SNR point (``target_errors: 0``, so every point runs its whole budget and both sides count exactly the same
    number of information bits):

    * ``uncoded``: QPSK, blocks of 1024 bits, APP demapper with hard decisions;
    * ``ldpc``: 5G LDPC k=512, n=1024 (rate 1/2), QPSK, APP demapper, 20 belief-propagation iterations, Sionna's
      ``LDPC5GDecoder`` on both sides (``decoder: sionna``; ``benchmarks/ldpc_decoders.py`` compares decoders).

    Three ways of running the same work are timed, interleaved, each ``--repeats`` times (the best time counts):

    * ``direct``: a plain Python loop over SNR points and batches, as in a Sionna tutorial: ``torch.randint`` bits
      -> ``LDPC5GEncoder`` -> ``Mapper`` -> ``AWGN`` -> ``Demapper`` -> ``LDPC5GDecoder`` -> count bit errors.
      No semsim code; blocks are built before the clock starts.
    * ``semsim``: the real end-to-end engine, ``simulator.engine.sweep.run_scenario`` on a scenario built with
      ``parse_scenario``: building the link, the Monte-Carlo loop, confidence intervals, ``results.csv``,
      ``table.md``, the plots and ``manifest.json`` (into a fresh temporary directory each time).
    * ``engine``: only the Monte-Carlo loop, ``simulator.engine.runner.run_points``, with the link and channel
      built before the clock starts (the same footing as ``direct``). ``semsim`` minus ``engine`` is the cost
      of building the link and writing results.

    Both sides use the same batch size, block sizes, SNR grid and device. They differ where the engine is
    designed to differ: semsim draws and encodes a batch once and reuses it for every SNR point, packs several
    SNR points into one receiver call (up to the link's ``receive_batch_hint``), reseeds its generators per batch
    and point, and also scores block errors (BLER). The plain loop does everything once per SNR point and batch.

How to run
    ``.venv/bin/python benchmarks/digital_link.py`` (about 1-2 minutes on 2 CPU cores), or with ``--quick`` for
    a smoke run of a few seconds. ``--examples``, ``--batch-size`` and ``--snr-points`` override both
    configurations' sizes; ``--device cuda`` runs both sides on a GPU. Results are printed as a table and
    written to ``benchmarks/results/digital_link.json`` (``--output`` to change).

How to read the ratio
    ``ratio = semsim Mbit/s / direct Mbit/s`` for the same work. 1.0 means the engine costs nothing over calling
    Sionna directly; the target is ``ratio >= 0.9`` (at most 10 % overhead). A ratio above 1 is possible: the
    engine's transmitter reuse and SNR packing can save more than its bookkeeping costs. ``engine_ratio`` is the
    same with the engine-only time. Timings depend on machine load; compare ratios from one run, not absolute
    throughputs across machines. Figures recorded so far, CPU and GPU: ``benchmarks/NOTES.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import torch
from _common import environment, load_average, synchronize, write_json
from sionna.phy.channel import AWGN
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import Constellation, Demapper, Mapper

from simulator.config.assemble import build_channel, build_link
from simulator.config.scenario import Scenario, parse_scenario
from simulator.engine.runner import run_points
from simulator.engine.sweep import plan_points, run_scenario

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "digital_link.json"
TARGET_RATIO = 0.9
SEED = 0


@dataclass(frozen=True)
class Config:
    """One benchmarked link configuration and its sizes.

    Attributes:
        name: label in the table and the JSON.
        bits_per_symbol: bits per QAM symbol (2 = QPSK).
        block_bits: information bits per block (per codeword when coded).
        coded_bits: coded bits per block (``n``); equal to ``block_bits`` when uncoded.
        ldpc: whether the block is 5G-LDPC coded.
        num_iter: LDPC belief-propagation iterations.
        snr_range_db: ``(low, high)`` Es/N0 in dB; the grid is ``snr_points`` evenly spaced values.
        snr_points: number of SNR points.
        examples: examples (blocks) per SNR point; a multiple of ``batch_size``.
        batch_size: examples per Monte-Carlo batch.
    """

    name: str
    bits_per_symbol: int
    block_bits: int
    coded_bits: int
    ldpc: bool
    num_iter: int
    snr_range_db: tuple[float, float]
    snr_points: int
    examples: int
    batch_size: int

    @property
    def snr_db(self) -> list[float]:
        """The SNR grid, Es/N0 in dB."""
        low, high = self.snr_range_db
        if self.snr_points == 1:
            return [round(low, 6)]
        step = (high - low) / (self.snr_points - 1)
        return [round(low + i * step, 6) for i in range(self.snr_points)]

    @property
    def info_bits_per_run(self) -> int:
        """Information bits one run of the whole grid simulates."""
        return self.examples * self.snr_points * self.block_bits

    def link_spec(self) -> dict:
        """The semsim ``digital`` link entry of the scenario."""
        spec = {"name": self.name, "type": "digital", "bits_per_symbol": self.bits_per_symbol}
        if self.ldpc:
            # Sionna's decoder, as the plain loop: this benchmark measures the engine, not the decoder (the numba
            # decoder, the default on a CPU, is compared with Sionna's in ldpc_decoders.py)
            spec["ldpc"] = {"k": self.block_bits, "n": self.coded_bits, "num_iter": self.num_iter, "decoder": "sionna"}
        else:
            spec["block_bits"] = self.block_bits
        return spec

    def sizes(self) -> dict:
        """Everything that sets the amount of work, for the JSON."""
        return {
            "bits_per_symbol": self.bits_per_symbol,
            "info_bits_per_block": self.block_bits,
            "coded_bits_per_block": self.coded_bits,
            "ldpc": self.ldpc,
            "ldpc_iterations": self.num_iter if self.ldpc else None,
            "snr_db": self.snr_db,
            "examples_per_point": self.examples,
            "batch_size": self.batch_size,
            "batches_per_point": self.examples // self.batch_size,
            "info_bits_per_run": self.info_bits_per_run,
        }


# Sized so that each configuration takes comparable time, a few seconds per timed run on 2 idle CPU cores
# (uncoded: 10-30 Mbit/s; LDPC decoding: 0.1-0.3 Mbit/s).
CONFIGS = (
    Config("uncoded", bits_per_symbol=2, block_bits=1024, coded_bits=1024, ldpc=False, num_iter=0,
           snr_range_db=(0.0, 10.0), snr_points=6, examples=10000, batch_size=1000),
    Config("ldpc", bits_per_symbol=2, block_bits=512, coded_bits=1024, ldpc=True, num_iter=20,
           snr_range_db=(-1.0, 4.0), snr_points=6, examples=200, batch_size=100),
)
QUICK = {"uncoded": {"examples": 64, "batch_size": 32, "snr_points": 2},
         "ldpc": {"examples": 16, "batch_size": 8, "snr_points": 2}}


@dataclass
class Run:
    """One timed run: wall ``seconds`` and the information bits and bit errors it counted."""

    seconds: float
    info_bits: int
    bit_errors: int


# --- direct side: Sionna blocks in a plain loop ----------------------------------------------------------------
class DirectLoop:
    """The configuration's Sionna blocks, built once, and the tutorial-style simulation loop."""

    def __init__(self, config: Config, device: str):
        self.config = config
        self.device = device
        m = config.bits_per_symbol
        constellation = Constellation("qam", m, normalize=True, device=device)
        self.mapper = Mapper(constellation=constellation, device=device)
        self.demapper = Demapper("app", constellation=constellation, hard_out=not config.ldpc, device=device)
        self.awgn = AWGN(device=device)
        if config.ldpc:
            self.encoder = LDPC5GEncoder(config.block_bits, config.coded_bits, num_bits_per_symbol=m, device=device)
            self.decoder = LDPC5GDecoder(self.encoder, num_iter=config.num_iter, hard_out=True, device=device)

    @torch.no_grad()
    def run(self, snr_db: list[float], examples: int, batch_size: int) -> tuple[int, int]:
        """Simulate ``examples`` blocks at each SNR (Es/N0, dB); returns ``(information bits, bit errors)``."""
        info_bits = 0
        errors = torch.zeros((), dtype=torch.int64, device=self.device)
        for snr in snr_db:
            no = 10.0 ** (-snr / 10.0)  # noise variance per complex symbol, unit-energy symbols
            for _ in range(examples // batch_size):
                bits = torch.randint(0, 2, (batch_size, self.config.block_bits), device=self.device)
                bits = bits.to(torch.float32)
                codewords = self.encoder(bits) if self.config.ldpc else bits
                y = self.awgn(self.mapper(codewords), no)
                llr = self.demapper(y, no)
                bits_hat = self.decoder(llr) if self.config.ldpc else llr
                errors += (bits_hat != bits).sum()
                info_bits += bits.numel()
        return info_bits, int(errors)


def time_direct(loop: DirectLoop, config: Config) -> Run:
    """One timed run of the plain loop (blocks already built)."""
    synchronize(loop.device)
    t0 = time.perf_counter()
    info_bits, errors = loop.run(config.snr_db, config.examples, config.batch_size)
    synchronize(loop.device)
    return Run(time.perf_counter() - t0, info_bits, errors)


# --- semsim side -----------------------------------------------------------------------------------------------
def scenario_for(config: Config, device: str) -> Scenario:
    """The semsim scenario running ``config`` over AWGN, every point for its full budget."""
    return parse_scenario({
        "name": f"benchmark-{config.name}",
        "seed": SEED,
        "device": device,
        "links": [config.link_spec()],
        "channels": [{"type": "awgn"}],
        "snr_db": config.snr_db,
        "monte_carlo": {"batch_size": config.batch_size, "max_samples": config.examples, "target_errors": 0},
    }, source="benchmark")


def time_semsim(config: Config, device: str) -> Run:
    """One timed end-to-end ``run_scenario`` (link building, Monte Carlo, all result files) into a fresh dir."""
    scenario = scenario_for(config, device)
    with tempfile.TemporaryDirectory(prefix="semsim-bench-") as out:
        synchronize(device)
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):  # the per-point log lines
            outcome = run_scenario(scenario, output_dir=out, progress=False)
        synchronize(device)
        seconds = time.perf_counter() - t0
    ber = outcome.table[outcome.table.metric == "ber"]
    return Run(seconds, int(ber.trials.sum()), int(ber["count"].sum()))


class EngineLoop:
    """``run_points`` on a link and channel built once (the engine's Monte-Carlo loop alone)."""

    def __init__(self, config: Config, device: str):
        self.scenario = scenario_for(config, device)
        self.spec = self.scenario.links[0]
        self.link = build_link(self.spec, self.scenario)
        self.channels = {spec.key: build_channel(spec, device) for spec in self.scenario.channels}
        self.points = [point for _, point in plan_points(self.scenario)]

    def time(self, examples: int | None = None, points: int | None = None) -> Run:
        """One timed ``run_points`` over the grid (``examples`` per point and the first ``points`` SNR points
        override the scenario's budget and grid)."""
        s = self.scenario
        budget = s.monte_carlo if examples is None else s.monte_carlo.model_copy(update={"max_samples": examples})
        synchronize(s.device)
        t0 = time.perf_counter()
        results = run_points(self.link, self.spec.key, self.channels, self.points[:points],
                             s.link_metrics(self.spec), budget, s.seed, s.device)
        synchronize(s.device)
        seconds = time.perf_counter() - t0
        return Run(seconds, sum(r.tallies["ber"][1] for r in results), sum(r.tallies["ber"][0] for r in results))


# --- measurement -----------------------------------------------------------------------------------------------
def measure(config: Config, device: str, repeats: int) -> dict:
    """Warm up, then time the three sides interleaved ``repeats`` times; the figures of one configuration."""
    direct = DirectLoop(config, device)
    engine = EngineLoop(config, device)
    # warm-up: one batch at up to two SNR points on each side (first calls allocate and load lazily)
    warm = replace(config, examples=config.batch_size, snr_points=min(config.snr_points, 2))
    direct.run(warm.snr_db, warm.examples, warm.batch_size)
    time_semsim(warm, device)
    engine.time(examples=warm.examples, points=warm.snr_points)

    runs: dict[str, list[Run]] = {"direct": [], "semsim": [], "engine": []}
    for _ in range(repeats):
        runs["direct"].append(time_direct(direct, config))
        runs["semsim"].append(time_semsim(config, device))
        runs["engine"].append(engine.time())

    figures = {side: _summary(side_runs) for side, side_runs in runs.items()}
    ratio = figures["semsim"]["mbit_per_s"] / figures["direct"]["mbit_per_s"]
    engine_ratio = figures["engine"]["mbit_per_s"] / figures["direct"]["mbit_per_s"]
    return {
        "sizes": config.sizes(),
        **figures,
        "ratio": ratio,
        "engine_ratio": engine_ratio,
        "meets_target": ratio >= TARGET_RATIO,
    }


def _summary(runs: list[Run]) -> dict:
    """Best (minimum) time of a side's runs and its throughput in Mbit/s of information bits."""
    best = min(run.seconds for run in runs)
    info_bits = runs[0].info_bits
    if any(run.info_bits != info_bits for run in runs):
        raise RuntimeError(f"runs counted different numbers of information bits: {[r.info_bits for r in runs]}")
    return {
        "best_seconds": best,
        "all_seconds": [run.seconds for run in runs],
        "info_bits": info_bits,
        "bit_errors": runs[0].bit_errors,
        "ber": runs[0].bit_errors / info_bits if info_bits else math.nan,
        "mbit_per_s": info_bits / best / 1e6,
    }


def format_table(configs: dict[str, dict]) -> str:
    """The printed summary table."""
    header = (f"{'config':<10}{'info Mbit':>11}{'direct Mbit/s':>15}{'semsim Mbit/s':>15}{'engine Mbit/s':>15}"
              f"{'semsim/direct':>15}{'engine/direct':>15}")
    lines = [header, "-" * len(header)]
    for name, c in configs.items():
        lines.append(
            f"{name:<10}{c['sizes']['info_bits_per_run'] / 1e6:>11.2f}{c['direct']['mbit_per_s']:>15.3f}"
            f"{c['semsim']['mbit_per_s']:>15.3f}{c['engine']['mbit_per_s']:>15.3f}{c['ratio']:>15.3f}"
            f"{c['engine_ratio']:>15.3f}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--examples", type=int, help="examples (blocks) per SNR point; rounded up to a multiple "
                        "of the batch size (default: per configuration, 10000 uncoded, 200 LDPC)")
    parser.add_argument("--batch-size", type=int, help="examples per batch (default: 1000 uncoded, 100 LDPC)")
    parser.add_argument("--snr-points", type=int, help="number of SNR points (default: 6)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per side; the best counts (default 3)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--device", default="cpu", help="torch device for both sides (default: cpu)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads for both sides (default: torch's "
                        f"default, {torch.get_num_threads()} here)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repeat (smoke test)")
    args = parser.parse_args(argv)
    for name in ("examples", "batch_size", "snr_points", "repeats", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return args


def resolve_configs(args: argparse.Namespace) -> list[Config]:
    """The configurations with ``--quick`` and explicit size flags applied."""
    configs = []
    for config in CONFIGS:
        if args.quick:
            config = replace(config, **QUICK[config.name])
        overrides = {k: getattr(args, k) for k in ("examples", "batch_size", "snr_points") if getattr(args, k)}
        config = replace(config, **overrides)
        examples = math.ceil(config.examples / config.batch_size) * config.batch_size
        configs.append(replace(config, examples=examples))
    return configs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda":
        args.device = "cuda:0"  # Sionna blocks accept only an indexed CUDA device
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    load_before = load_average()
    results = {}
    for config in resolve_configs(args):
        print(f"[benchmark] {config.name}: {config.snr_points} SNR points x {config.examples} examples "
              f"(batch {config.batch_size}), {config.info_bits_per_run / 1e6:.2f} Mbit per run, "
              f"{args.repeats} repeats", file=sys.stderr, flush=True)
        results[config.name] = measure(config, args.device, args.repeats)
    report = {
        "benchmark": "digital_link",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "unit": "Mbit/s of information bits (1e6 bit/s); seconds are wall time, best of repeats",
        "target_ratio": TARGET_RATIO,
        "repeats": args.repeats,
        "quick": args.quick,
        "environment": {**environment(args.device), "load_average_1min_before": load_before},
        "configs": results,
    }
    write_json(report, args.output)
    print(format_table(results))
    print(f"ratio = semsim / direct throughput (target >= {TARGET_RATIO}); results in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
