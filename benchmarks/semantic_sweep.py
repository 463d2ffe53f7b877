"""Throughput of an SNR sweep of the ``rkdsc`` semantic link through semsim versus a plain per-point loop.

What is measured
    Images evaluated per second (one image through one (channel, SNR) point counts once) for an 18-point SNR
    sweep, -10..24 dB in steps of 2 dB (Es/N0), of the ``rkdsc`` link (distilled student + SNR-adaptive CAT
    encoder -> channel -> CAT decoder + classifier head, top-1 accuracy) over two channels, AWGN and Rayleigh
    block fading (one fade per image), on the embedded digits (``data: {type: digits}``), with a fixed number of
    test images per point (``target_errors: 0``, so every side evaluates exactly the same number of images).

    The link is built once before any clock starts (``link_build_seconds`` in the JSON, training included): its
    trained stages come from the artifact cache (``$SEMSIM_CACHE_DIR`` or ``.semsim-cache``). By default it uses
    the quickstart's link settings (``scenarios/quickstart.yaml``) with ``symbols: 16``; if the cache lacks them,
    the first run trains the full pipeline (about 2 minutes on 2 CPU cores), which is never timed. Four ways of
    running the sweep are timed, interleaved, each ``--repeats`` times (the best time counts), after a warm-up:

    * ``plain``: the loop of the authors' notebooks, no semsim engine: for each channel, for each SNR, for each
      batch of test images: ``link.models.student`` -> ``.encoder`` -> channel -> ``.decoder`` -> ``.head`` ->
      count correct, under ``torch.no_grad``. The test batches (the same images semsim draws) are sliced before
      the clock starts; the channels are the same ``AWGNChannel`` and ``RayleighChannel(fading="block")``
      objects the engine uses.
    * ``semsim``: the real end-to-end run, ``simulator.engine.sweep.run_scenario`` into a fresh temporary directory:
      loading the link from the cache (never training: the untimed build before it filled the cache), the
      Monte-Carlo loop, confidence intervals, ``results.csv``, ``table.md``, the plot, ``manifest.json``.
    * ``engine``: only the Monte-Carlo loop, ``simulator.engine.runner.run_points``, on the link and channels built
      before the clock starts (the same footing as ``plain``).
    * ``floor``: the least work this sweep needs, with no engine: the student once per batch (its output does
      not depend on the SNR), then for every channel, SNR point and batch the SNR-adaptive CAT encoder -> channel
      -> CAT decoder -> head -> count correct. What ``engine`` does beyond this is overhead.
    * ``receiver``: channel -> CAT decoder -> head -> count correct alone, for every channel, SNR point and
      batch, on transmitted symbols computed (student + encoder) before the clock starts: what a link whose
      transmitter does not depend on the SNR would cost at least.

    All sides use the same batch size, images per point, SNR grid, channels and device. The engine runs the
    SNR-independent student once per batch and reuses it for every point; the SNR-adaptive CAT encoder still
    runs once per (channel, SNR, batch), and the engine gives every point its own receiver call (so a point's
    numbers do not depend on which other points share the sweep).
    The plain loop runs the whole link once per point and batch.

How to run
    ``.venv/bin/python benchmarks/semantic_sweep.py`` (about 30 seconds on 2 CPU cores once the models are cached),
    or ``--quick`` for a smoke run of about 15 seconds: tiny training settings (as in ``tests/test_rkdsc.py``),
    trained into a temporary ``SEMSIM_CACHE_DIR``, 4 symbols per image, 6 SNR points (-10..20 dB in steps of
    6 dB), 120 images per point. ``--images`` and
    ``--batch-size`` change the sizes (default: 1,080 images per point in batches of 360, as the quickstart);
    ``--device cuda`` runs every side on a GPU, ``--threads`` sets torch's intra-op threads. Results are printed
    as a table and written to ``benchmarks/results/semantic_sweep.json`` (``--output`` to change).

How to read the ratios
    ``speedup = semsim images/s / plain images/s`` and ``engine_speedup = engine / plain`` for the same work:
    above 1, the sweep through semsim is faster than re-running the whole link for every SNR point.
    ``engine_to_floor = engine / floor`` is the engine's efficiency against the least work the sweep needs (1.0:
    no overhead); ``semsim_to_floor`` adds loading the link from the cache and writing the results.
    ``semsim_to_receiver`` and ``engine_to_receiver`` compare with the receiver alone; for this SNR-adaptive
    link the gap is mostly the CAT encoder, which runs once per point. ``plain_to_receiver`` shows how far the
    plain loop is from the receiver.

    Threads: every side runs at ``--threads`` torch threads (default 1, the scenario default that ``semsim``
    runs at), so that the sides compare like with like. Timings depend on machine load; compare ratios from one
    run, not absolute throughputs across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
import yaml
from _common import environment, load_average, synchronize, write_json
from sionna.phy.config import config as sionna_config

from simulator.channels.awgn import AWGNChannel
from simulator.channels.rayleigh import RayleighChannel
from simulator.config.assemble import build_data, build_link
from simulator.config.scenario import Scenario, parse_scenario
from simulator.core.channel import Channel
from simulator.engine.runner import run_points
from simulator.engine.sweep import plan_points, run_scenario

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "semantic_sweep.json"
QUICKSTART = REPO_ROOT / "scenarios" / "quickstart.yaml"
SNR_DB = [float(snr) for snr in range(-10, 25, 2)]  # 18 points
SYMBOLS = 16
DEFAULT_IMAGES, DEFAULT_BATCH = 1080, 360
QUICK_IMAGES, QUICK_BATCH, QUICK_SYMBOLS = 120, 120, 4
QUICK_SNR_DB = SNR_DB[::3]  # 6 points, -10..20 dB
NOISE_SEED = 1  # the plain loop's and the floor's channel noise (semsim seeds per point and batch)
SIDES = ("plain", "semsim", "engine", "floor", "receiver")
#: tiny training settings: ``TINY`` of tests/test_rkdsc.py with larger training batches (fewer steps), so
#: that ``--quick`` trains in a few seconds
QUICK_TRAINING = {
    "teacher": {"type": "vit", "dim": 16, "depth": 1, "heads": 2, "epochs": 1, "batch_size": 512},
    "search": {"cells": 1, "nodes": 1, "channels": 4, "epochs": 1, "batch_size": 512},
    "stage1": {"epochs": 1, "batch_size": 512},
    "stage2": {"epochs": 1, "batch_size": 512, "channels": ["awgn", "rayleigh"]},
    "cat": {"tokens": 2, "width": 8, "depth": 1, "heads": 1, "max_symbols": 8, "budgets": [4, 8]},
}
CHANNEL_SPECS = [{"name": "awgn", "type": "awgn"}, {"name": "rayleigh", "type": "rayleigh", "fading": "block"}]


@dataclass(frozen=True)
class Sizes:
    """The amount of work of one sweep."""

    snr_db: tuple[float, ...]
    images: int  # per (channel, SNR) point; a multiple of batch_size
    batch_size: int
    symbols: int

    @property
    def batches(self) -> int:
        return self.images // self.batch_size

    @property
    def images_per_run(self) -> int:
        """Images evaluated by one run of the whole sweep (every channel and SNR point)."""
        return len(CHANNEL_SPECS) * len(self.snr_db) * self.images

    def as_dict(self) -> dict:
        return {
            "channels": [spec["name"] for spec in CHANNEL_SPECS],
            "snr_db": list(self.snr_db),
            "images_per_point": self.images,
            "batch_size": self.batch_size,
            "batches_per_point": self.batches,
            "symbols_per_image": self.symbols,
            "images_per_run": self.images_per_run,
        }


@dataclass
class Run:
    """One timed run: wall ``seconds``, images evaluated and images classified correctly."""

    seconds: float
    images: int
    correct: int


def link_spec(quick: bool) -> dict:
    """The ``rkdsc`` link entry: the quickstart's settings with ``symbols: 16``, or tiny ones for ``--quick``."""
    if quick:
        return {"name": "rkdsc", "type": "rkdsc", "symbols": QUICK_SYMBOLS, **copy.deepcopy(QUICK_TRAINING)}
    quickstart = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    links = [link for link in quickstart["links"] if link.get("type") == "rkdsc"]
    spec = next((link for link in links if link.get("symbols") == SYMBOLS), links[0])
    return {**copy.deepcopy(spec), "name": "rkdsc", "symbols": SYMBOLS}


def make_scenario(spec: dict, sizes: Sizes, device: str, snr_db: list[float] | None = None,
                  images: int | None = None) -> Scenario:
    """The semsim scenario of the sweep (``snr_db`` and ``images`` override the grid and the budget)."""
    return parse_scenario({
        "name": "benchmark-semantic-sweep",
        "seed": 1,
        "device": device,
        "threads": torch.get_num_threads(),  # the benchmark's --threads, which every side runs at
        "data": {"type": "digits"},
        "links": [spec],
        "channels": copy.deepcopy(CHANNEL_SPECS),
        "snr_db": list(snr_db if snr_db is not None else sizes.snr_db),
        "metrics": ["accuracy"],
        "monte_carlo": {"batch_size": sizes.batch_size, "max_samples": images or sizes.images, "target_errors": 0},
    }, source="benchmark")


class Bench:
    """The link, its channels and the test batches, built once; the plain, receiver and engine runs."""

    def __init__(self, spec: dict, sizes: Sizes, device: str):
        self.spec_dict, self.sizes, self.device = spec, sizes, device
        self.scenario = make_scenario(spec, sizes, device)
        self.link_spec = self.scenario.links[0]
        t0 = time.perf_counter()
        self.link = build_link(self.link_spec, self.scenario, build_data(self.scenario))  # trains if not cached
        self.build_seconds = time.perf_counter() - t0
        self.models = self.link.models
        # the same channel objects for every side, keyed by the scenario's channel labels
        self.channels: dict[str, Channel] = {
            "awgn": AWGNChannel(device=device),
            "rayleigh": RayleighChannel(RayleighChannel.Params(fading="block"), device=device),
        }
        # the images semsim draws (batch b of the test permutation), sliced before any clock starts
        self.batches = [self.link.sample(b, sizes.batch_size, None) for b in range(sizes.batches)]

    # --- plain loop: the whole link at every point ---
    @torch.no_grad()
    def plain(self, snr_db: list[float], batches: int) -> tuple[int, int]:
        """For each channel, SNR and batch: student -> encoder -> channel -> decoder -> head; (images, correct)."""
        m, symbols = self.models, self.sizes.symbols
        images = 0
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        sionna_rng(self.device).manual_seed(NOISE_SEED)  # one seed per run, no reseeding per point or batch
        for channel in self.channels.values():
            for snr in snr_db:
                for batch in self.batches[:batches]:
                    x, labels = batch["images"], batch["labels"]
                    snr_t = torch.full((x.shape[0],), snr, device=self.device)
                    tx = m.encoder(m.student(x), snr_t, symbols)
                    rx = channel(tx, snr_t)
                    logits = m.head(m.decoder(rx.symbols, rx.no_eff, snr_t))
                    correct += (logits.argmax(dim=1) == labels).sum()
                    images += x.shape[0]
        return images, int(correct)

    # --- floor: the student once per batch, then encoder -> channel -> decoder -> head per point ---
    @torch.no_grad()
    def floor(self, snr_db: list[float], batches: int) -> tuple[int, int]:
        """The least work of the sweep, with no engine; (images, correct)."""
        m, symbols = self.models, self.sizes.symbols
        embeddings = [m.student(batch["images"]) for batch in self.batches[:batches]]
        images = 0
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        sionna_rng(self.device).manual_seed(NOISE_SEED)
        for channel in self.channels.values():
            for snr in snr_db:
                for batch, embedding in zip(self.batches[:batches], embeddings, strict=True):
                    snr_t = torch.full((embedding.shape[0],), snr, device=self.device)
                    rx = channel(m.encoder(embedding, snr_t, symbols), snr_t)
                    logits = m.head(m.decoder(rx.symbols, rx.no_eff, snr_t))
                    correct += (logits.argmax(dim=1) == batch["labels"]).sum()
                    images += embedding.shape[0]
        return images, int(correct)

    # --- receiver alone: channel -> decoder -> head on precomputed symbols ---
    @torch.no_grad()
    def transmitted(self, snr_db: list[float], batches: int) -> dict[tuple[float, int], torch.Tensor]:
        """Student + encoder output for every SNR and batch (computed before the receiver's clock starts)."""
        m = self.models
        out = {}
        for b, batch in enumerate(self.batches[:batches]):
            embedding = m.student(batch["images"])
            for snr in snr_db:
                snr_t = torch.full((embedding.shape[0],), snr, device=self.device)
                out[snr, b] = m.encoder(embedding, snr_t, self.sizes.symbols)
        return out

    @torch.no_grad()
    def receiver(self, tx: dict[tuple[float, int], torch.Tensor], snr_db: list[float], batches: int
                 ) -> tuple[int, int]:
        """For each channel, SNR and batch: channel -> decoder -> head on the given symbols; (images, correct)."""
        m = self.models
        images = 0
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        sionna_rng(self.device).manual_seed(NOISE_SEED)
        for channel in self.channels.values():
            for snr in snr_db:
                for b, batch in enumerate(self.batches[:batches]):
                    symbols = tx[snr, b]
                    snr_t = torch.full((symbols.shape[0],), snr, device=self.device)
                    rx = channel(symbols, snr_t)
                    logits = m.head(m.decoder(rx.symbols, rx.no_eff, snr_t))
                    correct += (logits.argmax(dim=1) == batch["labels"]).sum()
                    images += symbols.shape[0]
        return images, int(correct)

    # --- engine: run_points on the link and channels built above ---
    def engine(self, snr_db: list[float], images: int) -> tuple[int, int]:
        s = make_scenario(self.spec_dict, self.sizes, self.device, snr_db, images)
        points = [point for _, point in plan_points(s)]
        results = run_points(self.link, self.link_spec.key, self.channels, points, s.link_metrics(self.link_spec),
                             s.monte_carlo, s.seed, s.device)
        return sum(r.tallies["accuracy"][1] for r in results), sum(r.tallies["accuracy"][0] for r in results)

    # --- semsim: run_scenario end to end ---
    def semsim(self, snr_db: list[float], images: int) -> tuple[int, int]:
        s = make_scenario(self.spec_dict, self.sizes, self.device, snr_db, images)
        with tempfile.TemporaryDirectory(prefix="semsim-bench-") as out, \
                contextlib.redirect_stderr(io.StringIO()):  # the per-point log lines
            outcome = run_scenario(s, output_dir=out, progress=False)
        rows = outcome.table[outcome.table.metric == "accuracy"]
        return int(rows.trials.sum()), int(rows["count"].sum())


def sionna_rng(device: str) -> torch.Generator:
    """The generator Sionna's blocks (and so the channels) draw from on ``device``."""
    return sionna_config.torch_rng(device)


def timed(device: str, fn, *args) -> Run:
    """One timed call of ``fn`` returning ``(images, correct)``."""
    synchronize(device)
    t0 = time.perf_counter()
    images, correct = fn(*args)
    synchronize(device)
    return Run(time.perf_counter() - t0, images, correct)


def measure(bench: Bench, repeats: int) -> dict:
    """Warm up, then time the four sides interleaved ``repeats`` times."""
    sizes, device = bench.sizes, bench.device
    snr, batches = list(sizes.snr_db), sizes.batches
    # warm-up: one batch at two SNR points on each side (first calls allocate and load lazily)
    warm_snr = snr[:2]
    bench.plain(warm_snr, 1)
    bench.floor(warm_snr, 1)
    bench.receiver(bench.transmitted(warm_snr, 1), warm_snr, 1)
    bench.engine(warm_snr, sizes.batch_size)
    bench.semsim(warm_snr, sizes.batch_size)

    tx = bench.transmitted(snr, batches)  # the receiver floor's input, outside its clock
    runs: dict[str, list[Run]] = {side: [] for side in SIDES}
    for _ in range(repeats):
        runs["plain"].append(timed(device, bench.plain, snr, batches))
        runs["semsim"].append(timed(device, bench.semsim, snr, sizes.images))
        runs["engine"].append(timed(device, bench.engine, snr, sizes.images))
        runs["floor"].append(timed(device, bench.floor, snr, batches))
        runs["receiver"].append(timed(device, bench.receiver, tx, snr, batches))

    figures = {side: _summary(side, side_runs, sizes.images_per_run) for side, side_runs in runs.items()}
    rate = {side: figures[side]["images_per_s"] for side in SIDES}
    return {
        **figures,
        "ratios": {
            "speedup": rate["semsim"] / rate["plain"],
            "engine_speedup": rate["engine"] / rate["plain"],
            "engine_to_floor": rate["engine"] / rate["floor"],
            "semsim_to_floor": rate["semsim"] / rate["floor"],
            "semsim_to_receiver": rate["semsim"] / rate["receiver"],
            "engine_to_receiver": rate["engine"] / rate["receiver"],
            "plain_to_receiver": rate["plain"] / rate["receiver"],
        },
    }


def _summary(side: str, runs: list[Run], expected: int) -> dict:
    """Best (minimum) time of a side's runs and its throughput in images per second."""
    best = min(run.seconds for run in runs)
    images = runs[0].images
    if any(run.images != expected for run in runs):
        raise RuntimeError(f"{side}: runs evaluated {[r.images for r in runs]} images, expected {expected}")
    return {
        "best_seconds": best,
        "all_seconds": [run.seconds for run in runs],
        "images": images,
        "correct": runs[0].correct,
        "accuracy": runs[0].correct / images if images else math.nan,
        "images_per_s": images / best,
    }


def format_table(result: dict) -> str:
    """The printed summary table: one row per side."""
    header = f"{'side':<10}{'images':>10}{'best s':>10}{'images/s':>12}{'accuracy':>10}{'vs plain':>10}" \
             f"{'vs floor':>10}{'vs receiver':>13}"
    lines = [header, "-" * len(header)]
    for side in SIDES:
        f = result[side]
        lines.append(
            f"{side:<10}{f['images']:>10}{f['best_seconds']:>10.3f}{f['images_per_s']:>12.0f}{f['accuracy']:>10.3f}"
            f"{f['images_per_s'] / result['plain']['images_per_s']:>10.3f}"
            f"{f['images_per_s'] / result['floor']['images_per_s']:>10.3f}"
            f"{f['images_per_s'] / result['receiver']['images_per_s']:>13.3f}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, help=f"test images per (channel, SNR) point; rounded up to a multiple "
                        f"of the batch size (default {DEFAULT_IMAGES}, --quick {QUICK_IMAGES})")
    parser.add_argument("--batch-size", type=int, help=f"images per batch (default {DEFAULT_BATCH}, --quick "
                        f"{QUICK_BATCH})")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per side; the best counts (default 3, "
                        "--quick 1)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--device", default="cpu", help="torch device for every side (default: cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads of every side, semsim's "
                        "scenario included (default 1, the scenario default)")
    parser.add_argument("--quick", action="store_true", help="tiny models trained into a temporary cache, tiny "
                        "sizes, one repeat (smoke test)")
    args = parser.parse_args(argv)
    for name in ("images", "batch_size", "repeats", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return args


def resolve_sizes(args: argparse.Namespace) -> Sizes:
    batch = args.batch_size or (QUICK_BATCH if args.quick else DEFAULT_BATCH)
    images = args.images or (QUICK_IMAGES if args.quick else DEFAULT_IMAGES)
    images = math.ceil(images / batch) * batch
    if args.quick:
        return Sizes(tuple(QUICK_SNR_DB), images, batch, QUICK_SYMBOLS)
    return Sizes(tuple(SNR_DB), images, batch, SYMBOLS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda":
        args.device = "cuda:0"  # Sionna blocks accept only an indexed CUDA device
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with contextlib.ExitStack() as stack:
        if args.quick:  # tiny models, trained into a throw-away cache
            cache = stack.enter_context(tempfile.TemporaryDirectory(prefix="semsim-bench-cache-"))
            stack.enter_context(_env("SEMSIM_CACHE_DIR", cache))
        return run(args)


def run(args: argparse.Namespace) -> int:
    sizes = resolve_sizes(args)
    spec = link_spec(args.quick)
    cache = os.environ.get("SEMSIM_CACHE_DIR") or ".semsim-cache"
    print(f"[benchmark] rkdsc ({sizes.symbols} symbols per image): building the link from {cache} (trains the "
          "missing stages first)", file=sys.stderr, flush=True)
    bench = Bench(spec, sizes, args.device)
    print(f"[benchmark] link ready in {bench.build_seconds:.1f} s; {len(CHANNEL_SPECS)} channels x "
          f"{len(sizes.snr_db)} SNR points x {sizes.images} images (batch {sizes.batch_size}) = "
          f"{sizes.images_per_run} images per run, {args.repeats} repeats", file=sys.stderr, flush=True)
    load_before = load_average()
    result = measure(bench, args.repeats)
    report = {
        "benchmark": "semantic_sweep",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "unit": "images evaluated per second (one image at one channel and SNR point); seconds are wall time, "
                "best of repeats",
        "repeats": args.repeats,
        "quick": args.quick,
        "link": spec,
        "link_build_seconds": bench.build_seconds,
        "sizes": sizes.as_dict(),
        "environment": {**environment(args.device), "load_average_1min_before": load_before},
        **result,
    }
    write_json(report, args.output)
    print(format_table(result))
    r = result["ratios"]
    print(f"speedup semsim/plain {r['speedup']:.2f}, engine/plain {r['engine_speedup']:.2f}; engine/floor "
          f"{r['engine_to_floor']:.2f}, semsim/floor {r['semsim_to_floor']:.2f}; "
          f"semsim/receiver {r['semsim_to_receiver']:.2f}, engine/receiver {r['engine_to_receiver']:.2f}; "
          f"results in {args.output}")
    return 0


@contextlib.contextmanager
def _env(name: str, value: str):
    """Set an environment variable for the duration of the block."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


if __name__ == "__main__":
    sys.exit(main())
