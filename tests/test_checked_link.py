"""The checked link adapter on its own (outside the runner) and the one power normalisation."""

from __future__ import annotations

import plugins
import pytest
import torch

from links.digital import DigitalLink
from simulator.channels.awgn import AWGNChannel
from simulator.core.checked_link import CheckedLink, LinkError, probe
from simulator.core.snr import normalize_energy


def test_normalize_energy_gives_unit_energy_per_example_and_keeps_gradients():
    x = torch.randn(5, 7, dtype=torch.complex64) * torch.arange(1, 6)[:, None]
    x = torch.cat([x, torch.zeros(1, 7, dtype=torch.complex64)]).requires_grad_()
    y = normalize_energy(x)
    energy = y.detach().abs().square().mean(dim=1)
    assert torch.allclose(energy[:5], torch.ones(5), atol=1e-6) and energy[5] == 0  # an all-zero row stays finite
    y.real.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_a_link_is_checked_call_by_call_outside_the_runner():
    link = DigitalLink(DigitalLink.Params(bits_per_symbol=2, block_bits=256))
    checked = CheckedLink(link, "qpsk")
    batch = checked.sample(0, 8, torch.Generator().manual_seed(1))
    symbols = checked.transmit(checked.encode(batch), examples=8)
    assert symbols.shape == (8, 128) and symbols.dtype == torch.complex64
    snr = torch.full((8,), 30.0)
    estimate = checked.receive(AWGNChannel()(symbols, snr), snr)
    scores = checked.score(batch, estimate)
    assert int(scores["ber"].totals()[0]) == 0  # 30 dB QPSK: no bit errors in 2,048 bits
    with pytest.raises(LinkError, match="expected 9 examples along the first dimension"):
        checked.receive(AWGNChannel()(symbols, snr), torch.full((9,), 30.0))


def test_broken_transmitters_are_caught_before_the_channel():
    link = plugins.WrongPowerLink(plugins.WrongPowerLink.Params(bits_per_symbol=2, block_bits=256))
    checked = CheckedLink(link, "loud")
    encoded = checked.encode(checked.sample(0, 4, torch.Generator().manual_seed(0)))
    with pytest.raises(LinkError, match="link 'loud': encode\\(\\)\\['symbols'\\]: symbols have average energy 4"):
        checked.transmit(encoded, examples=4)
    with pytest.raises(LinkError, match="no longer part of the link protocol"):
        CheckedLink(plugins.LegacyModulateLink(), "old")


def test_probe_reports_each_metric_of_one_batch():
    link = DigitalLink(DigitalLink.Params(bits_per_symbol=2, block_bits=256))
    low, high = probe(link, "qpsk", AWGNChannel(), -5.0), probe(link, "qpsk", AWGNChannel(), 30.0)
    assert set(low) == {"ber", "bler"} and 0.1 < low["ber"] < 0.5 and low["bler"] == 1.0
    assert high == {"ber": 0.0, "bler": 0.0}
