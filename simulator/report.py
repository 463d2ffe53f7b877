"""Human-readable views of ``results.csv``: pivot tables in ``table.md`` and one plot per metric."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from simulator.atomic import atomic_path, write_text  # noqa: E402
from simulator.metrics import METRICS  # noqa: E402
from simulator.results import load_results  # noqa: E402


def write_report(table: pd.DataFrame, out_dir: str | Path, link_facts: dict[str, dict] | None = None) -> list[Path]:
    """Write ``table.md`` and ``<metric>.png`` for every metric in ``table``; returns the paths written.

    ``link_facts`` (link label -> ``Link.describe()``) adds a table of the links' own facts.
    """
    out_dir = Path(out_dir)
    written = [out_dir / "table.md"]
    text = markdown_tables(table)
    if link_facts:
        facts = pd.DataFrame.from_dict(link_facts, orient="index").rename_axis("link").reset_index()
        text += f"\n## Link facts\n\n{facts.to_markdown(index=False, floatfmt='.4g')}\n"
    write_text(written[0], text)
    for metric in _ordered_metrics(table):
        path = out_dir / f"{metric}.png"
        plot_metric(table[table.metric == metric], metric, path)
        written.append(path)
    return written


def report_directory(out_dir: str | Path) -> list[Path]:
    """Rebuild tables and plots of a results directory from its ``results.csv`` (and ``links.json``)."""
    out_dir = Path(out_dir)
    facts_path = out_dir / "links.json"
    try:
        facts = json.loads(facts_path.read_text(encoding="utf-8")) if facts_path.is_file() else None
    except (OSError, json.JSONDecodeError):
        facts = None
    return write_report(load_results(out_dir / "results.csv"), out_dir, facts)


def _ordered_metrics(table: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(table.metric))
    return [m for m in METRICS if m in present] + [m for m in present if m not in METRICS]


def _cell(row: pd.Series) -> str:
    if math.isnan(row.value):
        return ""
    counts_errors = METRICS[row.metric].counts_errors if row.metric in METRICS else True
    fmt = "{:.2e}" if counts_errors else "{:.3f}"
    return f"{fmt.format(row.value)} [{fmt.format(row.ci_low)}, {fmt.format(row.ci_high)}]"


def markdown_tables(table: pd.DataFrame) -> str:
    """One pivot per metric (rows: SNR, columns: link / channel), then a table of the links' channel uses."""
    if table.empty:
        return "# Results\n\nNo finished points yet.\n"
    scenario = ", ".join(dict.fromkeys(table.scenario.astype(str)))
    confidence = table.confidence.iloc[0]
    parts = [f"# Results: {scenario}\n", f"Each cell: value [{confidence:.0%} confidence interval]. "
             "SNR is Es/N0 per complex channel use in dB.\n"]
    for metric in _ordered_metrics(table):
        rows = table[table.metric == metric].copy()
        rows["cell"] = rows.apply(_cell, axis=1)
        rows["column"] = rows.link + " / " + rows.channel
        columns = list(dict.fromkeys(rows.column))
        pivot = rows.pivot_table(index="snr_db", columns="column", values="cell", aggfunc="first")[columns]
        pivot.index.name = "SNR (dB)"
        label = METRICS[metric].label if metric in METRICS else metric
        parts.append(f"\n## {metric}: {label}\n\n{pivot.fillna('').to_markdown()}\n")
    points = table.drop_duplicates("point_id")  # a point has one row per metric
    summary = (
        points.groupby(["link", "channel"], sort=False)
        .agg(channel_uses=("channel_uses", "first"), pilot_overhead=("pilot_overhead", "first"),
             points=("snr_db", "nunique"), examples=("examples", "sum"), seconds=("seconds", "sum"))
        .reset_index()
    )
    summary["seconds"] = summary.seconds.round(2)
    parts.append(f"\n## Links\n\n{summary.to_markdown(index=False)}\n")
    return "".join(parts)


def plot_metric(rows: pd.DataFrame, metric: str, path: Path) -> None:
    """One panel per channel, one curve per link with its confidence interval; log y for error rates.

    Points with no errors are drawn as down-triangles at the upper end of their interval. The layout is fixed
    (no ``tight_layout``, which took half of a report's time): panels of 4.2 x 3.8 in and a legend column on
    the right.
    """
    channels = list(dict.fromkeys(rows.channel))
    counts_errors = METRICS[metric].counts_errors if metric in METRICS else True
    panel, legend_width, height = 4.2, 2.3, 3.8
    width = panel * len(channels) + legend_width
    fig, axes = plt.subplots(1, len(channels), figsize=(width, height), squeeze=False, sharex=True, sharey=True)
    fig.subplots_adjust(left=0.75 / width, right=1 - legend_width / width, bottom=0.13, top=0.91, wspace=0.06)
    labels: dict[str, object] = {}
    colors = {link: f"C{i % 10}" for i, link in enumerate(dict.fromkeys(rows.link))}  # one colour per link
    for ax, channel in zip(axes[0], channels, strict=True):
        for link, curve in rows[rows.channel == channel].groupby("link", sort=False):
            curve = curve.sort_values("snr_db")
            if counts_errors:
                # zero errors cannot be drawn on a log axis: mark the interval's upper end with a down-triangle
                zero = curve[curve.value <= 0]
                if not zero.empty:
                    labels.setdefault("no errors (interval top)", Line2D([], [], linestyle="none", marker="v",
                                                                         color="grey"))
                ax.plot(zero.snr_db, zero.ci_high, linestyle="none", marker="v", markersize=5, color=colors[link],
                        alpha=0.6)
                curve = curve[curve.value > 0]
            if curve.empty:
                continue
            (line,) = ax.plot(curve.snr_db, curve.value, marker="o", markersize=3.5, label=link, color=colors[link])
            ax.fill_between(curve.snr_db, curve.ci_low, curve.ci_high, alpha=0.2, color=colors[link])
            labels.setdefault(link, line)
        ax.set_title(channel)
        ax.set_xlabel("SNR, Es/N0 (dB)")
        ax.grid(True, which="both", alpha=0.3)
        if counts_errors:
            ax.set_yscale("log")
    axes[0][0].set_ylabel(METRICS[metric].label if metric in METRICS else metric)
    if labels:
        labels = {k: v for k, v in labels.items() if k in colors} | {k: v for k, v in labels.items() if k not in colors}
        fig.legend(list(labels.values()), list(labels), loc="center left", fontsize="small",
                   bbox_to_anchor=(1 - (legend_width - 0.1) / width, 0.5))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
