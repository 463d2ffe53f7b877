"""The ``ray`` executor: a sweep's points as tasks on a Ray cluster.

The driver first builds every link once in this process, so whatever a link trains is trained once and stored in
the artifact cache (:func:`simulator.io.artifacts.cache_root`). It then submits one Ray task per (link, channel,
chunk of ``chunk_points`` SNR points). A task rebuilds the scenario from its JSON form and the link from the
cache (a task that had to train reports it), evaluates its points with :func:`simulator.engine.runner.run_points`
and returns their :class:`~simulator.engine.runner.PointResult`. The driver hands each result to the sweep as its
task finishes, so ``results.csv`` grows exactly as with the local executor, and a rerun skips finished points.

Every random draw is seeded from the scenario seed and the point's identity (:mod:`simulator.core.seeding`), so the
numbers do not depend on the executor, on the chunking or on which worker ran a task. A task whose worker dies is
re-run by Ray up to ``max_retries`` times.

Ray is imported only when this executor runs; ``import simulator`` and local sweeps never import it.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from typing import Any

from pydantic import Field, field_validator

from simulator.core.errors import UserError
from simulator.core.executor import Executor
from simulator.core.params import Params
from simulator.engine.executors.tasks import build_missing_links, evaluate_chunk, split_points

INSTALL_HINT = "the ray executor needs Ray: install the ray extra (pip install 'semsim[ray]')"

_remote_task = None  # the Ray remote function, made on first use


def import_ray():
    """The ``ray`` module, or a one-line :class:`UserError` telling how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


RAY_ADDRESS = re.compile(r"^(auto|(ray://)?[A-Za-z0-9_.\[\]:-]+:[0-9]{1,5})$")


class RayExecutor(Executor):
    """One Ray task per (link, channel, chunk of SNR points); results stream back as tasks finish."""

    description = "tasks on a Ray cluster (executor: {type: ray, address: ...})"

    class Params(Params):
        address: str | None = Field(default=None, description="Ray cluster: auto, host:port or ray://host:port; "
                                    "unset: start a local Ray instance")
        num_cpus: float | None = Field(default=None, gt=0, le=1024, description="CPUs reserved by each task "
                                       "(default: the scenario's threads, which each task computes with)")
        num_gpus: float = Field(default=0, ge=0, le=64, description="GPUs reserved by each task")
        chunk_points: int = Field(default=1, ge=1, le=10_000, description="SNR points per task")
        max_retries: int = Field(default=3, ge=0, le=100, description="re-runs of a task whose worker died")
        local_cpus: int | None = Field(default=None, ge=1, le=4096,
                                       description="CPUs of the local Ray instance (default: all of this machine)")

        @field_validator("address")
        @classmethod
        def _address(cls, value: str | None) -> str | None:
            if value is not None and not RAY_ADDRESS.match(value):
                raise ValueError(f"invalid Ray address {value!r}; expected auto, host:port or ray://host:port")
            return value

    def run(self, scenario, jobs, on_point_done, on_progress, on_link_ready=lambda label, facts: None, links=None,
            channels=None) -> None:
        ray = import_ray()
        from simulator.io.artifacts import cache_root

        spec = self.params
        cache = str(cache_root().resolve())
        build_missing_links(scenario, jobs, links, on_link_ready)  # trained and cached once, before any task

        started_here = connect(ray, spec.address, spec.local_cpus, cache)
        refs: dict[Any, tuple[str, list]] = {}
        try:
            task = _task(ray).options(num_cpus=spec.num_cpus or scenario.threads, num_gpus=spec.num_gpus,
                                      max_retries=spec.max_retries, retry_exceptions=False)
            payload = ray.put(scenario.model_dump(mode="json"))
            for job in jobs:  # each task computes at the scenario's threads, as a local run does
                for chunk in split_points(job.points, spec.chunk_points):
                    refs[task.remote(payload, job.link.key, chunk, cache)] = (job.link.key, chunk)
            budget = scenario.monte_carlo.max_samples
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    label, chunk = refs.pop(ref)
                    results, trained = _get(ray, ref, label, chunk, spec.max_retries)
                    if trained:
                        warnings.warn(f"ray: link {label!r} trained {', '.join(trained)} on a worker; is the "
                                      f"cache {cache} shared with every node?", stacklevel=2)
                    for result in results:
                        on_point_done(result)
                    on_progress(budget * len(chunk))
        finally:
            for ref in refs:  # interrupted or failed: stop what is still queued or running
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001  (best effort; the task may have just finished)
                    pass
            if started_here:
                ray.shutdown()


def connect(ray, address: str | None, local_cpus: int | None, cache: str) -> bool:
    """Join ``address`` (or start a local instance) unless Ray is already initialised; ``True`` if this call
    connected (so the caller shuts it down)."""
    if ray.is_initialized():
        return False
    env = {"SEMSIM_CACHE_DIR": cache}
    if address is None:  # a local instance: workers also see the driver's own import paths (plug-in modules)
        paths = [p for p in sys.path if p and os.path.isdir(p) and not _is_installed(p)]
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    try:
        ray.init(address=address, num_cpus=local_cpus or (os.cpu_count() if address is None else None),
                 include_dashboard=False, runtime_env={"env_vars": env}, log_to_driver=True)
    except Exception as err:  # ConnectionError, RuntimeError, ValueError: whatever Ray raises for a bad cluster
        message = " ".join(str(err).split())[:300]
        raise UserError(f"ray: cannot connect to {address or 'a new local instance'}: {message}") from None
    return True


def _is_installed(path: str) -> bool:
    """Whether ``path`` belongs to the Python installation (standard library, site-packages) rather than to the
    user's own code."""
    real = os.path.realpath(path)
    for prefix in {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}:
        if real == prefix or real.startswith(prefix + os.sep):
            return True
    return False


def _get(ray, ref, label: str, chunk: list, retries: int):
    """A finished task's value; its failure as a one-line :class:`UserError`."""
    where = f"link {label!r} / {chunk[0].channel} / {', '.join(f'{p.snr_db:g}' for p in chunk)} dB"
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, UserError):
            raise UserError(str(cause)) from None
        raise UserError(f"ray: task {where} failed: {type(cause).__name__}: {cause}") from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.RayError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"ray: task {where} failed after {retries} retries: {first}") from None


def _task(ray):
    global _remote_task
    if _remote_task is None:
        _remote_task = ray.remote(evaluate_chunk)
    return _remote_task
