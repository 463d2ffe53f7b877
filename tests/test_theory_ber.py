"""Simulated BER of the digital link, run through the sweep engine, against closed forms (design.md sec. 6)."""

from __future__ import annotations

import math

import pytest
import theory
from conftest import scenario_dict
from scipy.stats import binomtest

# Reference values printed in design.md section 6: they check the closed forms used below.
REFERENCE = [
    (theory.qpsk_awgn, [(0, 7.865e-2), (4, 1.250e-2), (8, 1.909e-4)]),
    (theory.qpsk_rayleigh, [(0, 1.464e-1), (4, 7.714e-2), (8, 3.546e-2)]),
    (theory.qam16_awgn, [(0, 1.410e-1), (4, 5.862e-2), (8, 9.247e-3), (12, 1.387e-4)]),
]


@pytest.mark.parametrize("formula, values", REFERENCE, ids=lambda v: getattr(v, "__name__", ""))
def test_closed_forms_match_design_reference_values(formula, values):
    for ebno, expected in values:
        assert formula(ebno) == pytest.approx(expected, rel=2e-3)


CASES = [
    # (bits per symbol, demapper, channel, Eb/N0 points in dB, closed form)
    (2, "app", {"type": "awgn"}, [0, 4, 8], theory.qpsk_awgn),
    (4, "maxlog", {"type": "awgn"}, [0, 4, 8, 12], theory.qam16_awgn),
    (2, "app", {"type": "rayleigh", "fading": "iid"}, [0, 4, 8], theory.qpsk_rayleigh),
    (4, "maxlog", {"type": "rayleigh", "fading": "iid"}, [0, 4, 8, 12], theory.qam16_rayleigh),
]


@pytest.mark.parametrize("m, demapper, channel, ebno_points, formula", CASES,
                         ids=["qpsk-awgn", "16qam-awgn", "qpsk-rayleigh", "16qam-rayleigh"])
def test_uncoded_ber_matches_closed_form(run_dict, m, demapper, channel, ebno_points, formula):
    """Each simulated BER must agree with theory within a 99.9 % binomial interval.

    The interval counts *symbols*, not bits: bits of one symbol share its noise (and its fade), and a binomial
    interval over symbols bounds the variance of the BER estimate from above whatever that correlation is.
    """
    esno_points = [e + 10 * math.log10(m) for e in ebno_points]
    data = scenario_dict(
        links=[{"name": "link", "type": "digital", "bits_per_symbol": m, "block_bits": 2048, "demapper": demapper}],
        channels=[{"name": "ch", **channel}],
        snr_db=esno_points,
        metrics=["ber"],
        monte_carlo={"batch_size": 250, "max_samples": 2500, "target_errors": 4000},
    )
    table = run_dict(data).table
    assert len(table) == len(ebno_points)
    for ebno, row in zip(ebno_points, table.itertuples(), strict=True):
        assert row.ebno_db == pytest.approx(ebno, abs=1e-9)
        expected = formula(ebno)
        symbols, symbol_errors = row.trials // m, round(row.count / m)
        ci = binomtest(symbol_errors, symbols).proportion_ci(confidence_level=0.999, method="wilson")
        assert ci.low <= expected <= ci.high, (
            f"Eb/N0 {ebno} dB: simulated {row.value:.4e} ({row.count} errors in {row.trials} bits), "
            f"theory {expected:.4e}"
        )
        assert row.count >= 300  # enough errors that the comparison has power
