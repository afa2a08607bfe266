"""Collect or raise data problems: loaders stop at the first one, ``openmia data verify`` lists all."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from openmia.errors import DataError

R = TypeVar("R")


class Problems:
    """Where a loader sends each problem it finds.

    Args:
        collect: False (loading): raise the first problem as a :class:`DataError`; True
            (verifying): keep every problem in :attr:`items` and let the caller skip the case.
    """

    def __init__(self, collect: bool = False) -> None:
        self.collect = collect
        self.items: list[str] = []

    def add(self, message: str) -> None:
        """Report one problem (raises unless collecting)."""
        if not self.collect:
            raise DataError(message)
        self.items.append(message)

    def guard(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R | None:
        """``fn(*args, **kwargs)``; a :class:`DataError` it raises is reported, then None returned."""
        try:
            return fn(*args, **kwargs)
        except DataError as exc:
            if not self.collect:
                raise
            self.items.append(str(exc))
            return None


RAISE = Problems(collect=False)  # stateless in raise mode: safe to share
