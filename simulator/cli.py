"""The ``semsim`` command: ``run``, ``train``, ``report``, ``list``, ``validate`` (``--build``).

Bad input (scenario, paths, arguments) prints one line ``semsim: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from simulator import __version__
from simulator.core.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block) and exit status 2."""

    def error(self, message: str):  # noqa: D401  (argparse API)
        raise UserError(f"{message} (see 'semsim {self.prog.split()[-1]} --help')"
                        if " " in self.prog else f"{message} (see 'semsim --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="semsim", description="End-to-end wireless link simulator with a learned semantic PHY.")
    parser.add_argument("--version", action="version", version=f"semsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    run = sub.add_parser("run", help="run a scenario sweep (resumes an interrupted one)")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--output", "-o", help="output directory (default: the scenario's output)")
    run.add_argument("--executor", help="override the scenario's executor type (local, ray)")
    run.add_argument("--workers", type=_workers, metavar="N",
                     help="local executor: evaluate in N worker processes (the scenario's executor.workers)")
    bar = run.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show a progress bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="plain log lines instead of a progress bar")

    train = sub.add_parser("train", help="train (or load from the cache) every link's artifacts, without sweeping")
    train.add_argument("scenario", help="scenario YAML file")

    report = sub.add_parser("report", help="rebuild tables and plots of a results directory from results.csv")
    report.add_argument("directory")
    report.add_argument("--compare-to", metavar="LINK",
                        help="reference link of paired.md (default: the run's compare_to, else the first link)")

    sub.add_parser("list", help="list registered links, channels, data sources, metrics and executors")

    validate = sub.add_parser("validate", help="check a scenario file without running it")
    validate.add_argument("scenario")
    validate.add_argument("--build", action="store_true",
                          help="also build every link and channel (training missing artifacts, as 'semsim train' "
                               "does) and report each link's channel uses")
    for command in (run, train, validate):
        command.add_argument("--threads", type=_threads, metavar="N",
                             help="torch threads for training and evaluation (default: the scenario's threads, 1); "
                                  "results computed with other thread counts can differ in single examples")
    return parser


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"invalid worker count {text!r}; expected a whole number from 1 to 256")
    return int(text)


def _threads(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1024:
        raise argparse.ArgumentTypeError(f"invalid thread count {text!r}; expected a whole number from 1 to 1024")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    # `module:Class` types may live in the working directory, as with `python -m`
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        args = build_parser().parse_args(argv)
        return _dispatch(args)
    except UserError as err:
        if os.environ.get("SEMSIM_DEBUG") and err.__cause__ is not None:
            traceback.print_exception(err.__cause__)
        print(f"semsim: error: {' '.join(str(err).split())}", file=sys.stderr)
        return UserError.exit_status
    except KeyboardInterrupt:
        print("semsim: interrupted; finished points are saved, run the same command again to resume",
              file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "list":
        print(_listing())
        return 0
    if args.command == "report":
        directory = Path(args.directory)
        if not directory.is_dir():
            raise UserError(f"not a directory: {directory}")
        from simulator.io.report import report_directory

        for path in report_directory(directory, args.compare_to):
            print(path)
        return 0

    from simulator.config.scenario import load_scenario
    from simulator.core.numerics import torch_threads

    scenario = load_scenario(args.scenario)
    if args.threads is not None:
        scenario = scenario.model_copy(update={"threads": args.threads})
    if args.command == "validate":
        points = len(scenario.links) * len(scenario.channels) * len(scenario.snr_points())
        print(f"{args.scenario}: valid; {len(scenario.links)} links x {len(scenario.channels)} channels x "
              f"{len(scenario.snr_points())} SNR points = {points} points -> {scenario.output_dir()}")
        if args.build:
            with torch_threads(scenario.threads):
                for line in _build_components(scenario):
                    print(line, flush=True)
        return 0

    if args.command == "train":
        from simulator.config.assemble import build_data, build_link

        with torch_threads(scenario.threads):
            data = build_data(scenario)
            for spec in scenario.links:
                link = build_link(spec, scenario, data)
                print(f"semsim: {spec.key}: ready ({link.channel_uses} channel uses per example)")
        return 0

    from simulator.engine.sweep import run_scenario

    executor = scenario.executor_spec(args.executor)  # an unknown --executor is an error before anything runs
    if args.workers is not None:
        if executor.type != "local":
            raise UserError(f"--workers applies to the local executor; this run uses {executor.type!r} (its own "
                            "settings are in the scenario's executor)")
        from simulator.core.spec import ExecutorSpec

        scenario = scenario.model_copy(update={"executor": ExecutorSpec(type="local", workers=args.workers)})
    outcome = run_scenario(scenario, args.output, args.executor, args.progress, scenario_file=args.scenario)
    print(f"semsim: {outcome.computed} points computed, {outcome.reused} reused, {outcome.seconds:.1f} s")
    for name in ("results.csv", "table.md", "paper_table.md", "paired.md"):
        if (outcome.output_dir / name).exists():
            print(f"  {outcome.output_dir / name}")
    for png in sorted(outcome.output_dir.glob("*.png")):
        print(f"  {png}")
    return 0


def _build_components(scenario) -> list[str]:
    """Build every link (loading or training its artifacts) and channel of ``scenario`` and send one checked batch
    of 8 examples through each link and the first channel at the first SNR; one report line each.

    A component that cannot be built raises a :class:`UserError` naming it (:mod:`simulator.core.spec`), a link
    that breaks the protocol one from :mod:`simulator.core.checked_link`.
    """
    from simulator.config.assemble import build_components
    from simulator.core.checked_link import probe

    links, channels = build_components(scenario)
    channel_name, channel = next(iter(channels.items()))
    snr = scenario.snr_points()[0]
    uses = list(dict.fromkeys(link.channel_uses for link in links.values()))
    lines = []
    for label, link in links.items():
        values = probe(link, label, channel, snr, seed=scenario.seed)
        shown = ", ".join(f"{metric} {value:.3g}" for metric, value in values.items())
        lines.append(f"  link {label!r}: built, {link.channel_uses} channel uses per example; one batch of 8 on "
                     f"{channel_name} at {snr:g} dB passed every check ({shown})")
    for label, channel in channels.items():
        overheads = [f"{100 * channel.pilot_overhead(n):.1f} % at {n}" for n in uses if channel.pilot_overhead(n) > 0]
        lines.append(f"  channel {label!r}: built" + (f", pilot overhead {', '.join(overheads)} channel uses"
                                                     if overheads else ""))
    return lines


def _listing() -> str:
    import simulator.channels  # noqa: F401
    from simulator.core.channel import CHANNELS
    from simulator.core.executor import EXECUTORS
    from simulator.core.link import LINKS
    from simulator.core.metrics import METRICS
    from simulator.core.registry import describe
    from simulator.data.source import DATA_SOURCES

    lines = []
    for title, registry in (("links", LINKS), ("channels", CHANNELS), ("data sources", DATA_SOURCES)):
        lines.append(f"{title}:")
        for name, declared in registry.declare_all().items():  # declarations: no link implementation imported
            lines.append(f"  {name:<18} {describe(declared)}")
    lines.append("metrics:")
    lines.extend(f"  {name:<18} {m.kind}: {m.description or m.label}" for name, m in METRICS.load_all().items())
    lines.append("executors:")
    lines.extend(f"  {name:<18} {cls.description}" for name, cls in EXECUTORS.load_all().items())
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
