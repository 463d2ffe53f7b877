"""What an executor's worker process runs: one link's points on one channel, from the scenario's JSON form.

Used by the Ray executor's tasks and by the local executor's worker processes (``workers`` > 1). A worker
parses the scenario and builds (loads from the artifact cache) each link once per process, computes at the
scenario's thread count, and returns :class:`~simulator.engine.runner.PointResult` objects, the same numbers a
single-process run gives: every point is seeded from its identity and every receiver call holds one point's
examples.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

_WORKER_LINKS: dict[tuple[str, str], Any] = {}  # per worker: (scenario digest, link name) -> (scenario, spec, link)


def split_points(points: list, size: int) -> list[list]:
    """``points`` grouped by channel (in first-seen order), each group cut into chunks of at most ``size``."""
    by_channel: dict[str, list] = {}
    for p in points:
        by_channel.setdefault(p.channel, []).append(p)
    return [group[i : i + size] for group in by_channel.values() for i in range(0, len(group), size)]


def build_missing_links(scenario, jobs, links: dict | None, on_link_ready) -> dict:
    """``links`` (by name) plus every link of ``jobs`` not in it, built here: a driver builds (trains and caches)
    each link once before its workers only load them; ``on_link_ready(name, describe())`` for each new one."""
    from simulator.config.assemble import build_data, build_link

    links = dict(links or {})
    data = build_data(scenario) if any(job.link.key not in links for job in jobs) else None
    for job in jobs:
        if job.link.key not in links:
            links[job.link.key] = build_link(job.link, scenario, data)
            on_link_ready(job.link.key, links[job.link.key].describe())
    return links


def evaluate_chunk(scenario_json: dict, link_label: str, points: list, cache: str):
    """Worker side: the results of ``points`` of one link on one channel, computed at the scenario's ``threads``,
    and the artifacts it had to train."""
    os.environ["SEMSIM_CACHE_DIR"] = cache
    import torch

    from simulator.config.assemble import build_channel, build_data, build_link
    from simulator.config.scenario import parse_scenario
    from simulator.engine.runner import run_points

    torch.set_num_threads(int(scenario_json.get("threads", 1)))
    digest = hashlib.sha256(json.dumps(scenario_json, sort_keys=True).encode()).hexdigest()
    trained: list[str] = []
    key = (digest, link_label)
    if key not in _WORKER_LINKS:  # once per worker process: parse the scenario and build (load) the link
        scenario = parse_scenario(scenario_json)
        spec = next(s for s in scenario.links if s.key == link_label)
        before = _artifacts(cache)
        _WORKER_LINKS[key] = (scenario, spec, build_link(spec, scenario, build_data(scenario)))
        trained = sorted(_artifacts(cache) - before)
    scenario, spec, link = _WORKER_LINKS[key]
    channel_spec = next(c for c in scenario.channels if c.key == points[0].channel)
    channels = {channel_spec.key: build_channel(channel_spec, scenario.device)}
    results = run_points(link, link_label, channels, points, scenario.link_metrics(spec), scenario.monte_carlo,
                         scenario.seed, scenario.device)
    return results, trained


def _artifacts(cache: str) -> set[str]:
    root = Path(cache)
    return {p.parent.name for p in root.glob("*/meta.json")} if root.is_dir() else set()
