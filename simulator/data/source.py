"""Data sources: the payload a semantic link transmits (images and labels), named in a scenario's ``data``.

A data source holds fixed train / validation / test splits. Links draw Monte-Carlo batches from the test split
with :meth:`DataSource.test_batch`, which walks a seeded permutation so that batch ``b`` holds the same images
whatever the executor or the order of points.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field

from simulator.core.params import Params
from simulator.core.registry import Registry

if TYPE_CHECKING:
    import torch

# torch is imported where tensors are made, so that resolving a data source type (semsim validate) does not load it


@dataclass
class Split:
    """One split: ``images`` ``[N, C, H, W]`` float32 in ``[0, 1]`` and ``labels`` ``[N]`` int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


class DataSource(ABC):
    """A labelled image data set with fixed splits."""

    type_name: ClassVar[str]
    description: ClassVar[str] = ""
    num_classes: int

    class Params(Params):
        pass

    def __init__(self, params: Params | None = None, seed: int = 0):
        self.params = params if params is not None else self.Params()
        self.seed = seed

    @abstractmethod
    def split(self, name: Literal["train", "val", "test"]) -> Split:
        """The named split."""

    def key_config(self) -> dict:
        """The source's type and parameters: part of the key of every artifact trained on it."""
        return {"type": getattr(self, "type_name", type(self).__name__), **self.params.model_dump(mode="json")}

    def test_batch(self, batch_index: int, batch_size: int) -> dict[str, torch.Tensor]:
        """Images and labels of Monte-Carlo batch ``batch_index``: consecutive slices of a fixed permutation of
        the test split, wrapping around (later passes see the images again, under new channel noise)."""
        import torch

        test = self.split("test")
        order = np.random.default_rng(self.seed).permutation(len(test))
        index = order[(batch_index * batch_size + np.arange(batch_size)) % len(test)]
        index = torch.as_tensor(index)
        return {"images": test.images[index], "labels": test.labels[index]}


DATA_SOURCES = Registry("data source", entry_point_group="semsim.data", base=DataSource)


@DATA_SOURCES.register("digits")
class DigitsSource(DataSource):
    """scikit-learn's handwritten digits: 1,797 real 8x8 grayscale images, 10 classes, shipped (no download).

    Splits are stratified and fixed by ``split_seed``: ``test_fraction`` for test, ``val_fraction`` for
    validation, the rest for training. Pixels are scaled from 0..16 to ``[0, 1]``; images ``[N, 1, 8, 8]``.
    """

    description = "scikit-learn handwritten digits (8x8, 10 classes), embedded, no download"
    num_classes = 10

    class Params(Params):
        test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
        val_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)
        split_seed: int = Field(default=0, ge=0)

    def __init__(self, params=None, seed: int = 0):
        super().__init__(params, seed)
        self._splits: dict[str, Split] | None = None

    def split(self, name):
        if self._splits is None:
            self._splits = self._load()
        return self._splits[name]

    def _load(self) -> dict[str, Split]:
        import torch
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        images = digits.images.astype(np.float32)[:, None] / 16.0
        labels = digits.target.astype(np.int64)
        p = self.params
        rest_x, test_x, rest_y, test_y = train_test_split(
            images, labels, test_size=p.test_fraction, stratify=labels, random_state=p.split_seed
        )
        val_share = p.val_fraction / (1.0 - p.test_fraction)
        train_x, val_x, train_y, val_y = train_test_split(
            rest_x, rest_y, test_size=val_share, stratify=rest_y, random_state=p.split_seed
        )
        return {
            name: Split(torch.from_numpy(x), torch.from_numpy(y))
            for name, x, y in (("train", train_x, train_y), ("val", val_x, val_y), ("test", test_x, test_y))
        }
