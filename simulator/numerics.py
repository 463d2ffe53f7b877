"""The floating-point numerics a result depends on beyond its identity: device type and torch thread count.

On a CPU, torch splits matrix products and convolutions over its intra-op threads, and the split decides the
order in which partial sums are added: the same model gives results that differ in the last bits with 1 or 2
threads, enough to move an example across a decision boundary now and then (and to make training diverge
slowly). semsim therefore runs training and evaluation at a fixed thread count, the scenario's ``threads``
(default 1, ``--threads`` on the command line), in this process and in every Ray task, so that a result does not
depend on the machine's core count or on the executor. Parallelism across points comes from executors, not from
intra-op threads.

A CUDA device gives other numbers than a CPU (and than another GPU model); :func:`evaluation_numerics` records
what a run computed with, and :func:`check_numerics` refuses to mix rows of other numerics into one
``results.csv``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from simulator.atomic import read_json
from simulator.errors import UserError

if TYPE_CHECKING:
    from simulator.scenario import Scenario


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


def evaluation_numerics(scenario: Scenario) -> dict:
    """What a run's floating-point results depend on: ``{"device_type": "cpu", "threads": n}`` on a CPU, or
    the GPU's name on CUDA (whose kernels do not follow the thread count)."""
    if scenario.device.startswith("cuda"):
        import torch

        return {"device_type": "cuda", "gpu": torch.cuda.get_device_name(torch.device(scenario.device))}
    return {"device_type": "cpu", "threads": scenario.threads}


def training_numerics(device: str) -> dict:
    """The numerics of training happening now in this process (recorded in artifacts' ``meta.json``)."""
    import torch

    if str(device).startswith("cuda"):
        return {"device_type": "cuda", "gpu": torch.cuda.get_device_name(torch.device(device))}
    return {"device_type": "cpu", "threads": torch.get_num_threads()}


def describe_numerics(numerics: dict) -> str:
    """``cpu with 1 torch thread`` or ``cuda (NVIDIA H200)``."""
    if numerics.get("device_type") == "cuda":
        return f"cuda ({numerics.get('gpu')})"
    threads = numerics.get("threads")
    return f"cpu with {threads} torch thread{'s' if threads != 1 else ''}"


def check_numerics(out: Path, numerics: dict) -> None:
    """Refuse to add points computed with other numerics to an output directory's ``results.csv`` (its rows
    would not be comparable); a directory whose manifest records no numerics (older runs) is not checked."""
    recorded = read_json(out / "manifest.json").get("numerics")
    if not recorded or recorded == numerics or not (out / "results.csv").is_file():
        return
    raise UserError(f"{out / 'results.csv'} holds results computed on {describe_numerics(recorded)}; this run "
                    f"would compute on {describe_numerics(numerics)}, whose numbers can differ; use another "
                    "--output, or the same device and thread count (threads: in the scenario, or --threads)")
