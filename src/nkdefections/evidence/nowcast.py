"""How well does a year-to-date count predict the full year? The nowcast evidence.

For every partial figure in ``data/raw/arrivals_partial_year.csv`` whose year has a final
count, the full-year count is nowcast with the share curve re-fitted without that year
(leave-one-year-out), and scored against the final count:

* ``model``      beta-binomial observation model, prior = the default model's one-step-ahead
                 predictive for the year (the latent state of t-1 carried one step);
* ``share``      beta-binomial, log-uniform prior (the share curve alone, no model);
* ``binomial``   binomial observation model (no year-to-year share variation), model prior;
* ``prior``      the model's one-step-ahead predictive alone (no partial count);
* ``naive``      ``x / f`` (``x * 12 / m``), a point estimate;
* ``refit``      (with ``refit=True``) as ``model``, but the prior comes from a model fitted
                 only to 1999..t-1 and carried into t with the status-quo scenario's drivers:
                 a real-time test without any look at year t (years 2004 on; 5 fitted years
                 are the minimum).

:func:`run_nowcast_validation` writes ``results.csv`` (one row per partial figure and
method), ``results_next_year.csv`` and ``results.md`` into a folder.  Command:
``nkdefections-evidence nowcast``.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nkdefections import constants as C
from nkdefections.config import DataConfig, GateConfig, SamplerConfig
from nkdefections.data.load import load_data
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
from nkdefections.report.blocks import markdown_table, splice
from nkdefections.resources import cache_dir

SEED = 20161231
PROBS = (0.50, 0.80, 0.95)


def score(grid: np.ndarray, pmf: np.ndarray, y: float) -> dict[str, Any]:
    """Median, central intervals, PIT, CRPS of a count pmf against the observed count."""
    out: dict[str, Any] = {"median": float(pmf_quantile(grid, pmf, 0.5)[0])}
    for p in PROBS:
        lo, hi = pmf_quantile(grid, pmf, [(1 - p) / 2, 1 - (1 - p) / 2])
        k = int(round(p * 100))
        lo_col, hi_col = C.interval_columns(k)
        out[lo_col], out[hi_col] = lo, hi
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


def fit_model(last_year: int | None = None, cache: Path | None = None) -> Any:
    """The default model fitted to 1999..``last_year`` (fit cache: ``cache``, default ``<cache_dir>/fits``)."""
    from nkdefections.model.defection import DefectionModel

    dc = DataConfig() if last_year is None else DataConfig(last_year=last_year)
    m = DefectionModel(data_config=dc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(SamplerConfig(progressbar=False), GateConfig(enforce=last_year is None), cache_dir=cache)
    return m


# -- scoring every partial figure ------------------------------------------------------------


def _nowcasts(
    r: Any, year: int, pairs: pd.DataFrame, model: Any, refit_model: Any, shares: dict[tuple[int, bool], Any]
) -> dict[str, Any]:
    x = int(r.partial)
    day = None if pd.isna(r.day) else int(r.day)
    # the leave-one-year-out share curves depend on the year alone: fitted once for all its figures
    for od in (True, False):
        if (year, od) not in shares:
            shares[(year, od)] = fit_share_curve(pairs, exclude_years=[year], overdispersed=od, seed=SEED)
    share_bb, share_bi = shares[(year, True)], shares[(year, False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = {
            "model": nowcast(x, year, r.month_end, day=day, model=model, share=share_bb, seed=SEED),
            "share": nowcast(x, year, r.month_end, day=day, share=share_bb, seed=SEED),
            "binomial": nowcast(x, year, r.month_end, day=day, model=model, share=share_bi, seed=SEED),
        }
        if refit_model is not None:
            res["refit"] = nowcast(x, year, r.month_end, day=day, model=refit_model, share=share_bb, seed=SEED)
    return res


def _figure_rows(base: dict[str, Any], res: dict[str, Any], final: int) -> list[dict[str, Any]]:
    rows = []
    for name, out in res.items():
        score_ = score(out[N_FULL].values, out["full_year_pmf"].values, final)
        rows.append({**base, "method": name, "ess": out.attrs["effective_draws"], **score_})
    prior_out = res["model"]
    rows.append(
        {**base, "method": "prior", **score(prior_out[N_FULL].values, prior_out["full_year_prior_pmf"].values, final)}
    )
    rows.append({**base, "method": "naive", "median": base["naive"], "ape": abs(base["naive"] - final) / final})
    return rows


def _next_year_rows(r: Any, year: int, res: dict[str, Any], y1: int) -> list[dict[str, Any]]:
    rows = []
    for name in ("model", "refit"):
        if name not in res:
            continue
        out = res[name]
        g = out[N_NEXT].values
        for kind in ("next_year_pmf", "next_year_prior_pmf"):
            s = score(g, out[kind].values, y1)
            rows.append({"year": year, "period": r.period, "next_final": y1, "method": name, "kind": kind, **s})
    return rows


def score_figures(pairs: pd.DataFrame, refit: bool, cache: Path | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per partial figure and method, and the next-year rows."""
    t0 = time.perf_counter()
    ds = load_data()
    all_finals = dict(zip(ds["year"].values.astype(int), ds["arrivals"].values.astype(int), strict=True))
    model = fit_model(cache=cache).fit_view()  # the fit as data, flattened once for every nowcast
    refits: dict[int, Any] = {}
    shares: dict[tuple[int, bool], Any] = {}
    rows, next_rows = [], []
    for r in pairs.itertuples(index=False):
        year, final = int(r.year), int(r.final)
        refit_model = None
        if refit and year - 1 >= 2003:
            if year not in refits:
                refits[year] = fit_model(last_year=year - 1, cache=cache).fit_view()
            refit_model = refits[year]
        res = _nowcasts(r, year, pairs, model, refit_model, shares)
        base = {
            "year": year,
            "period": r.period,
            "fraction": round(float(r.fraction), 3),
            "partial": int(r.partial),
            "final": final,
            "naive": naive_estimate(int(r.partial), r.fraction),
        }
        rows += _figure_rows(base, res, final)
        if year + 1 in all_finals:
            next_rows += _next_year_rows(r, year, res, all_finals[year + 1])
        print(f"{year} {r.period}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    return pd.DataFrame(rows), pd.DataFrame(next_rows)


# -- tables ------------------------------------------------------------------------------------


def per_figure_table(df: pd.DataFrame) -> pd.DataFrame:
    """The model nowcast, the share-only nowcast, the prior alone and naive, one row per figure."""
    wide = df[df["method"] == "model"][["year", "period", "fraction", "partial", "final", "naive"]].copy()
    for name in ("model", "share", "prior", "refit"):
        sub = df[df["method"] == name].set_index(["year", "period"])
        if sub.empty:
            continue
        get = sub.reindex(list(zip(wide["year"], wide["period"], strict=True)))
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
    return wide


def method_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Coverage, widths, errors and CRPS by method over all figures."""
    summary = []
    for name in ("model", "refit", "share", "binomial", "prior", "naive"):
        sub = df[df["method"] == name]
        if sub.empty:
            continue
        row: dict[str, Any] = {"method": name, "figures": len(sub), "years": sub["year"].nunique()}
        for p in PROBS:
            k = int(round(p * 100))
            has = f"inside_{k}" in sub and sub[f"inside_{k}"].notna().any()
            row[f"cover_{k}"] = float(sub[f"inside_{k}"].mean()) if has else np.nan
        for k in (80, 95):
            col = f"width_{k}"
            row[f"median_width_{k}"] = float(sub[col].median()) if col in sub else np.nan
        row["median_ape_pct"] = 100 * float(sub["ape"].median())
        row["mean_ape_pct"] = 100 * float(sub["ape"].mean())
        row["mean_crps"] = float(sub["crps"].mean()) if "crps" in sub and sub["crps"].notna().any() else np.nan
        summary.append(row)
    return pd.DataFrame(summary)


def refit_summary(df: pd.DataFrame) -> pd.DataFrame | None:
    """The summary restricted to figures whose year could be refitted (methods on equal terms)."""
    if "refit" not in set(df["method"]):
        return None
    years_rf = set(df.loc[df["method"] == "refit", "year"])
    rows = []
    for name in ("model", "refit", "share", "prior", "naive"):
        sub = df[(df["method"] == name) & df["year"].isin(years_rf)]
        row: dict[str, Any] = {"method": name, "figures": len(sub)}
        for k in (50, 80, 95):
            row[f"cover_{k}"] = float(sub[f"inside_{k}"].mean()) if sub[f"inside_{k}"].notna().any() else np.nan
        row["median_ape_pct"] = 100 * float(sub["ape"].median())
        row["mean_crps"] = float(sub["crps"].mean()) if sub["crps"].notna().any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def next_year_summary(nxt: pd.DataFrame) -> pd.DataFrame:
    return (
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


def _share_line(pairs: pd.DataFrame) -> str:
    share_all = fit_share_curve(pairs, seed=SEED)

    def q(v: np.ndarray, f: str) -> str:
        return f"{np.median(v):{f}} [{np.quantile(v, 0.05):{f}}, {np.quantile(v, 0.95):{f}}]"

    return (
        f"Share curve on all {len(pairs)} figures of {pairs['year'].nunique()} years: "
        f"a = {q(share_all.a, '.3f')}, b = {q(share_all.b, '.3f')}, kappa = {q(share_all.kappa, '.0f')} "
        f"(median [90% interval]); expected share at mid-year "
        f"{np.median(share_all.expected_share(0.5)):.3f}, its year-to-year s.d. about "
        f"{np.sqrt(0.25 / (np.median(share_all.kappa) + 1)):.3f}."
    )


def run_nowcast_validation(
    out: Path, *, refit: bool = False, readme: Path | None = None, cache: Path | None = None
) -> str:
    """Score every partial figure into ``out``; return the text of ``results.md``.

    ``refit``: also the real-time variant (12 refits). ``readme``: an experiment README
    whose results markers get the results. ``cache``: the fit cache (default
    ``<cache_dir>/fits``, under the current folder unless ``$NKDEFECTIONS_CACHE_DIR``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = cache if cache is not None else cache_dir() / "fits"
    t0 = time.perf_counter()
    pairs = share_pairs()
    df, nxt = score_figures(pairs, refit, cache)
    df.to_csv(out / "results.csv", index=False)
    nxt.to_csv(out / "results_next_year.csv", index=False)
    summ_rf = refit_summary(df)
    lines = [
        "# Nowcast validation (written by nkdefections-evidence nowcast)",
        "",
        _share_line(pairs),
        "",
        "## Per partial figure (share curve fitted without the figure's year)",
        "",
        markdown_table(fmt(per_figure_table(df))),
        "",
        "## Summary by method (all figures; several figures of one year are nested, not independent)",
        "",
        markdown_table(fmt(method_summary(df))),
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
        markdown_table(fmt(next_year_summary(nxt))),
        "",
        f"Run time {time.perf_counter() - t0:.0f} s; seed {SEED}.",
    ]
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text, encoding="utf-8")
    if readme is not None and readme.is_file():
        body = text.split("\n", 1)[1].strip()
        old = readme.read_text(encoding="utf-8")
        readme.write_text(splice(old, "results", body.replace("\n## ", "\n### ")), encoding="utf-8")
    return text
