"""``manifest.json`` tells how a run ended: ``interrupted`` after Ctrl-C, ``failed`` with the error, ``complete``,
always with the true number of points computed and reused, and what was finished is kept for the next run."""

from __future__ import annotations

import json

import plugins
import yaml
from conftest import scenario_dict

from links.digital import DigitalLink
from simulator.cli import main
from simulator.io.results import load_results

# 0 dB meets target_errors in the first batch (one receiver call per point); 30 dB needs more batches, so
# InterruptedLink's third receiver call (30 dB in the second batch) comes while only the 0 dB point is finished.
INTERRUPTED = scenario_dict(
    links=[{"name": "ctrl-c", "type": "plugins:InterruptedLink", "block_bits": 256}], snr_db=[0.0, 30.0],
    monte_carlo={"batch_size": 40, "max_samples": 200, "target_errors": 100},
)


def run_cli(tmp_path, capsys, data: dict) -> tuple[int, list[str]]:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    status = main(["run", str(path), "--output", str(tmp_path / "out"), "--no-progress"])
    return status, [line for line in capsys.readouterr().err.splitlines() if not line.startswith("[semsim]")]


def manifest(tmp_path) -> dict:
    return json.loads((tmp_path / "out" / "manifest.json").read_text())


def test_interrupted_run_says_so_with_the_true_counts_and_resumes(tmp_path, capsys, monkeypatch):
    status, errors = run_cli(tmp_path, capsys, INTERRUPTED)
    assert status == 130 and errors == [
        "semsim: interrupted; finished points are saved, run the same command again to resume"]
    first = manifest(tmp_path)
    assert first["status"] == "interrupted" and first["finished"] is not None and "error" not in first
    assert first["points"] == {"total": 2, "reused": 0, "computed": 1}
    kept = load_results(tmp_path / "out" / "results.csv")
    assert set(kept.snr_db) == {0.0} and set(kept.metric) == {"ber", "bler"}
    assert not list((tmp_path / "out").glob(".*.tmp*"))  # written atomically: no temporary file left behind

    # interrupted again before the 30 dB point finishes: nothing new computed, the saved point counted as reused
    status, _ = run_cli(tmp_path, capsys, INTERRUPTED)
    assert status == 130
    assert manifest(tmp_path)["status"] == "interrupted"
    assert manifest(tmp_path)["points"] == {"total": 2, "reused": 1, "computed": 0}

    monkeypatch.setattr(plugins.InterruptedLink, "receive", DigitalLink.receive)
    status, errors = run_cli(tmp_path, capsys, INTERRUPTED)
    assert status == 0 and errors == []
    done = manifest(tmp_path)
    assert done["status"] == "complete" and done["points"] == {"total": 2, "reused": 1, "computed": 1}
    resumed = load_results(tmp_path / "out" / "results.csv")
    assert set(resumed.snr_db) == {0.0, 30.0}
    again = resumed[resumed.snr_db == 0.0].reset_index(drop=True)
    assert again[["point_id", "metric", "count", "trials"]].equals(kept[["point_id", "metric", "count", "trials"]])


def test_failed_run_records_the_error_line_and_the_points_it_finished(tmp_path, capsys):
    data = {**INTERRUPTED, "links": [{"name": "flaky", "type": "plugins:RunsOutLink", "block_bits": 256}]}
    status, errors = run_cli(tmp_path, capsys, data)
    assert status == 2
    assert errors == ["semsim: error: link 'flaky': sample() raised RuntimeError: out of test data"]
    failed = manifest(tmp_path)
    assert failed["status"] == "failed"
    assert failed["error"] == "link 'flaky': sample() raised RuntimeError: out of test data"
    assert failed["points"] == {"total": 2, "reused": 0, "computed": 1}
    assert set(load_results(tmp_path / "out" / "results.csv").snr_db) == {0.0}


def test_running_manifest_counts_each_finished_point(tmp_path, capsys, monkeypatch):
    """While a run goes on, the manifest on disk says ``running`` with the points written so far."""
    import simulator.engine.sweep as sweep

    seen = []
    write = sweep._write_json

    def spy(path, content):
        if path.name == "manifest.json":
            seen.append((content["status"], content["points"]["computed"]))
        write(path, content)

    monkeypatch.setattr(sweep, "_write_json", spy)
    data = scenario_dict(snr_db=[0.0, 30.0], monte_carlo={"batch_size": 40, "max_samples": 200, "target_errors": 100})
    status, _ = run_cli(tmp_path, capsys, data)
    assert status == 0
    assert seen == [("running", 1), ("running", 2), ("complete", 2)]
