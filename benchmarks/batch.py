"""Time batched refits (``Refitter.fit_many``) against the same refits one at a time.

Usage::

    python benchmarks/batch.py                     # 20 SBC simulations, batch sizes 5 and 20, ~4 min
    python benchmarks/batch.py --sims 6 --batch-sizes 3 --draws 200   # smoke run, ~1.5 min

One process, one :class:`~nkdefections.model.refit.Refitter` at the SBC's sampler settings
(4 chains x 1000 tune + 1000 draws unless ``--draws`` is given) with the fallback ladder off,
so only first attempts are timed (the ladder runs one data set at a time either way).
Each batched program and the one-at-a-time program are compiled and run once before
anything is timed; then, on the same ``--sims`` prior simulations and seeds:

* ``sequential``: ``Refitter.fit`` per simulation;
* ``batch-B``: ``Refitter.fit_many(batch_size=B)`` for every B of ``--batch-sizes``.

Prints each wall time, its ratio to the sequential time (above 1 means batching is faster),
the gate pass count, the mean and the mean per-batch maximum of leapfrog steps per draw (a
batch runs each NUTS tree until its deepest member is done), and the largest absolute
difference between a batched and a sequential draw (the same keys and starts; 0 when XLA
compiles both to the same arithmetic).  Results go to ``benchmarks/results/batch-<time>.json``
(git-ignored) and ``batch-latest.json`` (committed, the README's figures).  Nothing is enforced:
the exit status is 0 when everything ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sims", type=int, default=20)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[5, 20])
    p.add_argument("--draws", type=int, default=None, help="tune and draws per chain (default: the SBC's 1000)")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--out-dir", type=Path, default=OUT)
    a = p.parse_args(argv)
    logging.disable(logging.WARNING)
    from dataclasses import replace

    from nkdefections.evaluate.sbc.calibration import derive_seed
    from nkdefections.evaluate.sbc.ranks import SBC_GATE, SBC_SAMPLER
    from nkdefections.evaluate.sbc.simulate import sbc_inputs, simulate_prior
    from nkdefections.model.refit import Refitter

    sampler = SBC_SAMPLER if a.draws is None else replace(SBC_SAMPLER, draws=a.draws, tune=a.draws)
    r = Refitter(sampler=sampler, fallback=False)
    sims = simulate_prior(a.sims, a.seed, config=r.config, data=r.data)
    xs = [sbc_inputs(r, sims.isel(simulation=i)) for i in range(a.sims)]
    seeds = [derive_seed(a.seed, i, 1) for i in range(a.sims)]

    t = time.perf_counter()
    r.fit(xs[0], seed=seeds[0], gate=SBC_GATE)
    for b in a.batch_sizes:  # compile every batch shape (a short last batch is its own shape)
        for n in sorted({min(b, a.sims), a.sims % b or b}):
            r.fit_many(xs[:n], seeds=seeds[:n], gate=SBC_GATE, batch_size=n)
    warmup = time.perf_counter() - t

    def steps(fits: list) -> np.ndarray:  # (simulation, chain, draw)
        return np.stack([f.idata.sample_stats["n_steps"].values for f in fits])

    t = time.perf_counter()
    seq = [r.fit(x, seed=s, gate=SBC_GATE) for x, s in zip(xs, seeds, strict=True)]
    seq_s = time.perf_counter() - t
    rows = [
        {
            "variant": "sequential",
            "seconds": round(seq_s, 2),
            "ratio": 1.0,
            "passed": sum(f.convergence.passed for f in seq),
            "mean_steps": round(float(steps(seq).mean()), 1),
            "mean_batch_max_steps": round(float(steps(seq).mean()), 1),
            "max_abs_diff": 0.0,
        }
    ]
    for b in a.batch_sizes:
        t = time.perf_counter()
        many = r.fit_many(xs, seeds=seeds, gate=SBC_GATE, batch_size=b)
        sec = time.perf_counter() - t
        st = steps(many)
        batch_max = np.concatenate([st[i : i + b].max(axis=0).ravel() for i in range(0, a.sims, b)])
        diff = max(
            float(np.nanmax(np.abs(m.posterior[v].values - s.posterior[v].values)))
            for m, s in zip(many, seq, strict=True)
            for v in m.posterior.data_vars
        )
        rows.append(
            {
                "variant": f"batch-{b}",
                "seconds": round(sec, 2),
                "ratio": round(seq_s / sec, 3),
                "passed": sum(f.convergence.passed for f in many),
                "mean_steps": round(float(st.mean()), 1),
                "mean_batch_max_steps": round(float(batch_max.mean()), 1),
                "max_abs_diff": diff,
            }
        )
    shape = f"{sampler.chains} chains x ({sampler.tune} tune + {sampler.draws} draws)"
    print(f"{a.sims} SBC refits, {shape}; warm-up {warmup:.0f} s")
    print(f"{'variant':<12}{'seconds':>9}{'ratio':>8}{'passed':>8}{'steps':>8}{'batch max':>11}{'max |diff|':>12}")
    for row in rows:
        print(
            f"{row['variant']:<12}{row['seconds']:>9.1f}{row['ratio']:>8.2f}{row['passed']:>8}"
            f"{row['mean_steps']:>8.1f}{row['mean_batch_max_steps']:>11.1f}{row['max_abs_diff']:>12.3g}"
        )
    a.out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = a.out_dir / f"batch-{stamp}.json"
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    settings = vars(a) | {"out_dir": str(a.out_dir)}
    text = json.dumps({"settings": settings, "machine": meta, "created": stamp, "rows": rows}, indent=2)
    out.write_text(text)
    (a.out_dir / "batch-latest.json").write_text(text)
    print(f"wrote {out} and batch-latest.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
