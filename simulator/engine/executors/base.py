"""Sweep executors: who evaluates the pending points of a sweep.

An executor receives one :class:`LinkJob` per link (the link's pending points) and reports each finished point
through ``on_point_done``. Because every random draw is seeded from the point's identity
(:mod:`simulator.core.seeding`) and every receiver call holds one point's examples, any executor gives the same
numbers at the same thread count.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.config.scenario import LinkSpec, Scenario
    from simulator.core.channel import Channel
    from simulator.core.link import Link
    from simulator.engine.runner import Point, PointResult


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


#: executor classes by name, filled by :mod:`simulator.engine.executors`
EXECUTORS: dict[str, type[Executor]] = {}
