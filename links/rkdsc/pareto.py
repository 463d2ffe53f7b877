"""What the search buys: students found by KDL-DARTS at several ``lambda_complexity`` against random genotypes.

Every student is distilled by the same stage 1 from the same teacher (the settings of one link of a scenario), so
the only difference is how its architecture was chosen. For each student the study records its parameters, its
multiply-accumulates per image and its clean test accuracy (``head(student(x))`` on the test split) with a
Wilson interval, and marks the Pareto front (no other student is at least as small and at least as accurate,
and better in one of the two). Trained students are cached like every pipeline stage, so a rerun only
rebuilds the tables::

    python -m links.rkdsc.pareto scenarios/ablation.yaml --link rkdsc --lambdas 0 0.3 1 3 10 --random 5 \\
        --output docs/comparison/pareto

writes ``pareto.csv`` (one row per student), ``pareto.md`` and ``pareto.png`` (accuracy versus parameters).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from links.rkdsc.params import PipelineParams  # noqa: E402
from links.rkdsc.pipeline import prepare_student
from links.teacher_stage import prepare_teacher  # noqa: E402
from simulator.core.errors import UserError  # noqa: E402
from simulator.core.metrics import proportion_interval  # noqa: E402
from simulator.data.source import DataSource  # noqa: E402
from simulator.io.atomic import atomic_path, write_text  # noqa: E402

DEFAULT_LAMBDAS = (0.0, 0.3, 1.0, 3.0, 10.0)


def student_study(params: PipelineParams, data: DataSource, data_config: dict, lambdas=DEFAULT_LAMBDAS,
                  random_seeds=range(5), device: str = "cpu") -> pd.DataFrame:
    """One row per student: ``kind`` (searched / random / teacher), ``lambda_complexity`` (searched),
    ``random_seed`` (random), ``parameters``, ``macs``, ``accuracy`` with ``ci_low``/``ci_high`` (95 % Wilson on
    the test split), ``pareto`` (on the front of all students) and ``artifact`` (the student's cache key)."""
    teacher = prepare_teacher(params.teacher, data, data_config, params.train_seed, device)
    n = len(data.split("test"))
    variants = [("searched", {"mode": "darts", "lambda_complexity": float(lam)}) for lam in lambdas]
    variants += [("random", {"mode": "random", "random_seed": int(seed)}) for seed in random_seeds]
    rows = []
    for kind, search in variants:
        variant = params.model_copy(update={"search": params.search.model_copy(update=search)})
        stage = prepare_student(variant, teacher, data, device)
        metrics = stage.report["student"]
        correct = round(metrics["clean_test_accuracy"] * n)
        low, high = proportion_interval(correct, n)
        rows.append({"kind": kind, "lambda_complexity": search.get("lambda_complexity"),
                     "random_seed": search.get("random_seed"), "parameters": metrics["parameters"],
                     "macs": metrics["macs"], "accuracy": correct / n, "ci_low": low, "ci_high": high,
                     "artifact": stage.artifacts["student"].key})
    table = pd.DataFrame(rows)
    table["pareto"] = [_on_front(table, i) for i in range(len(table))]
    t = teacher.report["teacher"]
    correct = round(t["test_accuracy"] * n)
    low, high = proportion_interval(correct, n)
    teacher_row = {"kind": "teacher", "parameters": t["parameters"], "macs": t.get("macs"), "accuracy": correct / n,
                   "ci_low": low, "ci_high": high, "pareto": False, "artifact": teacher.artifact.key}
    return pd.concat([table, pd.DataFrame([teacher_row])], ignore_index=True)


def _on_front(table: pd.DataFrame, i: int) -> bool:
    me = table.iloc[i]
    others = table.drop(index=table.index[i])
    dominated = ((others.parameters <= me.parameters) & (others.accuracy >= me.accuracy)
                 & ((others.parameters < me.parameters) | (others.accuracy > me.accuracy)))
    return not bool(dominated.any())


def write_study(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """``pareto.csv``, ``pareto.md`` and ``pareto.png`` in ``out_dir`` (written atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "pareto.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    shown = table.assign(
        setting=[f"lambda {r.lambda_complexity:g}" if r.kind == "searched" else
                 f"seed {int(r.random_seed)}" if r.kind == "random" else "" for r in table.itertuples()],
        accuracy=[f"{100 * r.accuracy:.1f} [{100 * r.ci_low:.1f}, {100 * r.ci_high:.1f}]"
                  for r in table.itertuples()],
        parameters=[f"{int(v):,}" for v in table.parameters],
        macs=["" if pd.isna(v) else f"{int(v):,}" for v in table.macs],
        pareto=["yes" if v else "" for v in table.pareto],
    )[["kind", "setting", "parameters", "macs", "accuracy", "pareto"]]
    write_text(out / "pareto.md", "# Students: KDL-DARTS versus random genotypes\n\n"
               "Every student distilled by the same stage 1 from the same teacher. Accuracy: clean top-1 accuracy "
               "on the test split (%), 95 % Wilson interval; pareto: no other student is as small and as "
               "accurate.\n\n" + shown.to_markdown(index=False, disable_numparse=True) + "\n")
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for kind, marker in (("searched", "o"), ("random", "s"), ("teacher", "*")):
        rows = table[table.kind == kind]
        if rows.empty:
            continue
        ax.errorbar(rows.parameters, 100 * rows.accuracy, yerr=[100 * (rows.accuracy - rows.ci_low),
                                                                100 * (rows.ci_high - rows.accuracy)],
                    fmt=marker, capsize=3, label=kind, markersize=8 if kind == "teacher" else 6)
        if kind == "searched":
            for r in rows.itertuples():
                ax.annotate(f"λ={r.lambda_complexity:g}", (r.parameters, 100 * r.accuracy), fontsize=7,
                            xytext=(4, -10), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("clean top-1 accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.13, top=0.95)
    with atomic_path(out / "pareto.png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return [out / "pareto.csv", out / "pareto.md", out / "pareto.png"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m links.rkdsc.pareto", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", help="scenario YAML file; its data source and one link's training settings")
    parser.add_argument("--link", help="label of the link whose teacher/search/stage1 settings to use "
                        "(default: the first link that has them)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=list(DEFAULT_LAMBDAS))
    parser.add_argument("--random", type=int, default=5, help="random genotypes (seeds 0..N-1)")
    parser.add_argument("--output", "-o", default="results/pareto")
    args = parser.parse_args(argv)
    try:
        table = _run(args)
    except UserError as err:
        print(f"pareto: error: {' '.join(str(err).split())}", file=sys.stderr)
        return UserError.exit_status
    for path in write_study(table, args.output):
        print(path)
    return 0


def _run(args) -> pd.DataFrame:
    from simulator.config.assemble import build_data
    from simulator.config.scenario import load_scenario
    from simulator.core.numerics import torch_threads

    if args.random < 0 or any(lam < 0 for lam in args.lambdas):
        raise UserError("--random and --lambdas must be >= 0")
    scenario = load_scenario(args.scenario)
    fields = set(PipelineParams.model_fields) - {"stage2", "cat"}
    candidates = [s for s in scenario.links if fields <= set(type(s.params).model_fields)]
    chosen = [s for s in candidates if args.link is None or s.key == args.link]
    if not chosen:
        valid = ", ".join(s.key for s in candidates) or "none"
        raise UserError(f"--link: no link {args.link!r} with teacher/search/stage1 settings; valid: {valid}")
    spec = chosen[0]
    params = PipelineParams(**{name: getattr(spec.params, name) for name in fields})
    data = build_data(scenario)
    if data is None:
        raise UserError(f"{args.scenario}: the scenario has no data source")
    config = data.key_config()  # the very key material the links use
    with torch_threads(scenario.threads):
        return student_study(params, data, config, args.lambdas, range(args.random), scenario.device)


if __name__ == "__main__":
    sys.exit(main())
