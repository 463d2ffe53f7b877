"""The executor protocol: who evaluates the pending points of a sweep.

An executor receives one :class:`LinkJob` per link (the link's pending points) and reports each finished point
through ``on_point_done``. Every random draw is seeded from the point's identity (:mod:`simulator.core.seeding`)
and every receiver call holds one point's examples, so any executor gives the same numbers at the same thread
count. Executor types are registered like links (the ``semsim.executors`` entry-point group, or ``module:Class``);
each declares its own ``Params``, the fields it accepts under ``executor:`` besides ``type``. The built-in ones
are in :mod:`simulator.engine.executors`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator.core.params import Params
from simulator.core.registry import Registry

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

    class Params(Params):
        pass

    def __init__(self, params: Params | None = None):
        self.params = params if params is not None else self.Params()

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
        """Evaluate every point of every job; ``on_link_ready(name, link.describe())`` once a link is built.

        ``links`` and ``channels`` (by name) are components the caller already built; the executor builds
        the others itself.
        """


EXECUTORS = Registry("executor", entry_point_group="semsim.executors", base=Executor)
