"""Monte-Carlo evaluation of one link over many (channel, SNR) points at once.

For every Monte-Carlo batch the runner draws the payload and runs the SNR-independent transmitter once, reuses
it for every channel and SNR point still running, passes each point's channel output to the receiver (in calls
of one point's examples, cut the same way wherever the point runs), and adds the per-example metric counts to
each point's tally.
A point stops when it has ``target_errors`` errors of the link's first metric (and ``min_samples`` examples) or
``max_samples`` examples, as Sionna's ``sim_ber`` does.

Randomness: batch ``b``'s payload comes from ``derive_seed(seed, "source", b)`` and the channel of point
``(channel, snr)`` in batch ``b`` from ``derive_seed(seed, "channel", channel, snr, b)``. Receivers are
deterministic, and every call they see has the same examples wherever the point runs, so a point's result does
not depend on which other points ran beside it or on the executor; links compared in one scenario see the same
payloads and (for equal lengths) the same noise. Training and evaluation run at a fixed torch thread count
(:mod:`simulator.core.numerics`).

Per-example outcomes: for every metric whose trials are exactly 1 per example (``accuracy``; ``bler`` with one
block per example) the runner also keeps each example's count (0 or 1, in example order, batch 0 first) in
:attr:`PointResult.outcomes`, so that links can be compared example by example (:mod:`simulator.core.paired`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from simulator.core.channel import Channel
from simulator.core.checked_link import CheckedLink
from simulator.core.link import Link, TensorDict
from simulator.core.metrics import METRICS, Mean, Tally, mean_interval, merge_moments
from simulator.core.seeding import derive_seed, seeded

if TYPE_CHECKING:
    from simulator.config.scenario import MonteCarlo

@dataclass(frozen=True)
class Point:
    """One sweep point of a link: a channel (by label) and an SNR in dB, with the id of its result rows."""

    channel: str
    snr_db: float
    point_id: str = ""


@dataclass
class PointResult:
    """Accumulated counts of one point.

    Attributes:
        tallies: proportion metric -> ``[count, trials]`` summed over the point's examples.
        moments: mean metric -> ``[n, mean, M2]`` (values, their mean, sum of squared deviations) so far.
        outcomes: metric -> ``[examples]`` uint8 array of each example's count (0 or 1), in example order, for
            the metrics with exactly one trial per example; filled when the point finishes (:meth:`finish`).
    """

    link: str
    point: Point
    tallies: dict[str, list[int]] = field(default_factory=dict)
    moments: dict[str, list[float]] = field(default_factory=dict)
    examples: int = 0
    seconds: float = 0.0
    channel_uses: int = 0
    info_bits: int | None = None
    pilot_overhead: float = 0.0
    outcomes: dict[str, np.ndarray] = field(default_factory=dict, compare=False)
    #: per-batch outcome arrays while the point runs; ``None`` for a metric found not to be binary
    _batches: dict[str, list[np.ndarray] | None] = field(default_factory=dict, compare=False, repr=False)

    def errors(self, metric: str) -> int:
        """Errors of proportion ``metric`` so far."""
        count, trials = self.tallies.get(metric, (0, 0))
        return METRICS.resolve(metric).errors(count, trials)

    def half_width(self, metric: str, confidence: float) -> float:
        """Half-width of the t interval of mean ``metric`` so far (``inf`` with fewer than 2 values)."""
        low, high = mean_interval(*self.moments[metric], confidence)
        return (high - low) / 2 if math.isfinite(low) else math.inf

    def add_mean(self, metric: str, values: Mean) -> None:
        """Merge one batch of per-example values of mean ``metric``."""
        self.moments[metric] = list(merge_moments(tuple(self.moments[metric]), values.moments()))

    def record_outcomes(self, metric: str, tally: Tally) -> None:
        """Keep one batch's per-example counts of ``metric`` if every example has exactly one trial; a metric
        with any other number of trials in any batch keeps no outcomes."""
        batches = self._batches.setdefault(metric, [])
        if batches is None:
            return
        if not one_trial_per_example(tally):
            self._batches[metric] = None
            return
        batches.append(tally.count.detach().to("cpu", torch.uint8).numpy())

    def finish(self) -> None:
        """Join the kept per-batch outcomes into :attr:`outcomes` (called once the point stops)."""
        self.outcomes = {m: np.concatenate(b) for m, b in self._batches.items() if b}
        self._batches = {}


def one_trial_per_example(tally: Tally) -> bool:
    """Whether every example of ``tally`` counts exactly one trial (so its count is a 0/1 outcome)."""
    trials = tally.trials
    if isinstance(trials, torch.Tensor):
        return bool((trials == 1).all())
    return int(trials) == 1


@torch.no_grad()
def run_points(
    link: Link,
    link_label: str,
    channels: dict[str, Channel],
    points: list[Point],
    metrics: tuple[str, ...],
    budget: MonteCarlo,
    seed: int,
    device: str = "cpu",
    on_point_done: Callable[[PointResult], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> list[PointResult]:
    """Evaluate ``link`` at every point; returns the results in the order of ``points``.

    ``on_point_done`` is called as soon as a point meets its stopping rule (so results can be saved before the
    others finish); ``on_progress`` receives the number of examples each batch added, over all points, plus the
    unused budget of points that stopped early.
    """
    checked = CheckedLink(link, link_label)
    n = link.channel_uses
    means = {m for m in metrics if METRICS.resolve(m).kind == "mean"}
    results = {
        p: PointResult(
            link_label, p, {m: [0, 0] for m in metrics if m not in means}, channel_uses=n, info_bits=link.info_bits,
            pilot_overhead=channels[p.channel].pilot_overhead(n),
            moments={m: [0, 0.0, 0.0] for m in metrics if m in means},
        )
        for p in points
    }
    active = list(points)
    stop_metric = metrics[0] if metrics else None
    batch_size = budget.batch_size
    hint = link.receive_batch_hint
    call_limit = min(budget.max_receiver_batch, hint) if hint else budget.max_receiver_batch
    batch_index = 0
    while active:
        t0 = time.perf_counter()
        with seeded(derive_seed(seed, "source", batch_index), device) as generator:
            batch = checked.sample(batch_index, batch_size, generator)
        encoded = checked.encode(batch)
        shared_symbols = None if link.snr_adaptive else checked.transmit(encoded, examples=batch_size)
        shared_seconds = (time.perf_counter() - t0) / len(active)

        by_channel: dict[str, list[Point]] = {}
        for p in active:
            by_channel.setdefault(p.channel, []).append(p)
        for channel_label, channel_points in by_channel.items():
            _run_channel(checked, channels[channel_label], channel_points, batch, encoded,
                         shared_symbols, batch_index, seed, device, call_limit, results)
        for p in active:
            r = results[p]
            r.examples += batch_size
            r.seconds += shared_seconds

        still_active = []
        for p in active:
            r = results[p]
            if stop_metric is None or r.examples < budget.min_samples:
                precise_enough = False
            elif stop_metric in r.moments:
                precise_enough = (budget.target_half_width > 0
                                  and r.half_width(stop_metric, budget.confidence) <= budget.target_half_width)
            else:
                precise_enough = budget.target_errors > 0 and r.errors(stop_metric) >= budget.target_errors
            if precise_enough or r.examples >= budget.max_samples:
                r.finish()
                if on_point_done is not None:
                    on_point_done(r)
                if on_progress is not None:
                    on_progress(max(budget.max_samples - r.examples, 0))
            else:
                still_active.append(p)
        if on_progress is not None:
            on_progress(batch_size * len(active))
        active = still_active
        batch_index += 1
    return [results[p] for p in points]


def _run_channel(checked: CheckedLink, channel, points, batch, encoded, shared_symbols, batch_index, seed, device,
                 call_limit, results) -> None:
    """Transmitter (SNR-adaptive links), channel, receiver and scoring of one batch at each point on
    ``channel``. Every call covers one point's batch only, cut into the same equal pieces of at most
    ``call_limit`` examples wherever the point runs: a neural receiver's output depends in its last bits on how
    many examples share a call, so packing several points into one call would make a point's numbers depend on
    its companions (and on the executor's chunking)."""
    batch_size = next(iter(batch.values())).shape[0]
    pieces_of_batch = _chunks(batch_size, call_limit)
    for p in points:
        t0 = time.perf_counter()
        snr = torch.full((batch_size,), p.snr_db, dtype=torch.float32, device=device)
        symbols = shared_symbols
        if symbols is None:  # SNR-adaptive transmitter
            symbols = torch.cat([checked.transmit({k: v[part] for k, v in encoded.items()}, snr[part])
                                 for part in pieces_of_batch])
        with seeded(derive_seed(seed, "channel", p.channel, p.snr_db, batch_index), device):
            output = channel(symbols, snr)
        pieces = [checked.receive(output.slice(part.start, part.stop), snr[part]) for part in pieces_of_batch]
        estimate = {k: torch.cat([piece[k] for piece in pieces]) for k in pieces[0]}
        _score(checked, batch, estimate, results[p])
        results[p].seconds += time.perf_counter() - t0


def _score(checked: CheckedLink, batch: TensorDict, estimate: TensorDict, r: PointResult) -> None:
    """Add one batch's metric counts (or values) of one point to its result ``r``."""
    scores = checked.score(batch, estimate, (*r.tallies, *r.moments))
    for metric, acc in r.tallies.items():
        count, trials = scores[metric].totals()
        acc[0] += count
        acc[1] += trials
        r.record_outcomes(metric, scores[metric])
    for metric in r.moments:
        r.add_mean(metric, scores[metric])


def _chunks(total: int, limit: int) -> list[slice]:
    """``range(total)`` in equal consecutive slices of at most ``limit``."""
    size = math.ceil(total / math.ceil(total / limit))
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]
