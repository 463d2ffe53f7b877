"""Comparison views: MAC counts of known layers, paper-layout tables, the complexity table, channel-use plots."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from links.complexity import count_macs
from simulator.io.report import complexity_table, link_family, paper_tables, plot_channel_use_sweep, write_report
from simulator.io.results import COLUMNS


def test_attention_macs_are_its_projections_and_its_two_products():
    embed, length = 8, 5
    layer = nn.MultiheadAttention(embed, 2, batch_first=True)
    macs = count_macs(layer, call=lambda m: m(*(3 * [torch.zeros(1, length, embed)])))
    assert macs == 4 * length * embed * embed + 2 * length * length * embed
    block = nn.TransformerEncoderLayer(embed, 2, 16, batch_first=True)
    feed_forward = length * embed * 16 * 2
    assert count_macs(block, (length, embed)) == macs + feed_forward


def _rows(link: str, uses: int, snrs: list[float], metric: str = "accuracy", value: float = 0.5) -> list[dict]:
    return [dict.fromkeys(COLUMNS) | {"scenario": "s", "link": link, "channel": "awgn", "snr_db": snr,
                                        "metric": metric, "value": value + 0.01 * i, "ci_low": 0.4, "ci_high": 0.7,
                                        "confidence": 0.95, "count": 1, "trials": 2, "examples": 2,
                                        "channel_uses": uses, "pilot_overhead": 0.0, "seconds": 0.1,
                                        "point_id": f"{link}{snr}{metric}"}
            for i, snr in enumerate(snrs)]


def test_paper_table_has_a_row_per_link_and_a_column_per_snr():
    table = pd.DataFrame(_rows("rkdsc", 16, [0.0, 10.0]) + _rows("separate", 16, [0.0, 10.0], value=0.25)
                         + _rows("separate", 16, [0.0, 10.0], metric="bler", value=0.002))
    text = paper_tables(table)
    assert "## accuracy, awgn" in text and "## bler, awgn" in text
    accuracy = text.split("## accuracy, awgn")[1].split("##")[0]
    header, _, rkdsc, separate = [line for line in accuracy.splitlines() if line.startswith("|")]
    assert [c.strip() for c in header.split("|")[2:4]] == ["0", "10"]
    assert [c.strip() for c in rkdsc.split("|")[1:4]] == ["rkdsc", "50.0", "51.0"]  # percent
    assert [c.strip() for c in separate.split("|")[1:4]] == ["separate", "25.0", "26.0"]
    assert "2.0e-03" in text.split("## bler, awgn")[1]


def test_complexity_table_reports_flops_as_twice_the_macs():
    text = complexity_table({"a": {"type": "rkdsc", "channel_uses": 16, "tx_parameters": 1000, "tx_macs": 5000,
                                   "rx_parameters": 10, "rx_macs": 7},
                             "b": {"type": "digital", "channel_uses": 512}})
    row_a = next(line for line in text.splitlines() if line.startswith("| a "))
    cells = [c.strip() for c in row_a.split("|")[1:-1]]
    assert cells == ["a", "rkdsc", "16", "1,000", "10,000", "10", "14"]
    assert "| b " in text


def test_channel_use_plot_only_for_families_swept_over_budgets(tmp_path):
    assert link_family("rkdsc-16") == "rkdsc" and link_family("deepjscc_64") == "deepjscc"
    assert link_family("separate") == "separate"
    one_budget = pd.DataFrame(_rows("rkdsc-16", 16, [0.0]) + _rows("separate-16", 16, [0.0]))
    assert not plot_channel_use_sweep(one_budget, "accuracy", tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
    swept = pd.DataFrame(_rows("rkdsc-16", 16, [0.0]) + _rows("rkdsc-64", 64, [0.0]))
    written = write_report(swept, tmp_path)
    assert tmp_path / "accuracy_vs_channel_uses.png" in written
    assert (tmp_path / "accuracy_vs_channel_uses.png").stat().st_size > 0
    assert (tmp_path / "paper_table.md").read_text().count("| rkdsc-") == 2


def test_curve_colours_do_not_repeat_below_twenty_links():
    from simulator.io.report import palette

    for count in (1, 10, 11, 20):
        assert len(set(palette(count))) == count
    assert len(palette(25)) == 25
