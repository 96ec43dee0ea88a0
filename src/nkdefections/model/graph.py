"""The default model's design and its PyMC graph (tiers 1 and 2)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from nkdefections import constants as C
from nkdefections.arithmetic import lag_year, nb_shape
from nkdefections.config import ModelConfig
from nkdefections.errors import ConfigError

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------
# Tier 1: the design (pure numpy)
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """Arrays the PyMC graph is built from.

    ``years`` are the observation years; ``X_fixed`` holds the lag-aligned border
    and sanctions indices (zeros for drivers not in the model or for the economy,
    whose values come from the latent GDP); ``gdp_years`` span
    ``first_year - lag_economy .. last_year``.
    """

    years: np.ndarray
    y: np.ndarray
    drivers: tuple[str, ...]
    X_fixed: np.ndarray  # (T, K) values for border/sanctions, zeros in the economy column
    economy_col: int | None
    gdp_years: np.ndarray
    gdp_obs_idx: np.ndarray
    gdp_obs: np.ndarray
    gdp_obs_sd: np.ndarray
    gdp_sign_idx: np.ndarray
    gdp_sign: np.ndarray
    economy_idx: np.ndarray  # index into gdp_years for each observation year
    center: np.ndarray  # driver means over the window: the free `level` is log mu at these values
    gdp_all: np.ndarray  # GDP figure for every gdp year (NaN where missing)
    gdp_sd_all: np.ndarray  # its measurement s.d. (by vintage)


def design(data: xr.Dataset, config: ModelConfig) -> Design:
    """Lag-align the drivers of ``data`` for ``config`` (pure, no PyMC)."""
    first, last = int(data.attrs["first_year"]), int(data.attrs["last_year"])
    all_years = data[C.YEAR].values.astype(int)
    if all_years.min() > first - config.max_lag:
        raise ConfigError(
            f"model.lags: a lag of {config.max_lag} needs covariates from "
            f"{first - config.max_lag}, but the data start in {all_years.min()}; load the data "
            f"with history >= {config.max_lag} (DefectionModel does this for you)."
        )
    years = np.arange(first, last + 1)
    y = data[C.ARRIVALS].sel({C.YEAR: years}).values
    if np.isnan(y).any():
        raise ConfigError("data: arrivals are missing inside the observation window.")
    drivers = config.drivers
    X = np.zeros((len(years), len(drivers)))
    source = {C.BORDER: C.BORDER_INDEX, C.SANCTIONS: C.SANCTIONS_INDEX}
    economy_col = None
    for k, d in enumerate(drivers):
        if d == C.ECONOMY:
            economy_col = k
            continue
        X[:, k] = data[source[d]].sel({C.YEAR: [lag_year(t, config.lags[d]) for t in years]}).values
    lag_e = config.lags[C.ECONOMY] if C.ECONOMY in drivers else 0
    gdp_years = np.arange(first - lag_e, last + 1)
    gdp = data[C.GDP_GROWTH].sel({C.YEAR: gdp_years}).values
    vintage = data[C.GDP_VINTAGE].sel({C.YEAR: gdp_years}).values
    sign = data[C.GDP_KNOWN_SIGN].sel({C.YEAR: gdp_years}).values
    obs_idx = np.flatnonzero(~np.isnan(gdp))
    sd = np.where(vintage == "latest", config.gdp_latest_sd, config.gdp_first_release_sd)
    sign_idx = np.flatnonzero(sign != 0)
    center = X.mean(axis=0)
    if economy_col is not None:
        center[economy_col] = float(np.nanmean(gdp[obs_idx])) if len(obs_idx) else 0.0
    return Design(
        center=center,
        years=years,
        y=y.astype(int),
        drivers=drivers,
        X_fixed=X,
        economy_col=economy_col,
        gdp_years=gdp_years,
        gdp_obs_idx=obs_idx,
        gdp_obs=gdp[obs_idx],
        gdp_obs_sd=sd[obs_idx],
        gdp_sign_idx=sign_idx,
        gdp_sign=sign[sign_idx].astype(float),
        economy_idx=np.searchsorted(gdp_years, years - lag_e),
        gdp_all=gdp.astype(float),
        gdp_sd_all=sd.astype(float),
    )


# ----------------------------------------------------------------------------
# Tier 2: the PyMC graph
# ----------------------------------------------------------------------------


def _prior(name: str, spec: Mapping[str, Any], **kw: Any) -> pt.TensorVariable:
    dist = spec["dist"]
    if dist == "normal":
        return pm.Normal(name, mu=spec["mu"], sigma=spec["sigma"], **kw)
    if dist == "halfnormal":
        return pm.HalfNormal(name, sigma=spec["sigma"], **kw)
    if dist == "beta":
        return pm.Beta(name, alpha=spec["alpha"], beta=spec["beta"], **kw)
    if dist == "gamma":
        return pm.Gamma(name, alpha=spec["alpha"], beta=spec["beta"], **kw)
    raise ConfigError(f"model.priors.{name}.dist: unknown family {dist!r}.")  # pragma: no cover


def _latent(config: ModelConfig, T: int) -> pt.TensorVariable:
    """Latent log-rate deviation z_t (dims ``year``)."""
    p = config.priors
    if config.latent == "none":
        return pm.Deterministic(C.LATENT, pt.zeros(T), dims=C.YEAR)
    sigma = _prior(C.SIGMA_LATENT, p["sigma_latent"])
    if config.latent == "ar1":
        rho = _prior(C.RHO, p["rho"])
        s0 = p["latent_init"]["sigma"]
        if config.parameterization == "centered":
            init = pm.Normal.dist(mu=p["latent_init"]["mu"], sigma=s0)
            return pm.AR(
                C.LATENT,
                rho=pt.stack([rho]),
                sigma=sigma,
                init_dist=init,
                constant=False,
                steps=T - 1,
                dims=C.YEAR,
            )
        eps = pm.Normal("latent_innovation", 0.0, 1.0, dims=C.YEAR)
        t = np.arange(T)
        power = t[:, None] - t[None, :]
        scale = pt.concatenate([pt.stack([pt.as_tensor(s0)]), pt.repeat(sigma, T - 1)])
        L = pt.where(power >= 0, rho ** pt.maximum(power, 0), 0.0) * scale[None, :]
        return pm.Deterministic(C.LATENT, p["latent_init"]["mu"] * rho**t + L @ eps, dims=C.YEAR)
    # random walk anchored at 0 in the first year: the intercept is the first year's level
    if config.parameterization == "centered":
        walk = pm.GaussianRandomWalk("latent_walk", sigma=sigma, init_dist=pm.Normal.dist(0.0, sigma), steps=T - 2)
    else:
        eps = pm.Normal("latent_innovation", 0.0, 1.0, shape=T - 1)
        walk = pt.cumsum(sigma * eps)
    return pm.Deterministic(C.LATENT, pt.concatenate([pt.zeros(1), walk]), dims=C.YEAR)


#: Data containers of the evaluation-mode graph (``build_model(..., evaluation=True)``):
#: everything :mod:`nkdefections.refit` swaps between refits without recompiling.
EVAL_DATA = (
    "arrivals_data",
    "obs_weight",
    "gdp_obs_all",
    "gdp_obs_sd_all",
    "gdp_obs_weight",
    "gdp_sign_weight",
    "driver_center",
    "level_prior_mu",
    "level_prior_sigma",
    "beta_prior_mu",
    "beta_prior_sigma",
)


def build_model(data: xr.Dataset, config: ModelConfig | None = None, *, evaluation: bool = False) -> pm.Model:
    r"""Build the PyMC model of yearly arrivals.

    See :class:`DefectionModel` for the equations.  Variable and dimension names
    are API (:mod:`nkdefections.constants`).

    ``evaluation=True`` builds the same model with every quantity a refit may change
    held in a data container (:data:`EVAL_DATA`): per-year likelihood weights (0 masks
    a year out, so a fit "on 1999..origin" keeps the full shape and the latent runs on
    through the masked years under its prior), the GDP figures and their weights, the
    centring point, the level and driver-effect prior parameters, and the weight of
    the known-sign constraint.  The likelihoods become weighted ``Potential`` terms.
    With all weights 1 it is the same posterior as the default graph (tested); it is
    meant for :class:`nkdefections.refit.Refitter`, not for posterior predictive
    sampling.
    """
    config = config or ModelConfig()
    d = design(data, config)
    p = config.priors
    coords = {C.YEAR: d.years, C.DRIVER: list(d.drivers), C.GDP_YEAR: d.gdp_years}
    with pm.Model(coords=coords) as model:
        x_fixed = pm.Data("driver_data", d.X_fixed, dims=(C.YEAR, C.DRIVER))
        if evaluation:
            center = pm.Data("driver_center", d.center, dims=C.DRIVER)
            lp = p["level"]
            level = pm.Normal(
                C.LEVEL, mu=pm.Data("level_prior_mu", lp["mu"]), sigma=pm.Data("level_prior_sigma", lp["sigma"])
            )
        else:
            center = d.center
            level = _prior(C.LEVEL, p["level"])
        if d.drivers:
            mus = np.array([p[f"beta_{k}"]["mu"] for k in d.drivers])
            sds = np.array([p[f"beta_{k}"]["sigma"] for k in d.drivers])
            if evaluation:
                mus = pm.Data("beta_prior_mu", mus, dims=C.DRIVER)
                sds = pm.Data("beta_prior_sigma", sds, dims=C.DRIVER)
            beta = pm.Normal(C.BETA, mu=mus, sigma=sds, dims=C.DRIVER)
            pm.Deterministic(C.EFFECT_PCT, 100.0 * pt.expm1(beta), dims=C.DRIVER)
            intercept = pm.Deterministic(C.INTERCEPT, level - pt.dot(center, beta))
        else:
            intercept = pm.Deterministic(C.INTERCEPT, level)
        X = x_fixed
        if d.economy_col is not None:
            gdp_mean = _prior(C.GDP_MEAN, p["gdp_mean"])
            gdp_sd = _prior(C.GDP_SD, p["gdp_sd"])
            gdp_true = pm.Normal(C.GDP_TRUE, mu=gdp_mean, sigma=gdp_sd, dims=C.GDP_YEAR)
            if evaluation:
                g_obs = pm.Data("gdp_obs_all", np.nan_to_num(d.gdp_all), dims=C.GDP_YEAR)
                g_sd = pm.Data("gdp_obs_sd_all", d.gdp_sd_all, dims=C.GDP_YEAR)
                g_w = pm.Data("gdp_obs_weight", (~np.isnan(d.gdp_all)).astype(float), dims=C.GDP_YEAR)
                g_lp = pm.logp(pm.Normal.dist(mu=gdp_true, sigma=g_sd), g_obs)
                pm.Potential("gdp_observed", (g_w * g_lp).sum())
            elif len(d.gdp_obs_idx):
                pm.Normal(
                    "gdp_observed",
                    mu=gdp_true[d.gdp_obs_idx],
                    sigma=d.gdp_obs_sd,
                    observed=d.gdp_obs,
                )
            if len(d.gdp_sign_idx):
                # soft known-sign information (2005: "7th straight year of growth")
                z = d.gdp_sign * gdp_true[d.gdp_sign_idx] / config.gdp_sign_softness
                sign_w = pm.Data("gdp_sign_weight", 1.0) if evaluation else 1.0
                pm.Potential("gdp_known_sign", sign_w * pm.logcdf(pm.Normal.dist(0.0, 1.0), z).sum())
            X = pt.set_subtensor(X[:, d.economy_col], gdp_true[d.economy_idx])
        X = pm.Deterministic(C.DRIVER_VALUES, X, dims=(C.YEAR, C.DRIVER))
        latent = _latent(config, len(d.years))
        log_mu = intercept + latent
        if d.drivers:
            log_mu = log_mu + X @ beta
        log_mu = pm.Deterministic(C.LOG_MU, log_mu, dims=C.YEAR)
        mu = pm.Deterministic(C.MU, pt.exp(log_mu), dims=C.YEAR)
        y = pm.Data("arrivals_data", d.y, dims=C.YEAR)
        if config.likelihood == "negative_binomial":
            od = _prior(C.OVERDISPERSION, p["overdispersion"])
            lik = pm.NegativeBinomial.dist(mu=mu, alpha=nb_shape(od))
        else:
            lik = pm.Poisson.dist(mu=mu)
        if evaluation:
            weight = pm.Data("obs_weight", np.ones(len(d.years)), dims=C.YEAR)
            pm.Potential("arrivals_loglik", (weight * pm.logp(lik, y)).sum())
        elif config.likelihood == "negative_binomial":
            pm.NegativeBinomial(C.OBSERVED, mu=mu, alpha=nb_shape(od), observed=y, dims=C.YEAR)
        else:
            pm.Poisson(C.OBSERVED, mu=mu, observed=y, dims=C.YEAR)
    return model


def parameter_names(model: pm.Model) -> list[str]:
    """Names of the free parameters as stored in the posterior (constrained space)."""
    return [rv.name for rv in model.free_RVs]
