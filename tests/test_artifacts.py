"""Artifacts: safetensors weights with a JSON sidecar, bad checkpoints rejected in one line, training resumes."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from links.training import EpochProgress
from simulator.core.errors import UserError
from simulator.io.artifacts import artifact, artifact_key, load_weights


def small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_keys_depend_on_config_and_parents():
    base = artifact_key("student", {"lr": 1e-3}, {"teacher": "abc"})
    assert base == artifact_key("student", {"lr": 1e-3}, {"teacher": "abc"})
    assert base != artifact_key("student", {"lr": 2e-3}, {"teacher": "abc"})
    assert base != artifact_key("student", {"lr": 1e-3}, {"teacher": "abd"})


def test_save_and_load_round_trip_with_sidecar(tmp_path):
    art = artifact("demo", {"x": 1}, root=tmp_path)
    assert not art.exists()
    net = small_net(0)
    art.save(net, {"accuracy": 0.5}, card="# card\n")
    assert art.exists()
    meta = json.loads(art.meta_path.read_text())
    assert meta["key"] == art.key and meta["metrics"] == {"accuracy": 0.5} and "torch" in meta["versions"]
    assert (art.directory / "card.md").read_text() == "# card\n"
    other = art.load_into(small_net(1))
    for a, b in zip(net.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
    assert art.weights_path.read_bytes()[:8] != b"\x80\x02\x80\x03"[:8]  # not a pickle


def test_a_weightless_result_keeps_its_fingerprint_when_only_its_timings_change(tmp_path):
    """A search result retrained to the same genotype (its epochs timed differently) has the same fingerprint, so
    the points evaluated with it keep their ids; another genotype, or another history, does not."""
    history = [{"epoch": 1, "val_kd": 0.8, "seconds": 3.6}, {"epoch": 2, "val_kd": 0.7, "seconds": 3.4}]
    fingerprints = []
    for root, genotype, seconds, val_kd in [("a", [1, 2], (3.6, 3.4), 0.7), ("b", [1, 2], (4.1, 4.8), 0.7),
                                            ("c", [2, 1], (3.6, 3.4), 0.7), ("d", [1, 2], (3.6, 3.4), 0.6)]:
        art = artifact("search", {"x": 1}, root=tmp_path / root)
        steps = [{**step, "seconds": s} for step, s in zip(history, seconds, strict=True)]
        steps[-1]["val_kd"] = val_kd
        art.save(None, {"genotype": genotype, "history": steps})
        fingerprints.append(art.fingerprint())
    same_result, other_timing, other_genotype, other_history = fingerprints
    assert same_result == other_timing
    assert len({same_result, other_genotype, other_history}) == 3


def test_bad_checkpoints_are_one_line_user_errors(tmp_path):
    art = artifact("demo", {}, root=tmp_path)
    art.save(small_net(), {})
    with pytest.raises(UserError, match="does not fit the model .*missing"):
        art.load_into(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2), nn.Linear(2, 2)))
    with pytest.raises(UserError, match="wrong shape"):
        art.load_into(nn.Sequential(nn.Linear(4, 9), nn.ReLU(), nn.Linear(9, 2)))
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 5 + b"garbage")
    with pytest.raises(UserError, match="not a readable safetensors file") as err:
        load_weights(small_net(), corrupt)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="checkpoint not found"):
        load_weights(small_net(), tmp_path / "missing.safetensors")


def train(art, epochs: int, stop_after: int | None = None) -> nn.Module:
    net = small_net(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    data = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    target = data[:, :2] * 3

    start, history = art.load_checkpoint(net, optimizer)  # the loop every trainer writes out (links.training)
    for epoch in EpochProgress("test", start, epochs):
        if stop_after is not None and epoch == stop_after:
            raise KeyboardInterrupt
        loss = nn.functional.mse_loss(net(data), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({"epoch": epoch + 1, "loss": loss.item()})
        art.save_checkpoint(net, optimizer, epoch + 1, history)
    assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
    return net


def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    uninterrupted = train(artifact("a", {}, root=tmp_path), 6)
    resumed_art = artifact("b", {}, root=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train(resumed_art, 6, stop_after=3)
    assert json.loads((resumed_art.directory / "checkpoint.json").read_text())["epoch"] == 3
    resumed = train(resumed_art, 6)
    for a, b in zip(uninterrupted.parameters(), resumed.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
