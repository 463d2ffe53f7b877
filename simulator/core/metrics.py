"""Metric types, their registry, what links return to be scored, and confidence intervals.

Two kinds of metric:

* **proportions** ``count / trials``: bit errors per bit (``ber``), erroneous blocks per block (``bler``), correct
  classifications per image (``accuracy``). A link returns per-example counts as a :class:`Tally`; the runner sums
  them per sweep point and reports the proportion with a Wilson or Clopper-Pearson interval (scipy's
  ``binomtest``). The interval treats trials as independent: bits of one codeword or symbol are not (errors come
  in bursts), so for BER it is optimistic; BLER and accuracy, whose trials are examples, are exact in that respect.
* **means** of one float per example: mean squared error (``mse``), PSNR in dB (``psnr``), structural similarity
  (``ssim``, computed by torchmetrics), cosine similarity of embeddings (``cosine``); helpers below compute each
  per example. A link returns ``Mean(values)``; the runner keeps the
  count, mean and sum of squared deviations per point (merged batch by batch, Chan et al.) and reports the mean
  with a Student t interval. ``monte_carlo.target_half_width`` stops a point once that interval is narrow enough.

Metric types live in :data:`METRICS`, a registry like the links' and channels': the built-ins below, installed
``semsim.metrics`` entry points, or ``module:Class`` names. A new metric subclasses :class:`Proportion` or
:class:`MeanMetric` and sets ``label`` (and the display attributes); it is registered by name::

    @METRICS.register("evm")
    class EVM(MeanMetric):
        label = "error vector magnitude (%)"
        higher_is_better = False
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from simulator.core.registry import Registry

if TYPE_CHECKING:
    import torch

IntervalMethod = Literal["wilson", "clopper-pearson"]


class Metric:
    """A metric type. Subclass :class:`Proportion` or :class:`MeanMetric`, not this.

    Attributes:
        type_name: key in scenarios and ``results.csv`` (set when registered).
        label: axis label for plots and table headings (give the unit, e.g. ``"PSNR (dB)"``).
        kind: ``"proportion"`` or ``"mean"``.
        higher_is_better: whether larger values are better (accuracy, PSNR) or worse (BER, MSE).
        log_scale: plot on a logarithmic axis (error rates); otherwise linear (values in dB are plotted linearly).
        percent: show as a percentage in the paper-layout table (accuracy).
    """

    type_name: ClassVar[str]
    label: ClassVar[str] = ""
    kind: ClassVar[Literal["proportion", "mean"]]
    higher_is_better: ClassVar[bool] = False
    log_scale: ClassVar[bool] = False
    percent: ClassVar[bool] = False
    description: ClassVar[str] = ""

    @classmethod
    def counts_errors(cls) -> bool:
        """A proportion counting errors (lower is better, plotted on a log scale)."""
        return cls.kind == "proportion" and not cls.higher_is_better


class Proportion(Metric):
    """``count / trials`` of per-example counts returned as a :class:`Tally`."""

    kind = "proportion"

    @classmethod
    def errors(cls, count: int, trials: int) -> int:
        """Errors in ``trials`` given this metric's ``count`` (the quantity ``target_errors`` counts)."""
        return trials - count if cls.higher_is_better else count


class MeanMetric(Metric):
    """The mean of one float per example, returned as :class:`Mean`."""

    kind = "mean"


METRICS = Registry("metric", entry_point_group="semsim.metrics", base=Metric)


def _builtin(name: str, class_name: str, base: type[Metric], label: str, description: str, **traits) -> type[Metric]:
    """Register the built-in metric ``name``: a subclass of ``base`` with its label, description and traits."""
    return METRICS.register(name)(type(class_name, (base,), {"label": label, "description": description,
                                                             "__doc__": description, **traits}))


BitErrorRate = _builtin("ber", "BitErrorRate", Proportion, "bit error rate", "bit errors / information bits",
                        log_scale=True)
BlockErrorRate = _builtin("bler", "BlockErrorRate", Proportion, "block error rate",
                          "erroneous blocks (codewords) / blocks", log_scale=True)
Accuracy = _builtin("accuracy", "Accuracy", Proportion, "top-1 accuracy", "correct top-1 classifications / images",
                    higher_is_better=True, percent=True)
MeanSquaredError = _builtin("mse", "MeanSquaredError", MeanMetric, "mean squared error",
                            "mean over examples of each example's mean squared error (e.g. per-image pixel MSE)")
PSNR = _builtin("psnr", "PSNR", MeanMetric, "PSNR (dB)",
                "mean over examples of 10 log10(peak^2 / MSE) of each example, dB", higher_is_better=True)
SSIM = _builtin("ssim", "SSIM", MeanMetric, "SSIM",
                "mean structural similarity of each example to its reference (1 = identical)", higher_is_better=True)
CosineSimilarity = _builtin("cosine", "CosineSimilarity", MeanMetric, "cosine similarity",
                            "mean cosine similarity of each example's estimate to its reference (e.g. embeddings)",
                            higher_is_better=True)

BUILTIN_ORDER = ("ber", "bler", "accuracy", "mse", "psnr", "ssim", "cosine")


@dataclass
class Tally:
    """Per-example counts for one proportion metric.

    Attributes:
        count: ``[batch]`` errors (or successes, for accuracy) of each example.
        trials: ``[batch]`` or a scalar, trials (bits, blocks, images) of each example.
    """

    count: torch.Tensor
    trials: torch.Tensor | int

    def totals(self) -> tuple[int, int]:
        """``(sum of counts, sum of trials)`` over the batch."""
        import torch

        count = round(float(self.count.double().sum()))
        if isinstance(self.trials, torch.Tensor):
            return count, int(self.trials.sum().item())
        return count, int(self.trials) * int(self.count.shape[0])


@dataclass
class Mean:
    """Per-example values ``[batch]`` (float) of one mean metric, e.g. ``Mean(psnr_db(images, decoded))``."""

    values: torch.Tensor

    def moments(self) -> tuple[int, float, float]:
        """``(n, mean, sum of squared deviations from the mean)`` of the batch, in float64."""
        v = self.values.detach().double().flatten()
        n = int(v.numel())
        if n == 0:
            return 0, 0.0, 0.0
        mean = float(v.mean())
        return n, mean, float(((v - mean) ** 2).sum())


def merge_moments(a: tuple[int, float, float], b: tuple[int, float, float]) -> tuple[int, float, float]:
    """Moments of the union of two samples given as ``(n, mean, M2)`` (Chan, Golub and LeVeque's update)."""
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    n = n_a + n_b
    if n == 0:
        return 0, 0.0, 0.0
    delta = mean_b - mean_a
    return n, mean_a + delta * n_b / n, m2_a + m2_b + delta * delta * n_a * n_b / n


def mean_interval(n: int, mean: float, m2: float, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Student t interval for the mean of ``n`` values with sum of squared deviations ``m2``;
    ``(nan, nan)`` with fewer than 2 values."""
    if n < 2:
        return float("nan"), float("nan")
    from scipy.stats import t as student_t

    half = student_t.ppf(0.5 + confidence / 2, n - 1) * math.sqrt(m2 / (n - 1) / n)
    return mean - half, mean + half


def mse_per_example(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each example ``[B, ...] -> [B]``."""
    return (estimate - reference).flatten(1).pow(2).mean(dim=1)


def psnr_db(estimate: torch.Tensor, reference: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """PSNR of each example in dB, ``10 log10(peak^2 / MSE)`` from its own MSE, ``[B, ...] -> [B]``; a perfect
    example (MSE 0) is capped at 100 dB so that means stay finite."""
    mse = mse_per_example(estimate, reference).clamp_min(peak * peak * 1e-10)
    return 10 * (peak * peak / mse).log10()


def ssim_per_example(estimate: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity of each image ``[B, C, H, W] -> [B]`` (torchmetrics' SSIM: Gaussian window, the
    usual constants K1 = 0.01, K2 = 0.03). The window is 11 x 11 (sigma 1.5) when the images allow it, otherwise
    the largest odd size that fits, with sigma scaled to match (7 x 7, sigma 0.95, on 8 x 8 digits)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    side = min(11, *estimate.shape[-2:])
    side -= 1 - side % 2  # odd
    values = structural_similarity_index_measure(estimate.float(), reference.float(), gaussian_kernel=True,
                                                 sigma=1.5 * side / 11, kernel_size=side, reduction="none",
                                                 data_range=data_range)
    return values.reshape(len(estimate))


def cosine_per_example(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each example's flattened estimate and reference, ``[B, ...] -> [B]``."""
    from torch.nn.functional import cosine_similarity

    return cosine_similarity(estimate.flatten(1), reference.flatten(1), dim=1)


def proportion_interval(
    count: int, trials: int, confidence: float = 0.95, method: IntervalMethod = "wilson"
) -> tuple[float, float]:
    """Two-sided confidence interval ``(low, high)`` for ``count / trials``; ``(nan, nan)`` when ``trials`` is 0."""
    if trials <= 0:
        return float("nan"), float("nan")
    scipy_method = "exact" if method == "clopper-pearson" else "wilson"
    from scipy.stats import binomtest

    ci = binomtest(int(count), int(trials)).proportion_ci(confidence_level=confidence, method=scipy_method)
    return float(ci.low), float(ci.high)
