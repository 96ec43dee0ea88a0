"""Rolling-origin backtest and model comparison by leave-future-out CV and PSIS-LOO.

For each origin year (2008..2015 by default) a model is refitted on 1999..origin
(:class:`~nkdefections.refit.Refitter`: one compiled graph, the later years masked)
and forecasts 1, 2 and 3 years ahead in two modes:

``conditional``
    the drivers take their realised values up to the target year (what the model
    says given the drivers; the mode that tests the model itself);
``status_quo``
    the drivers stay at their origin-year values (what an analyst using the model
    would have forecast at the time).

The latent process in the masked years is its forecast distribution given the
training years, so the forecast of year ``t`` is
``log mu_t = intercept + sum_k beta_k x_k,t + latent_t`` with posterior draws of each
term, and counts are drawn from the likelihood.  Scores come from
:mod:`nkdefections.evaluate`; the baselines from :mod:`nkdefections.baselines` are
fitted on the same training series.

What is "known at the origin": the origin year's count and drivers.  In reality the
year's final count is published in January and the Bank of Korea GDP estimate in
July of the next year; the backtest ignores that publication lag (README "Rolling-origin
backtest against baselines").
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats
from scipy.special import logsumexp

from nkdefections import constants as C
from nkdefections import validate
from nkdefections.arithmetic import draw_counts, lag_year, mixture_log_pmf, nb_prob, nb_shape
from nkdefections.config import ModelConfig, SamplerConfig
from nkdefections.errors import ConfigError
from nkdefections.evaluate import baselines as B
from nkdefections.evaluate import scores as E
from nkdefections.model.refit import RefitResult, Refitter

log = logging.getLogger(__name__)

DEFAULT_ORIGINS: tuple[int, ...] = tuple(range(2008, 2016))
DEFAULT_HORIZONS: tuple[int, ...] = (1, 2, 3)
MODES: tuple[str, ...] = ("conditional", "status_quo")
DEFAULT_BASELINES: tuple[str, ...] = ("no_change", "rw_drift", "ets", "arima")


# ----------------------------------------------------------------------------
# Forecast draws from one refit (numpy on posterior arrays)
# ----------------------------------------------------------------------------


def _draws(post: xr.Dataset, name: str) -> np.ndarray:
    """(sample, ...) array of a posterior variable."""
    da = post[name]
    return da.values.reshape(-1, *da.shape[2:])


def forecast_log_mu(fit: RefitResult, refitter: Refitter, origin: int, targets: Sequence[int], mode: str) -> np.ndarray:
    """Draws of ``log mu`` for the ``targets`` years from a fit on ..``origin``; shape (S, H).

    ``mode`` is ``conditional`` (realised drivers) or ``status_quo`` (drivers held at
    the values known at the origin).  The economy enters through GDP growth lagged
    by its lag: a GDP year up to the origin takes the fitted ``gdp_true`` draws, a
    later one the published figure (conditional) or the origin's value (status quo).
    """
    if mode not in MODES:
        raise ConfigError(f"backtest mode: unknown {mode!r}; choose one of {list(MODES)}.")
    d, data, cfg = refitter.design, refitter.data, refitter.config
    post = fit.posterior
    years = list(d.years)
    idx = [years.index(t) for t in targets]
    log_mu = _draws(post, C.INTERCEPT)[:, None] + _draws(post, C.LATENT)[:, idx]
    if not d.drivers:
        return log_mu
    beta = _draws(post, C.BETA)
    source = {C.BORDER: C.BORDER_INDEX, C.SANCTIONS: C.SANCTIONS_INDEX}
    for k, drv in enumerate(d.drivers):
        lag = cfg.lags[drv]
        known = [lag_year(t, lag, origin if mode == "status_quo" else None) for t in targets]
        if drv == C.ECONOMY:
            gdp_true = _draws(post, C.GDP_TRUE)
            gdp_years = list(d.gdp_years)
            cols = []
            for g in known:
                figure = float(data[C.GDP_GROWTH].sel({C.YEAR: g}).values)
                if g <= origin or np.isnan(figure):
                    cols.append(gdp_true[:, gdp_years.index(g)])
                else:
                    cols.append(np.full(beta.shape[0], figure))
            x = np.column_stack(cols)
        else:
            x = np.broadcast_to(data[source[drv]].sel({C.YEAR: known}).values, log_mu.shape)
        log_mu = log_mu + beta[:, k : k + 1] * x
    return log_mu


def predictive(
    log_mu: np.ndarray, fit: RefitResult, likelihood: str, rng: np.random.Generator
) -> tuple[np.ndarray, object]:
    """Count draws (S, H) and a function ``log_pmf(h_index, y)`` of the exact predictive mixture."""
    mu = np.exp(log_mu)
    od = _draws(fit.posterior, C.OVERDISPERSION) if likelihood == "negative_binomial" else None
    counts = draw_counts(mu, rng, od)
    n = None if od is None else nb_shape(od)

    def log_pmf(h: int, y: int) -> float:
        return float(mixture_log_pmf(y, mu[:, h], n))

    return counts, log_pmf


# ----------------------------------------------------------------------------
# The backtest
# ----------------------------------------------------------------------------


@dataclass
class BacktestResult:
    """Scored forecasts (one row per method, mode, origin, target) and per-fit diagnostics."""

    scores: pd.DataFrame
    fits: pd.DataFrame
    seconds: float
    compile_seconds: float
    settings: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Mean CRPS, log score, coverage and width by method, mode and horizon."""
        return E.summary_by_horizon(self.scores)


def _row(method: str, mode: str, origin: int, target: int, y: int, draws: np.ndarray, log_pmf: float) -> dict:
    """One scored forecast, with the 80% interval's ends for plotting."""
    row = E.score_forecast(method, mode, origin, target, y, draws, log_pmf)
    row["lower_80"], row["upper_80"] = (float(q) for q in np.quantile(draws, [0.1, 0.9]))
    return row


def _check_plan(
    origins: Sequence[int], horizons: Sequence[int], modes: Sequence[str], baselines: Sequence[str], seed: int
) -> tuple[list[int], list[int]]:
    """Validate a backtest plan before anything is fitted; return origins and horizons as ints."""

    def whole(v: object, key: str) -> int:
        return validate.whole(v, f"backtest {key}")

    origins = [whole(o, "origins") for o in origins]
    horizons = [whole(h, "horizons") for h in horizons]
    if not origins or len(set(origins)) != len(origins):
        raise ConfigError(f"backtest origins: {origins} must be a non-empty list without repeats.")
    if not horizons or len(set(horizons)) != len(horizons) or min(horizons) < 1:
        raise ConfigError(f"backtest horizons: {horizons} must be distinct whole numbers >= 1, e.g. [1, 2, 3].")
    if not modes:
        raise ConfigError(f"backtest modes: none given; choose from {list(MODES)}.")
    for m in modes:
        if m not in MODES:
            raise ConfigError(f"backtest mode: unknown {m!r}; choose one of {list(MODES)}.")
    for b in baselines:
        if b not in B.BASELINES:
            raise ConfigError(f"backtest baseline: unknown {b!r}; choose one of {sorted(B.BASELINES)}.")
    if whole(seed, "seed") < 0:
        raise ConfigError(f"backtest seed: {seed} must be >= 0.")
    return origins, horizons


def _targets(origin: int, horizons: Sequence[int], last: int) -> list[int]:
    return [origin + h for h in horizons if origin + h <= last]


def run_backtest(
    config: ModelConfig | None = None,
    *,
    origins: Sequence[int] = DEFAULT_ORIGINS,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    sampler: SamplerConfig | None = None,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    method: str | None = None,
    modes: Sequence[str] = MODES,
    refitter: Refitter | None = None,
    seed: int = 2017,
) -> BacktestResult:
    """Fit on 1999..origin for every origin, forecast ``horizons`` ahead, score everything.

    Parameters
    ----------
    config
        The model (default model if omitted).
    origins, horizons
        Origin years and forecast horizons; targets after the data window are skipped.
    sampler
        NUTS settings of every refit (default :class:`SamplerConfig`).
    baselines
        Names from :data:`nkdefections.baselines.BASELINES`, fitted on the same
        training series.
    method
        Label of the model in the tables (default: the config's name).
    seed
        Seeds the refits (``seed + origin``) and the count draws (one generator per
        origin, ``default_rng([seed, origin])``).

    Raises
    ------
    ConfigError
        For bad origins, horizons, modes, baselines or seed, before anything is fitted.
    """
    t_start = time.perf_counter()
    origins, horizons = _check_plan(origins, horizons, modes, baselines, seed)
    if refitter is not None and config is not None and refitter.config != config:
        raise ConfigError("run_backtest: `config` differs from the refitter's model; pass one or the other.")
    refitter = refitter or Refitter(config, sampler=sampler or SamplerConfig(progressbar=False))
    cfg = refitter.config
    method = method or cfg.name
    years = refitter.years
    y_all = refitter.design.y
    last = int(years[-1])
    bad = [o for o in origins if not years[0] + 4 <= o < last]
    if bad:
        raise ConfigError(f"backtest origins: {bad} outside {int(years[0]) + 4}..{last - 1}.")
    rows, fit_rows = [], []
    n_draws = refitter.sampler.chains * refitter.sampler.draws
    for origin in origins:
        # one generator per origin: an origin's scores do not depend on which origins ran before it
        rng = np.random.default_rng([seed, origin])
        targets = _targets(origin, horizons, last)
        fit = refitter.fit(refitter.inputs(origin=origin), seed=seed + origin)
        fit_rows.append({"method": method, "origin": origin, "seconds": fit.seconds, **fit.convergence.summary_row()})
        for mode in modes:
            log_mu = forecast_log_mu(fit, refitter, origin, targets, mode)
            counts, log_pmf = predictive(log_mu, fit, cfg.likelihood, rng)
            for h_i, t in enumerate(targets):
                y = int(y_all[list(years).index(t)])
                rows.append(_row(method, mode, origin, t, y, counts[:, h_i], log_pmf(h_i, y)))
        train = years <= origin
        for name in baselines:
            bf = B.fit_baseline(name, years[train], y_all[train], max(t - origin for t in targets))
            draws = bf.samples(rng, n_draws)
            for t in targets:
                h = t - origin
                y = int(y_all[list(years).index(t)])
                rows.append(_row(name, E.NO_MODE, origin, t, y, draws[h - 1], float(bf.log_pmf(h, y))))
    return BacktestResult(
        scores=E.scores_frame(rows),
        fits=pd.DataFrame(fit_rows),
        seconds=time.perf_counter() - t_start,
        compile_seconds=float(refitter.compile_seconds or 0.0),
        settings={
            "origins": list(origins),
            "horizons": list(horizons),
            "sampler": refitter.sampler.to_dict(),
            "model": cfg.to_dict(),
            "baselines": list(baselines),
            "seed": seed,
        },
    )


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
    dropped in turn; no lags and economy lag 2 (README "Model comparison and the
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
    from nkdefections.data.load import DataConfig, load_data

    variants = default_variants() if variants is None else dict(variants)
    if not variants:
        raise ConfigError("compare_models: no variants given; pass at least one (the first is the reference).")
    if 1 not in horizons:
        raise ConfigError(f"compare_models horizons: {list(horizons)} must include 1 (ELPD-LFO is one step ahead).")
    _check_plan(origins, horizons, ("conditional",), (), seed)
    sampler = sampler or SamplerConfig(progressbar=False)
    max_lag = max(v.max_lag for v in variants.values())
    if data is None:
        data = load_data(DataConfig(history=max_lag))
    # build every variant's graph first: a variant the data cannot support fails before any fit
    refitters = {label: Refitter(cfg, data=data, sampler=sampler) for label, cfg in variants.items()}
    rows, pointwise, results, pointwise_loo = [], {}, {}, {}
    for label, cfg in variants.items():
        t0 = time.perf_counter()
        r = refitters[label]
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
        results[label] = bt
        one = bt.scores[bt.scores["horizon"] == 1].sort_values("origin")
        pointwise[label] = -one["log_score"].to_numpy()  # log predictive density of each one-step forecast
        full = r.fit(r.inputs(), seed=seed)
        loo = psis_loo(full, r.design.y, cfg.likelihood, refitter=r if exact_loo else None, seed=seed)
        row = {
            "variant": label,
            "name": cfg.name,
            "elpd_lfo": float(pointwise[label].sum()),
        }
        for h in horizons:
            row[f"crps_h{h}"] = float(bt.scores.loc[bt.scores["horizon"] == h, "crps"].mean())
        row.update({k: v for k, v in loo.items() if not k.startswith("pointwise") and k != "loo_refits"})
        if "pointwise_loo_exact" in loo:
            pointwise_loo[label] = loo["pointwise_loo_exact"]
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
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        log.info("compared %s in %.1f s", label, row["seconds"])
    table = _with_paired_differences(pd.DataFrame(rows), next(iter(variants)), pointwise, pointwise_loo)
    table = table.sort_values("elpd_lfo", ascending=False).reset_index(drop=True)
    lfo = pd.DataFrame(pointwise, index=sorted(origins))
    loo = pd.DataFrame(
        pointwise_loo,
        index=data[C.YEAR].sel({C.YEAR: slice(int(data.attrs["first_year"]), int(data.attrs["last_year"]))}).values,
    )
    return table, lfo, results, loo
