"""Link type ``keras``: a baseline whose encoder and decoder are Keras models, run through the DLPack bridge.

Keras implementations of deep JSCC and semantic-communication baselines plug in without porting them::

    links:
      - type: keras
        encoder: examples/keras_jscc/model/encoder.keras     # a saved .keras file ...
        decoder: mypackage.models:build_decoder              # ... or a module:factory returning a keras.Model
        symbols: 8

What the models see (``B`` examples of the scenario's data source, ``n = symbols``):

* **encoder**: images ``[B, H, W, C]`` float32 in ``[0, 1]`` (NHWC, Keras' layout; semsim's ``[B, C, H, W]`` is
  transposed) -> ``2n`` reals per example (any output shape with ``2n`` values per example; or ``n`` complex
  values). Reals pair up as complex symbols ``x_k = r_{2k} + j r_{2k+1}``. The link scales every example to unit
  average energy (``mean |x_k|^2 = 1``), so the encoder need not normalise (normalising too changes nothing).
* **decoder**: the equalised received symbols as ``2n`` interleaved reals ``[B, 2n]`` float32 (real, imaginary,
  real, ...), in the same layout; a decoder with two inputs also gets ``snr_db`` ``[B, 1]`` float32 (Es/N0 in dB)
  as its second input. It returns class scores ``[B, classes]`` (logits or probabilities); the prediction is the
  argmax.

Models run in inference mode (``training=False``) through :func:`simulator.interop.bridge.to_tf` / ``to_torch``; nothing
is trained here (``examples/keras_jscc/train.py`` trains an example pair). Saved files are loaded with
``keras.saving.load_model(path, compile=False, safe_mode=True)`` (no arbitrary code: ``Lambda`` layers are
refused); custom layers must be registered (``keras.saving.register_keras_serializable``) in a module imported
before the sweep, or the model built by a ``module:factory``. Relative paths are relative to the working directory.

TensorFlow and Keras are imported only when a ``keras`` link is built.
"""

from __future__ import annotations

import importlib
import math
import os
from pathlib import Path
from typing import Any

import torch

from links.declarations import KerasDeclaration
from links.image_link import ImageLink
from links.params import KERAS_FACTORY, KERAS_MODEL_ALLOWED
from simulator.core.channel import ChannelOutput
from simulator.core.errors import UserError, one_line
from simulator.core.link import TensorDict
from simulator.core.registry import import_attribute
from simulator.core.snr import normalize_energy
from simulator.interop.bridge import import_tf, to_tf, to_torch
from simulator.io.artifacts import file_fingerprint


def import_keras():
    """Keras 3 on the TensorFlow backend (imported on first use), or a one-line :class:`UserError`."""
    import_tf()  # BridgeError with install instructions when TensorFlow is missing
    keras = importlib.import_module("keras")
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise UserError(f"link keras: Keras runs on the {backend!r} backend; set KERAS_BACKEND=tensorflow")
    return keras


def load_model(field: str, reference: str):
    """The ``keras.Model`` a link field names: a ``.keras`` file or a ``module:factory``; errors name ``field``."""
    keras = import_keras()
    where = f"link keras: {field} {reference!r}"
    if reference.endswith(".keras"):
        path = Path(reference).expanduser()
        if not path.is_file():
            raise UserError(f"{where}: no such file (from {os.getcwd()}); expected {KERAS_MODEL_ALLOWED}")
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as err:
            raise UserError(f"{where} is not a loadable Keras model: {type(err).__name__}: {one_line(err)}") from err
    elif KERAS_FACTORY.match(reference):
        factory = import_attribute(reference, where, f"; expected {KERAS_MODEL_ALLOWED}", missing="callable")
        if not callable(factory):
            module_name, _, attr = reference.partition(":")
            raise UserError(f"{where}: module {module_name!r} has no callable {attr!r}; expected {KERAS_MODEL_ALLOWED}")
        try:
            model = factory()
        except Exception as err:
            raise UserError(f"{where}: the factory raised {type(err).__name__}: {one_line(err)}") from err
    else:
        raise UserError(f"{where}: expected {KERAS_MODEL_ALLOWED} (the file name must end in .keras)")
    if not isinstance(model, keras.Model):
        raise UserError(f"{where} gave a {type(model).__name__}, not a Keras model; expected {KERAS_MODEL_ALLOWED}")
    return model


def keras_macs(model) -> int | None:
    """Multiply-accumulates per example of the ``Dense`` and ``Conv1D/2D/3D`` layers (biases, activations and
    pooling not counted), or ``None`` when a layer's output shape is unknown (a subclassed model never built)."""
    keras = import_keras()
    macs = 0

    def walk(layer) -> bool:
        nonlocal macs
        if isinstance(layer, keras.layers.Dense | keras.layers.Conv1D | keras.layers.Conv2D | keras.layers.Conv3D):
            try:
                shape = layer.output.shape
            except (AttributeError, ValueError):
                return False
            positions = math.prod(int(d) for d in shape[1:-1])
            macs += positions * math.prod(int(d) for d in layer.kernel.shape)
            return True
        return all(walk(sub) for sub in getattr(layer, "layers", None) or [])

    return macs if walk(model) else None


class KerasLink(KerasDeclaration, ImageLink):
    """Keras encoder and decoder (.keras files or module:factory) as an image-classification link, via DLPack."""

    def __init__(self, params=None, context=None):
        if params is None:
            raise UserError(f"link keras: the fields `encoder` and `decoder` are required ({KERAS_MODEL_ALLOWED})")
        super().__init__(params, context)
        self.encoder = load_model("encoder", self.params.encoder)
        self.decoder = load_model("decoder", self.params.decoder)
        if len(self.decoder.inputs) not in (1, 2):
            raise UserError(f"link keras: decoder {self.params.decoder!r} has {len(self.decoder.inputs)} inputs; "
                            "expected 1 (received reals) or 2 (received reals, snr_db)")
        self._check_sizes()

    def fingerprint(self) -> str | None:
        """The contents of the ``.keras`` files (a factory's models are identified by its name only)."""
        files = [v for v in (self.params.encoder, self.params.decoder) if v.endswith(".keras")]
        return file_fingerprint(*files) if files else None

    def _check_sizes(self) -> None:
        """Run both models on one test image so that size mismatches are one line naming the field at build time."""
        p = self.params
        image = self.data.test_batch(0, 1)["images"].to(self.device)
        try:
            reals = self._encode_reals(image)
        except UserError:
            raise
        except Exception as err:
            raise UserError(f"link keras: encoder {p.encoder!r} failed on a [1, {', '.join(map(str, _nhwc(image)))}] "
                            f"NHWC image of the data source: {type(err).__name__}: {one_line(err)}") from err
        if reals.shape[1] != 2 * p.symbols:
            raise UserError(f"link keras: encoder {p.encoder!r} outputs {reals.shape[1]} reals per image; "
                            f"symbols = {p.symbols} needs 2 * symbols = {2 * p.symbols}")
        zeros = torch.zeros(1, p.symbols, dtype=torch.complex64, device=self.device)
        try:
            scores = self._decode(zeros, torch.zeros(1, device=self.device))
        except Exception as err:
            raise UserError(f"link keras: decoder {p.decoder!r} failed on [1, {2 * p.symbols}] received reals: "
                            f"{type(err).__name__}: {one_line(err)}") from err
        classes = self.data.num_classes
        if scores.dim() != 2 or scores.shape[1] != classes:
            raise UserError(f"link keras: decoder {p.decoder!r} outputs {list(scores.shape[1:])} scores per image; "
                            f"the data source has {classes} classes")

    @property
    def channel_uses(self) -> int:
        return self.params.symbols

    def _encode_reals(self, images: torch.Tensor) -> torch.Tensor:
        """Encoder output ``[B, 2n]`` float32 (complex outputs become interleaved reals)."""
        out = to_torch(self.encoder(to_tf(images.permute(0, 2, 3, 1)), training=False))
        if out.is_complex():
            out = torch.view_as_real(out.reshape(out.shape[0], -1))
        return out.reshape(out.shape[0], -1).to(torch.float32).to(self.device)

    def _decode(self, symbols: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """Decoder scores ``[B, classes]`` from equalised symbols ``[B, n]`` complex64 and ``snr_db`` ``[B]``."""
        reals = torch.view_as_real(symbols.resolve_conj()).reshape(symbols.shape[0], -1).to(torch.float32)
        inputs = [to_tf(reals)]
        if len(self.decoder.inputs) == 2:
            inputs.append(to_tf(snr_db.to(torch.float32)[:, None]))
        out = self.decoder(inputs if len(inputs) == 2 else inputs[0], training=False)
        return to_torch(out).to(self.device)

    @torch.no_grad()
    def encode(self, batch: TensorDict) -> TensorDict:
        """``symbols`` ``[B, n]`` complex64 with unit average energy per example."""
        reals = self._encode_reals(batch["images"])
        return {"symbols": normalize_energy(torch.view_as_complex(reals.reshape(reals.shape[0], -1, 2).contiguous()))}


    @torch.no_grad()
    def receive(self, received: ChannelOutput, snr_db: torch.Tensor) -> TensorDict:
        """``prediction`` ``[B]`` int64: argmax of the decoder's scores."""
        return {"prediction": self._decode(received.symbols, snr_db).argmax(dim=1).to(torch.int64)}

    def describe(self) -> dict[str, Any]:
        facts = {
            **super().describe(),
            "encoder": self.params.encoder,
            "decoder": self.params.decoder,
            "tx_parameters": int(self.encoder.count_params()),
            "rx_parameters": int(self.decoder.count_params()),
        }
        for key, model in (("tx_macs", self.encoder), ("rx_macs", self.decoder)):
            macs = keras_macs(model)
            if macs is not None:
                facts[key] = macs
        return facts


def _nhwc(images: torch.Tensor) -> tuple[int, ...]:
    return tuple(images.permute(0, 2, 3, 1).shape[1:])
