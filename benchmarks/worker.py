"""One benchmark measurement, run in its own process by ``benchmarks/run.py``.

Usage (normally only called by ``run.py``)::

    python benchmarks/worker.py VARIANT --draws 1000 --tune 1000 --seed 20161231 --out result.json

(``--chains`` 4 and ``--cores`` 2 by default.)

``VARIANT`` is one of

``baseline-pymc``
    ``DefectionModel().model`` sampled with a plain ``pm.sample(draws, tune, chains=4,
    cores=2, nuts_sampler="pymc", random_seed=seed, progressbar=False)``: PyMC's own NUTS
    with its default target acceptance.
``project-numpyro``, ``project-nutpie``, ``project-pymc``
    ``DefectionModel().fit(SamplerConfig(name=..., draws, tune, seed, progressbar=False),
    GateConfig(enforce=False))``: the project's fit, exactly as a user calls it.

The compile caches are chosen by the parent through the environment
(``PYTENSOR_FLAGS=base_compiledir=...``, ``NKDEFECTIONS_CACHE_DIR``); this script
never touches them.  Both kinds of run end with the same convergence diagnostics
(:func:`nkdefections.model.diagnostics.check_convergence` over the free parameters): the
project's fit computes them itself, the baseline calls the same function.

Instrumentation only observes, it changes nothing: ``pymc.sample`` is wrapped by a
pass-through that times the call and, for its duration, listens to numba's
``numba:compile`` events (numba-backed samplers) or JAX's compile events
(numpyro).  Compile times are those of this process; PyMC's NUTS worker processes
are not seen.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402 - the clock starts before anything else is imported
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

VARIANTS = (  # as in run.py
    "baseline-default",
    "baseline-default-logmu",
    "project-nutpie-noncentered",
    "project-numpyro",
    "baseline-pymc",
    "project-nutpie",
    "project-pymc",
)


def _union_length(spans: list[tuple[float, float]]) -> float:
    """Total length of the union of ``(start, end)`` intervals (nested events count once)."""
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(spans):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


class SampleProbe:
    """Pass-through wrapper of :func:`pymc.sample` that records timings.

    Attributes filled after the call: ``seconds`` (the whole ``pm.sample`` call),
    ``nuts_sampler``, ``target_accept`` and ``jit`` (compile seconds seen in this
    process, JAX cache hits/misses and device count for numpyro).
    """

    def __init__(self, sample_fn: Any) -> None:
        self._sample = sample_fn
        self.seconds: float | None = None
        self.nuts_sampler: str | None = None
        self.target_accept: float | None = None
        self.jit: dict[str, Any] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.nuts_sampler = kwargs.get("nuts_sampler", "pymc")
        self.target_accept = (kwargs.get("nuts") or {}).get("target_accept")
        if self.nuts_sampler == "numpyro":
            return self._timed_jax(args, kwargs)
        return self._timed_numba(args, kwargs)

    def _timed_numba(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # numba is imported by PyTensor's default (numba) backend anyway
        from numba.core import event

        listener = event.TimingListener()
        event.register("numba:compile", listener)
        t0 = time.perf_counter()
        try:
            return self._sample(*args, **kwargs)
        finally:
            self.seconds = time.perf_counter() - t0
            event.unregister("numba:compile", listener)
            self.jit = {
                "kind": "numba",
                "compile_s": listener.duration if listener.done else 0.0,
            }

    def _timed_jax(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # sample_kwargs() has already set XLA_FLAGS and the cache variables when the
        # wrapper runs, and importing jax does not initialise a backend.
        import jax
        from jax import monitoring

        spans: list[tuple[float, float]] = []
        counts = {"cache_hits": 0, "cache_misses": 0}

        def on_span(event: str, start: float, end: float, **_: Any) -> None:
            if event.startswith("/jax/core/compile/"):
                spans.append((start, end))

        def on_event(event: str, **_: Any) -> None:
            for key in counts:
                if event == f"/jax/compilation_cache/{key}":
                    counts[key] += 1

        monitoring.register_event_time_span_listener(on_span)
        monitoring.register_event_listener(on_event)
        t0 = time.perf_counter()
        try:
            return self._sample(*args, **kwargs)
        finally:
            self.seconds = time.perf_counter() - t0
            monitoring.unregister_event_time_span_listener(on_span)
            monitoring.unregister_event_listener(on_event)
            self.jit = {
                "kind": "jax",
                "compile_s": _union_length(spans),
                "jax_devices": jax.device_count(),
                **counts,
            }


def measure(variant: str, *, draws: int, tune: int, chains: int, cores: int, seed: int) -> dict[str, Any]:
    """Build the model, sample it as ``variant`` does and return timings and diagnostics."""
    import pymc as pm

    probe = SampleProbe(pm.sample)
    pm.sample = probe  # the project's model module calls pm.sample at call time

    from nkdefections import DefectionModel, GateConfig, ModelConfig, SamplerConfig
    from nkdefections.model.diagnostics import check_convergence
    from nkdefections.model.graph import parameter_names

    t_imported = time.perf_counter()
    # the model as a user would first write it (latent as innovations) or the project's log_mu form
    innovation_form = variant in ("baseline-default", "baseline-pymc") or variant.endswith("-noncentered")
    m = DefectionModel(config=ModelConfig(parameterization="noncentered" if innovation_form else "log_mu"))
    model = m.model
    t_built = time.perf_counter()
    if variant.startswith("baseline-default"):
        with model:  # PyMC's defaults: whatever pm.sample() chooses (nutpie when installed), its chains
            idata = pm.sample(random_seed=seed, progressbar=False)
        report = check_convergence(idata, parameter_names(model), GateConfig(enforce=False))
    elif variant == "baseline-pymc":
        with model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                nuts_sampler="pymc",
                random_seed=seed,
                progressbar=False,
            )
        report = check_convergence(idata, parameter_names(model), GateConfig(enforce=False))
    else:
        sampler = SamplerConfig(
            name=variant.removeprefix("project-").removesuffix("-noncentered"),
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            seed=seed,
            progressbar=False,
        )
        m.fit(sampler, GateConfig(enforce=False))
        idata, report = m.idata, m.convergence
    t_done = time.perf_counter()
    post_attrs = dict(idata.posterior.attrs)
    stats_attrs = dict(idata.sample_stats.attrs)
    sampling_time = post_attrs.get("sampling_time", stats_attrs.get("sampling_time"))
    row = report.summary_row()
    return {
        "variant": variant,
        "nuts_sampler": probe.nuts_sampler,
        "target_accept": probe.target_accept,  # None: PyMC's default
        "draws": row["draws"],
        "chains": row["chains"],
        "tune": tune,
        "cores": cores,
        "seed": seed,
        "import_s": t_imported - T_START,
        "build_s": t_built - t_imported,
        "run_s": t_done - t_built,  # pm.sample or fit(), diagnostics included
        "internal_s": t_done - T_START,
        # the fit engine does not go through pm.sample: its fit() call (compile + sampling) stands in
        "pm_sample_s": probe.seconds if probe.seconds is not None else t_done - t_built,
        "sampling_time_s": None if sampling_time is None else float(sampling_time),
        "jit": probe.jit,
        "min_ess_bulk": row["min_ess_bulk"],
        "min_ess_tail": row["min_ess_tail"],
        "max_rhat": row["max_rhat"],
        "divergences": row["divergences"],
        "mean_leapfrog_steps": float(idata.sample_stats["n_steps"].mean()) if "n_steps" in idata.sample_stats else None,
        "gate_passed": row["passed"],  # the project's default gate, not enforced here
        "n_parameters": len(report.table),
    }


def main(argv: list[str] | None = None) -> int:
    """Run one measurement and write its JSON to ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant", choices=VARIANTS)
    ap.add_argument("--draws", type=int, required=True)
    ap.add_argument("--tune", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    result = measure(
        args.variant, draws=args.draws, tune=args.tune, chains=args.chains, cores=args.cores, seed=args.seed
    )
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
