"""The channel interface every channel type implements.

A channel takes unit-energy complex symbols ``x`` ``[batch, n]`` and a per-example SNR ``snr_db`` ``[batch]``
(Es/N0 in dB, see :mod:`simulator.core.snr`) and returns a :class:`ChannelOutput`: the equalised symbols
``[batch, n]``, the per-symbol effective noise variance ``[batch, n]`` (channel state information for learned
receivers), and the raw received signal with the channel state, for receivers that equalise themselves.

Channels are differentiable in ``x`` so that learned transmitters can be trained through them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from simulator.core.params import Params
from simulator.core.registry import Registry


@dataclass
class ChannelOutput:
    """What a channel hands to a receiver.

    Attributes:
        symbols: ``[batch, n]`` complex64, equalised estimates of the transmitted symbols.
        no_eff: ``[batch, n]`` float32, effective noise variance of each estimate
            (AWGN: ``no``; flat fading with ZF: ``no / |h|^2``; OFDM: the equaliser's ``no_eff``).
        raw: the received signal before equalisation (``[batch, n]`` for flat channels, the resource grid for
            OFDM); see each channel's docstring.
        state: channel state by name (for example ``h`` ``[batch, n]`` for flat fading, ``no`` ``[batch]``).
    """

    symbols: torch.Tensor
    no_eff: torch.Tensor
    raw: torch.Tensor | None = None
    state: dict[str, torch.Tensor] = field(default_factory=dict)


class Channel(ABC):
    """A registered channel type, configured by its ``Params`` model.

    Subclasses implement :meth:`propagate`; :meth:`__call__` checks the inputs first.
    ``__init__`` builds the Sionna blocks on ``device`` (Sionna blocks do not move with ``.to()``).
    """

    type_name: ClassVar[str]
    description: ClassVar[str] = ""

    class Params(Params):
        pass

    def __init__(self, params: Params | None = None, device: str = "cpu"):
        self.params = params if params is not None else self.Params()
        self.device = str(device)

    def __call__(self, x: torch.Tensor, snr_db: torch.Tensor) -> ChannelOutput:
        """Send ``x`` ``[batch, n]`` complex64 at per-example ``snr_db`` ``[batch]``."""
        if x.dim() != 2 or not x.is_complex():
            raise ValueError(f"channel input must be complex [batch, n], got {tuple(x.shape)} {x.dtype}")
        snr_db = torch.as_tensor(snr_db, dtype=torch.float32, device=x.device)
        if snr_db.dim() == 0:
            snr_db = snr_db.expand(x.shape[0])
        if snr_db.shape != (x.shape[0],):
            raise ValueError(f"snr_db must have shape [batch]={x.shape[0]}, got {tuple(snr_db.shape)}")
        return self.propagate(x.to(torch.complex64), snr_db)

    @abstractmethod
    def propagate(self, x: torch.Tensor, snr_db: torch.Tensor) -> ChannelOutput:
        """Channel proper: ``x`` ``[batch, n]`` complex64, ``snr_db`` ``[batch]`` float32."""

    def pilot_overhead(self, n: int) -> float:
        """Fraction of the resource elements used for ``n`` data symbols that carry pilots (0 for flat channels)."""
        return 0.0

    def fingerprint(self) -> str | None:
        """What determines this channel's output beyond its parameters (e.g. a hash of a measured channel file it
        replays), or ``None``. It enters the identity of every result on this channel, so changing it recomputes
        them instead of reusing stale rows."""
        return None


CHANNELS = Registry("channel", entry_point_group="semsim.channels", base=Channel)
