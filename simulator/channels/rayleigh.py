"""Rayleigh flat fading with perfect or imperfect receiver CSI (Sionna flat-fading blocks and equalisers)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from simulator.core.channel import CHANNELS, Channel, ChannelOutput
from simulator.core.params import Params
from simulator.core.snr import noise_variance

if TYPE_CHECKING:
    import torch


@CHANNELS.register("rayleigh")
class RayleighChannel(Channel):
    """Flat Rayleigh fading ``y = h x + n``, ``h ~ CN(0, 1)``, ``n ~ CN(0, no)``, then ZF or LMMSE equalisation.

    Fading:
        ``iid``: an independent coefficient for every symbol (fast fading, the textbook BER formulas).
        ``block``: one coefficient per block of ``block_length`` symbols (``null``: one per example).

    CSI: the receiver equalises with ``h_hat = h + e``, ``e ~ CN(0, csi_error_variance)``
    (``0``: perfect CSI). It treats the estimation error as extra noise, so the equaliser sees noise variance
    ``no + csi_error_variance``; for a single antenna the unbiased LMMSE estimate equals ZF, and both give
    ``no_eff = (no + csi_error_variance) / |h_hat|^2``.

    Output: ``symbols`` ``[batch, n]``, ``no_eff`` ``[batch, n]``, ``raw = y`` ``[batch, n]``,
    ``state = {"h": [batch, n], "h_hat": [batch, n], "no": [batch]}``.
    """

    description = "Rayleigh flat fading (i.i.d. or block), ZF/LMMSE, perfect or imperfect CSI"

    class Params(Params):
        fading: Literal["iid", "block"] = "iid"
        block_length: int | None = Field(default=None, ge=1, description="symbols per coefficient (block fading)")
        equalizer: Literal["zf", "lmmse"] = "zf"
        csi_error_variance: float = Field(default=0.0, ge=0.0, le=10.0)

        @model_validator(mode="after")
        def _block_length_needs_block_fading(self):
            if self.block_length is not None and self.fading != "block":
                raise ValueError("block_length is only used with fading: block")
            return self

    def __init__(self, params=None, device: str = "cpu"):
        super().__init__(params, device)
        from sionna.phy.channel import AWGN, GenerateFlatFadingChannel

        self._generate = GenerateFlatFadingChannel(num_tx_ant=1, num_rx_ant=1, device=self.device)
        self._awgn = AWGN(device=self.device)

    def coefficients(self, batch: int, n: int) -> torch.Tensor:
        """Fading coefficients ``[batch, n]`` complex64 following the fading setting."""
        p = self.params
        if p.fading == "iid":
            return self._generate(batch * n).reshape(batch, n)
        length = p.block_length or n
        blocks = math.ceil(n / length)
        h = self._generate(batch * blocks).reshape(batch, blocks)
        return h.repeat_interleave(length, dim=1)[:, :n]

    def propagate(self, x: torch.Tensor, snr_db: torch.Tensor) -> ChannelOutput:
        import torch
        from sionna.phy.mimo import lmmse_equalizer, zf_equalizer
        from sionna.phy.utils import complex_normal

        batch, n = x.shape
        no = noise_variance(snr_db)
        h = self.coefficients(batch, n)
        y = self._awgn(h * x, no[:, None])
        h_hat = h
        if self.params.csi_error_variance > 0:
            error = complex_normal(h.shape, device=self.device, generator=self._generate.torch_rng)
            h_hat = h + math.sqrt(self.params.csi_error_variance) * error
        s = (no + self.params.csi_error_variance)[:, None].expand(batch, n)
        equalize = zf_equalizer if self.params.equalizer == "zf" else lmmse_equalizer
        x_hat, no_eff = equalize(
            y[..., None], h_hat[..., None, None], s.to(torch.complex64)[..., None, None]
        )
        return ChannelOutput(
            symbols=x_hat[..., 0],
            no_eff=no_eff[..., 0],
            raw=y,
            state={"h": h, "h_hat": h_hat, "no": no},
        )
