"""Uncoded analog pixels: the simplest image baseline, with no source or channel coding and nothing trained
end to end.

Transmitter: the image ``[C, H, W]`` is average-pooled to ``C x h x w = 2 * symbols`` values, the training
split's mean of those values is subtracted (the mean costs energy and carries no information), and the vector is
scaled to unit average energy per example. Its first half is sent on the in-phase and its second half on the
quadrature component of ``symbols`` complex channel uses.

Receiver: each equalised symbol is shrunk by ``1 / (1 + no_eff)``, the LMMSE estimate of a unit-energy symbol,
and a linear classifier fitted on the clean training split at construction (scikit-learn logistic regression,
or nearest class mean) labels the noisy vector. At high SNR the link's accuracy is the classifier's clean
accuracy; below, it degrades smoothly, without the cliff of a digital link.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from links.complexity import count_macs, count_parameters
from links.image_link import ImageLink
from simulator.channels.base import ChannelOutput
from simulator.config_model import Params
from simulator.errors import UserError
from simulator.link import TensorDict


class UncodedPixelsLink(ImageLink):
    """Uncoded analog pixels: pooled image sent as analog symbols, linear classifier on the noisy pixels.

    Channel uses per example: ``symbols``; ``2 * symbols`` must equal ``C * h * w`` for some pooled size
    ``h <= H``, ``w <= W`` of the data source's ``[C, H, W]`` images (for 8x8 digits: any ``symbols`` up to 32).
    Metric: ``accuracy``.
    """

    description = "Baseline: average-pooled pixels sent as analog symbols, linear classifier on the noisy pixels"

    class Params(Params):
        symbols: int = Field(default=16, ge=1, le=1_000_000, description="complex channel uses per image")
        classifier: Literal["logistic", "nearest-mean"] = Field(
            default="logistic", description="receiver: logistic regression or nearest class mean, on clean pixels")
        regularization: float = Field(
            default=1.0, gt=0.0, le=1e6, description="inverse L2 strength C of the logistic regression")

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        train = self.data.split("train")
        self.image_shape = tuple(train.images.shape[1:])
        self.pooled_shape = pooled_shape(self.image_shape, 2 * self.params.symbols)
        clean = pooled_pixels(train.images, self.pooled_shape)
        self.mean = clean.mean(dim=0)
        features = self._normalised(clean)
        self.classifier, self.classes = fit_classifier(features, train.labels, self.params)
        self.mean = self.mean.to(self.device)
        self.classifier.to(self.device)
        self.classes = self.classes.to(self.device)
        test = self.data.split("test")
        self.clean_accuracy = float((self._classify(self.encode({"images": test.images.to(self.device)})["features"])
                                     == test.labels.to(self.device)).float().mean())

    @property
    def channel_uses(self) -> int:
        return self.params.symbols

    def _normalised(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[B, 2n]`` pooled pixels -> centred and scaled to unit average energy per complex symbol."""
        centred = pixels - self.mean
        energy = centred.pow(2).sum(dim=1, keepdim=True) / self.params.symbols
        return centred / energy.clamp_min(1e-12).sqrt()

    def _classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classes[self.classifier(features).argmax(dim=1)]

    def encode(self, batch: TensorDict) -> TensorDict:
        """``features`` ``[B, 2n]`` float32 (pooled, centred, unit energy per example) and the ``symbols``
        ``[B, n]`` complex64 that carry them: the first half in phase, the second in quadrature."""
        features = self._normalised(pooled_pixels(batch["images"], self.pooled_shape))
        n = self.params.symbols
        return {"features": features, "symbols": torch.complex(features[:, :n], features[:, n:]).to(torch.complex64)}

    def receive(self, received: ChannelOutput, snr_db: torch.Tensor) -> TensorDict:
        estimate = received.symbols / (1.0 + received.no_eff)
        features = torch.cat([estimate.real, estimate.imag], dim=1).float()
        return {"prediction": self._classify(features)}

    def describe(self) -> dict[str, Any]:
        features = 2 * self.params.symbols
        return {
            **super().describe(),
            "tx_parameters": 0,
            "tx_macs": 0,
            "rx_parameters": count_parameters(self.classifier),
            "rx_macs": count_macs(self.classifier, (features,)),
            "pooled_shape": list(self.pooled_shape),
            "classifier": self.params.classifier,
            "clean_accuracy": round(self.clean_accuracy, 4),
        }


def pooled_shape(image_shape: tuple[int, ...], values: int) -> tuple[int, int, int]:
    """The most nearly square ``(C, h, w)`` with ``C * h * w == values``, ``h <= H``, ``w <= W``.

    Raises :class:`UserError` naming the allowed ``symbols`` (``values / 2``) when there is none.
    """
    c, height, width = image_shape
    shapes = [(h, values // (c * h)) for h in range(1, height + 1)
              if values % (c * h) == 0 and values // (c * h) <= width]
    if not shapes:
        allowed = sorted({c * h * w // 2 for h in range(1, height + 1) for w in range(1, width + 1)
                          if (c * h * w) % 2 == 0})
        shown = ", ".join(map(str, allowed[:12])) + (f", ..., {allowed[-1]}" if len(allowed) > 12 else "")
        raise UserError(f"symbols: 2 x {values // 2} pooled pixel values do not fit a {c}x{height}x{width} image "
                        f"as C x h x w; allowed: {shown}")
    h, w = min(shapes, key=lambda s: (abs(s[0] - s[1]), -s[0]))
    return c, h, w


def pooled_pixels(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """``[B, C, H, W]`` images -> ``[B, C * h * w]`` average-pooled values in raster order."""
    return F.adaptive_avg_pool2d(images.float(), shape[1:]).flatten(start_dim=1)


def fit_classifier(features: torch.Tensor, labels: torch.Tensor, params: Params) -> tuple[nn.Linear, torch.Tensor]:
    """A linear classifier on ``features`` ``[N, F]``: returns ``(layer with one logit per class, class labels)``.

    Nearest class mean is linear too: ``argmin |x - mu_k|^2 = argmax (mu_k . x - |mu_k|^2 / 2)``.
    """
    classes = torch.unique(labels)
    if params.classifier == "nearest-mean":
        means = torch.stack([features[labels == k].mean(dim=0) for k in classes])
        weight, bias = means, -0.5 * means.pow(2).sum(dim=1)
    else:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=params.regularization, max_iter=5000)
        model.fit(features.numpy(), labels.numpy())
        weight = torch.as_tensor(np.asarray(model.coef_), dtype=torch.float32)
        bias = torch.as_tensor(np.asarray(model.intercept_), dtype=torch.float32)
        if weight.shape[0] == 1:  # two classes: scikit-learn keeps one logit, for the second class
            weight, bias = torch.cat([torch.zeros_like(weight), weight]), torch.cat([torch.zeros_like(bias), bias])
    layer = nn.Linear(features.shape[1], len(classes))
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    layer.requires_grad_(False)
    return layer, classes
