"""Sweep executors: who evaluates the pending points of a sweep.

An executor receives one :class:`LinkJob` per link (the link's pending points) and reports each finished point
through ``on_point_done``. Because every random draw is seeded from the point's identity
(:mod:`simulator.seeding`), any executor gives the same numbers. ``local`` runs everything in this process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.channels.base import Channel
    from simulator.link import Link
    from simulator.montecarlo import Point, PointResult
    from simulator.scenario import LinkSpec, Scenario


@dataclass
class LinkJob:
    """The pending points of one link."""

    link: LinkSpec
    points: list[Point]


class Executor(ABC):
    """Runs link jobs and reports finished points."""

    description = ""

    @abstractmethod
    def run(
        self,
        scenario: Scenario,
        jobs: list[LinkJob],
        on_point_done: Callable[[PointResult], None],
        on_progress: Callable[[int], None],
        on_link_ready: Callable[[str, dict], None] = lambda label, facts: None,
        links: dict[str, Link] | None = None,
        channels: dict[str, Channel] | None = None,
    ) -> None:
        """Evaluate every point of every job; ``on_link_ready(label, link.describe())`` once a link is built.

        ``links`` and ``channels`` (by label) are components the caller already built; the executor builds
        the others itself.
        """


class LocalExecutor(Executor):
    """Evaluates links one after the other in this process, all of a link's points in lockstep."""

    description = "in this process"

    def run(self, scenario, jobs, on_point_done, on_progress, on_link_ready=lambda label, facts: None, links=None,
            channels=None) -> None:
        from simulator.assemble import build_channel, build_data, build_link
        from simulator.montecarlo import run_points

        links = links or {}
        data = build_data(scenario) if any(job.link.key not in links for job in jobs) else None
        channel_specs = {spec.key: spec for spec in scenario.channels}
        channels = dict(channels or {})
        for job in jobs:
            link = links.get(job.link.key)
            if link is None:
                link = build_link(job.link, scenario, data)
                on_link_ready(job.link.key, link.describe())
            for p in job.points:
                if p.channel not in channels:
                    channels[p.channel] = build_channel(channel_specs[p.channel], scenario.device)
            run_points(
                link, job.link.key, channels, job.points, scenario.link_metrics(job.link),
                scenario.monte_carlo, scenario.seed, scenario.device, on_point_done, on_progress,
            )


EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor}

# Registers "ray" (RayExecutor) in EXECUTORS; that module imports Ray only when the executor runs.
import simulator.ray_executor  # noqa: E402, F401
