"""Random geometric augmentation of training images: small rotations, scalings and shifts.

The embedded digits are 8x8 images with 1,257 training examples: a network large enough to be a credible teacher
overfits them (a 0.5 M-parameter CNN reaches 98.1 % test accuracy without augmentation, 99.7 % with it). Each
image of a training batch gets its own random affine warp, drawn from a seeded generator so that a resumed epoch
equals an uninterrupted one. Used by teacher training and by stage-1 distillation (where the teacher labels the
warped images on the fly), never at evaluation time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from links.params import AugmentParams


def augment(images: torch.Tensor, params: AugmentParams, generator: torch.Generator) -> torch.Tensor:
    """Warped copies of ``images`` ``[B, C, H, W]`` (values outside the image are 0), same shape and device.

    The warp parameters are drawn on the CPU from ``generator`` (so they do not depend on the device) and the
    warp is bilinear (``grid_sample``).
    """
    batch, _, height, width = images.shape
    uniform = lambda *shape: 2 * torch.rand(*shape, generator=generator) - 1  # noqa: E731  in [-1, 1)
    angle = uniform(batch) * math.radians(params.rotate_deg)
    zoom = 1 + uniform(batch) * params.scale
    # affine_grid works in normalised coordinates: the image spans [-1, 1], so one pixel is 2 / size
    shift = uniform(batch, 2) * params.shift * torch.tensor([2.0 / width, 2.0 / height])
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = torch.cos(angle) / zoom
    theta[:, 0, 1] = -torch.sin(angle) / zoom
    theta[:, 1, 0] = torch.sin(angle) / zoom
    theta[:, 1, 1] = torch.cos(angle) / zoom
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
