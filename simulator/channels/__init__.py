"""Channel types. Importing this package registers the built-in ones: ``awgn``, ``rayleigh``, ``ofdm``."""

from simulator.channels import awgn, ofdm, rayleigh  # noqa: F401
from simulator.channels.base import CHANNELS, Channel, ChannelOutput

__all__ = ["CHANNELS", "Channel", "ChannelOutput"]
