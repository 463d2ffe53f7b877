"""CIFAR-10 / CIFAR-100 data sources on tiny fakes in the official python-pickle layout (offline)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import pickle
import pickletools
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from simulator.core.errors import UserError
from simulator.data.cifar import CIFAR10Source, CIFAR100Source, stratified_holdout
from simulator.data.source import DATA_SOURCES

PER_BATCH = 20
PIXEL = (1, 5, 7)  # (channel, row, col) set to 255 in the first image of every batch


def _batch(n: int, labels: dict[bytes, list[int]], seed: int) -> dict[bytes, object]:
    data = np.random.default_rng(seed).integers(0, 200, size=(n, 3072), dtype=np.uint8)
    channel, row, col = PIXEL
    data[0, channel * 1024 + row * 32 + col] = 255  # above every random value
    data[0, 0] = 0
    data[0, 3071] = 255
    return {b"batch_label": b"fake batch", b"data": data, b"filenames": [b"x.png"] * n, **labels}


def _dump(path: Path, obj: object, protocol: int = 2) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


def make_cifar10(root: Path, protocol: int = 2) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        labels = [int(v) for v in (np.arange(PER_BATCH) + i) % 10]
        _dump(folder / f"data_batch_{i}", _batch(PER_BATCH, {b"labels": labels}, seed=i), protocol)
    _dump(folder / "test_batch", _batch(PER_BATCH, {b"labels": list(range(10)) * 2}, seed=0), protocol)
    names = [f"class{i}".encode() for i in range(10)]
    _dump(folder / "batches.meta", {b"label_names": names, b"num_cases_per_batch": PER_BATCH, b"num_vis": 3072})
    return folder


def make_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in (("train", 400), ("test", 100)):
        fine = [int(v) for v in np.arange(n) % 100]
        coarse = [v // 5 for v in fine]
        _dump(folder / name, _batch(n, {b"fine_labels": fine, b"coarse_labels": coarse}, seed=n))
    _dump(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"c{i}".encode() for i in range(20)]})
    return folder


def cifar10(root: Path, **params) -> CIFAR10Source:
    return CIFAR10Source(CIFAR10Source.Params(root=str(root), **params))


def tar_gz(path: Path, source: Path, arcname: str) -> str:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source, arcname=arcname)
    return hashlib.md5(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------------ loading


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar10_shapes_dtypes_ranges_and_pixel_layout(tmp_path, protocol):
    make_cifar10(tmp_path, protocol)
    source = cifar10(tmp_path, val_fraction=0.2)
    train, val, test = source.split("train"), source.split("val"), source.split("test")
    assert (len(train), len(val), len(test)) == (80, 20, 20)
    for split in (train, val, test):
        assert split.images.dtype == torch.float32 and split.labels.dtype == torch.int64
        assert split.images.shape[1:] == (3, 32, 32)
        assert 0.0 <= split.images.min() and split.images.max() <= 1.0
    channel, row, col = PIXEL
    first = test.images[0]
    assert first[0, 0, 0] == 0.0 and first[2, 31, 31] == 1.0
    assert (first == 1.0).nonzero().tolist() == [[channel, row, col], [2, 31, 31]]  # random values stop at 199
    raw = pickle.loads((tmp_path / "cifar-10-batches-py/test_batch").read_bytes(), encoding="bytes")[b"data"]
    expected = torch.from_numpy(raw.reshape(-1, 3, 32, 32).astype(np.float32) / 255)
    torch.testing.assert_close(test.images, expected)
    assert test.labels.tolist() == list(range(10)) * 2
    assert source.num_classes == 10 and source.class_names == [f"class{i}" for i in range(10)]


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2's str (BINSTRING), as cPickle wrote the original files: no _codecs global."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def test_python2_style_pickle_with_legacy_numpy_core_spelling_loads(tmp_path):
    """The original files (Python 2, numpy 1) hold str data and name numpy.core.multiarray._reconstruct."""
    folder = make_cifar10(tmp_path)
    batch = _batch(PER_BATCH, {b"labels": [3] * PER_BATCH}, seed=9)
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(batch)
    blob = buffer.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    globals_used = {arg for op, arg, _ in pickletools.genops(blob) if op.name == "GLOBAL"}
    assert globals_used == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    (folder / "test_batch").write_bytes(blob)
    test = cifar10(tmp_path).split("test")
    assert test.labels.tolist() == [3] * PER_BATCH
    assert torch.equal(test.images, torch.from_numpy(batch[b"data"].reshape(-1, 3, 32, 32)).float() / 255)


def test_stratified_val_split_sizes_and_determinism(tmp_path):
    make_cifar10(tmp_path)
    a, b = cifar10(tmp_path, val_fraction=0.3, split_seed=4), cifar10(tmp_path, val_fraction=0.3, split_seed=4)
    assert torch.equal(a.split("val").images, b.split("val").images)
    assert torch.bincount(a.split("val").labels, minlength=10).tolist() == [3] * 10
    assert torch.bincount(a.split("train").labels, minlength=10).tolist() == [7] * 10
    other = cifar10(tmp_path, val_fraction=0.3, split_seed=5)
    assert not torch.equal(a.split("val").images, other.split("val").images)
    everything = torch.cat([a.split("train").images, a.split("val").images])
    assert torch.unique(everything.flatten(1), dim=0).shape[0] == 100  # a partition: nothing lost or repeated
    assert len(cifar10(tmp_path, val_fraction=0.0).split("val")) == 0


def test_stratified_holdout_exact_total_with_uneven_classes():
    labels = np.array([0] * 7 + [1] * 3 + [2] * 1)
    held = stratified_holdout(labels, 0.5, seed=0)
    assert len(held) == 6 and len(set(held.tolist())) == 6
    assert np.array_equal(held, stratified_holdout(labels, 0.5, seed=0))


def test_lazy_and_cached(tmp_path):
    source = cifar10(tmp_path / "nowhere")  # no error until the data is needed
    with pytest.raises(UserError):
        source.split("train")
    make_cifar10(tmp_path)
    source = cifar10(tmp_path)
    assert source.split("train") is source.split("train")


def test_cifar100_fine_and_coarse_labels(tmp_path):
    make_cifar100(tmp_path)
    fine = CIFAR100Source(CIFAR100Source.Params(root=str(tmp_path), val_fraction=0.25))
    coarse = CIFAR100Source(CIFAR100Source.Params(root=str(tmp_path), val_fraction=0.25, label_mode="coarse"))
    assert fine.num_classes == 100 and coarse.num_classes == 20
    assert (len(fine.split("train")), len(fine.split("val")), len(fine.split("test"))) == (300, 100, 100)
    assert torch.bincount(fine.split("val").labels).tolist() == [1] * 100
    assert fine.split("test").labels.tolist() == list(range(100))
    assert coarse.split("test").labels.tolist() == [i // 5 for i in range(100)]
    assert torch.bincount(coarse.split("val").labels).tolist() == [5] * 20
    assert fine.class_names[:2] == ["f0", "f1"] and coarse.class_names[-1] == "c19"
    with pytest.raises(ValueError):
        CIFAR100Source.Params(label_mode="medium")


# ------------------------------------------------------------------------------------------------------- errors


def test_missing_dir_names_the_path_and_the_fix(tmp_path):
    root = tmp_path / "no-such-dir"
    with pytest.raises(UserError) as err:
        cifar10(root).split("test")
    message = str(err.value)
    assert str(root) in message and "download: true" in message and "\n" not in message


def test_incomplete_folder_names_the_missing_file(tmp_path):
    folder = make_cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(UserError, match="missing data_batch_3"):
        cifar10(tmp_path).split("test")


def test_truncated_pickle(tmp_path):
    folder = make_cifar10(tmp_path)
    blob = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(UserError, match="data_batch_2 is not a readable CIFAR pickle"):
        cifar10(tmp_path).split("train")


def test_pickle_without_data_key(tmp_path):
    folder = make_cifar10(tmp_path)
    _dump(folder / "test_batch", {b"labels": [0]})
    with pytest.raises(UserError, match="test_batch is not a CIFAR pickle \\(missing key 'data'\\)"):
        cifar10(tmp_path).split("test")


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("payload", ["system", "eval"])
def test_malicious_pickle_is_refused(tmp_path, payload):
    folder = make_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    evil = _Evil(marker) if payload == "system" else _EvalEvil()
    _dump(folder / "data_batch_1", {b"data": evil, b"labels": []})
    with pytest.raises(UserError, match="data_batch_1 is not a CIFAR pickle: it refers to .*(system|eval)"):
        cifar10(tmp_path).split("train")
    assert not marker.exists()


def test_codecs_encode_only_for_latin1(tmp_path):
    folder = make_cifar10(tmp_path)
    # _codecs.encode('x', 'hex')-style calls are refused: only latin-1 text, as protocol-2 bytes need
    blob = b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R."
    (folder / "batches.meta").write_bytes(blob)
    with pytest.raises(UserError, match="batches.meta is not a CIFAR pickle: it refers to _codecs.encode .*rot13"):
        _ = cifar10(tmp_path).class_names
    assert pickle.load(io.BytesIO(blob)) == "k"  # the same stream, unrestricted, would run the codec


# ----------------------------------------------------------------------------------------- download and extract


@pytest.fixture
def fake_archive(tmp_path):
    source = make_cifar10(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    return archive, tar_gz(archive, source, "cifar-10-batches-py")


def test_download_from_file_url_extracts_and_loads(tmp_path, fake_archive, monkeypatch):
    archive, md5 = fake_archive
    monkeypatch.setattr(CIFAR10Source, "url", archive.as_uri())
    monkeypatch.setattr(CIFAR10Source, "md5", md5)
    root = tmp_path / "data"
    source = cifar10(root, download=True)
    assert len(source.split("train")) == 90 and len(source.split("test")) == PER_BATCH
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]  # no archive or temp files left
    assert len(cifar10(root).split("test")) == PER_BATCH  # found again without download


def test_download_with_wrong_md5_leaves_nothing(tmp_path, fake_archive, monkeypatch):
    archive, md5 = fake_archive
    monkeypatch.setattr(CIFAR10Source, "url", archive.as_uri())
    monkeypatch.setattr(CIFAR10Source, "md5", "0" * 32)
    root = tmp_path / "data"
    with pytest.raises(UserError, match=f"checksum mismatch for .*expected MD5 0{{32}}, got {md5}"):
        cifar10(root, download=True).split("test")
    assert list(root.iterdir()) == []


def test_download_failure_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setattr(CIFAR10Source, "url", (tmp_path / "absent.tar.gz").as_uri())
    with pytest.raises(UserError, match="downloading .*absent.tar.gz failed"):
        cifar10(tmp_path / "data", download=True).split("test")
    assert list((tmp_path / "data").iterdir()) == []


def test_archive_in_root_is_checked_and_extracted(tmp_path, fake_archive, monkeypatch):
    archive, md5 = fake_archive
    root = tmp_path / "data"
    root.mkdir()
    archive.rename(root / archive.name)
    with pytest.raises(UserError, match="checksum mismatch for .*cifar-10-python.tar.gz"):
        cifar10(root).split("test")  # the official MD5 does not match the fake
    monkeypatch.setattr(CIFAR10Source, "md5", md5)
    assert len(cifar10(root).split("test")) == PER_BATCH
    assert (root / "cifar-10-batches-py" / "test_batch").is_file()


@pytest.mark.parametrize("name", ["../evil", "/tmp/evil-absolute", "cifar-10-batches-py/../../evil"])
def test_tar_with_unsafe_member_is_refused(tmp_path, monkeypatch, name):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
        info = tarfile.TarInfo(name)
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    monkeypatch.setattr(CIFAR10Source, "url", archive.as_uri())
    monkeypatch.setattr(CIFAR10Source, "md5", hashlib.md5(archive.read_bytes()).hexdigest())
    root = tmp_path / "data"
    with pytest.raises(UserError, match="unsafe member"):
        cifar10(root, download=True).split("test")
    assert list(root.iterdir()) == [] and not (tmp_path / "evil").exists()


def test_tar_with_symlink_is_refused(tmp_path, monkeypatch):
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    monkeypatch.setattr(CIFAR10Source, "url", archive.as_uri())
    monkeypatch.setattr(CIFAR10Source, "md5", hashlib.md5(archive.read_bytes()).hexdigest())
    with pytest.raises(UserError, match="not a plain file or folder"):
        cifar10(tmp_path / "data", download=True).split("test")


# ------------------------------------------------------------------------------------------------- registration


def test_sources_resolve_through_the_registry():
    assert DATA_SOURCES.resolve("cifar10") is CIFAR10Source
    assert DATA_SOURCES.resolve("cifar100") is CIFAR100Source
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="semsim.data")}
    assert names.get("cifar10") == "simulator.data.cifar:CIFAR10Source"
    assert names.get("cifar100") == "simulator.data.cifar:CIFAR100Source"


def test_scenario_builds_the_source(tmp_path):
    from conftest import scenario_dict

    from simulator.config.assemble import build_data
    from simulator.config.scenario import parse_scenario

    make_cifar10(tmp_path)
    scenario = parse_scenario(scenario_dict(data={"type": "cifar10", "root": str(tmp_path), "val_fraction": 0.2}))
    data = build_data(scenario)
    assert isinstance(data, CIFAR10Source) and len(data.split("val")) == 20
    batch = data.test_batch(0, 8)
    assert batch["images"].shape == (8, 3, 32, 32)
