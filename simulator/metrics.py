"""Public path of the metrics (``from simulator.metrics import Tally, Mean``); the code is
:mod:`simulator.core.metrics`."""

from simulator.core.metrics import (
    BUILTIN_ORDER,
    METRICS,
    IntervalMethod,
    Mean,
    MeanMetric,
    Metric,
    Proportion,
    Tally,
    cosine_per_example,
    mean_interval,
    merge_moments,
    mse_per_example,
    proportion_interval,
    psnr_db,
    ssim_per_example,
)

__all__ = ["BUILTIN_ORDER", "METRICS", "IntervalMethod", "Mean", "MeanMetric", "Metric", "Proportion", "Tally",
           "cosine_per_example", "mean_interval", "merge_moments", "mse_per_example", "proportion_interval",
           "psnr_db", "ssim_per_example"]
