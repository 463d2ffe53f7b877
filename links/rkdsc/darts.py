"""KDL-DARTS: a distillation-aware differentiable architecture search for the student semantic encoder.

The search space is a DARTS-style network (design.md section 4)::

    stem conv 3x3 (in_channels -> C) -> cell 0 -> ... -> cell K-1 -> global average pool -> linear -> [B, embed_dim]

A *cell* first maps its input to its width with a 1x1 convolution (``preprocess``), giving state 0. Intermediate
node ``i`` (``0 <= i < nodes``) is the sum of edges from every earlier state ``j <= i`` (state 0 = the cell input,
state ``j >= 1`` = node ``j - 1``), and the cell's output is the concatenation of its nodes (``nodes * width``
channels). A reduction cell applies stride 2 on the edges leaving state 0 and doubles the width.

During the search every edge is a *mixed operation*: the softmax-weighted sum of all :data:`CANDIDATE_OPS`, with
one vector of architecture logits (alpha) per edge and cell. First-order bi-level optimisation alternates

* an architecture step on a validation batch: ``KD loss + lambda_complexity * expected complexity``, and
* a weight step on a training batch: ``KD loss``,

where the KD loss is the mean squared error between the supernet's embedding and the teacher's embedding, and the
expected complexity is ``sum_edges softmax(alpha) . cost(op)`` divided by ``(most expensive op cost) * edges``, so
it lies in ``[0, 1]`` and ``lambda_complexity ~ 1`` is a strong penalty. The cost of an op is its parameter count
(or multiply-accumulates) at the width and spatial size of its edge.

Discretisation keeps, for each node, the ``edges_per_node`` incoming edges whose best non-"zero" op weighs most,
each with that op; :func:`build_student` turns the resulting :class:`Genotype` into a fresh network that the
caller retrains by distillation (stage 1 of :mod:`links.rkdsc.pipeline`).

:class:`SearchParams` is the search's one parameter model: the ``search`` settings of a scenario's RKD-SC link.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from links.complexity import count_macs, count_parameters
from links.rkdsc.params import SearchParams
from links.training import minibatches

#: candidate operations of every edge; "zero" (no connection) is never chosen for the derived student. DARTS's
#: dilated 3x3 convolution is left out: on 8x8 and 4x4 feature maps it spans the same 5x5 window as
#: sep_conv_5x5 at the parameter cost of sep_conv_3x3, and it alone took ~30 % of the search time on CPU.
CANDIDATE_OPS: tuple[str, ...] = (
    "zero",
    "skip",
    "avg_pool_3x3",
    "max_pool_3x3",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
)

OpChoice = tuple[str, int]  # (operation name, input state index: 0 = cell input, j >= 1 = node j - 1)
NodeGenotype = tuple[OpChoice, ...]
CellGenotype = tuple[NodeGenotype, ...]
Progress = Callable[[int, dict[str, float]], None]




# --------------------------------------------------------------------------------------------------- operations


class Zero(nn.Module):
    """No connection: zeros with the spatial size the edge's stride gives."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Subsample(nn.Module):
    """Parameter-free strided identity (the "skip" op of a reduction edge): keeps every ``stride``-th pixel."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride]


def _relu_conv_bn(channels: int, kernel: int, stride: int, separable: bool, affine: bool) -> nn.Sequential:
    """ReLU -> (depthwise kxk + pointwise 1x1 | full kxk) conv -> BatchNorm, ``channels`` in and out."""
    padding = (kernel - 1) // 2
    if separable:
        convs = [nn.Conv2d(channels, channels, kernel, stride, padding, groups=channels, bias=False),
                 nn.Conv2d(channels, channels, 1, bias=False)]
    else:
        convs = [nn.Conv2d(channels, channels, kernel, stride, padding, bias=False)]
    return nn.Sequential(nn.ReLU(), *convs, nn.BatchNorm2d(channels, affine=affine))


def make_op(name: str, channels: int, stride: int, affine: bool = True) -> nn.Module:
    """The candidate operation ``name``: ``[B, channels, H, W] -> [B, channels, ceil(H/stride), ceil(W/stride)]``.

    ``affine=False`` gives parameter-free BatchNorm, as in the supernet (DARTS); the derived student uses ``True``.
    """
    if name == "zero":
        return Zero(stride)
    if name == "skip":
        return nn.Identity() if stride == 1 else Subsample(stride)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride, padding=1, count_include_pad=False)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, padding=1)
    convs = {  # name: (kernel, separable)
        "conv_1x1": (1, False),
        "conv_3x3": (3, False),
        "sep_conv_3x3": (3, True),
        "sep_conv_5x5": (5, True),
    }
    if name not in convs:
        raise ValueError(f"unknown operation {name!r}; allowed: {', '.join(CANDIDATE_OPS)}")
    kernel, separable = convs[name]
    return _relu_conv_bn(channels, kernel, stride, separable, affine)


def op_cost(name: str, channels: int, stride: int, height: int, width: int,
            complexity: Literal["params", "flops"]) -> int:
    """Cost of one candidate op on its edge: parameters, or multiply-accumulates per example on a
    ``[channels, height, width]`` input. "zero", "skip" and the pools cost 0."""
    op = make_op(name, channels, stride, affine=True)
    if complexity == "params":
        return count_parameters(op)
    return count_macs(op, (channels, height, width))


# ----------------------------------------------------------------------------------------------- measurements


def cell_edges(nodes: int) -> list[tuple[int, int]]:
    """Edges of a cell as ``(node, input state)`` pairs, node by node: ``nodes * (nodes + 1) / 2`` of them."""
    return [(node, state) for node in range(nodes) for state in range(node + 1)]


def reduction_cells(cells: int, image_size: int) -> tuple[int, ...]:
    """Indices of the reduction cells: the middle cell (fewer than 5 cells) or the cells at 1/3 and 2/3, each only
    while the feature map is still at least 4 pixels on its shorter side."""
    wanted = [cells // 2] if cells < 5 else [cells // 3, 2 * cells // 3]
    chosen, size = [], image_size
    for index in wanted:
        if size >= 4:
            chosen.append(index)
            size = math.ceil(size / 2)
    return tuple(chosen)


def cell_widths(channels: int, cells: int, reductions: tuple[int, ...]) -> list[int]:
    """Width (channels per node) of each cell: the base width, doubled from each reduction cell on."""
    widths, width = [], channels
    for index in range(cells):
        if index in reductions:
            width *= 2
        widths.append(width)
    return widths


def _preprocess(in_channels: int, channels: int, affine: bool) -> nn.Sequential:
    """ReLU -> 1x1 conv -> BatchNorm: a cell's input mapped to the cell's width (state 0)."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(in_channels, channels, 1, bias=False),
                         nn.BatchNorm2d(channels, affine=affine))


def _stem(in_channels: int, channels: int, affine: bool) -> nn.Sequential:
    """3x3 conv -> BatchNorm from the image's channels to the base width."""
    return nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(channels, affine=affine))


# ------------------------------------------------------------------------------------------------- the supernet


class MixedOp(nn.Module):
    """An edge of the supernet: ``sum_k w_k op_k(x)`` over :data:`CANDIDATE_OPS` (``w``: softmax weights)."""

    def __init__(self, channels: int, stride: int):
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, channels, stride, affine=False) for name in CANDIDATE_OPS)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, C, H, W]``, ``weights`` ``[len(CANDIDATE_OPS)]`` -> ``[B, C, H', W']``."""
        out = None
        for name, op, w in zip(CANDIDATE_OPS, self.ops, weights, strict=True):
            if name == "zero":  # contributes w * 0; its weight still takes part in the softmax
                continue
            term = w * op(x)
            out = term if out is None else out + term
        return out


class SearchCell(nn.Module):
    """A supernet cell: every edge of :func:`cell_edges` is a :class:`MixedOp`."""

    def __init__(self, in_channels: int, channels: int, nodes: int, reduction: bool):
        super().__init__()
        self.nodes = nodes
        self.preprocess = _preprocess(in_channels, channels, affine=False)
        self.edges = nn.ModuleList(MixedOp(channels, 2 if reduction and state == 0 else 1)
                                   for _, state in cell_edges(nodes))

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, C_in, H, W]``, ``weights`` ``[edges, ops]`` -> ``[B, nodes * C, H', W']``."""
        states = [self.preprocess(x)]
        edge = 0
        for node in range(self.nodes):
            total = 0
            for state in range(node + 1):
                total = total + self.edges[edge](states[state], weights[edge])
                edge += 1
            states.append(total)
        return torch.cat(states[1:], dim=1)


class SuperNet(nn.Module):
    """The search network: stem, :class:`SearchCell` s, average pool, linear head; ``[B, C, H, W] -> [B, D]``.

    ``alphas`` ``[cells, edges, ops]`` are the architecture logits; ``costs`` (same shape, a buffer) hold each
    op's cost on its edge (:func:`op_cost`).
    """

    def __init__(self, config: SearchParams, in_channels: int, image_size: tuple[int, int], embed_dim: int):
        super().__init__()
        self.reductions = reduction_cells(config.cells, min(image_size))
        widths = cell_widths(config.channels, config.cells, self.reductions)
        self.stem = _stem(in_channels, config.channels, affine=False)
        self.cells = nn.ModuleList()
        costs = []
        previous, (height, width) = config.channels, image_size
        for index, cell_width in enumerate(widths):
            reduction = index in self.reductions
            self.cells.append(SearchCell(previous, cell_width, config.nodes, reduction))
            costs.append([[op_cost(name, cell_width, 2 if reduction and state == 0 else 1, height, width,
                                   config.complexity) for name in CANDIDATE_OPS]
                          for _, state in cell_edges(config.nodes)])
            if reduction:
                height, width = math.ceil(height / 2), math.ceil(width / 2)
            previous = config.nodes * cell_width
        self.head = nn.Linear(previous, embed_dim)
        self.register_buffer("costs", torch.tensor(costs, dtype=torch.float32))
        self.alphas = nn.Parameter(1e-3 * torch.randn(self.costs.shape))

    def op_weights(self) -> torch.Tensor:
        """Softmax of the architecture logits over the ops: ``[cells, edges, ops]``, rows sum to 1."""
        return F.softmax(self.alphas, dim=-1)

    def expected_cost(self) -> torch.Tensor:
        """Softmax-weighted cost summed over all edges (parameters or MACs per example), a scalar."""
        return (self.op_weights() * self.costs).sum()

    def expected_complexity(self) -> torch.Tensor:
        """:meth:`expected_cost` / (most expensive op cost * number of edges): dimensionless, in ``[0, 1]``."""
        edges = self.costs.shape[0] * self.costs.shape[1]
        return self.expected_cost() / (self.costs.max().clamp_min(1.0) * edges)

    def weight_parameters(self) -> list[nn.Parameter]:
        """The network weights (everything but ``alphas``)."""
        return [p for name, p in self.named_parameters() if name != "alphas"]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        weights = self.op_weights()
        x = self.stem(images)
        for cell, cell_weights in zip(self.cells, weights, strict=True):
            x = cell(x, cell_weights)
        return self.head(x.mean(dim=(2, 3)))


# ------------------------------------------------------------------------------------------------- genotypes


@dataclass(frozen=True)
class Genotype:
    """A discrete architecture: per cell, per node, the chosen ``(op, input state)`` pairs.

    Input state 0 is the cell's input, state ``j >= 1`` is node ``j - 1`` of the same cell. ``reductions`` are
    the indices of the stride-2 cells, ``channels`` the base width.
    """

    cells: tuple[CellGenotype, ...]
    reductions: tuple[int, ...]
    channels: int

    def __post_init__(self) -> None:
        if not self.cells or self.channels < 1:
            raise ValueError("a genotype needs at least one cell and channels >= 1")
        for c, cell in enumerate(self.cells):
            if not cell:
                raise ValueError(f"genotype cell {c} has no nodes")
            for node, choices in enumerate(cell):
                if not choices:
                    raise ValueError(f"genotype cell {c} node {node} has no inputs")
                for op, state in choices:
                    if op not in CANDIDATE_OPS or op == "zero":
                        raise ValueError(f"genotype cell {c} node {node}: op {op!r} is not one of "
                                         f"{', '.join(CANDIDATE_OPS[1:])}")
                    if not 0 <= state <= node:
                        raise ValueError(f"genotype cell {c} node {node}: input {state} not in 0..{node}")
        if list(self.reductions) != sorted(set(self.reductions)) or any(
                not 0 <= r < len(self.cells) for r in self.reductions):
            raise ValueError(f"genotype reductions {self.reductions} must be distinct ascending cell indices")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (lists instead of tuples)."""
        return {
            "cells": [[[[op, state] for op, state in node] for node in cell] for cell in self.cells],
            "reductions": list(self.reductions),
            "channels": self.channels,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genotype:
        """Inverse of :meth:`to_dict`."""
        cells = tuple(tuple(tuple((str(op), int(state)) for op, state in node) for node in cell)
                      for cell in data["cells"])
        return cls(cells=cells, reductions=tuple(int(r) for r in data["reductions"]), channels=int(data["channels"]))


def discretise(weights: torch.Tensor, nodes: int, edges_per_node: int) -> tuple[CellGenotype, ...]:
    """Per cell and node, the ``edges_per_node`` strongest incoming edges with their best non-"zero" op.

    ``weights`` ``[cells, edges, ops]`` are softmax op weights. An edge's strength is its best non-"zero" op
    weight; node ``i`` has only ``i + 1`` possible inputs, so it keeps ``min(edges_per_node, i + 1)``. Ties go to
    the earlier input; the kept pairs are listed by input index.
    """
    nonzero = torch.tensor([name != "zero" for name in CANDIDATE_OPS])
    masked = weights.detach().cpu().masked_fill(~nonzero, -1.0)
    strength, best = masked.max(dim=-1)  # [cells, edges]
    edges = cell_edges(nodes)
    cells = []
    for c in range(weights.shape[0]):
        cell = []
        for node in range(nodes):
            incoming = [(e, state) for e, (n, state) in enumerate(edges) if n == node]
            ranked = sorted(incoming, key=lambda item: (-float(strength[c, item[0]]), item[1]))
            kept = sorted(ranked[:edges_per_node], key=lambda item: item[1])
            cell.append(tuple((CANDIDATE_OPS[int(best[c, e])], state) for e, state in kept))
        cells.append(tuple(cell))
    return tuple(cells)


def random_genotype(config: SearchParams, image_size: int, generator: torch.Generator) -> Genotype:
    """A genotype drawn uniformly from the search space of ``config``: for every cell and node,
    ``min(edges_per_node, node + 1)`` distinct inputs, each with an op drawn uniformly from the non-"zero"
    :data:`CANDIDATE_OPS`; reduction cells as the supernet places them for ``image_size``."""
    ops = CANDIDATE_OPS[1:]
    cells = []
    for _ in range(config.cells):
        cell = []
        for node in range(config.nodes):
            inputs = sorted(torch.randperm(node + 1, generator=generator)[: config.edges_per_node].tolist())
            cell.append(tuple((ops[int(torch.randint(len(ops), (1,), generator=generator))], state)
                              for state in inputs))
        cells.append(tuple(cell))
    return Genotype(cells=tuple(cells), reductions=reduction_cells(config.cells, image_size),
                    channels=config.channels)


# --------------------------------------------------------------------------------------------- the student


class DerivedCell(nn.Module):
    """A student cell with only the genotype's ops: ``[B, C_in, H, W] -> [B, nodes * C, H', W']``."""

    def __init__(self, in_channels: int, channels: int, genotype: CellGenotype, reduction: bool):
        super().__init__()
        self.inputs = [[state for _, state in node] for node in genotype]
        self.preprocess = _preprocess(in_channels, channels, affine=True)
        self.ops = nn.ModuleList(
            nn.ModuleList(make_op(op, channels, 2 if reduction and state == 0 else 1) for op, state in node)
            for node in genotype
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess(x)]
        for inputs, ops in zip(self.inputs, self.ops, strict=True):
            states.append(sum(op(states[state]) for op, state in zip(ops, inputs, strict=True)))
        return torch.cat(states[1:], dim=1)


class StudentNet(nn.Module):
    """The derived student encoder: stem, :class:`DerivedCell` s, average pool, linear head.

    ``[B, in_channels, H, W]`` float -> ``[B, embed_dim]``.
    """

    def __init__(self, genotype: Genotype, in_channels: int, embed_dim: int):
        super().__init__()
        self.genotype = genotype
        widths = cell_widths(genotype.channels, len(genotype.cells), genotype.reductions)
        self.stem = _stem(in_channels, genotype.channels, affine=True)
        self.cells = nn.ModuleList()
        previous = genotype.channels
        for index, (cell, width) in enumerate(zip(genotype.cells, widths, strict=True)):
            self.cells.append(DerivedCell(previous, width, cell, index in genotype.reductions))
            previous = len(cell) * width
        self.head = nn.Linear(previous, embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem(images)
        for cell in self.cells:
            x = cell(x)
        return self.head(x.mean(dim=(2, 3)))


def build_student(genotype: Genotype, in_channels: int, embed_dim: int, seed: int | None = None) -> StudentNet:
    """A fresh :class:`StudentNet` for ``genotype``; with ``seed``, its initial weights depend only on the seed
    (the global random state is left as it was)."""
    if seed is None:
        return StudentNet(genotype, in_channels, embed_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return StudentNet(genotype, in_channels, embed_dim)


# ------------------------------------------------------------------------------------------------ the search


@dataclass
class SearchResult:
    """Outcome of :func:`search`.

    ``history`` has one dict per epoch: ``epoch`` (1-based), ``train_kd`` and ``val_kd`` (mean MSE per embedding
    element over the epoch's weight and architecture steps), ``expected_complexity`` (normalised, in ``[0, 1]``),
    ``expected_cost`` (parameters or MACs per example, summed over edges), ``arch_entropy`` (mean entropy of the
    op weights per edge, nats; ``log(len(CANDIDATE_OPS))`` = undecided) and ``seconds``.
    ``alphas[cell][edge][op]`` are the final softmax op weights (edges ordered as :func:`cell_edges`).
    """

    genotype: Genotype
    history: list[dict[str, float]]
    alphas: list[list[list[float]]]
    seconds: float = field(default=0.0)


def _check_pair(images: torch.Tensor, targets: torch.Tensor, embed_dim: int, split: str) -> None:
    """Shapes of one split: images ``[N, C, H, W]``, targets ``[N, embed_dim]``."""
    if images.ndim != 4 or targets.ndim != 2 or images.shape[0] != targets.shape[0] or len(images) == 0:
        raise ValueError(f"{split} split: need images [N, C, H, W] and targets [N, D] with the same N >= 1, got "
                         f"{tuple(images.shape)} and {tuple(targets.shape)}")
    if targets.shape[1] != embed_dim:
        raise ValueError(f"{split} split: targets have {targets.shape[1]} dims, embed_dim is {embed_dim}")


def _endless_batches(count: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches over ``range(count)``, reshuffled after every pass, forever."""
    while True:
        yield from minibatches(count, batch_size, generator)


def _rng_devices(device: torch.device) -> list[int]:
    """CUDA devices whose random state :func:`torch.random.fork_rng` must save for ``device``."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _arch_entropy(weights: torch.Tensor) -> float:
    """Mean over edges of the entropy (nats) of the op weights ``[..., ops]``."""
    return float(-(weights * weights.clamp_min(1e-12).log()).sum(dim=-1).mean())


def search(
    config: SearchParams,
    train_images: torch.Tensor,
    train_targets: torch.Tensor,
    val_images: torch.Tensor,
    val_targets: torch.Tensor,
    embed_dim: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
) -> SearchResult:
    """Search a student architecture that distils the teacher's embeddings cheaply.

    Images are ``[N, C, H, W]`` floats as the student will see them (normalised); targets are the teacher's
    embeddings ``[N, embed_dim]``. Weights learn on the train split, architecture logits on the val split
    (first-order DARTS: one architecture step, then one weight step, per training batch). ``progress(epoch,
    metrics)`` is called after each epoch with that epoch's history entry. Deterministic for a given ``seed``
    (and thread count); the caller's global random state is left untouched.
    """
    _check_pair(train_images, train_targets, embed_dim, "train")
    _check_pair(val_images, val_targets, embed_dim, "val")
    if train_images.shape[1:] != val_images.shape[1:]:
        raise ValueError(f"train and val images differ in shape: {tuple(train_images.shape[1:])} vs "
                         f"{tuple(val_images.shape[1:])}")
    device = torch.device(device)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(seed)
        net = SuperNet(config, train_images.shape[1], tuple(train_images.shape[2:]), embed_dim)
        # channels-last runs the many small depthwise convolutions about twice as fast on CPU (same results)
        net = net.to(device, memory_format=torch.channels_last)
        weight_opt = torch.optim.Adam(net.weight_parameters(), lr=config.weight_lr)
        arch_opt = torch.optim.Adam([net.alphas], lr=config.arch_lr, betas=(0.5, 0.999))
        x_train, y_train = train_images.to(device, torch.float32), train_targets.to(device, torch.float32)
        x_val, y_val = val_images.to(device, torch.float32), val_targets.to(device, torch.float32)
        generator = torch.Generator().manual_seed(seed)
        val_batches = _endless_batches(len(x_val), config.batch_size, generator)
        history = []
        net.train()
        for epoch in range(config.epochs):
            epoch_start = time.perf_counter()
            train_sum = val_sum = 0.0
            steps = 0
            for batch in minibatches(len(x_train), config.batch_size, generator):
                val_batch = next(val_batches).to(device)
                val_kd = F.mse_loss(net(x_val[val_batch]), y_val[val_batch])
                arch_opt.zero_grad(set_to_none=True)
                (val_kd + config.lambda_complexity * net.expected_complexity()).backward(inputs=[net.alphas])
                arch_opt.step()

                batch = batch.to(device)
                train_kd = F.mse_loss(net(x_train[batch]), y_train[batch])
                weight_opt.zero_grad(set_to_none=True)
                train_kd.backward(inputs=net.weight_parameters())
                nn.utils.clip_grad_norm_(net.weight_parameters(), 5.0)
                weight_opt.step()

                train_sum, val_sum, steps = train_sum + train_kd.item(), val_sum + val_kd.item(), steps + 1
            with torch.no_grad():
                metrics = {
                    "epoch": epoch + 1,
                    "train_kd": train_sum / steps,
                    "val_kd": val_sum / steps,
                    "expected_complexity": float(net.expected_complexity()),
                    "expected_cost": float(net.expected_cost()),
                    "arch_entropy": _arch_entropy(net.op_weights()),
                    "seconds": time.perf_counter() - epoch_start,
                }
            history.append(metrics)
            if progress is not None:
                progress(epoch + 1, metrics)
        weights = net.op_weights().detach().cpu()
    genotype = Genotype(cells=discretise(weights, config.nodes, config.edges_per_node),
                        reductions=net.reductions, channels=config.channels)
    return SearchResult(genotype=genotype, history=history, alphas=weights.tolist(),
                        seconds=time.perf_counter() - start)
