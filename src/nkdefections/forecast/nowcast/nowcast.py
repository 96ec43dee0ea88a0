"""The nowcast: a year's arrivals from its year-to-date count."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats
from scipy.special import gammaln

from nkdefections import constants as C
from nkdefections.arithmetic import draw_counts, latent_step, nb_prob, nb_shape
from nkdefections.config import DataConfig, Horizon
from nkdefections.data.tables import LAST_OBSERVED_YEAR
from nkdefections.errors import ConfigError, DataValidationError
from nkdefections.forecast.fit_view import FitSource, FitView, as_fit_view
from nkdefections.forecast.kernel import forecast
from nkdefections.forecast.nowcast.share import (
    INTERVALS,
    N_FULL,
    N_NEXT,
    PRIORS,
    SAMPLE,
    ShareFit,
    check_month_day,
    ess,
    fit_share_curve,
    naive_estimate,
    partial_loglik_grid,
    pmf_quantile,
    systematic_resample,
    year_fraction,
)
from nkdefections.scenarios.scenario import load_scenario
from nkdefections.validate import is_whole

# ----------------------------------------------------------------------------
# The prior for N from a fitted model
# ----------------------------------------------------------------------------


def model_prior(
    fit: FitView | FitSource, year: int, *, scenario: str = "status_quo", seed: int = 0
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
    fit = as_fit_view(fit)
    years = fit.years
    first, last = int(years[0]), int(years[-1])
    if year <= first:
        raise ConfigError(
            f"year: {year} is not after the first fitted year {first}; the prior for year t is carried from "
            "the latent state of year t-1."
        )
    arrays = fit.arrays
    latent = arrays["latent"]
    fixed_obs = arrays["log_mu"] - latent  # intercept + drivers, per draw and fitted year
    S = latent.shape[0]
    fixed: dict[int, np.ndarray] = {int(y): fixed_obs[:, i] for i, y in enumerate(years)}
    if year + 1 > last:
        fc = forecast(fit, [load_scenario(scenario)], Horizon(last + 1, year + 1), seed=seed)
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
        z = latent_step(z, arrays["rho"], arrays["sigma"], eps[:, k])
        mu[y] = np.exp(fixed[y] + z)
    return {"mu": mu[year], "mu_next": mu[year + 1], "overdispersion": arrays["overdispersion"]}


def _count_logpmf(n: np.ndarray, mu: np.ndarray, overdispersion: np.ndarray | None) -> np.ndarray:
    """Poisson or negative-binomial log pmf; ``n`` (G,) non-negative, ``mu`` (S, 1) -> (S, G)."""
    if overdispersion is None:
        # scipy's generic logpmf re-checks and re-broadcasts every call; log n! is on the grid alone
        nf = np.asarray(n, dtype=float)
        return nf[None, :] * np.log(mu) - mu - gammaln(nf + 1)[None, :]
    phi = nb_shape(np.asarray(overdispersion)[:, None])
    return stats.nbinom.logpmf(n, phi, nb_prob(phi, mu))


def _count_bounds(mu: np.ndarray, overdispersion: np.ndarray | None, tail: float = 1e-7) -> tuple[int, int]:
    if overdispersion is None:
        return int(stats.poisson.ppf(tail, mu.min())), int(stats.poisson.ppf(1 - tail, mu.max()))
    phi = nb_shape(overdispersion)
    lo = stats.nbinom.ppf(tail, phi, nb_prob(phi, mu)).min()
    hi = stats.nbinom.ppf(1 - tail, phi, nb_prob(phi, mu)).max()
    return int(lo), int(hi)


# ----------------------------------------------------------------------------
# The nowcast
# ----------------------------------------------------------------------------


def _check_prior(prior: str | None, model: FitView | None, year: int, max_horizon: int) -> str:
    """The prior to use (``model`` when a model is given, else ``loguniform``), checked against the inputs."""
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
    return prior


def _reweight(
    x: int,
    grid: np.ndarray,
    frac: float,
    share_draws: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    mu: np.ndarray | None,
    od: np.ndarray | None,
    rng: np.random.Generator,
    *,
    K: int,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """log p(x | N) + log p(N) per draw and grid point, in chunks of draws.

    Returns the marginal log likelihood of each draw (its weight), the unnormalised
    posterior pmf of N (the weighted mixture of the per-draw conditionals), the prior pmf
    summed over draws (zeros without a model prior) and ``K`` draws of N from each draw's
    conditional (for the draw-level output).
    """
    a, b, kappa = share_draws
    S = len(a)
    logw = np.empty(S)
    parts: list[tuple[float, np.ndarray]] = []
    prior_pmf = np.zeros(len(grid))
    n_cond = np.empty((S, K), dtype=np.int64)
    log_grid = np.log(grid)[None, :]
    chunk = _rows_per_block(chunk, len(grid))
    for i in range(0, S, chunk):
        sl = slice(i, min(i + chunk, S))
        joint = partial_loglik_grid(x, grid, frac, a[sl], b[sl], None if kappa is None else kappa[sl])
        if mu is not None:
            lp = _count_logpmf(grid, mu[sl, None], None if od is None else od[sl])
            prior_pmf += np.exp(lp).sum(axis=0)
            joint += lp
        else:
            joint -= log_grid
        # one exp of the (draws, grid) block serves the weights, the mixture and the conditionals
        row_max = joint.max(axis=1, keepdims=True)
        e = np.exp(joint - row_max)
        row_sum = e.sum(axis=1)
        lw = row_max[:, 0] + np.log(row_sum)
        logw[sl] = lw
        top = float(lw.max())
        parts.append((top, (e * np.exp(row_max - top)).sum(axis=0)))
        n_cond[sl] = grid[_inverse_cdf(e / row_sum[:, None], rng.uniform(size=(e.shape[0], K)))]
    top = max(t for t, _ in parts)
    post_pmf = sum(np.exp(t - top) * v for t, v in parts)
    return logw, post_pmf, prior_pmf, n_cond


#: The most (draws x grid) cells one block holds: 2e6 cells, 16 MB per float array.
BLOCK_CELLS = 2_000_000


def _rows_per_block(chunk: int, grid_size: int) -> int:
    """At most ``chunk`` draws per block, fewer when the grid is long (the log-uniform prior's grid reaches 200,000)."""
    return max(1, min(chunk, BLOCK_CELLS // max(grid_size, 1)))


def _inverse_cdf(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Grid index of the ``u`` quantiles (R, K) of each row's pmf ``p`` (R, G), rows summing to 1.

    The smallest index whose cdf reaches ``u``, as ``(cdf < u).sum()`` gives, found by one
    sorted search over the rows laid end to end (row ``r`` shifted by ``r``).
    """
    R, G = p.shape
    cdf = np.cumsum(p, axis=1)
    cdf[:, -1] = 1.0
    offset = np.arange(R, dtype=float)[:, None]
    pos = np.searchsorted((cdf + offset).ravel(), (u + offset).ravel(), side="left").reshape(u.shape)
    return np.clip(pos - (G * np.arange(R))[:, None], 0, G - 1)


def _next_year(
    data_vars: dict[str, Any],
    coords: dict[str, Any],
    mu_next: np.ndarray,
    od: np.ndarray | None,
    wn: np.ndarray,
    idx: np.ndarray,
    rng: np.random.Generator,
    chunk: int,
) -> None:
    """Add the next year's reweighted pmf, its prior pmf and its draws (of the resampled draws ``idx``)."""
    S = len(mu_next)
    lo2, hi2 = _count_bounds(mu_next, od)
    grid2 = np.arange(lo2, hi2 + 1)
    nxt = np.zeros(len(grid2))
    nxt_prior = np.zeros(len(grid2))
    chunk = _rows_per_block(chunk, len(grid2))
    for i in range(0, S, chunk):
        sl = slice(i, min(i + chunk, S))
        p = np.exp(_count_logpmf(grid2, mu_next[sl, None], None if od is None else od[sl]))
        nxt += wn[sl] @ p
        nxt_prior += p.sum(axis=0)
    next_draw = draw_counts(mu_next[idx], rng, None if od is None else od[idx])
    data_vars["next_year_pmf"] = ((N_NEXT,), nxt / nxt.sum())
    data_vars["next_year_prior_pmf"] = ((N_NEXT,), nxt_prior / nxt_prior.sum())
    data_vars["next_year"] = ((SAMPLE,), next_draw.astype(np.int64))
    coords[N_NEXT] = grid2


def _resample(wn: np.ndarray, n_cond: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw-level output: draws chosen by weight, N from each chosen draw's conditional (shuffled)."""
    S, K = n_cond.shape
    idx = np.sort(systematic_resample(wn, S, rng))
    repeat = np.arange(S) - np.searchsorted(idx, idx, side="left")  # k-th copy of a draw takes its k-th N
    n_draw = n_cond[idx, repeat % K]
    perm = rng.permutation(S)
    return idx[perm], n_draw[perm]


def _warn_few_draws(ess_w: float, x: int) -> None:
    warnings.warn(
        f"nowcast: only {ess_w:.0f} effective draws after weighting by the partial count {x}; the count is "
        "far in the tail of the model's predictive for the year, so the result rests on few draws.",
        stacklevel=3,
    )


def _check_inputs(partial_count: Any, year: Any) -> None:
    if not is_whole(partial_count):
        raise DataValidationError(f"partial_count: {partial_count!r} is not a whole number of arrivals.")
    if partial_count < 0:
        raise DataValidationError(
            f"partial_count: {partial_count} is negative; a year-to-date count of arrivals cannot be."
        )
    if not is_whole(year):
        raise DataValidationError(f"year: {year!r} is not a whole year.")
    first = DataConfig().first_year
    if not first <= int(year) <= 2100:
        raise ConfigError(f"year: {year} is outside the modelled period ({first} on).")


def nowcast(
    partial_count: int,
    year: int,
    month_end: int,
    *,
    day: int | None = None,
    model: FitView | FitSource | None = None,
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
        A fitted :class:`~nkdefections.model.DefectionModel` (or its
        :class:`~nkdefections.forecast.FitView`); its predictive for the
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
        Posterior draws processed at a time, at most; fewer when the count grid is long,
        so that one block holds at most :data:`BLOCK_CELLS` cells (memory).

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
    check_month_day(month_end, day)
    year, x = int(year), int(partial_count)
    fit = None if model is None else as_fit_view(model)
    prior = _check_prior(prior, fit, year, max_horizon)
    frac = year_fraction(year, month_end, day)
    rng = np.random.default_rng(seed)
    if share is None:
        share = _default_share(year if leave_out else None, overdispersed, seed)

    if prior == "model":
        assert fit is not None
        pr = model_prior(fit, year, scenario=scenario, seed=seed)
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

    logw, post_pmf, prior_pmf, n_cond = _reweight(x, grid, frac, (a, b, kappa), mu, od, rng, K=8, chunk=chunk)
    wn = np.exp(logw - logw.max())
    wn /= wn.sum()
    if mu is None:
        prior_pmf = 1.0 / grid
    ess_w = ess(wn)
    if prior == "model" and ess_w < 100:
        _warn_few_draws(ess_w, x)

    idx, n_draw = _resample(wn, n_cond, rng)
    data_vars: dict[str, Any] = {
        "full_year_pmf": ((N_FULL,), post_pmf / post_pmf.sum()),
        "full_year_prior_pmf": ((N_FULL,), prior_pmf / prior_pmf.sum()),
        "full_year": ((SAMPLE,), n_draw.astype(np.int64)),
    }
    coords: dict[str, Any] = {N_FULL: grid, SAMPLE: np.arange(S)}
    if mu_next is not None:
        _next_year(data_vars, coords, mu_next, od, wn, idx, rng, chunk)
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
        "scenario": scenario if fit is not None and prior == "model" and year + 1 > fit.last_year else "",
        "fit_id": str(fit.attrs.get("fit_id", "")) if fit is not None else "",
        "seed": int(seed),
    }
    return ds


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
                lo_col, hi_col = C.interval_columns(k)
                row[lo_col], row[hi_col] = lo, hi
            rows.append(row)
    return pd.DataFrame(rows)
