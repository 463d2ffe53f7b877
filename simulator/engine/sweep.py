"""Run a scenario: plan its points, reuse finished ones, evaluate the rest, and write every output.

Outputs in the output directory (all written atomically, but for the appends to ``results.csv``):

* ``results.csv``: the tidy table (:mod:`simulator.io.results`). Each finished point's rows are appended as it
  finishes (one write, flushed to disk), so while a run goes on its rows are in the order points finished; the
  whole file is rewritten atomically in plan order (links, channels, SNR; metrics in their link's order) at the
  end of the run, when it ends early (Ctrl-C, an error), and at the start of a run with points to compute;
* ``table.md`` and ``<metric>.png``: tables and plots derived from it (:mod:`simulator.io.report`);
* ``outcomes/<point_id>.npz``: each finished point's per-example 0/1 outcomes of its binary metrics
  (:mod:`simulator.io.outcomes`), written before the point's rows reach ``results.csv``;
* ``paired.md`` and ``paired.csv``: every link against the reference link ``compare_to``, example by example
  (:mod:`simulator.core.paired`, written by :mod:`simulator.io.report`);
* ``manifest.json``: versions, seed, scenario hash, git commit, timings, point counts and the reference link;
  rewritten after each finished point (``status: running``, ``points.computed`` so far) and at the end with
  ``status`` ``complete``, ``interrupted`` (Ctrl-C) or ``failed`` (with the one-line ``error``); its size does not
  grow with the points finished (its bulk is the validated scenario), so a rewrite per point stays a few
  milliseconds (``benchmarks/results_io.py``);
* ``links.json``: each link's own facts (``Link.describe()``: channel uses, rates, parameter counts, accuracy
  of trained parts), also shown in ``table.md``.

Resuming: a point whose ``point_id`` already has rows in ``results.csv``, one for each of its metrics, is not
recomputed (its outcomes file is kept). A crash or kill during an append can leave a partial last line, which
:func:`~simulator.io.results.load_results` ignores, or a point with the rows of only some of its metrics, which
counts as unfinished: its rows are dropped and it is computed again. Rows of points that are no longer in the
scenario are moved to ``superseded.csv`` rather than deleted, and their outcome files to ``outcomes/superseded/``.
"""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

import simulator
from simulator.config.assemble import build_components
from simulator.config.scenario import Scenario
from simulator.core.errors import UserError, one_line
from simulator.core.executor import LinkJob
from simulator.core.numerics import describe_numerics, numerics_of, torch_threads
from simulator.engine.progress import SweepProgress
from simulator.engine.runner import Point, PointResult
from simulator.io.atomic import read_json, write_text
from simulator.io.outcomes import save_outcomes, supersede_outcomes
from simulator.io.report import write_report
from simulator.io.results import append_results, empty_table, load_results, point_rows, save_results


@dataclass
class SweepOutcome:
    """What a run produced: the final table, where it lives, and how many points were computed or reused."""

    table: pd.DataFrame
    output_dir: Path
    computed: int
    reused: int
    seconds: float


def plan_points(scenario: Scenario, fingerprints: dict[str, str | None] | None = None) -> list[tuple[str, Point]]:
    """Every (link label, point) of the scenario, in file order: links, then channels, then SNR.

    ``fingerprints`` maps link and channel labels to their ``fingerprint()`` (see :meth:`Scenario.point_id`).
    """
    fingerprints = fingerprints or {}
    return [
        (link.key, Point(channel.key, snr, scenario.point_id(
            link, channel, snr, fingerprints.get(("link", link.key)), fingerprints.get(("channel", channel.key)))))
        for link in scenario.links
        for channel in scenario.channels
        for snr in scenario.snr_points()
    ]


def run_scenario(
    scenario: Scenario,
    output_dir: str | Path | None = None,
    executor: str | None = None,
    progress: bool | None = None,
    scenario_file: str | None = None,
) -> SweepOutcome:
    """Evaluate every point of ``scenario`` not already in the output directory and write all outputs.

    Training and evaluation run at the scenario's ``threads`` torch threads (:mod:`simulator.core.numerics`).
    """
    with torch_threads(scenario.threads):
        return _run(scenario, output_dir, executor, progress, scenario_file)


def _run(scenario: Scenario, output_dir: str | Path | None, executor: str | None, progress: bool | None,
         scenario_file: str | None) -> SweepOutcome:
    started = time.time()
    out = scenario.output_dir(output_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a directory")
    results_path = out / "results.csv"
    executor_spec = scenario.executor_spec(executor)
    executor_name = executor_spec.type
    numerics = numerics_of(scenario.device, scenario.threads)
    check_numerics(out, numerics)
    # Links are built first: their fingerprints (trained weights) are part of every point's identity.
    links, channels = build_components(scenario)
    fingerprints = {**{("link", label): link.fingerprint() for label, link in links.items()},
                    **{("channel", label): channel.fingerprint() for label, channel in channels.items()}}
    plan = plan_points(scenario, fingerprints)
    order = {point.point_id: i for i, (_, point) in enumerate(plan)}

    link_metrics = {spec.key: sorted(scenario.link_metrics(spec)) for spec in scenario.links}
    expected = {point.point_id: link_metrics[label] for label, point in plan}

    previous = load_results(results_path) if results_path.exists() else empty_table()
    kept = _finished_rows(previous, expected)
    stale = previous[~previous.point_id.isin(order)]
    _supersede(stale, out / "superseded.csv")
    supersede_outcomes(out, set(stale.point_id))
    finished = set(kept.point_id)
    pending = [(label, point) for label, point in plan if point.point_id not in finished]
    if pending and results_path.exists():
        # Finished points are appended from here on: they go onto a file holding only the finished points of this
        # plan, in plan order (rows of superseded points, and rows a crash left of an unfinished point, gone).
        save_results(_sorted(kept, order), results_path)

    reused = len(plan) - len(pending)
    manifest = _manifest(scenario, executor_name, scenario_file, started, len(plan), reused)
    manifest["numerics"] = numerics
    manifest_path = out / "manifest.json"
    computed = 0

    # Nothing is written before the first point finishes, so input that fails while links are built leaves
    # no half-made output directory behind.
    rows = [kept]
    appended = False  # whether this run has appended to results.csv (so its rows may be out of plan order)
    budget = scenario.monte_carlo
    bar = SweepProgress(total=len(pending) * budget.max_samples, bar=progress)

    def on_point_done(result: PointResult) -> None:
        nonlocal computed, appended
        new = pd.DataFrame(point_rows(scenario.name, result, budget.confidence, budget.interval))
        rows.append(new)
        _save_outcomes(out, result)
        appended = True
        _append_results(new, results_path)
        computed += 1
        manifest["points"] = _point_counts(len(plan), reused, computed)
        _write_json(manifest_path, manifest)
        bar.message(_point_line(result, new))

    facts_path = out / "links.json"
    facts = read_json(facts_path)

    types = {spec.key: spec.type for spec in scenario.links}

    def on_link_ready(label: str, link_facts: dict) -> None:
        facts[label] = {"type": types[label], **link_facts}

    for label, link in links.items():
        on_link_ready(label, link.describe())

    jobs = [
        LinkJob(spec, [point for label, point in pending if label == spec.key])
        for spec in scenario.links
        if any(label == spec.key for label, _ in pending)
    ]
    try:
        try:
            if jobs:
                executor_spec.build().run(scenario, jobs, on_point_done, bar.advance, links=links,
                                               channels=channels)
        finally:
            bar.close()

        table = _sorted(_concat(rows), order)
        save_results(table, results_path)
        facts = {spec.key: facts[spec.key] for spec in scenario.links if spec.key in facts}
        if facts:
            _write_json(facts_path, facts)
        write_report(table, out, facts, scenario.reference_link, scenario.display_names())
    except BaseException as err:
        # Where this run has output (a finished point, or results of an earlier run), the manifest says how it
        # ended and how many points are in results.csv; the error itself propagates unchanged.
        if results_path.exists():
            _record_end(manifest_path, manifest, started, err)
        if appended:
            _restore_plan_order(results_path, expected, order)
        raise
    seconds = time.time() - started
    point_seconds = table.drop_duplicates("point_id").groupby("link", sort=False).seconds.sum()
    manifest.update(status="complete", finished=_now(), wall_seconds=round(seconds, 3),
                    seconds_per_link={link: round(float(s), 3) for link, s in point_seconds.items()})
    _write_json(manifest_path, manifest)
    return SweepOutcome(table, out, computed=computed, reused=reused, seconds=seconds)


def _point_counts(total: int, reused: int, computed: int) -> dict[str, int]:
    """The manifest's point counts: points of the scenario, reused from results.csv, and computed by this run."""
    return {"total": total, "reused": reused, "computed": computed}


def _record_end(path: Path, manifest: dict, started: float, err: BaseException) -> None:
    """Write ``manifest`` with the status of a run ended by ``err``: ``interrupted`` (Ctrl-C) or ``failed``
    with the one-line error. A failure to write it does not hide ``err``."""
    if isinstance(err, KeyboardInterrupt):
        manifest.update(status="interrupted")
    else:
        message = one_line(err) if isinstance(err, UserError) else f"{type(err).__name__}: {one_line(err)}"
        manifest.update(status="failed", error=message)
    manifest.update(finished=_now(), wall_seconds=round(time.time() - started, 3))
    with contextlib.suppress(UserError):
        _write_json(path, manifest)


def _save_outcomes(out: Path, result: PointResult) -> None:
    try:
        save_outcomes(out, result.point.point_id, result.outcomes)
    except OSError as err:
        raise UserError(f"cannot write the outcomes of a point to {out}: {err.strerror}") from None


def _append_results(rows: pd.DataFrame, path: Path) -> None:
    try:
        append_results(rows, path)
    except OSError as err:
        raise UserError(f"cannot append the results of a point to {path}: {err.strerror}") from None


def _finished_rows(table: pd.DataFrame, expected: dict[str, list[str]]) -> pd.DataFrame:
    """The rows of the finished points of ``table`` among ``expected`` (point id -> its metrics, sorted): a point
    is finished when it has one row for each of its metrics; one with only some (what an append cut short by a
    crash leaves, :func:`simulator.io.results.append_results`) is not, and its rows are dropped."""
    found: dict[str, list[str]] = {}
    for point_id, metric in zip(table.point_id, table.metric, strict=True):
        if point_id in expected:
            found.setdefault(point_id, []).append(metric)
    done = {point_id for point_id, metrics in found.items() if sorted(metrics) == expected[point_id]}
    return table[table.point_id.isin(done)].reset_index(drop=True)


def _restore_plan_order(path: Path, expected: dict[str, list[str]], order: dict[str, int]) -> None:
    """Rewrite ``results.csv`` of a run that ended early with its finished points in plan order (it holds them in
    the order they finished). Best effort: where this fails, the next run's start does it."""
    with contextlib.suppress(UserError, OSError):
        save_results(_sorted(_finished_rows(load_results(path), expected), order), path)


def _write_json(path: Path, content: dict) -> None:
    try:
        write_text(path, json.dumps(content, indent=2))
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror}") from None


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else empty_table()


def _sorted(table: pd.DataFrame, order: dict[str, int]) -> pd.DataFrame:
    """Rows in plan order (links, channels, SNR), metrics in their link's order, whatever order points finished."""
    key = table.point_id.map(order)
    return table.assign(_order=key).sort_values("_order", kind="stable").drop(columns="_order").reset_index(
        drop=True)


def _supersede(stale: pd.DataFrame, path: Path) -> None:
    if stale.empty:
        return
    old = load_results(path) if path.exists() else empty_table()
    save_results(_concat([old, stale]).drop_duplicates(), path)


def _point_line(result: PointResult, rows: pd.DataFrame) -> str:
    values = ", ".join(f"{r.metric}={r.value:.3g}" for r in rows.itertuples())
    p = result.point
    return (f"[semsim] {result.link} / {p.channel} / {p.snr_db:g} dB: {values} "
            f"({result.examples} examples, {result.seconds:.2f} s)")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_numerics(out: Path, numerics: dict) -> None:
    """Refuse to add points computed with other numerics to an output directory's ``results.csv`` (its rows
    would not be comparable); a directory whose manifest records no numerics (older runs) is not checked."""
    recorded = read_json(out / "manifest.json").get("numerics")
    if not recorded or recorded == numerics or not (out / "results.csv").is_file():
        return
    raise UserError(f"{out / 'results.csv'} holds results computed on {describe_numerics(recorded)}; this run "
                    f"would compute on {describe_numerics(numerics)}, whose numbers can differ; use another "
                    "--output, or the same device and thread count (threads: in the scenario, or --threads)")


def _manifest(scenario: Scenario, executor: str, scenario_file: str | None, started: float, total: int,
              reused: int) -> dict:
    import numpy
    import sionna.phy
    import torch

    return {
        "status": "running",
        "scenario": scenario.name,
        "scenario_file": scenario_file,
        "scenario_hash": scenario.scenario_hash(),
        "seed": scenario.seed,
        "device": scenario.device,
        "executor": executor,
        "git_commit": _git_commit(),
        "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "finished": None,
        "wall_seconds": None,
        "points": _point_counts(total, reused, 0),
        "compare_to": scenario.reference_link,
        "display_names": scenario.display_names(),
        "versions": {
            "semsim": simulator.__version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "sionna": getattr(sionna.phy, "__version__", None) or _dist_version("sionna-no-rt"),
            "numpy": numpy.__version__,
            "pandas": pd.__version__,
        },
        "scenario_spec": scenario.model_dump(mode="json"),
    }


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """Commit of the semsim source tree (with ``-dirty`` when it has local changes), or ``None`` outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")
