"""Optional blocks of the PyMC graph: the closure term and the female share (``model.by_sex``).

The closure term ``e * log(open_t)`` enters log mu only when a fitted year is closed
(:func:`closure_block`).  The female share (:func:`share_block`):

For fitted year :math:`t` with total :math:`y_t` and, where published, female count :math:`f_t`:

.. math::

    \\operatorname{logit} s_t = a + \\gamma^\\top (x_t - \\bar x) + c \\log o_t + u_t, \\qquad
    u_t = \\rho_s u_{t-1} + \\sigma_s \\epsilon_t, \\qquad
    f_t \\sim \\operatorname{Binomial}(y_t, s_t),

with the drivers :math:`x_t` as they enter the total (the same lags, transforms and latent GDP),
their own effects :math:`\\gamma` on the share, the closure term only when a fitted year's border
was closed (:math:`o_t < 1`), and a stationary AR(1) :math:`u_t` (its first value drawn from the
stationary distribution).  Given the observed totals the share's likelihood is separate from the
totals', so adding the block leaves the totals' posterior as it was; what it adds is the split.
Years without published counts by sex (1999-2001) inform only the totals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from nkdefections import constants as C
from nkdefections.config import ModelConfig
from nkdefections.priors import CLOSURE_ELASTICITY


def closure_block(d: Any) -> Any:
    """``e * log(open_t)`` when a fitted year is closed (``e`` estimated under its documented prior), else None.

    With the shipped data no year is closed, so the graph, and the default fit, are unchanged.
    """
    if not d.closure_observed:
        return None
    c = CLOSURE_ELASTICITY
    e = pm.TruncatedNormal(C.CLOSURE_ELASTICITY, mu=c["mean"], sigma=c["sd"], lower=c["lower"], upper=c["upper"])
    return e * pm.Data("log_open", d.log_open, dims=C.YEAR)


def published(female: np.ndarray) -> np.ndarray:
    """1.0 for the years whose female count is published, else 0.0."""
    return (~np.isnan(np.asarray(female, dtype=float))).astype(float)


def share_block(
    config: ModelConfig,
    design: Any,
    X: Any,
    center: Any,
    y: Any,
    weight: Any | None,
    evaluation: bool,
) -> Any:
    """Add the share's parameters, latent and likelihood to the current model; return ``female_share``.

    ``X`` are the drivers as they enter the totals (year, driver), ``center`` their means, ``y`` the
    totals' data container and ``weight`` the per-year likelihood weights (evaluation mode).
    """
    from nkdefections.model.graph import prior_variable  # the prior families, written once

    d = design
    p = config.priors
    T = len(d.years)
    level = prior_variable(C.SHARE_LEVEL, p["share_level"])
    if d.drivers:
        mus = np.array([p[f"share_beta_{k}"]["mu"] for k in d.drivers])
        sds = np.array([p[f"share_beta_{k}"]["sigma"] for k in d.drivers])
        gamma = pm.Normal(C.SHARE_BETA, mu=mus, sigma=sds, dims=C.DRIVER)
        intercept = pm.Deterministic(C.SHARE_INTERCEPT, level - pt.dot(center, gamma))
        logit = intercept + X @ gamma
    else:
        logit = pm.Deterministic(C.SHARE_INTERCEPT, level) + pt.zeros(T)
    if d.closure_observed:
        c = prior_variable(C.SHARE_CLOSURE, p["share_closure"])
        logit = logit + c * pm.Data("share_log_open", d.log_open, dims=C.YEAR)
    rho = prior_variable(C.RHO_SHARE, p["rho_share"])
    sigma = prior_variable(C.SIGMA_SHARE, p["sigma_share"])
    init = pm.Normal.dist(0.0, sigma / pt.sqrt(1.0 - rho**2))
    u = pm.AR(C.SHARE_LATENT, rho=pt.stack([rho]), sigma=sigma, init_dist=init, steps=T - 1, dims=C.YEAR)
    share = pm.Deterministic(C.FEMALE_SHARE, pm.math.sigmoid(logit + u), dims=C.YEAR)
    pub = published(d.female)
    f = np.nan_to_num(d.female).astype(np.int64)
    if evaluation:
        f_data = pm.Data("female_data", f, dims=C.YEAR)
        f_w = pm.Data("female_weight", pub, dims=C.YEAR)
        lp = pm.logp(pm.Binomial.dist(n=y, p=share), f_data)
        pm.Potential(C.FEMALE_OBSERVED, (weight * f_w * lp).sum())
    else:
        idx = np.flatnonzero(pub)
        pm.Binomial(C.FEMALE_OBSERVED, n=y[idx], p=share[idx], observed=f[idx])
    return share


def share_effects(posterior: Any, config: ModelConfig, prob: float = 0.90) -> Any:
    """The drivers' effects on the female share of a by-sex fit (an empty table without one).

    Per driver: the effect on the logit share per unit (``share_beta``; per doubling of
    ``1 + index`` for a ``log1p`` driver), the same as a change of the share in percentage points
    at the fitted years' mean share (``100 * s(1 - s) * effect``, a local slope), the equal-tailed
    ``prob`` interval of each, and P(effect > 0): does the driver raise the share of women?
    """
    import pandas as pd

    if C.SHARE_BETA not in posterior:
        return pd.DataFrame()
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    low, high = C.interval_columns(round(100 * prob))
    s = posterior[C.FEMALE_SHARE].mean(C.YEAR)
    slope = (s * (1 - s)).values.ravel()
    rows = []
    for drv in posterior[C.DRIVER].values:
        g = posterior[C.SHARE_BETA].sel({C.DRIVER: drv}).values.ravel()
        unit = {C.BORDER: "+1 border index", C.ECONOMY: "+1 pp real GDP growth", C.SANCTIONS: "+1 sanctions index"}
        per = unit[str(drv)]
        if config.transforms.get(str(drv), "linear") == "log1p":
            g = g * np.log(2.0)
            per = f"doubling of 1 + {drv} index"
        pp = 100.0 * slope * g
        rows.append(
            {
                "driver": str(drv),
                "unit": per,
                "logit_median": float(np.median(g)),
                f"logit_{low}": float(np.quantile(g, lo)),
                f"logit_{high}": float(np.quantile(g, hi)),
                "share_pp_median": float(np.median(pp)),
                f"share_pp_{low}": float(np.quantile(pp, lo)),
                f"share_pp_{high}": float(np.quantile(pp, hi)),
                "prob_positive": float((g > 0).mean()),
            }
        )
    return pd.DataFrame(rows)
