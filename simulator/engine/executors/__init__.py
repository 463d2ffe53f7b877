"""Sweep executors: ``local`` (this process) and ``ray`` (tasks on a Ray cluster), by name in :data:`EXECUTORS`."""

from simulator.engine.executors.base import EXECUTORS, Executor, LinkJob
from simulator.engine.executors.local import LocalExecutor
from simulator.engine.executors.ray_executor import RayExecutor

EXECUTORS.update(local=LocalExecutor, ray=RayExecutor)

__all__ = ["EXECUTORS", "Executor", "LinkJob", "LocalExecutor", "RayExecutor"]
