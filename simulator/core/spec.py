"""References to registered components, as scenario files write them: ``{type: rayleigh, name: fast, ...}``.

``type`` resolves through the component kind's registry (:mod:`simulator.core.registry`); the remaining fields are
validated by that class's ``Params`` model, so a typo is an error naming the field. Building a component turns
whatever its constructor raises into one line naming it (``link 'x': ...``, ``channel 'y': ...``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from simulator.core.channel import CHANNELS, Channel
from simulator.core.errors import UserError, one_line
from simulator.core.executor import EXECUTORS
from simulator.core.link import LINKS
from simulator.core.metrics import METRICS
from simulator.core.params import Params
from simulator.core.registry import Registry
from simulator.core.validation import FieldError, validate_nested

T = TypeVar("T")


class ComponentSpec(BaseModel):
    """A link, channel or data source: ``type``, an optional ``name``, and the type's own parameters (flat)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    registry: ClassVar[Registry]
    #: the fields of the spec itself, besides the type's own parameters
    own_fields: ClassVar[tuple[str, ...]] = ("type", "name", "label")

    type: str = Field(min_length=1)
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$", max_length=64)
    label: str | None = Field(default=None, min_length=1, max_length=80, description="display name in tables and "
                              "plots (any text); results.csv and point ids keep the name")
    _declared: type = PrivateAttr()
    _params: Params = PrivateAttr()

    @model_validator(mode="after")
    def _resolve(self):
        try:
            declared = self.registry.declared(self.type)
        except UserError as err:
            raise FieldError(("type",), str(err)) from None
        self._declared = declared
        try:
            self._params = validate_nested(declared.Params, dict(self.model_extra or {}))
        except FieldError as err:
            if err.message.startswith("unknown field") and len(err.where) == 1:
                allowed = ", ".join([*self.own_fields, *sorted(declared.Params.model_fields)])
                raise FieldError(err.where, f"unknown field; allowed: {allowed}") from None
            raise
        return self

    @property
    def declared(self) -> type:
        """The class declaring the type: its ``Params``, ``description`` and, for links, ``metrics`` (for a type
        declared apart from its implementation, without importing the implementation)."""
        return self._declared

    @property
    def cls(self) -> type:
        """The component class (a declared type's implementation is imported on first use)."""
        return self.registry.resolve(self.type)

    @property
    def params(self) -> Params:
        """The validated parameters, an instance of ``cls.Params``."""
        return self._params

    @property
    def key(self) -> str:
        """The name in results (``results.csv``'s ``link`` or ``channel`` column, point ids, ``compare_to``):
        ``name``, or the type's registered name."""
        return self.name or getattr(self._declared, "type_name", None) or self.type

    @property
    def display(self) -> str:
        """The name shown in tables and plots: ``label``, else :attr:`key`."""
        return self.label or self.key

    def canonical(self) -> dict[str, Any]:
        """Type and every parameter value, defaults included (for hashing)."""
        return {"type": self.type, **self._params.model_dump(mode="json")}


class LinkSpec(ComponentSpec):
    registry = LINKS

    @model_validator(mode="after")
    def _metrics_known(self):
        declared = getattr(self.declared, "metrics", ())
        unknown = [m for m in declared if METRICS.find(m) is None]
        if unknown:
            raise FieldError(("type",), f"link type {self.type} declares unknown metric {unknown[0]!r}; registered "
                                        f"metrics: {', '.join(METRICS.names())} (or register it, see "
                                        "simulator.core.metrics)")
        return self


class ChannelSpec(ComponentSpec):
    registry = CHANNELS

    def build(self, device: str) -> Channel:
        """The channel on ``device``; any failure is a :class:`UserError` naming the channel."""
        return named("channel", self, lambda: self.cls(self.params, device=device))


class ExecutorSpec(ComponentSpec):
    """Who evaluates the points: ``{type: local}`` (this process, the default) or ``{type: ray, ...}`` (tasks on a
    Ray cluster, :mod:`simulator.engine.executors.ray_executor`); the fields besides ``type`` are the executor
    type's own ``Params``."""

    registry = EXECUTORS
    own_fields = ("type",)

    @model_validator(mode="after")
    def _unnamed(self):
        for field in ("name", "label"):
            if getattr(self, field) is not None:
                allowed = ", ".join([*self.own_fields, *sorted(self.declared.Params.model_fields)])
                raise FieldError((field,), f"unknown field; allowed: {allowed}")
        return self

    def build(self):
        """The executor this spec describes."""
        return self.cls(self.params)


def named(kind: str, spec: ComponentSpec, build: Callable[[], T]) -> T:
    """``build()``, with every exception it raises turned into one line ``<kind> '<label>': <message>``."""
    try:
        return build()
    except UserError as err:
        raise UserError(name_in_message(kind, spec, str(err))) from err
    except Exception as err:
        raise UserError(f"{kind} {spec.key!r}: could not be built: {type(err).__name__}: {one_line(err)}") \
            from err


def name_in_message(kind: str, spec: ComponentSpec, message: str) -> str:
    """``message`` led by ``<kind> '<label>': ``, once.

    A message that already names the component by its label is kept; one led by the component's type name
    (``link keras: ...`` or ``digital-features: ...``, as a type's own checks write it) gets the label in its
    place, so the name appears once.
    """
    message = " ".join(message.split())
    named = f"{kind} {spec.key!r}: "
    if message.startswith(named):
        return message
    type_names = {spec.type, getattr(spec.cls, "type_name", None) or spec.type}
    for type_name in type_names:
        for prefix in (f"{kind} {type_name}: ", f"{kind} {type_name!r}: ", f"{type_name}: "):
            if message.startswith(prefix):
                return named + message[len(prefix):]
    return named + message
