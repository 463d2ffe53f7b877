"""The notebooks run top to bottom in a fresh kernel of this interpreter, offline, and write their result files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def kernel_manager(tmp_path: Path) -> KernelManager:
    """A kernel running this interpreter (a user-level ``python3`` kernel spec may point at another one)."""
    spec = tmp_path / "kernels" / "semsim-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "semsim", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    return KernelManager(kernel_name="semsim-test", kernel_spec_manager=specs)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One artifact cache for both notebooks: they train the same toy RKD-SC model."""
    return tmp_path_factory.mktemp("cache")


def execute(name: str, tmp_path: Path, monkeypatch, cache: Path) -> tuple[nbformat.NotebookNode, Path]:
    """Run notebook ``name`` with the working directory ``tmp_path/work`` and the artifact cache ``cache``."""
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(cache))  # the kernel inherits the environment
    monkeypatch.setenv("SEMSIM_NOTEBOOK_SCALE", "small")
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    work = tmp_path / "work"
    work.mkdir()
    client = NotebookClient(notebook, km=kernel_manager(tmp_path), timeout=120,
                            resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError at the first failing cell
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    return notebook, work


def outputs_of(notebook: nbformat.NotebookNode) -> tuple[str, int]:
    """All text the cells printed or displayed, and the number of PNG images displayed."""
    texts, images = [], 0
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", ""))
            texts.append(out.get("data", {}).get("text/plain", ""))
            images += "image/png" in out.get("data", {})
    return "\n".join(texts), images


def test_quickstart_notebook(tmp_path, monkeypatch, cache):
    notebook, work = execute("quickstart", tmp_path, monkeypatch, cache)
    out = work / "results" / "notebook_quickstart"
    for name in ("results.csv", "table.md", "accuracy.png", "ber.png", "links.json", "manifest.json"):
        assert (out / name).stat().st_size > 0, name
    text, images = outputs_of(notebook)
    assert images == 2 and "awgn theory" in text and "rayleigh theory" in text
    table = pd.read_csv(out / "results.csv")
    assert set(table.link) == {"rkdsc-8", "deepjscc-8", "qpsk"} and set(table.channel) == {"awgn", "rayleigh"}
    assert set(table.snr_db) == {-10, -5, 0, 5, 10, 15, 20}
    assert len(list(cache.glob("*/meta.json"))) == 5  # the RKD-SC stages and deep JSCC went to the test's cache
    jscc = table[(table.link == "deepjscc-8") & (table.channel == "awgn")].set_index("snr_db").value
    assert jscc[10] > 0.6 and jscc[-10] < jscc[10] - 0.2  # well above chance at its training SNR, falls below


def test_custom_link_notebook(tmp_path, monkeypatch, cache):
    notebook, work = execute("custom_link", tmp_path, monkeypatch, cache)
    assert (work / "pca_link.py").is_file()  # written by the notebook, imported by module:Class
    out = work / "results" / "notebook_custom_link"
    for name in ("results.csv", "table.md", "accuracy.png", "links.json"):
        assert (out / name).stat().st_size > 0, name
    text, images = outputs_of(notebook)
    assert images == 1 and "rejected:" in text and "symbol" in text and "unknown field" in text
    table = pd.read_csv(out / "results.csv").set_index(["link", "channel", "snr_db"])
    assert (table.channel_uses == 8).all()
    # 16 principal components of the digits with a nearest-class-mean receiver: about 90 % at high SNR, near
    # chance (10 %) at -10 dB where the noise is ten times the signal
    assert table.loc[("pca-8", "awgn", 20.0), "value"] > 0.8
    assert table.loc[("pca-8", "awgn", -10.0), "value"] < table.loc[("pca-8", "awgn", 20.0), "value"] - 0.3


@pytest.mark.parametrize("name", ["quickstart", "custom_link"])
def test_notebooks_are_stored_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert notebook.metadata.kernelspec.name == "python3"
    assert all(cell.outputs == [] and cell.execution_count is None for cell in notebook.cells
               if cell.cell_type == "code")
