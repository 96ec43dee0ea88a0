"""Why do most refits of prior simulations diverge? A follow-up to ``run.py`` (issue 4, part 4).

Reads what ``run.py`` wrote (``results/sbc_fits.csv``, ``results/sbc_ranks.csv``,
``results/raw/sbc_simulations.nc``) and

1. relates each refit's divergences to the simulation's true parameters and data
   (Spearman rank correlations; no refits);
2. repeats the uniformity tests separately on the refits with more than 10 divergences
   and on the others (a sensitivity check: failed refits stay in the verdict's ranks);
3. refits the simulations with the most divergences again, with the SBC settings and with
   longer tuning and target_accept 0.99, and compares the draws flagged divergent with
   the others; and fits the real data with the SBC settings.

Writes ``results/divergences.md``.

    .venv/bin/python experiments/sbc/divergences.py      # about 3 minutes (two compiles, 9 refits)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from nkdefections import constants as C
from nkdefections.config import SamplerConfig
from nkdefections.evaluate import sbc
from nkdefections.report.blocks import markdown_table

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"
WORST = 4
CHECK = ["level", "beta_border", "beta_economy", "beta_sanctions", "sigma_latent", "rho", "gdp_sd", sbc.LOGLIK]


def fmt(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype.kind == "f":
            out[c] = [f"{v:.3g}" for v in out[c]]
    return out


def main() -> int:
    t0 = time.perf_counter()
    fits = pd.read_csv(OUT / "sbc_fits.csv", index_col=0)
    ranks = pd.read_csv(OUT / "sbc_ranks.csv", index_col=0)
    sims = xr.open_dataset(OUT / "raw" / "sbc_simulations.nc", engine="h5netcdf").load()
    L = int(json.loads((OUT / "run_info.json").read_text())["sbc"]["L"])

    # 1. what the diverging simulations have in common
    y = sims[C.ARRIVALS].values
    feats = {
        "gdp_sd": sims[C.GDP_SD].values,
        "abs beta[economy]": np.abs(sims[C.BETA].sel(driver=C.ECONOMY).values),
        "sigma_latent": sims[C.SIGMA_LATENT].values,
        "rho": sims[C.RHO].values,
        "level": sims[C.LEVEL].values,
        "log max count": np.log(y.max(axis=1) + 1),
        "log min count": np.log(y.min(axis=1) + 1),
        "gdp_mean": sims[C.GDP_MEAN].values,
    }
    rows = []
    for k, v in feats.items():
        rho_s, p = stats.spearmanr(fits["divergences"].to_numpy(), v)
        many = fits["divergences"].to_numpy() > 0
        rows.append(
            {
                "truth / data": k,
                "spearman_with_divergences": float(rho_s),
                "p": float(p),
                "median, >=1 divergence": float(np.median(v[many])),
                "median, none": float(np.median(v[~many])),
            }
        )
    corr = pd.DataFrame(rows)

    # 2. uniformity on the diverging and the other refits separately
    # any divergence against none (the split was at > 10 while most refits diverged; with the engine of
    # issue 18 one refit has more than 10, too few for a test)
    many = fits["divergences"].to_numpy() > 0
    sens = []
    for q in CHECK:
        r = ranks[q].to_numpy()
        sens.append(
            {
                "quantity": q,
                f"p_ecdf, >=1 divergence (n={many.sum()})": sbc.ecdf_uniformity_test(r[many], L),
                "mean_rank, >=1 div": float(r[many].mean() / L),
                f"p_ecdf, no divergence (n={(~many).sum()})": sbc.ecdf_uniformity_test(r[~many], L),
                "mean_rank, no div": float(r[~many].mean() / L),
            }
        )
    sens = pd.DataFrame(sens)

    # 3. refit the worst simulations: adaptation or geometry?
    from nkdefections.model.refit import Refitter

    worst = list(fits["divergences"].sort_values(ascending=False).index[:WORST])
    S = sbc.SBC_SAMPLER
    settings = {
        f"SBC settings ({S.tune} + {S.draws}, target_accept {S.target_accept})": S,
        "1000 + 1000, target_accept 0.99": SamplerConfig(
            draws=1000, tune=1000, chains=4, target_accept=0.99, progressbar=False
        ),
    }
    refit_rows = []
    real_row = None
    for label, smp in settings.items():
        r = Refitter(sampler=smp)
        if smp == sbc.SBC_SAMPLER:
            f = r.fit(r.inputs(), seed=1)
            real_row = {"settings": label, **f.convergence.summary_row()}
        for i in worst:
            sim = sims.isel({sbc.SIMULATION: int(i)})
            f = r.fit(sbc.sbc_inputs(r, sim), seed=sbc.derive_seed(sbc.SEED, int(i), 1))
            row = f.convergence.summary_row()
            div = f.idata.sample_stats["diverging"].values.astype(bool)
            post = f.posterior
            s_div = float(np.median(post[C.SIGMA_LATENT].values[div])) if div.any() else np.nan
            refit_rows.append(
                {
                    "simulation": int(i),
                    "settings": label,
                    "divergent draws": f"{int(div.sum())} / {div.size}",
                    "max_rhat": row["max_rhat"],
                    "min_ess_bulk": row["min_ess_bulk"],
                    "true sigma_latent": float(sim[C.SIGMA_LATENT]),
                    "median sigma_latent, divergent draws": s_div,
                    "median sigma_latent, other draws": float(np.median(post[C.SIGMA_LATENT].values[~div])),
                    "max count": int(sim[C.ARRIVALS].max()),
                    "true gdp_sd": float(sim[C.GDP_SD]),
                }
            )
    refits = pd.DataFrame(refit_rows)
    seconds = time.perf_counter() - t0
    lines = [
        "# Divergences in the SBC refits (written by experiments/sbc/divergences.py)",
        "",
        f"{int((fits['divergences'] > 0).sum())} of {len(fits)} refits diverged at least once, "
        f"{int((fits['divergences'].to_numpy() > 10).sum())} more than 10 times.",
        "",
        "## Which simulations diverge (Spearman correlation of the refit's divergences with the truth / data)",
        "",
        markdown_table(fmt(corr)),
        "",
        "## Uniformity on the diverging refits and on the others (sensitivity only)",
        "",
        markdown_table(fmt(sens)),
        "",
        f"## The {WORST} simulations with the most divergences, refitted; and the real data",
        "",
        markdown_table(fmt(refits)),
        "",
        "Real data with the SBC settings: "
        + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in (real_row or {}).items()),
        "",
        f"Run time {seconds:.0f} s.",
    ]
    text = "\n".join(lines) + "\n"
    (OUT / "divergences.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
