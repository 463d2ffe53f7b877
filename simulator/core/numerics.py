"""The floating-point numerics a result depends on beyond its identity: device type and torch thread count.

On a CPU, torch splits matrix products and convolutions over its intra-op threads, and the split decides the
order in which partial sums are added: the same model gives results that differ in the last bits with 1 or 2
threads, enough to move an example across a decision boundary now and then (and to make training diverge
slowly). semsim therefore runs training and evaluation at a fixed thread count, the scenario's ``threads``
(default 1, ``--threads`` on the command line), in this process and in every Ray task, so that a result does not
depend on the machine's core count or on the executor. Parallelism across points comes from executors, not from
intra-op threads.

A CUDA device gives other numbers than a CPU (and than another GPU model); :func:`numerics_of` says what a run
computed with. The sweep records it in ``manifest.json`` and refuses to mix rows of other numerics into one
``results.csv`` (:func:`simulator.engine.sweep.check_numerics`); artifacts record it in ``meta.json``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the body with ``threads`` torch intra-op threads, restoring the previous count afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def numerics_of(device: str, threads: int) -> dict:
    """What floating-point results computed on ``device`` depend on: ``{"device_type": "cpu", "threads": n}`` on
    a CPU, or the GPU's name on CUDA (whose kernels do not follow the thread count)."""
    if str(device).startswith("cuda"):
        import torch

        return {"device_type": "cuda", "gpu": torch.cuda.get_device_name(torch.device(device))}
    return {"device_type": "cpu", "threads": int(threads)}


def describe_numerics(numerics: dict) -> str:
    """``cpu with 1 torch thread`` or ``cuda (NVIDIA H200)``."""
    if numerics.get("device_type") == "cuda":
        return f"cuda ({numerics.get('gpu')})"
    threads = numerics.get("threads")
    return f"cpu with {threads} torch thread{'s' if threads != 1 else ''}"
