"""The tidy results table: one row per link x channel x SNR x metric.

``results.csv`` columns:

=================  =========================================================================================
``scenario``       scenario name
``link``           link label (its ``name``, or its type)
``channel``        channel label
``snr_db``         Es/N0 per complex channel use, dB (semsim's SNR)
``ebno_db``        Eb/N0 in dB for links that carry information bits (empty otherwise)
``metric``         ``ber``, ``bler``, ``accuracy``, ...
``value``          ``count / trials`` (proportions) or the mean of the per-example values (mean metrics)
``ci_low``         lower end of the confidence interval (Wilson / Clopper-Pearson, or Student t for means)
``ci_high``        upper end
``confidence``     confidence level of the interval (e.g. 0.95)
``count``          errors (error rates) or successes (accuracy); empty for mean metrics
``trials``         bits, blocks or images counted; for mean metrics the number of values
``examples``       examples simulated at this point
``channel_uses``   complex channel uses per example (data symbols; OFDM pilots and padding excluded)
``pilot_overhead`` fraction of the resource elements that carry pilots (0 for flat channels)
``seconds``        wall time spent on this point (shared work split evenly)
``point_id``       hash of everything that determines the point's result; used to resume
=================  =========================================================================================

Every table and plot is derived from this file (``semsim report DIR`` rebuilds them); the paired comparison
(``paired.md``) also reads the per-example outcomes in ``outcomes/`` (:mod:`simulator.io.outcomes`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from simulator.core.errors import UserError
from simulator.core.metrics import mean_interval, proportion_interval
from simulator.core.snr import ebno_db
from simulator.io.atomic import atomic_path

if TYPE_CHECKING:
    from simulator.engine.runner import PointResult

COLUMNS = [
    "scenario", "link", "channel", "snr_db", "ebno_db", "metric", "value", "ci_low", "ci_high", "confidence",
    "count", "trials", "examples", "channel_uses", "pilot_overhead", "seconds", "point_id",
]


def point_rows(scenario_name: str, result: PointResult, confidence: float, interval: str) -> list[dict]:
    """Result rows of one finished point, one per metric: proportions first, then means."""
    p = result.point
    bits_per_use = result.info_bits / result.channel_uses if result.info_bits else None
    summaries = [(metric, count, trials, count / trials if trials else float("nan"),
                  proportion_interval(count, trials, confidence, interval))
                 for metric, (count, trials) in result.tallies.items()]
    summaries += [(metric, None, int(n), mean if n else float("nan"), mean_interval(int(n), mean, m2, confidence))
                  for metric, (n, mean, m2) in result.moments.items()]
    rows = []
    for metric, count, trials, value, (low, high) in summaries:
        rows.append({
            "scenario": scenario_name,
            "link": result.link,
            "channel": p.channel,
            "snr_db": p.snr_db,
            "ebno_db": ebno_db(p.snr_db, bits_per_use),
            "metric": metric,
            "value": value,
            "ci_low": low,
            "ci_high": high,
            "confidence": confidence,
            "count": count,
            "trials": trials,
            "examples": result.examples,
            "channel_uses": result.channel_uses,
            "pilot_overhead": result.pilot_overhead,
            "seconds": round(result.seconds, 4),
            "point_id": p.point_id,
        })
    return rows


def empty_table() -> pd.DataFrame:
    return pd.DataFrame(columns=COLUMNS)


def load_results(path: str | Path) -> pd.DataFrame:
    """Read ``results.csv``; a file that is not a semsim results table is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no results table at {path}")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a readable CSV file ({type(err).__name__})") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"{path}: not a semsim results table (missing columns: {', '.join(missing)})")
    return table[COLUMNS]


def save_results(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``table`` to ``path`` atomically, columns in the documented order."""
    with atomic_path(path) as tmp:
        table[COLUMNS].to_csv(tmp, index=False, float_format="%.10g")
