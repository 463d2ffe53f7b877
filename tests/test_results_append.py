"""Finished points are appended to ``results.csv`` (one write each, not a rewrite of the whole file): appends that a
crash cuts short never break the next load or resume, and the file ends in plan order."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import interrupted_after, scenario_dict

import simulator.engine.sweep as sweep
import simulator.io.results as results_io
from simulator.core.errors import UserError
from simulator.io.results import COLUMNS, append_results, load_results, save_results

PLAN_SNR = [9.0, 6.0, 3.0, 0.0]
# 3 and 0 dB meet target_errors in the first batch (in that order), 6 dB in the second, 9 dB later: points finish
# in the order 3, 0, 6, 9 dB, not in plan (file) order.
ORDERED = scenario_dict(snr_db=PLAN_SNR, monte_carlo={"batch_size": 10, "max_samples": 200, "target_errors": 100})
FINISH_SNR = [3.0, 0.0, 6.0, 9.0]
NUMBERS = ["link", "channel", "snr_db", "metric", "value", "ci_low", "ci_high", "count", "trials", "examples",
           "point_id"]


def snrs(out) -> list[float]:
    """The SNR of each point in ``results.csv``, in file order."""
    return list(load_results(out / "results.csv").snr_db.drop_duplicates())


def table(rows: int) -> pd.DataFrame:
    """A results table of ``rows`` rows (values of each column's kind, not of a real point)."""
    return pd.DataFrame([{
        "scenario": "t", "link": "qpsk", "channel": "awgn", "snr_db": float(i), "ebno_db": None, "metric": "ber",
        "value": 1 / (i + 3), "ci_low": 0.01, "ci_high": 0.9, "confidence": 0.95, "count": i, "trials": 128,
        "examples": 1, "channel_uses": 64, "pilot_overhead": 0.0, "seconds": 0.0123, "point_id": f"{i:016x}",
    } for i in range(rows)], columns=COLUMNS)


def test_appends_write_the_lines_a_whole_save_writes(tmp_path):
    whole = tmp_path / "whole.csv"
    save_results(table(3), whole)
    path = tmp_path / "results.csv"
    for i in range(3):
        append_results(table(3).iloc[i:i + 1], path)  # the first creates the file with its header
    assert path.read_bytes() == whole.read_bytes()
    assert not list(tmp_path.glob(".*.tmp*"))


@pytest.mark.parametrize("torn", [b"t,qpsk,aw", b"t,qpsk,awgn,3,,ber,0.1666666667,0.01,0.9,0.95,3,128,1,64,0,0.01"])
def test_a_partial_last_line_is_ignored_and_cut_before_the_next_append(tmp_path, torn):
    path = tmp_path / "results.csv"
    save_results(table(2), path)
    with open(path, "ab") as f:
        f.write(torn)  # an append cut short, as by a crash: no line end
    clean = tmp_path / "clean.csv"
    save_results(table(2), clean)
    pd.testing.assert_frame_equal(load_results(path), load_results(clean))
    append_results(table(4).iloc[2:], path)
    whole = tmp_path / "whole.csv"
    save_results(table(4), whole)
    assert path.read_bytes() == whole.read_bytes()


def test_an_append_to_a_file_cut_down_to_a_partial_header_restores_the_header(tmp_path):
    path = tmp_path / "results.csv"
    path.write_bytes(b"scenario,li")
    with pytest.raises(UserError, match="not a readable CSV file"):
        load_results(path)
    append_results(table(1), path)
    assert len(load_results(path)) == 1


def test_points_are_appended_as_they_finish_and_saved_in_plan_order(run_dict, tmp_path, monkeypatch):
    appended, saved = [], []
    real_append, real_save = sweep.append_results, sweep.save_results

    def spy_append(rows, path):
        real_append(rows, path)
        appended.append((float(rows.snr_db.iloc[0]), path.read_text()))

    def spy_save(rows, path):
        saved.append(path.name)
        real_save(rows, path)

    monkeypatch.setattr(sweep, "append_results", spy_append)
    monkeypatch.setattr(sweep, "save_results", spy_save)
    out = tmp_path / "out"
    run_dict(ORDERED, out)

    assert [snr for snr, _ in appended] == FINISH_SNR
    for (_, before), (_, after) in zip(appended, appended[1:], strict=False):
        assert after.startswith(before)  # each point only adds its lines
    assert saved == ["results.csv"]  # the only whole-file write: the end of the run, in plan order
    final = (out / "results.csv").read_text()
    assert snrs(out) == PLAN_SNR
    assert final.splitlines()[0] == ",".join(COLUMNS)
    assert sorted(final.splitlines()) == sorted(appended[-1][1].splitlines())  # same lines, only reordered


def test_an_interrupted_run_is_left_in_plan_order(run_dict, tmp_path):
    out = tmp_path / "out"
    with interrupted_after(3), pytest.raises(KeyboardInterrupt):
        run_dict(ORDERED, out)
    assert snrs(out) == [6.0, 3.0, 0.0]  # finished 3, 0 and 6 dB, in that order
    assert not list(out.glob(".*.tmp*"))


def killed(monkeypatch) -> None:
    """Make a sweep end as a killed process does: nothing of its clean-up runs (no manifest update, no reorder)."""
    monkeypatch.setattr(sweep, "_record_end", lambda *args: None)
    monkeypatch.setattr(sweep, "_restore_plan_order", lambda *args: None)


def test_a_killed_run_is_put_in_plan_order_by_the_next_start(run_dict, tmp_path, monkeypatch):
    run_dict(ORDERED, tmp_path / "full")
    reference = load_results(tmp_path / "full" / "results.csv")
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        killed(patch)
        with interrupted_after(3), pytest.raises(KeyboardInterrupt):
            run_dict(ORDERED, out)
        assert snrs(out) == [3.0, 0.0, 6.0]  # finish order
        with interrupted_after(0), pytest.raises(KeyboardInterrupt):  # killed again before a point is appended
            run_dict(ORDERED, out)
        assert snrs(out) == [6.0, 3.0, 0.0]  # rewritten in plan order when the run started
    outcome = run_dict(ORDERED, out)
    assert (outcome.reused, outcome.computed) == (3, 1)
    assert snrs(out) == PLAN_SNR
    pd.testing.assert_frame_equal(load_results(out / "results.csv")[NUMBERS], reference[NUMBERS], check_exact=True)


@pytest.mark.parametrize("cut", ["inside_first_line", "after_first_line", "inside_second_line"])
def test_a_torn_append_is_dropped_and_its_point_computed_again(run_dict, tmp_path, monkeypatch, cut):
    """The process dies while the third point's two rows (ber, bler) are being written: a prefix of them reaches
    the file. The next load ignores a partial line; the next run recomputes the point (its complete ``ber`` line
    alone does not make it finished) and ends with the numbers and layout of an uninterrupted run."""
    run_dict(ORDERED, tmp_path / "full")
    reference = load_results(tmp_path / "full" / "results.csv")
    out = tmp_path / "out"
    real_write = results_io._write_all
    writes = []

    def torn_write(fd, data):
        writes.append(data)
        if len(writes) < 2:  # the first point creates the file (atomically); the second is appended whole
            return real_write(fd, data)
        first = data.index(b"\n") + 1
        real_write(fd, data[:{"inside_first_line": 20, "after_first_line": first,
                              "inside_second_line": first + 20}[cut]])
        raise KeyboardInterrupt  # as if killed in the middle of the write

    with monkeypatch.context() as patch:
        killed(patch)
        patch.setattr(results_io, "_write_all", torn_write)
        with pytest.raises(KeyboardInterrupt):
            run_dict(ORDERED, out)
    text = (out / "results.csv").read_bytes()
    assert text.endswith(b"\n") == (cut == "after_first_line")
    torn = load_results(out / "results.csv")  # loads: a partial line is ignored
    assert list(torn.snr_db) == [3.0, 3.0, 0.0, 0.0] + ([6.0] if cut != "inside_first_line" else [])

    outcome = run_dict(ORDERED, out)
    assert (outcome.reused, outcome.computed) == (2, 2)
    saved = load_results(out / "results.csv")
    pd.testing.assert_frame_equal(saved[NUMBERS], reference[NUMBERS], check_exact=True)
    assert not saved.duplicated(["point_id", "metric"]).any()
    assert (out / "results.csv").read_bytes().endswith(b"\n")
