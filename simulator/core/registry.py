"""Name -> class registries for links, channels, data sources, metrics and executors.

A YAML ``type`` resolves, in this order, to

1. a name registered with :meth:`Registry.register` (built-in channels register on import),
2. an installed entry point in the registry's group (``semsim.links``, ``semsim.channels``, ...), which is how
   semsim's own links and third-party packages plug in without the engine importing them,
3. a ``module:Class`` path, for a user's link in their own module.

An entry point names either the component class itself or a light *declaration* of it: a class with the type's
``Params``, ``description`` (and, for links, ``metrics``) and ``implementation = "module:Class"``, which the
implementation subclasses. Validating and listing a declared type (``semsim validate``, ``semsim list``) reads
the declaration only (:meth:`Registry.declared`); the implementation, with torch and the models behind it, is
imported when the component is built (:meth:`Registry.resolve`). semsim's own links are declared this way.

Example::

    CHANNELS = Registry("channel", entry_point_group="semsim.channels")

    @CHANNELS.register("awgn")
    class AWGNChannel(Channel): ...

    CHANNELS.resolve("awgn")            # -> AWGNChannel
    CHANNELS.resolve("mypkg.chan:Mine") # -> imported class
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
from collections.abc import Callable
from typing import Any

from simulator.core.errors import UserError, one_line


def describe(cls: type) -> str:
    """One-line description of a registered class: its ``description`` attribute or its docstring's first line."""
    text = getattr(cls, "description", None) or (cls.__doc__ or "").strip()
    return text.splitlines()[0].strip() if text else ""


class Registry:
    """Resolves YAML type names of one kind (``link``, ``channel``, ...) to classes."""

    def __init__(self, kind: str, entry_point_group: str, base: type | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.base = base
        self._classes: dict[str, type] = {}
        self._declarations: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator registering ``cls`` under ``name``; sets ``cls.type_name``."""

        def decorate(cls: type) -> type:
            if name in self._classes and self._classes[name] is not cls:
                raise ValueError(f"{self.kind} type {name!r} is registered twice")
            cls.type_name = name
            self._classes[name] = cls
            return cls

        return decorate

    def _entry_points(self) -> dict[str, importlib.metadata.EntryPoint]:
        return {ep.name: ep for ep in importlib.metadata.entry_points(group=self.entry_point_group)}

    def names(self) -> list[str]:
        """Every name a scenario may use: registered and installed entry points, sorted."""
        return sorted(set(self._classes) | set(self._entry_points()))

    def _check(self, cls: Any, where: str) -> type:
        if not isinstance(cls, type) or (self.base is not None and not issubclass(cls, self.base)):
            base = self.base.__name__ if self.base is not None else "a class"
            raise UserError(f"{where} is not a {self.kind} class (expected a subclass of {base})")
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(cls.__abstractmethods__))
            raise UserError(f"{where} is abstract: it does not implement {missing}")
        return cls

    def _is_declaration(self, cls: Any) -> bool:
        return (isinstance(cls, type) and isinstance(getattr(cls, "implementation", None), str)
                and not (self.base is not None and issubclass(cls, self.base)))

    def declared(self, name: str) -> type:
        """The class that declares type ``name``: its ``Params`` and ``description`` (links: ``metrics``) without
        importing a declared type's implementation; for other types the component class itself. Raises
        :class:`UserError` listing the valid names when there is none."""
        if name in self._declarations:
            return self._declarations[name]
        if name in self._classes:
            return self._classes[name]
        entry_points = self._entry_points()
        if name in entry_points:
            try:
                loaded = entry_points[name].load()
            except Exception as err:
                raise UserError(f"entry point {name!r} ({self.entry_point_group}) failed to load: "
                                f"{type(err).__name__}: {' '.join(str(err).split())}") from None
            if self._is_declaration(loaded):
                loaded.type_name = name
                self._declarations[name] = loaded
                return loaded
            cls = self._check(loaded, f"entry point {name!r}")
            cls.type_name = getattr(cls, "type_name", None) or name
            self._classes.setdefault(name, cls)
            return cls
        if ":" in name:
            return self._check(_import_path(name, self.kind), f"{name!r}")
        valid = ", ".join(self.names())
        raise UserError(f"unknown {self.kind} type {name!r}; valid: {valid}, or a module:Class path")

    def resolve(self, name: str) -> type:
        """The component class for ``name`` (a declared type's implementation, imported now); raises
        :class:`UserError` listing the valid names when there is none."""
        declared = self.declared(name)
        if name not in self._declarations:
            return declared
        if name not in self._classes:
            where = f"{self.kind} type {name!r}"
            cls = self._check(import_attribute(declared.implementation, where), f"{where}'s implementation")
            if not issubclass(cls, declared):
                raise UserError(f"{where}: {declared.implementation} does not subclass its declaration "
                                f"{declared.__module__}.{declared.__qualname__}")
            cls.type_name = name
            self._classes[name] = cls
        return self._classes[name]

    def find(self, name: str) -> type | None:
        """The class ``name`` resolves to, or ``None`` when it resolves to nothing (no error)."""
        try:
            return self.resolve(name)
        except UserError:
            return None

    def load_all(self) -> dict[str, type]:
        """Every resolvable registered class by name (entry points that fail to import are skipped)."""
        return self._every(self.resolve)

    def declare_all(self) -> dict[str, type]:
        """Every type's declaring class by name (:meth:`declared`; what ``semsim list`` shows), without importing
        declared types' implementations; entry points that fail to import are skipped."""
        return self._every(self.declared)

    def _every(self, lookup: Callable[[str], type]) -> dict[str, type]:
        found = {}
        for name in self.names():
            try:
                found[name] = lookup(name)
            except (UserError, ImportError):
                continue
        return found


_MODULE_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def _import_path(name: str, kind: str) -> Any:
    """The object a ``module:Attribute`` path names; any failure is a one-line :class:`UserError`."""
    if not _MODULE_PATH.match(name):
        raise UserError(f"{kind} type {name!r} is not a valid module:Class path (like mypackage.links:MyLink)")
    return import_attribute(name, f"{kind} type {name!r}")


def import_attribute(path: str, where: str, expected: str = "", missing: str = "attribute") -> Any:
    """The object ``path`` (``module:name`` or ``module:Class.name``) names, importing the module.

    Every failure is one :class:`UserError` line starting with ``where`` and ending with ``expected`` (what is
    allowed, e.g. ``"; expected a module:function path"``); ``missing`` names the kind of attribute looked for.
    """
    module_name, _, attr = path.partition(":")
    try:
        target = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise UserError(f"{where}: cannot import module {module_name!r} ({one_line(err)}){expected}") from None
    except Exception as err:  # the user's module failed while importing: say so in one line
        raise UserError(f"{where}: importing module {module_name!r} failed: {type(err).__name__}: "
                        f"{one_line(err)}") from err
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UserError(f"{where}: module {module_name!r} has no {missing} {attr!r}{expected}")
        target = getattr(target, part)
    return target
