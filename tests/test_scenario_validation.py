"""Scenario validation: every bad scenario is one ``semsim: error:`` line naming the field and what is allowed,
exit status 2, no traceback and no half-written output.

A table of bad scenarios goes through the CLI in-process (``validate`` and, for some rows, ``run``); a
property-based test feeds random malformed content to ``parse_scenario`` / ``load_scenario``. No test here runs
a Monte-Carlo simulation: every ``run`` fails validation before simulating.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import BASE_SCENARIO, scenario_dict
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from links.digital import DigitalLink
from simulator.cli import main
from simulator.config.scenario import Scenario, load_scenario, parse_scenario
from simulator.core.errors import UserError

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "scenarios").glob("*.yaml"))
MISSING = object()  # row content: no file at all


def link(**params: Any) -> dict:
    """The base scenario's link with ``params`` changed."""
    return {**BASE_SCENARIO["links"][0], **params}


def without(field: str) -> dict:
    data = scenario_dict()
    del data[field]
    return data


def write_scenario(tmp_path: Path, content: Any, name: str = "scenario.yaml") -> Path:
    """Write ``content`` (a dict/list as YAML, ``str`` as text, ``bytes`` raw, ``MISSING``: nothing)."""
    path = tmp_path / name
    if content is MISSING:
        return path
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def assert_one_error_line(err: str, out: str = "") -> str:
    """``err`` is exactly one ``semsim: error: ...`` line and nothing looks like a traceback."""
    assert err.endswith("\n"), repr(err)
    assert err.count("\n") == 1, f"expected one line on stderr, got:\n{err}"
    assert err.startswith("semsim: error: "), err
    assert len(err.strip()) > len("semsim: error:")
    assert "Traceback" not in err and "Traceback" not in out
    return err.rstrip("\n")


def assert_no_output(out_dir: Path) -> None:
    assert not out_dir.exists() or not any(out_dir.iterdir()), f"half-written output: {list(out_dir.iterdir())}"


# --- the table of bad scenarios -------------------------------------------------------------------------------
# (id, file content, field path expected in the message or None, fragments the message must contain, also `run`)
BAD = [
    # unknown and missing fields
    ("unknown-top-level-field", scenario_dict(montecarlo={"batch_size": 5}), "montecarlo",
     ["unknown field", "monte_carlo", "snr_db", "channels"], True),
    ("missing-links", without("links"), "links", ["required"], True),
    ("missing-snr", without("snr_db"), "snr_db", ["required"], False),
    ("missing-name", without("name"), "name", ["required"], False),
    ("missing-link-type", scenario_dict(links=[{"bits_per_symbol": 2}]), "links[0].type", ["required"], False),
    # wrong types
    ("seed-not-int", scenario_dict(seed="abc"), "seed", ["integer", "'abc'"], False),
    ("links-not-list", scenario_dict(links=5), "links", ["list", "5"], False),
    ("links-empty", scenario_dict(links=[]), "links", ["at least 1"], False),
    ("channel-not-mapping", scenario_dict(channels=["awgn"]), "channels[0]", ["dictionary", "'awgn'"], False),
    ("snr-not-list", scenario_dict(snr_db="0 to 10"), "snr_db", ["list of numbers", "{start, stop, step}"], False),
    # out-of-range numbers and Literal choices
    ("seed-negative", scenario_dict(seed=-1), "seed", ["greater than or equal to 0", "-1"], False),
    ("batch-size-0", scenario_dict(monte_carlo={"batch_size": 0}), "monte_carlo.batch_size",
     ["greater than or equal to 1", "0"], True),
    ("confidence-1.5", scenario_dict(monte_carlo={"confidence": 1.5}), "monte_carlo.confidence",
     ["less than 1", "1.5"], False),
    ("interval-literal", scenario_dict(monte_carlo={"interval": "exact"}), "monte_carlo.interval",
     ["'wilson'", "'clopper-pearson'", "'exact'"], False),
    ("unknown-monte-carlo-field", scenario_dict(monte_carlo={"batchsize": 5}), "monte_carlo.batchsize",
     ["unknown field", "batch_size", "max_samples", "target_errors"], False),
    ("bits-per-symbol-3", scenario_dict(links=[link(bits_per_symbol=3)]), "links[0].bits_per_symbol",
     ["1, 2, 4, 6, 8 or 10", "3"], True),
    ("ldpc-k-not-below-n", scenario_dict(links=[link(ldpc={"k": 1024, "n": 512})]), "links[0].ldpc",
     ["k (1024) must be smaller than n (512)"], False),
    ("ldpc-n-not-multiple-of-m", scenario_dict(links=[link(bits_per_symbol=4, ldpc={"k": 500, "n": 1022})]),
     "links[0]", ["ldpc.n (1022)", "multiple of bits_per_symbol (4)"], False),
    ("ldpc-cn-update-literal", scenario_dict(links=[link(ldpc={"cn_update": "sum-product"})]),
     "links[0].ldpc.cn_update", ["'boxplus-phi'", "'minsum'", "'offset-minsum'"], False),
    ("ldpc-decoder-literal", scenario_dict(links=[link(ldpc={"decoder": "gpu"})]),
     "links[0].ldpc.decoder", ["'numba'", "'sionna'", "'gpu'"], False),
    ("ldpc-unknown-field", scenario_dict(links=[link(ldpc={"k": 512, "n": 1024, "iterations": 5})]),
     "links[0].ldpc.iterations", ["unknown field", "num_iter", "cn_update"], False),
    ("rayleigh-fading-literal", scenario_dict(channels=[{"type": "rayleigh", "fading": "slow"}]),
     "channels[0].fading", ["'iid'", "'block'"], False),
    ("block-length-without-block-fading", scenario_dict(channels=[{"type": "rayleigh", "block_length": 16}]),
     "channels[0]", ["block_length", "fading: block"], True),
    # unknown names list the valid choices
    ("unknown-link-type", scenario_dict(links=[link(type="analog")]), "links[0].type",
     ["unknown link type 'analog'", "digital", "module:Class"], True),
    ("unknown-channel-type", scenario_dict(channels=[{"type": "awgn"}, {"type": "nakagami"}]), "channels[1].type",
     ["unknown channel type 'nakagami'", "awgn", "rayleigh"], True),
    ("unknown-metric", scenario_dict(metrics=["ber", "ser"]), "metrics[1]", ["'ser'", "ber", "bler"], False),
    ("unknown-executor", scenario_dict(executor={"type": "slurm"}), "executor.type", ["'slurm'", "local"], False),
    ("unknown-data-type", scenario_dict(data={"type": "mnist"}), "data.type", ["'mnist'", "digits"], False),
    ("unknown-link-param", scenario_dict(links=[link(bitz_per_symbol=2)]), "links[0].bitz_per_symbol",
     ["unknown field", "bits_per_symbol", "block_bits", "ldpc", "demapper"], True),
    ("unknown-channel-param", scenario_dict(channels=[{"type": "rayleigh", "fadin": "iid"}]), "channels[0].fadin",
     ["unknown field", "fading", "equalizer", "block_length"], False),
    # consistency
    ("duplicate-link-names", scenario_dict(links=[link(), link(bits_per_symbol=4)]), "links[1].name",
     ["duplicate name 'qpsk'"], False),
    ("duplicate-channel-labels", scenario_dict(channels=[{"type": "awgn"}, {"type": "awgn"}]), "channels[1].name",
     ["duplicate name 'awgn'"], True),
    ("metric-no-link-reports", scenario_dict(metrics=["accuracy"]), "metrics[0]",
     ["no link reports 'accuracy'", "ber, bler"], True),
    ("compare-to-unknown-link", scenario_dict(compare_to="qpsk2"), "compare_to",
     ["unknown link 'qpsk2'", "valid: qpsk"], True),
    # SNR grid
    ("snr-stop-below-start", scenario_dict(snr_db={"start": 5, "stop": 0, "step": 1}), "snr_db",
     ["stop (0.0)", "start (5.0)"], True),
    ("snr-step-zero", scenario_dict(snr_db={"start": 0, "stop": 5, "step": 0}), "snr_db.step",
     ["greater than 0"], False),
    ("snr-step-negative", scenario_dict(snr_db={"start": 0, "stop": 5, "step": -1}), "snr_db.step",
     ["greater than 0", "-1"], False),
    ("snr-too-many-points", scenario_dict(snr_db={"start": 0, "stop": 1e6, "step": 1}), "snr_db",
     ["more than 1000 points"], False),
    ("snr-list-empty", scenario_dict(snr_db=[]), "snr_db", ["empty"], False),
    ("snr-list-non-number", scenario_dict(snr_db=[0.0, "ten"]), "snr_db[1]", ["finite number", "'ten'"], True),
    ("snr-list-infinite", scenario_dict(snr_db=[0.0, float("inf")]), "snr_db[1]", ["finite number"], False),
    # device
    ("device-gpu", scenario_dict(device="gpu"), "device", ["'gpu'", "cpu", "cuda"], False),
    ("device-cuda-missing", scenario_dict(device="cuda:99"), "device", ["'cuda:99'", "not available", "cpu"],
     False),
    # module:Class paths
    ("module-not-found", scenario_dict(links=[link(type="no_such_module_semsim:MyLink")]), "links[0].type",
     ["cannot import module 'no_such_module_semsim'"], True),
    ("module-attribute-missing", scenario_dict(links=[link(type="links.digital:NoSuchLink")]), "links[0].type",
     ["links.digital", "no attribute 'NoSuchLink'"], False),
    ("module-attribute-not-a-link", scenario_dict(links=[link(type="collections:OrderedDict")]), "links[0].type",
     ["'collections:OrderedDict' is not a link class", "Link"], True),
    ("module-attribute-not-a-class", scenario_dict(links=[link(type="math:pi")]), "links[0].type",
     ["not a link class"], False),
    # the file itself
    ("invalid-yaml", "name: x\nlinks: [{type: digital\nchannels: [{type: awgn}]\n", None,
     ["line 3, column", "scenario.yaml"], True),
    ("yaml-tab-indent", "name: x\nlinks:\n\t- type: digital\n", None, ["line 3, column 1"], False),
    ("yaml-list-not-mapping", "- name: x\n- links: []\n", None, ["must be a mapping", "list"], True),
    ("yaml-scalar-not-mapping", "just a string\n", None, ["must be a mapping", "str"], False),
    ("yaml-empty-file", "", None, ["must be a mapping"], False),
    ("yaml-python-tag", "name: !!python/object/apply:os.system [echo hi]\n", None,
     ["line 1, column 7", "python/object"], False),
    ("file-missing", MISSING, None, ["not found", "scenario.yaml"], True),
    ("file-binary", b"\xff\xfe\x00\x01name: x\x80\x81\n", None, ["not a UTF-8 text file", "scenario.yaml"], True),
]

CASES = [
    pytest.param(content, field, fragments, command, id=f"{row_id}-{command}")
    for row_id, content, field, fragments, also_run in BAD
    for command in (("validate", "run") if also_run else ("validate",))
]


@pytest.mark.parametrize(("content", "field", "fragments", "command"), CASES)
def test_bad_scenario_is_one_line_with_field_and_choices(tmp_path, monkeypatch, capsys, content, field, fragments,
                                                          command):
    monkeypatch.chdir(tmp_path)  # a default results/<name> would land here, not in the repository
    path = write_scenario(tmp_path, content)
    out_dir = tmp_path / "out"
    argv = ["validate", str(path)] if command == "validate" else ["run", str(path), "--output", str(out_dir),
                                                                  "--no-progress"]
    rc = main(argv)
    captured = capsys.readouterr()
    message = assert_one_error_line(captured.err, captured.out)
    assert rc == 2, message
    assert str(path) in message  # names the file
    if field is not None:
        assert f"{path}: {field}: " in message, f"field {field!r} not named as the location: {message}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    assert_no_output(out_dir)
    assert not (tmp_path / "results").exists()


def test_table_covers_every_row_through_validate():
    ids = [row[0] for row in BAD]
    assert len(ids) == len(set(ids))
    assert len(BAD) >= 25


def test_bad_argument_is_one_line(capsys):
    assert main(["validate"]) == 2
    assert_one_error_line(capsys.readouterr().err)
    assert main(["frobnicate"]) == 2
    assert_one_error_line(capsys.readouterr().err)


def test_unknown_executor_override_leaves_no_output(tmp_path, capsys):
    path = write_scenario(tmp_path, scenario_dict())
    out_dir = tmp_path / "out"
    assert main(["run", str(path), "--output", str(out_dir), "--executor", "slurm"]) == 2
    message = assert_one_error_line(capsys.readouterr().err)
    assert "--executor" in message and "local" in message
    assert_no_output(out_dir)


def test_subprocess_bad_scenario_exits_2_without_traceback(tmp_path):
    path = write_scenario(tmp_path, scenario_dict(links=[link(bits_per_symbol=3)]), name="bad.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "run", str(path), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    message = assert_one_error_line(proc.stderr, proc.stdout)
    assert "links[0].bits_per_symbol" in message and "1, 2, 4, 6, 8 or 10" in message
    assert proc.stdout == ""
    assert_no_output(tmp_path / "out")


# --- product bugs found while writing this file (each fails until the product code is fixed) ------------------
def test_newline_in_unknown_key_stays_one_line():
    """A key containing a newline was echoed raw: the message spanned two lines."""
    for data in (scenario_dict(**{"a\nb": 1}), scenario_dict(links=[{**link(), "x\ny": 1}])):
        with pytest.raises(UserError) as err:
            parse_scenario(data)
        assert "\n" not in str(err.value), repr(str(err.value))


@pytest.mark.parametrize("grid", [
    {"start": 0, "stop": float("nan"), "step": 1},
    {"start": float("nan"), "stop": 5, "step": 1},
    {"start": float("inf"), "stop": float("inf"), "step": 1},
], ids=["stop-nan", "start-nan", "inf-inf"])
def test_non_finite_snr_range_is_rejected(grid):
    """``snr_db: {start: 0, stop: .nan, step: 1}`` validated, then ``snr_points()`` raised ValueError."""
    with pytest.raises(UserError) as err:
        parse_scenario(scenario_dict(snr_db=grid))
    assert "snr_db" in str(err.value)


@pytest.mark.parametrize("type_name", [".relative:Thing", ":Thing", ":"])
def test_malformed_module_path_names_the_type_field(type_name):
    """``.relative:Thing`` raised TypeError (traceback); ``:Thing`` said ``links[0]: Empty module name``."""
    with pytest.raises(UserError) as err:
        parse_scenario(scenario_dict(links=[link(type=type_name)]))
    assert "links[0].type" in str(err.value)


@pytest.mark.parametrize("source", ['raise RuntimeError("broken at import")\n', "def broken(:\n"],
                         ids=["raises", "syntax-error"])
def test_user_module_failing_at_import_is_a_user_error(tmp_path, monkeypatch, source):
    """A user's module:Class whose module raises (not ImportError) on import escaped as a traceback."""
    (tmp_path / "semsim_broken_user_module.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "semsim_broken_user_module", raising=False)
    with pytest.raises(UserError) as err:
        parse_scenario(scenario_dict(links=[link(type="semsim_broken_user_module:MyLink")]))
    assert "links[0].type" in str(err.value) and "\n" not in str(err.value)


def test_deeply_nested_yaml_is_a_user_error(tmp_path, capsys):
    """10,000 nested ``[`` made PyYAML raise RecursionError, printed as a traceback."""
    path = write_scenario(tmp_path, "name: x\nlinks: " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert main(["validate", str(path)]) == 2
    assert_one_error_line(capsys.readouterr().err)


def test_unreadable_character_names_the_position(tmp_path, capsys):
    """A NUL byte gave ``scenario.yaml: invalid YAML`` with no position (PyYAML's ReaderError has no mark)."""
    path = write_scenario(tmp_path, "name: x\x00\n")
    assert main(["validate", str(path)]) == 2
    message = assert_one_error_line(capsys.readouterr().err).split(f"{path}: ", 1)[1]
    assert "line" in message or "position" in message or "character" in message, message


def test_abstract_link_class_fails_without_output(tmp_path, capsys):
    """``type: simulator.core.link:Link`` validated, then ``run`` failed building it after writing manifest.json."""
    path = write_scenario(tmp_path, scenario_dict(links=[{"type": "simulator.core.link:Link"}]))
    out_dir = tmp_path / "out"
    assert main(["run", str(path), "--output", str(out_dir), "--no-progress"]) == 2
    assert_one_error_line(capsys.readouterr().err)
    assert_no_output(out_dir)


def test_output_path_that_is_a_file_is_a_user_error(tmp_path, capsys):
    """``semsim run ok.yaml --output some_file`` raised FileExistsError from mkdir (traceback)."""
    path = write_scenario(tmp_path, scenario_dict())
    target = tmp_path / "a_file"
    target.write_text("keep me")
    assert main(["run", str(path), "--output", str(target), "--no-progress"]) == 2
    assert_one_error_line(capsys.readouterr().err)
    assert target.read_text() == "keep me"


# --- property: random malformed input never produces a traceback ----------------------------------------------
FIELD_NAMES = [
    "name", "description", "seed", "device", "data", "links", "channels", "snr_db", "metrics", "monte_carlo",
    "output", "executor", "type", "bits_per_symbol", "block_bits", "blocks_per_example", "demapper", "ldpc", "k",
    "n", "num_iter", "cn_update", "fading", "block_length", "equalizer", "csi_error_variance", "start", "stop",
    "step", "batch_size", "max_samples", "min_samples", "target_errors", "confidence", "interval",
    "max_receiver_batch", "test_fraction", "compare_to",
]
TYPE_NAMES = ["digital", "awgn", "rayleigh", "ofdm", "digits", "local", "ber", "bler", "accuracy",
              "links.digital:DigitalLink", "collections:OrderedDict", "math:pi", "no_such_mod:X", "links.digital:X"]

TRICKY_TEXT = ["", " ", "\n", "a\nb", "x\r\ny", "\x00", "\t", "é", "links ", "-1", ".nan", "1e999", "{}", "[]"]

leaves = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-3, max_value=1100)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12) | st.sampled_from(TYPE_NAMES)
    | st.sampled_from(TRICKY_TEXT)
)
keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=10) | st.sampled_from(TRICKY_TEXT)
values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=20,
)


def assert_user_error_or_scenario(call) -> None:
    """``call()`` returns a Scenario or raises a UserError with a single non-empty line."""
    try:
        result = call()
    except UserError as err:
        text = str(err)
        assert text.strip(), "empty error message"
        assert "\n" not in text and "\r" not in text, f"multi-line error: {text!r}"
        return
    assert isinstance(result, Scenario)
    result.snr_points()  # what `semsim validate` prints next must not fail either
    result.scenario_hash()


@st.composite
def mutated_scenarios(draw) -> dict:
    """The valid base scenario with a random field, at a random depth, replaced, deleted or added."""
    data = copy.deepcopy(scenario_dict(
        channels=[{"type": "awgn"}, {"type": "rayleigh", "name": "r", "fading": "block", "block_length": 8}],
        links=[link(), link(name="coded", ldpc={"k": 256, "n": 512})],
    ))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        parent: Any = data
        while True:
            if isinstance(parent, dict) and parent:
                key = draw(st.sampled_from(sorted(parent, key=str)))
            elif isinstance(parent, list) and parent:
                key = draw(st.integers(min_value=0, max_value=len(parent) - 1))
            else:
                break
            child = parent[key]
            if not isinstance(child, dict | list) or not child or draw(st.booleans()):
                break
            parent = child
        if not isinstance(parent, dict | list) or not parent:
            continue
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[key] = draw(values)
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(keys)] = draw(values)
        else:
            parent.append(draw(values))
    return data


malformed = (
    values
    | st.dictionaries(keys, values, max_size=8)
    | mutated_scenarios()
)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=malformed)
@example(data={"name": "x", "a\nb": 1})  # always tried: a key with a newline must not break the one-line rule
@example(data=scenario_dict(snr_db={"start": 0, "stop": float("nan"), "step": 1}))
def test_random_malformed_content_never_raises_anything_but_a_one_line_user_error(data):
    assert_user_error_or_scenario(lambda: parse_scenario(data))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated_scenarios())
@example(data=scenario_dict(links=[{**BASE_SCENARIO["links"][0], "x\r\ny": None}]))
def test_mutations_of_a_valid_scenario_never_raise_anything_but_a_one_line_user_error(data):
    assert_user_error_or_scenario(lambda: parse_scenario(data))


BASE_TEXT = yaml.safe_dump(scenario_dict(), sort_keys=False)
yaml_text = (
    st.lists(st.sampled_from(list(":-[]{},#&*!|>'\"%@` \n\tab1.") + FIELD_NAMES), max_size=30).map("".join)
    | st.text(max_size=40)
    | st.builds(
        lambda cut, insert: BASE_TEXT[:cut] + insert + BASE_TEXT[cut:],
        st.integers(min_value=0, max_value=len(BASE_TEXT)),
        st.text(alphabet=st.sampled_from(list(":-[]{}\n\t ?!&*x9")), max_size=4),
    )
)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=yaml_text)
def test_random_text_files_never_raise_anything_but_a_one_line_user_error(tmp_path, text):
    path = tmp_path / "random.yaml"
    path.write_text(text, encoding="utf-8")
    assert_user_error_or_scenario(lambda: load_scenario(path))


# --- valid inputs -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_scenarios_validate(path, capsys):
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert f"{path}: valid;" in captured.out
    assert captured.err == ""


def test_shipped_scenarios_exist():
    assert SHIPPED


def test_base_scenario_validates_through_the_cli(tmp_path, capsys):
    path = write_scenario(tmp_path, scenario_dict())
    assert main(["validate", str(path)]) == 0
    assert "1 links x 1 channels x 2 SNR points = 2 points" in capsys.readouterr().out


def test_snr_range_expands_to_the_inclusive_grid():
    scenario = parse_scenario(scenario_dict(snr_db={"start": -10, "stop": 20, "step": 2.5}))
    points = scenario.snr_points()
    assert len(points) == 13
    assert points == pytest.approx([-10 + 2.5 * i for i in range(13)])
    assert points[0] == -10 and points[-1] == 20
    assert all(math.isfinite(p) for p in points)


def test_module_class_path_to_a_link_subclass_works():
    scenario = parse_scenario(scenario_dict(
        links=[link(type="links.digital:DigitalLink", name="by-path", ldpc={"k": 256, "n": 512})],
        metrics=["ber"],
    ))
    spec = scenario.links[0]
    assert spec.cls is DigitalLink
    assert spec.key == "by-path"
    assert spec.params.ldpc.k == 256
    assert scenario.link_metrics(spec) == ("ber",)


def test_literal_and_range_boundaries_are_accepted():
    scenario = parse_scenario(scenario_dict(
        links=[link(bits_per_symbol=1), link(name="m10", bits_per_symbol=10, block_bits=1000)],
        channels=[{"type": "rayleigh", "fading": "block", "block_length": 1, "equalizer": "lmmse"}],
        monte_carlo={"batch_size": 1, "confidence": 0.99, "interval": "clopper-pearson"},
        snr_db={"start": 3, "stop": 3, "step": 1},
        device="cpu",
    ))
    assert scenario.snr_points() == [3.0]
    assert scenario.monte_carlo.interval == "clopper-pearson"


@pytest.mark.parametrize("value", ["0", "two", "-1", "1025"])
def test_bad_threads_argument_is_one_line(tmp_path, capsys, value):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_dict()))
    assert main(["run", str(path), "--threads", value, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"invalid thread count {value!r}; expected a whole number from 1 to 1024" in err[0]
    assert not (tmp_path / "out").exists()


def test_workers_argument(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_dict()))
    assert main(["run", str(path), "--workers", "0", "-o", str(tmp_path / "a")]) == 2
    assert "invalid worker count '0'; expected a whole number from 1 to 256" in capsys.readouterr().err
    assert main(["run", str(path), "--workers", "2", "--executor", "ray", "-o", str(tmp_path / "b")]) == 2
    assert "--workers applies to the local executor; this run uses 'ray'" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert main(["run", str(path), "--workers", "2", "-o", str(tmp_path / "c"), "--no-progress"]) == 0
    assert "2 points computed" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["scenario_spec"]["executor"]["workers"] == 2
