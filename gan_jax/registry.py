"""Parts found by name: model families, objectives, losses, penalties, datasets.

A `Registry` maps names to parts. A name is found, in this order:

1. registered in code: `LOSSES.register("mine", Loss(...))` (from any module, a test included);
2. a module of the registry's package named like it (`gan_jax/losses/rpgan.py` for "rpgan"),
   which registers itself on import or holds the part under the registry's attribute
   (`LOSS = Loss(...)`); so a new built-in part is one new file and edits no other;
3. a dotted module path, `"my_project.my_loss"` or `"my_project.my_loss:MY_LOSS"`, so a part
   in the user's own package needs no registration at all.

This module imports nothing of the project: every layer may use it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownPartError(ValueError):
    """A name that no registry entry, package module or dotted path resolves to."""


class Registry(Generic[T]):
    """Name -> part, with lookup in a package and by dotted path (see the module docstring).

    Args:
        kind: what the parts are, for messages ("loss", "model family").
        package: the package whose modules hold built-in parts ("gan_jax.losses").
        attribute: where a module keeps its part ("LOSS"); None: the module is the part.
        check: called on every part before it is returned; raises `TypeError` naming what
            the part lacks.
        is_part: with `attribute=None`, tells a module that is a part from a helper module of
            the same package (e.g. `models/layers.py`).
    """

    def __init__(
        self,
        kind: str,
        package: str,
        attribute: str | None,
        check: Callable[[str, Any], None] | None = None,
        is_part: Callable[[ModuleType], bool] | None = None,
    ):
        self.kind = kind
        self.package = package
        self.attribute = attribute
        self._check = check
        self._is_part = is_part or (lambda module: True)
        self._parts: dict[str, T] = {}

    def register(self, name: str, part: T | None = None, *, replace: bool = False):
        """Adds `part` under `name`; without `part`, a decorator that registers what it wraps.

        Raises:
            ValueError: `name` is taken (pass `replace=True` to overwrite on purpose).
        """
        if part is None:
            return lambda wrapped: self.register(name, wrapped, replace=replace)
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._parts and not replace and self._parts[name] is not part:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if self._check is not None:
            self._check(name, part)
        self._parts[name] = part
        return part

    def unregister(self, name: str) -> None:
        """Removes `name` (tests that register temporary parts)."""
        self._parts.pop(name, None)

    def get(self, name: str) -> T:
        """The part called `name`.

        Raises:
            UnknownPartError: nothing resolves `name`; the message lists the known names.
        """
        if name in self._parts:
            return self._parts[name]
        if not isinstance(name, str) or not name:
            raise UnknownPartError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if "." in name or ":" in name:
            part = self._from_path(name)
        else:
            part = self._from_package(name)
        if self._check is not None:
            self._check(name, part)
        return part

    def names(self) -> list[str]:
        """Registered names and the package's modules that hold a part (sorted)."""
        self._import_package_modules()
        return sorted(self._parts)

    def _import_package_modules(self) -> None:
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
            if info.name.startswith("_") or info.name in self._parts:
                continue
            module = importlib.import_module(f"{self.package}.{info.name}")
            part = self._part_of(module)
            if part is not None and info.name not in self._parts:
                self._parts[info.name] = part

    def _part_of(self, module: ModuleType):
        if self.attribute is None:
            return module if self._is_part(module) else None
        return getattr(module, self.attribute, None)

    def _unknown(self, name: str, why: str = "") -> UnknownPartError:
        known = ", ".join(self.names())
        return UnknownPartError(
            f"unknown {self.kind} {name!r}{why}; known: {known}. {_article(self.kind)} "
            f"{self.kind} of your own: "
            f"register it, or give its module path ('my_package.my_module')"
        )

    def _from_package(self, name: str) -> T:
        module_name = f"{self.package}.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name not in (module_name, self.package):
                raise  # the module exists but imports something missing: show that
            raise self._unknown(name) from None
        if name in self._parts:  # the module registered itself on import
            return self._parts[name]
        part = self._part_of(module)
        if part is None:
            what = self.attribute or f"{self.kind}"
            raise self._unknown(name, f" ({module_name} holds no {what})")
        self._parts[name] = part
        return part

    def _from_path(self, name: str) -> T:
        module_name, _, attribute = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name is not None and module_name.startswith(e.name):
                raise self._unknown(name, f" (no module {e.name!r})") from None
            raise
        attribute = attribute or self.attribute
        if attribute is None:
            return module
        if not hasattr(module, attribute):
            raise self._unknown(name, f" ({module_name} has no attribute {attribute!r})")
        return getattr(module, attribute)


def _article(word: str) -> str:
    return "An" if word[:1] in "aeiou" else "A"


def require(kind: str, name: str, part: Any, attributes: tuple[str, ...]) -> None:
    """Raises `TypeError` if `part` lacks any of `attributes` (the registries' checks)."""
    missing = [a for a in attributes if not hasattr(part, a)]
    if missing:
        raise TypeError(f"{kind} {name!r} ({part!r}) lacks {missing}; a {kind} must define them")
