"""Rolling-origin backtest and model comparison by leave-future-out CV and PSIS-LOO.

For each origin year (2008..2015 by default) a model is refitted on 1999..origin
(:class:`~nkdefections.model.refit.Refitter`: one compiled graph, the later years masked)
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
:mod:`nkdefections.evaluate`; the baselines from :mod:`nkdefections.evaluate.baselines` are
fitted on the same training series.

What is "known at the origin" (the end of the origin year): its count (the final
table comes out in January) and the border and sanctions events in force; GDP growth
only up to the year before (:data:`GDP_PUBLICATION_LAG`: the Bank of Korea publishes a
year's estimate in July of the next), and that newest figure as a first release.  The
origin year's growth is then drawn from the GDP hierarchy.  ``status_quo`` holds what
is in force at the end of the origin year (the data's ``*_in_force``, not the origin
year's pro-rated index) and the last published growth.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from nkdefections import constants as C
from nkdefections import validate
from nkdefections.arithmetic import draw_counts, flatten_draws, mixture_log_pmf, nb_shape, transform_driver
from nkdefections.config import ModelConfig, SamplerConfig
from nkdefections.errors import ConfigError
from nkdefections.evaluate import baselines as B
from nkdefections.evaluate import scores as E
from nkdefections.evaluate import variance as V
from nkdefections.model.refit import RefitResult, Refitter

log = logging.getLogger(__name__)

DEFAULT_ORIGINS: tuple[int, ...] = tuple(range(2008, 2016))
DEFAULT_HORIZONS: tuple[int, ...] = (1, 2, 3)
MODES: tuple[str, ...] = ("conditional", "status_quo")
DEFAULT_BASELINES: tuple[str, ...] = ("no_change", "rw_drift", "ets", "arima")
#: Years until a GDP figure is published (the Bank of Korea's estimate for year t: July of t + 1).
GDP_PUBLICATION_LAG = 1


# ----------------------------------------------------------------------------
# Forecast draws from one refit (numpy on posterior arrays)
# ----------------------------------------------------------------------------


def forecast_log_mu(
    fit: RefitResult, refitter: Refitter, origin: int, targets: Sequence[int], mode: str, gdp_at_mean: bool = False
) -> np.ndarray:
    """Draws of ``log mu`` for the ``targets`` years from a fit on ..``origin``; shape (S, H).

    ``mode`` is ``conditional`` (realised drivers) or ``status_quo`` (what is in force
    at the origin held).  The economy enters through GDP growth lagged by its lag: a GDP
    year published at the origin (up to ``origin - GDP_PUBLICATION_LAG``) takes the
    fitted ``gdp_true`` draws, a later one the published figure (conditional) or the
    last published year's draws (status quo).  ``gdp_at_mean`` holds those draws at their
    posterior mean (for :mod:`nkdefections.evaluate.variance`).
    """
    if mode not in MODES:
        raise ConfigError(f"backtest mode: unknown {mode!r}; choose one of {list(MODES)}.")
    d = refitter.design
    post = fit.posterior
    years = list(d.years)
    idx = [years.index(t) for t in targets]
    log_mu = flatten_draws(post[C.INTERCEPT])[:, None] + flatten_draws(post[C.LATENT])[:, idx]
    if not d.drivers:
        return log_mu
    beta = flatten_draws(post[C.BETA])
    for k, drv in enumerate(d.drivers):
        x = _driver_columns(post, refitter, drv, origin, targets, mode, beta.shape[0], gdp_at_mean)
        x = transform_driver(x, refitter.config.transforms.get(drv, "linear"))
        log_mu = log_mu + beta[:, k : k + 1] * x
    return log_mu


def _driver_columns(
    post: xr.Dataset,
    refitter: Refitter,
    drv: str,
    origin: int,
    targets: Sequence[int],
    mode: str,
    n: int,
    gdp_at_mean: bool = False,
) -> np.ndarray:
    """(S, H) values of one driver in the target years as a forecast made at ``origin`` sees them."""
    d, data, cfg = refitter.design, refitter.data, refitter.config
    lag = cfg.lags[drv]
    if drv == C.ECONOMY:
        newest = origin - GDP_PUBLICATION_LAG  # the last GDP year published at the origin
        gdp_true, gdp_years = flatten_draws(post[C.GDP_TRUE]), list(d.gdp_years)
        cols = []
        for t in targets:
            g = t - lag if mode == "conditional" else min(t - lag, newest)
            figure = float(data[C.GDP_GROWTH].sel({C.YEAR: g}).values)
            if g <= newest or np.isnan(figure):
                draws = gdp_true[:, gdp_years.index(g)]
                cols.append(np.full(n, draws.mean()) if gdp_at_mean else draws)
            else:  # conditional: the realised (published) figure
                cols.append(np.full(n, figure))
        return np.column_stack(cols)
    index, in_force = C.EVENT_INDICES[drv]
    vals = []
    for t in targets:
        g = t - lag
        if mode == "status_quo" and g > origin:
            vals.append(float(data[in_force].sel({C.YEAR: origin})))  # no new events after the origin
        else:
            vals.append(float(data[index].sel({C.YEAR: g})))
    return np.broadcast_to(np.array(vals), (n, len(targets)))


def predictive(
    log_mu: np.ndarray, fit: RefitResult, likelihood: str, rng: np.random.Generator
) -> tuple[np.ndarray, object]:
    """Count draws (S, H) and a function ``log_pmf(h_index, y)`` of the exact predictive mixture."""
    mu = np.exp(log_mu)
    od = flatten_draws(fit.posterior[C.OVERDISPERSION]) if likelihood == "negative_binomial" else None
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
    #: per method, mode, origin and target: the predictive variance's sources (:mod:`~nkdefections.evaluate.variance`)
    variance: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary(self) -> pd.DataFrame:
        """Mean CRPS, log score, coverage and width by method, mode and horizon."""
        return E.summary_by_horizon(self.scores)


def _row(method: str, mode: str, origin: int, target: int, y: int, draws: np.ndarray, log_pmf: float) -> dict:
    """One scored forecast, with the 80% interval's ends for plotting."""
    row = E.score_forecast(method, mode, origin, target, y, draws, log_pmf)
    lo_col, hi_col = C.interval_columns(80)
    row[lo_col], row[hi_col] = (float(q) for q in np.quantile(draws, [0.1, 0.9]))
    return row


def check_plan(
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


def _variance_rows(
    fit: RefitResult,
    refitter: Refitter,
    origin: int,
    targets: Sequence[int],
    mode: str,
    log_mu: np.ndarray,
    counts: np.ndarray,
    observed: Sequence[int],
    method: str,
) -> pd.DataFrame:
    """The variance decomposition of one origin's forecasts in one mode, one row per target."""
    cfg = refitter.config
    at_mean = forecast_log_mu(fit, refitter, origin, targets, mode, gdp_at_mean=True)
    innov = V.latent_innovation(fit.posterior, refitter.years, origin, targets, cfg.latent)
    od = flatten_draws(fit.posterior[C.OVERDISPERSION]) if cfg.likelihood == "negative_binomial" else None
    table = V.decompose(log_mu, at_mean, innov, counts, observed, od)
    keys = {"method": method, "mode": mode, "origin": origin, "target_year": list(targets)}
    return table.assign(**keys, horizon=[t - origin for t in targets])[
        ["method", "mode", "origin", "target_year", "horizon", *table.columns]
    ]


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
        Names from :data:`nkdefections.evaluate.baselines.BASELINES`, fitted on the same
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
    origins, horizons = check_plan(origins, horizons, modes, baselines, seed)
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
    rows, fit_rows, var_rows = [], [], []
    n_draws = refitter.sampler.chains * refitter.sampler.draws
    for origin in origins:
        # one generator per origin: an origin's scores do not depend on which origins ran before it
        rng = np.random.default_rng([seed, origin])
        targets = _targets(origin, horizons, last)
        fit = refitter.fit(refitter.inputs(origin=origin, gdp_publication_lag=GDP_PUBLICATION_LAG), seed=seed + origin)
        fit_rows.append({"method": method, "origin": origin, "seconds": fit.seconds, **fit.convergence.summary_row()})
        for mode in modes:
            log_mu = forecast_log_mu(fit, refitter, origin, targets, mode)
            counts, log_pmf = predictive(log_mu, fit, cfg.likelihood, rng)
            observed = [int(y_all[list(years).index(t)]) for t in targets]
            for h_i, t in enumerate(targets):
                rows.append(_row(method, mode, origin, t, observed[h_i], counts[:, h_i], log_pmf(h_i, observed[h_i])))
            var_rows.append(_variance_rows(fit, refitter, origin, targets, mode, log_mu, counts, observed, method))
        train = years <= origin
        for name in baselines:
            bf = B.fit_baseline(name, years[train], y_all[train], max(t - origin for t in targets))
            draws = bf.samples(rng, n_draws)
            for t in targets:
                h = t - origin
                y = int(y_all[list(years).index(t)])
                rows.append(_row(name, E.NO_MODE, origin, t, y, draws[h - 1], float(bf.log_pmf(h, y))))
    return BacktestResult(
        variance=pd.concat(var_rows, ignore_index=True) if var_rows else pd.DataFrame(),
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


#: The backtest's targets: conditional no worse than status quo; CRPS ratio against
#: the fair no-change below these per mode at every horizon; pooled 80% coverage in this band.
TARGET_RATIO: dict[str, float] = {"status_quo": 0.9, "conditional": 1.0}
TARGET_COVERAGE_80: tuple[float, float] = (0.70, 0.90)


def backtest_targets(scores: pd.DataFrame, method: str = "default", baseline: str = "no_change") -> pd.DataFrame:
    """Check the backtest's targets for ``method``; one row per target and horizon.

    Columns ``target, mode, horizon (0: pooled), value, threshold (as text), met, lower, upper``: the
    conditional/status-quo CRPS ratio (``<= 1`` to meet "conditional no worse than status quo"), each
    mode's mean CRPS divided by ``baseline``'s over the same targets (below :data:`TARGET_RATIO`), and
    each mode's 80% coverage pooled over horizons (inside :data:`TARGET_COVERAGE_80`).  ``lower`` and
    ``upper`` bound a ratio's 90% paired bootstrap interval over the forecasts (NaN for a coverage:
    see :func:`nkdefections.evaluate.variance.pit_dispersion`).
    """
    keys = ["origin", "target_year"]
    ref = scores[(scores["method"] == baseline)].set_index(keys)["crps"]
    mine = {m: scores[(scores["method"] == method) & (scores["mode"] == m)].set_index(keys) for m in MODES}
    if ref.empty or any(v.empty for v in mine.values()):
        raise ConfigError(f"backtest_targets: need {method!r} in both modes {list(MODES)} and {baseline!r} scored.")
    rows = []
    for h in sorted(mine["conditional"]["horizon"].unique()):
        c, q = (mine[m][mine[m]["horizon"] == h]["crps"] for m in ("conditional", "status_quo"))
        pair = c.index.intersection(q.index)
        ratio = float(c[pair].mean() / q[pair].mean())
        band = E.ratio_interval(c[pair].to_numpy(), q[pair].to_numpy())
        rows.append(("conditional no worse than status quo", "conditional", h, ratio, "<= 1.00", ratio <= 1.0, *band))
        for m, thr in TARGET_RATIO.items():
            x = mine[m][mine[m]["horizon"] == h]["crps"]
            pair = x.index.intersection(ref.index)
            r = float(x[pair].mean() / ref[pair].mean())
            band = E.ratio_interval(x[pair].to_numpy(), ref[pair].to_numpy())
            rows.append((f"CRPS ratio against {baseline}", m, h, r, f"< {thr:.2f}", r < thr, *band))
    lo, hi = TARGET_COVERAGE_80
    for m in MODES:
        cov = float(mine[m]["covered_80"].mean())
        rows.append(("pooled 80% coverage", m, 0, cov, f"{lo:.2f} to {hi:.2f}", lo <= cov <= hi, np.nan, np.nan))
    out = pd.DataFrame(rows, columns=["target", "mode", "horizon", "value", "threshold", "met", "lower", "upper"])
    return out.astype({"horizon": int, "met": bool})

