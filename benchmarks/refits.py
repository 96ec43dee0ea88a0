"""Independent refits: two worker processes against one process with two chain threads.

Usage::

    python benchmarks/refits.py             # SBC 40 simulations, comparison of 4 variants
    python benchmarks/refits.py --full      # the targets' sizes: SBC 100, all comparison variants
    python benchmarks/refits.py --quick     # SBC 6, comparison of 2 variants on 2 origins: a smoke run

Each measurement is a fresh process timed from start to exit, with ``$NKDEFECTIONS_WORKERS``
set to 1 (one process; nutpie runs the chains on 2 threads) or 2 (two worker processes, one
thread each).  A warm-up process first fills the compile caches under one temporary folder
that every measurement then shares, so the comparison is of the pool, not of cold caches
(each worker still compiles its programs once: that is part of what is measured).  The
two modes alternate in order.  Prints seconds and the ratio one-process / two-workers
(> 1: the pool is faster) and writes ``benchmarks/results/refits-<time>.json``
(git-ignored) and ``refits-latest.json``.
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

MODES = {"one process, 2 chain threads": "1", "2 worker processes": "2"}


def worker(step: str, size: int, quick: bool) -> None:
    import logging

    logging.disable(logging.WARNING)
    from nkdefections.config import SamplerConfig

    if step == "sbc":
        from nkdefections.evaluate.sbc import SBC_SAMPLER, run_sbc

        res = run_sbc(size, seed=20161231, sampler=SBC_SAMPLER)
        print(json.dumps({"refits": len(res.fits), "passed": int(res.fits["passed"].sum())}))
    else:
        from nkdefections.evaluate.comparison import compare_models, default_variants

        variants = dict(list(default_variants().items())[:size])
        sampler = SamplerConfig(draws=500, tune=500, progressbar=False)  # the evidence step's COMPARE_SAMPLER
        origins = (2012, 2013) if quick else tuple(range(2008, 2016))
        table, *_ = compare_models(variants, origins=origins, sampler=sampler)
        print(json.dumps({"variants": len(table)}))


def timed(step: str, size: int, quick: bool, workers: str, cache: Path) -> dict[str, object]:
    env = dict(os.environ)
    env.update(
        {
            "NKDEFECTIONS_WORKERS": workers,
            "PYTENSOR_FLAGS": f"base_compiledir={cache / 'pytensor'}",
            "NKDEFECTIONS_CACHE_DIR": str(cache / "nkdefections"),
            "NUMBA_CACHE_DIR": str(cache / "numba"),
        }
    )
    cmd = [sys.executable, __file__, "--worker", step, "--size", str(size)] + (["--quick"] if quick else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{step} with NKDEFECTIONS_WORKERS={workers} failed:\n{proc.stderr[-3000:]}")
    return {"seconds": round(seconds, 1), "result": json.loads(proc.stdout.strip().splitlines()[-1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--worker", choices=["sbc", "compare"], help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.size, a.quick)
        return
    sizes = {"sbc": 6, "compare": 2} if a.quick else {"sbc": 40, "compare": 4}
    if a.full:
        sizes = {"sbc": 100, "compare": 99}  # every variant
    rows = []
    with tempfile.TemporaryDirectory(prefix="nk-bench-refits-") as tmp:
        cache = Path(tmp)
        for step, size in sizes.items():
            print(f"{step} (size {size}): warm-up of the compile caches ...", flush=True)
            timed(step, min(size, 2), True, "1", cache)
            order = list(MODES.items())
            times: dict[str, list[float]] = {m: [] for m in MODES}
            for rep in range(1 if a.full else 2):
                for mode, workers in order if rep % 2 == 0 else order[::-1]:
                    r = timed(step, size, a.quick, workers, cache)
                    times[mode].append(float(r["seconds"]))
                    print(f"  {mode}: {r['seconds']} s {r['result']}", flush=True)
            best = {m: min(v) for m, v in times.items()}
            one, two = best["one process, 2 chain threads"], best["2 worker processes"]
            rows.append({"step": step, "size": size, "seconds": times, "ratio_one_over_two": round(one / two, 2)})
            print(f"{step}: one process {one:.0f} s, two workers {two:.0f} s, ratio {one / two:.2f}", flush=True)
    write_record("refits", rows, quick=a.quick)


if __name__ == "__main__":
    main()
