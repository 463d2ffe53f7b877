"""The ``ray`` executor: same numbers as local, resume, a killed task retried, settings errors, CLI, lazy import.

One local Ray instance (``num_cpus=2``) serves the whole module; no external cluster is used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import scenario_dict

from simulator.cli import main
from simulator.config.scenario import parse_scenario
from simulator.core.errors import UserError
from simulator.engine.sweep import run_scenario
from simulator.io.outcomes import load_outcomes
from simulator.io.results import load_results, save_results

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULT_KEY = ["link", "channel", "snr_db", "metric"]
NUMBERS = ["value", "ci_low", "ci_high", "count", "trials", "examples", "point_id"]

SMALL = scenario_dict(
    channels=[{"type": "awgn"}, {"type": "rayleigh", "name": "rayleigh-block", "fading": "block", "block_length": 16}],
    snr_db=[0.0, 3.0, 6.0],
    monte_carlo={"batch_size": 40, "max_samples": 160, "target_errors": 300},
)


def ray_scenario(**executor) -> dict:
    return dict(SMALL, executor={"type": "ray", **executor})


def numbers(table: pd.DataFrame) -> pd.DataFrame:
    """The numbers of a table, in a fixed order; dtypes normalised (a reloaded CSV reads 3.0 dB as int 3)."""
    table = table.sort_values(RESULT_KEY).reset_index(drop=True)[RESULT_KEY + NUMBERS]
    return table.astype({"snr_db": float, "value": float, "ci_low": float, "ci_high": float})


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    paths = os.pathsep.join([str(Path(__file__).parent), str(REPO_ROOT)])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": paths}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    return run_scenario(parse_scenario(SMALL), tmp_path_factory.mktemp("local"), progress=False)


@pytest.fixture(scope="module")
def local_table(local_run):
    return local_run.table


def test_ray_gives_the_local_numbers(ray_instance, local_run, local_table, tmp_path):
    outcome = run_scenario(parse_scenario(ray_scenario(chunk_points=2)), tmp_path / "ray", progress=False)
    assert outcome.computed == 6 and outcome.reused == 0
    pd.testing.assert_frame_equal(numbers(local_table), numbers(outcome.table))
    for point_id in set(local_table.point_id):  # per-example outcomes (bler: one block per example) come back too
        local, ray = load_outcomes(local_run.output_dir, point_id), load_outcomes(tmp_path / "ray", point_id)
        assert list(ray) == ["bler"] and np.array_equal(ray["bler"], local["bler"])
    saved = load_results(tmp_path / "ray" / "results.csv")
    pd.testing.assert_frame_equal(numbers(saved), numbers(local_table))
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["executor"] == "ray" and manifest["status"] == "complete"
    assert "qpsk" in json.loads((tmp_path / "ray" / "links.json").read_text())
    assert ray_instance.is_initialized()  # an instance the caller started is left running


@pytest.mark.parametrize("threads", [1, 2])
def test_ray_gives_the_local_numbers_of_a_neural_receiver(ray_instance, tmp_path, threads):
    """A CNN receiver's last bits follow the thread count and the call size; at the same ``threads`` Ray tasks of
    one SNR point each give exactly the numbers of a local run that evaluates all points together."""
    from test_identity import conv_receiver

    local = run_scenario(parse_scenario(conv_receiver(200, threads=threads)), tmp_path / "local", progress=False)
    ray_run = run_scenario(parse_scenario(conv_receiver(200, threads=threads, executor={"type": "ray"})),
                           tmp_path / "ray", progress=False)
    mean_numbers = ["link", "channel", "snr_db", "metric", "value", "ci_low", "ci_high", "examples", "point_id"]
    pd.testing.assert_frame_equal(local.table[mean_numbers], ray_run.table[mean_numbers])
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["numerics"] == {"device_type": "cpu", "threads": threads}


def test_ray_resume_skips_finished_points(ray_instance, local_table, tmp_path):
    out = tmp_path / "out"
    run_scenario(parse_scenario(ray_scenario(chunk_points=1)), out, progress=False)
    table = load_results(out / "results.csv")
    dropped = set(table[table.snr_db == 3.0].point_id)  # as if the sweep was stopped before these
    save_results(table[~table.point_id.isin(dropped)], out / "results.csv")

    outcome = run_scenario(parse_scenario(ray_scenario(chunk_points=1)), out, progress=False)
    assert (outcome.computed, outcome.reused) == (len(dropped), 6 - len(dropped)) == (2, 4)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["points"] == {"total": 6, "reused": 4, "computed": 2}
    pd.testing.assert_frame_equal(numbers(local_table), numbers(load_results(out / "results.csv")))

    again = run_scenario(parse_scenario(ray_scenario()), out, progress=False)
    assert (again.computed, again.reused) == (0, 6)


def test_a_killed_task_is_retried_and_nothing_is_lost(ray_instance, tmp_path):
    marker = tmp_path / "died-once"
    link = {"name": "dying", "type": "ray_plugins:DyingLink", "bits_per_symbol": 2, "block_bits": 256,
            "marker": str(marker)}
    data = dict(SMALL, links=[link], executor={"type": "ray", "chunk_points": 3, "max_retries": 2})
    outcome = run_scenario(parse_scenario(data), tmp_path / "ray", progress=False)
    assert marker.exists()  # a worker did die
    assert outcome.computed == 6
    table = load_results(tmp_path / "ray" / "results.csv")
    assert len(table) == 6 * 2 and table.point_id.nunique() == 6

    local = run_scenario(parse_scenario(dict(data, executor={"type": "local"})), tmp_path / "local", progress=False)
    pd.testing.assert_frame_equal(numbers(local.table), numbers(table))


def test_cli_executor_ray(ray_instance, local_table, tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "out"
    assert main(["run", str(path), "--output", str(out), "--executor", "ray", "--no-progress"]) == 0
    assert "6 points computed" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["executor"] == "ray"
    pd.testing.assert_frame_equal(numbers(local_table), numbers(load_results(out / "results.csv")))


@pytest.mark.parametrize(("executor", "expected"), [
    ({"type": "ray", "address": "not an address"}, "invalid Ray address 'not an address'"),
    ({"type": "ray", "chunk_points": 0}, "chunk_points"),
    ({"type": "ray", "num_gpus": -1}, "num_gpus"),
    ({"type": "ray", "workers": 2}, "workers"),
    ({"type": "dask"}, "executor.type: unknown executor type 'dask'; valid: local, ray"),
    # each executor type has its own fields: the local one takes none of Ray's
    ({"type": "local", "address": "auto"}, "executor.address: unknown field; allowed: type"),
    ({"type": "ray", "name": "x"}, "executor.name: unknown field; allowed: type, address, chunk_points"),
])
def test_bad_executor_settings_are_one_line_errors(executor, expected):
    with pytest.raises(UserError) as info:
        parse_scenario(dict(SMALL, executor=executor))
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_executor_local_still_accepted():
    assert parse_scenario(dict(SMALL, executor={"type": "local"})).executor.type == "local"
    assert parse_scenario(SMALL).executor.type == "local"


def test_missing_ray_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UserError, match=r"install the ray extra \(pip install 'semsim\[ray\]'\)") as info:
        run_scenario(parse_scenario(ray_scenario()), tmp_path / "out", progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out" / "results.csv").exists()


def test_cli_unknown_executor(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    assert main(["run", str(path), "--executor", "nope"]) == 2
    assert "--executor: unknown executor type 'nope'; valid: local, ray" in capsys.readouterr().err


def test_simulator_and_local_sweeps_do_not_import_ray(tmp_path):
    code = (
        "import sys, simulator, simulator.cli, simulator.engine.sweep, simulator.engine.executors.ray_executor\n"
        "from simulator.config.scenario import parse_scenario\n"
        "from simulator.engine.sweep import run_scenario\n"
        f"run_scenario(parse_scenario({SMALL!r}), {str(tmp_path / 'out')!r}, progress=False)\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
