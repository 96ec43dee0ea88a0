"""Which likelihood and latent dynamics does the evidence support? (issue 2's model choice)

Fits each candidate with the project's sampler settings (4 chains x 1000 draws after
1000 tuning, seed 20161231) and prints, per candidate: the convergence gate's verdict
and numbers, rho, the driver effects (median and 90% interval) and the one-step-ahead
90% interval coverage.  Writes ``results.csv`` and ``results.md`` next to this file.

    .venv/bin/python experiments/model_choice/run.py
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from nkdefections import GateConfig, ModelConfig, SamplerConfig
from nkdefections import constants as C
from nkdefections.arithmetic import flatten_draws
from nkdefections.evaluate.checks import coverage, draw_counts, interval_table, one_step_replicates, shape_checks
from nkdefections.model.defection import DefectionModel
from nkdefections.report.blocks import markdown_table

HERE = Path(__file__).resolve().parent

# The centred latent (``parameterization: centered``) of the original run was removed with the
# refit ladder (issue 18): its rows in results/ are from that run; a re-run has the others only.
CANDIDATES: list[tuple[str, dict, dict]] = [
    ("poisson_ar1_noncentered (default)", {"parameterization": "noncentered"}, {}),
    ("poisson_ar1_log_mu", {}, {}),
    ("poisson_random_walk", {"latent": "random_walk"}, {}),
    ("negbin_ar1_noncentered", {"likelihood": "negative_binomial", "parameterization": "noncentered"}, {}),
    ("negbin_ar1_log_mu", {"likelihood": "negative_binomial"}, {}),
    ("negbin_no_latent", {"likelihood": "negative_binomial", "latent": "none"}, {}),
]


def evaluate(label: str, model_kw: dict, sampler_kw: dict) -> dict:
    t0 = time.perf_counter()
    m = DefectionModel(config=ModelConfig(name=label, **model_kw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(SamplerConfig(progressbar=False, **sampler_kw), GateConfig(enforce=False))
    post = m.idata.posterior
    row: dict = {"model": label, **m.convergence.summary_row(), "seconds": round(time.perf_counter() - t0, 1)}
    row["rho_median"] = float(np.median(post[C.RHO])) if C.RHO in post else np.nan
    od = flatten_draws(post[C.OVERDISPERSION]) if C.OVERDISPERSION in post else None
    row["overdispersion_median"] = float(np.median(od)) if od is not None else np.nan
    for r in m.effects().itertuples():
        row[f"{r.driver}_pct"] = f"{r.median_pct:+.0f} [{r.q05_pct:+.0f}, {r.q95_pct:+.0f}]"
    y = m.design.y.astype(float)
    rep = one_step_replicates(
        flatten_draws(post[C.LOG_MU]),
        flatten_draws(post[C.LATENT]),
        flatten_draws(post[C.RHO]) if C.RHO in post else None,
        flatten_draws(post[C.SIGMA_LATENT]) if C.SIGMA_LATENT in post else None,
        np.random.default_rng(0),
        kind=m.config.latent,
        overdispersion=flatten_draws(post[C.OVERDISPERSION]) if C.OVERDISPERSION in post else None,
    )
    cov = coverage(interval_table(m.design.years[1:], y[1:], rep)).set_index("nominal")["empirical"]
    rng = np.random.default_rng(1)
    in_sample = draw_counts(flatten_draws(post[C.MU]), rng, od)
    shapes = shape_checks(m.design.years, y, in_sample)
    row["shape_checks_reproduced"] = f"{int(shapes['reproduced'].sum())}/{len(shapes)}"
    row["shape_checks_failed"] = ",".join(shapes.loc[~shapes["reproduced"], "check"]) or "-"
    row["one_step_cov50"] = float(cov[0.5])
    row["one_step_cov90"] = float(cov[0.9])
    return row


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for label, mkw, skw in CANDIDATES:
        row = evaluate(label, mkw, skw)
        print(row, flush=True)
        rows.append(row)
    df = pd.DataFrame(rows)
    df.to_csv(HERE / "results.csv", index=False)
    cols = [
        "model",
        "passed",
        "max_rhat",
        "min_ess_bulk",
        "divergences",
        "rho_median",
        "overdispersion_median",
        "border_pct",
        "economy_pct",
        "sanctions_pct",
        "shape_checks_reproduced",
        "shape_checks_failed",
        "one_step_cov50",
        "one_step_cov90",
    ]
    df["max_rhat"] = df["max_rhat"].map("{:.4f}".format)
    df["min_ess_bulk"] = df["min_ess_bulk"].map("{:.0f}".format)
    md = markdown_table(df[cols])
    (HERE / "results.md").write_text(md + "\n", encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
