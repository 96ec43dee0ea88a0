"""Time the rolling-origin backtest against one cold fit and against rebuilding the model per origin.

Usage::

    python benchmarks/backtest.py            # 8 origins (2008-2015), default sampler settings
    python benchmarks/backtest.py --quick    # 2 origins, small sampler: a smoke run

Three measurements, each a fresh process with EMPTY compile caches (new
``PYTENSOR_FLAGS=base_compiledir``, ``NKDEFECTIONS_CACHE_DIR`` for the JAX cache and
``NUMBA_CACHE_DIR``), timed by this parent from start to exit:

* ``one-cold-fit``: ``DefectionModel().fit()`` on 1999-2016, the unit of the target;
* ``backtest``: ``run_backtest()`` -- every origin refitted by the compile-once engine,
  both forecast modes, the four baselines, all scores;
* ``rebuild-per-origin``: the naive way, a new ``DefectionModel`` on 1999..origin and a
  ``pm.sample`` per origin (fits only, no forecasts or scores), in one process.

Prints the ratios backtest / one cold fit (target: well under 10) and rebuild / backtest.
Results go to ``benchmarks/results/backtest-<time>.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"
TARGET = 10.0


def worker(name: str, quick: bool) -> None:
    import logging

    logging.disable(logging.WARNING)
    from nkdefections.config import GateConfig, SamplerConfig

    sampler = SamplerConfig(progressbar=False, **({"draws": 200, "tune": 200, "chains": 2} if quick else {}))
    origins = (2012, 2013) if quick else tuple(range(2008, 2016))
    if name == "one-cold-fit":
        from nkdefections.model.defection import DefectionModel

        DefectionModel().fit(sampler, GateConfig(enforce=False))
    elif name == "backtest":
        from nkdefections.evaluate.backtest import run_backtest

        bt = run_backtest(origins=origins, sampler=sampler)
        print(json.dumps({"refits": len(bt.fits), "scores": len(bt.scores), "passed": int(bt.fits["passed"].sum())}))
    elif name == "rebuild-per-origin":
        import warnings

        from nkdefections.config import DataConfig
        from nkdefections.model.defection import DefectionModel

        for origin in origins:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                DefectionModel(data_config=DataConfig(last_year=origin)).fit(sampler, GateConfig(enforce=False))
    else:  # pragma: no cover
        raise SystemExit(f"unknown worker {name}")


def measure(name: str, quick: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="nk-bench-bt-") as cache:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_", "PYTENSOR", "NUMBA"))}
        env.update(
            PYTENSOR_FLAGS=f"base_compiledir={cache}/pytensor",
            NKDEFECTIONS_CACHE_DIR=f"{cache}/nk",
            NUMBA_CACHE_DIR=f"{cache}/numba",
        )
        args = [sys.executable, __file__, "--worker", name] + (["--quick"] if quick else [])
        t0 = time.perf_counter()
        res = subprocess.run(args, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{name} failed:\n{res.stderr[-2000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.quick)
        return 0
    times = {}
    for name in ("one-cold-fit", "backtest", "rebuild-per-origin"):
        times[name] = measure(name, args.quick)
        print(f"{name:>20}: {times[name]:7.1f} s", flush=True)
    ratio = times["backtest"] / times["one-cold-fit"]
    speedup = times["rebuild-per-origin"] / times["backtest"]
    verdict = "MET" if ratio < TARGET else "NOT MET"
    print(f"backtest / one cold fit = {ratio:.2f}x (target: well under {TARGET:g}x) -> {verdict}")
    print(f"rebuild-per-origin / backtest = {speedup:.2f}x (the rebuild does no forecasts, baselines or scores)")
    OUT.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (OUT / f"backtest-{stamp}.json").write_text(
        json.dumps(
            {
                "seconds": times,
                "ratio_backtest_to_one_cold_fit": ratio,
                "rebuild_over_backtest": speedup,
                "quick": args.quick,
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "utc": stamp,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
