"""The worked plug-in example (examples/semsim_uncoded_pixels): a user's baseline link in its own package runs
by ``module:Class`` and by an installed entry point, and reaches its classifier's clean accuracy at high SNR."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import scenario_dict
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid

from simulator.cli import main
from simulator.config.assemble import build_data, build_link
from simulator.config.scenario import parse_scenario
from simulator.core.errors import UserError
from simulator.core.link import LINKS
from simulator.data.source import DigitsSource

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "semsim_uncoded_pixels"
CLASS_PATH = "semsim_uncoded_pixels:UncodedPixelsLink"


@pytest.fixture
def example(monkeypatch):
    """The example package importable (as after ``pip install``), and the registry restored afterwards."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setattr(LINKS, "_classes", dict(LINKS._classes))  # an entry point resolved here is forgotten
    yield
    for name in [m for m in sys.modules if m.startswith("semsim_uncoded_pixels")]:
        del sys.modules[name]


def clean_accuracy(classifier) -> float:
    """Test accuracy of ``classifier`` fitted on 8x8 digits pooled to 4x4 (2x2 means), centred on the training
    mean and scaled to unit energy per complex symbol (8 symbols), computed here without the link's code."""
    source = DigitsSource()

    def features(split):
        images = source.split(split).images.numpy()[:, 0]
        return images.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(-1, 16)

    train, test = features("train"), features("test")
    mean = train.mean(axis=0)

    def normalise(x):
        x = x - mean
        return x / np.sqrt((x**2).sum(axis=1, keepdims=True) / 8)

    classifier.fit(normalise(train), source.split("train").labels.numpy())
    return float((classifier.predict(normalise(test)) == source.split("test").labels.numpy()).mean())


def pixel_links(link_type: str) -> list[dict]:
    return [
        {"name": "logistic", "type": link_type, "symbols": 8},
        {"name": "nearest-mean", "type": link_type, "symbols": 8, "classifier": "nearest-mean"},
    ]


def sweep(link_type: str) -> dict:
    """Both classifiers at 8 symbols over AWGN; one Monte-Carlo batch is the whole test split (360 images)."""
    return scenario_dict(data={"type": "digits"}, links=pixel_links(link_type), channels=[{"type": "awgn"}],
                         snr_db=[-10.0, 60.0], metrics=["accuracy"],
                         monte_carlo={"batch_size": 360, "max_samples": 360, "target_errors": 0})


def test_by_module_path_high_snr_accuracy_is_the_clean_accuracy(example, run_dict, tmp_path):
    outcome = run_dict(sweep(CLASS_PATH))
    table = outcome.table.set_index(["link", "snr_db"])
    test_size = len(DigitsSource().split("test"))
    assert test_size == 360
    facts = json.loads((tmp_path / "out" / "links.json").read_text())
    for link, classifier in (("logistic", LogisticRegression(max_iter=5000)), ("nearest-mean", NearestCentroid())):
        expected = clean_accuracy(classifier)
        high, low = table.loc[(link, 60.0)], table.loc[(link, -10.0)]
        assert high.trials == test_size and high.channel_uses == 8
        assert abs(high.value - expected) <= 2 / test_size  # at 60 dB at most a borderline image may flip
        assert abs(facts[link]["clean_accuracy"] - expected) <= 1 / test_size
        assert low.value < expected - 0.3  # -10 dB: the noise is 10 times the signal
        assert facts[link]["pooled_shape"] == [1, 4, 4] and facts[link]["tx_parameters"] == 0
    assert facts["logistic"]["rx_parameters"] == 16 * 10 + 10 and facts["logistic"]["rx_macs"] == 16 * 10


def test_symbols_have_unit_energy_per_example_and_bad_sizes_are_refused(example):
    scenario = parse_scenario(sweep(CLASS_PATH))
    data = build_data(scenario)
    link = build_link(scenario.links[0], scenario, data)
    batch = link.sample(0, 50, torch.Generator())
    symbols = link.encode(batch)["symbols"]
    assert symbols.dtype == torch.complex64 and symbols.shape == (50, 8)
    assert torch.allclose(symbols.abs().pow(2).mean(dim=1), torch.ones(50), atol=1e-5)
    too_many = parse_scenario(scenario_dict(data={"type": "digits"},
                                            links=[{"name": "big", "type": CLASS_PATH, "symbols": 33}]))
    with pytest.raises(UserError,
                       match=r"^link 'big': symbols: 2 x 33 pooled pixel values do not fit a 1x8x8 image.*32$"):
        build_link(too_many.links[0], too_many, data)


def test_by_installed_entry_point_without_pip(example, tmp_path, monkeypatch, capsys):
    # what `pip install examples/semsim_uncoded_pixels` leaves in site-packages, made from its pyproject.toml
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    entry_points = project["entry-points"]["semsim.links"]
    assert entry_points == {"uncoded-pixels": "semsim_uncoded_pixels.link:UncodedPixelsLink"}
    dist = tmp_path / "site" / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (dist / "entry_points.txt").write_text(
        "[semsim.links]\n" + "".join(f"{name} = {target}\n" for name, target in entry_points.items()))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    from semsim_uncoded_pixels import UncodedPixelsLink

    assert LINKS.resolve("uncoded-pixels") is UncodedPixelsLink
    assert main(["list"]) == 0
    listed = next(line for line in capsys.readouterr().out.splitlines() if "uncoded-pixels" in line)
    assert "average-pooled pixels sent as analog symbols" in listed

    # the shipped scenario validates as written, and its plug-in links run from the command line
    shipped = yaml.safe_load((EXAMPLE / "scenario.yaml").read_text())
    assert main(["validate", str(EXAMPLE / "scenario.yaml")]) == 0
    shipped.update(links=[spec for spec in shipped["links"] if spec["type"] == "uncoded-pixels"],
                   snr_db=[0.0, 20.0], monte_carlo={"batch_size": 120, "max_samples": 120, "target_errors": 0})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(shipped))
    assert main(["run", str(path), "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    table = json.loads((tmp_path / "out" / "links.json").read_text())
    assert set(table) == {"pixels-16", "pixels-16-mean", "pixels-32"}
    assert {name: facts["channel_uses"] for name, facts in table.items()} == {
        "pixels-16": 16, "pixels-16-mean": 16, "pixels-32": 32}
    assert (tmp_path / "out" / "accuracy.png").stat().st_size > 0
