"""The ``deepjscc`` baseline link: conventional deep joint source-channel coding, trained at one SNR.

Deep JSCC (Bourtsoulatze, Kurka, Gunduz 2019, and its edge-inference variants) maps an image straight to complex
channel symbols with a neural encoder and trains encoder, decoder and task head end to end through a channel at
*one* training SNR. The transmitter neither sees the SNR nor adapts to it; the receiver sees only the equalised
symbols (no SNR or CSI input). Away from the training SNR the accuracy changes smoothly, which is the behaviour
RKD-SC is compared against.

Two encoders (``encoder``):

* ``conv``: a small CNN on the images (input normalised with per-channel statistics fitted on the training split
  and stored with the weights; no batch normalisation, so an example's symbols never depend on its batch-mates):
  ``images [B, C, H, W] -> conv 3x3 (width) -> conv 3x3 stride 2 (width) -> conv 3x3 stride 2 (2 width) -> linear
  -> 2 symbols reals -> complex [B, symbols]``, PReLU activations; an MLP decoder
  ``[B, 2 symbols] -> 4 width -> 4 width`` features and a linear classifier.
* ``teacher``: "deep JSCC with a large encoder": the frozen teacher of the RKD-SC link (the same cached artifact)
  embeds the image (``[B, D]``), an MLP ``D -> 4 width -> 2 symbols`` makes the symbols, an MLP
  ``2 symbols -> 4 width -> D`` decodes, and a head started from the teacher's classifier (trainable) classifies.

Both end in a per-example power normalisation (every example's symbols have unit average energy, as the Deep JSCC
power constraint; the authors' per-batch normalisation is not copied). The loss is the cross-entropy of the class;
Adam with a cosine learning-rate schedule; the channel noise of every step is seeded from ``train_seed``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from links.baselines.params import DeepJSCCParams, JSCCTrainingParams
from links.complexity import count_macs, count_parameters
from links.declarations import DeepJSCCDeclaration
from links.image_link import ImageLink
from links.teacher import Normalize
from links.teacher_stage import prepare_teacher
from links.training import EpochProgress, cosine_lr, initialised, minibatches, model_card, plot_curves
from simulator.channels import CHANNELS
from simulator.core.channel import Channel, ChannelOutput
from simulator.core.link import TensorDict
from simulator.core.seeding import derive_seed, seeded
from simulator.core.snr import normalize_energy
from simulator.data.source import DataSource, Split
from simulator.io.artifacts import Artifact, artifact

#: version of the deep JSCC training code, part of the artifact key (bump it when the code changes what it trains)
RECIPE = 1






class PowerNormalize(nn.Module):
    """Reals ``[B, 2n]`` (real and imaginary parts interleaved) -> complex64 ``[B, n]``, unit average energy per
    example: ``z * sqrt(n / sum |z|^2)``."""

    def forward(self, reals: torch.Tensor) -> torch.Tensor:
        return normalize_energy(torch.view_as_complex(reals.float().reshape(reals.shape[0], -1, 2).contiguous()))


def snr_feature(snr_db: torch.Tensor) -> torch.Tensor:
    """The SNR as one input feature ``[B, 1]`` (dB / 20) for SNR-adaptive layers."""
    return (snr_db.float() / 20.0)[:, None]


class SymbolEncoder(nn.Module):
    """An encoder ``x -> symbols [B, n]`` complex64 in two parts: ``features(x)``, which ignores the SNR, and
    ``to_symbols(features, snr_db)``, which sees it only when ``snr_adaptive``. ``transmit_once`` and
    ``transmit_at`` split it the way a link's ``encode`` (once per batch) and ``adapt_to_snr`` (per SNR point) do."""

    snr_adaptive: bool = False

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def to_symbols(self, features: torch.Tensor, snr_db: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor | None = None) -> torch.Tensor:
        return self.to_symbols(self.features(x), snr_db)

    def transmit_once(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The SNR-independent work: the features of an SNR-adaptive encoder, else the symbols themselves."""
        return {"features": self.features(x)} if self.snr_adaptive else {"symbols": self(x)}

    def transmit_at(self, encoded: dict[str, torch.Tensor], snr_db: torch.Tensor | None) -> torch.Tensor:
        """Symbols from :meth:`transmit_once`'s output at per-example ``snr_db``."""
        return self.to_symbols(encoded["features"], snr_db) if self.snr_adaptive else encoded["symbols"]


class ConvEncoder(SymbolEncoder):
    """Images ``[B, C, size, size]`` in [0, 1] -> symbols ``[B, symbols]`` complex64 (see the module docstring).

    ``features(images)`` is the SNR-independent trunk ``[B, F]``; ``to_symbols(features, snr_db)`` the last linear
    layer (given the SNR as an extra input when ``snr_adaptive``) and the power normalisation.
    """

    def __init__(self, channels: int, size: int, width: int, symbols: int, snr_adaptive: bool = False):
        super().__init__()
        side = math.ceil(math.ceil(size / 2) / 2)  # two stride-2 convolutions with padding 1
        self.normalize = Normalize(channels)
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.PReLU(width),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.PReLU(width),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.PReLU(2 * width),
            nn.Flatten(),
        )
        self.snr_adaptive = snr_adaptive
        self.out = nn.Linear(2 * width * side * side + int(snr_adaptive), 2 * symbols)
        self.power = PowerNormalize()

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.normalize(images))

    def to_symbols(self, features: torch.Tensor, snr_db: torch.Tensor | None) -> torch.Tensor:
        if self.snr_adaptive:
            features = torch.cat([features, snr_feature(snr_db)], dim=1)
        return self.power(self.out(features))


class EmbeddingEncoder(SymbolEncoder):
    """Teacher embedding ``[B, D]`` -> symbols ``[B, n]`` complex64: an MLP to ``2 n`` reals, power-normalised per
    example. Not SNR-adaptive (``snr_db`` is accepted and ignored)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.power = PowerNormalize()

    def to_symbols(self, embedding: torch.Tensor, snr_db: torch.Tensor | None) -> torch.Tensor:
        return self.power(self.net(embedding))


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """``Linear -> PReLU -> Linear``."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.PReLU(), nn.Linear(hidden, outputs))


class Decoder(nn.Module):
    """Equalised symbols ``[B, n]`` complex (and, when ``snr_adaptive``, the SNR ``[B]`` in dB as one more input)
    -> features ``[B, F]`` float32: an MLP on the real and imaginary parts."""

    def __init__(self, net: nn.Module, snr_adaptive: bool = False):
        super().__init__()
        self.net = net
        self.snr_adaptive = snr_adaptive

    def forward(self, symbols: torch.Tensor, snr_db: torch.Tensor | None = None) -> torch.Tensor:
        reals = torch.view_as_real(symbols.to(torch.complex64)).flatten(1)
        if self.snr_adaptive:
            reals = torch.cat([reals, snr_feature(snr_db)], dim=1)
        return self.net(reals)


def build_codec(p: DeepJSCCParams, channels: int, size: int, num_classes: int,
                teacher: nn.Module | None = None) -> nn.ModuleDict:
    """Trainable modules: ``encoder`` (images or teacher embedding -> symbols), ``decoder``, ``head``."""
    hidden = 4 * p.width
    if p.encoder == "conv":
        extra = int(p.snr_adaptive)
        return nn.ModuleDict({
            "encoder": ConvEncoder(channels, size, p.width, p.symbols, p.snr_adaptive),
            "decoder": Decoder(nn.Sequential(mlp(2 * p.symbols + extra, hidden, hidden), nn.PReLU()), p.snr_adaptive),
            "head": nn.Linear(hidden, num_classes),
        })
    dim = teacher.embed_dim
    return nn.ModuleDict({
        "encoder": EmbeddingEncoder(mlp(dim, hidden, 2 * p.symbols)),
        "decoder": Decoder(mlp(2 * p.symbols, hidden, dim)),
        "head": copy.deepcopy(teacher.head).requires_grad_(True),
    })


@dataclass
class DeepJSCCModels:
    """The trained codec (eval mode, frozen), the frozen teacher (teacher encoder only) and the training report."""

    codec: nn.ModuleDict
    teacher: nn.Module | None
    artifact: Artifact
    metrics: dict[str, Any]
    teacher_artifact: Artifact | None = None


def prepare(p: DeepJSCCParams, data: DataSource, data_config: dict, device: str = "cpu") -> DeepJSCCModels:
    """Load the trained codec from the cache, training it if missing (and the teacher, for the teacher encoder)."""
    train, val = data.split("train"), data.split("val")
    channels, size = train.images.shape[1], train.images.shape[-1]
    seed = p.train_seed
    teacher, parents = None, {}
    if p.encoder == "teacher":
        stage = prepare_teacher(p.teacher, data, data_config, seed, device)
        teacher, parents = stage.teacher, {"teacher": stage.artifact.key}
    with initialised(seed, "deepjscc"):
        codec = build_codec(p, channels, size, data.num_classes, teacher).to(device)
    art = artifact("deepjscc", {"deepjscc": p.model_dump(mode="json", exclude={"teacher"}), "data": data_config,
                                "channel": training_channel(p, device).identity()},
                   parents, recipe=RECIPE)
    if not art.exists():
        if teacher is not None:
            inputs = {name: stage.targets[name]["embedding"] for name in ("train", "val")}
        else:
            codec["encoder"].normalize.fit(train.images)
            inputs = {"train": train.images.to(device), "val": val.images.to(device)}
        _train(codec, p, inputs, train, val, art, parents, device)
    art.load_into(codec, device).eval()
    codec.requires_grad_(False)
    return DeepJSCCModels(codec, teacher, art, art.meta()["metrics"], stage.artifact if teacher is not None else None)


def _train(codec: nn.ModuleDict, p: DeepJSCCParams, inputs: dict[str, torch.Tensor], train: Split, val: Split,
           art: Artifact, parents: dict[str, str], device: str) -> None:
    """End-to-end training through ``p.train_channel`` at ``p.train_snr_db`` (or, SNR-adaptive, at an SNR drawn
    per example from ``p.train_snr_range``); ``inputs`` are what the encoder takes (images, or teacher embeddings)
    for the train and val splits."""
    labels = train.labels.to(device)

    def loss_of(output: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, int]:
        logits = codec["head"](output)
        return F.cross_entropy(logits, labels[index]), int((logits.argmax(dim=1) == labels[index]).sum())

    title = f"Deep JSCC ({p.encoder} encoder, {p.symbols} symbols, {p.train_channel} {p.training_label()})"
    channel, history = train_through_channel(codec, p, inputs["train"], loss_of, art,
                                             f"deep JSCC ({p.encoder}, {p.symbols} symbols)", device)
    metrics = {
        "encoder_parameters": count_parameters(codec["encoder"]),
        "decoder_parameters": count_parameters(codec["decoder"]) + count_parameters(codec["head"]),
        "val_accuracy_clean": _val_accuracy(codec, None, inputs["val"], val.labels, p.train_snr_db, p.train_seed),
        **{f"val_accuracy_{snr:g}dB": _val_accuracy(codec, channel, inputs["val"], val.labels, snr, p.train_seed)
           for snr in p.validation_snrs()},
        "history": history,
    }
    plot_curves(history, art.directory / "curves.png", title)
    art.save(codec, metrics, model_card(title, metrics))


def training_channel(p: JSCCTrainingParams, device: str) -> Channel:
    """The channel a deep JSCC model trains through (``p.train_channel`` with its default parameters); its
    :meth:`~simulator.core.channel.Channel.identity` is part of the model's cache key."""
    return CHANNELS.resolve(p.train_channel)(device=device)


def train_through_channel(codec: nn.ModuleDict, p: JSCCTrainingParams, x: torch.Tensor,
                          loss_of: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, int | None]],
                          art: Artifact, label: str, device: str) -> tuple[Channel, list[dict[str, float]]]:
    """The training loop of every deep JSCC model: per minibatch, draw the training SNRs (dB), encode ``x[index]``
    (``x``: the encoder's inputs ``[N, ...]``), pass the symbols through a ``p.train_channel`` channel, decode, and
    step on ``loss_of(decoder output [B, ...], index [B])`` -> ``(scalar loss, correct decisions or None)``: the
    one part that differs between the classifier and the reconstruction. Resumes from and checkpoints to ``art``
    after every epoch. Returns the training channel and the epoch history."""
    seed = p.train_seed
    optimizer = torch.optim.Adam(codec.parameters(), lr=p.lr)
    channel = training_channel(p, device)

    start, history = art.load_checkpoint(codec, optimizer, device)
    progress = EpochProgress(label, start, p.epochs)
    for epoch in progress:
        codec.train()
        cosine_lr(optimizer, p.lr, epoch, p.epochs)
        generator = torch.Generator().manual_seed(derive_seed(seed, "deepjscc-batches", epoch))
        total, correct, scored = 0.0, 0, False
        for step, index in enumerate(minibatches(len(x), p.batch_size, generator)):
            snr = p.training_snr(len(index), generator).to(device)  # dB, one per example
            with seeded(derive_seed(seed, "deepjscc-channel", epoch, step), device):
                received = channel(codec["encoder"](x[index], snr), snr)
            loss, batch_correct = loss_of(codec["decoder"](received.symbols, snr), index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
            if batch_correct is not None:  # a classifier: count its correct decisions too
                correct, scored = correct + batch_correct, True
        history.append({"epoch": epoch + 1, "loss": total / len(x),
                        **({"train_accuracy": correct / len(x)} if scored else {})})
        progress.show(history[-1])
        art.save_checkpoint(codec, optimizer, epoch + 1, history)
    codec.eval()
    return channel, history


@torch.no_grad()
def through_channel(codec: nn.ModuleDict, channel: Channel | None, x: torch.Tensor, snr_db: float,
                    seed: int) -> torch.Tensor:
    """Decoder output for inputs ``x`` sent through ``channel`` at ``snr_db`` (seeded), or noise-free (symbols
    straight to the decoder) when ``channel`` is ``None``."""
    snr = torch.full((len(x),), snr_db, device=x.device)
    symbols = codec["encoder"](x, snr)
    if channel is not None:
        with seeded(derive_seed(seed, "deepjscc-val", snr_db), x.device):
            symbols = channel(symbols, snr).symbols
    return codec["decoder"](symbols, snr)


@torch.no_grad()
def _val_accuracy(codec: nn.ModuleDict, channel: Channel | None, x: torch.Tensor, labels: torch.Tensor,
                  snr_db: float, seed: int) -> float:
    """Top-1 accuracy on ``x`` through ``channel`` at ``snr_db`` (noise-free when ``channel`` is ``None``)."""
    logits = codec["head"](through_channel(codec, channel, x, snr_db, seed))
    return float((logits.argmax(dim=1).cpu() == labels).float().mean())


class DeepJSCCLink(DeepJSCCDeclaration, ImageLink):
    """Deep JSCC baseline: CNN (or frozen teacher + MLP) encoder, MLP decoder, classifier; trained at one SNR.

    Building the link loads the trained model from the artifact cache (``deepjscc-<key>``, keyed by every
    setting but ``teacher``, by the data source and, for ``encoder: teacher``, by the teacher artifact) and trains
    it when missing. Not SNR-adaptive: the transmitter ignores the SNR and the receiver uses only the equalised
    symbols. Channel uses per image: ``symbols``. Metric: top-1 ``accuracy``. See the module docstring.
    """

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        self.models = prepare(self.params, self.data, self.data.key_config(), self.device)
        self._complexity: dict[str, int] | None = None
        self.snr_adaptive = self.params.snr_adaptive  # ADJSCC: the last encoder layer sees the SNR

    def trained_artifacts(self) -> tuple[Artifact, ...]:
        teacher = self.models.teacher_artifact
        return (self.models.artifact,) if teacher is None else (self.models.artifact, teacher)

    @property
    def channel_uses(self) -> int:
        return self.params.symbols

    def encode(self, batch: TensorDict) -> TensorDict:
        images, teacher = batch["images"], self.models.teacher
        return self.models.codec["encoder"].transmit_once(images if teacher is None else teacher.embed(images))

    def adapt_to_snr(self, encoded: TensorDict, snr_db: torch.Tensor) -> torch.Tensor:
        return self.models.codec["encoder"].transmit_at(encoded, snr_db)

    def receive(self, received: ChannelOutput, snr_db: torch.Tensor) -> TensorDict:
        codec = self.models.codec
        return {"prediction": codec["head"](codec["decoder"](received.symbols, snr_db)).argmax(dim=1)}

    def complexity(self) -> dict[str, int]:
        """``tx_parameters``, ``tx_macs``, ``rx_parameters``, ``rx_macs`` per image (the teacher counts as part of
        the transmitter of the teacher encoder; :func:`links.complexity.count_macs` counts its attention
        projections and products but not the softmax, normalisation or activations)."""
        if self._complexity is None:
            codec, teacher = self.models.codec, self.models.teacher
            shape = tuple(self.data.split("test").images.shape[1:])
            snr = torch.zeros(1, device=self.device)
            symbols = torch.zeros(1, self.channel_uses, dtype=torch.complex64, device=self.device)
            rx_macs = count_macs(codec["decoder"], call=lambda m: m(symbols, snr)) + count_macs(
                codec["head"], (codec["head"].in_features,))
            rx_parameters = count_parameters(codec["decoder"]) + count_parameters(codec["head"])
            if teacher is None:
                image = torch.zeros(1, *shape, device=self.device)
                tx_parameters = count_parameters(codec["encoder"])
                tx_macs = count_macs(codec["encoder"], call=lambda m: m(image, snr))
            else:
                image = torch.zeros(1, *shape, device=self.device)
                tx_parameters = count_parameters(teacher) + count_parameters(codec["encoder"])
                tx_macs = (count_macs(teacher, call=lambda m: m.embed(image))
                           + count_macs(codec["encoder"], (teacher.embed_dim,)))
            self._complexity = {"tx_parameters": tx_parameters, "tx_macs": tx_macs,
                                "rx_parameters": rx_parameters, "rx_macs": rx_macs}
        return self._complexity

    def describe(self) -> dict[str, Any]:
        p, metrics = self.params, self.models.metrics
        return {
            **super().describe(),
            "encoder": p.encoder,
            "train_channel": p.train_channel,
            "snr_adaptive": p.snr_adaptive,
            "train_snr_db": None if p.snr_adaptive else p.train_snr_db,
            "train_snr_range": list(p.train_snr_range) if p.snr_adaptive else None,
            **{k: v for k, v in metrics.items() if k.startswith("val_accuracy")},
            **self.complexity(),
        }
