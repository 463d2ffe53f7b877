"""Train a small Keras JSCC autoencoder-classifier on the embedded digits, for semsim's ``keras`` link type.

Model (Keras 3 on TensorFlow)::

    image [B, 8, 8, 1] in [0, 1]
      -> encoder: Conv2D(width, 3) -> Conv2D(2 width, 3, stride 2) -> Flatten -> Dense(2 * symbols)   (saved)
      -> power normalisation: unit average energy per complex symbol, per example (x_k = r_2k + j r_2k+1)
      -> AWGN at --snr-db (Es/N0 per complex channel use; noise variance no/2 per real), training only
      -> decoder: Dense(4 width) -> Dense(4 width) -> Dense(10) class logits                           (saved)
      -> softmax cross-entropy

Only the encoder and the decoder are saved (``encoder.keras``, ``decoder.keras``, built from standard Keras layers
only, so they load with ``safe_mode`` and no custom objects); semsim's ``keras`` link does the power normalisation
and the channel itself. The training split is semsim's ``digits`` train split (``simulator.data.source.DigitsSource``
with its default settings), so the link's test images were never seen in training.

    python examples/keras_jscc/train.py --epochs 60 --symbols 8 --snr-db 10 --out examples/keras_jscc/model
    semsim run examples/keras_jscc/scenario.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from simulator.data.source import DigitsSource  # noqa: E402


def build_encoder(symbols: int, image_shape: tuple[int, int, int] = (8, 8, 1), width: int = 16) -> keras.Model:
    """Images ``[B, H, W, C]`` float32 in [0, 1] -> ``[B, 2 * symbols]`` reals (not normalised)."""
    return keras.Sequential([
        keras.Input(image_shape),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(2 * symbols),
    ], name="encoder")


def build_decoder(symbols: int, classes: int = 10, width: int = 16) -> keras.Model:
    """Received reals ``[B, 2 * symbols]`` (interleaved real, imaginary) -> class logits ``[B, classes]``."""
    return keras.Sequential([
        keras.Input((2 * symbols,)),
        keras.layers.Dense(4 * width, activation="relu"),
        keras.layers.Dense(4 * width, activation="relu"),
        keras.layers.Dense(classes),
    ], name="decoder")


class PowerNormalize(keras.layers.Layer):
    """``[B, 2n]`` reals scaled per example to unit average energy per complex symbol: ``sum(r^2) = n``."""

    def call(self, reals):
        n = keras.ops.cast(keras.ops.shape(reals)[1] // 2, reals.dtype)
        energy = keras.ops.sum(reals**2, axis=1, keepdims=True) / n
        return reals / keras.ops.sqrt(keras.ops.maximum(energy, 1e-12))


class AWGN(keras.layers.Layer):
    """Adds complex AWGN at ``snr_db`` (Es/N0 per complex symbol) to interleaved reals; only when training."""

    def __init__(self, snr_db: float, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.sigma = float(np.sqrt(10 ** (-snr_db / 10) / 2))  # per real dimension
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, reals, training=None):
        if not training:
            return reals
        return reals + self.sigma * keras.random.normal(keras.ops.shape(reals), seed=self.seed_generator)


def digits_nhwc(split: str) -> tuple[np.ndarray, np.ndarray]:
    """semsim's digits ``split`` as NHWC float32 images ``[N, 8, 8, 1]`` in [0, 1] and int64 labels ``[N]``."""
    data = DigitsSource().split(split)
    return data.images.permute(0, 2, 3, 1).numpy(), data.labels.numpy()


def train(out: str | Path, epochs: int = 60, symbols: int = 8, snr_db: float = 10.0, width: int = 16,
          batch_size: int = 64, lr: float = 3e-3, seed: int = 0, verbose: int = 0) -> dict:
    """Train, save ``encoder.keras``, ``decoder.keras`` and ``metrics.json`` in ``out``; returns the metrics.

    Metrics: ``val_accuracy_clean`` (no noise) and ``val_accuracy_train_snr`` (with the training noise, one draw).
    """
    keras.utils.set_random_seed(seed)
    train_x, train_y = digits_nhwc("train")
    val_x, val_y = digits_nhwc("val")
    encoder = build_encoder(symbols, train_x.shape[1:], width)
    decoder = build_decoder(symbols, 10, width)
    images = keras.Input(train_x.shape[1:])
    channel = AWGN(snr_db, seed)
    logits = decoder(channel(PowerNormalize()(encoder(images))))
    model = keras.Model(images, logits, name="jscc")
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
                      lr, decay_steps=epochs * -(-len(train_x) // batch_size))),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(train_x, train_y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose)

    def accuracy(noisy: bool) -> float:
        reals = PowerNormalize()(encoder(val_x, training=False))
        reals = channel(reals, training=noisy)
        return float(np.mean(np.argmax(decoder(reals, training=False), axis=1) == val_y))

    metrics = {
        "symbols": symbols, "train_snr_db": snr_db, "epochs": epochs, "seed": seed,
        "train_loss": float(history.history["loss"][-1]),
        "val_accuracy_clean": accuracy(False), "val_accuracy_train_snr": accuracy(True),
        "encoder_parameters": int(encoder.count_params()), "decoder_parameters": int(decoder.count_params()),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # Keras 3.15 saving TF variables trips a numpy 2 DeprecationWarning (harmless)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"keras\.")
        encoder.save(out / "encoder.keras")
        decoder.save(out / "decoder.keras")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    parser.add_argument("--symbols", type=int, default=8, help="complex channel uses per image (default 8)")
    parser.add_argument("--snr-db", type=float, default=10.0, help="training Es/N0 in dB (default 10)")
    parser.add_argument("--width", type=int, default=16, help="conv channels; dense layers have 4 x width")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling and noise")
    parser.add_argument("--out", default="examples/keras_jscc/model", help="output directory")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.symbols < 1 or args.width < 1:
        parser.error("--epochs, --symbols and --width must be positive")
    metrics = train(args.out, args.epochs, args.symbols, args.snr_db, args.width, seed=args.seed, verbose=2)
    print(json.dumps(metrics, indent=2))
    print(f"saved {Path(args.out) / 'encoder.keras'} and {Path(args.out) / 'decoder.keras'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
