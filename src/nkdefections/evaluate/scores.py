"""Proper scores for count forecasts, used by the rolling-origin backtest: pure numpy/scipy/pandas.

A backtest fits on 1999..origin and forecasts origin+1..origin+3; every (method, mode, origin,
target_year) forecast is scored against the observed count.  Array kernels come first, then the
row and table wrappers.

Orientation
-----------
Every score here is **negatively oriented: lower is better**.

- ``crps``: continuous ranked probability score of the count draws, in arrivals.
- ``crps_log``: the same on the log scale, of ``log(1 + draws)`` against ``log(1 + y)``: a
  relative error, so the large years do not dominate the mean.
- ``log_score``: the negative log predictive probability mass at the observed count,
  ``-log p(y_obs)``, in nats.  Functions named ``log_pmf_*`` (and the ``log_pmf`` argument of
  :func:`score_forecast`) return the positively oriented ``log p(y_obs)``;
  ``log_score = -log_pmf`` everywhere.

Score table schema (one row per forecast, :data:`SCORE_COLUMNS`)
---------------------------------------------------------------
``method, mode, origin, target_year, horizon, observed, median, crps, crps_log, log_score,
pit, covered_50, covered_80, covered_95, width_50, width_80, width_95``
where ``horizon = target_year - origin``, ``mode`` is the scenario mode of a model forecast
(e.g. ``"conditional"``, ``"status_quo"``) or :data:`NO_MODE` for baselines, ``covered_k`` says
whether the observation lies in the central equal-tailed k% interval of the draws (bounds
included) and ``width_k`` is that interval's width in arrivals.  ``pit`` is the mid-PIT of the
count draws, ``P(Y < y) + P(Y = y) / 2`` (the centre of the randomised PIT's interval, so the
table is deterministic): uniform on (0, 1) up to the discreteness of counts for a calibrated
forecast (Czado, Gneiting & Held 2009).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nkdefections.arithmetic import mixture_log_pmf
from nkdefections.errors import ConfigError, DataValidationError
from nkdefections.validate import whole_valued

#: Central interval levels scored by default.
LEVELS: tuple[float, ...] = (0.50, 0.80, 0.95)
#: ``mode`` of forecasts that have no scenario mode (the baselines).
NO_MODE = "-"
#: Columns of the per-forecast score table, in order.
SCORE_COLUMNS: tuple[str, ...] = (
    "method",
    "mode",
    "origin",
    "target_year",
    "horizon",
    "observed",
    "median",
    "crps",
    "crps_log",
    "log_score",
    "pit",
    *(f"covered_{round(p * 100)}" for p in LEVELS),
    *(f"width_{round(p * 100)}" for p in LEVELS),
)
_KEYS = ["method", "mode", "origin", "target_year"]


# ---------------------------------------------------------------------------------------------
# Array kernels (last axis = draws, vectorised over leading axes)
# ---------------------------------------------------------------------------------------------


def _check_samples(samples: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(samples, dtype=float)
    yy = np.asarray(y, dtype=float)
    if s.ndim == 0 or s.shape[-1] < 2:
        raise DataValidationError(f"need at least 2 draws on the last axis of `samples`, got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise DataValidationError(f"`samples` has {int((~np.isfinite(s)).sum())} non-finite draws (NaN or inf)")
    if not np.all(np.isfinite(yy)):
        raise DataValidationError(f"observed value(s) not finite: {yy[~np.isfinite(yy)][:5].tolist()}")
    try:
        np.broadcast_shapes(yy.shape, s.shape[:-1])
    except ValueError:
        raise DataValidationError(
            f"observed shape {yy.shape} does not broadcast against the leading axes {s.shape[:-1]} of `samples`"
        ) from None
    return s, yy


def crps_samples(samples: Any, y: Any, *, fair: bool = True) -> np.ndarray:
    """CRPS of a forecast given by draws (last axis) against observed ``y``; lower is better.

    Parameters
    ----------
    samples : array_like, shape (..., n_draws)
        Draws from the predictive distribution (counts or any real values).
    y : array_like, shape broadcastable to ``samples.shape[:-1]``
        Observed values.
    fair : bool, default True
        ``True``: the fair (unbiased) estimator of ``CRPS(F, y)``, where ``F`` is the distribution
        the draws come from,
        ``E|X - y| - E|X - X'| / 2`` with ``E|X - X'|`` averaged over the ``M (M - 1)`` pairs of
        distinct draws (Ferro 2014; Zamo & Naveau 2018).  ``False``: the CRPS of the empirical
        distribution of the draws (divides by ``M**2``), which overstates ``CRPS(F, y)`` by
        ``E|X - X'| / (2M)`` on average.

    Returns
    -------
    numpy.ndarray
        Shape ``samples.shape[:-1]`` broadcast with ``y`` (0-d for one forecast).

    Notes
    -----
    Why the fair estimator: the draws are a Monte Carlo sample from the predictive distribution,
    not the forecast itself, and methods are scored with different numbers of draws (posterior
    draws for the model, ``n`` draws for a baseline).  The fair estimator removes the
    ``1/M`` bias, so the comparison does not depend on ``M``.  With ``M`` in the thousands the two
    estimators differ by about 0.01%.  Autocorrelated MCMC draws make ``E|X - X'|`` slightly
    too small under either estimator; that bias is of the same negligible order.

    Computed in NumPy from the sorted draws ``x_(1) <= ... <= x_(M)``, in O(M log M):
    ``E|X - X'| / 2 = sum_i (2i - M - 1) x_(i) / D`` with ``D = M (M - 1)`` (fair: the
    probability-weighted-moment form, ``scoringrules.crps_ensemble(estimator="pwm")``) or
    ``D = M**2`` (the energy form, ``estimator="nrg"``).  The test suite checks both against
    ``scoringrules`` (``tests/evaluate/test_evaluate.py``).  Not ``scoringrules`` itself: it
    compiles its numba kernels when imported, about 3 s in every process that scores.
    """
    s, yy = _check_samples(samples, y)
    lead = np.broadcast_shapes(yy.shape, s.shape[:-1])
    yy, s = np.broadcast_to(yy, lead), np.broadcast_to(s, lead + s.shape[-1:])
    m = s.shape[-1]
    x = np.sort(s, axis=-1)
    expected_diff = np.sum(np.abs(yy[..., None] - x), axis=-1) / m
    weights = 2.0 * np.arange(1, m + 1) - m - 1.0  # sum_{i,j} |x_i - x_j| = 2 sum_i (2i - M - 1) x_(i)
    half_spread = np.sum(x * weights, axis=-1) / (m * (m - 1.0) if fair else float(m) ** 2)
    return np.asarray(expected_diff - half_spread, dtype=float)


def _check_counts(y: Any) -> np.ndarray:
    yy = np.asarray(y, dtype=float)
    bad = ~whole_valued(yy) | (yy < 0)
    if bad.any():
        raise DataValidationError(f"observed counts must be non-negative integers, got {yy[bad][:5].tolist()}")
    return yy


def _check_positive(name: str, x: Any) -> np.ndarray:
    xx = np.asarray(x, dtype=float)
    bad = ~np.isfinite(xx) | (xx <= 0)
    if bad.any():
        raise DataValidationError(f"`{name}` must be finite and > 0, got {xx[bad][:5].tolist()}")
    return xx


def log_pmf_poisson_mixture(y: Any, mu_draws: Any) -> np.ndarray:
    """Log posterior predictive mass ``log p(y)`` of a Poisson mixture; higher is better.

    ``p(y) = (1/S) sum_s Poisson(y | mu_s)``, computed exactly as
    ``logsumexp_s log Poisson(y | mu_s) - log S``.

    Parameters
    ----------
    y : array_like of non-negative integers, shape (...)
        Observed counts.
    mu_draws : array_like, shape (..., S)
        Posterior draws of the Poisson mean (last axis = draws).
    """
    yy = _check_counts(y)
    mu = _check_positive("mu_draws", mu_draws)
    return mixture_log_pmf(yy, mu)


def log_pmf_negbin_mixture(y: Any, mu_draws: Any, alpha_draws: Any) -> np.ndarray:
    """Log posterior predictive mass ``log p(y)`` of a negative-binomial mixture; higher is better.

    Parametrised like ``pymc.NegativeBinomial(mu, alpha)``: mean ``mu``, variance
    ``mu + mu**2 / alpha`` (so ``alpha`` is the shape; the model's ``overdispersion`` variable is
    ``1 / sqrt(alpha)``, i.e. ``alpha = 1 / overdispersion**2``).

    Parameters
    ----------
    y : array_like of non-negative integers, shape (...)
    mu_draws : array_like, shape (..., S)
    alpha_draws : array_like, broadcastable to ``mu_draws`` (e.g. shape ``(S,)``)
    """
    yy = _check_counts(y)
    mu = _check_positive("mu_draws", mu_draws)
    alpha = _check_positive("alpha_draws", alpha_draws)
    mu, alpha = np.broadcast_arrays(mu, alpha)
    return mixture_log_pmf(yy, mu, alpha)


def log_score_poisson_mixture(y: Any, mu_draws: Any) -> np.ndarray:
    """Log score ``-log p(y)`` of a Poisson mixture (lower is better); see :func:`log_pmf_poisson_mixture`."""
    return -log_pmf_poisson_mixture(y, mu_draws)


def log_score_negbin_mixture(y: Any, mu_draws: Any, alpha_draws: Any) -> np.ndarray:
    """Log score ``-log p(y)`` of a negative-binomial mixture (lower is better); see :func:`log_pmf_negbin_mixture`."""
    return -log_pmf_negbin_mixture(y, mu_draws, alpha_draws)


def _check_levels(levels: Iterable[float]) -> tuple[float, ...]:
    lv = tuple(float(p) for p in levels)
    if not lv or any(not 0 < p < 1 for p in lv):
        raise ConfigError(f"interval levels must lie strictly between 0 and 1, got {lv}")
    return lv


def interval_metrics(samples: Any, y: Any, levels: Sequence[float] = LEVELS) -> dict[str, np.ndarray]:
    """Coverage and width of equal-tailed central intervals of the draws.

    The k% interval runs from the ``(1 - k)/2`` to the ``(1 + k)/2`` quantile of the draws
    (``numpy.quantile``'s default linear interpolation, as in :mod:`nkdefections.evaluate.checks`);
    ``y`` is covered when ``lower <= y <= upper``.

    Returns
    -------
    dict
        ``covered_{k}`` (bool) and ``width_{k}`` (float) for each level, ``k = round(100 * level)``,
        each of shape ``samples.shape[:-1]`` broadcast with ``y``.
    """
    s, yy = _check_samples(samples, y)
    out: dict[str, np.ndarray] = {}
    for p in _check_levels(levels):
        lo, hi = np.quantile(s, [(1 - p) / 2, (1 + p) / 2], axis=-1)
        k = round(p * 100)
        out[f"covered_{k}"] = (yy >= lo) & (yy <= hi)
        out[f"width_{k}"] = np.broadcast_to(hi - lo, np.broadcast_shapes(yy.shape, lo.shape)).copy()
    return out


# ---------------------------------------------------------------------------------------------
# Rows and tables
# ---------------------------------------------------------------------------------------------


def score_forecast(
    method: str,
    mode: str,
    origin: int,
    target_year: int,
    observed: int,
    samples: Any,
    log_pmf: float,
    levels: Sequence[float] = LEVELS,
) -> dict[str, Any]:
    """Score one forecast; returns one row of the score table (:data:`SCORE_COLUMNS`).

    Parameters
    ----------
    method, mode : str
        Forecast method (``"model"``, ``"rw_drift"``...) and scenario mode (:data:`NO_MODE` for baselines).
    origin, target_year : int
        Last training year and forecast year; ``horizon = target_year - origin`` must be >= 1.
    observed : int
        The observed count in ``target_year``.
    samples : array_like, shape (n_draws,)
        Predictive count draws for ``target_year``.
    log_pmf : float
        ``log p(observed)`` under the forecast (positively oriented, e.g. from
        :func:`log_pmf_negbin_mixture` or ``BaselineForecast.log_pmf``); stored as
        ``log_score = -log_pmf``.
    """
    horizon = int(target_year) - int(origin)
    if horizon < 1:
        raise ConfigError(f"target_year {target_year} must be after origin {origin} ({method}, {mode})")
    s = np.asarray(samples, dtype=float)
    if s.ndim != 1:
        raise DataValidationError(f"`samples` for one forecast must be 1-D (draws), got shape {s.shape}")
    obs = float(_check_counts(observed))
    lp = float(log_pmf)
    if np.isnan(lp) or lp > 1e-9:
        raise DataValidationError(
            f"log_pmf must be a log probability (<= 0), got {lp} ({method}, {mode}, {target_year})"
        )
    row: dict[str, Any] = {
        "method": method,
        "mode": mode,
        "origin": int(origin),
        "target_year": int(target_year),
        "horizon": horizon,
        "observed": int(obs),
        "median": float(np.median(s)),
        "crps": float(crps_samples(s, obs)),
        "crps_log": float(crps_samples(np.log1p(s), np.log1p(obs))),
        "log_score": -lp,
        "pit": mid_pit(s, obs),
    }
    iv = interval_metrics(s, obs, levels)
    row.update({k: bool(v) for k, v in iv.items() if k.startswith("covered_")})
    row.update({k: float(v) for k, v in iv.items() if k.startswith("width_")})
    return row


def mid_pit(samples: Any, y: float) -> float:
    """Mid-PIT of count draws at ``y``: ``mean(s < y) + mean(s == y) / 2``."""
    s = np.asarray(samples, dtype=float)
    return float(np.mean(s < y) + 0.5 * np.mean(s == y))


def scores_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Score rows as a DataFrame: :data:`SCORE_COLUMNS` first, any extra columns after.

    Raises :class:`DataValidationError` on a duplicated (method, mode, origin, target_year).
    """
    df = _check_table(pd.DataFrame(list(rows)))
    first = [c for c in SCORE_COLUMNS if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]].reset_index(drop=True)


def _check_table(df: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in _KEYS + ["horizon", "crps", "log_score"] if c not in df.columns]
    if missing:
        raise DataValidationError(f"score table lacks columns {missing}; build rows with score_forecast()")
    dup = df.duplicated(_KEYS, keep=False)
    if dup.any():
        raise DataValidationError(f"duplicated forecasts in the score table:\n{df.loc[dup, _KEYS].to_string()}")
    return df


def _levels_in(df: pd.DataFrame) -> list[str]:
    return sorted((c.removeprefix("covered_") for c in df.columns if c.startswith("covered_")), key=int)


def summary_by_horizon(df: pd.DataFrame) -> pd.DataFrame:
    """Mean scores, empirical coverage and mean interval widths per (method, mode, horizon).

    Columns: ``method, mode, horizon, n, mean_crps, mean_log_score, [mean_crps_log],
    coverage_{k}..., mean_width_{k}...`` (``coverage_k`` is the fraction of forecasts whose observation fell in
    the k% interval; compare with k/100).  Lower ``mean_crps`` and ``mean_log_score`` are better.
    """
    ks = _levels_in(_check_table(df))
    agg: dict[str, tuple[str, str]] = {
        "n": ("crps", "size"),
        "mean_crps": ("crps", "mean"),
        "mean_log_score": ("log_score", "mean"),
    }
    if "crps_log" in df.columns:
        agg["mean_crps_log"] = ("crps_log", "mean")
    agg |= {f"coverage_{k}": (f"covered_{k}", "mean") for k in ks}
    agg |= {f"mean_width_{k}": (f"width_{k}", "mean") for k in ks}
    out = df.groupby(["method", "mode", "horizon"], sort=True).agg(**agg).reset_index()
    return out.astype({"n": int})


def relative_skill(
    df: pd.DataFrame,
    reference_method: str,
    reference_mode: str,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    interval: float = 0.90,
) -> pd.DataFrame:
    """Paired comparison of one forecast (the *reference*, usually our model) with every other one.

    "Reference" here is the forecast being assessed, i.e. the **numerator**; each row compares it
    with one other (method, mode) at one horizon, over the (origin, target_year) pairs that both
    scored (an inner join; unpaired forecasts are dropped).

    Columns
    -------
    method, mode, horizon
        The other forecast and the horizon.
    n_pairs
        Paired forecasts (at one horizon, one per origin).
    crps_reference, crps_other
        Mean CRPS over the pairs.
    crps_ratio
        ``crps_reference / crps_other``; **< 1 means the reference is better**.
    crps_ratio_lower, crps_ratio_upper
        Paired percentile-bootstrap interval (level ``interval``) of the ratio.
    log_score_diff
        Mean of ``log_score_reference - log_score_other`` (nats); **< 0 means the reference is
        better**.  ``log_score_diff_lower``/``_upper``: its bootstrap interval.
    share_reference_better_crps, share_reference_better_log_score
        Fraction of pairs where the reference scored lower (ties count one half).

    Notes
    -----
    Bootstrap: pairs are resampled with replacement ``n_boot`` times (a fresh
    ``numpy.random.default_rng(seed)`` per row, so every comparison with the same number of pairs
    uses the same resampled indices).  At a fixed horizon there is one pair per origin, so this
    is a bootstrap over origins.  With about 8 origins treat the intervals as rough: the
    percentile bootstrap under-covers at such sizes, and forecasts from neighbouring origins share
    shocks (the h = 2, 3 targets overlap), which the resampling treats as independent.  Intervals
    are NaN with fewer than 2 pairs.
    """
    if not 0 < interval < 1:
        raise ConfigError(f"interval must lie strictly between 0 and 1, got {interval}")
    _check_table(df)
    combos = df[["method", "mode"]].drop_duplicates()
    is_ref = (df["method"] == reference_method) & (df["mode"] == reference_mode)
    if not is_ref.any():
        options = ", ".join(f"({m!r}, {d!r})" for m, d in combos.itertuples(index=False))
        raise ConfigError(f"no forecasts for reference ({reference_method!r}, {reference_mode!r}); have {options}")
    ref = df.loc[is_ref, ["origin", "target_year", "horizon", "crps", "log_score"]]
    alpha = (1 - interval) / 2
    rows = []
    for (method, mode), other in df.loc[~is_ref].groupby(["method", "mode"], sort=True):
        pairs = ref.merge(
            other[["origin", "target_year", "crps", "log_score"]], on=["origin", "target_year"], suffixes=("_r", "_o")
        )
        for h, p in pairs.groupby("horizon", sort=True):
            cr, co = p["crps_r"].to_numpy(), p["crps_o"].to_numpy()
            dl = p["log_score_r"].to_numpy() - p["log_score_o"].to_numpy()
            n = len(p)
            ratio_ci = diff_ci = (np.nan, np.nan)
            if n >= 2:
                ratio_ci = ratio_interval(cr, co, n_boot=n_boot, seed=seed, interval=interval)
                idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))  # the same pairs as the ratio's
                diff_ci = tuple(np.quantile(dl[idx].mean(axis=1), [alpha, 1 - alpha]))
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = cr.mean() / co.mean()
            rows.append(
                {
                    "method": method,
                    "mode": mode,
                    "horizon": int(h),
                    "n_pairs": n,
                    "crps_reference": cr.mean(),
                    "crps_other": co.mean(),
                    "crps_ratio": ratio,
                    "crps_ratio_lower": ratio_ci[0],
                    "crps_ratio_upper": ratio_ci[1],
                    "log_score_diff": dl.mean(),
                    "log_score_diff_lower": diff_ci[0],
                    "log_score_diff_upper": diff_ci[1],
                    "share_reference_better_crps": float(np.mean((cr < co) + 0.5 * (cr == co))),
                    "share_reference_better_log_score": float(np.mean((dl < 0) + 0.5 * (dl == 0))),
                }
            )
    return pd.DataFrame(rows)


def ratio_interval(
    a: Any, b: Any, *, n_boot: int = 2000, seed: int = 0, interval: float = 0.90
) -> tuple[float, float]:
    """Paired percentile-bootstrap interval of ``mean(a) / mean(b)``, resampling the pairs.

    The resampling of :func:`relative_skill` (``numpy.random.default_rng(seed)``, ``n_boot``
    draws of the pair indices), so the same pairs and seed give its interval.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ConfigError(f"ratio_interval: need two paired, non-empty arrays (got {a.shape} and {b.shape}).")
    alpha = (1 - interval) / 2
    idx = np.random.default_rng(seed).integers(0, a.size, size=(n_boot, a.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    lo, hi = np.nanquantile(ratios, [alpha, 1 - alpha])
    return float(lo), float(hi)
