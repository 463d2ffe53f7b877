"""``label:``: a display name (any text) for links and channels in tables, plots and ``paired.md``, while
``results.csv``, ``paired.csv`` and point ids keep the entry's name."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import scenario_dict

from simulator.cli import main
from simulator.config.scenario import parse_scenario
from simulator.core.errors import UserError

LINKS = [{"name": "qpsk", "type": "digital", "bits_per_symbol": 2, "block_bits": 256, "label": "QPSK, uncoded"},
         {"name": "16qam", "type": "digital", "bits_per_symbol": 4, "block_bits": 256}]
CHANNELS = [{"type": "awgn", "label": "AWGN (Es/N0)"}]


def test_labels_are_shown_but_names_identify(run_dict, tmp_path):
    plain = run_dict(scenario_dict(links=[{k: v for k, v in link.items() if k != "label"} for link in LINKS],
                                   channels=[{"type": "awgn"}]), tmp_path / "plain")
    out = tmp_path / "labelled"
    labelled = run_dict(scenario_dict(links=LINKS, channels=CHANNELS), out)
    # identity and the tidy table keep the names: a label is not part of any result
    assert list(labelled.table.point_id) == list(plain.table.point_id)
    assert set(labelled.table.link) == {"qpsk", "16qam"} and set(labelled.table.channel) == {"awgn"}
    table_md = (out / "table.md").read_text()
    paper = (out / "paper_table.md").read_text()
    assert "QPSK, uncoded / AWGN (Es/N0)" in table_md and "qpsk / awgn" not in table_md
    assert "| QPSK, uncoded |" in paper and "| 16qam " in paper and "AWGN (Es/N0)" in paper
    assert "`QPSK, uncoded`" in (out / "paired.md").read_text()
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired.reference) == {"qpsk"} and set(paired.link) == {"16qam"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["display_names"] == {"link": {"qpsk": "QPSK, uncoded"}, "channel": {"awgn": "AWGN (Es/N0)"}}

    # `semsim report` shows them again from the manifest
    (out / "table.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "table.md").read_text() == table_md


def test_relabelling_recomputes_nothing(run_dict, tmp_path):
    out = tmp_path / "out"
    run_dict(scenario_dict(links=LINKS, channels=CHANNELS), out)
    relabelled = [dict(LINKS[0], label="QPSK (no code)"), LINKS[1]]
    again = run_dict(scenario_dict(links=relabelled, channels=CHANNELS), out)
    assert (again.computed, again.reused) == (0, 4)
    assert "QPSK (no code) / AWGN (Es/N0)" in (out / "table.md").read_text()


@pytest.mark.parametrize("links, expected", [
    ([dict(LINKS[0], label="same"), dict(LINKS[1], label="same")],
     "links[1].label: label 'same' is already shown for 'qpsk'"),
    ([dict(LINKS[0], label="16qam"), LINKS[1]], "links[1].label: label '16qam' is already shown for 'qpsk'"),
    ([dict(LINKS[0], label="")], "links[0].label: String should have at least 1 character"),
])
def test_labels_must_tell_entries_apart(links, expected):
    with pytest.raises(UserError) as err:
        parse_scenario(scenario_dict(links=links))
    assert expected in str(err.value) and "\n" not in str(err.value)
