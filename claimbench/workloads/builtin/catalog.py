"""A table of built-in entries by name: one per module of a package (each defines ``attr``, named as its
module; a helper module's name starts with ``_``), found on first use with no list to edit, plus the
entries a test or plugin ``register``s. The datasets and the model families are each one catalog."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Generic, Iterable, TypeVar

T = TypeVar("T")


class Catalog(Generic[T]):
    def __init__(self, package: str, path: Iterable[str], attr: str, kind: type, noun: str, unknown: str) -> None:
        self.package, self.path, self.attr, self.kind = package, list(path), attr, kind
        self.noun, self.unknown = noun, unknown  # "a dataset named ...", "unknown dataset ..."
        self._found: dict[str, T] = {}
        self._added: dict[str, T] = {}

    def _discovered(self) -> dict[str, T]:
        if not self._found:
            for module in sorted(pkgutil.iter_modules(self.path), key=lambda m: m.name):
                if module.name.startswith("_"):
                    continue
                entry = getattr(importlib.import_module(f"{self.package}.{module.name}"), self.attr, None)
                if not isinstance(entry, self.kind) or entry.name != module.name:
                    raise TypeError(f"{self.package}.{module.name} must define {self.attr} = {self.kind.__name__}("
                                    f"name={module.name!r}, ...); a helper module's name starts with _")
                self._found[entry.name] = entry
        return self._found

    def table(self) -> dict[str, T]:
        """Every entry by name: the package's, in name order, then the registered ones."""
        return {**self._discovered(), **self._added} if self._added else self._discovered()

    def names(self) -> tuple[str, ...]:
        return tuple(self.table())

    def find(self, name: str) -> T | None:
        """The entry ``name``, or None when there is none (another workload's spec names none)."""
        return self.table().get(name)

    def get(self, name: str) -> T:
        found = self.find(name)
        if found is None:
            raise ValueError(f"unknown {self.unknown} {name!r}; use one of: {', '.join(self.names())}")
        return found

    def register(self, entry: T) -> T:
        """Add an entry defined outside the package (a test's module) to the table, for this process."""
        if not isinstance(entry, self.kind):
            raise TypeError(f"register takes a {self.kind.__name__}, got {type(entry).__name__}")
        if self.table().get(entry.name, entry) is not entry:
            raise ValueError(f"{self.noun} named {entry.name!r} is already registered")
        self._added[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove an entry that ``register`` added (the package's own stay)."""
        self._added.pop(name, None)
