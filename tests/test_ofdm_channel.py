"""OFDM channel (``type: ofdm``): shapes, closed forms, no_eff calibration, per-example SNR, seeding, grad."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from simulator.channels.ofdm import OFDMChannel
from simulator.core.channel import CHANNELS
from simulator.core.seeding import seeded


def qpsk(generator: torch.Generator, batch: int, n: int) -> torch.Tensor:
    bits = torch.randint(0, 2, (2, batch, n), generator=generator) * 2 - 1
    return torch.complex(bits[0].float(), bits[1].float()) / math.sqrt(2)


def make(**params) -> OFDMChannel:
    return OFDMChannel(OFDMChannel.Params(**params))


def data_res(channel: OFDMChannel, grids: torch.Tensor, n: int) -> torch.Tensor:
    """The data REs of ``[batch, G, S, fft_size]`` grids in mapping order, ``[batch, n]``."""
    is_data = channel.resource_grid.build_type_grid()[0, 0] == 0  # [S, fft_size], symbol-major as mapped
    return grids[:, :, is_data].reshape(grids.shape[0], -1)[:, :n]


def test_registered():
    assert CHANNELS.resolve("ofdm") is OFDMChannel


def test_shapes_dtypes_and_pilot_overhead():
    channel = make()
    rg = channel.resource_grid
    effective = 76 - 5 - 6 - 1
    assert rg.num_effective_subcarriers == effective
    assert channel.pilot_symbols_per_grid == 2 * effective
    assert channel.data_symbols_per_grid == 14 * effective - 2 * effective == rg.num_data_symbols
    per_grid = channel.data_symbols_per_grid
    n = per_grid + per_grid // 2  # 1.5 grids
    assert [channel.grids_per_example(k) for k in (1, per_grid, per_grid + 1, n)] == [1, 1, 2, 2]
    pilots = 2 * rg.num_pilot_symbols
    assert channel.pilot_overhead(n) == pytest.approx(pilots / (pilots + n))
    assert make(pilot_pattern="empty", estimator="perfect").pilot_overhead(n) == 0.0

    with seeded(0) as g:
        x = qpsk(g, 3, n)
        out = channel(x, torch.tensor([5.0, 10.0, 15.0]))
    assert out.symbols.shape == (3, n) and out.symbols.dtype == torch.complex64
    assert out.no_eff.shape == (3, n) and out.no_eff.dtype == torch.float32
    assert out.raw.shape == (3, 2, 14, 76) and out.raw.dtype == torch.complex64
    assert out.state["h_freq"].shape == (3, 2, 14, 76) and out.state["h_freq"].dtype == torch.complex64
    assert out.state["h_hat"].shape == (3, 2, 14, effective)
    assert out.state["err_var"].shape == (3, 2, 14, effective)
    torch.testing.assert_close(out.state["no"], 10 ** (-torch.tensor([5.0, 10.0, 15.0]) / 10))
    assert torch.isfinite(out.symbols).all() and (out.no_eff > 0).all()
    # Guards and DC carry nothing: the received grid there is pure noise, the channel is not zero.
    type_grid = rg.build_type_grid()[0, 0]
    assert (out.state["h_freq"][:, :, type_grid >= 2].abs() > 0).all()


def test_pilots_are_deterministic_and_leave_shared_rng_alone():
    with seeded(5) as g:
        before = g.get_state()
        a, b = make(), make()
        assert torch.equal(g.get_state(), before)  # building consumes no shared randomness
    assert torch.equal(a.resource_grid.pilot_pattern.pilots, b.resource_grid.pilot_pattern.pilots)
    other = make(pilot_seed=1).resource_grid.pilot_pattern.pilots
    assert not torch.equal(a.resource_grid.pilot_pattern.pilots, other)
    assert torch.allclose(a.resource_grid.pilot_pattern.pilots.abs(), torch.ones(1))


def test_perfect_csi_at_60_db_recovers_input():
    channel = make(estimator="perfect")
    with seeded(1) as g:
        x = qpsk(g, 8, 1000)
        out = channel(x, torch.full((8,), 60.0))
    err = (out.symbols - x).abs() ** 2
    assert err.mean() < 1e-4
    # hard QPSK decisions are all right
    assert torch.equal(torch.sign(out.symbols.real), torch.sign(x.real))
    assert torch.equal(torch.sign(out.symbols.imag), torch.sign(x.imag))


def test_zf_perfect_csi_matches_closed_form_per_example():
    """ZF with the true channel: ``x_hat = y / h``, ``no_eff = no / |h|^2`` on every data RE, per example."""
    channel = make(model="rayleigh", estimator="perfect", equalizer="zf")
    n = 1000
    snr_db = torch.tensor([0.0, 30.0])
    with seeded(2) as g:
        x = qpsk(g, 2, n)
        out = channel(x, snr_db)
    y = data_res(channel, out.raw, n)
    h = data_res(channel, out.state["h_freq"], n)
    no = torch.tensor([1.0, 1e-3])
    torch.testing.assert_close(out.symbols, y / h, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.no_eff, no[:, None] / h.abs() ** 2, rtol=1e-4, atol=0)
    # Rayleigh block fading: one coefficient per grid, independent across an example's grids
    h_grid = out.state["h_freq"]
    assert torch.allclose(h_grid, h_grid[:, :, :1, :1].expand_as(h_grid))
    assert not torch.allclose(h_grid[:, 0, 0, 0], h_grid[:, 1, 0, 0])


@pytest.mark.parametrize(
    "params", [dict(model="rayleigh", equalizer="zf"), dict(model="tdl", equalizer="lmmse")]
)
def test_no_eff_is_calibrated_with_perfect_csi(params):
    """``|x_hat - x|^2 / no_eff`` is ``|w|^2 / no``, Exp(1) and independent per RE: mean 1, std 1/sqrt(N)."""
    channel = make(estimator="perfect", **params)
    batch, n = 64, 2 * channel.data_symbols_per_grid  # N = 98304 REs: std 0.0032, tolerance > 6 sigma
    with seeded(3) as g:
        x = qpsk(g, batch, n)
        out = channel(x, torch.full((batch,), 10.0))
    ratio = ((out.symbols - x).abs() ** 2 / out.no_eff).mean().item()
    assert abs(ratio - 1.0) < 0.02


def _ls_lin_error_factor(pilot_symbols: tuple[int, int], num_symbols: int) -> float:
    """Mean over data OFDM symbols of ``w0^2 + w1^2``, the LS noise gain of linear interpolation in time."""
    t0, t1 = pilot_symbols
    gains = []
    for t in range(num_symbols):
        if t in pilot_symbols:
            continue
        w1 = (t - t0) / (t1 - t0)
        gains.append((1 - w1) ** 2 + w1**2)
    return float(np.mean(gains))


@pytest.mark.parametrize("interpolation", ["lin", "nn"])
def test_no_eff_calibration_with_ls_estimation(interpolation):
    """LS + LMMSE over flat Rayleigh grids: the error ratio has a closed-form mean that is not exactly 1.

    With ``h_hat = h + e`` the unbiased single-antenna LMMSE output is ``y / h_hat``, so
    ``|x_hat - x|^2 / no_eff = |n - e x|^2 / (no + err_var)``. Sionna reports ``err_var = no`` everywhere (the
    pilot noise variance, interpolated), but the true variance of ``e`` is ``c(t) no``: ``c = 1`` for nearest
    neighbour, ``c = w0^2 + w1^2`` for linear interpolation/extrapolation in time (pilots on every
    subcarrier, so no frequency interpolation). The expected ratio is therefore ``(1 + mean c) / 2``:
    1 for ``nn``, 0.942 for ``lin`` with pilots on symbols 2 and 11 (extrapolation to symbols 0, 1, 12, 13
    is noisier than reported, interpolation in between less noisy). The tolerance is looser than with perfect
    CSI because REs on one subcarrier share the same pilot noise: the 64 * 2 * 64 = 8192 subcarrier columns
    are the independent units (observed std over seeds ~0.004; tolerance 0.03).
    """
    channel = make(model="rayleigh", estimator="ls", interpolation=interpolation, equalizer="lmmse")
    c = 1.0 if interpolation == "nn" else _ls_lin_error_factor((2, 11), 14)
    expected = (1 + c) / 2
    batch, n = 64, 2 * channel.data_symbols_per_grid
    with seeded(4) as g:
        x = qpsk(g, batch, n)
        out = channel(x, torch.full((batch,), 10.0))
    ratio = ((out.symbols - x).abs() ** 2 / out.no_eff).mean().item()
    assert abs(ratio - expected) < 0.03
    assert abs(ratio - 1.0) < 0.1  # the reported no_eff is within 10% on average
    torch.testing.assert_close(out.state["err_var"], torch.full_like(out.state["err_var"], 0.1))


def test_per_example_snr():
    channel = make()  # TDL-A, LS + linear interpolation, LMMSE
    with seeded(6) as g:
        x = qpsk(g, 2, 1500)
        out = channel(x, torch.tensor([0.0, 30.0]))
    mse = ((out.symbols - x).abs() ** 2).mean(dim=1)
    assert mse[0] > 100 * mse[1]
    # no_eff ~ 2 no / |h_hat|^2: its median scales with no (1000x) up to the examples' different channels
    median = out.no_eff.median(dim=1).values
    assert 200 < (median[0] / median[1]).item() < 5000
    torch.testing.assert_close(out.state["no"], torch.tensor([1.0, 1e-3]))


def test_seeded_calls_are_reproducible():
    channel = make()
    x = qpsk(torch.Generator().manual_seed(0), 4, 900)
    outs = []
    for seed in (123, 123, 124):
        with seeded(seed):
            outs.append(channel(x, torch.full((4,), 10.0)))
    a, b, c = outs
    assert torch.equal(a.symbols, b.symbols) and torch.equal(a.no_eff, b.no_eff) and torch.equal(a.raw, b.raw)
    assert not torch.equal(a.symbols, c.symbols)


def test_resource_elements_do_not_interact():
    """Why zero padding is harmless: changing some data symbols changes no other symbol's output."""
    channel = make()
    n = 1000
    x = qpsk(torch.Generator().manual_seed(1), 2, n)
    x2 = x.clone()
    x2[:, 900:] = 0  # like padding
    with seeded(7):
        a = channel(x, torch.full((2,), 10.0))
    with seeded(7):
        b = channel(x2, torch.full((2,), 10.0))
    assert torch.equal(a.symbols[:, :900], b.symbols[:, :900])
    assert torch.equal(a.no_eff, b.no_eff)
    assert torch.equal(a.state["h_hat"], b.state["h_hat"])


def test_gradient_flows_to_input():
    channel = make()
    x = qpsk(torch.Generator().manual_seed(2), 2, 800).requires_grad_()
    with seeded(8):
        out = channel(x, torch.full((2,), 10.0))
    loss = (out.symbols.abs() ** 2).sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad.abs() > 0).all()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (dict(pilot_ofdm_symbol_indices=[2, 14]), "pilot_ofdm_symbol_indices"),
        (dict(num_ofdm_symbols=10), "pilot_ofdm_symbol_indices"),  # default (2, 11) no longer fits
        (dict(pilot_ofdm_symbol_indices=[3, 3]), "pilot_ofdm_symbol_indices"),
        (dict(tdl_model="F"), "tdl_model"),
        (dict(num_guard_carriers=(40, 40)), "num_guard_carriers"),
        (dict(fft_size=12), "num_guard_carriers"),  # default guards (5, 6) + DC leave nothing
        (dict(cyclic_prefix_length=100), "cyclic_prefix_length"),
        (dict(pilot_pattern="empty"), "estimator"),  # LS needs pilots
        (dict(model="rayleigh", normalize_channel=True), "normalize_channel"),
        (dict(interpolation="cubic"), "interpolation"),
    ],
)
def test_params_validation(params, field):
    with pytest.raises(ValidationError) as info:
        OFDMChannel.Params(**params)
    assert field in {str(part) for error in info.value.errors() for part in error["loc"]}


def test_tdl_settings_rejected_with_rayleigh():
    with pytest.raises(ValidationError, match="only used with model: tdl"):
        OFDMChannel.Params(model="rayleigh", delay_spread=300e-9)
    OFDMChannel.Params(model="rayleigh", estimator="perfect", equalizer="zf")  # valid
