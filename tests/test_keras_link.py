"""Link type ``keras``: the example Keras JSCC model (examples/keras_jscc/train.py) trained at a tiny size, then
swept by semsim over AWGN; the link reproduces the Keras model's own accuracy, takes ``module:factory``
references and two-input decoders, reports its size, and rejects bad references with one line naming the field."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import scenario_dict

from simulator.cli import main
from simulator.config.scenario import parse_scenario
from simulator.core.errors import UserError
from simulator.data.source import DigitsSource

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "keras_jscc"
SYMBOLS, WIDTH = 8, 8


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"keras_jscc_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The example trained by its command line (15 epochs, 8 symbols, width 8, 10 dB) into a temporary folder."""
    out = tmp_path_factory.mktemp("keras_jscc")
    train = load_example("train")
    assert train.main(["--epochs", "15", "--symbols", str(SYMBOLS), "--width", str(WIDTH), "--snr-db", "10",
                       "--out", str(out)]) == 0
    return out


def keras_scenario(encoder: str, decoder: str, snr_db: list[float], symbols: int = SYMBOLS, seed: int = 7) -> dict:
    return scenario_dict(
        seed=seed, data={"type": "digits"},
        links=[{"name": "keras", "type": "keras", "encoder": encoder, "decoder": decoder, "symbols": symbols}],
        channels=[{"type": "awgn"}], snr_db=snr_db, metrics=["accuracy"],
        monte_carlo={"batch_size": 360, "max_samples": 360, "target_errors": 0},  # the whole test split once
    )


def keras_accuracy(folder: Path) -> float:
    """Test accuracy of the saved pair on noiseless, unit-energy symbols, computed with Keras alone."""
    import keras

    encoder = keras.saving.load_model(folder / "encoder.keras")
    decoder = keras.saving.load_model(folder / "decoder.keras")
    test = DigitsSource().split("test")
    reals = encoder.predict(test.images.permute(0, 2, 3, 1).numpy(), verbose=0)
    reals = reals / np.sqrt((reals**2).sum(axis=1, keepdims=True) / SYMBOLS)
    scores = decoder.predict(reals, verbose=0)
    return float((scores.argmax(axis=1) == test.labels.numpy()).mean())


def test_sweep_reproduces_the_keras_accuracy_and_degrades_at_low_snr(trained, run_dict, tmp_path):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["val_accuracy_clean"] > 0.7  # the example learned something
    data = keras_scenario(str(trained / "encoder.keras"), str(trained / "decoder.keras"), [-10.0, 40.0])
    outcome = run_dict(data, tmp_path / "files")
    low, high = outcome.table.value.tolist()
    assert (outcome.table.trials == 360).all() and (outcome.table.channel_uses == SYMBOLS).all()
    reference = keras_accuracy(trained)
    assert high > 0.7  # chance is 0.1
    assert abs(high - reference) <= 3 / 360  # 40 dB: at most a few decisions flip
    assert low < high - 0.15
    facts = json.loads((tmp_path / "files" / "links.json").read_text())["keras"]
    assert facts["channel_uses"] == SYMBOLS
    assert facts["tx_parameters"] == metrics["encoder_parameters"]
    assert facts["rx_parameters"] == metrics["decoder_parameters"]
    # conv 3x3 (1 -> w) on 8x8, conv 3x3 stride 2 (w -> 2w) to 4x4, dense 32w -> 2 symbols; dense 2s -> 4w -> 4w -> 10
    w, s = WIDTH, SYMBOLS
    assert facts["tx_macs"] == 64 * 9 * w + 16 * 9 * w * 2 * w + 16 * 2 * w * 2 * s
    assert facts["rx_macs"] == 2 * s * 4 * w + 4 * w * 4 * w + 4 * w * 10


FACTORIES = '''
import keras

FOLDER = {folder!r}


def encoder():
    return keras.saving.load_model(FOLDER + "/encoder.keras")


def decoder():
    return keras.saving.load_model(FOLDER + "/decoder.keras")


def decoder_with_snr():
    """The trained decoder plus a second input, snr_db [B, 1]: below 20 dB every example is called class 0."""
    trained = decoder()
    reals, snr = keras.Input(({reals},)), keras.Input((1,))
    below = keras.layers.Dense(1, activation="relu", kernel_initializer=keras.initializers.Constant(-1.0),
                               bias_initializer=keras.initializers.Constant(20.0))(snr)
    vote = keras.layers.Dense(10, use_bias=False,
                              kernel_initializer=keras.initializers.Constant([[1000.0] + [0.0] * 9]))(below)
    return keras.Model([reals, snr], keras.layers.Add()([trained(reals), vote]))


def five_classes():
    return keras.Sequential([keras.Input(({reals},)), keras.layers.Dense(5)])


def not_a_model():
    return 3
'''


@pytest.fixture
def factories(trained, tmp_path, monkeypatch):
    (tmp_path / "kfactories.py").write_text(FACTORIES.format(folder=str(trained), reals=2 * SYMBOLS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "kfactories"
    sys.modules.pop("kfactories", None)


def test_module_factories_and_a_decoder_that_takes_the_snr(trained, factories, run_dict, tmp_path):
    by_file = run_dict(keras_scenario(str(trained / "encoder.keras"), str(trained / "decoder.keras"),
                                      [0.0, 40.0]), tmp_path / "a").table.value.tolist()
    by_factory = run_dict(keras_scenario(f"{factories}:encoder", f"{factories}:decoder", [0.0, 40.0]),
                          tmp_path / "b").table.value.tolist()
    assert by_factory == by_file  # same models, same seeded noise
    with_snr = run_dict(keras_scenario(str(trained / "encoder.keras"), f"{factories}:decoder_with_snr",
                                       [0.0, 40.0]), tmp_path / "c").table.value.tolist()
    test_labels = DigitsSource().split("test").labels
    assert with_snr[0] == pytest.approx(float((test_labels == 0).float().mean()))  # 0 dB < 20 dB: all class 0
    assert with_snr[1] == by_file[1]  # 40 dB: the trained decoder decides


@pytest.mark.parametrize("encoder, decoder, symbols, message", [
    ("missing.keras", "decoder", SYMBOLS, r"encoder '.*missing\.keras': no such file"),
    ("encoder", "garbage.keras", SYMBOLS, r"decoder '.*garbage\.keras' is not a loadable Keras model"),
    ("encoder", "decoder", 4, r"encoder '.*encoder\.keras' outputs 16 reals per image; symbols = 4 needs "
                              r"2 \* symbols = 8"),
    ("encoder", "kfactories:five_classes", SYMBOLS, r"decoder 'kfactories:five_classes' outputs \[5\] scores per "
                                                    r"image; the data source has 10 classes"),
    ("kfactories:not_a_model", "decoder", SYMBOLS, r"encoder 'kfactories:not_a_model' gave a int, not a Keras"),
    ("kfactories:nothing", "decoder", SYMBOLS, r"encoder 'kfactories:nothing': module 'kfactories' has no callable"),
    ("no_such_module_xyz:f", "decoder", SYMBOLS, r"encoder 'no_such_module_xyz:f': cannot import module"),
])
def test_bad_models_are_one_line_errors_naming_the_field(trained, factories, run_dict, tmp_path, encoder, decoder,
                                                         symbols, message):
    (tmp_path / "garbage.keras").write_bytes(b"not a zip archive")
    files = {"encoder": str(trained / "encoder.keras"), "decoder": str(trained / "decoder.keras"),
             "missing.keras": str(tmp_path / "missing.keras"), "garbage.keras": str(tmp_path / "garbage.keras")}
    data = keras_scenario(files.get(encoder, encoder), files.get(decoder, decoder), [10.0], symbols=symbols)
    with pytest.raises(UserError, match=rf"link 'keras': {message}") as err:
        run_dict(data)
    assert "\n" not in str(err.value)


def test_bad_references_are_scenario_errors_and_the_cli_exits_2(tmp_path, capsys):
    with pytest.raises(UserError, match=r"links\[0\]\.encoder: 'model\.h5': expected a path to a saved \.keras"):
        parse_scenario(keras_scenario("model.h5", "m:f", [0.0]))
    with pytest.raises(UserError, match=r"links\[0\]\.decoder: required field is missing"):
        parse_scenario(scenario_dict(data={"type": "digits"}, links=[{"type": "keras", "encoder": "m:f"}]))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(keras_scenario(str(tmp_path / "nowhere.keras"), "m:f", [0.0])))
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "nowhere.keras': no such file" in err


def test_example_scenario_parses_and_names_the_example_files():
    scenario = parse_scenario(yaml.safe_load((EXAMPLE / "scenario.yaml").read_text()))
    keras_links = [link for link in scenario.links if link.type == "keras"]
    assert keras_links and all(link.params.encoder.endswith("encoder.keras") for link in keras_links)
    assert any(channel.type == "tf" for channel in scenario.channels)
    assert keras_links[0].params.symbols == SYMBOLS
