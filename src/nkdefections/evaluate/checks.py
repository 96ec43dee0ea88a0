"""Posterior (and prior) predictive checks on arrays: pure numpy, no PyMC.

``replicated`` is always an array of shape ``(n_draws, n_years)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from nkdefections import constants as C
from nkdefections.arithmetic import draw_counts, latent_step

INTERVALS = (0.50, 0.80, 0.90, 0.95)


def interval_table(
    years: np.ndarray, observed: np.ndarray, replicated: np.ndarray, probs: Sequence[float] = INTERVALS
) -> pd.DataFrame:
    """Per-year median and equal-tailed predictive intervals, with inside/outside flags."""
    rows = {"year": years.astype(int), "observed": observed, "median": np.median(replicated, axis=0)}
    for p in probs:
        lo, hi = np.quantile(replicated, [(1 - p) / 2, 1 - (1 - p) / 2], axis=0)
        k = int(round(p * 100))
        lo_col, hi_col = C.interval_columns(k)
        rows[lo_col], rows[hi_col] = lo, hi
        rows[f"inside_{k}"] = (observed >= lo) & (observed <= hi)
    # randomised PIT for counts: uniform under a calibrated predictive
    rows["pit"] = (replicated < observed).mean(axis=0) + 0.5 * (replicated == observed).mean(axis=0)
    return pd.DataFrame(rows)


def coverage(table: pd.DataFrame, probs: Sequence[float] = INTERVALS) -> pd.DataFrame:
    """Share of years whose observation falls inside each nominal interval."""
    out = []
    for p in probs:
        k = int(round(p * 100))
        out.append({"nominal": p, "empirical": float(table[f"inside_{k}"].mean()), "years": len(table)})
    return pd.DataFrame(out)


def _stat_check(name: str, description: str, observed: float, rep: np.ndarray, prob: float = 0.90) -> dict:
    lo, hi = np.quantile(rep, [(1 - prob) / 2, 1 - (1 - prob) / 2])
    return {
        "check": name,
        "description": description,
        "observed": float(observed),
        "replicated_median": float(np.median(rep)),
        "replicated_lower_90": float(lo),
        "replicated_upper_90": float(hi),
        "p_value": float(min(1.0, 2 * min((rep >= observed).mean(), (rep <= observed).mean()))),
        "reproduced": bool(lo <= observed <= hi),
    }


def shape_checks(years: np.ndarray, observed: np.ndarray, replicated: np.ndarray) -> pd.DataFrame:
    """Does the fit reproduce the known shape of the 1999-2016 series?

    Each check compares a statistic of the observed series with its posterior
    predictive distribution (``reproduced``: the observed value lies in the central
    90% of the replicated values; ``p_value``: two-sided predictive p-value).
    Checks whose years fall outside the window are skipped.
    """
    years = np.asarray(years).astype(int)
    idx = {int(y): i for i, y in enumerate(years)}
    rows = []

    def has(*ys: int) -> bool:
        return all(y in idx for y in ys)

    if has(1999):
        i = idx[1999]
        rows.append(
            _stat_check(
                "digits_1999",
                "1999 has three-digit arrivals (number of digits)",
                len(str(int(observed[i]))),
                np.floor(np.log10(np.maximum(replicated[:, i], 1))) + 1,
            )
        )
    later = [idx[y] for y in range(2002, 2017) if y in idx]
    if has(2002) and later:
        rows.append(
            _stat_check(
                "min_from_2002",
                "four digits from 2002 on (minimum 2002-2016)",
                observed[later].min(),
                replicated[:, later].min(axis=1),
            )
        )
    if has(2009):
        rows.append(
            _stat_check("peak_value", "the peak of the series (2,914 in 2009)", observed.max(), replicated.max(axis=1))
        )
        peak_year = years[np.argmax(replicated, axis=1)]
        p2009 = float((peak_year == 2009).mean())
        near = float((np.abs(peak_year - 2009) <= 1).mean())
        rows.append(
            {
                "check": "peak_year",
                "description": "the peak falls in 2009 (share of replications; +-1 year in p_value column)",
                "observed": 2009.0,
                "replicated_median": float(np.median(peak_year)),
                "replicated_lower_90": float(np.quantile(peak_year, 0.05)),
                "replicated_upper_90": float(np.quantile(peak_year, 0.95)),
                "p_value": near,
                "reproduced": bool(p2009 >= 0.2 or near >= 0.5),
                "share_2009": p2009,
            }
        )
    plateau = [idx[y] for y in (2012, 2013, 2014, 2015) if y in idx]
    if len(plateau) == 4:
        rows.append(
            _stat_check(
                "plateau_2012_2015",
                "about 1,400 a year in 2012-2015 (mean)",
                observed[plateau].mean(),
                replicated[:, plateau].mean(axis=1),
            )
        )
    if has(2015, 2016):
        a, b = idx[2015], idx[2016]
        rows.append(
            _stat_check(
                "rise_2016",
                "the rise in 2016 (2016 minus 2015)",
                observed[b] - observed[a],
                replicated[:, b] - replicated[:, a],
            )
        )
    return pd.DataFrame(rows)


def one_step_replicates(
    log_mu: np.ndarray,
    latent: np.ndarray,
    rho: np.ndarray | None,
    sigma_latent: np.ndarray | None,
    rng: np.random.Generator,
    *,
    kind: str = "ar1",
    overdispersion: np.ndarray | None = None,
) -> np.ndarray:
    """One-step-ahead predictive draws for years 2..T (shape ``(S, T-1)``).

    The in-sample posterior predictive conditions on each year's own latent state,
    which nearly interpolates the data.  Here year ``t``'s latent state is redrawn from
    its dynamics given year ``t-1``'s (``z_t = rho z_{t-1} + sigma e``, or a random
    walk), so the check asks the harder question: is each year plausible given the
    previous one and the drivers?
    """
    S, T = log_mu.shape
    if kind == "none" or sigma_latent is None:
        return draw_counts(np.exp(log_mu[:, 1:]), rng, overdispersion)
    r = np.ones(S) if kind == "random_walk" else np.asarray(rho)
    fixed = log_mu - latent  # intercept + drivers
    z_pred = latent_step(latent[:, :-1], r[:, None], sigma_latent[:, None], rng.standard_normal((S, T - 1)))
    return draw_counts(np.exp(fixed[:, 1:] + z_pred), rng, overdispersion)
