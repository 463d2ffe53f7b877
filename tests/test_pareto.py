"""The student study (searched versus random genotypes) at toy size, through its command line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import scenario_dict
from test_rkdsc import TINY

from links.rkdsc import pareto


@pytest.fixture
def scenario_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(tmp_path / "cache"))
    data = scenario_dict(data={"type": "digits"},
                         links=[{"type": "digital"}, {"name": "full", "type": "rkdsc", "symbols": 4, **TINY}],
                         channels=[{"type": "awgn"}], snr_db=[0.0])
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(data))
    return path


def test_study_writes_searched_random_and_teacher_rows_with_a_pareto_front(scenario_file, tmp_path, capsys):
    out = tmp_path / "pareto"
    assert pareto.main([str(scenario_file), "--lambdas", "0", "10", "--random", "1", "-o", str(out)]) == 0
    table = pd.read_csv(out / "pareto.csv")
    assert list(table.kind) == ["searched", "searched", "random", "teacher"]
    assert list(table.lambda_complexity[:2]) == [0.0, 10.0] and table.random_seed[2] == 0
    assert table.artifact.nunique() == 4  # every student is its own cached artifact
    assert ((table.ci_low <= table.accuracy) & (table.accuracy <= table.ci_high)).all()
    students = table[table.kind != "teacher"]
    assert students.pareto.any()
    for row in students[students.pareto].itertuples():  # nobody on the front is dominated
        better = students[(students.parameters <= row.parameters) & (students.accuracy >= row.accuracy)
                          & ((students.parameters < row.parameters) | (students.accuracy > row.accuracy))]
        assert better.empty
    assert (out / "pareto.png").stat().st_size > 0 and "lambda 10" in (out / "pareto.md").read_text()
    # a rerun trains nothing: every student comes from the cache
    before = {p.name for p in (tmp_path / "cache").iterdir()}
    assert pareto.main([str(scenario_file), "--lambdas", "0", "10", "--random", "1", "-o", str(out)]) == 0
    assert {p.name for p in (tmp_path / "cache").iterdir()} == before


def test_study_needs_a_link_with_training_settings(scenario_file, tmp_path, capsys):
    assert pareto.main([str(scenario_file), "--link", "digital", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--link: no link 'digital' with teacher/search/stage1 settings; valid: full" in err
    assert not (tmp_path / "x").exists()
