"""The PyMC twin of the numpy forecast kernel: the reference the kernel is tested against (tests only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from nkdefections import constants as C
from nkdefections.config import Horizon
from nkdefections.forecast.kernel import check_horizon

if TYPE_CHECKING:  # pragma: no cover
    from nkdefections.model.defection import DefectionModel


#: Upper bound on log expected arrivals a year (about 22 million): beyond it a path is a typo.
MAX_LOG_MU = 17.0


# ----------------------------------------------------------------------------
# The same forecast as a PyMC model (validation and benchmark baseline)
# ----------------------------------------------------------------------------


def build_forecast_model(model: DefectionModel, path: np.ndarray, horizon: Horizon | None = None) -> Any:
    """A PyMC model of one scenario's forecast that reuses the fitted variable names.

    ``path``: (year_future, driver) driver values in calendar years (no uncertainty).
    With ``pm.sample_posterior_predictive(model.idata, var_names=["arrivals_future"])``
    the fitted quantities come from the posterior and the future latent innovations and
    counts are sampled: the reference the numpy kernel is tested against.
    """
    import pymc as pm
    import pytensor.tensor as pt

    horizon = horizon or Horizon()
    check_horizon(int(model.data.attrs["last_year"]), horizon)
    years = horizon.years
    post = model.require_fit().posterior
    coords = {
        C.YEAR: model.design.years,
        C.YEAR_FUTURE: years,
        C.DRIVER: [str(d) for d in post[C.DRIVER].values] if C.DRIVER in post.coords else [],
    }
    if C.GDP_YEAR in post.coords:
        coords[C.GDP_YEAR] = post[C.GDP_YEAR].values
    with pm.Model(coords=coords) as fm:
        intercept = pm.Flat(C.INTERCEPT)
        latent = pm.Flat(C.LATENT, dims=C.YEAR)
        kind = model.config.latent
        rho = pm.Flat(C.RHO) if kind == "ar1" else (1.0 if kind == "random_walk" else 0.0)
        sigma = pm.Flat(C.SIGMA_LATENT) if kind != "none" else 0.0
        beta = pm.Flat(C.BETA, dims=C.DRIVER) if coords[C.DRIVER] else None
        gdp_true = pm.Flat(C.GDP_TRUE, dims=C.GDP_YEAR) if C.GDP_YEAR in coords else None
        eps = pm.Normal("latent_future_innovation", 0.0, 1.0, dims=C.YEAR_FUTURE)
        zs = []
        prev = latent[-1]
        for h in range(len(years)):
            prev = rho * prev + sigma * eps[h]
            zs.append(prev)
        z = pt.stack(zs)
        log_mu = intercept + z
        if beta is not None:
            cols = []
            for d in coords[C.DRIVER]:
                lag = model.config.lags[d]
                col = []
                for h, t in enumerate(years):
                    src = int(t) - lag
                    if src >= years[0]:
                        col.append(pt.as_tensor(float(path[h - lag, C.DRIVERS.index(d)])))
                    elif d == C.ECONOMY and gdp_true is not None:
                        col.append(gdp_true[list(coords[C.GDP_YEAR]).index(src)])
                    else:
                        var = C.BORDER_INDEX if d == C.BORDER else C.SANCTIONS_INDEX
                        col.append(pt.as_tensor(float(model.data[var].sel({C.YEAR: src}))))
                c = pt.stack(col)
                cols.append(pt.log1p(c) if model.config.transforms.get(d, "linear") == "log1p" else c)
            X = pt.stack(cols, axis=1)
            log_mu = log_mu + X @ beta
        mu = pm.Deterministic("mu_future", pt.exp(log_mu), dims=C.YEAR_FUTURE)
        if model.config.likelihood == "negative_binomial":
            od = pm.Flat(C.OVERDISPERSION)
            pm.NegativeBinomial("arrivals_future", mu=mu, alpha=1.0 / od**2, dims=C.YEAR_FUTURE)
        else:
            pm.Poisson("arrivals_future", mu=mu, dims=C.YEAR_FUTURE)
    return fm
