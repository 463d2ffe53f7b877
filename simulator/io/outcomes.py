"""Per-example outcomes of finished points on disk: ``outcomes/<point_id>.npz`` in the output directory.

For every metric with exactly one trial per example (``accuracy``; ``bler`` with one block per example) the
Monte-Carlo runner keeps each example's count, 0 or 1, in example order (:attr:`PointResult.outcomes`). The sweep
writes them here, atomically, as each point finishes, one file per point: an ``.npz`` archive holding one
``[examples]`` uint8 array per binary metric, named by the metric. Since every link of a scenario sees the same
examples in the same order (and, for equal channel uses, the same noise), the files of two links at one
(channel, SNR) point pair up example by example (:mod:`simulator.core.paired`).

Life cycle, following ``results.csv``: a reused point keeps its file; a recomputed point rewrites it (with the same
content, the numbers being reproducible); the file of a point dropped from the scenario moves to
``outcomes/superseded/`` as its rows move to ``superseded.csv``. Files are read with ``allow_pickle=False``.
Size: one byte per example and binary metric before compression.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import numpy as np

from simulator.io.atomic import atomic_path

OUTCOMES_DIR = "outcomes"
SUPERSEDED_DIR = "superseded"
#: point ids are 16 hex digits (:meth:`simulator.config.scenario.Scenario.point_id`); anything else never becomes a path
_POINT_ID = re.compile(r"^[0-9a-f]{16}$")


def outcome_path(out_dir: str | Path, point_id: str) -> Path:
    """Where the outcomes of ``point_id`` live in ``out_dir``."""
    if not _POINT_ID.match(str(point_id)):
        raise ValueError(f"not a point id: {point_id!r}")
    return Path(out_dir) / OUTCOMES_DIR / f"{point_id}.npz"


def save_outcomes(out_dir: str | Path, point_id: str, outcomes: dict[str, np.ndarray]) -> Path | None:
    """Write ``outcomes`` (metric -> ``[examples]`` 0/1 array) of one point atomically; ``None`` when empty."""
    if not outcomes:
        return None
    path = outcome_path(out_dir, point_id)
    arrays = {metric: np.asarray(values, dtype=np.uint8) for metric, values in outcomes.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def load_outcomes(out_dir: str | Path, point_id: str, examples: int | None = None) -> dict[str, np.ndarray] | None:
    """The outcomes of ``point_id``, or ``None`` when it has no readable file.

    A file is accepted only if each array is one-dimensional, holds only 0 and 1 and, when ``examples`` is given,
    has that many entries (the point's ``examples`` in ``results.csv``).
    """
    try:
        path = outcome_path(out_dir, point_id)
    except ValueError:
        return None
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            outcomes = {metric: archive[metric] for metric in archive.files}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    for values in outcomes.values():
        if values.ndim != 1 or (examples is not None and values.shape[0] != examples) or values.dtype != np.uint8 \
                or (values > 1).any():
            return None
    return outcomes


def supersede_outcomes(out_dir: str | Path, point_ids) -> None:
    """Move the files of ``point_ids`` (points dropped from the scenario) to ``outcomes/superseded/``."""
    for point_id in point_ids:
        try:
            path = outcome_path(out_dir, point_id)
        except ValueError:
            continue
        if path.is_file():
            target = path.parent / SUPERSEDED_DIR / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
