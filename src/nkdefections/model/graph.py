"""The default model's design and its PyMC graph (tiers 1 and 2)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from nkdefections import constants as C
from nkdefections.arithmetic import lag_year, nb_shape, transform_driver
from nkdefections.config import ModelConfig
from nkdefections.errors import ConfigError
from nkdefections.model.optional import closure_block, share_block

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
    log_open: np.ndarray  # (T,) log of the observed open-border fraction (0 where open, or no series)
    female: np.ndarray  # (T,) female arrivals where published, NaN elsewhere (the by-sex model)

    @property
    def closure_observed(self) -> bool:
        """Does a fitted year have the border less open than in 1999-2016 (the elasticity is estimated)?"""
        return bool(np.any(self.log_open < 0.0))


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
        raw = data[source[d]].sel({C.YEAR: [lag_year(t, config.lags[d]) for t in years]}).values
        X[:, k] = transform_driver(raw, config.transforms.get(d, "linear"))
    lag_e = config.lags[C.ECONOMY] if C.ECONOMY in drivers else 0
    gdp_years = np.arange(first - lag_e, last + 1)
    gdp = data[C.GDP_GROWTH].sel({C.YEAR: gdp_years}).values
    vintage = data[C.GDP_VINTAGE].sel({C.YEAR: gdp_years}).values
    sign = data[C.GDP_KNOWN_SIGN].sel({C.YEAR: gdp_years}).values
    obs_idx = np.flatnonzero(~np.isnan(gdp))
    sd = np.where(vintage == "latest", config.gdp_latest_sd, config.gdp_first_release_sd)
    sign_idx = np.flatnonzero(sign != 0)
    center = X.mean(axis=0)
    if C.BORDER_OPEN in data:
        log_open = np.log(data[C.BORDER_OPEN].sel({C.YEAR: years}).values.astype(float))
    else:  # data saved before the series existed: every year open
        log_open = np.zeros(len(years))
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
        log_open=log_open,
        female=data[C.FEMALE].sel({C.YEAR: years}).values.astype(float) if C.FEMALE in data else np.nan * y,
    )


# ----------------------------------------------------------------------------
# Tier 2: the PyMC graph
# ----------------------------------------------------------------------------


def prior_variable(name: str, spec: Mapping[str, Any], **kw: Any) -> pt.TensorVariable:
    """The random variable ``name`` with the prior ``spec`` (one of the families of :mod:`nkdefections.priors`)."""
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


def _innovations(config: ModelConfig, name: str, shape: int, first_normal: bool = False) -> Any:
    """Standardised innovations: Normal, or Student-t with the model's ``nu`` (the first one Normal if asked)."""
    if config.innovations == "normal":
        return pm.Normal(name, 0.0, 1.0, shape=shape)
    nu = _nu(config)
    if not first_normal:
        return pm.StudentT(name, nu=nu, mu=0.0, sigma=1.0, shape=shape)
    e0 = pm.Normal(f"{name}_init", 0.0, 1.0)
    rest = pm.StudentT(f"{name}_rest", nu=nu, mu=0.0, sigma=1.0, shape=shape - 1)
    return pt.concatenate([pt.stack([e0]), rest])


def _nu(config: ModelConfig) -> Any:
    model = pm.modelcontext(None)
    return model[C.NU] if C.NU in model.named_vars else prior_variable(C.NU, config.priors["nu"])


def log_normal_cdf(z: Any) -> Any:
    """``log Phi(z)`` with a finite gradient everywhere (the known-sign term of 2005 GDP).

    PyMC's ``pm.logcdf(Normal)`` switches between ``log(erfcx(-z/sqrt 2)/2) - z^2/2`` (z < -1)
    and ``log1p(-erfc(z/sqrt 2)/2)``.  A switch differentiates both branches, and the second
    one is singular where ``erfc(z/sqrt 2)/2`` rounds to 1 (z below about -8.3).  In the
    refit graph that form gave finite values but NaN gradients at points with z near -8.5
    (2005 growth near -4.2 pp at the softness 0.5; one is recorded in
    ``tests/model/nan_gradient_point.json``), even with the term weighted 0 as in SBC, and
    NUTS flagged each such step as divergent (experiments/sbc/results/nan_gradient.md).
    (A bare logcdf compiled on its own did not show the NaN here: it depends on how the
    whole graph is rewritten.)  Here each branch sees its input clipped to its own side of
    -1, so neither branch is ever evaluated where it is singular.
    """
    lower = pt.minimum(z, -1.0)
    upper = pt.maximum(z, -1.0)
    return pt.switch(
        pt.lt(z, -1.0),
        pt.log(pt.erfcx(-lower / np.sqrt(2.0)) / 2.0) - pt.sqr(lower) / 2.0,
        pt.log1p(-pt.erfc(upper / np.sqrt(2.0)) / 2.0),
    )


def startup_mask(years: np.ndarray) -> np.ndarray:
    """1.0 for the years whose change from the year before is a start-up change (<= STARTUP_END)."""
    years = np.asarray(years)
    return ((years <= C.STARTUP_END) & (years > years[0])).astype(float)


def _startup(config: ModelConfig, years: np.ndarray) -> Any:
    """Mean of each year's latent change: the start-up drift in the start-up years, else 0."""
    if not config.startup_drift:
        return np.zeros(len(years))
    delta = prior_variable(C.STARTUP_DRIFT, config.priors["startup_drift"])
    return delta * startup_mask(years)


def _ar_decay(rho: Any, T: int) -> Any:
    """(T, T) matrix of ``rho^(t-s)`` for ``s <= t``, 0 above the diagonal: how z_s carries into z_t."""
    lag = np.subtract.outer(np.arange(T), np.arange(T))
    return pt.where(lag >= 0, rho ** np.maximum(lag, 0), 0.0)


def _latent(config: ModelConfig, T: int, years: np.ndarray | None = None) -> pt.TensorVariable:
    """Latent log-rate deviation z_t (dims ``year``)."""
    p = config.priors
    if config.latent == "none":
        return pm.Deterministic(C.LATENT, pt.zeros(T), dims=C.YEAR)
    sigma = prior_variable(C.SIGMA_LATENT, p["sigma_latent"])
    drift = _startup(config, np.arange(T) if years is None else years)
    if config.latent == "ar1":
        rho = prior_variable(C.RHO, p["rho"])
        s0 = p["latent_init"]["sigma"]
        eps = _innovations(config, C.LATENT_INNOVATION, T, first_normal=True)
        t = np.arange(T)
        scale = pt.concatenate([pt.stack([pt.as_tensor(s0)]), pt.repeat(sigma, T - 1)])
        L = _ar_decay(rho, T) * scale[None, :]
        return pm.Deterministic(C.LATENT, p["latent_init"]["mu"] * rho**t + L @ eps, dims=C.YEAR)
    # random walk anchored at 0 in the first year: the intercept is the first year's level
    eps = _innovations(config, C.LATENT_INNOVATION, T - 1)
    walk = pt.cumsum(sigma * eps + drift[1:])
    return pm.Deterministic(C.LATENT, pt.concatenate([pt.zeros(1), walk]), dims=C.YEAR)


def _gdp_true(d: Design, evaluation: bool, g_obs: Any, g_sd: Any, gdp_mean: Any, gdp_sd: Any, form: str) -> Any:
    """True GDP growth per gdp year, in the form :attr:`ModelConfig.gdp_form` names.

    ``centered``: the values themselves (the ``noncentered`` parameterisation, from which the
    prior is drawn).  ``pinned`` (``log_mu``, what the engine samples): every year with a
    published figure is an offset from that figure in units of its measurement s.d. (0.05 pp
    latest vintage, 1 pp first release), centred at the data, which dominate wherever the
    growth rates' spread ``gdp_sd`` exceeds the measurement s.d.; the years without a figure
    (1998, 2005) are non-centred, ``gdp_mean + gdp_sd * e``.  Both are affine maps of the same
    ``N(gdp_mean, gdp_sd)`` prior: the same model (tested).
    """
    if form == "centered":
        return pm.Normal(C.GDP_TRUE, mu=gdp_mean, sigma=gdp_sd, dims=C.GDP_YEAR)
    pinned = ~np.isnan(d.gdp_all)
    c_idx, nc_idx = np.flatnonzero(pinned), np.flatnonzero(~pinned)
    g = pt.zeros(len(d.gdp_years))
    if len(c_idx):
        u = pm.Flat(C.GDP_PINNED_OFFSET, shape=len(c_idx))
        anchor = g_obs[c_idx] if evaluation else d.gdp_all[c_idx]
        scale = g_sd[c_idx] if evaluation else d.gdp_sd_all[c_idx]
        g_c = anchor + scale * u
        pm.Potential("gdp_true_prior", pm.logp(pm.Normal.dist(gdp_mean, gdp_sd), g_c).sum())
        g = pt.set_subtensor(g[c_idx], g_c)
    if len(nc_idx):
        e = pm.Normal(C.GDP_INNOVATION, 0.0, 1.0, shape=len(nc_idx))
        g = pt.set_subtensor(g[nc_idx], gdp_mean + gdp_sd * e)
    return pm.Deterministic(C.GDP_TRUE, g, dims=C.GDP_YEAR)


def _log_mu_latent(config: ModelConfig, years: np.ndarray, fixed: Any, y: Any, weight: Any) -> Any:
    r"""``parameterization="log_mu"``: log mu_t is the free variable, the latent its residual.

    ``eta_t = log(y_t + 1/2) + xi_t / sqrt(y_t + 1/2)`` (``xi`` = ``log_mu_offset``, flat: a fixed
    affine map that puts each eta_t on the scale its own count pins it to), and the latent is
    the deterministic residual ``z_t = eta_t - fixed_t`` with the AR(1) (or random-walk) density
    on it: exactly the model of the innovation form, whose change of variables eps -> z has the
    constant-in-z Jacobian ``1 / (s0 sigma^(T-1))`` (tested).  Each eta_t is fixed by its own
    count, and (level, beta, rho, sigma) see an AR(1) regression on 18 points at scale sigma.

    ``weight`` (evaluation graph only, else None): a masked year (weight 0) has no count to pin
    it, so there the latent takes the innovation form ``z_t = rho z_{t-1} + sigma eps_t``
    (``eps`` = ``latent_innovation``) and ``xi_t`` is a standard-normal filler.
    """
    p = config.priors
    T = len(years)
    yy = pt.as_tensor(y).astype("float64") + 0.5
    xi = pm.Flat(C.LOG_MU_OFFSET, dims=C.YEAR)
    eta = pt.log(yy) + xi / pt.sqrt(yy)
    sigma = prior_variable(C.SIGMA_LATENT, p["sigma_latent"])
    ar = config.latent == "ar1"
    rho = prior_variable(C.RHO, p["rho"]) if ar else 1.0
    m0, s0 = p["latent_init"]["mu"], p["latent_init"]["sigma"]
    free = eta - fixed
    std = pm.Normal.dist(0.0, 1.0)
    drift = _startup(config, years)

    def step(mean: Any) -> Any:  # the density of z_t given its mean
        if config.innovations == "student_t":
            return pm.StudentT.dist(nu=_nu(config), mu=mean, sigma=sigma)
        return pm.Normal.dist(mean, sigma)

    if weight is None:
        if ar:
            z = free
            lp0 = pm.logp(pm.Normal.dist(m0, s0), z[0])
        else:  # random walk anchored at 0 in the first year: eta_0 is not free there
            z = pt.concatenate([pt.zeros(1), free[1:]])
            lp0 = pm.logp(std, xi[0])
        lp = lp0 + pm.logp(step(rho * z[:-1] + drift[1:]), z[1:]).sum()
        pm.Potential("latent_density", lp)
    else:
        eps = _innovations(config, C.LATENT_INNOVATION, T, first_normal=True)
        # z_t = w_t free_t + (1 - w_t) (rho z_{t-1} + drift_t + sigma eps_t), and z_0 = w_0 free_0 +
        # (1 - w_0) (m0 + s0 eps_0) (AR) or 0 (random walk): a linear recursion z_t = a_t z_{t-1} + b_t,
        # solved in one product z = L b with L[t, s] = rho^(t-s) prod_{s<r<=t} (1 - w_r).  For 0/1 weights
        # (Refitter.fit checks) the product is 1 exactly when no year in (s, t] is pinned, i.e. when the
        # running count of pinned years is the same at s and t.  One matrix product instead of a loop over
        # the years keeps the graph small (the unrolled loop took most of the compile time).
        b0 = weight[0] * free[0] + (1.0 - weight[0]) * (m0 + s0 * eps[0]) if ar else pt.zeros(())
        b_rest = weight[1:] * free[1:] + (1.0 - weight[1:]) * (drift[1:] + sigma * eps[1:])
        b = pt.concatenate([pt.stack([b0]), b_rest])
        pinned_so_far = pt.cumsum(weight)
        L = pt.where(pt.eq(pinned_so_far[:, None], pinned_so_far[None, :]), _ar_decay(rho, T), 0.0)
        z = pt.dot(L, b)
        w0 = weight[0] if ar else 0.0
        lp0 = w0 * pm.logp(pm.Normal.dist(m0, s0), z[0]) + (1.0 - w0) * pm.logp(std, xi[0])
        lp_ar = weight[1:] * pm.logp(step(rho * z[:-1] + drift[1:]), z[1:])
        lp_fill = (1.0 - weight[1:]) * pm.logp(std, xi[1:])
        pm.Potential("latent_density", lp0 + lp_ar.sum() + lp_fill.sum())
    return pm.Deterministic(C.LATENT, z, dims=C.YEAR)


#: Data containers of the evaluation-mode graph (``build_model(..., evaluation=True)``):
#: everything :mod:`nkdefections.model.refit` swaps between refits without recompiling.
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
    "female_data",
    "female_weight",
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
    meant for :class:`nkdefections.model.refit.Refitter`, not for posterior predictive
    sampling.
    """
    config = config or ModelConfig()
    d = design(data, config)
    p = config.priors
    log_mu = config.parameterization == "log_mu" and config.latent != "none"
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
            level = prior_variable(C.LEVEL, p["level"])
        if d.drivers:
            mus = np.array([p[f"beta_{k}"]["mu"] for k in d.drivers])
            sds = np.array([p[f"beta_{k}"]["sigma"] for k in d.drivers])
            if evaluation:
                mus = pm.Data("beta_prior_mu", mus, dims=C.DRIVER)
                sds = pm.Data("beta_prior_sigma", sds, dims=C.DRIVER)
            beta = _beta(config, d.drivers, mus, sds)
            pm.Deterministic(C.EFFECT_PCT, 100.0 * pt.expm1(beta), dims=C.DRIVER)
            intercept = pm.Deterministic(C.INTERCEPT, level - pt.dot(center, beta))
        else:
            intercept = pm.Deterministic(C.INTERCEPT, level)
        X = x_fixed
        if d.economy_col is not None:
            gdp_mean = prior_variable(C.GDP_MEAN, p["gdp_mean"])
            gdp_sd = prior_variable(C.GDP_SD, p["gdp_sd"])
            g_obs = g_sd = None
            if evaluation:
                g_obs = pm.Data("gdp_obs_all", np.nan_to_num(d.gdp_all), dims=C.GDP_YEAR)
                g_sd = pm.Data("gdp_obs_sd_all", d.gdp_sd_all, dims=C.GDP_YEAR)
            gdp_true = _gdp_true(d, evaluation, g_obs, g_sd, gdp_mean, gdp_sd, config.gdp_form)
            if evaluation:
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
                pm.Potential("gdp_known_sign", sign_w * log_normal_cdf(z).sum())
            X = pt.set_subtensor(X[:, d.economy_col], gdp_true[d.economy_idx])
        X = pm.Deterministic(C.DRIVER_VALUES, X, dims=(C.YEAR, C.DRIVER))
        y = pm.Data("arrivals_data", d.y, dims=C.YEAR)
        weight = pm.Data("obs_weight", np.ones(len(d.years)), dims=C.YEAR) if evaluation else None
        closure = closure_block(d)
        if log_mu:
            fixed = intercept + X @ beta if d.drivers else intercept + pt.zeros(len(d.years))
            if closure is not None:
                fixed = fixed + closure
            latent = _log_mu_latent(config, d.years, fixed, y, weight)
            log_mu_t = fixed + latent
        else:
            latent = _latent(config, len(d.years), d.years)
            log_mu_t = intercept + latent
            if d.drivers:
                log_mu_t = log_mu_t + X @ beta
            if closure is not None:
                log_mu_t = log_mu_t + closure
        log_mu_t = pm.Deterministic(C.LOG_MU, log_mu_t, dims=C.YEAR)
        mu = pm.Deterministic(C.MU, pt.exp(log_mu_t), dims=C.YEAR)
        if config.by_sex:
            share_block(config, d, X, center, y, weight, evaluation)
        _likelihood(config, mu, y, weight, evaluation)
    return model


def _likelihood(config: ModelConfig, mu: Any, y: Any, weight: Any, evaluation: bool) -> None:
    """The counts' likelihood: Poisson or negative binomial; weighted Potentials in evaluation mode."""
    p = config.priors
    if config.likelihood == "negative_binomial":
        od = prior_variable(C.OVERDISPERSION, p["overdispersion"])
        lik = pm.NegativeBinomial.dist(mu=mu, alpha=nb_shape(od))
    else:
        lik = pm.Poisson.dist(mu=mu)
    if evaluation:
        pm.Potential("arrivals_loglik", (weight * pm.logp(lik, y)).sum())
    elif config.likelihood == "negative_binomial":
        pm.NegativeBinomial(C.OBSERVED, mu=mu, alpha=nb_shape(od), observed=y, dims=C.YEAR)
    else:
        pm.Poisson(C.OBSERVED, mu=mu, observed=y, dims=C.YEAR)


def _beta(config: ModelConfig, drivers: tuple[str, ...], mus: Any, sds: Any) -> Any:
    """The driver effects: one Normal vector, or per driver with a sign constraint as a truncated normal."""
    if not any(d in config.signs for d in drivers):
        return pm.Normal(C.BETA, mu=mus, sigma=sds, dims=C.DRIVER)
    parts = []
    for k, drv in enumerate(drivers):
        sign = config.signs.get(drv)
        name = f"{C.BETA}_{drv}"
        if sign is None:
            parts.append(pm.Normal(name, mu=mus[k], sigma=sds[k]))
        else:
            bound = {"upper": 0.0} if sign == "nonpositive" else {"lower": 0.0}
            parts.append(pm.TruncatedNormal(name, mu=mus[k], sigma=sds[k], **bound))
    return pm.Deterministic(C.BETA, pt.stack(parts), dims=C.DRIVER)


def parameter_names(model: pm.Model) -> list[str]:
    """Names of the free parameters as stored in the posterior (constrained space)."""
    return [rv.name for rv in model.free_RVs]


def generative_model(data: xr.Dataset, config: ModelConfig) -> pm.Model:
    """The same model in a form PyMC can draw from its prior (``log_mu`` has flat free variables).

    ``parameterization="log_mu"`` is an exact change of variables of the innovation form, so
    the prior and prior predictive are drawn from the ``noncentered`` graph.
    """
    if config.parameterization == "log_mu":
        config = dataclasses.replace(config, parameterization="noncentered")
    return build_model(data, config)


def ranked_parameters(model: pm.Model, config: ModelConfig) -> list[str]:
    """The named quantities whose posterior SBC ranks and the gate reads, in graph order.

    The free parameters, except that under ``log_mu`` the offsets (defined only relative to
    the data) are replaced by what they stand for: ``gdp_true`` and the ``latent`` states.
    """
    names = parameter_names(model)
    if config.parameterization != "log_mu":
        gdp_offsets = {C.GDP_PINNED_OFFSET, C.GDP_INNOVATION}
        if not gdp_offsets & set(names):
            return names
        # a non-centred GDP block: rank the values its offsets stand for (same names in every form)
        return [n for n in names if n not in gdp_offsets] + [C.GDP_TRUE]
    offsets = {
        C.LOG_MU_OFFSET,
        C.GDP_PINNED_OFFSET,
        C.GDP_INNOVATION,
        C.LATENT_INNOVATION,
        f"{C.LATENT_INNOVATION}_init",
        f"{C.LATENT_INNOVATION}_rest",
    }
    out = [n for n in names if n not in offsets]
    out += [n for n in (C.GDP_TRUE, C.LATENT) if n in model.named_vars and n not in out]
    return out
