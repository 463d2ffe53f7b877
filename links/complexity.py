"""Model size and cost per example: parameter counts and multiply-accumulates (MACs) of conv and linear layers.

Used for the link comparison tables (``Link.describe()``: ``tx_parameters``, ``tx_macs``, ...). FLOPs are about
2 x MACs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of ``module`` (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


def count_macs(module: nn.Module, input_shape: tuple[int, ...] | None = None,
               call: Callable[[nn.Module], Any] | None = None) -> int:
    """Multiply-accumulates of the ``Conv2d``, ``Linear`` and ``MultiheadAttention`` layers for one example.

    Either ``input_shape``, one example's shape without the batch axis (e.g. ``(C, H, W)``; the module is run on
    zeros), or ``call``, a function running the module on a batch of one example (for modules with several
    inputs). Attention counts its four projections and its two ``L x L`` products. Biases, normalisation,
    activations and pooling are not counted. Runs in eval mode without gradients (the modes are restored).
    """
    macs = 0

    def conv_hook(layer: nn.Conv2d, inputs: Any, output: torch.Tensor) -> None:
        nonlocal macs
        macs += output[0].numel() * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)

    def linear_hook(layer: nn.Linear, inputs: Any, output: torch.Tensor) -> None:
        nonlocal macs
        macs += output[0].numel() * layer.in_features

    def attention_hook(layer: nn.MultiheadAttention, inputs: Any, output: Any) -> None:
        nonlocal macs
        query = inputs[0]
        length = query.shape[1] if layer.batch_first and query.dim() == 3 else query.shape[0]
        macs += 4 * length * layer.embed_dim**2 + 2 * length**2 * layer.embed_dim

    hooks = [m.register_forward_hook(conv_hook) for m in module.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear_hook) for m in module.modules() if isinstance(m, nn.Linear)]
    hooks += [m.register_forward_hook(attention_hook) for m in module.modules()
              if isinstance(m, nn.MultiheadAttention)]
    modes = {m: m.training for m in module.modules()}
    reference = next(module.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None else torch.float32
    try:
        module.eval()
        with torch.no_grad():
            if call is not None:
                call(module)
            else:
                module(torch.zeros(1, *input_shape, device=device, dtype=dtype))
    finally:
        for hook in hooks:
            hook.remove()
        for m, mode in modes.items():
            m.training = mode
    return macs
