"""CIFAR-10 and CIFAR-100 data sources, read from the official python-pickle release.

``root`` holds the extracted folder (``cifar-10-batches-py/`` or ``cifar-100-python/``) or the official
``.tar.gz``; with ``download: true`` a missing archive is fetched, its MD5 checked, and extracted. Extraction is
safe (no absolute paths, ``..``, links or devices) and atomic (into a temporary folder beside the target, then one
rename), so an interrupted run never leaves half a data set behind.

CIFAR's batches are pickles, so they are read with :class:`RestrictedUnpickler`, which only resolves the handful
of numpy globals a CIFAR batch refers to; a pickle naming anything else (``os.system``, ...) is refused.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

import numpy as np
from numpy._core.multiarray import _reconstruct
from numpy._core.numeric import _frombuffer
from pydantic import Field

from simulator.core.errors import UserError
from simulator.core.params import Params
from simulator.data.source import DATA_SOURCES, DataSource, Split

IMAGE_SHAPE = (3, 32, 32)
ROW_LENGTH = 3 * 32 * 32  # one image: R (1024), G (1024), B (1024), each row-major 32x32
DOWNLOAD_TIMEOUT_S = 60
CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------- safe unpickling


def _latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 uses it to pickle ``bytes`` with protocol 2, limited to latin-1."""
    spelling = str(encoding).lower().replace("-", "").replace("_", "")
    if not isinstance(text, str) or spelling not in ("latin1", "iso88591") or errors != "strict":
        raise RefusedGlobal("_codecs", f"encode (with {encoding!r}; only latin-1 text, for protocol-2 bytes)")
    return text.encode("latin-1")


# (module, name) -> object: everything a CIFAR pickle may refer to. Python 2 (the original files) and numpy 1
# write ``numpy.core``, numpy 2 writes ``numpy._core``; Python 3 with protocol 2 writes bytes via _codecs.encode.
SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,  # protocol 5
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _latin1_encode,
}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle referred to a global outside :data:`SAFE_GLOBALS`."""

    def __init__(self, module: str, name: str):
        super().__init__(f"refused global {module}.{name}")
        self.qualified = f"{module}.{name}"


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`SAFE_GLOBALS` (numpy arrays); dicts, lists, strings and numbers
    need no globals. Everything else, extension codes and persistent ids included, is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def load_pickle(path: Path) -> dict[str, Any]:
    """A CIFAR pickle as a dict with ``str`` keys; any failure is a one-line :class:`UserError`."""
    try:
        with open(path, "rb") as file:
            obj = RestrictedUnpickler(file, encoding="bytes").load()
    except RefusedGlobal as err:
        raise UserError(f"{path} is not a CIFAR pickle: it refers to {err.qualified}, which is refused (only numpy "
                        f"arrays, lists, dicts, strings and numbers are allowed); replace the file") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    except Exception as err:  # truncated or corrupt: EOFError, UnpicklingError, ValueError, ...
        detail = " ".join(str(err).split()) or type(err).__name__
        raise UserError(f"{path} is not a readable CIFAR pickle (truncated or corrupt: {detail}); delete it and set "
                        f"download: true, or extract the archive again") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} is not a CIFAR pickle (expected a dict, got {type(obj).__name__})")
    return {key.decode("latin-1") if isinstance(key, bytes) else str(key): value for key, value in obj.items()}


def _need(batch: dict[str, Any], key: str, path: Path) -> Any:
    if key not in batch:
        raise UserError(f"{path} is not a CIFAR pickle (missing key {key!r})")
    return batch[key]


def _read_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(data uint8 [N, 3072], labels int64 [N])`` of one batch file, checked."""
    batch = load_pickle(path)
    data = _need(batch, "data", path)
    labels = _need(batch, label_key, path)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == ROW_LENGTH):
        got = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UserError(f"{path} is not a CIFAR pickle ('data' is {got}, expected uint8 [N, {ROW_LENGTH}])")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise UserError(f"{path} is not a CIFAR pickle ('{label_key}' is not a list of integers)") from None
    if labels.shape != (data.shape[0],):
        raise UserError(f"{path} is not a CIFAR pickle ({data.shape[0]} images but '{label_key}' has shape "
                        f"{list(labels.shape)})")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"{path} is not a CIFAR pickle ('{label_key}' outside 0..{num_classes - 1})")
    return data, labels


def _to_split(data: np.ndarray, labels: np.ndarray) -> Split:
    import torch  # here, not at import: resolving the type (semsim validate) does not load torch

    images = torch.from_numpy(np.ascontiguousarray(data).reshape(-1, *IMAGE_SHAPE)).to(torch.float32).div_(255.0)
    return Split(images, torch.from_numpy(labels))


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of ``round(fraction * N)`` examples held out, each class in proportion to its size (largest
    remainders get the leftover places), chosen by ``seed``."""
    total = round(len(labels) * fraction)
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * total / len(labels)
    take = np.floor(quota).astype(np.int64)
    leftover = total - int(take.sum())
    take[np.argsort(-(quota - take), kind="stable")[:leftover]] += 1
    rng = np.random.default_rng(seed)
    held = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(held))


# --------------------------------------------------------------------------------------- download and extract


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, md5: str, directory: Path, name: str) -> Path:
    """Stream ``url`` to a temporary file in ``directory`` with a progress bar; the file's path once its MD5 is
    ``md5`` (the caller deletes it). A failed or corrupt download leaves nothing behind."""
    from tqdm import tqdm

    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
    tmp_path = Path(tmp)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                    size = int(response.headers.get("Content-Length") or 0) or None
                    with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=f"downloading {name}",
                              disable=None, leave=False) as bar:
                        while chunk := response.read(CHUNK):
                            out.write(chunk)
                            digest.update(chunk)
                            bar.update(len(chunk))
            except (OSError, ValueError, http.client.HTTPException) as err:
                reason = getattr(err, "reason", None) or err
                raise UserError(f"downloading {url} failed: {' '.join(str(reason).split())}; check the network, or "
                                f"download it by hand into {directory}") from None
        got = digest.hexdigest()
        if got != md5:
            raise UserError(f"checksum mismatch for {url}: expected MD5 {md5}, got {got}; the download is corrupt, "
                            f"try again")
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return tmp_path


def _check_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for member in members:
        parts = PurePosixPath(member.name.replace("\\", "/")).parts
        if member.name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
            raise UserError(f"{archive} has an unsafe member {member.name!r} (absolute path or '..'); refusing to "
                            f"extract it")
        if not (member.isfile() or member.isdir()):
            raise UserError(f"{archive} has a member {member.name!r} that is not a plain file or folder; refusing "
                            f"to extract it")
    return members


def safe_extract(archive: Path, root: Path, folder: str) -> None:
    """Extract ``folder`` from the ``.tar.gz`` ``archive`` into ``root``, safely and atomically."""
    staging = Path(tempfile.mkdtemp(prefix=f".{folder}.", suffix=".extracting", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = _check_members(tar, archive)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(staging, members=members, filter="data")
                else:  # pragma: no cover - Python without extraction filters; members are checked above
                    tar.extractall(staging, members=members)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            detail = " ".join(str(err).split()) or type(err).__name__
            raise UserError(f"cannot extract {archive} (corrupt or not a .tar.gz: {detail}); delete it and set "
                            f"download: true") from None
        extracted = staging / folder
        if not extracted.is_dir():
            raise UserError(f"{archive} does not contain the folder {folder}/; is it the right archive?")
        try:
            os.rename(extracted, root / folder)
        except OSError as err:
            if not (root / folder).is_dir():  # else another process finished first: keep its copy
                raise UserError(f"cannot move the extracted {folder}/ into {root}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ data sources


class CIFARSource(DataSource):
    """Common loader of the CIFAR python release; subclasses name the files and label keys."""

    display_name: ClassVar[str]
    url: ClassVar[str]  # the official archive; tests point it at a local file:// URL
    md5: ClassVar[str]
    archive_name: ClassVar[str]
    folder: ClassVar[str]
    train_files: ClassVar[tuple[str, ...]]
    test_file: ClassVar[str]
    meta_file: ClassVar[str]
    expected: ClassVar[str]  # the layout, for messages

    class Params(Params):
        root: str = Field(default="data", min_length=1, description="folder holding the extracted data or .tar.gz")
        download: bool = False
        val_fraction: float = Field(default=0.1, ge=0.0, lt=0.5)
        split_seed: int = Field(default=0, ge=0)

    def __init__(self, params=None, seed: int = 0):
        super().__init__(params, seed)
        self._splits: dict[str, Split] | None = None
        self._class_names: list[str] | None = None

    # subclasses: which label list and which class-name list
    @property
    def label_key(self) -> str:
        raise NotImplementedError

    @property
    def names_key(self) -> str:
        raise NotImplementedError

    @property
    def root(self) -> Path:
        return Path(self.params.root).expanduser()

    def split(self, name):
        if self._splits is None:
            self._splits = self._load()
        return self._splits[name]

    @property
    def class_names(self) -> list[str]:
        """Class names from the release's meta file, indexed by label."""
        if self._class_names is None:
            path = self._data_dir() / self.meta_file
            names = _need(load_pickle(path), self.names_key, path)
            if not isinstance(names, list) or len(names) != self.num_classes:
                raise UserError(f"{path} is not a CIFAR meta file ('{self.names_key}' should list "
                                f"{self.num_classes} names)")
            self._class_names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
        return self._class_names

    def _missing(self, directory: Path) -> list[str]:
        return [f for f in (*self.train_files, self.test_file, self.meta_file) if not (directory / f).is_file()]

    def _data_dir(self) -> Path:
        """The extracted folder, extracting the archive in ``root`` or downloading it first when needed."""
        root = self.root
        directory = root / self.folder
        if not directory.is_dir():
            archive = root / self.archive_name
            if archive.is_file():
                got = _md5(archive)
                if got != self.md5:
                    raise UserError(f"checksum mismatch for {archive}: expected MD5 {self.md5}, got {got}; delete it "
                                    f"and set download: true")
                safe_extract(archive, root, self.folder)
            elif self.params.download:
                try:
                    root.mkdir(parents=True, exist_ok=True)
                except OSError as err:
                    raise UserError(f"cannot create the data folder {root}: {err.strerror or err}") from None
                tmp = _download(self.url, self.md5, root, self.archive_name)
                try:
                    safe_extract(tmp, root, self.folder)
                finally:
                    tmp.unlink(missing_ok=True)
            else:
                raise UserError(f"{self.display_name} not found under {root}: expected {self.expected} (or "
                                f"{self.archive_name}); set download: true or point root at the extracted data")
        missing = self._missing(directory)
        if missing:
            raise UserError(f"{self.display_name} under {directory} is incomplete: missing {', '.join(missing)}; "
                            f"delete the folder and set download: true, or extract the archive again")
        return directory

    def _load(self) -> dict[str, Split]:
        directory = self._data_dir()
        parts = [_read_batch(directory / f, self.label_key, self.num_classes) for f in self.train_files]
        data = np.concatenate([d for d, _ in parts])
        labels = np.concatenate([y for _, y in parts])
        held = stratified_holdout(labels, self.params.val_fraction, self.params.split_seed)
        keep = np.ones(len(labels), dtype=bool)
        keep[held] = False
        test_data, test_labels = _read_batch(directory / self.test_file, self.label_key, self.num_classes)
        return {
            "train": _to_split(data[keep], labels[keep]),
            "val": _to_split(data[held], labels[held]),
            "test": _to_split(test_data, test_labels),
        }


@DATA_SOURCES.register("cifar10")
class CIFAR10Source(CIFARSource):
    """CIFAR-10: 60,000 32x32 colour images in 10 classes (50,000 train, 10,000 test), from a local folder or
    downloaded on request. Images ``[N, 3, 32, 32]`` in ``[0, 1]``; ``val_fraction`` of the training set is held
    out for validation, stratified and fixed by ``split_seed``."""

    description = "CIFAR-10 (32x32 colour, 10 classes), local or downloaded with download: true"
    num_classes = 10
    display_name = "CIFAR-10"
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    md5 = "c58f30108f718f92721af3b95e74349a"
    archive_name = "cifar-10-python.tar.gz"
    folder = "cifar-10-batches-py"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_file = "test_batch"
    meta_file = "batches.meta"
    expected = "cifar-10-batches-py/data_batch_1..5, test_batch and batches.meta"
    label_key = "labels"
    names_key = "label_names"


@DATA_SOURCES.register("cifar100")
class CIFAR100Source(CIFARSource):
    """CIFAR-100: 60,000 32x32 colour images in 100 fine classes grouped into 20 coarse ones (``label_mode``),
    from a local folder or downloaded on request. Splits as for ``cifar10``."""

    description = "CIFAR-100 (32x32 colour, 100 fine or 20 coarse classes), local or downloaded with download: true"
    num_classes = 100
    display_name = "CIFAR-100"
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    md5 = "eb9058c3a382ffc7106e4002c42a8d85"
    archive_name = "cifar-100-python.tar.gz"
    folder = "cifar-100-python"
    train_files = ("train",)
    test_file = "test"
    meta_file = "meta"
    expected = "cifar-100-python/train, test and meta"

    class Params(CIFARSource.Params):
        label_mode: Literal["fine", "coarse"] = "fine"

    def __init__(self, params=None, seed: int = 0):
        super().__init__(params, seed)
        self.num_classes = 100 if self.params.label_mode == "fine" else 20

    @property
    def label_key(self) -> str:
        return f"{self.params.label_mode}_labels"

    @property
    def names_key(self) -> str:
        return f"{self.params.label_mode}_label_names"
