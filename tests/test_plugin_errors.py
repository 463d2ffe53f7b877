"""Faulty plug-in links: one line naming the link and what was expected, exit status 2, finished points kept.

tests/test_sweep.py covers symbols of the wrong shape or power and a receiver that raises; these cover the rest
of the link contract: the symbols' dtype, what ``receive`` and ``score`` return, and a failure after some points
have finished.
"""

from __future__ import annotations

import json

import plugins
import pytest
import yaml
from conftest import scenario_dict

from links.digital import DigitalLink
from simulator.cli import main
from simulator.io.results import load_results

GOOD = {"name": "qpsk", "type": "digital", "bits_per_symbol": 2, "block_bits": 256}


def run_cli(tmp_path, capsys, data: dict) -> tuple[int, list[str]]:
    """``semsim run`` on ``data``: the exit status and the lines of stderr that are not per-point log lines."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    status = main(["run", str(path), "--output", str(tmp_path / "out"), "--no-progress"])
    return status, [line for line in capsys.readouterr().err.splitlines() if not line.startswith("[semsim]")]


@pytest.mark.parametrize("link, expected", [
    ("plugins:Complex128Link", "encode()['symbols'] is torch.complex128; expected complex64"),
    ("plugins:NoSymbolsLink", "encode() returned no 'symbols' (keys: 'coded')"),
    ("plugins:LegacyModulateLink", "LegacyModulateLink.modulate() is no longer part of the link protocol"),
    ("plugins:TensorEstimateLink", "receive() must return a dict of tensors"),
    # one receiver call per SNR point and batch of 40 examples
    ("plugins:ShortEstimateLink", "receive() returned 'bits' of shape (39, 1, 256); expected 40 examples"),
    ("plugins:ShortTallyLink", "of shape (39,); expected [batch] = [40]"),
])
def test_contract_violation_is_one_line_naming_the_link(tmp_path, capsys, link, expected):
    data = scenario_dict(links=[GOOD, {"name": "broken", "type": link, "block_bits": 256}], snr_db=[0.0, 3.0],
                         monte_carlo={"batch_size": 40, "max_samples": 80, "target_errors": 0})
    status, errors = run_cli(tmp_path, capsys, data)
    assert status == 2
    assert len(errors) == 1, errors  # no traceback
    assert errors[0].startswith("semsim: error: link 'broken': ") and expected in errors[0]
    kept = load_results(tmp_path / "out" / "results.csv")
    assert set(kept.link) == {"qpsk"} and len(kept) == 2 * 2  # the good link's SNR points x metrics


def test_wrongly_shaped_prediction_is_not_broadcast_into_a_score(tmp_path, capsys):
    data = scenario_dict(data={"type": "digits"}, links=[{"name": "broken", "type": "plugins:ColumnPredictionLink"}],
                         snr_db=[0.0], monte_carlo={"batch_size": 40, "max_samples": 80, "target_errors": 0})
    status, errors = run_cli(tmp_path, capsys, data)
    assert status == 2 and len(errors) == 1, errors
    assert errors[0].startswith("semsim: error: link 'broken': ") and "expected [batch] = [40]" in errors[0]
    assert not (tmp_path / "out" / "results.csv").exists()  # no point finished, nothing half-written


def test_failure_in_a_later_batch_keeps_the_points_finished_before_it(tmp_path, capsys, monkeypatch):
    # 0 dB: ~20 bit errors per example, so the point meets target_errors in the first batch and is saved; the
    # 30 dB point needs more batches and the link fails in the second one.
    data = scenario_dict(links=[{"name": "flaky", "type": "plugins:RunsOutLink", "block_bits": 256}],
                         snr_db=[0.0, 30.0], monte_carlo={"batch_size": 40, "max_samples": 200, "target_errors": 100})
    status, errors = run_cli(tmp_path, capsys, data)
    assert status == 2
    assert errors == ["semsim: error: link 'flaky': sample() raised RuntimeError: out of test data"]
    kept = load_results(tmp_path / "out" / "results.csv")
    assert set(kept.snr_db) == {0.0} and set(kept.metric) == {"ber", "bler"}
    assert (kept.examples == 40).all() and (kept[kept.metric == "ber"]["count"] >= 100).all()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] != "complete"

    # once the link is fixed, the same command reuses the saved point and computes only the 30 dB one
    monkeypatch.setattr(plugins.RunsOutLink, "sample", DigitalLink.sample)
    status, errors = run_cli(tmp_path, capsys, data)
    assert status == 0 and errors == []
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["points"] == {"total": 2, "reused": 1, "computed": 1}
    resumed = load_results(tmp_path / "out" / "results.csv")
    assert set(resumed.snr_db) == {0.0, 30.0}
    assert set(resumed[resumed.snr_db == 0.0].point_id) == set(kept.point_id)
