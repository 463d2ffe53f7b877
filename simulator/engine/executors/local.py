"""The ``local`` executor: every pending point in this process, one link after the other."""

from __future__ import annotations

from simulator.core.executor import Executor


class LocalExecutor(Executor):
    """Evaluates links one after the other in this process, all of a link's points in lockstep."""

    description = "in this process"

    def run(self, scenario, jobs, on_point_done, on_progress, on_link_ready=lambda label, facts: None, links=None,
            channels=None) -> None:
        from simulator.config.assemble import build_channel, build_data, build_link
        from simulator.engine.runner import run_points

        links = links or {}
        data = build_data(scenario) if any(job.link.key not in links for job in jobs) else None
        channel_specs = {spec.key: spec for spec in scenario.channels}
        channels = dict(channels or {})
        for job in jobs:
            link = links.get(job.link.key)
            if link is None:
                link = build_link(job.link, scenario, data)
                on_link_ready(job.link.key, link.describe())
            for p in job.points:
                if p.channel not in channels:
                    channels[p.channel] = build_channel(channel_specs[p.channel], scenario.device)
            run_points(
                link, job.link.key, channels, job.points, scenario.link_metrics(job.link),
                scenario.monte_carlo, scenario.seed, scenario.device, on_point_done, on_progress,
            )
