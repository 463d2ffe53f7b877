"""Scenario files: the YAML schema (pydantic), loading, and one-line error messages.

A scenario names the seed, device, data source, links, channels, SNR grid, metrics, Monte-Carlo budget, output
directory and executor; see the README's "Scenario reference" for every field. Links, channels and data sources
are written flat: ``{type: rayleigh, name: fast, fading: iid}``; ``type`` resolves through the registries and the
remaining fields are validated by that class's ``Params`` model.

Any problem becomes a :class:`~simulator.core.errors.UserError` whose message is one line naming the file, the
field (``links[0].bits_per_symbol``) and what is allowed (:mod:`simulator.core.validation`). The component
references (links, channels, executor) are :mod:`simulator.core.spec`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

import simulator.channels  # noqa: F401  (registers the built-in channel types)
from simulator.core.errors import UserError
from simulator.core.metrics import METRICS, IntervalMethod
from simulator.core.spec import ChannelSpec, ComponentSpec, ExecutorSpec, LinkSpec
from simulator.core.validation import FieldError, describe_error, first_error, format_location, validate_nested
from simulator.data.source import DATA_SOURCES

__all__ = ["ChannelSpec", "ComponentSpec", "DataSpec", "ExecutorSpec", "LinkSpec", "MonteCarlo", "SNRRange",
           "Scenario", "load_scenario", "parse_scenario"]

MAX_SNR_POINTS = 1000
#: version of the evaluation numerics (:mod:`simulator.engine.runner`) in every point id; bumped when a change to the
#: runner can move results (2: one receiver call per point instead of calls packed over points)
EVALUATION_VERSION = 2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataSpec(ComponentSpec):
    registry = DATA_SOURCES


class SNRRange(_Strict):
    """Inclusive grid ``start, start + step, ..., stop`` in dB."""

    start: float
    stop: float
    step: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.stop < self.start:
            raise ValueError(f"stop ({self.stop}) must not be below start ({self.start})")
        if (self.stop - self.start) / self.step + 1 > MAX_SNR_POINTS:
            raise ValueError(f"the grid has more than {MAX_SNR_POINTS} points; use a larger step")
        return self

    def points(self) -> list[float]:
        count = math.floor((self.stop - self.start) / self.step + 1e-9) + 1
        return [round(self.start + i * self.step, 9) for i in range(count)]


class MonteCarlo(_Strict):
    """Monte-Carlo budget per sweep point, as Sionna's ``sim_ber``: batches until ``target_errors`` errors of the
    link's first metric (a proportion), or until the interval of a mean first metric is at most
    ``target_half_width`` wide on each side (and at least ``min_samples`` examples), or ``max_samples`` examples."""

    batch_size: int = Field(default=500, ge=1, le=1_000_000)
    max_samples: int = Field(default=20_000, ge=1, le=10**10)
    min_samples: int = Field(default=0, ge=0)
    target_errors: int = Field(default=200, ge=0, description="0: always run the full max_samples budget")
    target_half_width: float = Field(default=0.0, ge=0.0, description="a mean first metric: stop once its "
                                     "interval's half-width is at most this, in the metric's unit; 0: never")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    interval: IntervalMethod = "wilson"
    max_receiver_batch: int = Field(
        default=65_536, ge=1, description="at most this many examples per transmitter or receiver call: a larger "
        "batch is cut into equal calls (part of a point's identity, since the call size moves the last bits)"
    )


class Scenario(_Strict):
    """A validated scenario file."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    description: str = ""
    seed: int = Field(default=0, ge=0, le=2**63 - 1, strict=True)
    device: str = "cpu"
    threads: int = Field(default=1, ge=1, le=1024, strict=True,
                         description="torch intra-op threads for training and evaluation (simulator.core.numerics)")
    data: DataSpec | None = None
    links: list[LinkSpec] = Field(min_length=1)
    channels: list[ChannelSpec] = Field(min_length=1)
    snr_db: list[float] | SNRRange
    metrics: list[str] | None = Field(default=None, min_length=1)
    monte_carlo: MonteCarlo = MonteCarlo()
    output: str | None = None
    executor: ExecutorSpec = Field(default_factory=lambda: ExecutorSpec(type="local"))
    compare_to: str | None = Field(default=None, description="label of the reference link of paired.md "
                                   "(default: the first link); not part of any point's identity")

    @field_validator("snr_db", mode="before")
    @classmethod
    def _snr_grid(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return validate_nested(SNRRange, value)
        if isinstance(value, list):
            if not value:
                raise ValueError("the SNR list is empty")
            if len(value) > MAX_SNR_POINTS:
                raise ValueError(f"more than {MAX_SNR_POINTS} SNR points")
            for i, item in enumerate(value):
                if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
                    raise FieldError((i,), f"must be a finite number in dB (got {item!r})")
            return value
        raise ValueError("must be a list of numbers in dB or a mapping {start, stop, step}")

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str] | None) -> list[str] | None:
        for i, name in enumerate(value or []):
            if METRICS.find(name) is None:
                raise FieldError((i,), f"unknown metric {name!r}; valid: {', '.join(METRICS.names())}, or a "
                                       "module:Class path")
        return value

    @field_validator("device")
    @classmethod
    def _device_exists(cls, value: str) -> str:
        if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
            raise ValueError(f"must be cpu, cuda or cuda:N (got {value!r})")
        if value.startswith("cuda"):
            import torch

            index = int(value.partition(":")[2] or 0)
            if not torch.cuda.is_available() or index >= torch.cuda.device_count():
                raise ValueError(f"device {value!r} is not available here (torch sees no such CUDA device); use cpu")
            return f"cuda:{index}"  # Sionna blocks accept only an indexed CUDA device
        return value

    @model_validator(mode="after")
    def _consistent(self):
        for field, specs in (("links", self.links), ("channels", self.channels)):
            seen: set[str] = set()
            for i, spec in enumerate(specs):
                if spec.key in seen:
                    raise FieldError(
                        (field, i, "name"), f"duplicate name {spec.key!r}; give each entry a unique name"
                    )
                seen.add(spec.key)
            shown: dict[str, str] = {}
            for i, spec in enumerate(specs):
                if spec.display in shown and shown[spec.display] != spec.key:
                    raise FieldError((field, i, "label"), f"label {spec.display!r} is already shown for "
                                     f"{shown[spec.display]!r}; tables and plots need a distinct label per entry")
                shown[spec.display] = spec.key
        names = [spec.key for spec in self.links]
        if self.compare_to is not None and self.compare_to not in names:
            raise FieldError(("compare_to",), f"unknown link {self.compare_to!r}; valid: {', '.join(names)}")
        if self.metrics:
            offered = {m for spec in self.links for m in spec.declared.metrics}
            for i, metric in enumerate(self.metrics):
                if metric not in offered:
                    raise FieldError(
                        ("metrics", i),
                        f"no link reports {metric!r}; these links report: {', '.join(sorted(offered))}",
                    )
        return self

    # --- derived values -------------------------------------------------------------------------------------
    def snr_points(self) -> list[float]:
        """The SNR grid in dB, in file order."""
        if isinstance(self.snr_db, SNRRange):
            return self.snr_db.points()
        return [float(v) for v in self.snr_db]

    def executor_spec(self, override: str | None = None) -> ExecutorSpec:
        """The scenario's executor, or executor type ``override`` (``--executor``) with that type's defaults when it
        is another type than the scenario's."""
        if override is None or override == self.executor.type:
            return self.executor
        try:
            return ExecutorSpec(type=override)
        except ValidationError as err:
            raise UserError(f"--executor: {err.errors()[0]['msg'].removeprefix('Value error, ')}") from None

    def display_names(self) -> dict[str, dict[str, str]]:
        """``{"link": {key: display}, "channel": {key: display}}`` for the entries that have a ``label``."""
        return {field: {s.key: s.label for s in specs if s.label}
                for field, specs in (("link", self.links), ("channel", self.channels))}

    @property
    def reference_link(self) -> str:
        """Label of the link the others are compared with in ``paired.md``: ``compare_to``, else the first link."""
        return self.compare_to or self.links[0].key

    def link_metrics(self, spec: LinkSpec) -> tuple[str, ...]:
        """Metrics reported for one link: the link's own, filtered by ``metrics`` when given."""
        return tuple(m for m in spec.declared.metrics if self.metrics is None or m in self.metrics)

    def output_dir(self, override: str | Path | None = None) -> Path:
        """Where results go: ``override``, else ``output``, else ``results/<name>`` (relative to the cwd)."""
        return Path(override or self.output or Path("results") / self.name)

    def _results_material(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "device": self.device,
            "data": self.data.canonical() if self.data else None,
            "monte_carlo": self.monte_carlo.model_dump(mode="json"),
            "evaluation": EVALUATION_VERSION,
        }

    def scenario_hash(self) -> str:
        """Hash of everything that changes results (not ``output``, ``executor``, ``compare_to`` or
        ``description``)."""
        material = {
            **self._results_material(),
            "links": [(s.key, s.canonical(), self.link_metrics(s)) for s in self.links],
            "channels": [(s.key, s.canonical()) for s in self.channels],
            "snr_db": self.snr_points(),
        }
        return _hash(material)

    def point_id(self, link: LinkSpec, channel: ChannelSpec, snr_db: float, link_fingerprint: str | None = None,
                 channel_fingerprint: str | None = None) -> str:
        """Identity of one sweep point's result: a resumed or extended sweep reuses rows with the same id.

        The fingerprints (``Link.fingerprint()``, ``Channel.fingerprint()``: e.g. hashes of trained weights) enter
        it when they are not ``None``, so a link whose weights changed gets new ids and is recomputed.
        """
        material = {
            **self._results_material(),
            "link": (link.key, link.canonical(), self.link_metrics(link)),
            "channel": (channel.key, channel.canonical()),
            "snr_db": round(float(snr_db), 9),
        }
        if link_fingerprint is not None:
            material["link_fingerprint"] = link_fingerprint
        if channel_fingerprint is not None:
            material["channel_fingerprint"] = channel_fingerprint
        return _hash(material)


def _hash(material: Any) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- loading and error formatting -----------------------------------------------------------------------------
def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; every problem is a one-line :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"scenario file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text file") from None
    except OSError as err:
        raise UserError(f"cannot read scenario file {path}: {err.strerror}") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to be a scenario") from None
    except yaml.reader.ReaderError as err:
        raise UserError(f"{path}: character {err.character!r} at position {err.position} is not allowed in YAML")\
            from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise UserError(f"{path}: {where}{problem}") from None
    return parse_scenario(data, source=str(path))


def parse_scenario(data: Any, source: str = "scenario") -> Scenario:
    """Validate already-parsed YAML content."""
    if data is None:
        raise UserError(f"{source}: the scenario is empty; it must be a mapping of fields")
    if not isinstance(data, dict):
        raise UserError(f"{source}: a scenario must be a mapping of fields (got {type(data).__name__})")
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        where, message = describe_error(Scenario, first_error(err))
        raise UserError(f"{source}: {format_location(where)}: {message}") from None
    except RecursionError:
        raise UserError(f"{source}: nested too deeply to be a scenario") from None
    except UserError as err:  # raised while importing a user's module:Class
        raise UserError(f"{source}: {err}") from None
