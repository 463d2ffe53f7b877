"""The LDPC-coded digital link: error free at high SNR, a large gain over uncoded at a moderate one."""

from __future__ import annotations

import math

import pytest
import theory
from conftest import scenario_dict

LDPC = {"k": 512, "n": 1024, "num_iter": 20}
HIGH = round(2.0 + 10 * math.log10(2), 9)


def test_ldpc_is_error_free_at_high_snr_and_far_better_than_uncoded(run_dict):
    data = scenario_dict(
        links=[
            {"name": "coded", "type": "digital", "bits_per_symbol": 2, "ldpc": LDPC},
            # same information bits and the same Es/N0 per channel use; uncoded uses half the channel uses
            {"name": "uncoded", "type": "digital", "bits_per_symbol": 2, "block_bits": 512},
        ],
        channels=[{"type": "awgn"}],
        # Es/N0 = Eb/N0 for rate-1/2 QPSK: 2 dB (moderate) and 5.01 dB (high; uncoded QPSK's Eb/N0 = 2 dB)
        snr_db=[2.0, HIGH],
        metrics=["ber", "bler"],
        monte_carlo={"batch_size": 150, "max_samples": 300, "target_errors": 0},
    )
    table = run_dict(data).table.set_index(["link", "snr_db", "metric"])
    # high SNR: 300 codewords, 153,600 bits, not one error
    assert table.loc[("coded", HIGH, "ber"), "count"] == 0
    assert table.loc[("coded", HIGH, "ber"), "trials"] == 300 * 512
    # moderate SNR, Eb/N0 = 2 dB: uncoded QPSK there (Es/N0 5.01 dB) has BER Q(sqrt(2 * 1.585)) = 3.75e-2.
    # Rate-1/2 LDPC at the same Eb/N0 must beat what uncoded QPSK reaches only at Eb/N0 = 6 dB (2.39e-3):
    # a coding gain of more than 4 dB.
    uncoded = table.loc[("uncoded", HIGH, "ber")]
    coded = table.loc[("coded", 2.0, "ber")]
    assert uncoded.ebno_db == pytest.approx(2.0) and coded.ebno_db == pytest.approx(2.0)
    assert 0.03 < uncoded.value < 0.045
    assert coded.ci_high < theory.qpsk_awgn(6.0)
    assert coded.value < uncoded.value / 20
