"""The teacher every RKD-SC stage and three baselines share: trained once per (settings, data, seed), cached.

:func:`prepare_teacher` loads the teacher's artifact from the cache or trains it (cross-entropy on the training
labels, AdamW with warm-up then cosine decay, random affine warps of the images; a CLIP teacher trains only its
head, on its frozen encoder's embeddings), then returns it frozen with its outputs on every split. The networks
themselves are :mod:`links.teacher`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from links.augment import augment
from links.complexity import count_macs, count_parameters
from links.params import TeacherParams
from links.teacher import build_teacher
from links.training import EpochProgress, accuracy, cosine_lr, initialised, minibatches, model_card, plot_curves
from simulator.core.seeding import derive_seed
from simulator.data.source import DataSource
from simulator.io.artifacts import Artifact, artifact

#: version of the teacher's training code, part of its artifact key (bump it when a change here changes what it
#: trains)
TEACHER_RECIPE = 1


@dataclass
class TeacherStage:
    """The trained teacher (frozen, eval mode) and its outputs on every split.

    ``targets[split]`` holds ``embedding`` ``[N, D]`` and ``logits`` ``[N, classes]`` on the device, computed
    when first read (a link whose stages are all cached reads at most the test split's).
    """

    teacher: nn.Module
    artifact: Artifact
    targets: Mapping[str, dict[str, torch.Tensor]]
    report: dict[str, Any]


class SplitOutputs(Mapping):
    """``split name -> compute(split name)``, each computed on first access and kept."""

    def __init__(self, splits: tuple[str, ...], compute: Callable[[str], dict[str, torch.Tensor]]):
        self._splits, self._compute, self._done = splits, compute, {}

    def __getitem__(self, split: str) -> dict[str, torch.Tensor]:
        if split not in self._splits:
            raise KeyError(split)
        if split not in self._done:
            self._done[split] = self._compute(split)
        return self._done[split]

    def __iter__(self) -> Iterator[str]:
        return iter(self._splits)

    def __len__(self) -> int:
        return len(self._splits)


def prepare_teacher(params: TeacherParams, data: DataSource, data_config: dict, seed: int,
                    device: str = "cpu") -> TeacherStage:
    """Load the teacher from the cache, training it if missing. Baseline links share it through this call."""
    train, val, test = data.split("train"), data.split("val"), data.split("test")
    channels, size = train.images.shape[1], train.images.shape[-1]
    with initialised(seed, "teacher"):
        teacher = build_teacher(params, channels, size, data.num_classes).to(device)
    teacher_art = artifact("teacher", {"teacher": params.model_dump(mode="json", exclude={"offline"}),
                                       "data": data_config,
                                       "seed": seed}, recipe=TEACHER_RECIPE)
    if not teacher_art.exists():
        _train(teacher, params, train, val, test, teacher_art, seed, device)
    teacher_art.load_into(teacher.trained_part(), device)
    teacher.eval()
    teacher.requires_grad_(False)
    splits = {"train": train, "val": val, "test": test}

    @torch.no_grad()
    def outputs(name: str) -> dict[str, torch.Tensor]:
        return teacher_outputs(teacher, splits[name].images.to(device))

    return TeacherStage(teacher, teacher_art, SplitOutputs(tuple(splits), outputs),
                        {"teacher": teacher_art.meta()["metrics"]})


def teacher_outputs(teacher: nn.Module, images: torch.Tensor, batch_size: int = 512) -> dict[str, torch.Tensor]:
    """The teacher's ``embedding`` ``[N, D]`` and ``logits`` ``[N, classes]`` on ``images`` ``[N, C, H, W]``, in
    calls of ``batch_size`` images."""
    pieces = [teacher(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return {"embedding": torch.cat([p[0] for p in pieces]), "logits": torch.cat([p[1] for p in pieces])}


@torch.no_grad()
def embed_in_batches(module: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """``module(images)`` ``[N, ...]``, computed in calls of ``batch_size`` images."""
    return torch.cat([module(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


def _train(teacher, p: TeacherParams, train, val, test, art: Artifact, seed: int, device: str) -> None:
    """Train ``teacher.trained_part()`` by cross-entropy on the training labels (AdamW, warm-up then cosine decay)
    on images ``[N, C, H, W]``, randomly warped per epoch (``p.augmentation``); a CLIP teacher's head is trained on
    its frozen encoder's embeddings ``[N, D]``, computed once."""
    teacher.fit_normalization(train.images)
    teacher.to(device)
    trained = teacher.trained_part()
    optimizer = torch.optim.AdamW([q for q in trained.parameters() if q.requires_grad], lr=p.lr,
                                  weight_decay=p.weight_decay)
    images, labels = train.images.to(device), train.labels.to(device)
    # a frozen encoder (CLIP) is run once: only its head is trained, on the cached embeddings
    frozen = embed_in_batches(teacher.embed, images) if p.type == "clip" else None

    start, history = art.load_checkpoint(trained, optimizer, device)
    progress = EpochProgress("teacher", start, p.epochs)
    for epoch in progress:
        trained.train()
        torch.manual_seed(derive_seed(seed, "teacher", epoch))  # dropout
        cosine_lr(optimizer, p.lr, epoch, p.epochs, p.warmup_epochs)
        generator = torch.Generator().manual_seed(derive_seed(seed, "teacher-batches", epoch))
        warps = torch.Generator().manual_seed(derive_seed(seed, "teacher-augment", epoch))
        total = 0.0
        for index in minibatches(len(labels), p.batch_size, generator):
            if frozen is not None:
                logits = teacher.head(frozen[index])
            else:
                batch = images[index] if p.augmentation is None else augment(images[index], p.augmentation, warps)
                logits = teacher(batch)[1]
            loss = F.cross_entropy(logits, labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        history.append({"epoch": epoch + 1, "loss": total / len(labels)})  # mean cross-entropy per image, nats
        progress.show(history[-1])
        art.save_checkpoint(trained, optimizer, epoch + 1, history)
    trained.eval()
    predict = lambda x: teacher(x.to(device))[1]  # noqa: E731
    shape = tuple(train.images.shape[1:])
    metrics = {"parameters": count_parameters(teacher),
               "macs": count_macs(teacher, shape) if p.type != "clip" else None,
               "val_accuracy": accuracy(predict, val.images, val.labels.to(device)),
               "test_accuracy": accuracy(predict, test.images, test.labels.to(device)), "history": history}
    plot_curves(history, art.directory / "curves.png", "teacher")
    art.save(trained, metrics, model_card(f"Teacher ({p.type})", metrics))
