"""Deterministic random streams derived from the scenario seed.

Every random draw in a sweep comes from a generator seeded by :func:`derive_seed` from the scenario seed and
the *identity* of the work (link, channel, SNR point, Monte-Carlo batch index), never from a counter of work done
before. A point's result therefore does not depend on the executor, on how points are grouped into batches, or on
the order of points, and a resumed sweep reproduces an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed that depends only on ``seed`` and the string form of ``keys``.

    >>> derive_seed(1, "qpsk", "awgn", 4.0, 0) == derive_seed(1, "qpsk", "awgn", 4.0, 0)
    True
    """
    text = "\x1f".join([str(int(seed)), *(_key_text(k) for k in keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def _key_text(key: object) -> str:
    if isinstance(key, float):
        return f"{key:.9g}"
    return str(key)


@contextlib.contextmanager
def seeded(seed: int, device: str | torch.device = "cpu") -> Iterator[torch.Generator]:
    """Seed Sionna's generator for ``device`` (which its blocks draw from) and yield it for direct use.

    Sionna blocks draw from ``sionna.phy.config.torch_rng(device)``; reseeding it here makes every block call
    inside the ``with`` reproducible. numpy draws should use ``np.random.default_rng(derive_seed(...))``, never
    the global state.
    """
    generator = engine_generator(device)
    generator.manual_seed(seed)
    yield generator


def engine_generator(device: str | torch.device = "cpu") -> torch.Generator:
    """The generator the engine reseeds (with :func:`seeded`) before every source draw and every channel call.

    Inside a channel's ``propagate`` it is seeded from the scenario seed, the channel, the SNR point and the
    Monte-Carlo batch, so a channel that draws all its random numbers from it (``torch.randn(...,
    generator=engine_generator(x.device), device=x.device)``) gives results that do not depend on the executor,
    the other points or their order. Sionna's blocks draw from the same generator.
    """
    from sionna.phy import config as sionna_config

    return sionna_config.torch_rng(_sionna_device(device))


def _sionna_device(device: str | torch.device) -> str:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"
    return device.type
