"""Turn a validated scenario's specs into live objects: data source, links, channels."""

from __future__ import annotations

from simulator.channels.base import Channel
from simulator.datasource import DataSource
from simulator.errors import UserError
from simulator.link import Link, LinkContext
from simulator.scenario import ChannelSpec, LinkSpec, Scenario


def build_data(scenario: Scenario) -> DataSource | None:
    """The scenario's data source, or ``None``."""
    if scenario.data is None:
        return None
    return scenario.data.cls(scenario.data.params, seed=scenario.seed)


def build_link(spec: LinkSpec, scenario: Scenario, data: DataSource | None = None) -> Link:
    """Instantiate one link on the scenario's device; a failure in a user's link names the link."""
    context = LinkContext(device=scenario.device, seed=scenario.seed, data=data)
    try:
        link = spec.cls(spec.params, context)
    except UserError:
        raise
    except Exception as err:
        raise UserError(f"link {spec.label!r}: could not be built: {type(err).__name__}: {err}") from err
    n = link.channel_uses
    if not isinstance(n, int) or n < 1:
        raise UserError(f"link {spec.label!r}: channel_uses must be a positive int, got {n!r}")
    return link


def build_channel(spec: ChannelSpec, device: str) -> Channel:
    """Instantiate one channel on ``device``."""
    try:
        return spec.cls(spec.params, device=device)
    except UserError:
        raise
    except Exception as err:
        raise UserError(f"channel {spec.label!r}: could not be built: {type(err).__name__}: {err}") from err
