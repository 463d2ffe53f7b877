"""Mean metrics (one float per example): moments merged batch by batch, the t interval, the stopping rule on its
half-width, the PSNR helper, the registry, and what goes wrong when a continuous quantity is sent as a Tally."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import scenario_dict
from scipy import stats

from simulator.cli import main
from simulator.core.metrics import METRICS, Mean, mean_interval, merge_moments, psnr_db


def test_moments_merged_batch_by_batch_equal_the_whole_sample():
    values = np.random.default_rng(3).gamma(2.0, 3.0, size=1_003)
    merged = (0, 0.0, 0.0)
    for part in np.array_split(values, [1, 7, 500, 501, 900]):
        merged = merge_moments(merged, Mean(torch.tensor(part)).moments())
    n, mean, m2 = merged
    assert n == len(values)
    assert mean == pytest.approx(values.mean(), rel=1e-12)
    assert m2 / (n - 1) == pytest.approx(values.var(ddof=1), rel=1e-10)


def test_mean_interval_is_scipys_student_t_interval():
    values = np.random.default_rng(4).normal(5.0, 2.0, size=40)
    _, mean, m2 = Mean(torch.tensor(values)).moments()
    low, high = mean_interval(len(values), mean, m2, 0.9)
    ref = stats.t.interval(0.9, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert (low, high) == pytest.approx(ref, rel=1e-10)
    assert all(math.isnan(v) for v in mean_interval(1, 1.0, 0.0))


def test_mean_interval_covers_the_true_mean_at_its_level():
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(2_000):
        sample = rng.exponential(1.0, size=60)
        low, high = mean_interval(60, sample.mean(), ((sample - sample.mean()) ** 2).sum())
        covered += low <= 1.0 <= high
    ci = stats.binomtest(covered, 2_000).proportion_ci(0.99)
    assert 0.92 < covered / 2_000 < 0.97 and ci.high > 0.93  # skewed data: t is close to, not exactly, 95 %


def test_psnr_of_a_known_error():
    reference = torch.rand(3, 1, 8, 8)
    assert torch.allclose(psnr_db(reference + 0.1, reference), torch.full((3,), 20.0), atol=1e-4)
    assert torch.allclose(psnr_db(reference, reference), torch.full((3,), 100.0))


def _analog(**overrides) -> dict:
    base = {"links": [{"name": "analog", "type": "plugins:AnalogMSELink", "symbols": 16}], "snr_db": [0.0, 10.0],
            "monte_carlo": {"batch_size": 250, "max_samples": 2_000, "target_errors": 0}}
    return scenario_dict(**{**base, **overrides})


def test_mse_of_analog_symbols_on_awgn_matches_the_noise_variance(run_dict, tmp_path):
    table = run_dict(_analog(metrics=["mse", "psnr"])).table
    mse = table[table.metric == "mse"].set_index("snr_db")
    for snr in (0.0, 10.0):
        row = mse.loc[snr]
        assert row.ci_low <= 10 ** (-snr / 10) <= row.ci_high  # E|n|^2 = no per complex symbol
        assert row.trials == 2_000 and pd.isna(row["count"])
        assert row.ci_high - row.ci_low < 0.05 * row.value
    psnr = table[table.metric == "psnr"].set_index("snr_db").value
    assert psnr[10.0] > psnr[0.0] + 9  # 10 dB less noise is about 10 dB more PSNR
    text = (tmp_path / "out" / "table.md").read_text()
    assert "## mse: mean squared error" in text and "## psnr: PSNR (dB)" in text
    assert (tmp_path / "out" / "mse.png").is_file() and (tmp_path / "out" / "psnr.png").is_file()


def test_a_point_stops_once_the_mean_is_precise_enough(run_dict):
    table = run_dict(_analog(monte_carlo={"batch_size": 100, "max_samples": 100_000, "target_errors": 0,
                                          "target_half_width": 0.002})).table
    mse = table[table.metric == "mse"].set_index("snr_db")
    for snr in (0.0, 10.0):
        row = mse.loc[snr]
        assert row.examples < 100_000 and (row.ci_high - row.ci_low) / 2 <= 0.002
    assert mse.loc[0.0].examples > mse.loc[10.0].examples  # larger spread at 0 dB needs more examples


def test_fractional_counts_in_a_tally_are_a_one_line_error(tmp_path, capsys):
    data = scenario_dict(links=[{"type": "plugins:FractionalTallyLink"}], snr_db=[0.0])
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(data))
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "fractional 'ber' counts" in err and "Mean(values)" in err and len(err.strip().splitlines()) == 1


def test_unknown_metrics_are_one_line_errors(tmp_path, capsys):
    for data, expected in (
        (scenario_dict(links=[{"type": "plugins:UnknownMetricLink"}]), "declares unknown metric 'evm_percent'"),
        (_analog(metrics=["mse", "snr"]), "metrics[1]: unknown metric 'snr'; valid: accuracy, ber, bler, cosine"),
    ):
        path = tmp_path / "s.yaml"
        path.write_text(json.dumps(data))
        assert main(["validate", str(path)]) == 2
        assert expected in capsys.readouterr().err


def test_a_registered_metric_plugs_in():
    from simulator.core.metrics import MeanMetric

    @METRICS.register("test_evm")
    class EVM(MeanMetric):
        label = "EVM (%)"

    assert METRICS.resolve("test_evm") is EVM and EVM.kind == "mean" and not EVM.counts_errors()
