"""Memory layout and compilation of semsim's convolutional models on the CPU: contiguous vs channels-last vs
``torch.compile``.

What is measured
    For each convolutional model semsim trains on the embedded digits (1 x 8 x 8 images), with the default
    settings of its scenario entry:

    * ``teacher``: the residual CNN teacher (``TeacherParams()``, 0.54 M parameters);
    * ``student``: a KDL-DARTS student (``SearchParams()``: 3 cells, 3 nodes, 12 channels), a genotype drawn by
      ``random_genotype`` with a fixed seed (the searched genotype of a scenario has the same cells and widths,
      only its ops differ);
    * ``supernet``: the KDL-DARTS supernet of the search (every op on every edge);
    * ``deepjscc``: the deep JSCC conv encoder (width 32, 16 symbols).

    Two kinds of work are timed (milliseconds per call, best of ``--repeats`` rounds after a warm-up; each round
    times every variant's loop of 20 calls in turn, so load changes fall on all variants alike):

    * ``infer``: one forward pass under ``torch.no_grad`` in eval mode on a batch of 360 images (the quickstart's
      test batch);
    * ``train``: one training step, forward + mean-squared-error loss (to zeros) + backward + Adam step, in train
      mode on a batch of 64 (the training batch size of the teacher, the search and stage 1).

    and four variants of the same model and weights: ``contiguous`` (PyTorch's default NCHW memory layout, the
    reference), ``channels_last`` (``model.to(memory_format=torch.channels_last)`` and channels-last inputs),
    ``compiled`` (``torch.compile`` with the default inductor backend, NCHW) and ``compiled_channels_last``.
    The supernet is not compiled unless ``--compile-supernet`` is given: compiling its every-op-on-every-edge
    graph takes minutes per variant, and the search already runs it channels-last.
    ``ratio`` is a variant's time divided by ``contiguous``'s in the same run (below 1: faster);
    ``compile_seconds`` is the first call's extra time, which a run pays once per process and shape;
    ``max_abs_diff`` is the largest difference of the variant's output from the contiguous model's on the same
    input (layouts and fused kernels sum in other orders, so results differ in their last bits).

How to run
    ``.venv/bin/python benchmarks/conv_layout.py`` (about 2 minutes on 2 CPU cores, most of it compiling), or
    ``--quick`` for a smoke run (small batches, the student only, no compilation). ``--threads`` sets torch's
    intra-op threads (default 1, semsim's default). Results are printed as a table and written to
    ``benchmarks/results/conv_layout.json`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import environment, write_json
from torch import nn

from links.baselines.deepjscc import ConvEncoder
from links.params import TeacherParams
from links.rkdsc.darts import SuperNet, build_student, random_genotype
from links.rkdsc.params import SearchParams
from links.teacher import CNNTeacher

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "conv_layout.json"
CHANNELS, SIZE, CLASSES, EMBED_DIM = 1, 8, 10, 128
INFER_BATCH, TRAIN_BATCH = 360, 64
VARIANTS = ("contiguous", "channels_last", "compiled", "compiled_channels_last")


class _Embedding(nn.Module):
    """The part of a model the benchmark times: images -> one output tensor."""

    def __init__(self, model: nn.Module, call: Callable[[nn.Module, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.model = model
        self.call = call

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.call(self.model, images)


def models(quick: bool) -> dict[str, nn.Module]:
    """The timed models, built with fixed seeds."""
    torch.manual_seed(0)
    search = SearchParams()
    genotype = random_genotype(search, SIZE, torch.Generator().manual_seed(0))
    built = {"student": _Embedding(build_student(genotype, CHANNELS, EMBED_DIM, seed=0), lambda m, x: m(x))}
    if quick:
        return built
    built["teacher"] = _Embedding(CNNTeacher(TeacherParams(), CHANNELS, SIZE, CLASSES), lambda m, x: m.embed(x))
    built["supernet"] = _Embedding(SuperNet(search, CHANNELS, (SIZE, SIZE), EMBED_DIM), lambda m, x: m(x))
    built["deepjscc"] = _Embedding(ConvEncoder(CHANNELS, SIZE, 32, 16),
                                   lambda m, x: torch.view_as_real(m.to_symbols(m.features(x), None)))
    return built


def variant(model: nn.Module, name: str) -> tuple[nn.Module, Callable[[nn.Module], nn.Module]]:
    """A copy of ``model`` in variant ``name``, and the input layout it takes."""
    copied = copy.deepcopy(model)
    layout = torch.channels_last if "channels_last" in name else torch.contiguous_format
    copied = copied.to(memory_format=layout)
    if name.startswith("compiled"):
        copied = torch.compile(copied)
    return copied, layout


def prepare(model: nn.Module, name: str, kind: str, images: torch.Tensor) -> dict:
    """Variant ``name`` of ``model`` ready for ``kind`` ("infer" or "train") work: its step, first output and
    first-call seconds (compilation included), after one more warm-up call."""
    net, layout = variant(model, name)
    x = images.contiguous(memory_format=layout)
    if kind == "infer":
        net.eval()

        def step():
            with torch.no_grad():
                return net(x)
    else:
        net.train()
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step():
            out = net(x)
            loss = F.mse_loss(out, torch.zeros_like(out))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return out

    start = time.perf_counter()
    first = step()
    first_seconds = time.perf_counter() - start
    step()
    return {"step": step, "first_seconds": first_seconds, "output": first.detach()}


def interleaved_best_ms(steps: dict[str, Callable[[], object]], calls: int, repeats: int) -> dict[str, float]:
    """Best milliseconds per call of each step over ``repeats`` rounds; every round times each step's loop of
    ``calls`` calls in turn, so a change in machine load falls on all variants alike."""
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(calls):
                step()
            best[name] = min(best[name], (time.perf_counter() - start) / calls * 1e3)
    return best


def run(quick: bool, repeats: int, output: Path, compile_supernet: bool = False) -> dict:
    infer_batch, train_batch, calls = (48, 16, 3) if quick else (INFER_BATCH, TRAIN_BATCH, 20)
    generator = torch.Generator().manual_seed(1)
    rows = []
    for model_name, model in models(quick).items():
        names = [name for name in (VARIANTS[:2] if quick else VARIANTS)
                 if not (model_name == "supernet" and name.startswith("compiled") and not compile_supernet)]
        for kind, batch in (("infer", infer_batch), ("train", train_batch)):
            images = torch.rand(batch, CHANNELS, SIZE, SIZE, generator=generator)
            torch._dynamo.reset()
            prepared = {name: prepare(model, name, kind, images) for name in names}
            ms = interleaved_best_ms({name: p["step"] for name, p in prepared.items()}, calls, repeats)
            base = prepared["contiguous"]
            for name in names:
                row = {
                    "model": model_name, "work": kind, "batch": batch, "variant": name,
                    "ms": round(ms[name], 3), "ratio": round(ms[name] / ms["contiguous"], 3),
                    "compile_seconds": round(max(prepared[name]["first_seconds"] - base["first_seconds"], 0.0), 2)
                    if name.startswith("compiled") else 0.0,
                    "max_abs_diff": float((prepared[name]["output"] - base["output"]).abs().max()),
                }
                rows.append(row)
                print(f"{model_name:9s} {kind:5s} {name:24s} {row['ms']:9.3f} ms  x{row['ratio']:.2f}"
                      f"  compile {row['compile_seconds']:5.1f} s  diff {row['max_abs_diff']:.1e}", flush=True)
    result = {
        "benchmark": "conv_layout",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment("cpu"),
        "settings": {"quick": quick, "repeats": repeats, "calls_per_loop": calls,
                     "threads": torch.get_num_threads(), "compile_supernet": compile_supernet},
        "rows": rows,
    }
    write_json(result, output)
    print(f"wrote {output}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: the student only, no compilation")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (the best counts)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--compile-supernet", action="store_true", help="also compile the supernet (minutes)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    run(args.quick, args.repeats, args.output, args.compile_supernet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
