"""Where the width of a backtest forecast comes from: a decomposition of its predictive variance.

A forecast of year ``t`` made at ``origin`` is ``log mu_t = intercept + latent_t + sum_k beta_k f_k(x_k,t)``
over posterior draws, and the count is Poisson (or negative binomial) around ``mu_t``.  Its
log-scale variance is split into three additive terms and their covariance:

``latent_innovation``
    ``latent_t - E[latent_t | latent_origin, rho]``: the shocks of the years after the origin
    (AR(1): ``E = rho^h latent_origin``; random walk: ``E = latent_origin``; no latent: 0).  Given the
    parameters it has mean zero, so it is uncorrelated with the other terms.
``gdp_draws``
    what changes when the GDP growth a forecast draws from the GDP hierarchy (years not yet
    published at the origin, or measured with error) is held at its posterior mean instead.
``parameters``
    the rest: intercept, effects, and the latent state at the origin (posterior uncertainty).
``covariance``
    ``Var(log mu)`` minus the three variances (twice the covariance of parameters and GDP draws,
    plus Monte Carlo noise in the others).

On the count scale, ``count_noise`` is ``E[Var(Y | mu)] / Var(Y)``, the share of the count draws'
variance that the likelihood adds (for Poisson counts near 1,500 this is small).

The spread-error check: ``log_error`` is ``log(y + 1/2) - E[log mu]`` and ``sd_log_mu`` the
forecast's log-scale s.d.; over many forecasts a calibrated forecast has
``rms(log_error) / rms(sd_total)`` near 1 (the total also holds the count noise), above 1 when it
is too narrow and below 1 when too wide.

Whether a miscalibration is established (:func:`pit_dispersion`): under a calibrated forecast the
PIT values are uniform, and the one-step-ahead PITs of successive origins are independent (the
prequential argument: each outcome is drawn given everything the next forecast conditions on).
So at ``h = 1`` the coverage count is Binomial(n, 0.8) and the sum of the PITs' normal scores
squared is chi-square with n degrees of freedom; at longer horizons the forecasts share target
years and their PITs are dependent, and the same numbers are descriptive only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from nkdefections import constants as C
from nkdefections.arithmetic import flatten_draws, nb_shape
from nkdefections.errors import ConfigError

#: PITs are clipped to [PIT_CLIP, 1 - PIT_CLIP] before their normal scores are taken.
PIT_CLIP = 1e-4

#: The decomposition's share columns, in table order.
SHARES: tuple[str, ...] = ("latent_innovation", "parameters", "gdp_draws", "covariance")



def latent_innovation(post, years: Sequence[int], origin: int, targets: Sequence[int], latent: str) -> np.ndarray:
    """(S, H) draws of the latent shocks after ``origin`` up to each target year."""
    years = list(years)
    if latent == "none":
        return np.zeros((post.sizes["chain"] * post.sizes["draw"], len(targets)))
    z = flatten_draws(post[C.LATENT])
    z_o = z[:, years.index(origin)]
    h = np.array([t - origin for t in targets], dtype=float)
    if latent == "ar1":
        mean = flatten_draws(post[C.RHO])[:, None] ** h[None, :] * z_o[:, None]
    elif latent == "random_walk":
        mean = np.broadcast_to(z_o[:, None], (z.shape[0], len(targets)))
    else:
        raise ConfigError(f"variance decomposition: no latent innovation for latent {latent!r}.")
    return z[:, [years.index(t) for t in targets]] - mean


def decompose(
    log_mu: np.ndarray,
    log_mu_gdp_at_mean: np.ndarray,
    innovation: np.ndarray,
    counts: np.ndarray,
    observed: Sequence[int],
    overdispersion: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per target column of ``log_mu`` (S, H): variances, shares, and the realised error.

    ``log_mu_gdp_at_mean`` is the same forecast with the drawn GDP growth held at its posterior
    mean, ``innovation`` the latent shocks after the origin (:func:`latent_innovation`),
    ``counts`` the count draws and ``observed`` the outcomes.
    """
    gdp = log_mu - log_mu_gdp_at_mean
    params = log_mu - innovation - gdp
    mu = np.exp(log_mu)
    noise = mu if overdispersion is None else mu + mu**2 / nb_shape(overdispersion)[:, None]
    rows = []
    for h in range(log_mu.shape[1]):
        total = float(np.var(log_mu[:, h]))
        parts = {
            "latent_innovation": float(np.var(innovation[:, h])),
            "parameters": float(np.var(params[:, h])),
            "gdp_draws": float(np.var(gdp[:, h])),
        }
        parts["covariance"] = total - sum(parts.values())
        var_counts = float(np.var(counts[:, h]))
        y = float(observed[h])
        rows.append(
            {
                "var_log_mu": total,
                **{f"share_{k}": (v / total if total > 0 else np.nan) for k, v in parts.items()},
                "count_noise": float(np.mean(noise[:, h])) / var_counts if var_counts > 0 else np.nan,
                "sd_log_mu": float(np.sqrt(total)),
                # the count noise on the log scale: Var(log Y) ~ Var(log mu) + E[Var(Y|mu) / mu^2]
                "sd_total": float(np.sqrt(total + np.mean(noise[:, h] / mu[:, h] ** 2))),
                "log_error": float(np.log(y + 0.5) - np.mean(log_mu[:, h])),
            }
        )
    return pd.DataFrame(rows)


def spread_error(table: pd.DataFrame, by: Sequence[str] = ("mode", "horizon")) -> pd.DataFrame:
    """Mean shares and the spread-error ratio ``rms(log_error) / rms(sd_total)`` by ``by``."""
    if table.empty:
        raise ConfigError("spread_error: the variance table is empty.")

    def one(g: pd.DataFrame) -> pd.Series:
        out = {f"share_{k}": g[f"share_{k}"].mean() for k in SHARES}
        out["count_noise"] = g["count_noise"].mean()
        out["rms_sd_total"] = float(np.sqrt(np.mean(g["sd_total"] ** 2)))
        out["rms_log_error"] = float(np.sqrt(np.mean(g["log_error"] ** 2)))
        out["error_over_spread"] = out["rms_log_error"] / out["rms_sd_total"]
        out["n"] = len(g)
        return pd.Series(out)

    return table.groupby(list(by)).apply(one, include_groups=False).reset_index()


def pit_dispersion(scores: pd.DataFrame, by: Sequence[str] = ("method", "mode", "horizon")) -> pd.DataFrame:
    """Is a forecast's width wrong beyond chance?  One row per ``by`` group of ``scores``.

    ``scores`` needs ``pit`` and ``covered_80`` (:func:`nkdefections.evaluate.scores.score_forecast`).
    Columns: ``n``; ``coverage_80`` and ``p_coverage_80`` (two-sided binomial test of 0.8);
    ``chi2`` (the sum of the squared normal scores of the PITs, n expected) with ``p_too_wide``
    (its lower tail: spread wider than the errors) and ``p_too_narrow`` (upper tail); and
    ``independent`` (True only at horizon 1, where the tests' independence holds; see the
    module docstring).
    """
    from scipy import stats

    missing = {"pit", "covered_80", *by} - set(scores.columns)
    if missing:
        raise ConfigError(f"pit_dispersion: the scores lack column(s) {sorted(missing)}.")
    if scores.empty:
        raise ConfigError("pit_dispersion: the scores table is empty.")
    rows = []
    for key, g in scores.groupby(list(by), sort=True):
        pit = np.clip(g["pit"].to_numpy(dtype=float), PIT_CLIP, 1.0 - PIT_CLIP)
        if np.isnan(pit).any():
            raise ConfigError(f"pit_dispersion: a PIT in group {key} is missing.")
        keys = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        n, k = len(pit), int(g["covered_80"].astype(bool).sum())
        chi2 = float(np.sum(stats.norm.ppf(pit) ** 2))
        rows.append(
            {
                **keys,
                "n": n,
                "coverage_80": k / n,
                "p_coverage_80": float(stats.binomtest(k, n, 0.8).pvalue),
                "chi2": chi2,
                "p_too_wide": float(stats.chi2.cdf(chi2, n)),
                "p_too_narrow": float(stats.chi2.sf(chi2, n)),
                "independent": bool(keys.get("horizon") == 1),
            }
        )
    return pd.DataFrame(rows)
