"""Channel type ``tf``: a TensorFlow function as a semsim channel through the DLPack bridge.

A pure-TensorFlow AWGN function gives the BER of Sionna's AWGN and of the closed form; runs are reproducible;
gradients reach a torch transmitter through it (and stage-2 training runs through it); the function contract
(``(y, no_eff)`` pairs, shapes, dtypes) is checked with one-line errors; TensorFlow is imported only when a
``tf`` channel is built.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import theory
import torch
import yaml
from conftest import scenario_dict
from scipy.stats import binomtest

from simulator.channels.tf_channel import TFChannel
from simulator.cli import main
from simulator.config.scenario import parse_scenario
from simulator.core.errors import UserError
from simulator.core.seeding import seeded

ROOT = Path(__file__).resolve().parents[1]
TF_AWGN = "simulator.channels.tf_channel:tf_awgn"
EXAMPLE = ROOT / "examples" / "keras_jscc"


def tf_channel(function: str = TF_AWGN) -> TFChannel:
    return TFChannel(TFChannel.Params(function=function))


# functions with broken contracts, referenced below as test_tf_channel:<name> (tests/ is on sys.path)
def wrong_dtype(x, no):
    import tensorflow as tf

    return tf.math.real(x)


def wrong_shape(x, no):
    return x[:, 1:]


def three_values(x, no):
    return x, no, no


def raises(x, no):
    raise RuntimeError("deliberate\nfailure")


def wrong_no_eff(x, no):
    import tensorflow as tf

    return x, tf.ones((3, 5, 7))


def generator_awgn(x, no):
    """AWGN drawn from TensorFlow's global tf.random.Generator instead of tf.random.normal."""
    import tensorflow as tf

    rng = tf.random.get_global_generator()
    sigma = tf.sqrt(no / 2.0)
    return x + tf.complex(sigma * rng.normal(tf.shape(x)), sigma * rng.normal(tf.shape(x)))


def qpsk_scenario(channels: list[dict], esno: list[float], seed: int = 7, samples: int = 400) -> dict:
    return scenario_dict(
        seed=seed,
        links=[{"name": "qpsk", "type": "digital", "bits_per_symbol": 2, "block_bits": 1024}],
        channels=channels, snr_db=esno, metrics=["ber"],
        monte_carlo={"batch_size": 200, "max_samples": samples, "target_errors": 0},
    )


def symbol_ci(row, m: int = 2):
    """99.9 % Wilson interval of the BER counted over symbols (the bits of a symbol share its noise and fade)."""
    return binomtest(round(row.count / m), row.trials // m).proportion_ci(confidence_level=0.999, method="wilson")


def test_tf_awgn_ber_matches_sionna_awgn_and_closed_form(run_dict):
    ebno = [0.0, 4.0, 6.0]
    esno = [e + 10 * math.log10(2) for e in ebno]
    table = run_dict(qpsk_scenario([{"type": "awgn"}, {"name": "tf-awgn", "type": "tf", "function": TF_AWGN}],
                                   esno)).table
    sionna, tf = table[table.channel == "awgn"], table[table.channel == "tf-awgn"]
    assert len(sionna) == len(tf) == 3 and (tf.trials == 400 * 1024).all()
    for e, a, b in zip(ebno, sionna.itertuples(), tf.itertuples(), strict=True):
        expected = theory.qpsk_awgn(e)
        ci_a, ci_b = symbol_ci(a), symbol_ci(b)
        assert ci_b.low <= expected <= ci_b.high, f"{e} dB: tf {b.value:.4e}, theory {expected:.4e}"
        assert ci_a.low <= expected <= ci_a.high, f"{e} dB: sionna {a.value:.4e}, theory {expected:.4e}"
        assert ci_a.low <= b.value <= ci_a.high and ci_b.low <= a.value <= ci_b.high  # each in the other's CI
        assert b.count >= 300  # enough errors for the comparison to have power
        assert a.value != b.value  # different noise draws: the tf channel is not Sionna's AWGN in disguise


def test_same_seed_gives_identical_numbers_and_another_seed_does_not(run_dict, tmp_path):
    def run(seed: int, name: str):
        data = qpsk_scenario([{"type": "tf", "function": TF_AWGN}], [2.0, 5.0], seed=seed, samples=200)
        return run_dict(data, tmp_path / name).table.value.tolist()

    first = run(7, "a")
    assert run(7, "b") == first
    assert run(8, "c") != first
    # direct calls: the engine's seeding decides the draws
    x = torch.ones(8, 16, dtype=torch.complex64)
    channel = tf_channel()
    with seeded(11):
        a = channel(x, torch.full((8,), 3.0)).symbols
    with seeded(11):
        b = channel(x, torch.full((8,), 3.0)).symbols
    with seeded(12):
        c = channel(x, torch.full((8,), 3.0)).symbols
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_output_follows_the_channel_contract():
    channel = tf_channel()
    batch, n = 400, 64
    x = torch.polar(torch.ones(batch, n), torch.rand(batch, n) * 6.28).to(torch.complex64)
    snr = torch.linspace(-5.0, 15.0, batch)
    with seeded(3):
        out = channel(x, snr)
    no = 10 ** (-snr / 10)
    assert out.symbols.shape == (batch, n) and out.symbols.dtype == torch.complex64
    assert out.no_eff.dtype == torch.float32 and torch.allclose(out.no_eff, no[:, None].expand(batch, n))
    assert torch.allclose(out.state["no"], no) and out.raw is out.symbols
    # noise variance per complex symbol is `no` (the statistic is chi-square with 2 * n * batch dof; 6 sigma)
    ratio = float(((out.symbols - x).abs() ** 2 / no[:, None]).mean())
    assert abs(ratio - 1.0) < 6 / math.sqrt(batch * n)
    real_share = float(((out.symbols - x).real ** 2 / no[:, None]).mean())
    assert abs(real_share - 0.5) < 6 * 0.5 * math.sqrt(2 / (batch * n))  # no/2 per real dimension


def test_function_returning_y_and_no_eff(monkeypatch, run_dict):
    """The example Rayleigh channel returns (y / h, no / |h|^2): residuals scaled by no_eff have unit variance,
    and QPSK through it follows the Rayleigh closed form."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    channel = tf_channel("jscc_channels:rayleigh_zf")
    batch, n = 200, 100
    x = torch.ones(batch, n, dtype=torch.complex64)
    with seeded(5):
        out = channel(x, torch.full((batch,), 10.0))
    assert out.no_eff.shape == (batch, n) and float(out.no_eff.std()) > 0.05  # varies with the fade
    normalised = float(((out.symbols - x).abs() ** 2 / out.no_eff).mean())
    assert abs(normalised - 1.0) < 6 / math.sqrt(batch * n)
    ebno = [0.0, 6.0]
    table = run_dict(qpsk_scenario([{"type": "tf", "function": "jscc_channels:rayleigh_zf"}],
                                   [e + 10 * math.log10(2) for e in ebno], samples=200)).table
    for e, row in zip(ebno, table.itertuples(), strict=True):
        ci = symbol_ci(row)
        assert ci.low <= theory.qpsk_rayleigh(e) <= ci.high, f"{e} dB: {row.value:.4e} vs {theory.qpsk_rayleigh(e)}"
    sys.modules.pop("jscc_channels", None)


@pytest.mark.parametrize("function", [TF_AWGN, "test_tf_channel:generator_awgn"])
def test_gradients_use_the_forward_noise_and_draws_repeat(function):
    """L = sum |y|^2 with y = x + n: dL/dx (torch's convention for complex inputs) is 2 y exactly when the gradient
    belongs to the n of the forward pass; the same seed redraws the same n, for tf.random ops and for the global
    tf.random.Generator alike."""
    channel = tf_channel(function)
    x = torch.randn(16, 32, dtype=torch.complex64, requires_grad=True)
    with seeded(9):
        y = channel(x, torch.full((16,), 0.0)).symbols
    (y.abs() ** 2).sum().backward()
    assert torch.allclose(x.grad, 2 * y.detach(), atol=1e-5)
    assert not torch.allclose(y.detach(), x.detach(), atol=0.1)  # there is noise (0 dB)
    with seeded(9):
        again = channel(x.detach(), torch.full((16,), 0.0)).symbols
    with seeded(10):
        other = channel(x.detach(), torch.full((16,), 0.0)).symbols
    assert torch.equal(again, y.detach()) and not torch.equal(other, again)


def test_training_a_torch_encoder_through_the_tf_channel_lowers_its_loss():
    """Only the transmitter learns (the receiver is a fixed random linear map), so the loss can only fall if
    gradients cross the TF channel into the encoder."""
    torch.manual_seed(0)
    messages, n = 8, 4
    encoder = torch.nn.Linear(messages, 2 * n)
    decoder = torch.nn.Linear(2 * n, messages).requires_grad_(False)
    decoder.weight.mul_(4.0)  # confident enough that a good transmitter can reach a low loss
    optimizer = torch.optim.Adam(encoder.parameters(), lr=0.05)
    channel = tf_channel()
    labels = torch.arange(messages).repeat(16)
    onehot = torch.nn.functional.one_hot(labels, messages).float()

    def loss_at(step: int, train: bool) -> torch.Tensor:
        reals = encoder(onehot)
        symbols = torch.view_as_complex(reals.reshape(-1, n, 2))
        symbols = symbols / symbols.abs().pow(2).mean(dim=1, keepdim=True).sqrt()
        with seeded(1000 + step):
            received = channel(symbols, torch.full((len(labels),), 10.0)).symbols
        return torch.nn.functional.cross_entropy(decoder(torch.view_as_real(received).reshape(-1, 2 * n)), labels)

    with torch.no_grad():
        before = float(loss_at(0, False))
    weights = encoder.weight.detach().clone()
    for step in range(40):
        optimizer.zero_grad()
        loss = loss_at(step, True)
        loss.backward()
        assert encoder.weight.grad is not None and float(encoder.weight.grad.abs().sum()) > 0
        optimizer.step()
    with torch.no_grad():
        after = float(loss_at(0, False))
    assert not torch.equal(weights, encoder.weight)
    assert after < 0.3 * before, (before, after)


def test_rkdsc_stage2_trains_through_a_tf_channel(tmp_path, monkeypatch, run_dict):
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(tmp_path / "cache"))
    tiny = {
        "teacher": {"type": "vit", "dim": 16, "depth": 1, "heads": 2, "epochs": 1, "batch_size": 128},
        "search": {"cells": 1, "nodes": 1, "channels": 4, "epochs": 1, "batch_size": 128},
        "stage1": {"epochs": 1, "batch_size": 128},
        "stage2": {"epochs": 3, "batch_size": 128, "lr": 5e-3,
                   "channels": [{"name": "tfawgn", "type": "tf", "function": TF_AWGN}]},
        "cat": {"tokens": 2, "width": 8, "depth": 1, "heads": 1, "max_symbols": 8, "budgets": [8]},
    }
    data = scenario_dict(data={"type": "digits"}, links=[{"name": "rkdsc", "type": "rkdsc", "symbols": 8, **tiny}],
                         channels=[{"type": "tf", "function": TF_AWGN}], snr_db=[20.0], metrics=["accuracy"],
                         monte_carlo={"batch_size": 120, "max_samples": 120, "target_errors": 0})
    table = run_dict(data).table
    assert len(table) == 1 and 0 <= table.value.iloc[0] <= 1
    meta = json.loads(next((tmp_path / "cache").glob("stage2-*/meta.json")).read_text())
    assert meta["config"]["stage2"]["channels"][0]["function"] == TF_AWGN
    losses = [epoch["loss"] for epoch in meta["metrics"]["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert set(meta["metrics"]["val_accuracy_tfawgn"]) == {"0 dB", "10 dB", "20 dB"}


def test_existing_stage2_channel_names_are_unchanged():
    from links.rkdsc.params import Stage2Params

    assert Stage2Params().model_dump(mode="json")["channels"] == ["awgn", "rayleigh", "ofdm"]
    assert Stage2Params(channels=["awgn", "awgn"]).model_dump(mode="json")["channels"] == ["awgn", "awgn"]
    with pytest.raises(ValueError, match="names two different channels"):
        Stage2Params(channels=["rayleigh", {"type": "rayleigh", "fading": "block"}])


@pytest.mark.parametrize("function, message", [
    ("no_such_module_xyz:awgn", r"function 'no_such_module_xyz:awgn': cannot import module 'no_such_module_xyz'"),
    ("math:nope", r"function 'math:nope': module 'math' has no attribute 'nope'"),
    ("math:pi", r"function 'math:pi': float is not a function"),
])
def test_bad_function_references_are_one_line_errors(function, message):
    with pytest.raises(UserError, match=message) as err:
        tf_channel(function)
    assert "\n" not in str(err.value) and "module:function" in str(err.value)


@pytest.mark.parametrize("value, message", [
    ("not a path", r"channels\[0\]\.function: 'not a path' is not a module:function path"),
    (None, r"channels\[0\]\.function: required field is missing"),
])
def test_bad_function_values_are_scenario_errors(value, message):
    channel = {"type": "tf"} if value is None else {"type": "tf", "function": value}
    with pytest.raises(UserError, match=message):
        parse_scenario(scenario_dict(channels=[channel]))


@pytest.mark.parametrize("function, message", [
    ("wrong_dtype", r"returned y \(4, 8\) float32; expected \[batch, n\] = \[4, 8\] complex64"),
    ("wrong_shape", r"returned y \(4, 7\) complex64; expected \[batch, n\] = \[4, 8\] complex64"),
    ("three_values", r"returned 3 values; expected y or \(y, no_eff\)"),
    ("raises", r"raised RuntimeError: deliberate failure"),
    ("wrong_no_eff", r"returned no_eff \(3, 5, 7\); expected a shape broadcastable to \[batch, n\] = \[4, 8\]"),
])
def test_functions_breaking_the_contract_are_named(function, message):
    channel = tf_channel(f"test_tf_channel:{function}")
    with pytest.raises(UserError, match=rf"channel tf: function 'test_tf_channel:{function}' {message}") as err:
        channel(torch.ones(4, 8, dtype=torch.complex64), torch.zeros(4))
    assert "\n" not in str(err.value)


def test_cli_run_with_a_bad_function_exits_2_without_traceback(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(qpsk_scenario([{"type": "tf", "function": "no_such_module_xyz:awgn"}], [0.0])))
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "function 'no_such_module_xyz:awgn'" in err


def test_tensorflow_is_imported_only_by_tf_components(tmp_path):
    code = (
        "import sys\n"
        "import simulator, simulator.channels, simulator.channels.tf_channel, links.keras_link\n"
        "from simulator.cli import main\n"
        "assert main(['list']) == 0\n"
        "from simulator.config.scenario import parse_scenario\n"
        "from simulator.engine.sweep import run_scenario\n"
        f"data = {qpsk_scenario([{'type': 'awgn'}], [4.0], samples=200)!r}\n"
        "data['links'].append({'name': 'k', 'type': 'keras', 'encoder': 'e.keras', 'decoder': 'm:f'})\n"
        "scenario = parse_scenario(data)\n"
        "scenario = parse_scenario({**data, 'links': data['links'][:1]})\n"
        "run_scenario(scenario, sys.argv[1], progress=False)\n"
        "print('TF-LOADED' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'TF-ABSENT')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "TF-ABSENT" in done.stdout
    assert re.search(r"^  tf\s+\S", done.stdout, flags=re.M) and re.search(r"^  keras\s+\S", done.stdout, flags=re.M)
