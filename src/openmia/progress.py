"""Progress reporting for the per-case commands (evaluate, compare, predict, count).

A ``progress`` argument is ``False`` (nothing), ``True`` (a transient rich bar on stderr, so that
stdout stays clean for ``--json``; not drawn when stderr is not a terminal) or a callable
``f(done, total)`` called as work finishes. No PyTorch import here: the evaluator installs without it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Union

ProgressCallback = Callable[[int, int], None]
ProgressArg = Union[bool, ProgressCallback, None]


@contextmanager
def progress_callback(progress: ProgressArg, description: str) -> Iterator[ProgressCallback | None]:
    """Yield a ``(done, total)`` callback for ``progress`` (None when progress is off)."""
    if callable(progress):
        yield progress
        return
    if not progress:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, disable=not console.is_terminal, transient=True)
    with bar:
        job = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(job, completed=done, total=total)

        yield update
