"""Public path of the channel protocol (``from simulator.channels.base import Channel, ChannelOutput``); the code is
:mod:`simulator.core.channel`."""

from simulator.core.channel import CHANNELS, Channel, ChannelOutput

__all__ = ["CHANNELS", "Channel", "ChannelOutput"]
