"""Public path of the link protocol (``from simulator.link import Link``); the code is :mod:`simulator.core.link`."""

from simulator.core.link import LINKS, Link, LinkContext, TensorDict

__all__ = ["LINKS", "Link", "LinkContext", "TensorDict"]
