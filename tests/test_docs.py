"""The README tells the truth: its plug-in example runs, and its references cover every field and type."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest
import theory
from conftest import scenario_dict

from simulator.channels import CHANNELS
from simulator.cli import main
from simulator.config.scenario import MonteCarlo, Scenario
from simulator.core.link import LINKS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def python_block_defining(name: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    return next(b for b in blocks if f"class {name}" in b)


def test_readme_plugin_example_runs_by_module_path_and_matches_theory(tmp_path, monkeypatch, run_dict):
    (tmp_path / "readme_link.py").write_text(python_block_defining("RepetitionBPSK"))
    monkeypatch.syspath_prepend(str(tmp_path))
    data = scenario_dict(
        links=[{"name": "rep3", "type": "readme_link:RepetitionBPSK", "bits": 200, "repeat": 3}],
        snr_db=[-3.0],
        monte_carlo={"batch_size": 500, "max_samples": 1000, "target_errors": 0},
    )
    row = run_dict(data).table.iloc[0]
    # repetition of BPSK with soft combining is BPSK at Eb/N0 = 3 Es/N0: Pb = Q(sqrt(2 Eb/N0))
    ebno = -3.0 + 10 * math.log10(3)
    assert row.ebno_db == pytest.approx(ebno)
    expected = theory.q(math.sqrt(2 * theory.db(ebno)))
    assert abs(row.value - expected) < 4 * math.sqrt(expected / row.trials)
    sys.modules.pop("readme_link", None)


RICIAN = "readme_channel:RicianChannel"


@pytest.fixture
def readme_channel(tmp_path, monkeypatch):
    """The README's Rician channel block as the importable module ``readme_channel``."""
    (tmp_path / "readme_channel.py").write_text(python_block_defining("RicianChannel"))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield RICIAN
    sys.modules.pop("readme_channel", None)


def rician_scenario(channels: list[dict]) -> dict:
    """Uncoded QPSK at Es/N0 = 6 dB over ``channels``: 200 examples of 1,024 bits (512 symbols) per point."""
    return scenario_dict(
        links=[{"name": "qpsk", "type": "digital", "bits_per_symbol": 2, "block_bits": 1024}],
        channels=channels, snr_db=[6.0], metrics=["ber"],
        monte_carlo={"batch_size": 100, "max_samples": 200, "target_errors": 0},
    )


def test_readme_channel_plugin_matches_awgn_rayleigh_and_rician_closed_forms(readme_channel, run_dict, tmp_path):
    channels = [
        {"name": "los", "type": readme_channel, "k_factor_db": 60.0},
        {"name": "k6", "type": readme_channel, "k_factor_db": 6.0, "los_phase_deg": 30.0},
        {"name": "nlos", "type": readme_channel, "k_factor_db": -60.0},
    ]
    table = run_dict(rician_scenario(channels), tmp_path / "a").table
    rows = table.set_index("channel")
    ebno = float(rows.ebno_db.iloc[0])
    assert ebno == pytest.approx(6.0 - 10 * math.log10(2))
    expected = {"los": theory.qpsk_awgn(ebno), "k6": theory.qpsk_rician(ebno, 6.0), "nlos": theory.qpsk_rayleigh(ebno)}
    assert expected["los"] < expected["k6"] < expected["nlos"]  # 0.023, 0.052, 0.092: far apart
    for channel, p in expected.items():
        row = rows.loc[channel]
        # the two bits of a QPSK symbol share its coefficient: count symbols, not bits, as independent trials
        symbols = row.trials / 2
        assert abs(row.value - p) < 4.5 * math.sqrt(p * (1 - p) / symbols), (channel, row.value, p)

    # the rule for channels: the same numbers again, and for a point whatever other channels ran beside it
    again = run_dict(rician_scenario(channels), tmp_path / "b").table
    assert again.value.tolist() == table.value.tolist() and again["count"].tolist() == table["count"].tolist()
    alone = run_dict(rician_scenario(channels[1:2]), tmp_path / "c").table
    assert alone["count"].tolist() == [rows.loc["k6", "count"]]


def test_scenario_reference_covers_every_field():
    for model in (Scenario, MonteCarlo):
        for field in model.model_fields:
            assert re.search(rf"^\s*{field}:", README, flags=re.M), f"README misses scenario field {field}"


def test_type_references_cover_every_registered_type_and_parameter():
    for registry in (LINKS, CHANNELS):
        for name, cls in registry.load_all().items():
            assert f"**`{name}`**" in README, f"README does not document {registry.kind} type {name}"
            for field in cls.Params.model_fields:
                assert f"`{field}`" in README, f"README misses {name}.{field}"


def test_list_shows_types_with_descriptions(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  digital\s+\S", out, flags=re.M)
    for channel in ("awgn", "rayleigh", "ofdm"):
        assert re.search(rf"^  {channel}\s+\S", out, flags=re.M)
