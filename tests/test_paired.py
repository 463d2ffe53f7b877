"""Paired statistics between links: Newcombe's paired interval, McNemar's exact test, their coverage, and the
outcome files, ``paired.md`` / ``paired.csv`` and ``compare_to`` of a sweep."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import interrupted_after, scenario_dict
from scipy.stats import binomtest

from simulator.cli import main
from simulator.config.scenario import parse_scenario
from simulator.core.errors import UserError
from simulator.core.paired import (
    PAIRED_COLUMNS,
    PairedCounts,
    mcnemar_exact_p,
    newcombe_interval,
    newcombe_phi,
    paired_difference,
    wilson_interval,
)
from simulator.io.outcomes import load_outcomes, outcome_path
from simulator.io.results import load_results


# --- the statistics, against independent computations ---------------------------------------------------------
def scipy_wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def reference_newcombe(a: int, b: int, c: int, d: int, confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe (1998, paired, method 10) written out here from the paper's formulas, on scipy's Wilson limits.

    Table: a = both 1, b = link 1 / ref 0, c = link 0 / ref 1, d = both 0; theta = (b - c) / n.
    """
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = scipy_wilson(a + b, n, confidence)
    l2, u2 = scipy_wilson(a + c, n, confidence)
    margins = [a + b, c + d, a + c, b + d]
    if 0 in margins:
        phi = 0.0
    else:
        cross = a * d - b * c
        corrected = cross - n / 2 if cross > n / 2 else (0.0 if cross >= 0 else cross)
        phi = corrected / math.sqrt(np.prod(np.array(margins, dtype=float)))
    theta = (b - c) / n
    delta = math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    epsilon = math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    return theta - delta, theta + epsilon


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
@pytest.mark.parametrize(("successes", "n"), [(0, 1), (1, 1), (0, 50), (50, 50), (3, 10), (17, 40), (499, 1000)])
def test_wilson_interval_matches_scipy(successes, n, confidence):
    assert wilson_interval(successes, n, confidence) == pytest.approx(scipy_wilson(successes, n, confidence),
                                                                      abs=1e-12)


TABLES = [
    (59, 6, 16, 80),   # A = 4624 > n/2: continuity-corrected phi
    (36, 12, 2, 0),    # d = 0: A < 0, phi from the raw cross product
    (10, 15, 5, 20),   # A = 125 > n/2
    (30, 5, 5, 1),     # 0 <= A = 5 <= n/2: phi = 0
    (0, 3, 4, 0),      # both margins of "both 1" empty-ish, A < 0
    (100, 0, 0, 0),    # zero margins: phi = 0
    (0, 0, 0, 25),
    (79, 0, 0, 21),    # identical outcomes
    (0, 10, 0, 0),     # all discordant one way
    (900, 40, 20, 40),
]


@pytest.mark.parametrize("confidence", [0.95, 0.99])
@pytest.mark.parametrize("table", TABLES, ids=[",".join(map(str, t)) for t in TABLES])
def test_newcombe_interval_matches_a_closed_form_computed_here(table, confidence):
    counts = PairedCounts(*table)
    low, high = newcombe_interval(counts, confidence)
    assert (low, high) == pytest.approx(reference_newcombe(*table, confidence), abs=1e-12)
    theta = (table[1] - table[2]) / sum(table)
    assert -1 <= low <= theta <= high <= 1


def test_newcombe_interval_reproduces_a_published_example():
    # Cavo et al. (2012), complete response before/after consolidation therapy, as analysed by Fagerland,
    # Lydersen and Laake (Statistical Analysis of Contingency Tables, ch. 8; R package contingencytables):
    # Newcombe hybrid score interval -0.0621 (95% CI -0.1186 to -0.0046).
    result = paired_difference(*pattern_vectors(59, 6, 16, 80))
    assert round(result.diff, 4) == -0.0621
    assert (round(result.low, 4), round(result.high, 4)) == (-0.1186, -0.0046)
    assert result.excludes_zero


def test_phi_edge_cases_follow_newcombe():
    assert newcombe_phi(PairedCounts(100, 0, 0, 0)) == 0.0  # empty margins
    assert newcombe_phi(PairedCounts(5, 5, 0, 0)) == 0.0  # the link is never 0: a zero margin
    assert newcombe_phi(PairedCounts(30, 5, 5, 1)) == 0.0  # 0 <= ad - bc = 5 <= n/2
    assert newcombe_phi(PairedCounts(36, 12, 2, 1)) == 0.0  # ad - bc = 12 <= n/2 = 25.5
    a, b, c, d = 59, 6, 16, 80  # ad - bc = 4624 > n/2: reduced by n/2
    root = math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    assert newcombe_phi(PairedCounts(a, b, c, d)) == pytest.approx((a * d - b * c - 161 / 2) / root)
    assert newcombe_phi(PairedCounts(36, 12, 2, 0)) == pytest.approx(-24 / math.sqrt(48 * 2 * 38 * 12))  # < 0
    assert newcombe_phi(PairedCounts(1, 12, 2, 1)) == pytest.approx((1 - 24) / math.sqrt(13 * 3 * 3 * 13))


def test_mcnemar_exact_p_value():
    assert mcnemar_exact_p(0, 6) == pytest.approx(2 * 0.5**6) == pytest.approx(0.03125)
    assert mcnemar_exact_p(6, 0) == pytest.approx(0.03125)
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(3, 3) == 1.0
    assert mcnemar_exact_p(1, 4) == pytest.approx(2 * (1 + 5) / 2**5)  # P(X <= 1) doubled, X ~ Bin(5, 1/2)
    for only_link, only_ref in [(2, 9), (17, 4), (40, 61), (250, 200)]:
        expected = binomtest(only_link, only_link + only_ref, 0.5).pvalue
        assert mcnemar_exact_p(only_link, only_ref) == pytest.approx(expected, rel=1e-12)


def pattern_vectors(both: int, only_link: int, only_ref: int, neither: int, seed: int = 0):
    """Two aligned 0/1 vectors with the given 2x2 table, in a shuffled order."""
    link = np.repeat(np.array([1, 1, 0, 0], dtype=np.uint8), [both, only_link, only_ref, neither])
    ref = np.repeat(np.array([1, 0, 1, 0], dtype=np.uint8), [both, only_link, only_ref, neither])
    order = np.random.default_rng(seed).permutation(len(link))
    return link[order], ref[order]


def test_paired_difference_counts_and_common_prefix():
    link, ref = pattern_vectors(30, 7, 2, 11)
    full = paired_difference(link, ref)
    assert full.counts == PairedCounts(30, 7, 2, 11) and full.counts.n == 50
    assert full.diff == pytest.approx(5 / 50)
    assert full.p_mcnemar == pytest.approx(binomtest(7, 9, 0.5).pvalue)
    prefix = paired_difference(link[:20], ref)  # a point that stopped early: the first 20 pairs
    assert prefix.counts == PairedCounts.from_outcomes(link[:20], ref[:20]) and prefix.counts.n == 20
    assert paired_difference(ref, link).diff == pytest.approx(-full.diff)
    same = paired_difference(link, link)
    assert same.diff == 0 and same.counts.discordant == 0 and same.p_mcnemar == 1.0 and not same.excludes_zero


@pytest.mark.parametrize(("probabilities", "n"), [((0.6, 0.1, 0.05, 0.25), 200), ((0.85, 0.04, 0.02, 0.09), 500)])
def test_coverage_of_the_paired_interval(probabilities, n):
    """Fixed-seed simulation: the 95 % interval covers the true paired difference at least about 95 % of the time
    (not significantly less; Newcombe's continuity-corrected phi makes it slightly conservative: 0.952-0.957 in
    10,000 replications of these settings), and is narrower than the interval that ignores the pairing
    (Newcombe's method for independent samples)."""
    rng = np.random.default_rng(12345)
    true_diff = probabilities[1] - probabilities[2]
    replications = 2000
    covered, paired_width, independent_width = 0, 0.0, 0.0
    for a, b, c, d in rng.multinomial(n, probabilities, size=replications):
        low, high = newcombe_interval(PairedCounts(int(a), int(b), int(c), int(d)))
        covered += low <= true_diff <= high
        paired_width += high - low
        (l1, u1), (l2, u2) = scipy_wilson(a + b, n, 0.95), scipy_wilson(a + c, n, 0.95)
        p1, p2 = (a + b) / n, (a + c) / n
        independent_width += math.hypot(p1 - l1, u2 - p2) + math.hypot(p2 - l2, u1 - p1)
    fraction = covered / replications
    ci = binomtest(covered, replications).proportion_ci(method="wilson")
    assert ci.high >= 0.95 and 0.93 <= fraction <= 0.975, fraction
    assert paired_width < 0.8 * independent_width


# --- sweeps: outcome files, paired tables, compare_to --------------------------------------------------------
def pattern(name: str, wrong_every: int, symbols: int = 4) -> dict:
    return {"name": name, "type": "plugins:PatternLink", "wrong_every": wrong_every, "symbols": symbols}


PATTERNS = scenario_dict(
    links=[pattern("ref", 3), pattern("better", 5), pattern("copy", 3), pattern("wide", 4, symbols=8)],
    channels=[{"type": "awgn"}, {"type": "rayleigh"}],
    snr_db=[0.0, 10.0],
    monte_carlo={"batch_size": 25, "max_samples": 100, "target_errors": 0},
)


def expected_counts(link_every: int, ref_every: int, n: int) -> dict:
    """The 2x2 table of two PatternLinks over examples 0..n-1 (``wrong_every`` 0: never wrong)."""
    i = np.arange(n)
    link = i % link_every != 0 if link_every else np.ones(n, dtype=bool)
    ref = i % ref_every != 0 if ref_every else np.ones(n, dtype=bool)
    return {"both": int((link & ref).sum()), "only_link": int((link & ~ref).sum()),
            "only_ref": int((~link & ref).sum()), "neither": int((~link & ~ref).sum())}


def read_paired(out) -> pd.DataFrame:
    return pd.read_csv(out / "paired.csv")


def test_sweep_keeps_outcomes_and_writes_exact_paired_counts(run_dict, tmp_path):
    out = tmp_path / "out"
    outcome = run_dict(PATTERNS, out)
    table = outcome.table
    for row in table.itertuples():
        saved = load_outcomes(out, row.point_id, row.examples)
        every = {"ref": 3, "better": 5, "copy": 3, "wide": 4}[row.link]
        assert list(saved) == ["accuracy"] and saved["accuracy"].dtype == np.uint8
        np.testing.assert_array_equal(saved["accuracy"], np.arange(100) % every != 0)

    paired = read_paired(out)
    assert list(paired.columns) == PAIRED_COLUMNS
    assert len(paired) == 3 * 2 * 2  # links other than the reference x channels x SNR
    assert set(paired.reference) == {"ref"} and list(dict.fromkeys(paired.link)) == ["better", "copy", "wide"]
    for row in paired.itertuples():
        every = {"better": 5, "copy": 3, "wide": 4}[row.link]
        counts = expected_counts(every, 3, 100)
        assert {k: getattr(row, k) for k in counts} == counts and row.n == 100
        assert row.diff == pytest.approx((counts["only_link"] - counts["only_ref"]) / 100)
        assert row.p_mcnemar == pytest.approx(mcnemar_exact_p(counts["only_link"], counts["only_ref"]))
        assert row.same_noise == (row.link != "wide")
    copy = paired[paired.link == "copy"]
    assert (copy["diff"] == 0).all() and (copy.only_link == 0).all() and (copy.only_ref == 0).all()
    assert (copy.p_mcnemar == 1).all() and not copy.excludes_zero.any()

    text = (out / "paired.md").read_text()
    assert "Reference link: `ref`" in text and "95% paired interval" in text and "Newcombe" in text
    assert "n = 100 pairs per cell." in text and "`*`: the interval excludes 0" in text
    assert "## accuracy, awgn" in text and "## accuracy, rayleigh" in text
    better = paired[paired.link == "better"].iloc[0]
    cell = f"{better['diff'] * 100:+.1f} [{better.low * 100:+.1f}, {better.high * 100:+.1f}]"
    better_line = next(line for line in text.splitlines() if line.startswith("| better "))
    assert better_line.split("|")[2].strip().startswith(cell)
    assert "| wide †" in text and "`wide`: other channel uses" in text
    assert (better.low > 0) == better.excludes_zero and (f"{cell}*" in better_line) == better.excludes_zero


def test_noisy_link_compared_with_its_copy_has_no_discordant_pairs(run_dict, tmp_path):
    """Same channel uses: the copy sees the same bits and the same noise, so every block error is shared."""
    qpsk = {"name": "qpsk", "type": "digital", "bits_per_symbol": 2, "block_bits": 256}
    data = scenario_dict(links=[qpsk, {**qpsk, "name": "qpsk-copy"}, {**qpsk, "name": "two", "blocks_per_example": 2}],
                         snr_db=[6.0, 8.0], monte_carlo={"batch_size": 50, "max_samples": 200, "target_errors": 0})
    out = tmp_path / "out"
    table = run_dict(data, out).table
    assert 0 < table[(table.metric == "bler") & (table.link == "qpsk")]["count"].min()  # errors do occur
    two = table[table.link == "two"].point_id
    assert all(not outcome_path(out, pid).exists() for pid in two)  # two blocks per example: not binary
    for pid in table[table.link == "qpsk"].point_id:
        assert list(load_outcomes(out, pid)) == ["bler"]  # ber counts bits, not examples: not kept
    paired = read_paired(out)
    assert set(paired.link) == {"qpsk-copy"} and set(paired.metric) == {"bler"}
    assert (paired.only_link == 0).all() and (paired.only_ref == 0).all() and (paired["diff"] == 0).all()
    assert (paired.both > 0).all() and paired.same_noise.all()


def test_points_that_stop_early_are_paired_over_their_common_prefix(run_dict, tmp_path):
    data = dict(PATTERNS, links=[pattern("ref", 0), pattern("half", 2), pattern("fifth", 5)],
                channels=[{"type": "awgn"}], snr_db=[0.0],
                monte_carlo={"batch_size": 10, "max_samples": 100, "target_errors": 5})
    out = tmp_path / "out"
    examples = run_dict(data, out).table.set_index("link").examples
    assert (examples["ref"], examples["half"], examples["fifth"]) == (100, 10, 30)
    paired = read_paired(out).set_index("link")
    assert paired.loc["half", "n"] == 10 and paired.loc["fifth", "n"] == 30
    assert paired.loc["half", ["link_examples", "ref_examples"]].tolist() == [10, 100]
    assert paired.loc["fifth", "only_ref"] == expected_counts(5, 0, 30)["only_ref"] == 6
    text = (out / "paired.md").read_text()
    # the header names the most common n (the smallest on a tie); cells with another n show theirs
    assert "n = 10 pairs per cell, unless a cell shows its own n" in text
    assert "(n=30)" in text and "(n=10)" not in text


def test_resume_keeps_outcome_files_and_superseded_points_move_aside(run_dict, tmp_path):
    out = tmp_path / "out"
    with interrupted_after(5), pytest.raises(KeyboardInterrupt):
        run_dict(PATTERNS, out)
    assert len(list((out / "outcomes").glob("*.npz"))) == 5  # one per finished point, written as it finished
    before = {p.name: p.stat().st_mtime_ns for p in (out / "outcomes").glob("*.npz")}

    outcome = run_dict(PATTERNS, out)
    assert (outcome.reused, outcome.computed) == (5, 11)
    files = {p.name: p.stat().st_mtime_ns for p in (out / "outcomes").glob("*.npz")}
    assert set(files) == {f"{pid}.npz" for pid in outcome.table.point_id}
    assert all(files[name] == mtime for name, mtime in before.items())  # reused points keep their files
    assert len(read_paired(out)) == 12 and not list(out.rglob("*.tmp*"))

    smaller = run_dict(dict(PATTERNS, snr_db=[10.0]), out)
    kept = set(smaller.table.point_id)
    assert {p.stem for p in (out / "outcomes").glob("*.npz")} == kept
    moved = {p.stem for p in (out / "outcomes" / "superseded").glob("*.npz")}
    assert moved == set(load_results(out / "superseded.csv").point_id) and len(moved) == 8


def test_compare_to_changes_the_reference_without_recomputing(run_dict, tmp_path, capsys):
    out = tmp_path / "out"
    first = run_dict(PATTERNS, out)
    again = run_dict(dict(PATTERNS, compare_to="better"), out)
    assert (again.computed, again.reused) == (0, 16)
    assert set(again.table.point_id) == set(first.table.point_id)
    assert json.loads((out / "manifest.json").read_text())["compare_to"] == "better"
    paired = read_paired(out)
    assert set(paired.reference) == {"better"} and set(paired.link) == {"ref", "copy", "wide"}
    row = paired[(paired.link == "ref")].iloc[0]
    assert (row.only_link, row.only_ref) == (expected_counts(3, 5, 100)["only_link"],
                                             expected_counts(3, 5, 100)["only_ref"])

    (out / "paired.md").unlink()
    assert main(["report", str(out)]) == 0  # the manifest's compare_to
    assert "Reference link: `better`" in (out / "paired.md").read_text()
    assert main(["report", str(out), "--compare-to", "wide"]) == 0
    assert set(read_paired(out).reference) == {"wide"}
    capsys.readouterr()
    assert main(["report", str(out), "--compare-to", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--compare-to: unknown link 'nope'; valid: ref, better, copy, wide" in err


def test_compare_to_must_name_a_link(tmp_path, capsys):
    with pytest.raises(UserError) as info:
        parse_scenario(dict(PATTERNS, compare_to="refernce"))
    assert str(info.value) == "scenario: compare_to: unknown link 'refernce'; valid: ref, better, copy, wide"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(dict(PATTERNS, compare_to=3)))
    assert main(["validate", str(path)]) == 2
    assert f"{path}: compare_to: Input should be a valid string" in capsys.readouterr().err
    assert parse_scenario(PATTERNS).reference_link == "ref"
    scenario = parse_scenario(dict(PATTERNS, compare_to="wide"))
    assert scenario.reference_link == "wide" and scenario.scenario_hash() == parse_scenario(PATTERNS).scenario_hash()


def test_no_paired_files_with_one_link_or_nothing_to_pair(run_dict, tmp_path):
    out = tmp_path / "out"
    run_dict(PATTERNS, out)
    assert (out / "paired.md").exists()
    run_dict(dict(PATTERNS, links=PATTERNS["links"][:1]), out)  # one link: the old comparison is removed
    assert not (out / "paired.md").exists() and not (out / "paired.csv").exists()
    assert (out / "outcomes").is_dir()
    digital = run_dict(scenario_dict(links=[{"name": "a", "type": "digital", "blocks_per_example": 2,
                                             "block_bits": 128},
                                            {"name": "b", "type": "digital", "blocks_per_example": 2,
                                             "block_bits": 128}]), tmp_path / "digital")
    assert not digital.table.empty and not (tmp_path / "digital" / "paired.md").exists()
    assert not (tmp_path / "digital" / "outcomes").exists()  # no binary metric: no outcome files at all
