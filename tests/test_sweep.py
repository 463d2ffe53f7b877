"""End-to-end sweeps: outputs, determinism, resume, transmitter reuse, stopping rule, plug-in links."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plugins
import pytest
import yaml
from conftest import interrupted_after, scenario_dict

from simulator.cli import main
from simulator.io.results import COLUMNS, load_results

RESULT_KEY = ["link", "channel", "snr_db", "metric"]
NUMBERS = ["value", "ci_low", "ci_high", "count", "trials", "examples"]

TWO_LINKS = scenario_dict(
    links=[
        {"name": "qpsk", "type": "digital", "bits_per_symbol": 2, "block_bits": 256},
        {"name": "16qam", "type": "digital", "bits_per_symbol": 4, "block_bits": 256, "demapper": "maxlog"},
    ],
    channels=[{"type": "awgn"}, {"type": "rayleigh", "name": "rayleigh-block", "fading": "block", "block_length": 16}],
    snr_db=[0.0, 3.0, 6.0],
    monte_carlo={"batch_size": 40, "max_samples": 200, "target_errors": 300},
)


def numbers(table: pd.DataFrame) -> pd.DataFrame:
    return table.sort_values(RESULT_KEY).reset_index(drop=True)[RESULT_KEY + NUMBERS]


def test_cli_run_writes_every_output(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(TWO_LINKS))
    out = tmp_path / "out"
    assert main(["run", str(path), "--output", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr()
    assert str(out / "table.md") in printed.out
    assert "[semsim] qpsk / awgn / 0 dB: ber=" in printed.err  # one plain log line per point off a terminal

    table = load_results(out / "results.csv")
    assert list(table.columns) == COLUMNS
    assert len(table) == 2 * 2 * 3 * 2  # links x channels x SNR x metrics
    assert set(table.metric) == {"ber", "bler"}
    assert (table.ci_low <= table.value).all() and (table.value <= table.ci_high).all()
    qpsk = table[(table.link == "qpsk") & (table.metric == "ber")]
    assert (qpsk.channel_uses == 128).all()
    assert np.allclose(qpsk.ebno_db, qpsk.snr_db - 10 * np.log10(2))  # 2 information bits per channel use
    # BER falls with SNR on every curve
    for _, curve in table[table.metric == "ber"].groupby(["link", "channel"]):
        assert curve.sort_values("snr_db").value.is_monotonic_decreasing

    for name in ("table.md", "ber.png", "bler.png", "manifest.json"):
        assert (out / name).stat().st_size > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["points"] == {"total": 12, "reused": 0, "computed": 12}
    assert manifest["seed"] == 7 and len(manifest["scenario_hash"]) == 16
    assert {"torch", "sionna", "semsim", "python"} <= set(manifest["versions"])
    assert manifest["wall_seconds"] > 0
    assert "| qpsk / awgn" in (out / "table.md").read_text()
    assert not list(out.glob("*.tmp*"))


def test_results_do_not_depend_on_packing_order_or_companions(run_dict, tmp_path):
    reference = run_dict(TWO_LINKS, tmp_path / "a").table
    unpacked = dict(TWO_LINKS, snr_db=[6.0, 3.0, 0.0], monte_carlo={**TWO_LINKS["monte_carlo"],
                                                                   "max_receiver_batch": 40})
    reordered = run_dict(unpacked, tmp_path / "b").table
    alone = run_dict(dict(TWO_LINKS, links=TWO_LINKS["links"][1:], channels=TWO_LINKS["channels"][1:],
                          snr_db=[3.0]), tmp_path / "c").table
    pd.testing.assert_frame_equal(numbers(reference), numbers(reordered))
    key = (reference.link == "16qam") & (reference.channel == "rayleigh-block") & (reference.snr_db == 3.0)
    pd.testing.assert_frame_equal(numbers(reference[key]), numbers(alone))


def test_different_seed_gives_different_numbers(run_dict, tmp_path):
    a = run_dict(TWO_LINKS, tmp_path / "a").table
    b = run_dict(dict(TWO_LINKS, seed=8), tmp_path / "b").table
    assert not numbers(a)["count"].equals(numbers(b)["count"])


def test_interrupted_sweep_resumes_to_the_same_results(run_dict, tmp_path):
    uninterrupted = run_dict(TWO_LINKS, tmp_path / "full").table

    out = tmp_path / "resumed"
    with interrupted_after(5), pytest.raises(KeyboardInterrupt):
        run_dict(TWO_LINKS, out)
    assert len(load_results(out / "results.csv")) == 5 * 2  # five finished points, saved as they finished

    outcome = run_dict(TWO_LINKS, out)
    assert (outcome.reused, outcome.computed) == (5, 7)
    pd.testing.assert_frame_equal(numbers(outcome.table), numbers(uninterrupted))
    assert not list(out.glob("*.tmp*"))

    again = run_dict(TWO_LINKS, out)
    assert (again.reused, again.computed) == (12, 0)


def test_changed_grid_reuses_common_points_and_keeps_the_rest_aside(run_dict, tmp_path):
    out = tmp_path / "out"
    run_dict(TWO_LINKS, out)
    outcome = run_dict(dict(TWO_LINKS, snr_db=[3.0, 9.0]), out)
    assert (outcome.reused, outcome.computed) == (4, 4)
    assert sorted(set(outcome.table.snr_db)) == [3.0, 9.0]
    superseded = load_results(out / "superseded.csv")
    assert sorted(set(superseded.snr_db)) == [0.0, 6.0] and len(superseded) == 16


def test_report_rebuilds_tables_from_results(run_dict, tmp_path, capsys):
    out = tmp_path / "out"
    run_dict(TWO_LINKS, out)
    original = (out / "table.md").read_text()
    (out / "table.md").unlink()
    (out / "ber.png").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "table.md").read_text() == original
    assert (out / "ber.png").stat().st_size > 0


def test_transmitter_runs_once_per_batch_for_all_points(run_dict):
    plugins.CALLS.clear()
    data = dict(TWO_LINKS, links=[{"name": "counting", "type": "plugins:CountingLink", "block_bits": 256}],
                monte_carlo={"batch_size": 40, "max_samples": 120, "target_errors": 0})
    run_dict(data)
    batches = 120 // 40
    assert plugins.CALLS["sample"] == batches
    assert plugins.CALLS["encode"] == batches  # the transmitter: once per batch, not per SNR point and channel
    # one receiver call per point and batch, holding that point's examples only (a call never mixes points,
    # whose numbers would then depend on their companions)
    assert plugins.CALLS["receive"] == batches * 2 * 3
    assert plugins.CALLS["received_examples"] == batches * 2 * 3 * 40


def test_snr_adaptive_transmitter_sees_each_points_snr(run_dict):
    plugins.CALLS.clear()
    data = dict(TWO_LINKS, links=[{"name": "phase", "type": "plugins:PhaseByLink"}], channels=[{"type": "awgn"}],
                snr_db=[20.0, 25.0, 30.0], metrics=["ber"],
                monte_carlo={"batch_size": 20, "max_samples": 40, "target_errors": 0})
    table = run_dict(data).table
    assert plugins.CALLS["adapt_to_snr"] == 2 * 3  # one call per batch and SNR point
    assert (table["count"] == 0).all()  # rotation undone with the right per-example SNR


def test_stopping_rule_counts_errors_of_the_first_metric(run_dict):
    data = dict(TWO_LINKS, links=TWO_LINKS["links"][:1], channels=[{"type": "awgn"}], snr_db=[0.0, 30.0],
                monte_carlo={"batch_size": 10, "max_samples": 500, "target_errors": 100})
    table = run_dict(data).table.set_index(["snr_db", "metric"])
    # 0 dB: BER ~ 0.08, 128 bits per example -> about 10 errors per example: stops after the first batch
    assert table.loc[(0.0, "ber"), "examples"] == 10 and table.loc[(0.0, "ber"), "count"] >= 100
    # 30 dB: no errors, runs the whole budget
    assert table.loc[(30.0, "ber"), "examples"] == 500 and table.loc[(30.0, "ber"), "count"] == 0


@pytest.mark.parametrize("link, expected", [
    ("plugins:WrongShapeLink", "expected [batch, channel_uses] = [40, 128]"),
    ("plugins:WrongPowerLink", "average energy 4 per example; expected 1"),
    ("plugins:RaisingLink", "receive() raised RuntimeError: decoder exploded"),
])
def test_broken_plugin_link_is_named_and_finished_points_are_kept(tmp_path, capsys, link, expected):
    data = dict(TWO_LINKS, links=[TWO_LINKS["links"][0], {"name": "broken", "type": link, "block_bits": 256}])
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    assert main(["run", str(path), "--output", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("semsim: error: link 'broken': ") and expected in err
    kept = load_results(out / "results.csv")
    assert set(kept.link) == {"qpsk"} and len(kept) == 2 * 3 * 2
