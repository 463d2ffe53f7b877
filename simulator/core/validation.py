"""Pydantic validation errors as one line: the location (``links[0].ldpc.k``) and what is allowed.

A model that validates a nested part itself (a component's own ``Params``) raises :class:`FieldError` with the
location below the field, so the message still names the full path.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError


class FieldError(ValueError):
    """A validation error below the field pydantic is validating; ``where`` is the extra location path."""

    def __init__(self, where: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.where = where
        self.message = message


def validate_nested(model: type[BaseModel], data: Any) -> BaseModel:
    """``model.model_validate(data)``, turning its first error into a :class:`FieldError`."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        where, message = describe_error(model, first_error(err))
        raise FieldError(where, message) from None


def first_error(err: ValidationError) -> dict[str, Any]:
    """The error to show: an unknown field first (usually a typo that also explains a 'missing' one)."""
    errors = err.errors()
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def format_location(where: tuple[str | int, ...]) -> str:
    """``("links", 0, "k")`` -> ``links[0].k``."""
    text = ""
    for part in where:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        name = part if re.fullmatch(r"[\w.+-]+", part) else repr(part)  # repr keeps odd keys on one line
        text += f".{name}" if text else name
    return text or "(top level)"


_UNION_TAGS = re.compile(r"^(list\[.*\]|SNRRange|function-.*|.*\[.*\])$")


def describe_error(model: type[BaseModel], error: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    """Location and one-line message of a pydantic error dict, with nested :class:`FieldError` locations."""
    where = tuple(part for part in error["loc"] if not (isinstance(part, str) and _UNION_TAGS.match(part)))
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        return where + cause.where, cause.message
    if error["type"] == "extra_forbidden":
        allowed = _allowed_fields(model, where[:-1])
        return where, f"unknown field; allowed: {', '.join(allowed)}" if allowed else "unknown field"
    if error["type"] == "missing":
        return where, "required field is missing"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    given = error.get("input")
    if error["type"] not in ("value_error",) and _short(given):
        message += f" (got {given!r})"
    return where, message


def _short(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and len(repr(value)) <= 60


def _allowed_fields(model: type[BaseModel], where: tuple[str | int, ...]) -> list[str]:
    """Field names of the model found at ``where`` below ``model`` (empty when it cannot be followed)."""
    current: Any = model
    for part in where:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = _model_in(fields[part].annotation)
        if current is None:
            return []
    return sorted(getattr(current, "model_fields", {}))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


