"""Link types declared apart from their implementation (:mod:`links.declarations`, ``Registry.declared``).

A scenario naming a declared type validates against the declaration alone; the implementation is imported when
the link is built, and it must subclass its declaration. Every built-in link type is declared this way, which is
what keeps ``semsim list`` and ``semsim validate`` free of torch (tests/test_architecture.py).
"""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap

import pytest
from conftest import scenario_dict

from links.declarations import LinkDeclaration
from simulator.config.scenario import parse_scenario
from simulator.core.errors import UserError
from simulator.core.link import LINKS, Link

DECLARATION = '''
from pydantic import Field
from simulator.core.params import Params


class FlipDeclaration:
    implementation = "flip_impl:{implementation}"
    description = "a declared test link"
    metrics = ("ber",)

    class Params(Params):
        bits: int = Field(default=8, ge=1)
'''

IMPLEMENTATION = '''
from flip_decl import FlipDeclaration
from simulator.core.link import Link


class FlipLink(FlipDeclaration, Link):
    channel_uses = 8

    def sample(self, batch_index, batch_size, generator):
        raise NotImplementedError

    def encode(self, batch):
        raise NotImplementedError

    def receive(self, received, snr_db):
        raise NotImplementedError

    def score(self, batch, estimate):
        raise NotImplementedError


class Unrelated(Link):
    channel_uses = 8
    sample = encode = receive = score = FlipLink.sample
'''


@pytest.fixture
def declared_flip(tmp_path, monkeypatch):
    """A ``flip`` link type whose entry point names a declaration in ``flip_decl`` (implementation in
    ``flip_impl``); returns a function that writes the modules with the given implementation class name."""

    def install(implementation: str = "FlipLink"):
        (tmp_path / "flip_decl.py").write_text(textwrap.dedent(DECLARATION.format(implementation=implementation)))
        (tmp_path / "flip_impl.py").write_text(textwrap.dedent(IMPLEMENTATION))
        monkeypatch.syspath_prepend(str(tmp_path))
        for module in ("flip_decl", "flip_impl"):
            monkeypatch.delitem(sys.modules, module, raising=False)
        entry = importlib.metadata.EntryPoint(name="flip", value="flip_decl:FlipDeclaration",
                                              group=LINKS.entry_point_group)
        real = LINKS._entry_points
        monkeypatch.setattr(LINKS, "_entry_points", lambda: {**real(), "flip": entry})
        for cache in (LINKS._classes, LINKS._declarations):
            monkeypatch.setitem(cache, "flip", None)
            del cache["flip"]  # monkeypatch restores (removes) it afterwards

    return install


def test_a_declared_type_validates_without_importing_its_implementation(declared_flip):
    declared_flip()
    scenario = parse_scenario(scenario_dict(links=[{"type": "flip", "bits": 16}], metrics=["ber"]))
    spec = scenario.links[0]
    assert "flip_impl" not in sys.modules
    assert spec.params.bits == 16 and spec.key == "flip"
    assert spec.declared.__name__ == "FlipDeclaration" and scenario.link_metrics(spec) == ("ber",)
    with pytest.raises(UserError, match=r"links\[0\]\.bits: Input should be greater than or equal to 1"):
        parse_scenario(scenario_dict(links=[{"type": "flip", "bits": 0}]))
    with pytest.raises(UserError, match="unknown field; allowed: type, name, label, bits"):
        parse_scenario(scenario_dict(links=[{"type": "flip", "bitz": 3}]))

    cls = spec.cls  # building needs the implementation: imported now
    assert "flip_impl" in sys.modules and cls.__name__ == "FlipLink" and issubclass(cls, spec.declared)
    assert LINKS.resolve("flip") is cls and cls.type_name == "flip"


def test_an_implementation_must_subclass_its_declaration(declared_flip):
    declared_flip("Unrelated")
    scenario = parse_scenario(scenario_dict(links=[{"type": "flip"}], metrics=["ber"]))  # declaration alone: valid
    with pytest.raises(UserError, match=r"^link type 'flip': flip_impl:Unrelated does not subclass its declaration "
                                        r"flip_decl\.FlipDeclaration$"):
        scenario.links[0].cls  # noqa: B018 (building needs the implementation)


def test_a_missing_implementation_is_one_line(declared_flip):
    declared_flip("Nowhere")
    with pytest.raises(UserError, match=r"^link type 'flip': module 'flip_impl' has no attribute 'Nowhere'$"):
        LINKS.resolve("flip")


@pytest.mark.parametrize("name", ["digital", "rkdsc", "separate", "digital-features", "deepjscc", "deepjscc-recon",
                                  "kd-analog", "keras"])
def test_every_built_in_link_type_is_declared_and_implemented(name):
    declared = LINKS.declared(name)
    assert issubclass(declared, LinkDeclaration) and not issubclass(declared, Link)
    assert declared.description and declared.metrics
    cls = LINKS.resolve(name)
    assert issubclass(cls, declared) and issubclass(cls, Link)
    assert cls.Params is declared.Params and cls.metrics == declared.metrics  # the implementation adds none
