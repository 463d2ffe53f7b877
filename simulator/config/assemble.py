"""Turn a validated scenario's specs into live objects: data source, links, channels.

Whatever goes wrong while a link or channel is built (its constructor raising, a :class:`UserError` from its own
checks included, or a bad ``channel_uses``) becomes one :class:`UserError` line naming it by its label:
``link 'x': ...`` or ``channel 'y': ...``.
"""

from __future__ import annotations

from simulator.config.scenario import Scenario
from simulator.core.channel import Channel
from simulator.core.errors import UserError
from simulator.core.link import Link, LinkContext
from simulator.core.spec import ChannelSpec, LinkSpec, named
from simulator.data.source import DataSource


def build_data(scenario: Scenario) -> DataSource | None:
    """The scenario's data source, or ``None``."""
    if scenario.data is None:
        return None
    return scenario.data.cls(scenario.data.params, seed=scenario.seed)


def build_components(scenario: Scenario) -> tuple[dict[str, Link], dict[str, Channel]]:
    """Every link (trained or loaded from the cache) and channel of the scenario, by label, in file order."""
    data = build_data(scenario)
    links = {spec.key: build_link(spec, scenario, data) for spec in scenario.links}
    channels = {spec.key: build_channel(spec, scenario.device) for spec in scenario.channels}
    return links, channels


def build_link(spec: LinkSpec, scenario: Scenario, data: DataSource | None = None) -> Link:
    """Instantiate one link on the scenario's device; any failure is a :class:`UserError` naming the link."""
    context = LinkContext(device=scenario.device, seed=scenario.seed, data=data)

    def build() -> Link:
        link = spec.cls(spec.params, context)
        n = link.channel_uses
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise UserError(f"channel_uses must be a positive int, got {n!r}")
        return link

    return named("link", spec, build)


def build_channel(spec: ChannelSpec, device: str) -> Channel:
    """Instantiate one channel on ``device``; any failure is a :class:`UserError` naming the channel."""
    return spec.build(device)
