"""The ``kd-analog`` link: non-robust knowledge distillation, the student embedding sent as analog symbols."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from links.baselines.features import PCA, prepare_features
from links.complexity import count_macs, count_parameters
from links.declarations import KDAnalogDeclaration
from links.image_link import ImageLink
from simulator.core.channel import ChannelOutput
from simulator.core.link import TensorDict
from simulator.core.snr import normalize_energy


class KDAnalogLink(KDAnalogDeclaration, ImageLink):
    """Non-robust KD: the stage-1 student's embedding sent as analog symbols, classified by the teacher's head.

    The student and classifier are RKD-SC's stage 1 (distilled without a channel); nothing is trained for the
    channel, which is the failure case robust distillation addresses. The ``D``-dimensional embedding becomes
    ``2 * symbols`` reals: if ``2 * symbols < D``, its coordinates on the top ``2 * symbols`` principal components
    of the training-split embeddings (fitted without a channel); otherwise the embedding minus the training mean,
    zero-padded. Consecutive pairs of reals form complex symbols, scaled to unit average energy per example.
    The receiver does not know an example's norm: it scales the equalised symbols by the mean norm over the
    training split, maps back (inverse PCA + mean) and classifies with the head. It uses the equalised symbols
    as they are (no use of ``no_eff``). Metric: ``accuracy``. Channel uses per example: ``symbols``.
    """

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        self.features = f = prepare_features(self.params, self.data, self.data.key_config(), self.device)
        reals, dim = 2 * self.params.symbols, f.embed_dim
        train = f.embeddings["train"]
        #: None when 2 * symbols >= D: the centred embedding is sent, zero-padded
        self.pca = PCA.fit(train, reals) if reals < dim else None
        self.mean = train.mean(dim=0)
        #: mean Euclidean norm of the sent real vector over the training split (the receiver's scale)
        self.mean_norm = float(self.to_reals(train).norm(dim=1).mean())

    def trained_artifacts(self):
        return self.features.artifacts  # teacher, search, student

    @property
    def channel_uses(self) -> int:
        return self.params.symbols

    def to_reals(self, embedding: torch.Tensor) -> torch.Tensor:
        """Embedding ``[B, D]`` -> the ``2 * symbols`` reals sent ``[B, 2 * symbols]``, before normalisation."""
        if self.pca is not None:
            return self.pca.project(embedding)
        return F.pad(embedding - self.mean, (0, 2 * self.params.symbols - embedding.shape[1]))

    def from_reals(self, reals: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_reals` (on the kept subspace): ``[B, 2 * symbols]`` -> embedding ``[B, D]``."""
        if self.pca is not None:
            return self.pca.restore(reals)
        return reals[:, : self.features.embed_dim] + self.mean

    def encode(self, batch: TensorDict) -> TensorDict:
        reals = self.to_reals(self.features.student(batch["images"]))
        return {"symbols": normalize_energy(torch.view_as_complex(reals.reshape(len(reals), -1, 2).contiguous()))}


    def receive(self, received: ChannelOutput, snr_db: torch.Tensor) -> TensorDict:
        reals = torch.view_as_real(received.symbols.contiguous()).reshape(len(received.symbols), -1)
        embedding = self.from_reals(reals * (self.mean_norm / math.sqrt(self.params.symbols)))
        return {"prediction": self.features.head(embedding).argmax(dim=1)}

    def describe(self) -> dict[str, Any]:
        f = self.features
        projection_parameters = self.pca.parameters if self.pca else f.embed_dim
        projection_macs = self.pca.macs if self.pca else 0
        return {
            **super().describe(),
            **f.describe(),
            "tx_parameters": count_parameters(f.student) + projection_parameters,
            "tx_macs": count_macs(f.student, f.image_shape) + projection_macs,
            "rx_parameters": count_parameters(f.head) + projection_parameters,
            "rx_macs": count_macs(f.head, (f.embed_dim,)) + projection_macs,
            "pca_components": self.pca.components if self.pca else None,
            "padding_reals": 0 if self.pca else 2 * self.params.symbols - f.embed_dim,
            "receiver_scale": self.mean_norm,
        }
