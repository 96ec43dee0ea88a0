"""The by-sex model's female share, backtested: fit on ..origin, forecast the share, score the women.

For each origin the by-sex model is refitted with every count (totals and women) after the
origin masked, as in :func:`nkdefections.evaluate.backtest.run_backtest`.  In the masked years
the share's latent runs on under its prior, so the posterior of ``female_share`` there is the
forecast of the share given the drivers as they turned out (the conditional mode).  The women
of a target year are then forecast *given its observed total*, ``Binomial(total, share)``:
that isolates the share's calibration from the totals' (which the totals' backtest scores).
The reference is the share held at its last observed value (``share_no_change``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from nkdefections import constants as C
from nkdefections.arithmetic import flatten_draws
from nkdefections.config import ModelConfig, SamplerConfig
from nkdefections.errors import ConfigError
from nkdefections.evaluate import scores as E
from nkdefections.evaluate.backtest import DEFAULT_HORIZONS, DEFAULT_ORIGINS, GDP_PUBLICATION_LAG

#: The method names in the score table.
MODEL, NO_CHANGE = "by_sex", "share_no_change"


def run_share_backtest(
    *,
    origins: Sequence[int] = DEFAULT_ORIGINS,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    sampler: SamplerConfig | None = None,
    seed: int = 2017,
    refitter: Any = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score the share's forecasts of the women at every origin and horizon.

    Returns the score table (:func:`nkdefections.evaluate.scores.scores_frame`, methods
    ``by_sex`` and ``share_no_change``, mode ``conditional``) and one row per refit (gate).
    """
    from nkdefections.model.refit import Refitter

    t0 = time.perf_counter()
    config = ModelConfig(name="by_sex", by_sex=True)
    refitter = refitter or Refitter(config, sampler=sampler or SamplerConfig(progressbar=False))
    if not refitter.config.by_sex:
        raise ConfigError("share backtest: the refitter's model has no female share (model.by_sex).")
    d = refitter.design
    years = [int(y) for y in d.years]
    last = years[-1]
    rows, fits = [], []
    for origin in origins:
        if origin not in years or np.isnan(d.female[years.index(origin)]):
            raise ConfigError(f"share backtest: origin {origin} has no published female count to start from.")
        rng = np.random.default_rng([seed, origin])
        targets = [origin + h for h in horizons if origin + h <= last]
        fit = refitter.fit(refitter.inputs(origin=origin, gdp_publication_lag=GDP_PUBLICATION_LAG), seed=seed + origin)
        fits.append({"origin": origin, "seconds": fit.seconds, **fit.convergence.summary_row()})
        share = flatten_draws(fit.posterior[C.FEMALE_SHARE])
        s0 = d.female[years.index(origin)] / d.y[years.index(origin)]
        for t in targets:
            i = years.index(t)
            n, f = int(d.y[i]), d.female[i]
            if np.isnan(f):
                continue
            s = share[:, i]
            draws = rng.binomial(n, s)
            lp = float(special.logsumexp(stats.binom.logpmf(int(f), n, s)) - np.log(len(s)))
            rows.append(E.score_forecast(MODEL, "conditional", origin, t, int(f), draws, lp))
            ref = rng.binomial(n, s0, size=len(s))
            rows.append(
                E.score_forecast(
                    NO_CHANGE, "conditional", origin, t, int(f), ref, float(stats.binom.logpmf(int(f), n, s0))
                )
            )
    fits_df = pd.DataFrame(fits)
    fits_df.attrs["seconds"] = time.perf_counter() - t0
    return E.scores_frame(rows), fits_df
