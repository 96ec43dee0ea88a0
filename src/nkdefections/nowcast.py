"""Nowcasting a year's arrivals from a year-to-date count (issue 4, part 6).

A partial count ``x`` (January to the end of month ``m`` of year ``t``, e.g. the first
half, H1) is an incomplete observation of the full-year count ``N``.  The observation
model is

.. math::

    x \\mid N &\\sim \\mathrm{BetaBinomial}\\big(N,\\ \\kappa\\, s(f),\\ \\kappa\\,(1 - s(f))\\big) \\\\
    \\operatorname{logit} s(f) &= a + b \\operatorname{logit} f

where ``f`` is the fraction of the calendar year elapsed at the end of the partial
period (days; "Jan-Sep 15" is 258/365), ``s(f)`` the expected share of the year's
arrivals that have arrived by then (``s(0) = 0``, ``s(1) = 1``, monotone for ``b > 0``;
``a = 0, b = 1`` is "arrivals spread evenly") and ``kappa`` the concentration: the
year-to-year variation of the share is ``s (1 - s) / (kappa + 1)`` on top of the
binomial term.  It absorbs uneven arrivals within a year (2008's first half held 62 % of
the year) and the revisions between a provisional partial figure and the final table.

The share curve ``(a, b, kappa)`` is estimated from the historical pairs (years with a
partial and a final figure), each year weighted once however many partial figures it
has (the figures of one year are nested, not independent); its posterior is computed
without MCMC (Laplace approximation refined by importance resampling).  By default the
target year is left out, so a nowcast of, say, 2016 never uses 2016's own final count.

The prior for ``N`` is either

* ``"model"``: the fitted :class:`~nkdefections.model.DefectionModel`'s predictive for
  year ``t`` *given year t-1* (the latent state of ``t-1`` carried one step with
  ``rho`` and ``sigma``, the drivers of year ``t``; for years after the fit window the
  status-quo forecast's drivers), so year ``t``'s own count does not enter through its
  latent state; or
* ``"loguniform"``: ``p(N) ~ 1/N``, the share curve alone (the nowcast is then
  ``x / share`` with the share drawn from its year-to-year distribution; a flat prior
  on ``N`` would tilt it upwards by a factor ``N``).

The posterior ``p(N | x)`` is computed exactly on a grid of ``N`` for every posterior
draw and mixed with the draws' marginal likelihoods as weights; the next year's count
``N_{t+1}`` is carried from the same, reweighted, draws (its latent state follows year
``t``'s), so a surprising partial count moves next year's forecast as far as the
latent persistence ``rho`` says it should.

This module is numpy / scipy / xarray; it reads a fitted model but never imports PyMC.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as _dt
import re
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize, stats
from scipy.special import expit, gammaln, logsumexp

from nkdefections import constants as C
from nkdefections.checks import flatten_draws
from nkdefections.data import FILE_ROLES, LAST_OBSERVED_YEAR, default_data_dir, load_data, read_manifest, read_table
from nkdefections.errors import ConfigError, DataValidationError

if TYPE_CHECKING:  # pragma: no cover
    from nkdefections.model import DefectionModel

#: Dimension of the resampled draws of a nowcast.
SAMPLE = "sample"
#: Grid dimensions of the full-year and next-year predictive probability mass functions.
N_FULL = "n_full"
N_NEXT = "n_next"
#: Central intervals reported by :func:`nowcast_summary`.
INTERVALS: tuple[float, ...] = (0.50, 0.80, 0.95)
PRIORS = ("model", "loguniform")

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAY_IN_LABEL = re.compile(r"(?:" + "|".join(_MONTHS) + r")\s*(\d{1,2})\s*$")
_MID_MONTH_DEFAULT_DAY = 15

#: Weak priors of the share curve: a ~ N(0, 1), log b ~ N(0, 0.5), log kappa ~ N(5, 2).
SHARE_PRIORS: dict[str, tuple[float, float]] = {"a": (0.0, 1.0), "log_b": (0.0, 0.5), "log_kappa": (5.0, 2.0)}


# ----------------------------------------------------------------------------
# Pure kernels
# ----------------------------------------------------------------------------


def year_fraction(year: int, month_end: int, day: int | None = None) -> float:
    """Fraction of calendar ``year`` elapsed at the end of ``day`` of ``month_end``.

    ``day=None`` means the end of the month.  Counts days, so leap years and
    mid-month periods ("Jan-Sep 15": 258/365) are exact.
    """
    _check_month_day(month_end, day)
    last = calendar.monthrange(year, month_end)[1]
    d = last if day is None else day
    if d > last:
        raise DataValidationError(f"day: {d} is after the last day ({last}) of month {month_end} of {year}.")
    elapsed = (_dt.date(year, month_end, d) - _dt.date(year, 1, 1)).days + 1
    return elapsed / (366 if calendar.isleap(year) else 365)


def share_curve(fraction: np.ndarray | float, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """Expected share of the year's arrivals by ``fraction`` of the year: ``logit s = a + b logit f``."""
    f = np.clip(np.asarray(fraction, dtype=float), 1e-12, 1 - 1e-12)
    return expit(np.asarray(a) + np.asarray(b) * np.log(f / (1 - f)))


def betabinom_logpmf(x: np.ndarray | float, n: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Log pmf of the beta-binomial, broadcasting; ``-inf`` where ``x > n`` or ``x < 0``."""
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    alpha = np.asarray(alpha, dtype=float)
    beta = np.asarray(beta, dtype=float)
    ok = (x >= 0) & (x <= n)
    xs, ns = np.where(ok, x, 0.0), np.where(ok, n, 0.0)
    out = (
        gammaln(ns + 1)
        - gammaln(xs + 1)
        - gammaln(ns - xs + 1)
        + gammaln(xs + alpha)
        + gammaln(ns - xs + beta)
        - gammaln(ns + alpha + beta)
        + gammaln(alpha + beta)
        - gammaln(alpha)
        - gammaln(beta)
    )
    return np.where(ok, out, -np.inf)


def binom_logpmf(x: np.ndarray | float, n: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Log pmf of the binomial (the ``kappa -> inf`` limit), broadcasting."""
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    ok = (x >= 0) & (x <= n)
    xs, ns = np.where(ok, x, 0.0), np.where(ok, n, 0.0)
    s = np.asarray(s, dtype=float)
    out = gammaln(ns + 1) - gammaln(xs + 1) - gammaln(ns - xs + 1) + xs * np.log(s) + (ns - xs) * np.log1p(-s)
    return np.where(ok, out, -np.inf)


def partial_loglik(
    x: int | np.ndarray,
    n: np.ndarray,
    fraction: float | np.ndarray,
    a: np.ndarray | float,
    b: np.ndarray | float,
    kappa: np.ndarray | float | None,
) -> np.ndarray:
    """``log p(x | N = n)`` of a partial count under the share curve; ``kappa=None`` is binomial."""
    s = share_curve(fraction, a, b)
    if kappa is None:
        return binom_logpmf(x, n, s)
    kappa = np.asarray(kappa, dtype=float)
    return betabinom_logpmf(x, n, kappa * s, kappa * (1 - s))


def naive_estimate(partial_count: float, fraction: float) -> float:
    """Scale up in proportion to time: ``x / f`` (``x * 12 / m`` for whole months, up to day counts)."""
    return float(partial_count) / float(fraction)


def pmf_quantile(grid: np.ndarray, pmf: np.ndarray, q: float | Sequence[float]) -> np.ndarray:
    """Quantile(s) of a pmf on an integer grid (the smallest ``n`` with ``F(n) >= q``)."""
    cdf = np.cumsum(pmf) / pmf.sum()
    idx = np.searchsorted(cdf, np.atleast_1d(np.asarray(q, dtype=float)) - 1e-12, side="left")
    return grid[np.minimum(idx, len(grid) - 1)].astype(float)


def pmf_pit(grid: np.ndarray, pmf: np.ndarray, y: float) -> float:
    """Mid-PIT of an observed count: ``P(N < y) + P(N = y) / 2`` (uniform under calibration)."""
    p = pmf / pmf.sum()
    return float(p[grid < y].sum() + 0.5 * p[grid == y].sum())


def pmf_crps(grid: np.ndarray, pmf: np.ndarray, y: float) -> float:
    """Exact CRPS of a count distribution on a contiguous integer grid (lower is better)."""
    p = pmf / pmf.sum()
    cdf = np.cumsum(p)
    below = float(max(0, grid[0] - y)) if y < grid[0] else 0.0  # F = 0 on [y, grid[0]) contributes (0-1)^2
    above = float(max(0, y - grid[-1] - 1)) if y > grid[-1] else 0.0  # F = 1 on (grid[-1], y) contributes 1
    return float(np.sum((cdf - (grid >= y)) ** 2) + below + above)


def ess(weights: np.ndarray) -> float:
    """Kish effective sample size of (unnormalised) importance weights."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / np.sum(w**2))


def systematic_resample(weights: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn in proportion to ``weights`` by systematic resampling."""
    w = np.asarray(weights, dtype=float)
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    u = (rng.uniform() + np.arange(size)) / size
    return np.searchsorted(cdf, u, side="left")


# ----------------------------------------------------------------------------
# The historical pairs and the share curve
# ----------------------------------------------------------------------------


def _check_month_day(month_end: Any, day: Any) -> None:
    if isinstance(month_end, bool) or not isinstance(month_end, (int, np.integer)):
        raise DataValidationError(
            f"month_end: {month_end!r} is not a whole month number; give 1..12 (6 = end of June)."
        )
    if not 1 <= int(month_end) <= 12:
        raise DataValidationError(
            f"month_end: {month_end} is not in 1..12 (the partial period runs January-month_end)."
        )
    if day is not None:
        if isinstance(day, bool) or not isinstance(day, (int, np.integer)) or not 1 <= int(day) <= 31:
            raise DataValidationError(f"day: {day!r} is not a day of the month (1..31); omit it for the month's end.")


def share_pairs(data_dir: str | Path | None = None) -> pd.DataFrame:
    """The historical (partial, final) pairs with the elapsed fraction of each partial period.

    Reads ``raw/arrivals_partial_year.csv`` (checked against the manifest, for
    ``ends_mid_month``) and the final counts of :func:`~nkdefections.data.load_data`.
    A period flagged ``ends_mid_month`` takes its day from the label ("Jan-Sep15" ->
    15), or the 15th if the label names none.  Years without a final count are dropped.

    Returns
    -------
    pandas.DataFrame
        ``year, period, month_end, day, fraction, partial, final, share``, one row per
        partial figure.
    """
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    specs = read_manifest(data_dir)
    rel = FILE_ROLES["partial"]
    table = read_table(data_dir / rel, specs[rel])
    ds = load_data(dir=data_dir)
    finals = dict(zip(ds[C.YEAR].values.astype(int), ds[C.ARRIVALS].values, strict=True))
    rows = []
    for r in table.itertuples(index=False):
        year = int(r.year)
        final = finals.get(year, np.nan)
        if not np.isfinite(final):
            continue
        day = None
        if r.ends_mid_month == "yes":
            found = _DAY_IN_LABEL.search(str(r.period))
            day = int(found.group(1)) if found else _MID_MONTH_DEFAULT_DAY
        frac = year_fraction(year, int(r.month_end), day)
        rows.append(
            {
                "year": year,
                "period": str(r.period),
                "month_end": int(r.month_end),
                "day": day,
                "fraction": frac,
                "partial": int(r.arrivals),
                "final": int(final),
                "share": int(r.arrivals) / int(final),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ShareFit:
    """Posterior draws of the share curve ``(a, b, kappa)``.

    ``kappa`` is ``None`` for the binomial variant (no year-to-year variation).
    """

    a: np.ndarray
    b: np.ndarray
    kappa: np.ndarray | None
    excluded_years: tuple[int, ...]
    years: tuple[int, ...]
    n_pairs: int
    ess: float
    mode: dict[str, float] = field(default_factory=dict)

    def expected_share(self, fraction: float) -> np.ndarray:
        """Draws of ``s(f)``, the expected share by ``fraction`` of the year."""
        return share_curve(fraction, self.a, self.b)

    def take(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``size`` draws of ``(a, b, kappa)`` (cycled with a random offset if fewer are stored)."""
        idx = (rng.integers(len(self.a)) + np.arange(size)) % len(self.a)
        return self.a[idx], self.b[idx], None if self.kappa is None else self.kappa[idx]


def _share_logpost(
    theta: np.ndarray, x: np.ndarray, n: np.ndarray, f: np.ndarray, w: np.ndarray, od: bool
) -> np.ndarray:
    """Weighted log posterior of ``theta = (a, log b[, log kappa])``, vectorised over leading dims."""
    theta = np.atleast_2d(theta)
    a, b = theta[:, :1], np.exp(theta[:, 1:2])
    kappa = np.exp(theta[:, 2:3]) if od else None
    ll = (w * partial_loglik(x, n, f, a, b, kappa)).sum(axis=1)
    names = ["a", "log_b", "log_kappa"] if od else ["a", "log_b"]
    lp = sum(stats.norm.logpdf(theta[:, i], *SHARE_PRIORS[k]) for i, k in enumerate(names))
    return ll + lp


def fit_share_curve(
    pairs: pd.DataFrame | None = None,
    *,
    exclude_years: Iterable[int] = (),
    overdispersed: bool = True,
    n_draws: int = 4000,
    seed: int = 0,
) -> ShareFit:
    """Fit the share curve to the historical pairs; return posterior draws.

    The log posterior (each year's figures weighted ``1 / count`` so a year counts once;
    priors :data:`SHARE_PRIORS`) is maximised, a multivariate-t proposal (4 d.f.) is
    centred on the mode with the inverse Hessian as scale, and ``n_draws`` draws are
    importance-resampled from it: exact up to Monte Carlo error for this 3-parameter,
    smooth posterior.

    Parameters
    ----------
    pairs
        Output of :func:`share_pairs` (read from ``data/`` if omitted).
    exclude_years
        Years left out (leave-one-year-out validation; the nowcast's own year).
    overdispersed
        Beta-binomial (default) or binomial (``kappa = inf``).
    n_draws, seed
        Number of draws and the seed of the proposal and the resampling.
    """
    pairs = share_pairs() if pairs is None else pairs
    excl = tuple(sorted({int(y) for y in exclude_years}))
    use = pairs[~pairs["year"].isin(excl)]
    if use["year"].nunique() < 3:
        raise DataValidationError(
            f"share curve: only {use['year'].nunique()} year(s) with partial and final counts after excluding "
            f"{list(excl)}; at least 3 are needed."
        )
    x = use["partial"].to_numpy(float)
    n = use["final"].to_numpy(float)
    f = use["fraction"].to_numpy(float)
    w = 1.0 / use.groupby("year")["year"].transform("size").to_numpy(float)
    dim = 3 if overdispersed else 2
    start = np.array([0.0, 0.0, 5.0][:dim])

    def neg(t: np.ndarray) -> float:
        return -float(_share_logpost(t, x, n, f, w, overdispersed)[0])

    res = optimize.minimize(neg, start, method="BFGS")
    mode = res.x
    H = _hessian(neg, mode)
    try:
        cov = np.linalg.inv(H)
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        cov = np.diag(np.full(dim, 0.25))
    rng = np.random.default_rng(seed)
    df = 4.0
    m = 4 * n_draws
    prop = stats.multivariate_t(loc=mode, shape=cov * 1.2**2, df=df, seed=rng)
    theta = prop.rvs(size=m).reshape(m, dim)
    logw = _share_logpost(theta, x, n, f, w, overdispersed) - prop.logpdf(theta)
    wts = np.exp(logw - logw.max())
    idx = systematic_resample(wts, n_draws, rng)
    rng.shuffle(idx)
    th = theta[idx]
    names = ["a", "log_b", "log_kappa"][:dim]
    return ShareFit(
        a=th[:, 0],
        b=np.exp(th[:, 1]),
        kappa=np.exp(th[:, 2]) if overdispersed else None,
        excluded_years=excl,
        years=tuple(int(y) for y in sorted(use["year"].unique())),
        n_pairs=len(use),
        ess=ess(wts),
        mode={k: float(v) for k, v in zip(names, mode, strict=True)},
    )


def _hessian(fun: Any, x0: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    d = len(x0)
    H = np.empty((d, d))
    for i in range(d):
        for j in range(i, d):
            e_i, e_j = np.eye(d)[i] * h, np.eye(d)[j] * h
            H[i, j] = H[j, i] = (
                fun(x0 + e_i + e_j) - fun(x0 + e_i - e_j) - fun(x0 - e_i + e_j) + fun(x0 - e_i - e_j)
            ) / (4 * h * h)
    return H


# ----------------------------------------------------------------------------
# The prior for N from a fitted model
# ----------------------------------------------------------------------------


def model_prior(
    model: DefectionModel, year: int, *, scenario: str = "status_quo", seed: int = 0
) -> dict[str, np.ndarray | None]:
    """Per-draw expected counts of ``year`` and ``year + 1`` given the latent state of ``year - 1``.

    For a year inside the fit window the latent state of ``year - 1`` is carried one
    step (``z_t = rho z_{t-1} + sigma e``) and combined with the fitted drivers of
    ``year`` (``log_mu - latent``), so the year's own latent state -- which nearly
    interpolates its count -- is not used.  Years after the window are carried from the
    last fitted year through the ``scenario`` forecast's drivers.

    Returns
    -------
    dict
        ``mu`` and ``mu_next`` (sample,), ``overdispersion`` (sample,) or ``None``.
    """
    from nkdefections.forecast import posterior_arrays
    from nkdefections.scenarios import Horizon

    if model.idata is None:
        raise ConfigError("model: not fitted; call .fit() or DefectionModel.load() before nowcasting with it.")
    post = model.idata.posterior
    years = model.design.years.astype(int)
    first, last = int(years[0]), int(years[-1])
    if year <= first:
        raise ConfigError(
            f"year: {year} is not after the first fitted year {first}; the prior for year t is carried from "
            "the latent state of year t-1."
        )
    arrays = posterior_arrays(model)
    latent = flatten_draws(post[C.LATENT])
    fixed_obs = flatten_draws(post[C.LOG_MU]) - latent  # intercept + drivers, per draw and fitted year
    S = latent.shape[0]
    fixed: dict[int, np.ndarray] = {int(y): fixed_obs[:, i] for i, y in enumerate(years)}
    if year + 1 > last:
        fc = model.forecast([scenario], Horizon(last + 1, year + 1), seed=seed)
        dv = fc[C.DRIVER_VALUES].isel({C.SCENARIO: 0}).values  # (chain, draw, year_future, driver)
        dv = dv.reshape((S,) + dv.shape[2:])
        fut = arrays["intercept"][:, None] + np.einsum("shk,sk->sh", dv, arrays["beta"])
        for h, y in enumerate(fc[C.YEAR_FUTURE].values.astype(int)):
            fixed[int(y)] = fut[:, h]
    start = min(year, last + 1)
    z = latent[:, list(years).index(start - 1)]
    rng = np.random.default_rng(seed + 1)
    eps = rng.standard_normal((S, year + 2 - start))
    mu: dict[int, np.ndarray] = {}
    for k, y in enumerate(range(start, year + 2)):
        z = arrays["rho"] * z + arrays["sigma"] * eps[:, k]
        mu[y] = np.exp(fixed[y] + z)
    return {"mu": mu[year], "mu_next": mu[year + 1], "overdispersion": arrays["overdispersion"]}


def _count_logpmf(n: np.ndarray, mu: np.ndarray, overdispersion: np.ndarray | None) -> np.ndarray:
    """Poisson or negative-binomial log pmf; ``n`` (G,), ``mu`` (S, 1) -> (S, G)."""
    if overdispersion is None:
        return stats.poisson.logpmf(n, mu)
    phi = 1.0 / np.asarray(overdispersion)[:, None] ** 2
    return stats.nbinom.logpmf(n, phi, phi / (phi + mu))


def _count_bounds(mu: np.ndarray, overdispersion: np.ndarray | None, tail: float = 1e-7) -> tuple[int, int]:
    if overdispersion is None:
        return int(stats.poisson.ppf(tail, mu.min())), int(stats.poisson.ppf(1 - tail, mu.max()))
    phi = 1.0 / overdispersion**2
    lo = stats.nbinom.ppf(tail, phi, phi / (phi + mu)).min()
    hi = stats.nbinom.ppf(1 - tail, phi, phi / (phi + mu)).max()
    return int(lo), int(hi)


# ----------------------------------------------------------------------------
# The nowcast
# ----------------------------------------------------------------------------


def _check_inputs(partial_count: Any, year: Any) -> None:
    if isinstance(partial_count, bool) or not isinstance(partial_count, (int, np.integer)):
        raise DataValidationError(f"partial_count: {partial_count!r} is not a whole number of arrivals.")
    if partial_count < 0:
        raise DataValidationError(
            f"partial_count: {partial_count} is negative; a year-to-date count of arrivals cannot be."
        )
    if isinstance(year, bool) or not isinstance(year, (int, np.integer)):
        raise DataValidationError(f"year: {year!r} is not a whole year.")
    if not 1999 <= int(year) <= 2100:
        raise ConfigError(f"year: {year} is outside the modelled period (1999 on).")


def nowcast(
    partial_count: int,
    year: int,
    month_end: int,
    *,
    day: int | None = None,
    model: DefectionModel | None = None,
    prior: str | None = None,
    share: ShareFit | None = None,
    leave_out: bool = True,
    overdispersed: bool = True,
    scenario: str = "status_quo",
    max_horizon: int = 2030,
    n_draws: int = 1000,
    seed: int = 0,
    chunk: int = 500,
) -> xr.Dataset:
    """Predictive distribution of year ``year``'s full count given its count to ``month_end``.

    Parameters
    ----------
    partial_count
        Arrivals from January 1 to the end of ``month_end`` (or to ``day``).
    year
        The calendar year of the partial count.
    month_end
        Last month of the partial period, 1..12 (6 = first half, 3 = first quarter).
    day
        The period ends on this day of ``month_end`` (``Jan-Sep15``: ``month_end=9,
        day=15``); default the month's last day.
    model
        A fitted :class:`~nkdefections.model.DefectionModel`; its predictive for the
        year (given the year before) is the prior for the full-year count, and the
        next year's forecast is updated too.
    prior
        ``"model"`` (default when ``model`` is given) or ``"loguniform"`` (default
        without a model: ``p(N) ~ 1/N``, the share curve alone, no next-year forecast;
        it makes the nowcast ``N = x / share`` with the share drawn from its
        year-to-year distribution, whatever the level).
    share
        A :class:`ShareFit`; by default fitted to the historical pairs, leaving out
        ``year`` when ``leave_out``.
    leave_out
        Leave the target year out of the share-curve fit (so a nowcast of a past year
        never sees its own final count).
    overdispersed
        Beta-binomial observation model (default) or binomial.
    scenario
        Scenario whose drivers carry the model beyond its fit window.
    max_horizon
        The last year a model prior may be carried to.
    n_draws
        Share-curve draws used under the log-uniform prior (a model prior uses every
        posterior draw).
    seed
        Seed of the latent innovations, the share-curve draws and the resampling.
    chunk
        Posterior draws processed at a time (memory).

    Returns
    -------
    xarray.Dataset
        ``full_year_pmf`` / ``full_year_prior_pmf`` on ``n_full``; with a model prior also
        ``next_year_pmf`` / ``next_year_prior_pmf`` on ``n_next``; draw-level
        ``full_year`` (and ``next_year``) on ``sample``.  ``attrs`` hold the inputs, the
        elapsed fraction, the naive ``x / f`` estimate, the effective sample size of the
        reweighting and the share-curve fit.  :func:`nowcast_summary` tabulates it.

    Raises
    ------
    DataValidationError
        A negative or non-integer count, a month outside 1..12, a bad day.
    ConfigError
        An unknown prior, a model prior without a model, a year after 2016 without a
        model or beyond ``max_horizon``.
    """
    _check_inputs(partial_count, year)
    _check_month_day(month_end, day)
    year, x = int(year), int(partial_count)
    prior = prior or ("model" if model is not None else "loguniform")
    if prior not in PRIORS:
        raise ConfigError(f"prior: unknown option {prior!r}; choose one of {list(PRIORS)}.")
    if prior == "model" and model is None:
        raise ConfigError(
            "prior: 'model' needs a fitted model; pass model= (CLI: --posterior PATH) or prior='loguniform'."
        )
    if model is None and year > LAST_OBSERVED_YEAR:
        raise ConfigError(
            f"year: {year} is after {LAST_OBSERVED_YEAR}, the last observed year; a nowcast of a future year needs "
            "a fitted model whose forecast supplies its prior (pass model=, CLI: --posterior PATH)."
        )
    if model is not None and year > max_horizon:
        raise ConfigError(f"year: {year} is beyond the forecast horizon (max_horizon={max_horizon}).")
    frac = year_fraction(year, month_end, day)
    rng = np.random.default_rng(seed)
    if share is None:
        share = _default_share(year if leave_out else None, overdispersed, seed)

    if prior == "model":
        assert model is not None
        pr = model_prior(model, year, scenario=scenario, seed=seed)
        mu, mu_next, od = pr["mu"], pr["mu_next"], pr["overdispersion"]
        assert mu is not None and mu_next is not None
        S = len(mu)
        lo, hi = _count_bounds(mu, od)
        grid = np.arange(min(lo, x), max(hi, x + 1) + 1)
    else:
        mu = mu_next = od = None
        S = min(len(share.a), n_draws)
        grid = np.arange(max(x, 1), _wide_upper(x, frac, share) + 1)
    a, b, kappa = share.take(S, rng)

    # log p(x | N) + log p(N) per draw and grid point, in chunks: the marginal likelihood of each
    # draw (its weight), the weighted mixture of the per-draw conditionals p(N | x, draw), and
    # K draws of N from each conditional (for the draw-level output)
    K = 8
    logw = np.empty(S)
    parts: list[tuple[float, np.ndarray]] = []
    prior_pmf = np.zeros(len(grid))
    n_cond = np.empty((S, K), dtype=np.int64)
    for i in range(0, S, chunk):
        sl = slice(i, min(i + chunk, S))
        k = None if kappa is None else kappa[sl, None]
        joint = partial_loglik(x, grid[None, :], frac, a[sl, None], b[sl, None], k)
        if mu is not None:
            lp = _count_logpmf(grid, mu[sl, None], None if od is None else od[sl])
            prior_pmf += np.exp(lp).sum(axis=0)
            joint = joint + lp
        else:
            joint = joint - np.log(grid)[None, :]
        lw = logsumexp(joint, axis=1)
        logw[sl] = lw
        top = float(lw.max())
        parts.append((top, np.exp(joint - top).sum(axis=0)))
        cdf = np.cumsum(np.exp(joint - lw[:, None]), axis=1)
        u = rng.uniform(size=(cdf.shape[0], K)) * cdf[:, -1:]
        pos = np.stack([(cdf < u[:, [j]]).sum(axis=1) for j in range(K)], axis=1)
        n_cond[sl] = grid[np.minimum(pos, len(grid) - 1)]
    top = max(t for t, _ in parts)
    post_pmf = sum(np.exp(t - top) * v for t, v in parts)
    wn = np.exp(logw - logw.max())
    wn /= wn.sum()
    if mu is None:
        prior_pmf = 1.0 / grid
    ess_w = ess(wn)
    if prior == "model" and ess_w < 100:
        warnings.warn(
            f"nowcast: only {ess_w:.0f} effective draws after weighting by the partial count {x}; the count is "
            "far in the tail of the model's predictive for the year, so the result rests on few draws.",
            stacklevel=2,
        )

    # draw-level output: draws chosen by weight, N from each draw's conditional, next year from its mu
    idx = np.sort(systematic_resample(wn, S, rng))
    repeat = np.arange(S) - np.searchsorted(idx, idx, side="left")  # k-th copy of a draw takes its k-th N
    n_draw = n_cond[idx, repeat % K]
    perm = rng.permutation(S)
    idx, n_draw = idx[perm], n_draw[perm]
    data_vars: dict[str, Any] = {
        "full_year_pmf": ((N_FULL,), post_pmf / post_pmf.sum()),
        "full_year_prior_pmf": ((N_FULL,), prior_pmf / prior_pmf.sum()),
        "full_year": ((SAMPLE,), n_draw.astype(np.int64)),
    }
    coords: dict[str, Any] = {N_FULL: grid, SAMPLE: np.arange(S)}
    if mu_next is not None:
        lo2, hi2 = _count_bounds(mu_next, od)
        grid2 = np.arange(lo2, hi2 + 1)
        nxt = np.zeros(len(grid2))
        nxt_prior = np.zeros(len(grid2))
        for i in range(0, S, chunk):
            sl = slice(i, min(i + chunk, S))
            p = np.exp(_count_logpmf(grid2, mu_next[sl, None], None if od is None else od[sl]))
            nxt += wn[sl] @ p
            nxt_prior += p.sum(axis=0)
        next_draw = _draw_counts(mu_next[idx], None if od is None else od[idx], rng)
        data_vars["next_year_pmf"] = ((N_NEXT,), nxt / nxt.sum())
        data_vars["next_year_prior_pmf"] = ((N_NEXT,), nxt_prior / nxt_prior.sum())
        data_vars["next_year"] = ((SAMPLE,), next_draw.astype(np.int64))
        coords[N_NEXT] = grid2
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs = {
        "partial_count": x,
        "year": year,
        "month_end": int(month_end),
        "day": -1 if day is None else int(day),
        "fraction": frac,
        "naive_estimate": naive_estimate(x, frac),
        "prior": prior,
        "observation_model": "beta_binomial" if kappa is not None else "binomial",
        "effective_draws": ess_w,
        "share_expected_median": float(np.median(share.expected_share(frac))),
        "share_excluded_years": ",".join(str(y) for y in share.excluded_years),
        "share_years": ",".join(str(y) for y in share.years),
        "share_kappa_median": float(np.median(share.kappa)) if share.kappa is not None else float("inf"),
        "scenario": scenario if prior == "model" and year + 1 > int(model.design.years[-1]) else "",  # type: ignore[union-attr]
        "fit_id": str(model.attrs.get("fit_id", "")) if model is not None else "",
        "seed": int(seed),
    }
    return ds


def _draw_counts(mu: np.ndarray, od: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    if od is None:
        return rng.poisson(mu)
    phi = 1.0 / od**2
    return rng.negative_binomial(phi, phi / (phi + mu))


def _wide_upper(x: int, frac: float, share: ShareFit) -> int:
    """Upper end of the count grid under the log-uniform prior: where the likelihood of ``x`` has vanished."""
    s = share.expected_share(frac)
    if share.kappa is None:
        low = float(np.quantile(s, 0.0005)) * 0.8
    else:
        low = float(np.quantile(stats.beta.ppf(1e-6, share.kappa * s, share.kappa * (1 - s)), 0.001))
    low = max(low, 1e-4)
    # binomial noise on top of the share's variation: N s may exceed x by several sd of x
    return int(min(np.ceil((x + 8 * np.sqrt(x + 1) + 30) / low), x + 200_000))


_SHARE_CACHE: dict[tuple[int | None, bool, int], ShareFit] = {}


def _default_share(leave_out_year: int | None, overdispersed: bool, seed: int) -> ShareFit:
    key = (leave_out_year, overdispersed, seed)
    if key not in _SHARE_CACHE:
        excl = () if leave_out_year is None else (leave_out_year,)
        _SHARE_CACHE[key] = fit_share_curve(exclude_years=excl, overdispersed=overdispersed, seed=seed)
    return _SHARE_CACHE[key]


def nowcast_summary(result: xr.Dataset, probs: Sequence[float] = INTERVALS) -> pd.DataFrame:
    """Median, mean and central intervals of the full-year (and next-year) predictive.

    One row per quantity: ``full_year`` and ``next_year`` given the partial count, and
    their ``*_prior`` versions (the model's predictive without it).
    """
    rows = []
    for name, dim in (("full_year", N_FULL), ("next_year", N_NEXT)):
        for kind in ("", "_prior"):
            var = f"{name}{kind}_pmf"
            if var not in result:
                continue
            if kind and result.attrs.get("prior") != "model":
                continue
            grid, pmf = result[dim].values, result[var].values
            row: dict[str, Any] = {
                "quantity": f"{name}{kind}",
                "year": int(result.attrs["year"]) + (1 if name == "next_year" else 0),
                "median": float(pmf_quantile(grid, pmf, 0.5)[0]),
                "mean": float(np.sum(grid * pmf) / pmf.sum()),
            }
            for p in probs:
                lo, hi = pmf_quantile(grid, pmf, [(1 - p) / 2, 1 - (1 - p) / 2])
                k = int(round(p * 100))
                row[f"lower_{k}"] = lo
                row[f"upper_{k}"] = hi
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nkdefections.nowcast",
        description="Predictive distribution of a year's arrivals from its year-to-date count.",
    )
    parser.add_argument("--year", type=int, required=True, help="calendar year of the partial count")
    parser.add_argument("--month-end", type=int, required=True, help="last month of the period (6 = Jan-Jun)")
    parser.add_argument("--day", type=int, default=None, help="period ends on this day of --month-end")
    parser.add_argument("--count", type=int, required=True, help="arrivals from January 1 to the period's end")
    parser.add_argument("--posterior", type=Path, default=None, help="a saved posterior (DefectionModel.save)")
    parser.add_argument(
        "--prior", choices=PRIORS, default=None, help="default: model with --posterior, else loguniform"
    )
    parser.add_argument("--scenario", default="status_quo", help="drivers beyond the fit window")
    parser.add_argument("--binomial", action="store_true", help="binomial instead of beta-binomial")
    parser.add_argument("--no-leave-out", action="store_true", help="let the year's own final count fit the share")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from nkdefections.errors import NKDefectionsError

    try:
        model = None
        if args.posterior is not None:
            from nkdefections.model import DefectionModel

            model = DefectionModel.load(args.posterior)
        res = nowcast(
            args.count,
            args.year,
            args.month_end,
            day=args.day,
            model=model,
            prior=args.prior,
            leave_out=not args.no_leave_out,
            overdispersed=not args.binomial,
            scenario=args.scenario,
            seed=args.seed,
        )
    except NKDefectionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    a = res.attrs
    end = f"{_MONTHS[a['month_end'] - 1]}" + ("" if a["day"] < 0 else f" {a['day']}")
    print(
        f"nowcast of {a['year']} from {a['partial_count']} arrivals in Jan-{end} ({a['fraction']:.1%} of the year); "
        f"prior: {a['prior']}, observation model: {a['observation_model']}"
    )
    print(
        f"expected share by then {a['share_expected_median']:.3f} (share curve fitted on {a['share_years']}); "
        f"naive x/f estimate {a['naive_estimate']:.0f}; effective draws {a['effective_draws']:.0f}"
    )
    print(nowcast_summary(res).to_string(index=False, float_format=lambda v: f"{v:.0f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
