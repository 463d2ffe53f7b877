"""Base class of links that send images of the scenario's data source and score top-1 classification.

It draws Monte-Carlo batches from the data source's test split (the same images for every link of a scenario,
batch by batch) and scores ``accuracy``. Subclasses implement the transmitter and receiver; ``receive`` returns
``{"prediction": labels [B] int64}`` (plus whatever else they score).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from simulator.core.link import Link, TensorDict
from simulator.core.metrics import Tally
from simulator.io.artifacts import Artifact, artifacts_fingerprint


class ImageLink(Link):
    """A link whose payload is an image and whose metric is top-1 ``accuracy``."""

    metrics: ClassVar[tuple[str, ...]] = ("accuracy",)

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        self.data = self.context.require_data(getattr(type(self), "type_name", type(self).__name__))

    def sample(self, batch_index: int, batch_size: int, generator: torch.Generator) -> TensorDict:
        """``images`` ``[B, C, H, W]`` float32 in [0, 1] and ``labels`` ``[B]`` int64 of test batch ``batch_index``."""
        batch = self.data.test_batch(batch_index, batch_size)
        return {k: v.to(self.device) for k, v in batch.items()}

    def trained_artifacts(self) -> tuple[Artifact, ...]:
        """The cached artifacts whose weights this link's results depend on (none by default)."""
        return ()

    def fingerprint(self) -> str | None:
        """The fingerprint of :meth:`trained_artifacts` (their weights), ``None`` for a link without any."""
        artifacts = self.trained_artifacts()
        return artifacts_fingerprint(*artifacts) if artifacts else None

    def score(self, batch: TensorDict, estimate: TensorDict) -> dict[str, Tally]:
        return {"accuracy": Tally((estimate["prediction"] == batch["labels"]).long(), 1)}
