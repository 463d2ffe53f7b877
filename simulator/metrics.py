"""Metrics as binomial proportions, and their confidence intervals.

Every metric semsim reports is a proportion ``count / trials``: bit errors per bit (``ber``), erroneous blocks per
block (``bler``), correct classifications per image (``accuracy``). Links return per-example counts as a
:class:`Tally`; the Monte-Carlo runner sums them per sweep point and reports the proportion with a Wilson or
Clopper-Pearson interval (scipy's ``binomtest``).

The interval treats trials as independent. Bits of one codeword or one symbol are not (errors come in bursts), so
for BER the interval is optimistic; BLER and accuracy, whose trials are independent examples, are exact in that
respect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from scipy.stats import binomtest

IntervalMethod = Literal["wilson", "clopper-pearson"]


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes:
        name: key in scenarios and ``results.csv``.
        label: axis label for plots.
        counts_errors: ``True`` when ``count`` counts errors (lower is better, plotted on a log scale),
            ``False`` when it counts successes (accuracy).
    """

    name: str
    label: str
    counts_errors: bool

    def errors(self, count: int, trials: int) -> int:
        """Number of errors in ``trials`` given this metric's ``count`` (the Monte-Carlo stopping quantity)."""
        return count if self.counts_errors else trials - count


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("ber", "bit error rate", counts_errors=True),
        Metric("bler", "block error rate", counts_errors=True),
        Metric("accuracy", "top-1 accuracy", counts_errors=False),
    )
}


@dataclass
class Tally:
    """Per-example counts for one metric.

    Attributes:
        count: ``[batch]`` errors (or successes, for accuracy) of each example.
        trials: ``[batch]`` or a scalar, trials (bits, blocks, images) of each example.
    """

    count: torch.Tensor
    trials: torch.Tensor | int

    def totals(self) -> tuple[int, int]:
        """``(sum of counts, sum of trials)`` over the batch."""
        count = int(self.count.sum().item())
        if isinstance(self.trials, torch.Tensor):
            return count, int(self.trials.sum().item())
        return count, int(self.trials) * int(self.count.shape[0])


def proportion_interval(
    count: int, trials: int, confidence: float = 0.95, method: IntervalMethod = "wilson"
) -> tuple[float, float]:
    """Two-sided confidence interval ``(low, high)`` for ``count / trials``; ``(nan, nan)`` when ``trials`` is 0."""
    if trials <= 0:
        return float("nan"), float("nan")
    scipy_method = "exact" if method == "clopper-pearson" else "wilson"
    ci = binomtest(int(count), int(trials)).proportion_ci(confidence_level=confidence, method=scipy_method)
    return float(ci.low), float(ci.high)
