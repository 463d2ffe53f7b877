"""SNR and power conventions, in one place.

semsim's SNR is **Es/N0 per complex channel use, in dB**, given per example. Transmitted symbols have unit average
energy per example, so the noise variance per complex dimension is ``no = 10**(-snr_db/10)``.
A link that carries ``bits_per_use`` information bits per complex channel use has
``Eb/N0 = Es/N0 - 10 log10(bits_per_use)``, which is what Sionna's ``ebnodb2no`` assumes too.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def noise_variance(snr_db: torch.Tensor) -> torch.Tensor:
    """Noise variance per complex dimension ``10**(-snr_db/10)``; same shape as ``snr_db``, float32."""
    import torch

    return torch.pow(10.0, -snr_db.to(torch.float32) / 10.0)


def normalize_energy(symbols: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``symbols`` ``[batch, n]`` complex, each example scaled to unit average energy (``mean |x|^2 = 1`` per
    row), the power every transmitter must deliver; differentiable, and ``eps`` keeps an all-zero row finite."""
    energy = symbols.abs().square().mean(dim=-1, keepdim=True)
    return symbols / energy.clamp_min(eps).sqrt()


def ebno_db(esno_db: float, bits_per_use: float) -> float:
    """Eb/N0 in dB for Es/N0 ``esno_db`` and ``bits_per_use`` information bits per complex channel use.

    ``nan`` when the link carries no counted information bits (``bits_per_use`` is 0 or ``None``).
    """
    if not bits_per_use:
        return math.nan
    return esno_db - 10.0 * math.log10(bits_per_use)
