"""OFDM over a frequency-selective channel (Sionna resource grid, OFDM channel, estimator, equaliser)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import Field, NonNegativeInt, ValidationInfo, field_validator, model_validator

from simulator.core.channel import CHANNELS, Channel, ChannelOutput
from simulator.core.params import Params
from simulator.core.snr import noise_variance

if TYPE_CHECKING:
    import torch
    from sionna.phy.ofdm import PilotPattern

_TDL_FIELDS = ("tdl_model", "delay_spread", "carrier_frequency", "ue_speed")

#: resource grids sent per chunk: a longer batch is propagated chunk by chunk, so the transient grid-sized tensors
#: (impulse responses, frequency responses, Sionna's per-RE blocks) do not grow with the batch
CHUNK_GRIDS = 512


@CHANNELS.register("ofdm")
class OFDMChannel(Channel):
    """Single-antenna OFDM: resource grid mapping, frequency-domain channel, channel estimation, equalisation.

    Grids: each example's ``n`` data symbols fill ``G = ceil(n / D)`` resource grids, ``D`` the data resource
    elements (REs) per grid (no pilots, guards or DC). The last grid is zero-padded. Zeros bias nothing: the
    LS estimator reads only pilot REs, the one-stream ZF/LMMSE equalisers work RE by RE, the noise is drawn
    independently of ``x`` and channel normalisation depends on ``h`` only, so a padding RE influences no
    other RE. Padding is stripped from ``symbols`` and ``no_eff``.

    Channel: every grid, also each of one example's ``G`` grids, gets an independent realisation. ``rayleigh``
    is Sionna's ``RayleighBlockFading``: one ``CN(0, 1)`` coefficient per grid, flat in time and frequency.
    ``tdl`` is the 3GPP TR 38.901 TDL model (unit-energy power delay profile), a new realisation per grid
    that varies across the grid's OFDM symbols at ``ue_speed``. Sionna's frequency-domain ``OFDMChannel``
    has no ISI/ICI, so ``cyclic_prefix_length`` only sets the OFDM symbol duration (the time step of the
    channel's evolution). With ``normalize_channel`` each grid's channel is scaled to unit mean energy per RE
    (Sionna's tutorials do this for TDL/CDL; it removes the grid-to-grid power fluctuation). AWGN of variance
    ``no = 10**(-snr_db/10)`` is added to every RE: ``snr_db`` is Es/N0 per data RE (pilots have unit energy).

    Pilots: ``kronecker`` puts QPSK pilots on all effective subcarriers of ``pilot_ofdm_symbol_indices``
    (Sionna's Kronecker pattern for one stream). Sionna's ``KroneckerPilotPattern`` draws its pilots from
    the shared Sionna generator; here they come from a local numpy generator seeded with ``pilot_seed``, so
    they are fixed by the configuration and building the channel consumes no shared randomness.

    CSI: ``ls`` is Sionna's ``LSChannelEstimator`` (``nn`` or ``lin`` interpolation); its error variance is
    the pilot noise variance, interpolated like the estimates, and ignores interpolation/extrapolation
    error, so ``no_eff`` is only approximately calibrated (see the tests). ``perfect`` uses the true channel
    (nulled subcarriers removed) and error variance 0.

    Input: ``x`` ``[batch, n]`` complex64 unit-energy data symbols, ``snr_db`` ``[batch]`` float32.

    Output: ``symbols`` ``[batch, n]`` complex64, equalised; ``no_eff`` ``[batch, n]`` float32, the
    equaliser's effective noise variance; ``raw`` ``[batch, G, num_ofdm_symbols, fft_size]`` complex64, the
    received resource grids (pilots, guards, DC and padding included); ``state``:
    ``h_freq`` ``[batch, G, num_ofdm_symbols, fft_size]`` complex64, the true channel;
    ``h_hat`` ``[batch, G, num_ofdm_symbols, num_effective_subcarriers]`` complex64, the channel the
    equaliser used on data and pilot REs; ``err_var`` (same shape, float32), its error variance;
    ``no`` ``[batch]`` float32.

    Example::

        channel = OFDMChannel(OFDMChannel.Params(model="rayleigh"))
        out = channel(torch.ones(4, 1000, dtype=torch.complex64), torch.full((4,), 20.0))
        out.symbols.shape, out.raw.shape   # (torch.Size([4, 1000]), torch.Size([4, 2, 14, 76]))
    """

    description = "OFDM (Sionna resource grid), Rayleigh block or 3GPP TDL fading, LS/perfect CSI, ZF/LMMSE"

    class Params(Params):
        """OFDM settings.

        The defaults are a 5G NR-like slot: 14 symbols at 30 kHz (numerology 1), 76 subcarriers of which 64
        carry data or pilots (guards (5, 6), DC null), pilots on symbols 2 and 11 as in Sionna's OFDM
        examples, TDL-A with 100 ns ("nominal") delay spread at 3.5 GHz (band n78), a pedestrian 3 m/s, LS
        estimation with linear interpolation and LMMSE equalisation.
        """

        fft_size: int = Field(default=76, ge=2, le=4096, description="subcarriers, guards and DC included")
        num_ofdm_symbols: int = Field(default=14, ge=1, le=64, description="OFDM symbols per grid (NR slot)")
        subcarrier_spacing: float = Field(default=30e3, gt=0.0, le=10e6, description="Hz (NR numerology 1)")
        cyclic_prefix_length: int = Field(
            default=6,
            ge=0,
            validate_default=True,
            description="samples, at most fft_size; sets the OFDM symbol duration (no ISI)",
        )
        dc_null: bool = Field(default=True, description="null the DC subcarrier")
        num_guard_carriers: tuple[NonNegativeInt, NonNegativeInt] = Field(
            default=(5, 6),
            validate_default=True,
            description="nulled guard subcarriers at the (left, right) band edge",
        )
        pilot_pattern: Literal["kronecker", "empty"] = Field(
            default="kronecker", description="kronecker: pilots on all effective subcarriers of pilot symbols"
        )
        pilot_ofdm_symbol_indices: tuple[int, ...] = Field(
            default=(2, 11), validate_default=True, description="OFDM symbols with pilots (kronecker only)"
        )
        pilot_seed: int = Field(default=0, ge=0, description="seed of the fixed QPSK pilot sequence")
        model: Literal["rayleigh", "tdl"] = Field(
            default="tdl", description="rayleigh: flat block fading per grid; tdl: 3GPP TR 38.901 TDL"
        )
        tdl_model: Literal["A", "B", "C", "D", "E"] = Field(
            default="A", description="TDL profile (A-C NLOS, D-E LOS)"
        )
        delay_spread: float = Field(default=100e-9, gt=0.0, le=10e-6, description="RMS delay spread in s")
        carrier_frequency: float = Field(default=3.5e9, gt=0.0, le=100e9, description="Hz (sets Doppler)")
        ue_speed: float = Field(default=3.0, ge=0.0, le=500.0, description="UE speed in m/s (min = max)")
        normalize_channel: bool | None = Field(
            default=None,
            description="scale each grid's channel to unit mean energy per RE; null: true for tdl, false for "
            "rayleigh (normalising a flat grid would set |h| = 1 and remove the fading)",
        )
        estimator: Literal["ls", "perfect"] = Field(
            default="ls",
            validate_default=True,
            description="ls: least squares at the pilots plus interpolation; perfect: true channel",
        )
        interpolation: Literal["nn", "lin"] = Field(
            default="lin", description="LS interpolation: nearest pilot, or linear (frequency, then time)"
        )
        equalizer: Literal["lmmse", "zf"] = Field(
            default="lmmse", description="lmmse or zf (for one stream both give y / h_hat; they differ only in "
            "Sionna's rounding)"
        )
        implementation: Literal["closed-form", "sionna"] = Field(
            default="closed-form",
            description="closed-form: estimation and equalisation on the used resource elements only (raw and "
            "state built when read); sionna: Sionna's estimator and equaliser blocks on every resource element "
            "(the reference, several times slower)",
        )

        # Field validators see the fields declared before theirs in info.data (absent if those failed);
        # validate_default=True makes them check defaults against user-set fields too.

        @field_validator("cyclic_prefix_length")
        @classmethod
        def _cp_fits(cls, value: int, info: ValidationInfo) -> int:
            fft_size = info.data.get("fft_size")
            if fft_size is not None and value > fft_size:
                raise ValueError(f"cyclic_prefix_length {value} exceeds fft_size {fft_size}")
            return value

        @field_validator("num_guard_carriers")
        @classmethod
        def _guards_leave_data(cls, value: tuple[int, int], info: ValidationInfo) -> tuple[int, int]:
            fft_size, dc_null = info.data.get("fft_size"), info.data.get("dc_null", False)
            if fft_size is None:
                return value
            left, right = value
            if fft_size - left - right - int(dc_null) < 1:
                raise ValueError(
                    f"guards {list(value)}{' and the DC null' if dc_null else ''} leave no data or pilot "
                    f"subcarrier of fft_size {fft_size}"
                )
            if dc_null and (left > fft_size // 2 or right > fft_size - fft_size // 2 - 1):
                raise ValueError(f"guards {list(value)} cover the DC subcarrier {fft_size // 2}")
            return value

        @field_validator("pilot_ofdm_symbol_indices")
        @classmethod
        def _pilot_symbols_fit(cls, value: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
            num_symbols = info.data.get("num_ofdm_symbols")
            if info.data.get("pilot_pattern") != "kronecker" or num_symbols is None:
                return value
            if not value:
                raise ValueError("pilot_pattern kronecker needs at least one pilot OFDM symbol")
            if len(set(value)) != len(value):
                raise ValueError(f"{list(value)} has duplicates")
            bad = [i for i in value if not 0 <= i < num_symbols]
            if bad:
                raise ValueError(f"{bad} outside 0..{num_symbols - 1} (num_ofdm_symbols {num_symbols})")
            if len(value) >= num_symbols:
                raise ValueError("pilots on every OFDM symbol leave none for data")
            return value

        @field_validator("normalize_channel")
        @classmethod
        def _normalize_keeps_fading(cls, value: bool | None, info: ValidationInfo) -> bool | None:
            if value and info.data.get("model") == "rayleigh":
                raise ValueError(
                    "with model rayleigh, normalising scales each grid's flat coefficient to |h| = 1, "
                    "which removes the fading"
                )
            return value

        @field_validator("estimator")
        @classmethod
        def _ls_needs_pilots(cls, value: str, info: ValidationInfo) -> str:
            if value == "ls" and info.data.get("pilot_pattern") == "empty":
                raise ValueError("ls estimation needs pilots: use pilot_pattern kronecker or perfect CSI")
            return value

        @model_validator(mode="after")
        def _tdl_fields_need_tdl(self):
            if self.model == "rayleigh":
                unused = sorted(set(_TDL_FIELDS) & self.model_fields_set)
                if unused:
                    verb = "is" if len(unused) == 1 else "are"
                    raise ValueError(f"{', '.join(unused)} {verb} only used with model: tdl")
            return self

    def __init__(self, params=None, device: str = "cpu"):
        # numpy and Sionna are imported when a channel is built, torch when it runs, not when the type is
        # registered (light `semsim list` and `validate`)
        import numpy as np
        from sionna.phy.channel import OFDMChannel as SionnaOFDMChannel
        from sionna.phy.channel import RayleighBlockFading
        from sionna.phy.channel.tr38901 import TDL
        from sionna.phy.mimo import StreamManagement
        from sionna.phy.ofdm import (
            LMMSEEqualizer,
            LSChannelEstimator,
            RemoveNulledSubcarriers,
            ResourceGrid,
            ResourceGridMapper,
            ZFEqualizer,
        )

        super().__init__(params, device)
        p = self.params
        self.resource_grid = ResourceGrid(
            num_ofdm_symbols=p.num_ofdm_symbols,
            fft_size=p.fft_size,
            subcarrier_spacing=p.subcarrier_spacing,
            num_tx=1,
            num_streams_per_tx=1,
            cyclic_prefix_length=p.cyclic_prefix_length,
            num_guard_carriers=tuple(p.num_guard_carriers),
            dc_null=p.dc_null,
            pilot_pattern="empty",
            device=self.device,
        )
        if p.pilot_pattern == "kronecker":
            self.resource_grid.pilot_pattern = self._kronecker_pilots()
        self._stream_management = StreamManagement(np.ones([1, 1]), 1)
        self._mapper = ResourceGridMapper(self.resource_grid, device=self.device)
        if p.model == "rayleigh":
            model = RayleighBlockFading(num_rx=1, num_rx_ant=1, num_tx=1, num_tx_ant=1, device=self.device)
        else:
            model = TDL(
                model=p.tdl_model,
                delay_spread=p.delay_spread,
                carrier_frequency=p.carrier_frequency,
                min_speed=p.ue_speed,
                max_speed=p.ue_speed,
                device=self.device,
            )
        self._model = model
        if p.implementation == "closed-form":
            from simulator.channels.ofdm_closed_form import GridLayout

            self._layout = GridLayout(self.resource_grid, p.interpolation, self.device)
            return
        # Sionna 2.2's OFDMChannel has no add_awgn flag: it adds AWGN whenever it is called with ``no``.
        self._channel = SionnaOFDMChannel(
            model,
            self.resource_grid,
            normalize_channel=self.normalizes_channel,
            return_channel=True,
            device=self.device,
        )
        self._remove_nulled = RemoveNulledSubcarriers(self.resource_grid, device=self.device)
        self._estimator = None
        if p.estimator == "ls":
            self._estimator = LSChannelEstimator(
                self.resource_grid, interpolation_type=p.interpolation, device=self.device
            )
        if p.equalizer == "lmmse":
            # One stream, one antenna: there is no interference to whiten; skipping the whitening (batched
            # 1x1 Cholesky factorisations and triangular solves) gives the same result ~1.5x faster.
            self._equalizer = LMMSEEqualizer(
                self.resource_grid, self._stream_management, whiten_interference=False, device=self.device
            )
        else:
            self._equalizer = ZFEqualizer(self.resource_grid, self._stream_management, device=self.device)

    def _kronecker_pilots(self) -> PilotPattern:
        """Sionna's one-stream Kronecker pattern; QPSK pilots from a generator seeded by ``pilot_seed``."""
        import numpy as np
        from sionna.phy.ofdm import PilotPattern

        p, rg = self.params, self.resource_grid
        indices = list(p.pilot_ofdm_symbol_indices)
        mask = np.zeros([1, 1, rg.num_ofdm_symbols, rg.num_effective_subcarriers], bool)
        mask[..., indices, :] = True
        num_pilots = len(indices) * rg.num_effective_subcarriers
        bits = np.random.default_rng(p.pilot_seed).integers(0, 2, size=(2, num_pilots))
        pilots = ((1 - 2 * bits[0]) + 1j * (1 - 2 * bits[1])) / math.sqrt(2)
        return PilotPattern(mask, pilots.astype(np.complex64)[None, None], normalize=True, device=self.device)

    @property
    def normalizes_channel(self) -> bool:
        """Whether each grid's channel is normalised (``normalize_channel``, ``null`` resolved by model)."""
        p = self.params
        return p.normalize_channel if p.normalize_channel is not None else p.model == "tdl"

    @property
    def data_symbols_per_grid(self) -> int:
        """Data resource elements per resource grid."""
        return int(self.resource_grid.num_data_symbols)

    @property
    def pilot_symbols_per_grid(self) -> int:
        """Pilot resource elements per resource grid."""
        return int(self.resource_grid.num_pilot_symbols)

    def grids_per_example(self, n: int) -> int:
        """Resource grids ``G = ceil(n / data_symbols_per_grid)`` (at least 1) carrying ``n`` data symbols."""
        return max(1, math.ceil(n / self.data_symbols_per_grid))

    def pilot_overhead(self, n: int) -> float:
        """Pilot share of the data and pilot REs used for ``n`` data symbols: ``P*G / (P*G + n)``.

        ``P`` pilots per grid; guards, DC and the padding REs of the last grid count as neither.
        """
        pilots = self.pilot_symbols_per_grid * self.grids_per_example(n)
        return pilots / (pilots + n) if pilots + n > 0 else 0.0

    def fingerprint(self) -> str | None:
        """The implementation's version: the closed form's draws differ from Sionna's blocks', and since
        ``closed-form-2`` / ``sionna-chunked-1`` batches longer than one chunk are drawn chunk by chunk."""
        return "closed-form-2" if self.params.implementation == "closed-form" else "sionna-chunked-1"

    def sample_impulse_responses(self, grids: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sionna channel impulse responses of ``grids`` resource grids: path gains ``a`` ``[grids, 1, 1, 1, 1,
        paths, num_ofdm_symbols]`` complex64 and delays ``tau`` ``[grids, 1, 1, paths]`` in seconds."""
        rg = self.resource_grid
        return self._model(grids, rg.num_ofdm_symbols, 1.0 / rg.ofdm_symbol_duration)

    def examples_per_chunk(self, n: int) -> int:
        """How many examples of ``n`` symbols one chunk carries: ``CHUNK_GRIDS`` resource grids (at least one
        example). Longer batches are sent chunk by chunk, so the transient full-grid tensors stay this size."""
        return max(1, CHUNK_GRIDS // self.grids_per_example(n))

    def propagate(self, x: torch.Tensor, snr_db: torch.Tensor) -> ChannelOutput:
        """Send the batch in chunks of :meth:`examples_per_chunk` examples, drawn one after the other from the
        engine generator (a batch of at most one chunk draws exactly what one unchunked call would)."""
        step = self.examples_per_chunk(x.shape[1])
        if self.params.implementation == "closed-form":
            from simulator.channels.ofdm_closed_form import propagate
            from simulator.core.seeding import engine_generator

            generator = engine_generator(x.device)

            def send(x_chunk, snr_chunk):
                return propagate(self._layout, self.sample_impulse_responses, self.normalizes_channel,
                                 self.params.estimator == "perfect", x_chunk, noise_variance(snr_chunk), generator)
        else:
            send = self._propagate_sionna
        return ChannelOutput.concat([send(x[start:start + step], snr_db[start:start + step])
                                     for start in range(0, x.shape[0], step)])

    def _propagate_sionna(self, x: torch.Tensor, snr_db: torch.Tensor) -> ChannelOutput:
        """Sionna's blocks on every RE of every grid: mapper, OFDM channel, LS estimator, equaliser."""
        import torch

        batch, n = x.shape
        rg = self.resource_grid
        per_grid = self.data_symbols_per_grid
        grids = self.grids_per_example(n)
        pad = grids * per_grid - n
        if pad:
            x = torch.cat([x, x.new_zeros(batch, pad)], dim=1)
        no = noise_variance(snr_db)
        no_grid = no.repeat_interleave(grids)  # [batch*G]: each grid gets its example's noise variance

        x_rg = self._mapper(x.reshape(batch * grids, 1, 1, per_grid))
        y, h_freq = self._channel(x_rg, no_grid)
        if self._estimator is not None:
            h_hat, err_var = self._estimator(y, no_grid)
        else:
            h_hat = self._remove_nulled(h_freq)  # [batch*G, 1, 1, 1, 1, S, num_effective_subcarriers]
            err_var = torch.zeros((), dtype=torch.float32, device=h_hat.device)
        x_hat, no_eff = self._equalizer(y, h_hat, err_var, no_grid)

        grid_shape = (batch, grids, rg.num_ofdm_symbols)
        err_var = err_var.expand(h_hat.shape).reshape(*grid_shape, rg.num_effective_subcarriers)
        h_hat = h_hat.reshape(*grid_shape, rg.num_effective_subcarriers)
        return ChannelOutput(
            symbols=x_hat.reshape(batch, grids * per_grid)[:, :n],
            no_eff=no_eff.reshape(batch, grids * per_grid)[:, :n],
            raw=y.reshape(*grid_shape, rg.fft_size),
            state={
                "h_freq": h_freq.reshape(*grid_shape, rg.fft_size),
                "h_hat": h_hat,
                "err_var": err_var,
                "no": no,
            },
        )
