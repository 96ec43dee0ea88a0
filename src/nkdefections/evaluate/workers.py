"""Independent refits on every core: a small process pool with one progress line for the whole step.

A fit's chains already run on threads (nutpie), but compiling a model graph (10-40 s) is
single-threaded, and so is the Python around each refit (building inputs, the convergence
check).  Steps made of independent pieces (the variants of a model comparison, the
simulations of SBC) therefore run the pieces in ``workers`` processes, each sampling on
``cores // workers`` threads (``benchmarks/refits.py`` measures both ways).

Each worker is a fresh interpreter (``spawn``: no forked JAX, numba or sampler threads) that
compiles the programs it needs once and keeps them for its later pieces.  Ctrl-C and SIGTERM
are handled by the parent alone: it stops the workers and re-raises, so nothing half-done is
returned.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from nkdefections.errors import ConfigError

log = logging.getLogger(__name__)

#: environment variable that sets the number of worker processes (1: everything in this process)
WORKERS_ENV = "NKDEFECTIONS_WORKERS"


def default_workers() -> int:
    """Worker processes for independent refits: ``$NKDEFECTIONS_WORKERS``, else min(2, CPUs)."""
    raw = os.environ.get(WORKERS_ENV)
    if raw is None or raw == "":
        return max(1, min(2, os.cpu_count() or 1))
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"${WORKERS_ENV}={raw!r}: give a whole number of worker processes >= 1 (1: no pool).")
    return n


def threads_per_worker(cores: int, workers: int) -> int:
    """Sampler threads for each of ``workers`` processes sharing ``cores`` (at least 1)."""
    return max(1, int(cores) // max(1, int(workers)))


def _quiet_worker() -> None:
    # the parent decides what an interrupt means; a worker that saw Ctrl-C itself would print
    # a traceback and leave the pool half-broken
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _children_skip_main() -> Iterator[None]:
    """Spawn workers that do not re-run the caller's ``__main__``.

    A spawned child normally re-imports the parent's main script, so a user's script that calls
    a comparison at top level (no ``if __name__ == "__main__":`` guard) would run again in every
    worker and fail.  The pieces are functions of this package, so the workers do not need it.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _stop(pool: ProcessPoolExecutor, futures: Sequence[Future[Any]]) -> None:
    for f in futures:
        f.cancel()
    for p in list(getattr(pool, "_processes", {}).values()):  # no public way to stop running workers
        if p.is_alive():
            p.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def run_pieces[T](
    fn: Callable[..., T],
    pieces: Sequence[tuple[Any, ...]],
    *,
    workers: int | None = None,
    label: str = "pieces",
    progress: Callable[[int, T], None] | None = None,
) -> list[T]:
    """``[fn(*p) for p in pieces]``, in order, on ``workers`` processes (default :func:`default_workers`).

    ``fn`` must be importable (a function of a module, not of ``__main__``) and the pieces
    picklable.  ``progress(i, result)``
    is called in this process as each piece finishes (in completion order); without it one
    log line per piece says how many are done.  The first exception in any piece stops the
    others and is re-raised here, as is Ctrl-C.
    """
    n = len(pieces)
    workers = default_workers() if workers is None else int(workers)
    t0 = time.perf_counter()

    def done(i: int, result: T, k: int) -> None:
        if progress is not None:
            progress(i, result)
        else:
            log.info("%s: %d/%d done (%.0f s)", label, k, n, time.perf_counter() - t0)

    if workers <= 1 or n <= 1:
        out = []
        for i, p in enumerate(pieces):
            out.append(fn(*p))
            done(i, out[-1], i + 1)
        return out
    pool = ProcessPoolExecutor(
        max_workers=min(workers, n), mp_context=multiprocessing.get_context("spawn"), initializer=_quiet_worker
    )
    with _children_skip_main():  # the workers start at the first submissions
        futures = [pool.submit(fn, *p) for p in pieces]
    index = {f: i for i, f in enumerate(futures)}
    results: dict[int, T] = {}
    try:
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                i = index[f]
                results[i] = f.result()  # re-raises a piece's exception here
                done(i, results[i], len(results))
    except BaseException:
        _stop(pool, futures)
        raise
    pool.shutdown(wait=True)
    return [results[i] for i in range(n)]
