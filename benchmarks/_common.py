"""Helpers shared by the benchmarks: device synchronisation, where the numbers were taken, atomic JSON."""

from __future__ import annotations

import json
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from simulator.io.atomic import write_text


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so that a timer measures it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def environment(device: str) -> dict:
    """Where the numbers were taken."""
    return {
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": load_average(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "sionna": _sionna_version()},
    }


def load_average() -> float | None:
    """1-minute load average (other processes competing for the cores), where the OS reports it."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _sionna_version() -> str | None:
    for name in ("sionna", "sionna-no-rt"):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def write_json(data: dict, path: Path) -> None:
    """Write ``data`` to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=2) + "\n")
