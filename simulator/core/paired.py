"""Paired comparison of two links on the same examples: difference of proportions, its interval, McNemar's test.

Every link of a scenario sees the same examples in the same order (batch ``b`` of the data source, or of the
payload generator) and, when two links have the same channel uses, the same channel noise at each (channel, SNR)
point (:mod:`simulator.core.seeding`). Their per-example 0/1 outcomes (:mod:`simulator.io.outcomes`) therefore form
pairs, and the difference between the links is estimated much more sharply from the pairs than from two independent
intervals: what both links get right (or wrong) cancels.

For two aligned outcome vectors ``link`` and ``ref`` (``[n]``, 0 or 1: a correct image for ``accuracy``, a block
error for ``bler``) the 2x2 table of pairs is::

                 ref = 1   ref = 0
    link = 1     both      only_link
    link = 0     only_ref  neither

and the estimate is ``p_link - p_ref = (only_link - only_ref) / n``. Its interval is Newcombe's hybrid score
interval for paired proportions (R. G. Newcombe, "Improved confidence intervals for the difference between
binomial proportions based on paired data", Statistics in Medicine 17:2635-2650, 1998, method 10): the Wilson
score intervals of the two marginal proportions combined by "square and add" with the correlation of the pairs,
estimated by a continuity-corrected phi coefficient (0 when any margin of the table is empty). McNemar's exact
test is the two-sided binomial test of ``only_link`` among the ``only_link + only_ref`` discordant pairs, p = 1/2.

Like the per-link intervals, these treat examples as independent pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.core.metrics import proportion_interval

#: columns of ``paired.csv``, one row per link x channel x SNR x metric
PAIRED_COLUMNS = [
    "metric", "channel", "snr_db", "link", "reference", "n", "both", "only_link", "only_ref", "neither",
    "p_link", "p_ref", "diff", "low", "high", "confidence", "excludes_zero", "p_mcnemar", "same_noise",
    "link_examples", "ref_examples",
]


@dataclass(frozen=True)
class PairedCounts:
    """The 2x2 table of ``n`` pairs (link outcome, reference outcome), each 0 or 1."""

    both: int
    only_link: int
    only_ref: int
    neither: int

    @property
    def n(self) -> int:
        return self.both + self.only_link + self.only_ref + self.neither

    @property
    def discordant(self) -> int:
        return self.only_link + self.only_ref

    @classmethod
    def from_outcomes(cls, link: np.ndarray, ref: np.ndarray) -> PairedCounts:
        """Counts of the pairs of two 0/1 vectors, over their common prefix (``min(len(link), len(ref))``)."""
        n = min(len(link), len(ref))
        a = np.asarray(link[:n], dtype=bool)
        b = np.asarray(ref[:n], dtype=bool)
        both = int(np.count_nonzero(a & b))
        only_link = int(np.count_nonzero(a & ~b))
        only_ref = int(np.count_nonzero(~a & b))
        return cls(both, only_link, only_ref, n - both - only_link - only_ref)


@dataclass(frozen=True)
class PairedDifference:
    """``p_link - p_ref`` with its paired interval and McNemar's exact p-value."""

    counts: PairedCounts
    diff: float
    low: float
    high: float
    confidence: float
    p_mcnemar: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely above or entirely below 0."""
        return bool(self.low > 0 or self.high < 0)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (no continuity correction) for ``successes / n``; ``(nan, nan)`` when ``n`` is 0."""
    return proportion_interval(successes, n, confidence, "wilson")


def newcombe_phi(counts: PairedCounts) -> float:
    """Newcombe's continuity-corrected phi of the 2x2 table: with ``A = both * neither - only_link * only_ref``,
    ``(A - n/2) / sqrt(margins)`` when ``A > n/2``, 0 when ``0 <= A <= n/2``, ``A / sqrt(margins)`` when ``A < 0``;
    0 when any of the four margins is 0."""
    c = counts
    margins = (c.both + c.only_link, c.only_ref + c.neither, c.both + c.only_ref, c.only_link + c.neither)
    if min(margins) == 0:
        return 0.0
    root = math.sqrt(math.prod(float(m) for m in margins))
    a = c.both * c.neither - c.only_link * c.only_ref
    if a > c.n / 2:
        return (a - c.n / 2) / root
    if a >= 0:
        return 0.0
    return a / root


def newcombe_interval(counts: PairedCounts, confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval (paired method 10) for ``p_link - p_ref``; ``(nan, nan)`` for no pairs."""
    n = counts.n
    if n == 0:
        return float("nan"), float("nan")
    p1 = (counts.both + counts.only_link) / n
    p2 = (counts.both + counts.only_ref) / n
    l1, u1 = wilson_interval(counts.both + counts.only_link, n, confidence)
    l2, u2 = wilson_interval(counts.both + counts.only_ref, n, confidence)
    phi = newcombe_phi(counts)
    diff = p1 - p2
    below = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    above = (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2
    return max(-1.0, diff - math.sqrt(max(below, 0.0))), min(1.0, diff + math.sqrt(max(above, 0.0)))


def mcnemar_exact_p(only_link: int, only_ref: int) -> float:
    """Two-sided exact McNemar p-value: the binomial test of ``only_link`` of the discordant pairs at p = 1/2
    (1.0 when there are none)."""
    discordant = only_link + only_ref
    if discordant == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(only_link, discordant, 0.5, alternative="two-sided").pvalue)


def paired_difference(link: np.ndarray, ref: np.ndarray, confidence: float = 0.95) -> PairedDifference:
    """Compare two aligned 0/1 outcome vectors (``[n]`` each; paired over their common prefix)."""
    counts = PairedCounts.from_outcomes(link, ref)
    low, high = newcombe_interval(counts, confidence)
    diff = (counts.only_link - counts.only_ref) / counts.n if counts.n else float("nan")
    return PairedDifference(counts, diff, low, high, confidence, mcnemar_exact_p(counts.only_link, counts.only_ref))


def paired_table(
    results: pd.DataFrame,
    load: Callable[[str, int], dict[str, np.ndarray] | None],
    reference: str,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Every link other than ``reference`` against it, per binary metric, channel and SNR point.

    Args:
        results: the tidy results table (``results.csv``).
        load: ``load(point_id, examples)`` -> the point's outcomes (metric -> ``[examples]``) or ``None``
            (:func:`simulator.io.outcomes.load_outcomes`).
        reference: label of the reference link.
        confidence: level of the intervals.

    Returns:
        One row per (metric, channel, SNR, link) where both points have outcomes of the metric, columns
        :data:`PAIRED_COLUMNS`, in the order of ``results``. ``n`` is the number of pairs (the common prefix when
        one point stopped early), ``same_noise`` whether the two links have the same channel uses (then they saw
        the same noise; otherwise only the same examples).
    """
    points = results.drop_duplicates("point_id")
    cache: dict[str, dict[str, np.ndarray] | None] = {}

    def outcomes(row) -> dict[str, np.ndarray]:
        if row.point_id not in cache:
            cache[row.point_id] = load(row.point_id, int(row.examples))
        return cache[row.point_id] or {}

    refs = {(row.channel, float(row.snr_db)): row for row in points[points.link == reference].itertuples()}
    rows = []
    for metric in dict.fromkeys(results.metric):
        for row in points[points.link != reference].itertuples():
            ref = refs.get((row.channel, float(row.snr_db)))
            if ref is None:
                continue
            mine, theirs = outcomes(row).get(metric), outcomes(ref).get(metric)
            if mine is None or theirs is None:
                continue
            d = paired_difference(mine, theirs, confidence)
            c = d.counts
            rows.append({
                "metric": metric, "channel": row.channel, "snr_db": float(row.snr_db), "link": row.link,
                "reference": reference, "n": c.n, "both": c.both, "only_link": c.only_link,
                "only_ref": c.only_ref, "neither": c.neither,
                "p_link": (c.both + c.only_link) / c.n if c.n else float("nan"),
                "p_ref": (c.both + c.only_ref) / c.n if c.n else float("nan"),
                "diff": d.diff, "low": d.low, "high": d.high, "confidence": confidence,
                "excludes_zero": d.excludes_zero, "p_mcnemar": d.p_mcnemar,
                "same_noise": int(row.channel_uses) == int(ref.channel_uses),
                "link_examples": len(mine), "ref_examples": len(theirs),
            })
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)
