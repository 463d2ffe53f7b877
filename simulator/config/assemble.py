"""Turn a validated scenario's specs into live objects: data source, links, channels.

Whatever goes wrong while a link or channel is built (its constructor raising, a :class:`UserError` from its own
checks included, or a bad ``channel_uses``) becomes one :class:`UserError` line naming it by its label:
``link 'x': ...`` or ``channel 'y': ...``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from simulator.config.scenario import ChannelSpec, ComponentSpec, LinkSpec, Scenario
from simulator.core.channel import Channel
from simulator.core.errors import UserError, one_line
from simulator.core.link import Link, LinkContext
from simulator.data.source import DataSource

T = TypeVar("T")


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

    return _named("link", spec, build)


def build_channel(spec: ChannelSpec, device: str) -> Channel:
    """Instantiate one channel on ``device``; any failure is a :class:`UserError` naming the channel."""
    return _named("channel", spec, lambda: spec.cls(spec.params, device=device))


def _named(kind: str, spec: ComponentSpec, build: Callable[[], T]) -> T:
    """``build()``, with every exception it raises turned into one line ``<kind> '<label>': <message>``."""
    try:
        return build()
    except UserError as err:
        raise UserError(name_in_message(kind, spec, str(err))) from err
    except Exception as err:
        raise UserError(f"{kind} {spec.key!r}: could not be built: {type(err).__name__}: {one_line(err)}") \
            from err


def name_in_message(kind: str, spec: ComponentSpec, message: str) -> str:
    """``message`` led by ``<kind> '<label>': ``, once.

    A message that already names the component by its label is kept; one led by the component's type name
    (``link keras: ...`` or ``digital-features: ...``, as a type's own checks write it) gets the label in its
    place, so the name appears once.
    """
    message = " ".join(message.split())
    named = f"{kind} {spec.key!r}: "
    if message.startswith(named):
        return message
    type_names = {spec.type, getattr(spec.cls, "type_name", None) or spec.type}
    for type_name in type_names:
        for prefix in (f"{kind} {type_name}: ", f"{kind} {type_name!r}: ", f"{type_name}: "):
            if message.startswith(prefix):
                return named + message[len(prefix):]
    return named + message
