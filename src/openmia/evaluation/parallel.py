"""Scoring cases in worker processes (``openmia evaluate --workers N``).

One per-case function runs either in this process (``workers=1``, the default) or in a
:class:`~concurrent.futures.ProcessPoolExecutor`. Results come back in the order of the cases, so
the output does not depend on the number of workers; a failing case raises the same
:class:`~openmia.errors.OpenmiaError` naming the case either way (the first failing case in case
order, as the in-process loop would). Processes rather than threads: the per-case work (erosion,
KD-tree queries, connected components, NumPy reductions) holds the GIL for much of its time.

Workers are started with ``forkserver`` where the platform has it (else ``spawn``), never a bare
``fork`` of a process that may run a progress-bar thread; so the per-case function and everything
it closes over must be picklable (a module-level function, or a ``functools.partial`` of one).
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Callable, Sequence, TypeVar

from openmia.errors import ConfigError, OpenmiaError, PredictionError

T = TypeVar("T")


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS / Windows
        return max(1, os.cpu_count() or 1)


def resolve_workers(workers: int | str | None, n_cases: int | None = None, *, option: str = "--workers") -> int:
    """The number of worker processes for ``workers``: None or 1 = in this process, ``0`` or
    ``"auto"`` = :func:`available_cpus`; never more than ``n_cases``."""
    if workers is None:
        n = 1
    elif isinstance(workers, str) and workers.strip().lower() == "auto":
        n = available_cpus()
    else:
        try:
            n = int(workers)
            if isinstance(workers, float) and workers != n or isinstance(workers, bool):
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"{option}: expected a whole number of worker processes >= 0 or 'auto', found {workers!r}") from None
        if n < 0:
            raise ConfigError(f"{option}: expected a whole number of worker processes >= 0 (0 = auto), found {n}")
        if n == 0:
            n = available_cpus()
    return max(1, min(n, n_cases)) if n_cases is not None else n


def parse_workers(text: str | None) -> int | str | None:
    """``--workers`` text -> ``int`` or ``"auto"`` (errors name the option)."""
    if text is None:
        return None
    s = str(text).strip().lower()
    if s == "auto":
        return "auto"
    try:
        return int(s)
    except ValueError:
        raise ConfigError(f"--workers: expected a whole number of worker processes >= 0 or 'auto', found {text!r}") from None


def _call(fn: Callable[[str], T], case: str) -> T:
    """``fn(case)``; an unexpected exception becomes a PredictionError naming the case.

    Runs in the worker (and in-process for ``workers=1``), so both paths raise the same error.
    """
    try:
        return fn(case)
    except OpenmiaError:
        raise
    except Exception as exc:  # a bug or an unreadable input: name the case, keep the original as the cause
        err = PredictionError(f"case {case!r}: scoring failed with {type(exc).__name__}: {exc}")
        err.openmia_wrapped = True  # kept through pickling (exception __dict__): the parent keeps the worker traceback
        raise err from exc


_WORKER_FN: Callable[[str], Any] | None = None


def _init_worker(fn: Callable[[str], Any]) -> None:
    """Worker start-up: keep the per-case function, so each task sends only its case id."""
    global _WORKER_FN
    _WORKER_FN = fn


def _call_in_worker(case: str) -> Any:
    if _WORKER_FN is None:  # internal invariant: the pool's initializer sets it
        raise RuntimeError("openmia worker process was not initialised")
    return _call(_WORKER_FN, case)


def _context():
    import multiprocessing as mp

    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


def _check_picklable(fn: Callable[..., Any], n_workers: int) -> None:
    try:
        pickle.dumps(fn)
    except Exception as exc:  # lambdas, closures, open files, locks ...
        raise ConfigError(
            f"workers={n_workers} scores cases in separate processes, which needs a picklable per-case loader "
            f"(a module-level function, an instance of a module-level class, or a functools.partial of one); "
            f"{getattr(fn, 'func', fn)!r} cannot be pickled ({type(exc).__name__}: {exc}). "
            "Use workers=1 to score in this process") from None


def map_cases(fn: Callable[[str], T], cases: Sequence[str], *, workers: int | str | None = 1,
              progress: Callable[[int, int], None] | None = None) -> list[T]:
    """``[fn(c) for c in cases]``, in ``cases`` order, in this process or in worker processes.

    Args:
        fn: the per-case function ``case_id -> result``; picklable when ``workers`` > 1.
        workers: see :func:`resolve_workers`.
        progress: ``f(done, total)``, called once per finished case (in completion order).

    Raises:
        OpenmiaError: of the first case (in ``cases`` order) that failed; an unexpected exception
            is raised as a :class:`PredictionError` naming the case.
    """
    cases = list(cases)
    n = resolve_workers(workers, len(cases))
    total = len(cases)
    if n <= 1:
        out = []
        for i, c in enumerate(cases, 1):
            out.append(_call(fn, c))
            if progress:
                progress(i, total)
        return out
    _check_picklable(fn, n)
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = _context()
    if ctx.get_start_method() == "forkserver":  # workers fork from a server that imported the scorer once
        module = getattr(getattr(fn, "func", fn), "__module__", None)
        ctx.set_forkserver_preload([m for m in ("openmia.evaluation.parallel", module) if m])
    results: list[Any] = [None] * total
    first_error: tuple[int, BaseException] | None = None
    done = 0
    # the function (a loader with its file index) is pickled once per worker, not once per case
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker, initargs=(fn,)) as ex:
        futures = {ex.submit(_call_in_worker, c): i for i, c in enumerate(cases)}
        for fut in as_completed(futures):
            i = futures[fut]
            if fut.cancelled():
                continue
            exc = fut.exception()
            if exc is not None:
                if first_error is None or i < first_error[0]:
                    first_error = (i, exc)
                    for f, j in futures.items():  # later cases cannot change which error is reported
                        if j > i:
                            f.cancel()
                continue
            results[i] = fut.result()
            done += 1
            if progress:
                progress(done, total)
    if first_error is not None:
        i, exc = first_error
        if isinstance(exc, BrokenProcessPool):  # a worker was killed (memory) or could not start (e.g. code from stdin)
            raise OpenmiaError(
                f"a worker process ended abruptly with cases unscored (the first: {cases[i]!r}); it was killed, e.g. for "
                "memory, or could not start (worker processes re-import the main script, which code typed on stdin "
                "does not have); "
                f"retry with fewer workers than {n}, or workers=1 to score in this process") from None
        if isinstance(exc, OpenmiaError) and not getattr(exc, "openmia_wrapped", False):
            raise exc.with_traceback(None) from None  # the message names the case; no worker traceback noise
        raise exc.with_traceback(None)  # keeps the worker's traceback (its __cause__) for a wrapped bug
    return results
