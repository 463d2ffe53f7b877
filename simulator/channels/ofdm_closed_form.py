"""One-stream OFDM reception in closed form, computed on the resource elements that carry data.

The OFDM channel's default ``implementation: closed-form`` (:mod:`simulator.channels.ofdm`). Sionna still draws the
channel impulse responses (Rayleigh block fading or 3GPP TDL); from there, for one transmitter, one stream and
one receive antenna, every step has a short exact form:

* frequency response ``H[t, f] = sum_m a_m(t) exp(-j 2 pi f tau_m)`` on the whole grid (it is cheap, and the
  channel normalisation averages over it), as Sionna's ``cir_to_ofdm_channel`` computes it;
* received signal ``y = H x + sqrt(no) w`` only on the used data REs and on the pilot REs;
* LS estimate ``h_ls = y_p / p`` with error variance ``no / |p|^2`` at the pilots; with the Kronecker pattern
  (pilots on every effective subcarrier of the pilot symbols) Sionna's frequency interpolation is the identity,
  and its time interpolation is the line through the two pilot symbols it pairs with each OFDM symbol
  (extrapolated before the first and after the last) or the nearest pilot symbol (ties to the earlier one);
* equalisation: for one stream Sionna's (unbiased) LMMSE and ZF equalisers both reduce to
  ``x_hat = y / h_hat`` with ``no_eff = (no + err_var) / |h_hat|^2``.

A 32-symbol image fills 4 % of a default grid's data REs, so skipping the rest is most of the saving.
The received grids, the true channel and the full-grid estimates (the channel output's ``raw`` and ``state``)
are built only when a receiver reads them, from the same draws, replayed from the generator state the call
started in (so an output holds no grid-sized draws while nobody reads them): the noise of the REs not used here
comes from a generator seeded by one number drawn with the rest, so the grids agree bit for bit with the values
the equalised symbols were computed from. The tests compare this implementation with Sionna's estimator and
equaliser blocks run on those grids.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from simulator.core.channel import ChannelOutput

#: the largest seed drawn for the noise of the REs only ``raw`` shows (torch generators take 64-bit seeds)
_MAX_SEED = 2**62


class GridLayout:
    """Where data and pilots sit in one resource grid, and which pilots estimate each RE.

    Built from a Sionna ``ResourceGrid`` with a one-stream pilot pattern that is either empty or has pilots on
    every effective subcarrier of its pilot OFDM symbols. Positions are (OFDM symbol ``t``, effective subcarrier
    ``f``) in Sionna's order (row-major over the grid); ``fft_index[f]`` is ``f``'s subcarrier in the FFT.
    """

    def __init__(self, resource_grid, interpolation: str, device: str):
        rg = resource_grid
        self.num_ofdm_symbols = int(rg.num_ofdm_symbols)
        self.fft_size = int(rg.fft_size)
        self.num_effective = int(rg.num_effective_subcarriers)
        mask = rg.pilot_pattern.mask.reshape(self.num_ofdm_symbols, self.num_effective).cpu().numpy().astype(bool)
        data_t, data_f = np.nonzero(~mask)
        pilot_t, pilot_f = np.nonzero(mask)
        self.pilot_symbols = np.unique(pilot_t)
        if pilot_t.size and pilot_t.size != self.pilot_symbols.size * self.num_effective:
            raise ValueError("the closed-form OFDM receiver needs pilots on every effective subcarrier of the "
                             "pilot OFDM symbols (the kronecker pattern)")

        def index(values) -> torch.Tensor:
            return torch.as_tensor(np.asarray(values, dtype=np.int64), device=device)

        self.fft_index = index(rg.effective_subcarrier_ind)
        self.data_t, self.data_f = index(data_t), index(data_f)
        self.pilot_t, self.pilot_f = index(pilot_t), index(pilot_f)
        self.pilots = rg.pilot_pattern.pilots.reshape(-1).to(device=device, dtype=torch.complex64)
        from sionna.phy.channel import subcarrier_frequencies

        self.frequencies = subcarrier_frequencies(self.fft_size, rg.subcarrier_spacing, device=device)  # Hz
        if self.pilot_symbols.size:
            first, second = _interpolation_pairs(self.pilot_symbols, self.num_ofdm_symbols, interpolation)
            self.first_pilot, self.second_pilot = index(first), index(second)
            device_float = {"device": device, "dtype": torch.float32}
            self.first_symbol = torch.as_tensor(self.pilot_symbols[first], **device_float)
            self.second_symbol = torch.as_tensor(self.pilot_symbols[second], **device_float)

    @property
    def data_per_grid(self) -> int:
        return int(self.data_t.numel())

    def interpolate(self, at_pilots: torch.Tensor, grid: torch.Tensor, t: torch.Tensor, f: torch.Tensor):
        """Estimates at REs ``(grid[i], t[i], f[i])`` from ``at_pilots`` ``[batch, G, K, F_eff]`` (one value per
        pilot, ``K`` pilot symbols), as Sionna's interpolators give them; returns ``[batch, len(t)]``."""
        k0, k1 = self.first_pilot[t], self.second_pilot[t]
        y0, y1 = at_pilots[:, grid, k0, f], at_pilots[:, grid, k1, f]
        t0, t1 = self.first_symbol[t], self.second_symbol[t]
        step = t1 - t0
        slope = torch.where(step != 0, (y1 - y0) / torch.where(step != 0, step, 1.0), torch.zeros_like(y0))
        return (t.to(torch.float32) - t0) * slope + y0


def _interpolation_pairs(pilot_symbols: np.ndarray, num_symbols: int, interpolation: str):
    """For every OFDM symbol, the indices (into ``pilot_symbols``) of the two pilot symbols its estimate is drawn
    between: Sionna's ``LinearInterpolator`` pairing, or twice the nearest one for ``nn``."""
    first = np.zeros(num_symbols, np.int64)
    second = np.zeros(num_symbols, np.int64)
    if interpolation == "nn":
        nearest = np.argmin(np.abs(np.arange(num_symbols)[:, None] - pilot_symbols[None, :]), axis=1)
        return nearest, nearest
    if pilot_symbols.size == 1:
        return first, second
    low, high = 0, 1
    for t in range(num_symbols):
        first[t], second[t] = low, high
        if t == pilot_symbols[high] and high < pilot_symbols.size - 1:
            low, high = high, high + 1
    return first, second


def frequency_response(a: torch.Tensor, tau: torch.Tensor, frequencies: torch.Tensor, normalize: bool):
    """``H[g, t, f] = sum_m a[g, m, t] exp(-j 2 pi frequencies[f] tau[g, m])``: ``a`` ``[grids, paths, S]``
    complex64, ``tau`` ``[grids, paths]`` seconds, ``frequencies`` ``[F]`` Hz; returns ``[grids, S, F]``.
    With ``normalize`` each grid is scaled to unit mean energy per RE (Sionna's ``normalize_channel``)."""
    phase = (-2 * math.pi) * tau[:, :, None] * frequencies
    h = torch.bmm(a.transpose(1, 2), torch.complex(torch.cos(phase), torch.sin(phase)))
    if normalize:
        energy = h.abs().square().mean(dim=(1, 2), keepdim=True)
        h = torch.where(energy > 0, h / energy.sqrt(), h)
    return h


def propagate(layout: GridLayout, sample_cir: Callable, normalize: bool, perfect_csi: bool, x: torch.Tensor,
              no: torch.Tensor, generator: torch.Generator) -> ChannelOutput:
    """Send ``x`` ``[batch, n]`` (complex64, unit energy) with noise variance ``no`` ``[batch]``.

    ``sample_cir(grids)`` draws Sionna channel impulse responses ``a`` ``[grids, 1, 1, 1, 1, paths, S]`` and
    ``tau`` ``[grids, 1, 1, paths]`` for the grids in example-major order; ``generator`` is the engine generator
    Sionna draws from. Returns the channel output of :class:`~simulator.channels.ofdm.OFDMChannel`, with ``raw``
    and ``state`` computed on first use.

    The output keeps no draws for its pending details, only the generator's state before them: reading ``raw``
    or ``state`` replays the draws from that state (and puts the generator back as it was), so what a call holds
    on to is ``x`` and its results, whatever the channel's size.
    """
    start_state = generator.get_state()
    draws = _draw(layout, sample_cir, x, generator)
    received = _receive(layout, draws, _grid_response(layout, draws, normalize), perfect_csi, x, no)

    def details():
        state_now = generator.get_state()
        generator.set_state(start_state)
        try:
            draws = _draw(layout, sample_cir, x, generator)
        finally:
            generator.set_state(state_now)
        h = _grid_response(layout, draws, normalize)
        return _full_grids(layout, draws, h, x, no, _receive(layout, draws, h, perfect_csi, x, no))

    return ChannelOutput(symbols=received.symbols, no_eff=received.no_eff, details=details)


@dataclass
class _Draws:
    """The random numbers of one call: impulse responses ``a`` ``[batch*G, paths, S]`` and ``tau``
    ``[batch*G, paths]``, the noise of the used data REs ``[batch, n]`` and of the pilots ``[batch, G, P]``, and
    the seed of the noise on every other RE (drawn only if ``raw`` is read)."""

    a: torch.Tensor
    tau: torch.Tensor
    data_noise: torch.Tensor
    pilot_noise: torch.Tensor
    rest_seed: int


@dataclass
class _Received:
    """What one-stream reception computes on the used REs: equalised ``symbols`` and ``no_eff`` ``[batch, n]``,
    the LS estimates at the pilots ``h_ls`` and their error variance ``err_ls`` ``[batch, G, K, F_eff]`` (``None``
    with perfect CSI), and the positions ``(grid, t, f)`` of the ``n`` used REs."""

    symbols: torch.Tensor
    no_eff: torch.Tensor
    h_ls: torch.Tensor | None
    err_ls: torch.Tensor | None
    used: tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _draw(layout: GridLayout, sample_cir: Callable, x: torch.Tensor, generator: torch.Generator) -> _Draws:
    """Every random number of a call sending ``x`` ``[batch, n]``, in a fixed order, from ``generator``."""
    from sionna.phy.utils import complex_normal

    batch, n = x.shape
    grids = max(1, math.ceil(n / layout.data_per_grid))
    a, tau = sample_cir(batch * grids)
    device = x.device
    return _Draws(
        a=a.reshape(batch * grids, a.shape[-2], a.shape[-1]),
        tau=tau.reshape(batch * grids, tau.shape[-1]),
        data_noise=complex_normal((batch, n), device=device, generator=generator),
        pilot_noise=complex_normal((batch, grids, layout.pilots.numel()), device=device, generator=generator),
        rest_seed=int(torch.randint(_MAX_SEED, (1,), generator=generator, device=device)),
    )


def _grid_response(layout: GridLayout, draws: _Draws, normalize: bool) -> torch.Tensor:
    """The true channel on every RE of the drawn grids, ``[batch, G, S, fft_size]`` complex64."""
    batch, grids = draws.pilot_noise.shape[:2]
    return frequency_response(draws.a, draws.tau, layout.frequencies, normalize).reshape(
        batch, grids, layout.num_ofdm_symbols, layout.fft_size)


def _receive(layout: GridLayout, draws: _Draws, h: torch.Tensor, perfect_csi: bool, x: torch.Tensor,
             no: torch.Tensor) -> _Received:
    """Received signal, LS estimation and equalisation on the used data REs and the pilots only; ``h`` is
    :func:`_grid_response` of ``draws``."""
    batch, n = x.shape
    grids = draws.pilot_noise.shape[1]
    used = torch.arange(n, device=x.device)
    grid, slot = used // layout.data_per_grid, used % layout.data_per_grid
    t, f = layout.data_t[slot], layout.data_f[slot]
    sqrt_no = no.sqrt()
    h_data = h[:, grid, t, layout.fft_index[f]]
    y_data = h_data * x + sqrt_no[:, None] * draws.data_noise
    if perfect_csi:
        h_ls = err_ls = None
        h_hat, err_var = h_data, torch.zeros_like(no)[:, None]
    else:
        y_pilots = (h[:, :, layout.pilot_t, layout.fft_index[layout.pilot_f]] * layout.pilots
                    + sqrt_no[:, None, None] * draws.pilot_noise)
        at_pilots = (batch, grids, layout.pilot_symbols.size, layout.num_effective)
        h_ls = (y_pilots / layout.pilots).reshape(at_pilots)
        err_ls = (no[:, None, None] / layout.pilots.abs().square()).to(torch.complex64).reshape(
            batch, 1, *at_pilots[2:]).expand(at_pilots)
        h_hat = layout.interpolate(h_ls, grid, t, f)
        err_var = layout.interpolate(err_ls, grid, t, f).real.clamp_min(0.0)
    return _Received(symbols=y_data / h_hat, no_eff=(no[:, None] + err_var) / h_hat.abs().square(), h_ls=h_ls,
                     err_ls=err_ls, used=(grid, t, f))


def _full_grids(layout: GridLayout, draws: _Draws, h: torch.Tensor, x: torch.Tensor, no: torch.Tensor,
                received: _Received):
    """``raw`` ``[batch, G, S, fft_size]`` and ``state`` of one call, from the draws :func:`propagate` made and
    their channel ``h`` (:func:`_grid_response`)."""
    batch, grids = h.shape[:2]
    shape = tuple(h.shape)
    grid, t, f = received.used
    data_at = (slice(None), grid, t, layout.fft_index[f])
    pilots_at = (slice(None), slice(None), layout.pilot_t, layout.fft_index[layout.pilot_f])
    from sionna.phy.utils import complex_normal

    rest = torch.Generator(device=x.device)
    rest.manual_seed(draws.rest_seed)
    noise = complex_normal(shape, device=x.device, generator=rest)
    noise[data_at] = draws.data_noise
    noise[pilots_at] = draws.pilot_noise
    sent = torch.zeros(shape, dtype=torch.complex64, device=x.device)
    sent[data_at] = x
    sent[pilots_at] = layout.pilots
    raw = h * sent + no.sqrt()[:, None, None, None] * noise

    effective = (batch, grids, layout.num_ofdm_symbols, layout.num_effective)
    if received.h_ls is None:
        h_hat = h[..., layout.fft_index]
        err_var = torch.zeros(effective, dtype=torch.float32, device=x.device)
    else:
        every = torch.arange(grids * layout.num_ofdm_symbols * layout.num_effective, device=x.device)
        all_grid = every // (layout.num_ofdm_symbols * layout.num_effective)
        all_t = every // layout.num_effective % layout.num_ofdm_symbols
        all_f = every % layout.num_effective
        h_hat = layout.interpolate(received.h_ls, all_grid, all_t, all_f).reshape(effective)
        err_var = layout.interpolate(received.err_ls, all_grid, all_t, all_f).real.clamp_min(0.0).reshape(effective)
    return raw, {"h_freq": h, "h_hat": h_hat, "err_var": err_var, "no": no}
