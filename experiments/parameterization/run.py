"""Is the log_mu parameterisation the same model? A long reference run of both forms (issue 9).

Fits the default model twice on 1999-2016, in the innovation form (``noncentered``, the
parameterisation before issue 9) and in the ``log_mu`` form, each with 4 chains x DRAWS draws,
and compares the posterior of every named quantity (level, effects, rho, sigma, GDP block,
intercept, the latent and log mu per year): the difference of the posterior means in units
of its Monte Carlo standard error (z), and the ratio of the posterior s.d.s.  Under "same
model" the z values are standard normal (|z| > 3 in about 0.3% of them).

    python experiments/parameterization/run.py [--draws 5000] [--out experiments/parameterization/results]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

from nkdefections import DefectionModel, GateConfig, ModelConfig, SamplerConfig
from nkdefections import constants as C
from nkdefections.provenance import provenance

NAMED = (C.LEVEL, C.BETA, C.RHO, C.SIGMA_LATENT, C.GDP_MEAN, C.GDP_SD, C.INTERCEPT, C.GDP_TRUE, C.LATENT, C.LOG_MU)


def fit(parameterization: str, draws: int, seed: int) -> tuple[DefectionModel, float]:
    m = DefectionModel(config=ModelConfig(parameterization=parameterization))
    t0 = time.perf_counter()
    m.fit(SamplerConfig(draws=draws, tune=1000, seed=seed, progressbar=False), GateConfig(enforce=False))
    return m, time.perf_counter() - t0


def summary(m: DefectionModel) -> pd.DataFrame:
    post = m.idata.posterior.to_dataset()[list(NAMED)]
    rows = []
    mcse = az.mcse(post)
    for name in NAMED:
        da, se = post[name], mcse[name]
        extra = [d for d in da.dims if d not in (C.CHAIN, C.DRAW)]
        stacked = da.stack(sample=(C.CHAIN, C.DRAW))
        mean, sd = stacked.mean("sample"), stacked.std("sample")
        if extra:
            for idx in np.ndindex(*[da.sizes[d] for d in extra]):
                sel = {d: i for d, i in zip(extra, idx, strict=True)}
                label = f"{name}[{','.join(str(da[d].values[i]) for d, i in sel.items())}]"
                rows.append((label, float(mean.isel(sel)), float(sd.isel(sel)), float(se.isel(sel))))
        else:
            rows.append((name, float(mean), float(sd), float(se)))
    return pd.DataFrame(rows, columns=["quantity", "mean", "sd", "mcse"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=20161231)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args()
    prov = provenance()
    old, t_old = fit("noncentered", args.draws, args.seed)
    new, t_new = fit("log_mu", args.draws, args.seed + 1)
    a, b = summary(old), summary(new)
    df = a.merge(b, on="quantity", suffixes=("_innovation", "_log_mu"))
    df["z"] = (df["mean_log_mu"] - df["mean_innovation"]) / np.hypot(df["mcse_innovation"], df["mcse_log_mu"])
    df["sd_ratio"] = df["sd_log_mu"] / df["sd_innovation"]
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "comparison.csv", index=False, float_format="%.6g")
    fits = []
    for label, m, t in (("noncentered", old, t_old), ("log_mu", new, t_new)):
        r = m.convergence.summary_row()
        r.update(parameterization=label, seconds=round(t, 1),
                 mean_leapfrog_steps=float(m.idata.sample_stats["n_steps"].mean()))
        fits.append(r)
    pd.DataFrame(fits).to_csv(args.out / "fits.csv", index=False, float_format="%.6g")
    z = df["z"].abs()
    meta = {
        "command": f"python experiments/parameterization/run.py --draws {args.draws} --seed {args.seed}",
        "quantities": int(len(df)),
        "max_abs_z": float(z.max()),
        "n_abs_z_over_3": int((z > 3).sum()),
        "sd_ratio_range": [float(df["sd_ratio"].min()), float(df["sd_ratio"].max())],
        "code_version": prov["code_version"],
        "package_versions": prov["packages"],
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(pd.DataFrame(fits).to_string(index=False))
    print(json.dumps({k: v for k, v in meta.items() if k != "package_versions"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
