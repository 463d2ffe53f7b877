"""Channel types. Importing this package registers the built-in ones: ``awgn``, ``rayleigh``, ``ofdm``, ``tf``."""

from simulator.channels import awgn, ofdm, rayleigh, tf_channel  # noqa: F401
from simulator.core.channel import CHANNELS, Channel, ChannelOutput

__all__ = ["CHANNELS", "Channel", "ChannelOutput"]
