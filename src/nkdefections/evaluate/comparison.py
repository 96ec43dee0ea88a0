"""Model comparison by exact leave-future-out CV (the backtest's one-step forecasts) and PSIS-LOO."""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats
from scipy.special import logsumexp

from nkdefections import constants as C
from nkdefections.arithmetic import nb_prob, nb_shape
from nkdefections.config import ModelConfig, SamplerConfig
from nkdefections.errors import ConfigError
from nkdefections.evaluate.backtest import DEFAULT_HORIZONS, DEFAULT_ORIGINS, BacktestResult, check_plan, run_backtest
from nkdefections.evaluate.workers import default_workers, run_pieces, threads_per_worker
from nkdefections.model.refit import RefitResult, Refitter

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------
# Model comparison: LFO-CV (exact refits) and PSIS-LOO
# ----------------------------------------------------------------------------


def pointwise_log_lik(fit: RefitResult, y: np.ndarray, likelihood: str) -> xr.DataArray:
    """log p(y_t | draw) for every year, dims (chain, draw, year), from the ``mu`` draws."""
    mu = fit.posterior[C.MU]
    if likelihood == "negative_binomial":
        od = fit.posterior[C.OVERDISPERSION]
        n = nb_shape(od)
        vals = stats.nbinom.logpmf(y, n.values[..., None], nb_prob(n, mu).values)
    else:
        vals = stats.poisson.logpmf(y, mu.values)
    return xr.DataArray(vals, dims=mu.dims, coords=mu.coords, name=C.OBSERVED)


#: Pareto-k above which a PSIS-LOO term is unreliable and is replaced by an exact refit.
K_THRESHOLD = 0.7


def psis_loo(
    fit: RefitResult,
    y: np.ndarray,
    likelihood: str,
    *,
    refitter: Refitter | None = None,
    seed: int = 2017,
) -> dict:
    """PSIS-LOO (``arviz.loo``) of a full-window fit, with exact refits where Pareto k > 0.7.

    Returns elpd, s.e., p_loo and the Pareto-k diagnostics of plain PSIS-LOO, and,
    when ``refitter`` is given, ``elpd_loo_exact``: the same sum with every term whose
    k exceeds :data:`K_THRESHOLD` replaced by log p(y_t | y_-t) from a refit without
    year t (the ``reloo`` recipe of Vehtari, Gelman & Gabry 2017).  With a latent
    state per year most k are high: the latent of a left-out year is then
    interpolated from its neighbours, which is a smoothing check, not a forecast one.
    """
    import arviz as az

    ll = pointwise_log_lik(fit, y, likelihood)
    tree = xr.DataTree.from_dict({"posterior": fit.posterior, "log_likelihood": xr.Dataset({C.OBSERVED: ll})})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto distribution is greater than 0.7.*")
        res = az.loo(tree, pointwise=True, var_name=C.OBSERVED)
    k = np.asarray(res.pareto_k)
    pointwise = np.asarray(res.elpd_i, dtype=float)
    out = {
        "elpd_loo": float(res.elpd),
        "se_loo": float(res.se),
        "p_loo": float(res.p),
        "max_pareto_k": float(k.max()),
        "n_k_over_0.7": int((k > K_THRESHOLD).sum()),
        "pointwise_loo": pointwise,
    }
    if refitter is not None:
        exact = pointwise.copy()
        loo_fits: list[dict] = []
        years = refitter.years
        for i in np.flatnonzero(k > K_THRESHOLD):
            loo_fit = refitter.fit(refitter.inputs(exclude_years=[int(years[i])]), seed=seed + i)
            exact[i] = float(pointwise_log_lik(loo_fit, y, likelihood).isel({C.YEAR: i}).pipe(_log_mean_exp))
            loo_fits.append({"left_out": int(years[i]), **loo_fit.convergence.summary_row()})
        out["elpd_loo_exact"] = float(exact.sum())
        out["loo_refits"] = pd.DataFrame(loo_fits)
        out["se_loo_exact"] = float(np.sqrt(len(exact)) * exact.std(ddof=1))
        out["pointwise_loo_exact"] = exact
    return out


def _log_mean_exp(da: xr.DataArray) -> float:
    v = da.values.ravel()
    return float(logsumexp(v) - np.log(v.size))


def default_variants(base: ModelConfig | None = None) -> dict[str, ModelConfig]:
    """The variants compared by :func:`compare_models`, the default (``base``) first.

    Negative binomial vs Poisson; random walk and no latent vs AR(1); each driver
    dropped in turn; no lags and economy lag 2 (`docs/evidence/comparison.md`, "Model comparison and the
    default model").
    """
    base = base or ModelConfig()
    rep = dataclasses.replace
    out = {
        "default (Poisson, AR(1))": base,
        "negative binomial, AR(1)": rep(base, name="negbin_ar1", likelihood="negative_binomial"),
        "Poisson, random walk": rep(base, name="random_walk", latent="random_walk"),
        "Poisson, no latent": rep(base, name="poisson_static", latent="none"),
        "negative binomial, no latent": rep(base, name="negbin_static", likelihood="negative_binomial", latent="none"),
    }
    for drv in base.drivers:
        out[f"without {drv}"] = rep(base, name=f"no_{drv}", drivers=tuple(x for x in base.drivers if x != drv))
    out["no lags (economy lag 0)"] = rep(base, name="no_lags", lags={d: 0 for d in C.DRIVERS})
    out["economy lag 2"] = rep(base, name="economy_lag2", lags={**base.lags, C.ECONOMY: 2})
    return out


def _with_paired_differences(
    table: pd.DataFrame, reference: str, pointwise: Mapping[str, Any], pointwise_loo: Mapping[str, Any]
) -> pd.DataFrame:
    """Add each variant's ELPD-LFO (and exact LOO) difference from ``reference`` with its paired s.e."""
    diffs: dict[str, tuple[list[float], list[float]]] = {"elpd_lfo": ([], []), "elpd_loo_exact": ([], [])}
    for label in table["variant"]:
        for key, source in (("elpd_lfo", pointwise), ("elpd_loo_exact", pointwise_loo)):
            if label not in source:
                diffs[key][0].append(np.nan)
                diffs[key][1].append(np.nan)
                continue
            delta = np.asarray(source[label]) - np.asarray(source[reference])
            diffs[key][0].append(float(delta.sum()))
            diffs[key][1].append(float(np.sqrt(len(delta)) * delta.std(ddof=1)) if label != reference else 0.0)
    table.insert(3, "elpd_lfo_diff", diffs["elpd_lfo"][0])
    table.insert(4, "se_diff", diffs["elpd_lfo"][1])
    if pointwise_loo:
        table["loo_exact_diff"], table["loo_exact_se_diff"] = diffs["elpd_loo_exact"]
    return table


def compare_models(
    variants: Mapping[str, ModelConfig] | None = None,
    *,
    origins: Sequence[int] = DEFAULT_ORIGINS,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    sampler: SamplerConfig | None = None,
    seed: int = 2017,
    data: xr.Dataset | None = None,
    exact_loo: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, BacktestResult], pd.DataFrame]:
    """Compare model variants by exact leave-future-out CV and by PSIS-LOO.

    Returns ``(table, pointwise_lfo, backtests, pointwise_loo)``.

    ``table`` has one row per variant: ELPD-LFO (the sum over origins of the
    one-step-ahead log predictive density, conditional mode) and its paired difference
    from the FIRST variant (the reference, normally the default) with its s.e.; mean
    CRPS by horizon; PSIS-LOO elpd, s.e., p_loo and Pareto-k diagnostics; with
    ``exact_loo`` the LOO elpd with exact refits for every term with k > 0.7 and its
    paired difference from the reference; and convergence: whether the full-data fit
    passed the gate, how many LFO and LOO refits missed it, the most divergences in any.
    ``pointwise_lfo``: one-step log predictive densities by origin; ``backtests``: each
    variant's :class:`BacktestResult`; ``pointwise_loo``: the exact-refit LOO terms by year.
    """
    from nkdefections.config import DataConfig
    from nkdefections.data.load import load_data

    variants = default_variants() if variants is None else dict(variants)
    if not variants:
        raise ConfigError("compare_models: no variants given; pass at least one (the first is the reference).")
    if 1 not in horizons:
        raise ConfigError(f"compare_models horizons: {list(horizons)} must include 1 (ELPD-LFO is one step ahead).")
    check_plan(origins, horizons, ("conditional",), (), seed)
    sampler = sampler or SamplerConfig(progressbar=False)
    max_lag = max(v.max_lag for v in variants.values())
    if data is None:
        data = load_data(DataConfig(history=max_lag))
    workers = min(default_workers(), len(variants))
    sampler = dataclasses.replace(sampler, cores=threads_per_worker(sampler.cores, workers))
    # build every variant's graph first: a variant the data cannot support fails before any fit
    for cfg in variants.values():
        Refitter.shared(cfg, data, sampler)
    pieces = [(label, cfg, data, origins, horizons, sampler, seed, exact_loo) for label, cfg in variants.items()]

    def progress(i: int, result: tuple[Any, ...]) -> None:
        done[0] += 1
        log.info("compared %s in %.1f s (%d/%d)", result[0]["variant"], result[0]["seconds"], done[0], len(pieces))

    done = [0]
    outcomes = run_pieces(compare_variant, pieces, workers=workers, label="comparison", progress=progress)
    rows, pointwise, results, pointwise_loo = [], {}, {}, {}
    for (label, *_), (row, bt, lfo_terms, loo_terms) in zip(pieces, outcomes, strict=True):
        rows.append(row)
        results[label] = bt
        pointwise[label] = lfo_terms
        if loo_terms is not None:
            pointwise_loo[label] = loo_terms
    table = _with_paired_differences(pd.DataFrame(rows), next(iter(variants)), pointwise, pointwise_loo)
    table = table.sort_values("elpd_lfo", ascending=False).reset_index(drop=True)
    lfo = pd.DataFrame(pointwise, index=sorted(origins))
    loo = pd.DataFrame(
        pointwise_loo,
        index=data[C.YEAR].sel({C.YEAR: slice(int(data.attrs["first_year"]), int(data.attrs["last_year"]))}).values,
    )
    return table, lfo, results, loo


def compare_variant(
    label: str,
    cfg: ModelConfig,
    data: xr.Dataset,
    origins: Sequence[int],
    horizons: Sequence[int],
    sampler: SamplerConfig,
    seed: int,
    exact_loo: bool,
) -> tuple[dict[str, Any], BacktestResult, np.ndarray, np.ndarray | None]:
    """One variant of :func:`compare_models` (a piece run by a worker process).

    Returns its table row, its backtest (the fits table holds every refit: LFO, full, LOO),
    its one-step log predictive densities by origin and its exact-refit LOO terms (or None).
    """
    t0 = time.perf_counter()
    r = Refitter.shared(cfg, data, sampler)  # a worker builds its own; this process reuses the check's
    bt = run_backtest(
        cfg,
        origins=origins,
        horizons=horizons,
        baselines=(),
        modes=("conditional",),
        refitter=r,
        seed=seed,
        method=label,
    )
    one = bt.scores[bt.scores["horizon"] == 1].sort_values("origin")
    lfo_terms = -one["log_score"].to_numpy()  # log predictive density of each one-step forecast
    full = r.fit(r.inputs(), seed=seed)
    loo = psis_loo(full, r.design.y, cfg.likelihood, refitter=r if exact_loo else None, seed=seed)
    row: dict[str, Any] = {"variant": label, "name": cfg.name, "elpd_lfo": float(lfo_terms.sum())}
    for h in horizons:
        row[f"crps_h{h}"] = float(bt.scores.loc[bt.scores["horizon"] == h, "crps"].mean())
    row.update({k: v for k, v in loo.items() if not k.startswith("pointwise") and k != "loo_refits"})
    row["full_fit_passed"] = bool(full.convergence.passed)
    row["lfo_refits_failing_gate"] = int((~bt.fits["passed"].astype(bool)).sum())
    loo_refits = loo.get("loo_refits", pd.DataFrame({"passed": [], "divergences": []}))
    row["loo_refits_failing_gate"] = int((~loo_refits["passed"].astype(bool)).sum()) if len(loo_refits) else 0
    # every refit of the variant in its backtest's fits table: the LFO refits, the full fit, the LOO refits
    bt.fits = pd.concat(
        [
            bt.fits.assign(kind="lfo"),
            pd.DataFrame([{"method": label, "kind": "full", **full.convergence.summary_row()}]),
            loo_refits.assign(method=label, kind="loo"),
        ],
        ignore_index=True,
    )
    row["max_divergences"] = int(bt.fits["divergences"].max())
    row["compile_seconds"] = float(r.compile_seconds or 0.0)
    row["seconds"] = time.perf_counter() - t0
    return row, bt, lfo_terms, loo.get("pointwise_loo_exact")
