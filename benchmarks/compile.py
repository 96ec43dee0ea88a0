"""Where a cold process spends its compile time, against baselines measured in the same run.

Usage::

    python benchmarks/compile.py            # every case below, ~5 min on 2 cores
    python benchmarks/compile.py --quick    # the forward-draw and scoring cases only, ~1 min
    python benchmarks/compile.py --backends # nutpie's numba against its JAX backend only, ~3 min

Every case is a fresh process with its own, new compile caches (``PYTENSOR_FLAGS=base_compiledir``,
``NKDEFECTIONS_CACHE_DIR``, ``NUMBA_CACHE_DIR`` under one temporary folder per case), timed
inside the process around the one call it measures:

* ``program``: compiling the default model's sampler program (nutpie, numba) with empty caches,
  at numba's default optimisation level (``NUMBA_OPT=3``, the baseline) and at ``NUMBA_OPT=1``;
  then one fit, to see what the lower level costs in sampling.
* ``backend``: the same program compiled with nutpie's JAX backend (``backend="jax"``,
  ``gradient_backend="jax"``, ``freeze_model=False`` so that the data stay swappable) against
  the numba one (the baseline: ``NUMBA_OPT=3`` above), each with one fit of the default
  settings; and how many of the refit inputs each program takes as data (``with_data``).
* ``second graph``: compiling the "without sanctions" comparison variant in a process whose
  caches hold the default's program (the baseline: the default's own cold compile above).
* ``prior predictive``: 500 prior predictive draws of the default model, PyTensor's default
  (numba, the baseline) against :data:`nkdefections.model.forward.FORWARD_COMPILE`, cold and warm.
* ``scores``: importing ``scoringrules`` (the baseline) against the package's NumPy CRPS,
  each with its first call.

Prints seconds and ratios and writes ``benchmarks/results/compile-<time>.json`` (git-ignored) and
``compile-latest.json`` (``--backends``: ``compile-backends-*.json``).  Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _record import write_record


def _worker(case: str) -> dict[str, float]:
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    if case == "backend-jax":
        import nutpie

        from nkdefections.config import SamplerConfig
        from nkdefections.model import refit

        r = refit.Refitter(sampler=SamplerConfig(progressbar=False))
        t = time.perf_counter()
        # nutpie freezes the data into constants on this backend unless told not to; refits need them swappable
        prog = nutpie.compile_pymc_model(r.model, backend="jax", gradient_backend="jax", freeze_model=False)
        compile_s = time.perf_counter() - t
        names = r.data_names()
        swappable = [n for n in names if n in prog._shared_data]
        refit._PROGRAMS[r.key] = prog  # Refitter.fit then samples this program with the engine's own call
        return {
            "compile_s": compile_s,
            "sampling_s": r.fit().seconds,
            "inputs_as_data": len(swappable),
            "inputs": len(names),
        }
    if case.startswith("program") or case == "second":
        from nkdefections.config import SamplerConfig
        from nkdefections.evaluate.comparison import default_variants
        from nkdefections.model.refit import Refitter

        cfg = default_variants()["without sanctions"] if case == "second" else None
        r = Refitter(cfg, sampler=SamplerConfig(progressbar=False))
        t = time.perf_counter()
        r.program()
        out = {"compile_s": time.perf_counter() - t}
        if case != "second":
            out["sampling_s"] = r.fit().seconds
            names = r.data_names()
            out["inputs_as_data"] = len(set(names) & {v.name for v in r.program().shared_var_keys})
            out["inputs"] = len(names)
        return out
    if case.startswith("prior"):
        import pymc as pm

        from nkdefections.model.defection import DefectionModel
        from nkdefections.model.forward import FORWARD_COMPILE
        from nkdefections.model.graph import generative_model

        m = DefectionModel()
        kw = {"compile_kwargs": dict(FORWARD_COMPILE)} if case.endswith("forward") else {}
        times = []
        for seed in (1, 2):  # the first call compiles, the second reuses what the first compiled
            t = time.perf_counter()
            with generative_model(m.data, m.config):
                pm.sample_prior_predictive(draws=500, random_seed=seed, **kw)
            times.append(time.perf_counter() - t)
        return {"first_s": times[0], "again_s": times[1]}
    import numpy as np

    draws, y = np.random.default_rng(1).poisson(1500, size=(14, 4000)).astype(float), np.full(14, 1400.0)
    t = time.perf_counter()
    if case == "scores-scoringrules":
        import scoringrules as sr

        sr.crps_ensemble(y, draws, estimator="pwm", backend="numpy")
    else:
        from nkdefections.evaluate.scores import crps_samples

        crps_samples(draws, y)
    return {"import_and_call_s": time.perf_counter() - t}


def _run(case: str, cache: Path, extra: dict[str, str] | None = None) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTENSOR_", "NUMBA_", "NKDEFECTIONS_"))}
    env.update(
        {
            "PYTENSOR_FLAGS": f"base_compiledir={cache / 'pytensor'}",
            "NKDEFECTIONS_CACHE_DIR": str(cache / "nkdefections"),
            "NUMBA_CACHE_DIR": str(cache / "numba"),
            "NKDEFECTIONS_COMPILE_CHILD": "1",  # compile here, where the timer is (no child process)
            **(extra or {}),
        }
    )
    proc = subprocess.run([sys.executable, __file__, "--worker", case], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{case} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {case} {extra or ''}: " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()), flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--backends", action="store_true", help="only the numba and JAX program cases")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(_worker(a.worker)))
        return
    rows: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="nk-bench-compile-") as tmp:
        fresh = iter(Path(tmp) / f"c{i}" for i in range(100))
        if a.backends:
            _backends(rows, _run("program", next(fresh), {"NUMBA_OPT": "3"}), next(fresh))
            return _finish(rows, a)
        pp_numba = _run("prior-numba", next(fresh))
        pp_fwd = _run("prior-forward", next(fresh))
        rows["prior predictive, 500 draws"] = {
            "numba_s": pp_numba,
            "forward_s": pp_fwd,
            "ratio_cold": round(pp_numba["first_s"] / pp_fwd["first_s"], 1),
            "ratio_again": round(pp_numba["again_s"] / pp_fwd["again_s"], 1),
        }
        sr_ = _run("scores-scoringrules", next(fresh))
        np_ = _run("scores-numpy", next(fresh))
        rows["CRPS, 14 x 4000 draws, import + first call"] = {
            "scoringrules_s": sr_,
            "numpy_s": np_,
            "ratio": round(sr_["import_and_call_s"] / np_["import_and_call_s"], 1),
        }
        if not a.quick:
            shared = next(fresh)
            p3 = _run("program", shared, {"NUMBA_OPT": "3"})
            second = _run("second", shared)
            p1 = _run("program", next(fresh), {"NUMBA_OPT": "1"})
            rows["sampler program, default model, cold"] = {
                "numba_opt_3": p3,
                "numba_opt_1": p1,
                "compile_ratio_opt3_over_opt1": round(p3["compile_s"] / p1["compile_s"], 2),
                "sampling_ratio_opt1_over_opt3": round(p1["sampling_s"] / p3["sampling_s"], 2),
            }
            rows["second graph (without sanctions), the default's caches warm"] = {
                "compile_s": second,
                "ratio_default_cold_over_second": round(p3["compile_s"] / second["compile_s"], 2),
            }
            _backends(rows, p3, next(fresh))
    _finish(rows, a)


def _backends(rows: dict[str, dict[str, object]], numba: dict[str, float], cache: Path) -> None:
    jax_ = _run("backend-jax", cache)
    rows["nutpie backend, default model, cold"] = {
        "numba_s": numba,
        "jax_s": jax_,
        "compile_ratio_numba_over_jax": round(numba["compile_s"] / jax_["compile_s"], 2),
        "sampling_ratio_jax_over_numba": round(jax_["sampling_s"] / numba["sampling_s"], 1),
        "total_ratio_jax_over_numba": round(
            (jax_["compile_s"] + jax_["sampling_s"]) / (numba["compile_s"] + numba["sampling_s"]), 2
        ),
    }


def _finish(rows: dict[str, dict[str, object]], a: argparse.Namespace) -> None:
    for name, row in rows.items():
        print(name + ": " + ", ".join(f"{k} {v}" for k, v in row.items() if "ratio" in k))
    name = "compile-backends" if a.backends else "compile"  # its own latest record: not a full run
    write_record(name, rows, quick=a.quick, load_average=os.getloadavg())


if __name__ == "__main__":
    main()
