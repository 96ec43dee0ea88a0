"""Prior sensitivity of each driver effect, by exact refits with widened and narrowed priors.

For each driver the prior s.d. of its effect (``beta_<driver>``) is multiplied by
each factor (default 0.5 and 2) with every other prior kept, and the model is
refitted on the full window with the same compiled graph
(:class:`~nkdefections.model.refit.Refitter`).  Reported per driver and factor: the
posterior median and 90% interval of the effect (% change per unit), the shift of
the median in units of the reference posterior s.d., the ratio of interval widths,
and P(effect < 0).  The reference fit also gives the prior-to-posterior contraction
``1 - var_post / var_prior`` of each effect.

Reading the table: a conclusion "comes from the data" when halving and doubling the
prior s.d. move the median by well under one posterior s.d. and barely change the
interval; it "comes from the prior" when the interval follows the prior's width
(contraction near 0, width ratio near the factor).  The verdict column says
``data-dominated`` or ``magnitude prior-sensitive`` (median shift of at least
:data:`SHIFT_TOL` s.d. or width ratio outside 1/:data:`WIDTH_TOL`..:data:`WIDTH_TOL`),
and whether the sign is robust (P(effect < 0) at least 0.9, or at most 0.1, in
every refit).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from nkdefections import constants as C
from nkdefections.config import ModelConfig, SamplerConfig
from nkdefections.errors import ConfigError
from nkdefections.model.refit import RefitResult, Refitter
from nkdefections.validate import is_real

#: A median shift below this many reference posterior s.d. and a width ratio within
#: [1/WIDTH_TOL, WIDTH_TOL] for every factor counts as "data-dominated".
SHIFT_TOL = 0.25
WIDTH_TOL = 1.25


def _effect_summary(fit: RefitResult, driver: str) -> dict[str, float]:
    pct = fit.posterior[C.EFFECT_PCT].sel({C.DRIVER: driver}).values.ravel()
    beta = fit.posterior[C.BETA].sel({C.DRIVER: driver}).values.ravel()
    lo, hi = np.quantile(pct, [0.05, 0.95])
    return {
        "median_pct": float(np.median(pct)),
        "q05_pct": float(lo),
        "q95_pct": float(hi),
        "prob_negative": float((pct < 0).mean()),
        "beta_median": float(np.median(beta)),
        "beta_sd": float(beta.std(ddof=1)),
    }


def prior_sensitivity(
    config: ModelConfig | None = None,
    *,
    factors: Sequence[float] = (0.5, 2.0),
    sampler: SamplerConfig | None = None,
    seed: int = 2016,
    refitter: Refitter | None = None,
) -> pd.DataFrame:
    """Refit with each driver's effect prior s.d. scaled by each factor; one row per (driver, factor).

    The rows with ``factor == 1`` are the reference fit.  Columns: driver, factor,
    prior_sd, median_pct, q05_pct, q95_pct, prob_negative, beta_median, beta_sd,
    shift_sd (median shift in reference posterior s.d.), width_ratio (90% interval
    width relative to the reference), contraction (reference rows), verdict, and
    the refit's convergence (passed, divergences).
    """
    factors = list(factors)
    if not factors:
        raise ConfigError("sensitivity factors: none given; e.g. (0.5, 2.0) halves and doubles each prior s.d.")
    for f in factors:
        if not is_real(f, finite=True) or f <= 0 or f == 1:
            raise ConfigError(
                f"sensitivity factors: {f!r} must be a positive number other than 1 (1 is the reference fit)."
            )
    if len(set(factors)) != len(factors):
        raise ConfigError(f"sensitivity factors: {factors} repeats a factor.")
    if refitter is not None and config is not None and refitter.config != config:
        raise ConfigError("prior_sensitivity: `config` differs from the refitter's model; pass one or the other.")
    r = refitter or Refitter(config, sampler=sampler or SamplerConfig(progressbar=False))
    priors = r.config.priors
    ref = r.fit(r.inputs(), seed=seed)
    rows = []
    for drv in r.design.drivers:
        prior = priors[f"beta_{drv}"]
        base = _effect_summary(ref, drv)
        rows.append(
            {
                "driver": drv,
                "factor": 1.0,
                "prior_sd": prior["sigma"],
                **base,
                "shift_sd": 0.0,
                "width_ratio": 1.0,
                "contraction": 1.0 - base["beta_sd"] ** 2 / prior["sigma"] ** 2,
                "passed": ref.convergence.passed,
                "divergences": ref.convergence.summary_row()["divergences"],
            }
        )
        for f in factors:
            sd = prior["sigma"] * f
            fit = r.fit(r.inputs(priors={f"beta_{drv}": {"mu": prior["mu"], "sigma": sd}}), seed=seed)
            s = _effect_summary(fit, drv)
            rows.append(
                {
                    "driver": drv,
                    "factor": float(f),
                    "prior_sd": sd,
                    **s,
                    "shift_sd": (s["beta_median"] - base["beta_median"]) / base["beta_sd"],
                    "width_ratio": (s["q95_pct"] - s["q05_pct"]) / (base["q95_pct"] - base["q05_pct"]),
                    "contraction": 1.0 - s["beta_sd"] ** 2 / sd**2,
                    "passed": fit.convergence.passed,
                    "divergences": fit.convergence.summary_row()["divergences"],
                }
            )
    table = pd.DataFrame(rows)
    verdicts = {}
    for drv, g in table.groupby("driver", sort=False):
        moved = g[g["factor"] != 1.0]
        stable = (moved["shift_sd"].abs() < SHIFT_TOL).all() and moved["width_ratio"].between(
            1 / WIDTH_TOL, WIDTH_TOL
        ).all()
        p_neg = g["prob_negative"]
        sign = "sign robust" if (p_neg >= 0.9).all() or (p_neg <= 0.1).all() else "sign uncertain"
        verdicts[drv] = ("data-dominated" if stable else "magnitude prior-sensitive") + f", {sign}"
    table["verdict"] = table["driver"].map(verdicts)
    return table
