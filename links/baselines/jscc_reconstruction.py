"""The ``deepjscc-recon`` baseline: deep JSCC for image reconstruction, scored by PSNR, SSIM and the accuracy of
a clean-image classifier on the reconstructions.

Deep JSCC in the style of Bourtsoulatze, Kurka and Gunduz (2019): the same CNN encoder as the ``deepjscc``
classification link maps each image straight to ``symbols`` complex channel symbols (power-normalised per
example); an MLP decoder maps the equalised symbols back to an image (``2 symbols -> 4 width -> 4 width -> C*H*W``,
sigmoid output in [0, 1]); both are trained end to end with the mean squared error of the pixels through one
channel at one training SNR, or, with ``snr_adaptive: true``, with the SNR as an input of the encoder's last layer
and of the decoder and an SNR drawn per example from ``train_snr_range`` (ADJSCC-style).

This is the semantic-versus-pixel question in numbers: a link that reconstructs the image, then classifies it with
the teacher trained on clean images (the RKD-SC teacher, the same cached artifact), against links that send only
what the classifier needs.

Metrics: ``psnr`` (dB, per-image PSNR against a peak of 1), ``ssim`` (per image, torchmetrics) and ``accuracy``
(the teacher's top-1 on the reconstruction).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from links.baselines.deepjscc import (
    RECIPE,
    ConvEncoder,
    Decoder,
    mlp,
    through_channel,
    train_through_channel,
    training_channel,
)
from links.baselines.params import ReconstructionParams
from links.complexity import count_macs, count_parameters
from links.declarations import DeepJSCCReconstructionDeclaration
from links.image_link import ImageLink
from links.teacher_stage import prepare_teacher
from links.training import initialised, model_card, plot_curves
from simulator.core.channel import ChannelOutput
from simulator.core.link import TensorDict
from simulator.core.metrics import Mean, Tally, psnr_db, ssim_per_example
from simulator.io.artifacts import artifact


def build_codec(p: ReconstructionParams, channels: int, size: int) -> nn.ModuleDict:
    """``encoder``: images -> symbols; ``decoder``: symbols -> flattened images in [0, 1]."""
    hidden, extra = 4 * p.width, int(p.snr_adaptive)
    return nn.ModuleDict({
        "encoder": ConvEncoder(channels, size, p.width, p.symbols, p.snr_adaptive),
        "decoder": Decoder(nn.Sequential(mlp(2 * p.symbols + extra, hidden, hidden), nn.PReLU(),
                                         nn.Linear(hidden, channels * size * size), nn.Sigmoid()), p.snr_adaptive),
    })


class DeepJSCCReconstructionLink(DeepJSCCReconstructionDeclaration, ImageLink):
    """Deep JSCC that reconstructs the image; PSNR, SSIM and the clean-image classifier's accuracy on it.

    Building the link loads the trained model (``jsccrecon-<key>``, keyed by every setting but ``teacher``
    and by the data source) and the teacher from the artifact cache, training what is missing. Channel uses per
    image: ``symbols``. See the module docstring.
    """

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        p, data, device = self.params, self.data, self.device
        self.snr_adaptive = p.snr_adaptive
        config = self.data.key_config()
        self.teacher = prepare_teacher(p.teacher, data, config, p.train_seed, device)
        train, val = data.split("train"), data.split("val")
        self.image_shape = tuple(train.images.shape[1:])
        channels, size = self.image_shape[0], self.image_shape[-1]
        with initialised(p.train_seed, "deepjscc-recon"):
            self.codec = build_codec(p, channels, size).to(device)
        art = artifact("jsccrecon", {"deepjscc-recon": p.model_dump(mode="json", exclude={"teacher"}),
                                     "data": config, "channel": training_channel(p, device).identity()},
                       recipe=RECIPE)
        if not art.exists():
            self.codec["encoder"].normalize.fit(train.images)
            self._train(art, train.images.to(device), val.images.to(device))
        art.load_into(self.codec, device).eval()
        self.codec.requires_grad_(False)
        self.report = art.meta()["metrics"]
        self.artifacts = (art, self.teacher.artifact)

    def _train(self, art, train_images: torch.Tensor, val_images: torch.Tensor) -> None:
        p = self.params
        target = train_images.flatten(1)

        def loss_of(output: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, None]:
            return F.mse_loss(output, target[index]), None

        title = f"Deep JSCC reconstruction ({p.symbols} symbols, {p.train_channel} {p.training_label()})"
        channel, history = train_through_channel(self.codec, p, train_images, loss_of, art,
                                                 f"deep JSCC reconstruction ({p.symbols} symbols)", self.device)
        metrics = {
            "encoder_parameters": count_parameters(self.codec["encoder"]),
            "decoder_parameters": count_parameters(self.codec["decoder"]),
            **{f"val_psnr_{snr:g}dB": float(psnr_db(through_channel(self.codec, channel, val_images, snr,
                                                                    p.train_seed), val_images.flatten(1)).mean())
               for snr in p.validation_snrs()},
            "history": history,
        }
        plot_curves(history, art.directory / "curves.png", title)
        art.save(self.codec, metrics, model_card(title, metrics))

    def trained_artifacts(self):
        return self.artifacts  # the codec and the classifier

    @property
    def channel_uses(self) -> int:
        return self.params.symbols

    def encode(self, batch: TensorDict) -> TensorDict:
        return self.codec["encoder"].transmit_once(batch["images"])

    def adapt_to_snr(self, encoded: TensorDict, snr_db: torch.Tensor) -> torch.Tensor:
        return self.codec["encoder"].transmit_at(encoded, snr_db)

    def receive(self, received: ChannelOutput, snr_db: torch.Tensor) -> TensorDict:
        images = self.codec["decoder"](received.symbols, snr_db).reshape(len(snr_db), *self.image_shape)
        return {"images": images, "prediction": self.teacher.teacher(images)[1].argmax(dim=1)}

    def score(self, batch: TensorDict, estimate: TensorDict) -> dict[str, Tally | Mean]:
        images, reconstruction = batch["images"], estimate["images"]
        return {"psnr": Mean(psnr_db(reconstruction, images)), "ssim": Mean(ssim_per_example(reconstruction, images)),
                **super().score(batch, estimate)}

    def describe(self) -> dict[str, Any]:
        p, codec, device = self.params, self.codec, self.device
        snr = torch.zeros(1, device=device)
        image = torch.zeros(1, *self.image_shape, device=device)
        symbols = torch.zeros(1, p.symbols, dtype=torch.complex64, device=device)
        classifier = self.teacher.teacher
        return {
            **super().describe(),
            "train_channel": p.train_channel,
            "snr_adaptive": p.snr_adaptive,
            "train_snr_db": None if p.snr_adaptive else p.train_snr_db,
            "train_snr_range": list(p.train_snr_range) if p.snr_adaptive else None,
            **{k: v for k, v in self.report.items() if k.startswith("val_psnr")},
            "classifier_clean_test_accuracy": self.teacher.report["teacher"]["test_accuracy"],
            "tx_parameters": count_parameters(codec["encoder"]),
            "tx_macs": count_macs(codec["encoder"], call=lambda m: m(image, snr)),
            # the receiver reconstructs, then the clean-image classifier classifies
            "rx_parameters": count_parameters(codec["decoder"]) + count_parameters(classifier),
            "rx_macs": count_macs(codec["decoder"], call=lambda m: m(symbols, snr)) + count_macs(
                classifier, self.image_shape),
        }
