"""How well does a year-to-date count predict the full year? (issue 4, part 6: nowcasting)

For every partial figure in ``data/raw/arrivals_partial_year.csv`` whose year has a final
count, the full-year count is nowcast with the share curve re-fitted without that year
(leave-one-year-out), and scored against the final count:

* ``model``      beta-binomial observation model, prior = the default model's one-step-ahead
                 predictive for the year (the latent state of t-1 carried one step);
* ``share``      beta-binomial, log-uniform prior (the share curve alone, no model);
* ``binomial``   binomial observation model (no year-to-year share variation), model prior;
* ``prior``      the model's one-step-ahead predictive alone (no partial count);
* ``naive``      ``x / f`` (``x * 12 / m``), a point estimate;
* ``refit``      (with ``--refit``) as ``model``, but the prior comes from a model fitted only
                 to 1999..t-1 and carried into t with the status-quo scenario's drivers: a
                 real-time test without any look at year t (years 2004 on; 5 fitted years
                 are the minimum).

Writes ``results.csv`` (one row per partial figure and method), ``results.md`` (the
per-figure table and the summary by method) next to this file.

    .venv/bin/python experiments/nowcast/run.py            # about 2 minutes
    .venv/bin/python experiments/nowcast/run.py --refit    # + 12 fits, about 10 more minutes
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from nkdefections import DataConfig, GateConfig, SamplerConfig
from nkdefections.forecast.nowcast.nowcast import nowcast
from nkdefections.forecast.nowcast.share import (
    N_FULL,
    N_NEXT,
    fit_share_curve,
    naive_estimate,
    pmf_crps,
    pmf_pit,
    pmf_quantile,
    share_pairs,
)
from nkdefections.model.defection import DefectionModel
from nkdefections.report.blocks import markdown_table, splice

HERE = Path(__file__).resolve().parent
CACHE = HERE.parents[1] / ".cache" / "fits"
SEED = 20161231
PROBS = (0.50, 0.80, 0.95)


def score(grid: np.ndarray, pmf: np.ndarray, y: float) -> dict:
    """Median, central intervals, PIT, CRPS of a count pmf against the observed count."""
    out: dict = {"median": float(pmf_quantile(grid, pmf, 0.5)[0])}
    for p in PROBS:
        lo, hi = pmf_quantile(grid, pmf, [(1 - p) / 2, 1 - (1 - p) / 2])
        k = int(round(p * 100))
        out[f"lower_{k}"], out[f"upper_{k}"] = lo, hi
        out[f"inside_{k}"] = bool(lo <= y <= hi)
        out[f"width_{k}"] = hi - lo
    out["pit"] = pmf_pit(grid, pmf, y)
    out["crps"] = pmf_crps(grid, pmf, y)
    out["ape"] = abs(out["median"] - y) / y
    return out


def fmt(df: pd.DataFrame) -> pd.DataFrame:
    """Counts as integers, shares/PIT/coverage with 2-3 decimals, percentages with 1: strings for the table."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype.kind != "f":
            continue
        if c == "fraction":
            f = "{:.3f}"
        elif "PIT" in c or c.startswith("cover"):
            f = "{:.2f}"
        elif "pct" in c:
            f = "{:.1f}"
        else:
            f = "{:.0f}"
        out[c] = ["-" if pd.isna(v) else f.format(v) for v in out[c]]
    return out


def fit_model(last_year: int | None = None) -> DefectionModel:
    dc = DataConfig() if last_year is None else DataConfig(last_year=last_year)
    m = DefectionModel(data_config=dc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(SamplerConfig(progressbar=False), GateConfig(enforce=last_year is None), cache_dir=CACHE)
    return m


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refit", action="store_true", help="also the real-time variant (refits per year)")
    parser.add_argument(
        "--out", type=Path, default=None, help="write the results here instead of next to this file (no README splice)"
    )
    args = parser.parse_args(argv)
    dest = args.out or HERE
    dest.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    pairs = share_pairs()
    from nkdefections import load_data

    ds = load_data()
    all_finals = dict(zip(ds["year"].values.astype(int), ds["arrivals"].values.astype(int), strict=True))
    model = fit_model()
    refits: dict[int, DefectionModel] = {}
    rows, next_rows = [], []
    for r in pairs.itertuples(index=False):
        year, x, final = int(r.year), int(r.partial), int(r.final)
        day = None if pd.isna(r.day) else int(r.day)
        share_bb = fit_share_curve(pairs, exclude_years=[year], seed=SEED)
        share_bi = fit_share_curve(pairs, exclude_years=[year], overdispersed=False, seed=SEED)
        base = {
            "year": year,
            "period": r.period,
            "fraction": round(float(r.fraction), 3),
            "partial": x,
            "final": final,
            "naive": naive_estimate(x, r.fraction),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = {
                "model": nowcast(x, year, r.month_end, day=day, model=model, share=share_bb, seed=SEED),
                "share": nowcast(x, year, r.month_end, day=day, share=share_bb, seed=SEED),
                "binomial": nowcast(x, year, r.month_end, day=day, model=model, share=share_bi, seed=SEED),
            }
            if args.refit and year - 1 >= 2003:
                if year not in refits:
                    refits[year] = fit_model(last_year=year - 1)
                res["refit"] = nowcast(x, year, r.month_end, day=day, model=refits[year], share=share_bb, seed=SEED)
        for name, out in res.items():
            rows.append(
                {
                    **base,
                    "method": name,
                    "ess": out.attrs["effective_draws"],
                    **score(out[N_FULL].values, out["full_year_pmf"].values, final),
                }
            )
        prior_out = res["model"]
        rows.append(
            {
                **base,
                "method": "prior",
                **score(prior_out[N_FULL].values, prior_out["full_year_prior_pmf"].values, final),
            }
        )
        rows.append({**base, "method": "naive", "median": base["naive"], "ape": abs(base["naive"] - final) / final})
        if year + 1 in all_finals:
            y1 = all_finals[year + 1]
            for name in ("model", "refit"):
                if name not in res:
                    continue
                out = res[name]
                g = out[N_NEXT].values
                for kind in ("next_year_pmf", "next_year_prior_pmf"):
                    s = score(g, out[kind].values, y1)
                    next_rows.append(
                        {"year": year, "period": r.period, "next_final": y1, "method": name, "kind": kind, **s}
                    )
        print(f"{year} {r.period}: done ({time.perf_counter() - t0:.0f} s)", flush=True)

    df = pd.DataFrame(rows)
    df.to_csv(dest / "results.csv", index=False)
    nxt = pd.DataFrame(next_rows)
    nxt.to_csv(dest / "results_next_year.csv", index=False)

    # the per-figure table (the model nowcast, the share-only nowcast, the prior alone, naive)
    wide = df[df["method"] == "model"][["year", "period", "fraction", "partial", "final", "naive"]].copy()
    for name in ("model", "share", "prior", "refit"):
        sub = df[df["method"] == name].set_index(["year", "period"])
        if sub.empty:
            continue
        key = list(zip(wide["year"], wide["period"], strict=True))
        get = sub.reindex(key)
        wide[f"{name} median"] = get["median"].to_numpy()
        wide[f"{name} 80%"] = [
            "-" if np.isnan(lo) else f"{lo:.0f}-{hi:.0f}"
            for lo, hi in zip(get["lower_80"], get["upper_80"], strict=True)
        ]
        if name in ("model", "refit", "share"):
            wide[f"{name} 95%"] = [
                "-" if np.isnan(lo) else f"{lo:.0f}-{hi:.0f}"
                for lo, hi in zip(get["lower_95"], get["upper_95"], strict=True)
            ]
        wide[f"{name} PIT"] = get["pit"].to_numpy()

    summary = []
    for name in ("model", "refit", "share", "binomial", "prior", "naive"):
        sub = df[df["method"] == name]
        if sub.empty:
            continue
        row = {"method": name, "figures": len(sub), "years": sub["year"].nunique()}
        for p in PROBS:
            k = int(round(p * 100))
            row[f"cover_{k}"] = (
                float(sub[f"inside_{k}"].mean())
                if f"inside_{k}" in sub and sub[f"inside_{k}"].notna().any()
                else np.nan
            )
        for k in (80, 95):
            col = f"width_{k}"
            row[f"median_width_{k}"] = float(sub[col].median()) if col in sub else np.nan
        row["median_ape_pct"] = 100 * float(sub["ape"].median())
        row["mean_ape_pct"] = 100 * float(sub["ape"].mean())
        row["mean_crps"] = float(sub["crps"].mean()) if "crps" in sub and sub["crps"].notna().any() else np.nan
        summary.append(row)
    summ = pd.DataFrame(summary)
    # the same restricted to figures whose year could be refitted, so methods compare on equal terms
    if "refit" in set(df["method"]):
        years_rf = set(df.loc[df["method"] == "refit", "year"])
        summary_rf = []
        for name in ("model", "refit", "share", "prior", "naive"):
            sub = df[(df["method"] == name) & df["year"].isin(years_rf)]
            row = {"method": name, "figures": len(sub)}
            for k in (50, 80, 95):
                row[f"cover_{k}"] = float(sub[f"inside_{k}"].mean()) if sub[f"inside_{k}"].notna().any() else np.nan
            row["median_ape_pct"] = 100 * float(sub["ape"].median())
            row["mean_crps"] = float(sub["crps"].mean()) if sub["crps"].notna().any() else np.nan
            summary_rf.append(row)
        summ_rf = pd.DataFrame(summary_rf)
    else:
        summ_rf = None

    nsum = (
        nxt.groupby(["method", "kind"])
        .agg(
            figures=("year", "size"),
            cover_80=("inside_80", "mean"),
            cover_95=("inside_95", "mean"),
            median_width_80=("width_80", "median"),
            median_ape_pct=("ape", lambda v: 100 * float(np.median(v))),
            mean_crps=("crps", "mean"),
        )
        .reset_index()
    )

    share_all = fit_share_curve(pairs, seed=SEED)
    lines = [
        "# Nowcast validation (written by experiments/nowcast/run.py)",
        "",
        f"Share curve on all {len(pairs)} figures of {pairs['year'].nunique()} years: "
        f"a = {np.median(share_all.a):.3f} [{np.quantile(share_all.a, 0.05):.3f}, "
        f"{np.quantile(share_all.a, 0.95):.3f}], "
        f"b = {np.median(share_all.b):.3f} [{np.quantile(share_all.b, 0.05):.3f}, "
        f"{np.quantile(share_all.b, 0.95):.3f}], "
        f"kappa = {np.median(share_all.kappa):.0f} [{np.quantile(share_all.kappa, 0.05):.0f}, "
        f"{np.quantile(share_all.kappa, 0.95):.0f}] (median [90% interval]); expected share at mid-year "
        f"{np.median(share_all.expected_share(0.5)):.3f}, its year-to-year s.d. about "
        f"{np.sqrt(0.25 / (np.median(share_all.kappa) + 1)):.3f}.",
        "",
        "## Per partial figure (share curve fitted without the figure's year)",
        "",
        markdown_table(fmt(wide)),
        "",
        "## Summary by method (all figures; several figures of one year are nested, not independent)",
        "",
        markdown_table(fmt(summ)),
        "",
    ]
    if summ_rf is not None:
        lines += [
            "## Summary on the figures with a real-time refit (years 2004 on)",
            "",
            markdown_table(fmt(summ_rf)),
            "",
        ]
    lines += [
        "## Next year's count: forecast updated by the partial figure vs the prior forecast",
        "",
        markdown_table(fmt(nsum)),
        "",
        f"Run time {time.perf_counter() - t0:.0f} s; seed {SEED}.",
    ]
    (dest / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if args.out is None:
        splice_readme()
    print("\n".join(lines))
    return 0


def splice_readme() -> None:
    """Copy results.md into README.md between the results markers (no hand-typed numbers)."""
    readme = HERE / "README.md"
    if readme.is_file():
        body = (HERE / "results.md").read_text(encoding="utf-8").split("\n", 1)[1].strip()
        text = readme.read_text(encoding="utf-8")
        readme.write_text(splice(text, "results", body.replace("\n## ", "\n### ")), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
