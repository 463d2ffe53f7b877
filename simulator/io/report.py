"""Human-readable views of ``results.csv``: tables and plots, all derived from the tidy table.

* ``table.md``: one pivot per metric (rows SNR, columns link / channel, value and interval), the links' channel
  uses and time, their facts, and their size and cost (parameters, MACs and FLOPs per image, channel uses);
* ``paper_table.md``: per channel and metric, one row per link and one column per SNR, values only, the layout
  of a paper's table;
* ``<metric>.png``: one panel per channel, one curve per link with its interval band, a marker and line style per
  link so curves stay apart in print;
* ``<metric>_vs_channel_uses.png``: when links of one family (labels that differ only in a trailing number, e.g.
  ``rkdsc-16`` and ``rkdsc-64``) ran at several channel-use budgets: the metric versus the budget at each SNR;
* ``paired.md`` and ``paired.csv``: every link against the reference link (``compare_to``), example by example,
  from the per-example outcomes in ``outcomes/`` (:mod:`simulator.core.paired`); only with two or more links and
  outcomes to pair.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import ScalarFormatter  # noqa: E402

from simulator.core.errors import UserError  # noqa: E402
from simulator.core.metrics import BUILTIN_ORDER, METRICS, Metric  # noqa: E402
from simulator.core.paired import PAIRED_COLUMNS, paired_table  # noqa: E402
from simulator.io.atomic import atomic_path, read_json, write_text  # noqa: E402
from simulator.io.outcomes import load_outcomes  # noqa: E402
from simulator.io.results import load_results  # noqa: E402

PAIRED_FILES = ("paired.md", "paired.csv")


def write_report(table: pd.DataFrame, out_dir: str | Path, link_facts: dict[str, dict] | None = None,
                 compare_to: str | None = None, display: dict[str, dict[str, str]] | None = None) -> list[Path]:
    """Write ``table.md``, ``paper_table.md``, ``<metric>.png`` for every metric in ``table`` and the paired
    comparison against ``compare_to`` (default: the first link); returns the paths written.

    ``link_facts`` (link name -> ``Link.describe()``) adds a table of the links' own facts. ``display``
    (``{"link": {name: label}, "channel": {name: label}}``, :meth:`Scenario.display_names`) gives the names the
    tables and plots show; ``paired.csv`` keeps the names of ``results.csv``.
    """
    out_dir = Path(out_dir)
    display = display or {}
    written = [out_dir / "table.md", out_dir / "paper_table.md"]
    shown = shown_names(table, display)
    link_facts = {display.get("link", {}).get(k, k): v for k, v in (link_facts or {}).items()}
    text = markdown_tables(shown)
    if link_facts:
        facts = pd.DataFrame.from_dict(link_facts, orient="index").rename_axis("link").reset_index()
        text += f"\n## Link facts\n\n{facts.to_markdown(index=False, floatfmt='.4g')}\n"
        text += complexity_table(link_facts)
    write_text(written[0], text)
    write_text(written[1], paper_tables(shown))
    for metric in _ordered_metrics(shown):
        path = out_dir / f"{metric}.png"
        plot_metric(shown[shown.metric == metric], metric, path)
        written.append(path)
        budget_path = out_dir / f"{metric}_vs_channel_uses.png"
        if plot_channel_use_sweep(shown[shown.metric == metric], metric, budget_path):
            written.append(budget_path)
    return written + write_paired(table, out_dir, compare_to, display)


def shown_names(table: pd.DataFrame, display: dict[str, dict[str, str]]) -> pd.DataFrame:
    """``table`` with its ``link`` and ``channel`` names replaced by their display labels (where they have one)."""
    renamed = {column: table[column].map(lambda name, m=mapping: m.get(name, name))
               for column, mapping in display.items() if mapping and column in table}
    return table.assign(**renamed) if renamed else table


def report_directory(out_dir: str | Path, compare_to: str | None = None) -> list[Path]:
    """Rebuild tables and plots of a results directory from its ``results.csv`` (and ``links.json``), and the
    paired comparison from ``outcomes/`` against ``compare_to``: by default the reference stored in
    ``manifest.json`` (the scenario's ``compare_to``), else the first link."""
    out_dir = Path(out_dir)
    facts = read_json(out_dir / "links.json") or None
    table = load_results(out_dir / "results.csv")
    links = list(dict.fromkeys(table.link))
    if compare_to is not None:
        where = "--compare-to"
    else:
        manifest = read_json(out_dir / "manifest.json")
        spec = manifest.get("scenario_spec") if isinstance(manifest.get("scenario_spec"), dict) else {}
        compare_to = manifest.get("compare_to") or spec.get("compare_to")
        where = f"{out_dir / 'manifest.json'}: compare_to"
    if compare_to is not None and links and compare_to not in links:
        raise UserError(f"{where}: unknown link {compare_to!r}; valid: {', '.join(links)}")
    display = read_json(out_dir / "manifest.json").get("display_names")
    return write_report(table, out_dir, facts, compare_to, display if isinstance(display, dict) else None)


def write_paired(table: pd.DataFrame, out_dir: str | Path, compare_to: str | None = None,
                 display: dict[str, dict[str, str]] | None = None) -> list[Path]:
    """``paired.csv`` and ``paired.md``: every link against ``compare_to`` (default: the first link) from the
    outcome files in ``out_dir/outcomes``; ``paired.md`` shows the ``display`` labels (see :func:`write_report`).
    With fewer than two links or nothing to pair, nothing is written and paired files left by an earlier report
    are removed (they would describe other results)."""
    out_dir = Path(out_dir)
    links = list(dict.fromkeys(table.link))
    paired = pd.DataFrame(columns=PAIRED_COLUMNS)
    if len(links) >= 2:
        reference = compare_to or links[0]
        confidence = float(table.confidence.iloc[0])
        paired = paired_table(table, lambda point_id, examples: load_outcomes(out_dir, point_id, examples),
                              reference, confidence)
    if paired.empty:
        for name in PAIRED_FILES:
            (out_dir / name).unlink(missing_ok=True)
        return []
    md, csv = out_dir / "paired.md", out_dir / "paired.csv"
    with atomic_path(csv) as tmp:
        paired.to_csv(tmp, index=False, float_format="%.10g")
    scenario = ", ".join(dict.fromkeys(table.scenario.astype(str)))
    shown = shown_names(paired, {**(display or {}), "reference": (display or {}).get("link", {})})
    write_text(md, paired_markdown(shown, scenario))
    return [md, csv]


def paired_markdown(paired: pd.DataFrame, scenario: str = "") -> str:
    """Per metric and channel: one row per link (other than the reference), one column per SNR; each cell the
    paired difference link - reference in percentage points with its interval, ``*`` when it excludes 0."""
    reference = paired.reference.iloc[0]
    confidence = float(paired.confidence.iloc[0])
    common_n = int(paired.n.mode().iloc[0])
    own_n = paired.n != common_n
    link_order = list(dict.fromkeys(paired.link))
    other_noise = sorted(set(paired.link[~paired.same_noise.astype(bool)]), key=link_order.index)
    notes = [
        f"Reference link: `{reference}`. Each cell: link minus `{reference}` in percentage points, with its "
        f"{confidence:.0%} paired interval (Newcombe's hybrid score interval for paired proportions, Newcombe 1998, "
        "method 10), over the examples both points share: every link saw the same images (or payloads) in the "
        "same order and, with equal channel uses, the same channel noise.",
        f"`*`: the interval excludes 0. n = {common_n:,} pairs per cell"
        + (", unless a cell shows its own n (a point that stopped early is paired over the examples both have)."
           if own_n.any() else "."),
        "SNR is Es/N0 per complex channel use in dB. McNemar's exact p-values and the counts of each 2x2 table are "
        "in `paired.csv`.",
    ]
    if any(metric_type(m).counts_errors() for m in set(paired.metric)):
        notes.append("For error rates (e.g. bler) a negative difference means fewer errors than the reference.")
    if other_noise:
        notes.append(f"†: {', '.join(f'`{link}`' for link in other_noise)}: other channel uses than the reference, "
                     "so the pairs share the examples but not the noise (still a paired interval, less sharp).")
    title = f"# Paired differences: {scenario}" if scenario else "# Paired differences"
    parts = [title + "\n\n" + "\n\n".join(notes) + "\n"]
    empty_cells = False
    for metric in dict.fromkeys(paired.metric):
        label = metric_type(metric).label or metric
        for channel in dict.fromkeys(paired.channel):
            rows = paired[(paired.metric == metric) & (paired.channel == channel)]
            if rows.empty:
                continue
            decimals = 1 if rows[["diff", "low", "high"]].abs().to_numpy().max() >= 0.01 else 2
            rows = rows.assign(
                cell=[_paired_cell(r, decimals, bool(own_n.loc[i])) for i, r in rows.iterrows()],
                row=[f"{r.link} †" if not r.same_noise else r.link for r in rows.itertuples()],
            )
            pivot = rows.pivot_table(index="row", columns="snr_db", values="cell", aggfunc="first", sort=False)
            pivot = pivot.loc[list(dict.fromkeys(rows.row))]
            pivot.columns = [f"{c:g} dB" for c in pivot.columns]
            pivot.index.name = "link"
            empty_cells |= bool(pivot.isna().to_numpy().any())
            parts.append(f"\n## {metric}, {channel}: {label}, link - {reference} (percentage points)\n\n"
                         f"{pivot.fillna('').to_markdown(disable_numparse=True)}\n")
    if empty_cells:
        parts.append("\nEmpty cells: one of the two points has no outcomes file (for example it was computed by a "
                     "semsim that did not keep outcomes).\n")
    return "".join(parts)


def _paired_cell(row: pd.Series, decimals: int, show_n: bool) -> str:
    def pp(value: float) -> str:
        return f"{round(value * 100, decimals) + 0.0:+.{decimals}f}"

    cell = f"{pp(row['diff'])} [{pp(row.low)}, {pp(row.high)}]{'*' if row.excludes_zero else ''}"
    return f"{cell} (n={int(row.n):,})" if show_n else cell


class _UnknownMetric(Metric):
    """Display defaults for a metric in ``results.csv`` whose type cannot be resolved here (a plug-in metric that
    is not installed): linear axis, plain numbers."""

    kind = "mean"


def metric_type(name: str) -> type[Metric]:
    """The registered type of metric ``name`` (for labels, axes and formats), or neutral display defaults."""
    return METRICS.find(name) or _UnknownMetric


def _ordered_metrics(table: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(table.metric))
    return [m for m in BUILTIN_ORDER if m in present] + sorted(m for m in present if m not in BUILTIN_ORDER)


def _number_format(metric: str, percent: bool = False) -> str:
    """Error rates in scientific notation, accuracy-like proportions as fractions (or %), means with 4 digits."""
    kind = metric_type(metric)
    if kind.counts_errors():
        return "{:.2e}"
    if kind.kind == "proportion":
        return "{:.1%}" if percent and kind.percent else "{:.3f}"
    return "{:.4g}"


def _cell(row: pd.Series) -> str:
    if math.isnan(row.value):
        return ""
    fmt = _number_format(row.metric)
    low, high = ("", "") if math.isnan(row.ci_low) else (fmt.format(row.ci_low), fmt.format(row.ci_high))
    return f"{fmt.format(row.value)} [{low}, {high}]"


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
        label = metric_type(metric).label or metric
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


#: the comparison keys of ``Link.describe()`` (see simulator/link.py), in table order
COMPLEXITY_KEYS = ("tx_parameters", "tx_macs", "rx_parameters", "rx_macs")


def complexity_table(link_facts: dict[str, dict]) -> str:
    """Markdown table of each link's channel uses, parameters and cost per image (transmitter and receiver).

    FLOPs are counted as 2 x MACs of the conv and linear layers. Links that report none of the keys are listed
    with empty cells.
    """
    def count(value) -> str:
        return "" if value is None else f"{int(value):,}"

    rows = []
    for link, facts in link_facts.items():
        row = {"link": link, "type": facts.get("type", ""), "channel uses": count(facts.get("channel_uses"))}
        for side in ("tx", "rx"):
            macs = facts.get(f"{side}_macs")
            row[f"{side} parameters"] = count(facts.get(f"{side}_parameters"))
            row[f"{side} FLOPs/image"] = count(2 * macs if macs is not None else None)
        rows.append(row)
    frame = pd.DataFrame(rows)
    return ("\n## Parameters, FLOPs and channel uses\n\nFLOPs per image = 2 x multiply-accumulates of conv and "
            "linear layers; tx = transmitter (semantic/source encoder and channel encoder), rx = receiver.\n\n"
            f"{frame.to_markdown(index=False, disable_numparse=True)}\n")


def paper_tables(table: pd.DataFrame) -> str:
    """Per channel and metric: rows are links, columns SNR points; accuracy in percent, error rates as 1.2e-3."""
    if table.empty:
        return "# Results\n\nNo finished points yet.\n"
    parts = [f"# {', '.join(dict.fromkeys(table.scenario.astype(str)))}: paper layout\n",
             "Rows: links; columns: SNR (Es/N0 per complex channel use, dB). Accuracy in %.\n"]
    metrics = _ordered_metrics(table)
    for metric in sorted(metrics, key=lambda m: metric_type(m).counts_errors()):  # accuracy and means first
        fmt = _number_format(metric, percent=True).replace(".2e", ".1e")
        for channel in dict.fromkeys(table.channel):
            rows = table[(table.metric == metric) & (table.channel == channel)]
            if rows.empty:
                continue
            pivot = rows.pivot_table(index="link", columns="snr_db", values="value", aggfunc="first", sort=False)
            pivot = pivot.loc[list(dict.fromkeys(rows.link))]
            pivot.columns = [f"{c:g}" for c in pivot.columns]
            cells = pivot.map(lambda v, fmt=fmt: "" if math.isnan(v) else fmt.format(v).rstrip("%"))
            parts.append(f"\n## {metric}, {channel}\n\n{cells.to_markdown(disable_numparse=True)}\n")
    return "".join(parts)


def link_family(label: str) -> str:
    """Links whose labels differ only in a trailing number (``rkdsc-16``, ``rkdsc-64``) form one family."""
    return re.sub(r"[-_.]?\d+$", "", label) or label


def plot_channel_use_sweep(rows: pd.DataFrame, metric: str, path: Path) -> bool:
    """The metric versus channel uses per image, one panel per channel, one curve per family and SNR.

    Drawn only when some family ran at two or more budgets; returns whether the plot was written.
    """
    rows = rows.assign(family=rows.link.map(link_family))
    budgets = rows.groupby("family").channel_uses.nunique()
    swept = budgets[budgets > 1].index
    if swept.empty:
        return False
    rows = rows[rows.family.isin(swept)].sort_values("snr_db", kind="stable")
    channels = list(dict.fromkeys(rows.channel))
    families, snrs = list(dict.fromkeys(rows.family)), sorted(set(rows.snr_db))
    log_y = metric_type(metric).log_scale
    fig, axes = _panels(len(channels), sharex=False)
    handles: dict[str, object] = {}
    for ax, channel in zip(axes[0], channels, strict=True):
        for (family, snr), curve in rows[rows.channel == channel].groupby(["family", "snr_db"], sort=False):
            curve = curve.sort_values("channel_uses")
            label = f"{family}, {snr:g} dB"
            f, k = families.index(family), snrs.index(snr)  # colour and marker per family, line style per SNR
            (line,) = ax.plot(curve.channel_uses, curve.value, color=palette(len(families))[f],
                              marker=MARKERS[f % len(MARKERS)],
                              linestyle=LINESTYLES[k % len(LINESTYLES)], label=label)
            ax.fill_between(curve.channel_uses, curve.ci_low, curve.ci_high, alpha=0.15, color=line.get_color())
            handles.setdefault(label, line)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 4, 8, 16 rather than 2^2, 2^3, 2^4
        _style_panel(ax, channel, "channel uses per example", log_y)
    _finish(fig, axes, metric, handles, path)
    return True


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def palette(count: int) -> list:
    """``count`` colours: matplotlib's 10 default colours, or 20 distinct ones (tab20) for 11-20 curves, beyond
    which they repeat (markers and line styles still tell the curves apart)."""
    cmap = plt.get_cmap("tab10" if count <= 10 else "tab20")
    size = 10 if count <= 10 else 20
    return [cmap(i % size) for i in range(count)]
LINESTYLES = ("-", "--", "-.", ":")
#: figure layout in inches: fixed (no ``tight_layout``, which took half of a report's time)
PANEL_WIDTH, LEGEND_WIDTH, HEIGHT = 4.2, 2.3, 3.8


def _panels(count: int, sharex: bool = True):
    """A row of ``count`` panels sharing the y axis, with a legend column on the right."""
    width = PANEL_WIDTH * count + LEGEND_WIDTH
    fig, axes = plt.subplots(1, count, figsize=(width, HEIGHT), squeeze=False, sharex=sharex, sharey=True)
    fig.subplots_adjust(left=0.75 / width, right=1 - LEGEND_WIDTH / width, bottom=0.13, top=0.91, wspace=0.06)
    return fig, axes


def _style_panel(ax, title: str, xlabel: str, log_y: bool) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(True, which="both", alpha=0.3)
    if log_y:
        ax.set_yscale("log")


def _finish(fig, axes, metric: str, handles: dict[str, object], path: Path) -> None:
    """Y label, the legend column, and the PNG written atomically."""
    kind = metric_type(metric)
    scale = "log scale" if kind.log_scale else "linear scale"
    axes[0][0].set_ylabel(f"{kind.label or metric} ({scale})")
    if handles:
        width = fig.get_size_inches()[0]
        fig.legend(list(handles.values()), list(handles), loc="center left", fontsize="small",
                   bbox_to_anchor=(1 - (LEGEND_WIDTH - 0.1) / width, 0.5))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def plot_metric(rows: pd.DataFrame, metric: str, path: Path) -> None:
    """One panel per channel, one curve per link with its confidence interval; log y for error rates.

    Points with no errors are drawn as down-triangles at the upper end of their interval.
    """
    channels = list(dict.fromkeys(rows.channel))
    log_y = metric_type(metric).log_scale
    fig, axes = _panels(len(channels))
    labels: dict[str, object] = {}
    links = list(dict.fromkeys(rows.link))
    colors = dict(zip(links, palette(len(links)), strict=True))  # one colour per link
    for ax, channel in zip(axes[0], channels, strict=True):
        for link, curve in rows[rows.channel == channel].groupby("link", sort=False):
            curve = curve.sort_values("snr_db")
            if log_y:
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
            index = list(colors).index(link)
            (line,) = ax.plot(curve.snr_db, curve.value, marker=MARKERS[index % len(MARKERS)], markersize=4,
                              linestyle=LINESTYLES[index // len(MARKERS) % len(LINESTYLES)], label=link,
                              color=colors[link])
            ax.fill_between(curve.snr_db, curve.ci_low, curve.ci_high, alpha=0.2, color=colors[link])
            labels.setdefault(link, line)
        _style_panel(ax, channel, "SNR, Es/N0 (dB)", log_y)
    # links first, then marker explanations
    labels = {k: v for k, v in labels.items() if k in colors} | {k: v for k, v in labels.items() if k not in colors}
    _finish(fig, axes, metric, labels, path)
