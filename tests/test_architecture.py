"""The layering of semsim's packages, checked over the source's AST (no imports are executed).

    core  <-  io, interop  <-  channels, data  <-  links  <-  config  <-  engine  <-  cli

A module may import from its own layer and the layers to its left, never from a layer to its right. Imports
under ``if TYPE_CHECKING:`` are annotations only and are not counted. There are no import cycles between modules,
counting imports inside functions too (an import cycle through a lazy import is still a cycle in the design).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: layer of each package prefix (the longest matching prefix wins) and what each layer may import
LAYERS = {
    "simulator.core": "core",
    "simulator.io": "io",
    "simulator.interop": "interop",
    "simulator.channels": "channels",
    "simulator.data": "data",
    "links": "links",
    "simulator.config": "config",
    "simulator.engine": "engine",
    "simulator.cli": "cli",
    "links.rkdsc.pareto": "cli",  # a command (python -m links.rkdsc.pareto): it loads scenarios
    # the public paths users write, re-exporting core
    "simulator.link": "core",
    "simulator.metrics": "core",
    "simulator.config_model": "core",
    "simulator.errors": "core",
    "simulator.channels.base": "core",
    "simulator": "core",  # the package itself (its __init__)
}
MAY_IMPORT = {
    "core": {"core"},
    "io": {"core", "io"},
    "interop": {"core", "interop"},
    "channels": {"core", "interop", "channels"},
    "data": {"core", "io", "data"},
    "links": {"core", "io", "interop", "channels", "data", "links"},
    "config": {"core", "io", "interop", "channels", "data", "config"},
    "engine": {"core", "io", "interop", "channels", "data", "config", "engine"},
    "cli": {"core", "io", "interop", "channels", "data", "links", "config", "engine", "cli"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    prefixes = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return LAYERS[max(prefixes, key=len)] if prefixes else None


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imports_of(path: Path, module: str) -> set[str]:
    """semsim modules ``path`` imports (absolute or relative), outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_block(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name.split(".")[0] in {"simulator", "links"}}


def source_modules() -> dict[str, Path]:
    files = [*ROOT.joinpath("simulator").rglob("*.py"), *ROOT.joinpath("links").rglob("*.py")]
    return {module_name(path): path for path in files}


MODULES = source_modules()


def internal_graph() -> dict[str, set[str]]:
    """Module -> the semsim modules it imports (names that are attributes, not modules, are dropped)."""
    return {module: {name for name in imports_of(path, module) if name in MODULES and name != module}
            for module, path in MODULES.items()}


def test_every_module_has_a_layer():
    assert [m for m in MODULES if layer_of(m) is None] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_only_from_its_layer_and_below(module):
    own = layer_of(module)
    wrong = sorted(name for name in internal_graph()[module] if layer_of(name) not in MAY_IMPORT[own])
    assert wrong == [], f"{module} ({own}) imports {', '.join(f'{w} ({layer_of(w)})' for w in wrong)}"


def test_no_import_cycles():
    graph = internal_graph()
    # a package's __init__ importing its own modules is how packages work, not a cycle in the design
    edges = {m: {d for d in deps if not (m == d.rpartition(".")[0] and MODULES[m].name == "__init__.py")}
             for m, deps in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                walk(dep, stack)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            walk(module, [])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_a_violation_and_a_cycle(tmp_path):
    """The test above could pass vacuously if the parser saw no imports: check it on known sources."""
    path = ROOT / "simulator" / "engine" / "sweep.py"
    assert "simulator.config.assemble" in imports_of(path, "simulator.engine.sweep")
    assert layer_of("simulator.config.scenario") == "config" and "engine" not in MAY_IMPORT["config"]
    fake = tmp_path / "m.py"
    fake.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import simulator.engine.sweep\n"
                    "def f():\n    from simulator.engine import runner\n")
    assert imports_of(fake, "simulator.config.m") == {"simulator.engine", "simulator.engine.runner"}


def test_public_paths_users_write_are_the_core_objects():
    import simulator.channels.base
    import simulator.config_model
    import simulator.core.channel
    import simulator.core.errors
    import simulator.core.link
    import simulator.core.metrics
    import simulator.core.params
    import simulator.errors
    import simulator.link
    import simulator.metrics
    from links.image_link import ImageLink

    assert simulator.link.Link is simulator.core.link.Link and simulator.link.LINKS is simulator.core.link.LINKS
    assert simulator.metrics.Tally is simulator.core.metrics.Tally
    assert simulator.metrics.Mean is simulator.core.metrics.Mean
    assert simulator.channels.base.Channel is simulator.core.channel.Channel
    assert simulator.config_model.Params is simulator.core.params.Params
    assert simulator.errors.UserError is simulator.core.errors.UserError
    assert issubclass(ImageLink, simulator.link.Link)


@pytest.mark.parametrize("argv", [["list"]] + [["validate", f"scenarios/{path.name}"]
                                               for path in sorted((ROOT / "scenarios").glob("*.yaml"))])
def test_light_commands_do_not_import_torch_sionna_scipy_stats_or_matplotlib(argv):
    """``semsim list`` and ``validate`` resolve every type but build nothing: the heavy libraries stay unloaded
    (link types are read from their declarations, channels and data sources import torch when they run)."""
    import subprocess
    import sys

    code = ("import contextlib, io, sys\nimport simulator.cli\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    assert simulator.cli.main({argv!r}) == 0\n"
            "heavy = [m for m in ('torch', 'sionna', 'scipy.stats', 'matplotlib', 'numba', 'tensorflow', 'pandas')\n"
            "         if m in sys.modules]\n"
            "print(heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
