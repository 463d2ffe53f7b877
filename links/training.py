"""Training-loop plumbing shared by the RKD-SC stages and the trained baselines: seeded initialisation, minibatch
descent, learning-rate schedule, epochs with resume and progress, curves and model cards."""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from simulator.core.seeding import derive_seed  # noqa: E402
from simulator.io.artifacts import Artifact  # noqa: E402
from simulator.io.atomic import atomic_path  # noqa: E402


def minibatches(count: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled partition of ``range(count)`` into index batches (the last may be smaller)."""
    order = torch.randperm(count, generator=generator)
    return [order[i : i + batch_size] for i in range(0, count, batch_size)]


def run_epochs(
    artifact: Artifact,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    epoch_fn: Callable[[int], dict[str, float]],
    label: str,
    device: str = "cpu",
) -> list[dict[str, float]]:
    """Run ``epoch_fn(epoch)`` for the epochs not yet done, checkpointing after each one.

    ``epoch_fn`` trains one epoch and returns its metrics (``{"loss": ..., ...}``). An interrupted run resumes
    from the artifact's checkpoint: ``epoch_fn`` must derive its randomness from ``epoch`` for the resumed run
    to equal an uninterrupted one. Shows a progress bar on a terminal, a line per stage otherwise.
    """
    start, history = artifact.load_checkpoint(module, optimizer, device)
    bar = tqdm(range(start, epochs), desc=label, unit="epoch", leave=False, file=sys.stderr,
               disable=not sys.stderr.isatty(), initial=start, total=epochs)
    if start < epochs and not sys.stderr.isatty():
        print(f"[semsim] training {label}: epochs {start + 1}-{epochs}", file=sys.stderr, flush=True)
    for epoch in bar:
        module.train()
        metrics = {"epoch": epoch + 1, **epoch_fn(epoch)}
        history.append(metrics)
        artifact.save_checkpoint(module, optimizer, epoch + 1, history)
        bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if k != "epoch"})
    module.eval()
    return history


def plot_curves(history: list[dict[str, float]], path, title: str) -> None:
    """One line per metric of ``history`` against the epoch."""
    keys = [k for k in history[0] if k != "epoch"] if history else []
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
    """Top-1 accuracy of ``predict(images) -> logits`` over a split."""
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
    """Learning rate of ``epoch``: linear warm-up over ``warmup`` epochs, then cosine decay to 0."""
    scale = min(1.0, (epoch + 1) / warmup) if warmup else 1.0
    for group in optimizer.param_groups:
        group["lr"] = base * group.get("lr_scale", 1.0) * scale * 0.5 * (1 + math.cos(math.pi * epoch / epochs))


def descend(optimizer: torch.optim.Optimizer, count: int, batch_size: int, generator: torch.Generator,
            loss_of: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """One epoch of minibatch gradient steps on ``loss_of(indices)``; returns the mean loss per example."""
    total = 0.0
    for index in minibatches(count, batch_size, generator):
        loss = loss_of(index)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(index)
    return total / count


def model_card(title: str, metrics: dict[str, Any]) -> str:
    """A markdown model card: ``title`` and a table of ``metrics`` (the training history left out)."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items() if k != "history")
    return f"# {title}\n\n| quantity | value |\n| --- | --- |\n{rows}\n"
