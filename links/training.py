"""Small helpers of the training loops of the RKD-SC stages and the trained baselines.

Every trainer is one explicit loop, written out where it trains (``_train_teacher``, ``_stage1`` and ``_stage2``
in :mod:`links.rkdsc.pipeline`, ``train_through_channel`` in :mod:`links.baselines.deepjscc`), in this order::

    start, history = art.load_checkpoint(model, optimizer, device)  # resume after the last finished epoch
    progress = EpochProgress("stage", start, epochs)
    for epoch in progress:  # the epochs not yet done
        model.train()
        cosine_lr(optimizer, lr, epoch, epochs)
        generator = torch.Generator().manual_seed(derive_seed(seed, "stage-batches", epoch))
        total = 0.0
        for index in minibatches(count, batch_size, generator):
            loss = loss_function(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        history.append({"epoch": epoch + 1, "loss": total / count})
        progress.show(history[-1])
        art.save_checkpoint(model, optimizer, epoch + 1, history)  # what a resumed run starts from
    model.eval()

Every random draw of an epoch comes from generators seeded by the epoch, so a run resumed from its checkpoint
(:meth:`simulator.io.artifacts.Artifact.load_checkpoint`) trains the same weights as an uninterrupted one.
This module holds what those loops share: seeded initialisation, the shuffled minibatches, the learning-rate
schedule, the progress display, accuracy, curves and model cards.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
from tqdm import tqdm

from simulator.core.seeding import derive_seed
from simulator.io.atomic import atomic_path  # noqa: E402


def minibatches(count: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch's minibatches: a shuffled partition of ``range(count)`` into int64 index tensors of
    ``batch_size`` examples (the last may be smaller). The permutation is drawn from ``generator`` at the call."""
    order = torch.randperm(count, generator=generator)
    return [order[i : i + batch_size] for i in range(0, count, batch_size)]


class EpochProgress:
    """The epochs still to train, ``start .. epochs - 1`` (0-based), shown on stderr.

    On a terminal: a progress bar whose postfix is the last :meth:`show`-n epoch's metrics. Otherwise one line
    per training stage (``[semsim] training <label>: epochs <first>-<last>``, 1-based) and nothing per epoch.
    """

    def __init__(self, label: str, start: int, epochs: int):
        terminal = sys.stderr.isatty()
        self.bar = tqdm(range(start, epochs), desc=label, unit="epoch", leave=False, file=sys.stderr,
                        disable=not terminal, initial=start, total=epochs)
        if start < epochs and not terminal:
            print(f"[semsim] training {label}: epochs {start + 1}-{epochs}", file=sys.stderr, flush=True)

    def __iter__(self) -> Iterator[int]:
        return iter(self.bar)

    def show(self, metrics: dict[str, float]) -> None:
        """Show an epoch's metrics (``epoch`` left out) beside the bar."""
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if k != "epoch"})


def plot_curves(history: list[dict[str, float]], path, title: str) -> None:
    """A PNG at ``path`` with one panel per metric of ``history`` (one dict per epoch) against the epoch."""
    keys = [k for k in history[0] if k != "epoch"] if history else []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(3.6 * max(len(keys), 1), 3.0), squeeze=False)
    epochs = [h["epoch"] for h in history]
    for ax, key in zip(axes[0], keys, strict=False):
        ax.plot(epochs, [h[key] for h in history])
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.18, top=0.8, wspace=0.35)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


@torch.no_grad()
def accuracy(predict: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 512) -> float:
    """Top-1 accuracy (a fraction in ``[0, 1]``) of ``predict(images [B, ...]) -> logits [B, classes]`` over a
    split of ``labels`` ``[N]``, in batches of ``batch_size``."""
    correct = 0
    for i in range(0, len(labels), batch_size):
        correct += int((predict(images[i : i + batch_size]).argmax(dim=1) == labels[i : i + batch_size]).sum())
    return correct / max(len(labels), 1)


@contextlib.contextmanager
def initialised(seed: int, name: str):
    """Deterministic weight initialisation of the modules built inside, leaving torch's global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init", name))
        yield


def cosine_lr(optimizer: torch.optim.Optimizer, base: float, epoch: int, epochs: int, warmup: int = 0) -> None:
    """Set the learning rate of ``epoch`` (0-based) of ``epochs``: ``base`` times a linear warm-up over ``warmup``
    epochs times a cosine decay towards 0, times each parameter group's ``lr_scale`` (default 1)."""
    scale = min(1.0, (epoch + 1) / warmup) if warmup else 1.0
    for group in optimizer.param_groups:
        group["lr"] = base * group.get("lr_scale", 1.0) * scale * 0.5 * (1 + math.cos(math.pi * epoch / epochs))


def model_card(title: str, metrics: dict[str, Any]) -> str:
    """A markdown model card: ``title`` and a table of ``metrics`` (the training history left out)."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items() if k != "history")
    return f"# {title}\n\n| quantity | value |\n| --- | --- |\n{rows}\n"
