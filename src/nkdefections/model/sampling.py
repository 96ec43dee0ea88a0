"""How a ``pm.sample`` fit is run (numpyro, pymc): sampler arguments, the JAX set-up, the one-line fit progress;
and the fit-cache code hash."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any

from nkdefections.config import SamplerConfig
from nkdefections.provenance import machine
from nkdefections.resources import cache_dir as _cache_root

log = logging.getLogger(__name__)




def model_code_hash() -> str:
    """Short sha256 of the model's source (graph and class): part of the fit-cache key."""
    pkg = resources.files("nkdefections.model")
    h = hashlib.sha256()
    for name in ("graph.py", "starts.py", "sampling.py", "defection.py"):
        h.update(pkg.joinpath(name).read_bytes())
    return h.hexdigest()[:12]


def configure_jax(devices: int = 4, cache_dir: str | os.PathLike[str] | None = None) -> None:
    """Give numpyro ``devices`` CPU devices (parallel chains) and a persistent compile cache.

    Uses :func:`jax.config.update` only: no environment variable is set or changed, so
    nothing leaks into the caller's later subprocesses.  Whatever the caller configured
    first wins: a device count in ``XLA_FLAGS`` or ``jax_num_cpu_devices``, a cache folder in
    ``JAX_COMPILATION_CACHE_DIR`` or ``jax_compilation_cache_dir``.  The device count only
    takes effect before JAX's CPU backend starts (its first computation); later it is left
    as it is.  Every fit with ``sampler.name="numpyro"`` calls it (through
    :func:`sample_kwargs`), so the ``nkdefections`` command and a notebook get the same
    parallel chains; call it yourself before any JAX computation to be sure it takes
    effect, or configure JAX yourself to opt out.  The cache folder is
    ``<cache_dir>/cpu-<hash of the CPU's flags>`` (default ``cache_dir``: ``<cache>/jax``), so
    processes on CPUs with other instruction sets never share compiled executables.
    """
    import jax

    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", "") and (
        jax.config.jax_num_cpu_devices in (-1, None)
    ):
        try:
            jax.config.update("jax_num_cpu_devices", devices)
        except RuntimeError:  # the backend already started: keep its devices
            log.debug("jax CPU backend already initialised; keeping %d device(s)", jax.local_device_count())
    if jax.config.jax_compilation_cache_dir is None:
        # one folder per CPU feature set: XLA compiles for the host's instruction set, so an
        # executable cached on another CPU (a shared home, a cluster's mixed nodes) would run that
        # CPU's floating-point path here, or fail to load; draws stay exact per machine
        cpu = machine()
        flags = cpu["cpu_flags_sha256"] or f"unknown-{cpu['arch'] or 'cpu'}"  # no /proc/cpuinfo: by architecture
        base = Path(cache_dir or (_cache_root() / "jax")) / f"cpu-{flags}"
        jax.config.update("jax_compilation_cache_dir", str(base.resolve()))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def sample_kwargs(sampler: SamplerConfig) -> dict[str, Any]:
    """Keyword arguments for :func:`pymc.sample` from a :class:`SamplerConfig`."""
    kw: dict[str, Any] = dict(
        draws=sampler.draws,
        tune=sampler.tune,
        chains=sampler.chains,
        random_seed=sampler.seed,
        progressbar=sampler.progressbar,
        nuts_sampler=sampler.name,
        nuts={"target_accept": sampler.target_accept},
    )
    if sampler.name == "numpyro":
        configure_jax()
        kw["nuts"]["chain_method"] = "parallel"
    else:
        kw["cores"] = min(sampler.cores, sampler.chains)
    if not sampler.progressbar:
        kw["quiet"] = True
    return kw


def pymc_posterior(model: Any, y: Any, parameterization: str, sampler: SamplerConfig) -> Any:
    """The posterior of ``model`` from :func:`pymc.sample` (``sampler.name`` ``numpyro`` or ``pymc``).

    Under ``log_mu`` the chains start from :func:`~nkdefections.model.starts.start_points` (dispersed on
    the posterior's own scale, centred on the counts ``y``) instead of PyMC's U(-1, 1) jitter.
    """
    import contextlib

    import numpy as np
    import pymc as pm

    from nkdefections.model.starts import constrained, start_points

    kwargs = sample_kwargs(sampler)
    if parameterization == "log_mu":
        rng = np.random.default_rng([sampler.seed, 1])
        kwargs["initvals"] = constrained(model, start_points(model, y, sampler.chains, rng))
        if sampler.name == "numpyro":
            kwargs["nuts"]["jitter"] = False
        else:
            kwargs["init"] = "adapt_diag"
    if sampler.progressbar and sampler.name == "numpyro":
        display: Any = FitProgress(f"sampling ({sampler.name}, {sampler.tune} tune + {sampler.draws} draws)")
    else:
        display = contextlib.nullcontext()
        log.info("sampling: %s", sampler)
    with model, display:
        idata = pm.sample(**kwargs)
    # pm.sample(nuts_sampler="numpyro") leaves JAX arrays in the tree: arithmetic on them then runs
    # through XLA, whose pow/exp differ from numpy's in the last bit, so a fit in memory and the same
    # fit saved and loaded gave different effects(). Hold plain numpy arrays, as a loaded fit does.
    return idata.map_over_datasets(lambda ds: ds.as_numpy())


class FitProgress:
    """One status line for a whole fit, in place of numpyro's tqdm bar per chain.

    numpyro draws its bars through ``numpyro.util.tqdm_auto`` (parallel chains) and
    ``numpyro.util.tqdm.trange`` (one chain); while a fit runs both are replaced by views of
    this object, so the sampler runs exactly the same computation (same draws) and only the
    display changes.  On a terminal the line is redrawn in place (``\\r``) at most 5 times a
    second; elsewhere (a log file, CI) nothing is drawn while sampling and one line is
    logged at the end.  Dependency-free on purpose.
    """

    def __init__(self, label: str, *, stream: Any = None, interval: float = 0.2) -> None:
        import sys
        import threading

        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self.done: dict[int, int] = {}
        self.total: dict[int, int] = {}
        self._lock = threading.Lock()
        self._draw_lock = threading.Lock()
        self._thread = threading.Thread(target=self._tick, name="nkdefections-progress", daemon=True)
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._width = 0
        self._closed = False

    # -- the tqdm-shaped views numpyro calls ------------------------------------
    def bar(self, iterable: Any = None, position: int = 0, total: int | None = None, **_: Any) -> _ChainBar:
        return _ChainBar(self, position, total if total is not None else len(iterable or ()), iterable)

    def trange(self, n: int, **_: Any) -> _ChainBar:
        return _ChainBar(self, len(self.total), n, range(n))

    # -- state ------------------------------------------------------------------
    def register(self, chain: int, total: int) -> None:
        with self._lock:
            self.total[chain], self.done[chain] = total, 0
        self.draw(force=True)

    def advance(self, chain: int, n: int) -> None:
        with self._lock:
            self.done[chain] = min(self.done.get(chain, 0) + int(n), self.total.get(chain, 0))
        self.draw()

    def line(self) -> str:
        with self._lock:
            done, total, chains = sum(self.done.values()), sum(self.total.values()), len(self.total)
        elapsed = time.perf_counter() - self._t0
        if not total:
            return f"{self.label}: compiling  {elapsed:.0f} s"
        what = "compiling" if done == 0 else f"{done}/{total} iterations ({100 * done / total:.0f}%)"
        return f"{self.label}: {chains} chain{'s' if chains != 1 else ''}, {what}  {elapsed:.0f} s"

    def draw(self, force: bool = False) -> None:
        if not self.interactive or self._closed:
            return
        now = time.perf_counter()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        text = self.line()
        with self._draw_lock:
            if self._closed:
                return
            self.stream.write("\r" + text.ljust(self._width))
            self.stream.flush()
            self._width = len(text)

    def _tick(self) -> None:  # keeps the clock moving through compilation (no callbacks then)
        while not self._closed:
            time.sleep(1.0)
            self.draw(force=True)

    def close(self, ok: bool) -> None:
        with self._draw_lock:
            self._closed = True  # late callbacks of an asynchronous sampler draw nothing
            if self.interactive and self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
        if ok:
            log.info("%s: done in %.0f s", self.label, time.perf_counter() - self._t0)

    # -- install while a fit runs ---------------------------------------------------
    def __enter__(self) -> FitProgress:
        import numpyro.infer  # noqa: F401 - the whole sampler stack first, so nothing re-binds the names below
        import numpyro.util as nutil

        if not self.interactive:  # a log gets one line at the start and one at the end
            log.info("%s ...", self.label)
        else:
            self._thread.start()
        self._saved = (nutil.tqdm_auto, nutil.tqdm)
        nutil.tqdm_auto = self.bar
        nutil.tqdm = _TqdmModule(self)
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        import numpyro.util as nutil

        nutil.tqdm_auto, nutil.tqdm = self._saved
        self.close(exc_type is None)


class _ChainBar:
    """What numpyro sees as one chain's tqdm bar."""

    def __init__(self, owner: FitProgress, chain: int, total: int, iterable: Any = None) -> None:
        self.owner, self.chain, self.iterable = owner, int(chain), iterable
        owner.register(self.chain, int(total))

    def set_description(self, *_: Any, **__: Any) -> None:
        pass

    set_postfix_str = set_description

    def update(self, n: int = 1) -> None:
        self.owner.advance(self.chain, n)

    def close(self) -> None:
        self.owner.draw(force=True)

    def __iter__(self) -> Any:
        for item in self.iterable or ():
            yield item
            self.update(1)

    def __enter__(self) -> _ChainBar:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


class _TqdmModule:
    """Stands in for the ``tqdm`` module inside ``numpyro.util`` (only ``trange`` is used)."""

    def __init__(self, owner: FitProgress) -> None:
        self.trange = owner.trange
