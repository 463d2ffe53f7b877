"""Channel types. Importing this package registers the built-in ones: ``awgn``, ``rayleigh``, ``ofdm``."""

from simulator.channels import awgn, rayleigh  # noqa: F401
from simulator.channels.base import CHANNELS, Channel, ChannelOutput

try:  # the OFDM channel is being added in the same change
    from simulator.channels import ofdm  # noqa: F401
except ImportError:  # pragma: no cover
    pass

__all__ = ["CHANNELS", "Channel", "ChannelOutput"]
