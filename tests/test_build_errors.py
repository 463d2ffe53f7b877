"""Building links and channels: every error names the component by its label, once, and ``semsim validate
--build`` builds them all before a run (one-line errors, exit status 2)."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import scenario_dict

from simulator.cli import main
from simulator.config.assemble import build_channel, build_link
from simulator.config.scenario import parse_scenario
from simulator.core.errors import UserError
from simulator.core.spec import name_in_message

QPSK = {"name": "qpsk", "type": "digital", "bits_per_symbol": 2, "block_bits": 256}


def only_link(link: dict):
    scenario = parse_scenario(scenario_dict(links=[link]))
    return scenario.links[0], scenario


@pytest.mark.parametrize("link, expected", [
    ({"name": "picky", "type": "plugins:RefusingLink"},
     "link 'picky': block_bits must be a multiple of 3 for this decoder"),
    ({"name": "crashy", "type": "plugins:CrashingLink"},
     "link 'crashy': could not be built: FileNotFoundError: weights.safetensors"),
    ({"name": "named", "type": "plugins:SelfNamingLink"}, "link 'named': no weights for 7 symbols"),
])
def test_link_constructor_errors_name_the_link_once(link, expected):
    spec, scenario = only_link(link)
    with pytest.raises(UserError) as err:
        build_link(spec, scenario)
    assert str(err.value) == expected


def test_channel_constructor_errors_name_the_channel():
    scenario = parse_scenario(scenario_dict(channels=[{"name": "gpu-only", "type": "plugins:RefusingChannel"}]))
    with pytest.raises(UserError) as err:
        build_channel(scenario.channels[0], "cpu")
    assert str(err.value) == "channel 'gpu-only': needs a GPU"


def test_a_type_name_prefix_becomes_the_label():
    spec, _ = only_link(QPSK)
    assert name_in_message("link", spec, "link digital: k too large") == "link 'qpsk': k too large"
    assert name_in_message("link", spec, "digital: k too large") == "link 'qpsk': k too large"
    assert name_in_message("link", spec, "link 'qpsk': k too large") == "link 'qpsk': k too large"
    assert name_in_message("link", spec, "k\n too large") == "link 'qpsk': k too large"


def write(tmp_path, data: dict):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_validate_build_reports_each_link_and_channel(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, scenario_dict(links=[QPSK, {**QPSK, "name": "bpsk", "bits_per_symbol": 1}],
                                         channels=[{"type": "awgn"}, {"name": "ofdm", "type": "ofdm"}]))
    assert main(["validate", "--build", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}: valid; 2 links x 2 channels")
    probe = "one batch of 8 on awgn at 0 dB passed every check"
    assert re.fullmatch(rf"  link 'qpsk': built, 128 channel uses per example; {probe} \(ber 0\.\d+, bler 1\)", out[1])
    assert re.fullmatch(rf"  link 'bpsk': built, 256 channel uses per example; {probe} \(ber 0\.\d+, bler 1\)", out[2])
    assert out[3:] == [
        "  channel 'awgn': built",
        "  channel 'ofdm': built, pilot overhead 50.0 % at 128, 33.3 % at 256 channel uses",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]  # nothing run, nothing written


@pytest.mark.parametrize("component, expected", [
    ({"links": [QPSK, {"name": "picky", "type": "plugins:RefusingLink"}]},
     "semsim: error: link 'picky': block_bits must be a multiple of 3 for this decoder"),
    ({"channels": [{"type": "awgn"}, {"name": "gpu-only", "type": "plugins:RefusingChannel"}]},
     "semsim: error: channel 'gpu-only': needs a GPU"),
])
def test_validate_build_shows_constructor_errors_that_plain_validate_cannot(tmp_path, capsys, component, expected):
    path = write(tmp_path, scenario_dict(**component))
    assert main(["validate", path]) == 0  # the file itself is valid
    capsys.readouterr()
    assert main(["validate", "--build", path]) == 2
    assert capsys.readouterr().err.splitlines() == [expected]


@pytest.mark.parametrize("link, expected", [
    ("plugins:WrongPowerLink", "semsim: error: link 'broken': encode()['symbols']: symbols have average energy 4 per "
                               "example; expected 1"),
    ("plugins:LegacyModulateLink", "semsim: error: link 'broken': LegacyModulateLink.modulate() is no longer part"),
])
def test_validate_build_sends_one_checked_batch_through_each_link(tmp_path, capsys, monkeypatch, link, expected):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, scenario_dict(links=[QPSK, {"name": "broken", "type": link, "block_bits": 256}]))
    assert main(["validate", "--build", path]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 1 and errors[0].startswith(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_run_with_a_refusing_constructor_is_one_line_and_writes_nothing(tmp_path, capsys):
    path = write(tmp_path, scenario_dict(links=[{"name": "crashy", "type": "plugins:CrashingLink"}]))
    assert main(["run", path, "--output", str(tmp_path / "out"), "--no-progress"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "semsim: error: link 'crashy': could not be built: FileNotFoundError: weights.safetensors"]
    assert not (tmp_path / "out").exists()
