"""The teacher (the large-scale model): an embedded CNN or ViT trained from scratch, or the CLIP ViT-B/32 encoder.

Any teacher exposes ``forward(images) -> (embedding [B, D], logits [B, classes])`` on *raw* images in ``[0, 1]``,
``embed_dim`` (D), ``head`` (the linear classifier on the embedding) and ``normalize``, the input normalisation
of the teacher that the student copies, so the student sees inputs normalised with the statistics of the
teacher that consumes them. ``trained_part()`` is the module whose weights an artifact stores, and
``fit_normalization(images)`` sets the statistics before training (a no-op for CLIP, whose are fixed).

The rest of the pipeline does not care which teacher it is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from links.params import TeacherParams
from simulator.core.errors import UserError

#: CLIP's published input statistics (RGB); grayscale images are replicated to RGB first
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)




class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` with statistics stored as buffers (they travel with the weights)."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    def fit(self, images: torch.Tensor) -> None:
        """Statistics of ``images`` ``[N, C, H, W]``."""
        self.mean.copy_(images.mean(dim=(0, 2, 3)))
        self.std.copy_(images.std(dim=(0, 2, 3)).clamp_min(1e-6))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean[:, None, None]) / self.std[:, None, None]


class Teacher(nn.Module):
    """What every teacher shares: ``forward(images) -> (embed(images), head(embedding))``. Subclasses set
    ``normalize``, ``head`` and ``embed_dim`` and define ``embed``, ``fit_normalization`` and ``trained_part``."""

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embed(images)
        return embedding, self.head(embedding)


class ScratchTeacher(Teacher):
    """A teacher trained from scratch: its input statistics are fitted on the training split and every weight is
    trained (and stored)."""

    def fit_normalization(self, images: torch.Tensor) -> None:
        self.normalize.fit(images)

    def trained_part(self) -> nn.Module:
        return self


def _group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups: per-example statistics, so an image's output never depends on its batch."""
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResidualBlock(nn.Module):
    """``x -> relu(x' + norm(conv(relu(norm(conv(x))))))``, 3x3 convolutions; ``x'`` is ``x`` or a 1x1 projection
    when the width or the stride changes. ``[B, C_in, H, W] -> [B, C_out, ceil(H/stride), ceil(W/stride)]``."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.norm1 = _group_norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm2 = _group_norm(channels)
        self.shortcut = (nn.Identity() if in_channels == channels and stride == 1
                         else nn.Conv2d(in_channels, channels, 1, stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class CNNTeacher(ScratchTeacher):
    """Wide residual CNN: stem conv, a block at ``width`` channels, a stride-2 block and a block at ``2 width``,
    average-pooled to at most 4x4, flattened, then linear -> LayerNorm = the embedding.

    Input ``[B, C, H, W]`` in ``[0, 1]``; output ``(embedding [B, dim], logits [B, classes])``.
    """

    def __init__(self, params: TeacherParams, in_channels: int, image_size: int, num_classes: int):
        super().__init__()
        w = params.width
        self.normalize = Normalize(in_channels)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, 1, 1, bias=False), _group_norm(w), nn.ReLU(),
            ResidualBlock(w, w, 1), ResidualBlock(w, 2 * w, 2), ResidualBlock(2 * w, 2 * w, 1),
        )
        side = min(4, math.ceil(image_size / 2))
        self.pool = nn.AdaptiveAvgPool2d(side)
        self.project = nn.Sequential(nn.Flatten(), nn.Dropout(params.dropout), nn.Linear(2 * w * side * side,
                                                                                         params.dim))
        self.norm = nn.LayerNorm(params.dim)
        self.head = nn.Linear(params.dim, num_classes)
        self.embed_dim = params.dim

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Embedding ``[B, dim]`` of raw images."""
        return self.norm(self.project(self.pool(self.features(self.normalize(images)))))


class ViTTeacher(ScratchTeacher):
    """Vision transformer: patch embedding, class token, pre-norm encoder, embedding = final class token.

    Input ``[B, C, H, W]`` in ``[0, 1]``; output ``(embedding [B, dim], logits [B, classes])``.
    """

    def __init__(self, params: TeacherParams, in_channels: int, image_size: int, num_classes: int):
        super().__init__()
        if image_size % params.patch_size:
            raise ValueError(f"image size {image_size} is not a multiple of patch_size {params.patch_size}")
        if params.dim % params.heads:
            raise ValueError(f"dim {params.dim} is not a multiple of heads {params.heads}")
        self.normalize = Normalize(in_channels)
        self.patch = nn.Conv2d(in_channels, params.dim, params.patch_size, stride=params.patch_size)
        tokens = (image_size // params.patch_size) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, params.dim))
        self.position = nn.Parameter(torch.randn(1, tokens + 1, params.dim) * 0.02)
        layer = nn.TransformerEncoderLayer(params.dim, params.heads, int(params.dim * params.mlp_ratio),
                                           params.dropout, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, params.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(params.dim)
        self.head = nn.Linear(params.dim, num_classes)
        self.embed_dim = params.dim

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Embedding ``[B, dim]`` of raw images."""
        tokens = self.patch(self.normalize(images)).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.position
        return self.norm(self.encoder(tokens)[:, 0])


class CLIPTeacher(Teacher):
    """CLIP's image encoder with projection (512-d for ViT-B/32), frozen, plus a trainable linear head.

    Input ``[B, C, H, W]`` in ``[0, 1]`` (C = 1 or 3); output ``(embedding [B, D], logits [B, classes])``.
    Only ``normalize`` and ``head`` are stored in artifacts; the encoder is loaded from ``clip_model``.
    """

    def __init__(self, params: TeacherParams, in_channels: int, num_classes: int):
        super().__init__()
        try:
            from transformers import CLIPVisionModelWithProjection
        except ImportError:
            raise UserError("teacher type clip needs Hugging Face transformers: pip install 'semsim[clip]'") \
                from None
        try:
            self.encoder = CLIPVisionModelWithProjection.from_pretrained(params.clip_model,
                                                                         local_files_only=params.offline)
        except (OSError, ValueError) as err:
            raise UserError(f"cannot load CLIP model {params.clip_model!r}: {' '.join(str(err).split())[:300]}") \
                from None
        self.encoder.requires_grad_(False).eval()
        self.image_size = int(self.encoder.config.image_size)
        self.embed_dim = int(self.encoder.config.projection_dim)
        self.in_channels = in_channels
        self.normalize = Normalize(in_channels)
        mean, std = torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD)
        if in_channels == 1:
            mean, std = mean.mean(dim=0, keepdim=True), std.mean(dim=0, keepdim=True)
        self.normalize.mean.copy_(mean)
        self.normalize.std.copy_(std)
        self.register_buffer("rgb_mean", torch.tensor(CLIP_MEAN))
        self.register_buffer("rgb_std", torch.tensor(CLIP_STD))
        self.head = nn.Linear(self.embed_dim, num_classes)

    def fit_normalization(self, images: torch.Tensor) -> None:
        """CLIP's statistics are fixed."""

    def trained_part(self) -> nn.Module:
        return nn.ModuleDict({"normalize": self.normalize, "head": self.head})

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # frozen: no dropout, whatever the mode
        return self

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Embedding ``[B, D]``: replicate grey to RGB, resize to the model's size, CLIP normalisation."""
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bicubic",
                                   align_corners=False).clamp(0.0, 1.0)
        pixels = (images - self.rgb_mean[:, None, None]) / self.rgb_std[:, None, None]
        return self.encoder(pixel_values=pixels).image_embeds


def build_teacher(params: TeacherParams, in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    """The teacher named by ``params.type``."""
    if params.type == "clip":
        return CLIPTeacher(params, in_channels, num_classes)
    if params.type == "vit":
        return ViTTeacher(params, in_channels, image_size, num_classes)
    return CNNTeacher(params, in_channels, image_size, num_classes)
