"""Confidence intervals against their formulas; SNR conversions against Sionna's."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import beta, norm
from sionna.phy.utils import ebnodb2no

from simulator.core.metrics import Tally, proportion_interval
from simulator.core.snr import ebno_db, noise_variance


@pytest.mark.parametrize("k, n", [(0, 50), (3, 1000), (50, 100), (999, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_interval_matches_its_formula(k, n, confidence):
    z = norm.ppf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = proportion_interval(k, n, confidence, "wilson")
    assert low == pytest.approx(max(centre - half, 0.0), abs=1e-12)
    assert high == pytest.approx(min(centre + half, 1.0), abs=1e-12)


@pytest.mark.parametrize("k, n", [(1, 50), (3, 1000), (50, 100)])
def test_clopper_pearson_interval_matches_beta_quantiles(k, n):
    low, high = proportion_interval(k, n, 0.95, "clopper-pearson")
    assert low == pytest.approx(beta.ppf(0.025, k, n - k + 1), rel=1e-9)
    assert high == pytest.approx(beta.ppf(0.975, k + 1, n - k), rel=1e-9)


def test_empty_interval_is_nan():
    assert all(math.isnan(v) for v in proportion_interval(0, 0))


def test_tally_totals_with_scalar_and_per_example_trials():
    assert Tally(torch.tensor([1, 2, 3]), 10).totals() == (6, 30)
    assert Tally(torch.tensor([1, 2]), torch.tensor([5, 7])).totals() == (3, 12)


@pytest.mark.parametrize("m, rate", [(2, 1.0), (4, 0.5), (6, 2 / 3)])
@pytest.mark.parametrize("ebno", [-2.0, 0.0, 7.5])
def test_ebno_convention_agrees_with_sionna(m, rate, ebno):
    """semsim's Es/N0 for a given Eb/N0 yields the noise variance Sionna's ebnodb2no gives."""
    esno = ebno + 10 * math.log10(m * rate)
    assert ebno_db(esno, m * rate) == pytest.approx(ebno)
    expected = float(ebnodb2no(torch.tensor(ebno), m, rate))
    assert float(noise_variance(torch.tensor(esno))) == pytest.approx(expected, rel=1e-5)


def test_ebno_is_nan_without_bits():
    assert math.isnan(ebno_db(3.0, None)) and math.isnan(ebno_db(3.0, 0))
