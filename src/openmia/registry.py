"""One generic registry for models, datasets and metrics, with "did you mean" errors."""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from openmia.errors import ConfigError, UnknownNameError

T = TypeVar("T", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered factory and its metadata (e.g. ``task``, ``dims``)."""

    name: str
    factory: T
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def doc(self) -> str:
        """First line of the factory's docstring."""
        return (inspect.getdoc(self.factory) or "").splitlines()[0] if self.factory.__doc__ else ""


class Registry(Generic[T]):
    """A name -> factory mapping.

    Duplicate names raise; unknown names raise :class:`UnknownNameError` listing close matches;
    :meth:`build` checks keyword arguments against the factory signature.

    Args:
        kind: what is registered ("model", "task", ...), used in error messages.
        modules: modules whose import registers the built-in entries; imported on the first lookup
            (plug-ins are found by name, so importing the registry stays cheap and acyclic).
    """

    def __init__(self, kind: str, modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._modules = tuple(modules)
        self._loaded = not modules

    def load(self) -> "Registry[T]":
        """Import the modules that register the built-in entries (once); returns the registry."""
        if not self._loaded:
            import importlib

            self._loaded = True
            for mod in self._modules:
                importlib.import_module(mod)
        return self

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator registering ``factory`` under ``name`` with metadata ``meta``."""

        def deco(factory: T) -> T:
            if name in self._entries:
                raise ConfigError(f"{self.kind} {name!r} is already registered ({self._entries[name].factory!r}); "
                                  "choose another name")
            self._entries[name] = Entry(name, factory, dict(meta))
            return factory

        return deco

    def get(self, name: str) -> Entry[T]:
        """Return the entry for ``name`` or raise with close matches."""
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: "
                f"{', '.join(sorted(self._entries))}"
            ) from None

    def build(self, name: str, **kwargs: Any) -> Any:
        """Call the factory of ``name`` with ``kwargs`` after checking them against its signature."""
        entry = self.get(name)
        sig = inspect.signature(entry.factory)
        takes_var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        if not takes_var_kw:
            accepted = [p for p in sig.parameters if p != "self"]
            bad = [k for k in kwargs if k not in sig.parameters]
            if bad:
                raise ConfigError(
                    f"{self.kind} {name!r} got unknown argument(s) {', '.join(map(repr, bad))}; "
                    f"accepted: {', '.join(accepted)}"
                )
        return entry.factory(**kwargs)

    def names(self, **filters: Any) -> list[str]:
        """Registered names whose metadata matches ``filters`` (a tuple meta value matches if it contains the filter)."""
        self.load()
        out = []
        for n, e in self._entries.items():
            ok = True
            for k, v in filters.items():
                mv = e.meta.get(k)
                if isinstance(mv, (tuple, list, set)):
                    ok &= v in mv
                else:
                    ok &= mv == v
            if ok:
                out.append(n)
        return sorted(out)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a temporary entry clean up with this)."""
        self._entries.pop(name, None)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        self.load()
        return iter(self._entries[n] for n in sorted(self._entries))

    def __len__(self) -> int:
        self.load()
        return len(self._entries)
