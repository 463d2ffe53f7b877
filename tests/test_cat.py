"""The CAT codec: per-example attention, unit energy, variable length."""

from __future__ import annotations

import pytest
import torch

from links.rkdsc.cat import CATDecoder, CATEncoder
from links.rkdsc.params import CATParams

PARAMS = CATParams(tokens=4, width=16, depth=1, heads=2, max_symbols=16, budgets=(4, 8, 16))


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    return CATEncoder(PARAMS, 32).eval(), CATDecoder(PARAMS, 32).eval()


def test_an_examples_symbols_do_not_depend_on_its_batch_mates(codec):
    encoder, decoder = codec
    embedding, snr = torch.randn(6, 32), torch.linspace(-5, 15, 6)
    together = encoder(embedding, snr, 8)
    other_mates = encoder(torch.cat([embedding[2:3], 10 * torch.randn(5, 32)]), torch.cat([snr[2:3], snr[:5]]), 8)
    alone = encoder(embedding[2:3], snr[2:3], 8)
    assert torch.allclose(together[2:3], alone, atol=1e-6)
    assert torch.allclose(other_mates[:1], alone, atol=1e-6)
    no_eff = torch.rand(6, 8) + 0.01
    decoded = decoder(together, no_eff, snr)
    assert torch.allclose(decoded[2:3], decoder(alone, no_eff[2:3], snr[2:3]), atol=1e-5)


@pytest.mark.parametrize("budget", [1, 4, 7, 16])
def test_symbols_have_unit_energy_per_example_at_every_budget(codec, budget):
    symbols = codec[0](torch.randn(5, 32), torch.zeros(5), budget)
    assert symbols.shape == (5, budget) and symbols.dtype == torch.complex64
    assert torch.allclose(symbols.abs().pow(2).mean(dim=1), torch.ones(5), atol=1e-5)


def test_a_shorter_code_is_a_prefix_of_the_longer_one(codec):
    embedding, snr = torch.randn(3, 32), torch.full((3,), 5.0)
    full, short = codec[0](embedding, snr, 16), codec[0](embedding, snr, 4)
    prefix = full[:, :4] / full[:, :4].abs().pow(2).mean(dim=1, keepdim=True).sqrt()
    assert torch.allclose(short, prefix, atol=1e-5)


def test_encoder_is_conditioned_on_the_snr_and_decoder_on_reliability(codec):
    encoder, decoder = codec
    embedding = torch.randn(1, 32)
    assert not torch.allclose(encoder(embedding, torch.tensor([0.0]), 8), encoder(embedding, torch.tensor([20.0]), 8))
    symbols = encoder(embedding, torch.tensor([0.0]), 8)
    assert not torch.allclose(decoder(symbols, torch.full((1, 8), 0.01), torch.zeros(1)),
                              decoder(symbols, torch.full((1, 8), 10.0), torch.zeros(1)))


def test_params_reject_inconsistent_settings():
    with pytest.raises(ValueError, match="multiple of tokens"):
        CATParams(tokens=3, max_symbols=16)
    with pytest.raises(ValueError, match="outside 1..max_symbols"):
        CATParams(max_symbols=16, tokens=4, budgets=(4, 32))
