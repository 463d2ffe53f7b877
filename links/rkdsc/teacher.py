"""The teacher (the large-scale model): a ViT-style image classifier trained from scratch on the task.

Any teacher exposes ``forward(images) -> (embedding [B, D], logits [B, classes])`` on *raw* images in ``[0, 1]``
and normalises them itself with the statistics it was fitted with (``normalize``), so the student and the
receiver see inputs normalised exactly as the teacher saw them.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from simulator.config_model import Params


class TeacherParams(Params):
    """The embedded ViT teacher, trained with AdamW, linear warm-up and a cosine schedule.

    Defaults give 0.53 M parameters on 8x8 digits (16 patches of 2x2) and about 95 % test accuracy after
    40 epochs (about 40 s on 2 CPU cores).
    """

    patch_size: int = Field(default=2, ge=1, le=16, description="square patch side in pixels")
    dim: int = Field(default=128, ge=8, le=1024, description="token width = embedding size D")
    depth: int = Field(default=4, ge=1, le=24)
    heads: int = Field(default=4, ge=1, le=16)
    mlp_ratio: float = Field(default=2.0, gt=0.0, le=8.0)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    epochs: int = Field(default=40, ge=1, le=10_000)
    warmup_epochs: int = Field(default=3, ge=0)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=0.05, ge=0.0)


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


class ViTTeacher(nn.Module):
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

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embed(images)
        return embedding, self.head(embedding)
