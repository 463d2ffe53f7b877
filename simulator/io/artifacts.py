"""Trained artifacts on disk: weights in safetensors, a JSON sidecar, resumable training state.

An artifact is identified by a *key*, a hash of the configuration that made it, of the keys of the artifacts it
was made from and of the *recipe*, the version of the training code that made it (bumped when that code changes
what it trains), so a changed setting or recipe retrains only what depends on it. Its directory
``<cache>/<kind>-<key>/`` holds

* ``weights.safetensors``: the model's tensors (never a pickle);
* ``meta.json``: kind, key, the configuration, parent keys and recipe of the key, metrics, library versions,
  creation time;
* ``card.md``: a human-readable model card (parameters, FLOPs, accuracy), and ``curves.png`` for training curves;
* while training: ``checkpoint.safetensors`` + ``checkpoint.json`` (model and optimiser tensors, epoch, history),
  so an interrupted training run resumes at the last finished epoch. They are removed once the artifact is done.

All files are written atomically; an artifact counts as present only once its ``meta.json`` exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from simulator.core.errors import UserError
from simulator.core.numerics import numerics_of
from simulator.io.atomic import atomic_path, write_text

DEFAULT_CACHE = Path(".semsim-cache")


def cache_root() -> Path:
    """Where artifacts live: ``$SEMSIM_CACHE_DIR`` or ``.semsim-cache`` in the working directory."""
    return Path(os.environ.get("SEMSIM_CACHE_DIR") or DEFAULT_CACHE)


def artifact_key(kind: str, config: Any, parents: dict[str, str] | None = None, recipe: int = 1) -> str:
    """16-hex-digit key of an artifact of ``kind`` made with ``config`` from artifacts ``parents`` (name -> key) by
    version ``recipe`` of the training code that makes it (each stage bumps its recipe when its code changes what it
    trains, so that old weights are not reused under the same key)."""
    material = json.dumps({"kind": kind, "config": config, "parents": parents or {}, "recipe": recipe},
                          sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def file_fingerprint(*paths: str | Path) -> str:
    """16 hex digits of the SHA-256 of the files' contents, in order: what a link whose results depend on weight
    files returns from ``fingerprint()`` (:meth:`simulator.core.link.Link.fingerprint`)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _without_timings(value: Any) -> Any:
    """``value`` (JSON data) with every entry named ``seconds`` removed, at any depth."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def artifacts_fingerprint(*artifacts: Artifact) -> str:
    """Fingerprint of trained artifacts: their kinds, keys and the contents of their weights (or, for an artifact
    without weights such as a search result, of its metrics). Changes when any of them is retrained."""
    return hashlib.sha256("|".join(f"{a.kind}:{a.key}:{a.fingerprint()}" for a in artifacts).encode()).hexdigest()[:16]


def _device_of(module: torch.nn.Module | None) -> str:
    parameter = next(module.parameters(), None) if module is not None else None
    return "cpu" if parameter is None else str(parameter.device)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import simulator

    return {"semsim": simulator.__version__, "torch": torch.__version__, "sionna": version("sionna-no-rt"),
            "python": platform.python_version()}


@dataclass
class Artifact:
    """One artifact directory, with the configuration, parents and recipe its key was made from (written to its
    ``meta.json`` when it is saved)."""

    kind: str
    key: str
    directory: Path
    config: Any = None
    parents: dict[str, str] = field(default_factory=dict)
    recipe: int = 1

    @property
    def weights_path(self) -> Path:
        return self.directory / "weights.safetensors"

    @property
    def meta_path(self) -> Path:
        return self.directory / "meta.json"

    def exists(self) -> bool:
        """Whether the artifact is complete (its sidecar is written last)."""
        if not self.meta_path.is_file():
            return False
        return self.weights_path.is_file() or not self.meta().get("has_weights", True)

    def fingerprint(self) -> str:
        """16 hex digits of the weights file's contents; without weights, of ``meta.json``'s metrics less their
        wall-clock times (entries named ``seconds``), which change from run to run while the result (a searched
        genotype, say) does not: retraining the same result keeps the fingerprint, and so the point ids."""
        if self.weights_path.is_file():
            return file_fingerprint(self.weights_path)
        metrics = json.dumps(_without_timings(self.meta().get("metrics", {})), sort_keys=True, default=str)
        return hashlib.sha256(metrics.encode()).hexdigest()[:16]

    def meta(self) -> dict[str, Any]:
        try:
            return json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"artifact metadata {self.meta_path} is unreadable ({type(err).__name__}); "
                            "delete the directory to retrain") from None

    # --- finished artifacts -----------------------------------------------------------------------------------
    def save(self, module: torch.nn.Module | None, metrics: dict[str, Any], card: str | None = None) -> None:
        """Write weights (none for ``module=None``, e.g. a search result), then the sidecar (which marks the
        artifact complete: the key's configuration, parents and recipe, the metrics), then drop the training
        state."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if module is not None:
            with atomic_path(self.weights_path) as tmp:
                save_file(_contiguous(module.state_dict()), str(tmp))
        if card is not None:
            write_text(self.directory / "card.md", card)
        meta = {"kind": self.kind, "key": self.key, "has_weights": module is not None, "config": self.config,
                "parents": self.parents, "recipe": self.recipe, "metrics": metrics,
                "numerics": numerics_of(_device_of(module), torch.get_num_threads()), "versions": _versions(),
                "created": datetime.now(UTC).isoformat(timespec="seconds")}
        write_text(self.meta_path, json.dumps(meta, indent=2, default=str))
        for name in ("checkpoint.safetensors", "checkpoint.json"):
            (self.directory / name).unlink(missing_ok=True)

    def load_into(self, module: torch.nn.Module, device: str = "cpu") -> torch.nn.Module:
        """Load the weights into ``module`` (same architecture); a mismatch or a corrupt file is a UserError."""
        load_weights(module, self.weights_path, device)
        return module

    # --- resumable training -----------------------------------------------------------------------------------
    def save_checkpoint(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, epoch: int,
                        history: list[dict]) -> None:
        """Training state after ``epoch`` finished epochs."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v for k, v in module.state_dict().items()}
        opt_state = optimizer.state_dict()
        scalars: dict[str, Any] = {}
        for index, state in opt_state["state"].items():
            for name, value in state.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{index}.{name}"] = value
                else:
                    scalars[f"{index}.{name}"] = value
        with atomic_path(self.directory / "checkpoint.safetensors") as tmp:
            save_file(_contiguous(tensors), str(tmp))
        write_text(self.directory / "checkpoint.json", json.dumps(
            {"epoch": epoch, "history": history, "optim_scalars": scalars,
             "param_groups": opt_state["param_groups"]}, default=str))

    def load_checkpoint(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        device: str = "cpu") -> tuple[int, list[dict]]:
        """Restore training state; returns ``(finished epochs, history)``, ``(0, [])`` when there is none."""
        info_path, tensor_path = self.directory / "checkpoint.json", self.directory / "checkpoint.safetensors"
        if not (info_path.is_file() and tensor_path.is_file()):
            return 0, []
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            tensors = load_file(str(tensor_path), device=device)
        except (OSError, json.JSONDecodeError, SafetensorError):
            return 0, []  # an unreadable checkpoint only costs the retraining it would have saved
        model_state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
        module.load_state_dict(model_state)
        state: dict[int, dict[str, Any]] = {}
        for name, value in tensors.items():
            if name.startswith("optim."):
                _, index, field = name.split(".", 2)
                state.setdefault(int(index), {})[field] = value
        for name, value in info["optim_scalars"].items():
            index, field = name.split(".", 1)
            state.setdefault(int(index), {})[field] = value
        optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})
        return int(info["epoch"]), list(info["history"])


def artifact(kind: str, config: Any, parents: dict[str, str] | None = None, root: Path | None = None,
             recipe: int = 1) -> Artifact:
    """The artifact of ``kind`` for ``config``, ``parents`` and ``recipe`` (present or not)."""
    key = artifact_key(kind, config, parents, recipe)
    return Artifact(kind, key, (root or cache_root()) / f"{kind}-{key}", config, dict(parents or {}), recipe)


def load_weights(module: torch.nn.Module, path: Path, device: str = "cpu") -> None:
    """Load a safetensors file into ``module``; every problem is a one-line :class:`UserError`."""
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        state = load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"checkpoint {path} is not a readable safetensors file ({' '.join(str(err).split())})") \
            from None
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(f"{label}: {', '.join(names[:3])}{'...' if len(names) > 3 else ''}"
                           for label, names in (("missing", missing), ("unexpected", unexpected),
                                                ("wrong shape", wrong)) if names)
        raise UserError(f"checkpoint {path} does not fit the model ({detail})")
    module.load_state_dict(state)


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
