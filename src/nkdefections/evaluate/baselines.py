"""Classical baselines for the backtest, fitted on the training years only: numpy/scipy/statsmodels, no PyMC.

Every baseline models the log count ``z_t = log y_t`` and forecasts ``z_{T+h}``, ``h = 1..H``
from the last training year ``T`` (the origin), with a Normal predictive per horizon on the log
scale (:class:`LogPredictive` also carries a Student-t ``df`` for user-supplied fitters).
Available (:data:`BASELINES`):

``no_change``
    Random walk without drift: ``z_{T+h} = z_T + e``, Normal on the log scale.  With the ``m``
    one-year log changes ``d`` of the spread window (below), ``s^2 = sum(d^2) / m`` (mean zero is
    assumed, not estimated) and ``z_{T+h} ~ N(z_T, s^2 h)``.
``rw_drift``
    Random walk with drift, the textbook benchmark (Hyndman & Athanasopoulos, *FPP3* §5.2;
    cf. §5.5, Table 5.2): drift ``b = mean(d)``, ``s^2 = sum((d - b)^2) / (m - 1)``, forecast
    ``z_T + h b`` with variance ``s^2 (h + h^2 / m)`` (``h`` future increments plus
    ``h^2 Var(b) = h^2 s^2 / m``), Normal on the log scale.

Spread window (both random walks).  Only the log changes *into* years after the start-up
(:data:`nkdefections.constants.STARTUP_END`, 2002: the 1999-2002 build-up of arrivals, when the
count grew eightfold) enter ``s`` and ``b``; with fewer than :data:`MIN_CHANGES` such changes in
the training window all changes are used and a warning says so.  Including the start-up would
inflate the spread (``s`` about 0.40-0.46 instead of 0.24-0.30 on the backtest windows) and make
the baseline look worse than it is.  Both are Normal on the log scale, so their CRPS is finite
(a log-Student-t predictive has infinite mean on the count scale).

``ets``
    statsmodels ``ETSModel(error="add", trend="add", damped_trend=True)`` on ``z`` (initial states
    estimated), Normal with the model's forecast mean and exact forecast variance (plug-in: no
    parameter uncertainty).  If the fit raises or returns a non-finite forecast, falls back to
    ``arima``; the fallback is logged and recorded in ``BaselineForecast.method`` and ``.warnings``.
``arima``
    statsmodels ARIMA(1,1,0) with drift (``trend="t"``) on ``z``, Normal with forecast mean and
    standard error (plug-in).

Warnings raised by statsmodels during a fit (e.g. ``ConvergenceWarning``) are caught, logged and
kept in ``BaselineForecast.warnings``, as are estimates on the boundary of the ETS parameter space
(on the short backtest windows the damped ETS often ends at ``smoothing_level ~ 0``, a
deterministic damped trend that ignores the recent observations, with a narrow constant
variance: read its scores with that in mind).

From a log-scale predictive ``F`` to counts
-------------------------------------------
``Y = round(exp(Z))`` (half up), so
``P(Y = y) = F(log(y + 0.5)) - F(log(y - 0.5))`` for ``y >= 1`` and ``P(Y = 0) = F(log 0.5)``;
these sum to one over ``y = 0, 1, ...``.  Draws are ``floor(exp(z) + 0.5)`` of draws ``z ~ F``,
which have exactly this distribution (log draws are capped at :data:`MAX_LOG_DRAW` to stay
within int64).  Draws at different horizons are independent marginal draws, not joint paths.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from nkdefections import constants as C
from nkdefections.errors import ConfigError, ConvergenceError, DataValidationError
from nkdefections.validate import is_whole, whole_valued

log = logging.getLogger(__name__)

#: Fewest training years accepted.
MIN_POINTS = 5
#: Fewest post-start-up log changes the random walks take their spread from.
MIN_CHANGES = 3
#: Log draws are capped here before exponentiating (exp(40) ~ 2.4e17 < int64 max).
MAX_LOG_DRAW = 40.0


class LogPredictive(NamedTuple):
    """A baseline's predictive for ``z_{T+h} = log y_{T+h}``, ``h = 1..H``: ``loc + scale * t_df``."""

    loc: np.ndarray  # shape (H,)
    scale: np.ndarray  # shape (H,)
    df: float  # np.inf: Normal
    method: str  # what was actually fitted
    warnings: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Count kernels for a log-scale location-scale predictive
# ---------------------------------------------------------------------------------------------


def _dist(df: float) -> Any:
    return stats.norm if np.isinf(df) else stats.t(df)


def count_log_pmf(y: Any, loc: Any, scale: Any, df: float) -> np.ndarray:
    """``log P(Y = y)`` for ``Y = round(exp(Z))``, ``Z = loc + scale * T_df`` (Normal if ``df`` is inf).

    Uses the upper-tail survival function above the centre and the CDF below it, in logs, so the
    mass stays accurate far in the tails.  Negative ``y`` has mass 0 (log mass ``-inf``).
    """
    yy = np.asarray(y, dtype=float)
    whole = whole_valued(yy)
    if not whole.all():
        raise DataValidationError(f"counts must be integers, got {yy[~whole][:5].tolist()}")
    loc, scale = np.asarray(loc, dtype=float), np.asarray(scale, dtype=float)
    d = _dist(df)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = (np.log(np.where(yy >= 1, yy - 0.5, 0.0)) - loc) / scale  # -inf for y = 0
        hi = (np.log(np.maximum(yy + 0.5, 0.5)) - loc) / scale
        upper = lo > 0
        a = np.where(upper, d.logsf(lo), d.logcdf(hi))  # the larger tail mass
        b = np.where(upper, d.logsf(hi), d.logcdf(lo))
        out = np.where(a == -np.inf, -np.inf, a + np.log1p(-np.exp(b - a)))
    return np.where(yy < 0, -np.inf, out)


def count_draws(rng: np.random.Generator, loc: Any, scale: Any, df: float, n: int) -> np.ndarray:
    """``n`` count draws per horizon, shape ``(H, n)``, int64: ``floor(exp(z) + 0.5)``."""
    loc, scale = np.asarray(loc, dtype=float)[:, None], np.asarray(scale, dtype=float)[:, None]
    shape = (loc.shape[0], int(n))
    e = rng.standard_normal(shape) if np.isinf(df) else rng.standard_t(df, shape)
    z = np.minimum(loc + scale * e, MAX_LOG_DRAW)
    return np.floor(np.exp(z) + 0.5).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Fitters: log counts (training years) -> LogPredictive
# ---------------------------------------------------------------------------------------------


def _positive_spread(s: float, what: str) -> float:
    if not s > 0:
        raise DataValidationError(f"{what} have zero spread (s = {s}): the predictive would be a point mass")
    return s


def spread_changes(years: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, str | None]:
    """The one-year log changes the random walks take their spread from, and a warning or None.

    The changes into years after :data:`~nkdefections.constants.STARTUP_END`; all changes when
    fewer than :data:`MIN_CHANGES` remain (the warning says so).
    """
    d = np.diff(z)
    keep = np.asarray(years)[1:] > C.STARTUP_END
    if keep.sum() >= MIN_CHANGES:
        return d[keep], None
    return d, (
        f"only {int(keep.sum())} log changes after the start-up ({C.STARTUP_END}) in the training window; "
        f"the spread uses all {d.size}"
    )


def no_change(z: np.ndarray, horizon: int, years: np.ndarray | None = None) -> LogPredictive:
    """Random walk without drift on log counts (see the module docstring)."""
    d, note = spread_changes(np.arange(z.size) if years is None else years, z)
    s = _positive_spread(float(np.sqrt(np.sum(d**2) / d.size)), "the one-year log changes")
    h = np.arange(1, horizon + 1)
    return LogPredictive(np.full(horizon, z[-1]), s * np.sqrt(h), np.inf, "no_change", (note,) if note else ())


def rw_drift(z: np.ndarray, horizon: int, years: np.ndarray | None = None) -> LogPredictive:
    """Random walk with drift on log counts (see the module docstring)."""
    d, note = spread_changes(np.arange(z.size) if years is None else years, z)
    m = d.size
    b = float(d.mean())
    s = _positive_spread(float(np.std(d, ddof=1)), "the one-year log changes around their mean")
    h = np.arange(1, horizon + 1)
    return LogPredictive(z[-1] + h * b, s * np.sqrt(h + h**2 / m), np.inf, "rw_drift", (note,) if note else ())


def _recording(
    fit: Callable[[], tuple[np.ndarray, np.ndarray, list[str]]], label: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Run a statsmodels fit, collecting its warnings (and our notes) as strings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mean, var, notes = fit()
    msgs = [f"{label}: {w.category.__name__}: {w.message}" for w in caught] + [f"{label}: {n}" for n in notes]
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var)) and np.all(var > 0)):
        raise FloatingPointError(f"{label} returned a non-finite forecast (mean {mean}, variance {var})")
    return np.asarray(mean, dtype=float), np.sqrt(np.asarray(var, dtype=float)), msgs


def _ets_fit(z: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    model = ETSModel(pd.Series(z), error="add", trend="add", damped_trend=True)
    res = model.fit(disp=False)
    pred = res.get_prediction(start=z.size, end=z.size + horizon - 1)
    par = dict(zip(model.param_names, np.asarray(res.params), strict=True))
    notes = []
    if not res.mle_retvals.get("converged", True):
        notes.append(f"optimizer did not converge ({res.mle_retvals})")
    if par["smoothing_level"] < 1e-3:
        notes.append(
            f"smoothing_level = {par['smoothing_level']:.1e} at its lower bound: the level never updates, "
            "so the forecast is a deterministic damped trend that ignores recent observations"
        )
    if min(abs(par["damping_trend"] - 0.8), abs(par["damping_trend"] - 0.98)) < 1e-3:
        notes.append(f"damping_trend = {par['damping_trend']:.3f} at a bound of [0.8, 0.98]")
    return np.asarray(pred.predicted_mean), np.asarray(pred.var_pred_mean), notes


def _arima_fit(z: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from statsmodels.tsa.arima.model import ARIMA

    res = ARIMA(pd.Series(z), order=(1, 1, 0), trend="t").fit()
    fc = res.get_forecast(horizon)
    notes = [] if res.mle_retvals.get("converged", True) else [f"optimizer did not converge ({res.mle_retvals})"]
    return np.asarray(fc.predicted_mean), np.asarray(fc.var_pred_mean), notes


def arima(z: np.ndarray, horizon: int, years: np.ndarray | None = None) -> LogPredictive:
    """ARIMA(1,1,0) with drift on log counts, Normal plug-in predictive (see the module docstring)."""
    try:
        loc, scale, msgs = _recording(lambda: _arima_fit(z, horizon), "arima")
    except Exception as exc:  # statsmodels raises many types; report which
        raise ConvergenceError(
            f"ARIMA(1,1,0) with drift failed on {z.size} points: {type(exc).__name__}: {exc}"
        ) from exc
    return LogPredictive(loc, scale, np.inf, "arima", tuple(msgs))


def ets(z: np.ndarray, horizon: int, years: np.ndarray | None = None) -> LogPredictive:
    """Damped additive-trend ETS on log counts, falling back to :func:`arima` (logged) if it fails."""
    try:
        loc, scale, msgs = _recording(lambda: _ets_fit(z, horizon), "ets")
    except Exception as exc:  # statsmodels raises many types; the fallback is recorded, never silent
        reason = f"ets failed on {z.size} points ({type(exc).__name__}: {exc}); fell back to ARIMA(1,1,0) with drift"
        fb = arima(z, horizon)
        return fb._replace(method="arima (fallback from ets)", warnings=(reason, *fb.warnings))
    return LogPredictive(loc, scale, np.inf, "ets", tuple(msgs))


#: Baseline name -> fitter ``(log_counts, horizon, years) -> LogPredictive``.
BASELINES: dict[str, Callable[..., LogPredictive]] = {
    "no_change": no_change,
    "rw_drift": rw_drift,
    "ets": ets,
    "arima": arima,
}


# ---------------------------------------------------------------------------------------------
# The labelled wrapper
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineForecast:
    """A fitted baseline's count forecast for ``origin + 1 .. origin + horizon``.

    ``h`` arguments are horizons 1..H (not years).  ``method`` is what was actually fitted
    (differs from ``name`` after a fallback); ``warnings`` holds everything statsmodels warned
    about plus boundary or fallback notes.
    """

    name: str
    origin: int
    loc: np.ndarray
    scale: np.ndarray
    df: float
    method: str
    warnings: tuple[str, ...] = ()

    @property
    def horizon(self) -> int:
        return int(self.loc.size)

    @property
    def target_years(self) -> np.ndarray:
        return self.origin + np.arange(1, self.horizon + 1)

    def _row(self, h: int) -> int:
        if not 1 <= int(h) <= self.horizon:
            raise ConfigError(f"horizon h = {h} outside 1..{self.horizon} of baseline {self.name!r}")
        return int(h) - 1

    def samples(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Count draws, shape ``(H, n)``, int64 >= 0 (independent per horizon)."""
        return count_draws(rng, self.loc, self.scale, self.df, n)

    def log_pmf(self, h: int, y: Any) -> np.ndarray:
        """``log P(Y_{origin+h} = y)`` (higher is better; the log score is its negative)."""
        i = self._row(h)
        return count_log_pmf(y, self.loc[i], self.scale[i], self.df)

    def median(self, h: int) -> int:
        """Median count at horizon ``h``: ``round(exp(loc))`` (the t is symmetric)."""
        return int(np.floor(np.exp(self.loc[self._row(h)]) + 0.5))


def _validate(years: Any, counts: Any, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    if not is_whole(horizon) or horizon < 1:
        raise ConfigError(f"horizon must be an integer >= 1, got {horizon!r}")
    yrs, y = np.asarray(years, dtype=float), np.asarray(counts, dtype=float)
    if yrs.ndim != 1 or y.shape != yrs.shape:
        raise DataValidationError(f"years and counts must be 1-D of equal length, got shapes {yrs.shape}, {y.shape}")
    if yrs.size < MIN_POINTS:
        raise DataValidationError(f"need at least {MIN_POINTS} training years, got {yrs.size}")
    bad = ~np.isfinite(yrs)
    if bad.any():
        raise DataValidationError(f"years must be finite, got {yrs[bad].tolist()}")
    if np.any(np.diff(yrs) != 1):
        i = int(np.flatnonzero(np.diff(yrs) != 1)[0])
        raise DataValidationError(f"years must be consecutive: {yrs[i]:.0f} is followed by {yrs[i + 1]:g}")
    for yr, c in zip(yrs, y, strict=True):
        if not np.isfinite(c):
            raise DataValidationError(f"count in {yr:.0f} is {c}; baselines need every training year observed")
        if c <= 0:
            raise DataValidationError(f"count in {yr:.0f} is {c:g}; log-scale baselines need counts > 0")
    return yrs.astype(int), y


def fit_baseline(name: str, years: Any, counts: Any, horizon: int) -> BaselineForecast:
    """Fit baseline ``name`` on the training series and forecast ``horizon`` years ahead.

    Parameters
    ----------
    name : str
        One of :data:`BASELINES`.
    years, counts : array_like, shape (n,)
        Consecutive training years (the last is the origin) and their counts (> 0, no NaN).
    horizon : int
        Number of years ahead (>= 1).

    Raises
    ------
    ConfigError
        Unknown ``name`` or bad ``horizon``.
    DataValidationError
        Fewer than :data:`MIN_POINTS` years, NaN, non-positive counts, gaps in ``years``, or
        log changes with zero spread.
    ConvergenceError
        ARIMA (or ETS and its ARIMA fallback) failed.
    """
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; valid options: {', '.join(BASELINES)}")
    yrs, y = _validate(years, counts, horizon)
    pred = BASELINES[name](np.log(y), int(horizon), yrs)
    for msg in pred.warnings:
        log.warning("baseline %s, origin %d: %s", name, yrs[-1], msg)
    return BaselineForecast(name, int(yrs[-1]), pred.loc, pred.scale, pred.df, pred.method, pred.warnings)
