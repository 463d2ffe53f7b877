"""AWGN and Rayleigh channels against their definitions (OFDM: test_ofdm_channel.py)."""

from __future__ import annotations

import math

import pytest
import torch

from simulator.channels import CHANNELS
from simulator.channels.awgn import AWGNChannel
from simulator.channels.rayleigh import RayleighChannel
from simulator.core.seeding import seeded


def qpsk(batch: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (batch, n, 2), generator=g).float()
    return torch.complex(1 - 2 * bits[..., 0], 1 - 2 * bits[..., 1]) / math.sqrt(2)


def within_sigmas(estimate: float, expected: float, sd: float, k: float = 5.0) -> bool:
    return abs(estimate - expected) <= k * sd


def test_registry_has_the_three_channel_types():
    assert {"awgn", "rayleigh", "ofdm"} <= set(CHANNELS.names())


def test_awgn_noise_variance_per_example_follows_snr():
    x = qpsk(4, 50_000)
    snr = torch.tensor([-10.0, 0.0, 10.0, 20.0])
    with seeded(1):
        out = AWGNChannel()(x, snr)
    for i, s in enumerate(snr.tolist()):
        no = 10 ** (-s / 10)
        noise = out.symbols[i] - x[i]
        # |n|^2 / no is Exp(1): mean 1, sd 1/sqrt(N)
        assert within_sigmas(float(noise.abs().pow(2).mean()) / no, 1.0, 1 / math.sqrt(50_000))
        # circular: equal power in I and Q, no correlation
        assert within_sigmas(float(noise.real.pow(2).mean() / noise.imag.pow(2).mean()), 1.0, 2 / math.sqrt(50_000))
        assert torch.allclose(out.no_eff[i], torch.full_like(out.no_eff[i], no))
    assert out.symbols.dtype == torch.complex64 and out.no_eff.shape == x.shape


def test_rayleigh_iid_coefficients_are_unit_power_complex_gaussian():
    x = qpsk(20, 10_000)
    with seeded(2):
        out = RayleighChannel()(x, torch.full((20,), 30.0))
    h = out.state["h"].flatten()
    n = h.numel()
    power = h.abs().pow(2)
    assert within_sigmas(float(power.mean()), 1.0, 1 / math.sqrt(n))
    # |h|^2 ~ Exp(1): P(|h|^2 < 0.1) = 1 - exp(-0.1)
    p = 1 - math.exp(-0.1)
    assert within_sigmas(float((power < 0.1).float().mean()), p, math.sqrt(p * (1 - p) / n))
    # independent from symbol to symbol
    hh = out.state["h"]
    corr = (hh[:, 1:] * hh[:, :-1].conj()).mean().abs()
    assert float(corr) < 5 / math.sqrt(n)


def test_rayleigh_block_fading_is_constant_within_blocks():
    channel = RayleighChannel(RayleighChannel.Params(fading="block", block_length=8))
    with seeded(3):
        h = channel(qpsk(6, 30), torch.zeros(6)).state["h"]
    for start in range(0, 30, 8):
        block = h[:, start : start + 8]
        assert torch.equal(block, block[:, :1].expand_as(block))
    assert not torch.equal(h[:, 0], h[:, 8])
    per_example = RayleighChannel(RayleighChannel.Params(fading="block"))
    with seeded(3):
        h = per_example(qpsk(6, 30), torch.zeros(6)).state["h"]
    assert torch.equal(h, h[:, :1].expand_as(h))


@pytest.mark.parametrize("equalizer", ["zf", "lmmse"])
@pytest.mark.parametrize("csi_error", [0.0, 0.1])
def test_rayleigh_effective_noise_is_calibrated(equalizer, csi_error):
    """With unit-modulus symbols, |x_hat - x|^2 / no_eff has mean exactly 1 under this CSI model."""
    x = qpsk(10, 20_000)
    channel = RayleighChannel(RayleighChannel.Params(equalizer=equalizer, csi_error_variance=csi_error))
    with seeded(4):
        out = channel(x, torch.full((10,), 5.0))
    ratio = (out.symbols - x).abs().pow(2) / out.no_eff
    assert within_sigmas(float(ratio.mean()), 1.0, 1 / math.sqrt(ratio.numel()))
    expected_no_eff = (10 ** -0.5 + csi_error) / out.state["h_hat"].abs().pow(2)
    assert torch.allclose(out.no_eff, expected_no_eff, rtol=1e-3)


def test_zf_and_lmmse_coincide_for_one_antenna():
    x = qpsk(4, 1000)
    outs = []
    for equalizer in ("zf", "lmmse"):
        with seeded(5):
            outs.append(RayleighChannel(RayleighChannel.Params(equalizer=equalizer))(x, torch.full((4,), 3.0)))
    assert torch.allclose(outs[0].symbols, outs[1].symbols, rtol=1e-4, atol=1e-5)


def test_imperfect_csi_hurts_detection():
    x = qpsk(10, 10_000)
    errors = []
    for csi_error in (0.0, 0.2):
        with seeded(6):
            out = RayleighChannel(RayleighChannel.Params(csi_error_variance=csi_error))(x, torch.full((10,), 15.0))
        wrong = (torch.sign(out.symbols.real) != torch.sign(x.real)).float().mean()
        errors.append(float(wrong))
    assert errors[1] > 2 * errors[0]


@pytest.mark.parametrize("channel", [AWGNChannel(), RayleighChannel()], ids=["awgn", "rayleigh"])
def test_channels_are_reproducible_and_differentiable(channel):
    x = qpsk(3, 16).requires_grad_(True)
    snr = torch.tensor([0.0, 5.0, 10.0])
    with seeded(7):
        a = channel(x, snr)
    with seeded(7):
        b = channel(x, snr)
    assert torch.equal(a.symbols, b.symbols)
    a.symbols.abs().pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bad_input_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"complex \[batch, n\]"):
        AWGNChannel()(torch.ones(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="snr_db must have shape"):
        AWGNChannel()(qpsk(4, 3), torch.zeros(3))
