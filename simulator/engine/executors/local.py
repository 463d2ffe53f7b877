"""The ``local`` executor: the pending points on this machine, in this process or in ``workers`` processes.

With ``workers: 1`` (the default) every link's points run in this process, one link after the other, all of a
link's points in lockstep (:func:`simulator.engine.runner.run_points`). With ``workers: N`` the points are split
into tasks of one link on one channel and run by N worker processes (:mod:`simulator.engine.executors.tasks`),
each computing at the scenario's ``threads``; the numbers are the same as with one process. This is how a sweep
uses several cores without intra-op threads, which oversubscribe a shared machine (see the README's
"Threads and workers").
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from pydantic import Field

from simulator.core.errors import UserError
from simulator.core.executor import Executor
from simulator.core.params import Params
from simulator.engine.executors.tasks import build_missing_links, evaluate_chunk, split_points


class LocalExecutor(Executor):
    """Evaluates the points on this machine: in this process, or in ``workers`` worker processes."""

    description = "on this machine: in this process, or in `workers` processes (executor: {type: local, workers: 2})"

    class Params(Params):
        workers: int = Field(default=1, ge=1, le=256, description="worker processes; 1: this process only")

    def run(self, scenario, jobs, on_point_done, on_progress, on_link_ready=lambda label, facts: None, links=None,
            channels=None) -> None:
        from simulator.config.assemble import build_channel

        links = build_missing_links(scenario, jobs, links, on_link_ready)
        if self.params.workers > 1 and jobs:
            self._run_in_workers(scenario, jobs, on_point_done, on_progress)
            return

        from simulator.engine.runner import run_points

        channel_specs = {spec.key: spec for spec in scenario.channels}
        channels = dict(channels or {})
        for job in jobs:
            for p in job.points:
                if p.channel not in channels:
                    channels[p.channel] = build_channel(channel_specs[p.channel], scenario.device)
            run_points(
                links[job.link.key], job.link.key, channels, job.points, scenario.link_metrics(job.link),
                scenario.monte_carlo, scenario.seed, scenario.device, on_point_done, on_progress,
            )

    def _run_in_workers(self, scenario, jobs, on_point_done, on_progress) -> None:
        """One task per (link, channel) with all its pending SNR points, on a pool of ``workers`` processes;
        results are reported as tasks finish. Ctrl-C or a failed task cancels what has not started."""
        from simulator.io.artifacts import cache_root

        cache = str(cache_root().resolve())
        payload = scenario.model_dump(mode="json")
        tasks = [(job.link.key, chunk) for job in jobs for chunk in split_points(job.points, len(job.points))]
        workers = min(self.params.workers, len(tasks))
        budget = scenario.monte_carlo.max_samples
        # spawn: a fresh interpreter per worker (forking a process that holds torch threads is unsafe); it gets
        # this process's sys.path, so module:Class plug-ins import there too
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(cache,))
        try:
            pending = {pool.submit(evaluate_chunk, payload, label, chunk, cache): (label, chunk)
                       for label, chunk in tasks}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    label, chunk = pending.pop(future)
                    try:
                        results, _trained = future.result()
                    except UserError:
                        raise
                    except Exception as err:
                        raise UserError(f"link {label!r}: a worker process failed on {chunk[0].channel}: "
                                        f"{type(err).__name__}: {' '.join(str(err).split())[:300]}") from err
                    for result in results:
                        on_point_done(result)
                    on_progress(budget * len(chunk))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _worker_init(cache: str) -> None:
    os.environ["SEMSIM_CACHE_DIR"] = cache
