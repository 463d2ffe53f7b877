"""Additive white Gaussian noise channel (Sionna ``AWGN``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.core.channel import CHANNELS, Channel, ChannelOutput
from simulator.core.snr import noise_variance

if TYPE_CHECKING:
    import torch


@CHANNELS.register("awgn")
class AWGNChannel(Channel):
    """Complex AWGN: ``y = x + n``, ``n ~ CN(0, no)`` with ``no = 10**(-snr_db/10)`` per example.

    Output: ``symbols = y`` ``[batch, n]``, ``no_eff = no`` broadcast to ``[batch, n]``, ``raw = y``,
    ``state = {"no": [batch]}``.

    Example::

        channel = AWGNChannel()
        out = channel(torch.ones(4, 8, dtype=torch.complex64), torch.full((4,), 10.0))
        out.symbols.shape, out.no_eff[0, 0]   # (torch.Size([4, 8]), tensor(0.1000))
    """

    description = "Additive white Gaussian noise (Sionna AWGN)"

    def __init__(self, params=None, device: str = "cpu"):
        super().__init__(params, device)
        from sionna.phy.channel import AWGN

        self._awgn = AWGN(device=self.device)

    def propagate(self, x: torch.Tensor, snr_db: torch.Tensor) -> ChannelOutput:
        no = noise_variance(snr_db)
        y = self._awgn(x, no[:, None])
        return ChannelOutput(symbols=y, no_eff=no[:, None].expand_as(y.real), raw=y, state={"no": no})
