"""Scenario forecasts from one posterior, at draw level, with common random numbers.

The kernel is vectorised numpy over the posterior arrays: for every posterior draw it
carries the latent state forward (``z_t = rho z_{t-1} + sigma e_t``), lags the
scenario's driver paths exactly as the fitted model lags the history, and draws counts.
All scenarios share the same latent innovations, path-uncertainty normals and count
uniforms (counts by inverse CDF), so a difference between two scenarios is the effect of
their assumptions, not Monte Carlo noise.

The kernel takes a :class:`~nkdefections.forecast.FitView`, the fit as data, never the
model object.  ``tests/helpers/pymc_twin.py`` writes the same forecast as a PyMC model that reuses
the fitted variable names, so ``pm.sample_posterior_predictive`` checks the kernel
(``tests/forecast/test_forecast.py``) and serves as the benchmark baseline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from scipy import special, stats

from nkdefections import constants as C
from nkdefections.arithmetic import (
    lag_year,
    latent_step,
    nb_prob,
    nb_shape,
    student_t_scale,
    transform_driver,
)
from nkdefections.config import Horizon
from nkdefections.errors import ScenarioError
from nkdefections.forecast.fit_view import FitSource, FitView, as_fit_view
from nkdefections.priors import CLOSURE_ELASTICITY
from nkdefections.provenance import provenance
from nkdefections.scenarios.paths import scenario_paths
from nkdefections.scenarios.scenario import Scenario

#: Upper bound on log expected arrivals a year (about 22 million): beyond it a path is a typo.
MAX_LOG_MU = 17.0


def history_values(fit: FitView, year: int, driver: str) -> np.ndarray:
    """A driver's value in an observed year, per draw (economy: the latent true GDP growth)."""
    arrays = fit.arrays
    if driver == C.ECONOMY:
        if "gdp_true" in arrays and year in arrays["gdp_years"]:
            return arrays["gdp_true"][:, list(arrays["gdp_years"]).index(year)]
        v = float(fit.data[C.GDP_GROWTH].sel({C.YEAR: year}))
        return np.full(fit.n_samples, 0.0 if np.isnan(v) else v)
    var = C.BORDER_INDEX if driver == C.BORDER else C.SANCTIONS_INDEX
    return np.full(fit.n_samples, float(fit.data[var].sel({C.YEAR: year})))


def check_horizon(last_year: int, horizon: Horizon) -> None:
    """Refuse a horizon that does not start the year after the fit window's ``last_year``
    (or ends before it starts); run before sampling, so it takes the year, not a fit."""
    last = int(last_year)
    if horizon.start != last + 1:
        raise ScenarioError(
            f"forecast.horizon.start: {horizon.start} must be the year after the last fitted year ({last + 1}); "
            "the latent dynamics are carried forward year by year."
        )
    if horizon.end < horizon.start:
        raise ScenarioError(f"forecast.horizon.end: {horizon.end} precedes the start {horizon.start}.")


def driver_draws(fit: FitView, paths: xr.Dataset, rng: np.random.Generator) -> np.ndarray:
    """Lag-aligned driver values entering log mu: (sample, scenario, year_future, driver).

    Path uncertainty uses standard normals shared by all scenarios (common random numbers).
    """
    S = fit.n_samples
    mean = paths["path_mean"].values  # (n, H, K)
    sd = paths["path_sd"].values
    shared = paths["path_shared"].values
    n, H, K = mean.shape
    z_year = rng.standard_normal((S, 1, H, K))
    # one normal per correlated spec (group id > 0); ids are numbered within each scenario, so
    # the same id in two scenarios shares its draw (common random numbers)
    z_group = rng.standard_normal((S, int(shared.max()) + 1))
    noise = np.where(shared[None] > 0, z_group[:, shared], z_year)
    values = mean[None] + sd[None] * noise  # (S, n, H, K): the paths in calendar years
    years = paths[C.YEAR_FUTURE].values
    X = np.empty((S, n, H, K))
    for k, d in enumerate(C.DRIVERS):
        lag = fit.config.lags[d]
        for h, t in enumerate(years):
            src = lag_year(t, lag)
            if src < years[0]:
                X[:, :, h, k] = history_values(fit, src, d)[:, None]
            else:
                X[:, :, h, k] = values[:, :, h - lag, k]
    return X


def poisson_ppf(u: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Exact Poisson inverse CDF: the smallest k >= 0 with P(K <= k) >= u (flat arrays).

    Starts from the Cornish-Fisher quantile, evaluates the CDF there once, then walks
    with the pmf recurrence p(k+1) = p(k) mu / (k+1) until the CDF brackets ``u``
    (usually 0-2 steps, only where needed).  Matches scipy's ``poisson.ppf`` (for
    u > 0, up to floating-point ties) at a fraction of its cost.
    """
    if not np.all(np.isfinite(mu)) or np.any(mu > 1e12) or np.any(mu < 0):
        raise ValueError("poisson_ppf: mu must be finite, >= 0 and <= 1e12 (the unit step walk needs k < 2**53).")
    z = np.clip(special.ndtri(u), -40.0, 40.0)
    skew = 1.0 / np.sqrt(np.maximum(mu, 1e-12))
    k = np.maximum(np.floor(mu + np.sqrt(mu) * (z + skew * (z * z - 1.0) / 6.0)), 0.0)
    cdf = special.pdtr(k, mu)
    pmf = np.exp(k * np.log(mu) - mu - special.gammaln(k + 1.0))
    idx = np.flatnonzero(cdf < u)
    while idx.size:  # step up while cdf(k) < u
        k[idx] += 1.0
        pmf[idx] *= mu[idx] / k[idx]
        cdf[idx] += pmf[idx]
        idx = idx[cdf[idx] < u[idx]]
    idx = np.flatnonzero((k > 0) & (cdf - pmf >= u))
    while idx.size:  # step down while cdf(k - 1) >= u
        cdf[idx] -= pmf[idx]
        pmf[idx] *= k[idx] / mu[idx]
        k[idx] -= 1.0
        idx = idx[(k[idx] > 0) & (cdf[idx] - pmf[idx] >= u[idx])]
    return k


def closure_term(
    paths: xr.Dataset, n_draws: int, rng: np.random.Generator, estimated: np.ndarray | None = None
) -> np.ndarray:
    """``e * log(open)`` per (sample, scenario, year_future); zeros (and no draws) if no scenario closes.

    ``e`` is the fit's posterior draw of the closure elasticity when the fitted years carried a
    closure (``estimated``), else a draw from its prior (:data:`nkdefections.priors.CLOSURE_ELASTICITY`):
    an assumption.  The open fraction's s.d. (``border_open_sd``) adds path uncertainty:
    ``open + sd * z``, clipped to [0.001, 1], with one normal per draw, scenario and year.
    """
    open_mean = paths[C.BORDER_OPEN].values
    if np.all(open_mean >= 1.0):
        return np.zeros((n_draws, *open_mean.shape))
    c = CLOSURE_ELASTICITY
    a, b = (c["lower"] - c["mean"]) / c["sd"], (c["upper"] - c["mean"]) / c["sd"]
    e = stats.truncnorm.ppf(rng.uniform(size=n_draws), a, b, loc=c["mean"], scale=c["sd"])
    if estimated is not None:  # the uniforms are drawn all the same, so later draws do not move
        e = np.asarray(estimated, dtype=float)
    z = rng.standard_normal((n_draws, *open_mean.shape))
    frac = np.clip(open_mean[None] + paths[f"{C.BORDER_OPEN}_sd"].values[None] * z, 1e-3, 1.0)
    return e[:, None, None] * np.log(frac)


def latent_path(arrays: Mapping[str, np.ndarray | None], eps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The latent carried forward from the last fitted year, (sample, year_future).

    ``eps`` are standard normals; with Student-t innovations (``arrays["nu"]``) each is scaled by
    ``1 / sqrt(chi2_nu / nu)`` drawn after them, so a normal model's draws do not change.
    """
    if arrays["nu"] is not None:
        eps = eps * student_t_scale(rng, arrays["nu"], eps.shape)
    z = np.empty(eps.shape)
    prev = arrays["latent_last"]
    for h in range(eps.shape[1]):
        prev = latent_step(prev, arrays["rho"], arrays["sigma"], eps[:, h])
        z[:, h] = prev
    return z


def driver_terms(
    fit: FitView, X: np.ndarray, paths: xr.Dataset, beta: np.ndarray, rng: np.random.Generator | None
) -> np.ndarray:
    """Each driver's contribution to log mu, (sample, scenario, year_future, driver).

    ``beta_k * f_k(x)`` with the model's transform ``f_k``.  With ``rng`` (widening on), the part
    of ``f_k(x)`` beyond the observed range ``[f_k(lo_k), f_k(hi_k)]`` takes the slope
    ``beta_k + gamma_k`` instead, ``gamma_k ~ N(0, s_k)`` per posterior draw, shared by scenarios
    and years (common random numbers), ``s_k`` the prior s.d. of ``beta_k``: the slope beyond the
    data is known only to prior precision, so the spread grows with the distance.  A driver with
    a sign constraint keeps it there (the slope is clipped at zero).
    """
    cfg = fit.config
    Xm = np.empty_like(X)
    lo, hi, sd = np.zeros(X.shape[-1]), np.zeros(X.shape[-1]), np.zeros(X.shape[-1])
    for k, d in enumerate(C.DRIVERS):
        kind = cfg.transforms.get(d, "linear")
        Xm[..., k] = transform_driver(X[..., k], kind)
        lo[k] = transform_driver(float(paths["observed_min"].sel({C.DRIVER: d})), kind)
        hi[k] = transform_driver(float(paths["observed_max"].sel({C.DRIVER: d})), kind)
        sd[k] = float(cfg.priors[f"beta_{d}"]["sigma"]) if d in cfg.drivers else 0.0
    terms = Xm * beta[:, None, None, :]
    if rng is not None:
        gamma = rng.standard_normal((X.shape[0], X.shape[-1])) * sd
        beyond = beta + gamma  # the slope outside the range, per draw
        for k, d in enumerate(C.DRIVERS):  # a sign constraint holds there too
            sign = cfg.signs.get(d)
            if sign == "nonpositive":
                beyond[:, k] = np.minimum(beyond[:, k], 0.0)
            elif sign == "nonnegative":
                beyond[:, k] = np.maximum(beyond[:, k], 0.0)
        inside = np.clip(Xm, lo, hi)
        terms = inside * beta[:, None, None, :] + (Xm - inside) * beyond[:, None, None, :]
    return terms


def aligned_extrapolation(fit: FitView, paths: xr.Dataset) -> np.ndarray:
    """Extrapolation flags as the drivers enter each forecast year (scenario, year_future, driver).

    A driver with lag L enters year t with its value of year t - L: observed history (never
    flagged) before the horizon, the scenario path after.  Drivers not in the model are
    never flagged.
    """
    flags = paths["extrapolated"].values  # calendar years of the path
    out = np.zeros_like(flags)
    H = flags.shape[1]
    for k, d in enumerate(C.DRIVERS):
        if d not in fit.config.drivers:
            continue
        lag = fit.config.lags[d]
        if lag < H:
            out[:, lag:, k] = flags[:, : H - lag, k]
    return out


def count_ppf(u: np.ndarray, mu: np.ndarray, overdispersion: np.ndarray | None) -> np.ndarray:
    """Counts by inverse CDF of shared uniforms ``u`` (common random numbers).

    Poisson(``mu``), or negative binomial with mean ``mu`` and ``1/sqrt(phi)`` =
    ``overdispersion`` (one value per draw, broadcast along the first axis).
    """
    shape = np.shape(mu)
    mu_f = np.asarray(mu, dtype=float).ravel()
    u_f = np.broadcast_to(u, shape).astype(float).ravel()
    if overdispersion is None:
        return poisson_ppf(u_f, mu_f).reshape(shape)
    # negative binomial: scipy's exact ppf (the stepping search is slow where the dispersion is large)
    phi = nb_shape(np.asarray(overdispersion)).reshape((-1,) + (1,) * (len(shape) - 1))
    return stats.nbinom.ppf(u_f.reshape(shape), phi, nb_prob(phi, np.asarray(mu, dtype=float)))


def share_forecast(
    fit: FitView, X: np.ndarray, paths: xr.Dataset, totals: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The female share and count per (sample, scenario, year_future) of a by-sex fit.

    ``logit s = share_intercept + share_beta . f(x) + share_closure * log(open) + u`` with the
    share's AR(1) ``u`` carried forward from the last fitted year, and ``female ~ Binomial(total, s)``
    by inverse CDF of uniforms shared by scenarios.  The closure's effect on the share is the fit's
    posterior when the fitted years carried a closure, else a draw from its prior (an assumption);
    outside the observed driver range the share's slopes are the fitted ones (no widening; those
    years are flagged as for the totals).
    """
    a = fit.arrays
    cfg = fit.config
    S, _, H, _ = X.shape
    Xm = np.stack([transform_driver(X[..., k], cfg.transforms.get(d, "linear")) for k, d in enumerate(C.DRIVERS)], -1)
    share_latent = {"latent_last": a["share_latent_last"], "rho": a["rho_share"], "sigma": a["sigma_share"], "nu": None}
    u = latent_path(share_latent, rng.standard_normal((S, H)), rng)
    logit = a["share_intercept"][:, None, None] + np.einsum("snhk,sk->snh", Xm, a["share_beta"]) + u[:, None, :]
    c = a["share_closure"]
    if c is None:
        prior = cfg.priors["share_closure"]
        c = prior["mu"] + prior["sigma"] * rng.standard_normal(S)
    log_open = np.log(np.clip(paths[C.BORDER_OPEN].values, 1e-3, 1.0))  # (n, H)
    logit = logit + c[:, None, None] * log_open[None]
    share = special.expit(logit)
    v = np.broadcast_to(rng.uniform(size=(S, 1, H)), share.shape)
    female = stats.binom.ppf(v, totals, share)
    return share, np.where(totals > 0, female, 0.0)


def _sex_variables(
    fit: FitView, X: np.ndarray, paths: xr.Dataset, y: np.ndarray, rng: np.random.Generator, shape4: tuple, dims4: tuple
) -> dict[str, tuple]:
    """``female_share``, ``female`` and ``male`` for the forecast dataset of a by-sex fit; {} otherwise."""
    if fit.arrays.get(C.SHARE_INTERCEPT) is None:
        return {}
    share, female = share_forecast(fit, X, paths, y, rng)
    return {
        C.FEMALE_SHARE: (dims4, share.reshape(shape4)),
        C.FEMALE: (dims4, female.reshape(shape4).astype(np.int64)),
        C.MALE: (dims4, (y - female).reshape(shape4).astype(np.int64)),
    }


def _provenance_attrs(fit: FitView) -> dict[str, str]:
    """What made a forecast: this process's packages, code and machine, and those of the fit it used."""
    prov = provenance()
    return {
        "package_versions": json.dumps(prov["packages"], sort_keys=True),
        "fit_package_versions": str(fit.attrs.get("package_versions", "")),
        "code_version": prov["code_version"],
        "machine": json.dumps(prov["machine"], sort_keys=True),
        "fit_machine": str(fit.attrs.get("machine", "")),
    }


def forecast(
    fit: FitView | FitSource,
    scenarios: Sequence[Scenario],
    horizon: Horizon | None = None,
    *,
    seed: int = 0,
    widen: bool = True,
) -> xr.Dataset:
    """Forecast every scenario from the fitted posterior.

    Parameters
    ----------
    fit
        A fitted :class:`~nkdefections.model.DefectionModel`, or its
        :class:`~nkdefections.forecast.FitView` (``model.fit_view()``).
    scenarios
        The :class:`Scenario` objects to forecast (names must be unique).
    horizon
        Forecast years; default from the year after the fit window to 2030 (2017-2030 for
        1999-2016).  Must start the year after the fit window.
    seed
        Seed of the latent innovations, path uncertainty and count draws (shared by all
        scenarios).
    widen
        Widen the forecast where a driver leaves its 1999-2016 range (default): beyond the
        range the data say nothing about the slope, so each effect there gets an extra
        slope ``gamma_k ~ N(0, prior s.d. of beta_k)`` times the distance outside the range
        (:func:`driver_terms`).  ``False``: extrapolate the fitted line (flagged only).

    Returns
    -------
    xarray.Dataset
        ``arrivals`` and ``mu`` with dims ``(chain, draw, scenario, year_future)``,
        ``driver_values`` ``(chain, draw, scenario, year_future, driver)`` (lag-aligned, as
        they enter the model), the scenario paths ``path_mean``/``path_sd``/``extrapolated``
        ``(scenario, year_future, driver)``, the observed series ``arrivals_observed``
        ``(year)``; ``attrs`` hold the scenario definitions, fit id, horizon and seed.
    """
    fit = as_fit_view(fit)
    horizon = horizon or Horizon.after(fit.last_year)
    check_horizon(fit.last_year, horizon)
    if not scenarios:
        raise ScenarioError("scenarios: none selected; name at least one (e.g. status_quo).")
    paths = scenario_paths(scenarios, fit.data, horizon)
    arrays = fit.arrays
    chains, draws = len(fit.chain), len(fit.draw)
    S = chains * draws
    H = len(horizon.years)
    rng = np.random.default_rng(seed)
    X = driver_draws(fit, paths, rng)  # (S, n, H, K)
    eps = rng.standard_normal((S, H))
    u = rng.uniform(size=(S, H))
    z = latent_path(arrays, eps, rng)
    terms = driver_terms(fit, X, paths, arrays["beta"], rng if widen else None)  # (S, n, H, K)
    terms[..., C.DRIVERS.index(C.BORDER)] += closure_term(paths, S, rng, arrays.get("closure_elasticity"))
    log_mu = arrays["intercept"][:, None, None] + terms.sum(-1) + z[:, None, :]
    too_big = ~(log_mu < MAX_LOG_MU)
    if too_big.any():
        bad = sorted({scenarios[i].name for i in np.flatnonzero(too_big.any(axis=(0, 2)))})
        raise ScenarioError(
            f"scenario(s) {bad}: the paths imply more than {np.exp(MAX_LOG_MU):.0e} expected arrivals a year in some "
            "draws; check the driver values (units: border and sanctions are index units, economy is percent "
            "growth), e.g. a step value typed in percent instead of index units."
        )
    mu = np.exp(log_mu)
    y = count_ppf(np.broadcast_to(u[:, None, :], mu.shape), mu, arrays["overdispersion"])
    n = len(scenarios)
    shape4 = (chains, draws, n, H)
    dims4 = (C.CHAIN, C.DRAW, C.SCENARIO, C.YEAR_FUTURE)
    by_sex = _sex_variables(fit, X, paths, y, rng, shape4, dims4)  # drawn last: the totals' draws do not move
    coords = {
        C.CHAIN: fit.chain,
        C.DRAW: fit.draw,
        C.SCENARIO: [s.name for s in scenarios],
        C.YEAR_FUTURE: horizon.years,
        C.DRIVER: list(C.DRIVERS),
    }
    years_obs = fit.years
    ds = xr.Dataset(
        {
            C.OBSERVED: (dims4, y.reshape(shape4).astype(np.int64)),
            C.MU: (dims4, mu.reshape(shape4)),
            C.DRIVER_VALUES: ((*dims4, C.DRIVER), X.reshape(shape4 + (len(C.DRIVERS),)).astype(np.float32)),
            C.DRIVER_TERMS: ((*dims4, C.DRIVER), terms.reshape(shape4 + (len(C.DRIVERS),))),
            "path_mean": paths["path_mean"],
            "path_sd": paths["path_sd"],
            "extrapolated": ((C.SCENARIO, C.YEAR_FUTURE, C.DRIVER), aligned_extrapolation(fit, paths)),
            "path_extrapolated": paths["extrapolated"],
            "path_border_open": paths[C.BORDER_OPEN],
            "observed_min": paths["observed_min"],
            "observed_max": paths["observed_max"],
            "arrivals_observed": ((C.YEAR,), fit.arrivals),
            **by_sex,
        },
        coords={**coords, C.YEAR: years_obs},
    )
    ds.attrs = {
        "scenarios": json.dumps({s.name: s.to_dict() for s in scenarios}, sort_keys=True),
        "fit_id": str(fit.attrs.get("fit_id", "")),
        "data_hash": fit.data_hash,
        "horizon": f"{horizon.start}-{horizon.end}",
        "seed": int(seed),
        "lags": json.dumps(fit.config.lags, sort_keys=True),
        "model_config": json.dumps(fit.config.to_dict(), sort_keys=True),
        **_provenance_attrs(fit),
        "common_random_numbers": "latent innovations, path-uncertainty normals and count uniforms shared by scenarios",
        "widen_outside_range": int(bool(widen)),
        "closure_elasticity": closure_source(arrays.get("closure_elasticity"), paths),
    }
    return ds


def closure_source(estimated: np.ndarray | None, paths: xr.Dataset) -> str:
    """Where a forecast's closure elasticity comes from: ``estimated`` (the fitted years carried a
    closure), ``assumed`` (its prior: a scenario closes the border, no fitted year did) or ``unused``."""
    if estimated is not None:
        return "estimated"
    return "assumed" if bool(np.any(paths[C.BORDER_OPEN].values < 1.0)) else "unused"
