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

Writing: :func:`save_results` replaces the whole file atomically; :func:`append_results` adds a finished point's
rows at the end in one write, flushed to disk, so a sweep's cost of saving a point does not grow with the rows
already saved. A crash during an append can leave only a prefix of the new rows: some complete lines and a last
line without its line end. :func:`load_results` ignores such a partial last line (and :func:`append_results` cuts
it off before adding rows after it); a point left with the rows of only some of its metrics is told apart by the
sweep, which knows each point's metrics, and recomputed (:mod:`simulator.engine.sweep`).
"""

from __future__ import annotations

import io
import os
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
FLOAT_FORMAT = "%.10g"


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
    """Read ``results.csv``; a file that is not a semsim results table is a :class:`UserError`.

    A last line without its line end is the remains of an append cut short (:func:`append_results`) and is
    ignored: every line semsim writes ends with one.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no results table at {path}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None
    if not data.endswith(b"\n"):
        data = data[:data.rfind(b"\n") + 1]
    try:
        table = pd.read_csv(io.BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a readable CSV file ({type(err).__name__})") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"{path}: not a semsim results table (missing columns: {', '.join(missing)})")
    return table[COLUMNS]


def save_results(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``table`` to ``path`` atomically, columns in the documented order."""
    with atomic_path(path) as tmp:
        table[COLUMNS].to_csv(tmp, index=False, float_format=FLOAT_FORMAT)


def append_results(table: pd.DataFrame, path: str | Path) -> None:
    """Add the rows of ``table`` at the end of the results table ``path``, formatted as :func:`save_results`
    formats them; a missing file is created with :func:`save_results` (header included, atomically).

    The rows are encoded first and go out in one ``os.write`` (repeated only for what a short write left), then
    ``os.fsync``: an interruption leaves the file with all of them, none, or a prefix (see the module notes). A
    partial last line found before writing, left by such an interruption, is cut off first, so new rows never
    continue a torn one.
    """
    path = Path(path)
    if not path.is_file():
        save_results(table, path)
        return
    fd = os.open(path, os.O_RDWR | os.O_APPEND | getattr(os, "O_BINARY", 0))
    try:
        complete = _cut_partial_line(fd)
        # a file cut down to nothing (not even its header) gets the header back
        data = table[COLUMNS].to_csv(index=False, header=complete == 0, float_format=FLOAT_FORMAT).encode("utf-8")
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` all of ``data``: one call, repeated only for what a short write left."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _cut_partial_line(fd: int, chunk: int = 1 << 16) -> int:
    """Truncate the open file ``fd`` after its last line end (dropping a partial last line); returns its size."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    os.lseek(fd, size - 1, os.SEEK_SET)
    if os.read(fd, 1) == b"\n":
        return size
    end = keep = size
    while end > 0:
        start = max(0, end - chunk)
        os.lseek(fd, start, os.SEEK_SET)
        last = os.read(fd, end - start).rfind(b"\n")
        if last >= 0:
            keep = start + last + 1
            break
        end = keep = start
    os.ftruncate(fd, keep)
    return keep
