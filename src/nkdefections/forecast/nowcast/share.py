"""Nowcast kernels: the share-of-year curve, its fit to the historical pairs, and pmf scores."""

from __future__ import annotations

import calendar
import datetime as _dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import expit, gammaln

from nkdefections import constants as C
from nkdefections.data.load import load_data
from nkdefections.data.tables import FILE_ROLES, default_data_dir, read_manifest, read_table
from nkdefections.errors import DataValidationError
from nkdefections.validate import is_whole

if TYPE_CHECKING:  # pragma: no cover
    pass

#: Dimension of the resampled draws of a nowcast.


SAMPLE = "sample"
#: Grid dimensions of the full-year and next-year predictive probability mass functions.
N_FULL = "n_full"
N_NEXT = "n_next"
#: Central intervals reported by :func:`nowcast_summary`.
INTERVALS: tuple[float, ...] = (0.50, 0.80, 0.95)
PRIORS = ("model", "loguniform")

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAY_IN_LABEL = re.compile(r"(?:" + "|".join(MONTHS) + r")\s*(\d{1,2})\s*$")
_MID_MONTH_DEFAULT_DAY = 15

#: Weak priors of the share curve: a ~ N(0, 1), log b ~ N(0, 0.5), log kappa ~ N(5, 2).
SHARE_PRIORS: dict[str, tuple[float, float]] = {"a": (0.0, 1.0), "log_b": (0.0, 0.5), "log_kappa": (5.0, 2.0)}


# ----------------------------------------------------------------------------
# Pure kernels
# ----------------------------------------------------------------------------


def year_fraction(year: int, month_end: int, day: int | None = None) -> float:
    """Fraction of calendar ``year`` elapsed at the end of ``day`` of ``month_end``.

    ``day=None`` means the end of the month.  Counts days, so leap years and
    mid-month periods ("Jan-Sep 15": 258/365) are exact.
    """
    check_month_day(month_end, day)
    last = calendar.monthrange(year, month_end)[1]
    d = last if day is None else day
    if d > last:
        raise DataValidationError(f"day: {d} is after the last day ({last}) of month {month_end} of {year}.")
    elapsed = (_dt.date(year, month_end, d) - _dt.date(year, 1, 1)).days + 1
    return elapsed / (366 if calendar.isleap(year) else 365)


def share_curve(fraction: np.ndarray | float, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """Expected share of the year's arrivals by ``fraction`` of the year: ``logit s = a + b logit f``."""
    f = np.clip(np.asarray(fraction, dtype=float), 1e-12, 1 - 1e-12)
    return expit(np.asarray(a) + np.asarray(b) * np.log(f / (1 - f)))


def betabinom_logpmf(x: np.ndarray | float, n: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Log pmf of the beta-binomial, broadcasting; ``-inf`` where ``x > n`` or ``x < 0``."""
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    alpha = np.asarray(alpha, dtype=float)
    beta = np.asarray(beta, dtype=float)
    ok = (x >= 0) & (x <= n)
    xs, ns = np.where(ok, x, 0.0), np.where(ok, n, 0.0)
    out = (
        gammaln(ns + 1)
        - gammaln(xs + 1)
        - gammaln(ns - xs + 1)
        + gammaln(xs + alpha)
        + gammaln(ns - xs + beta)
        - gammaln(ns + alpha + beta)
        + gammaln(alpha + beta)
        - gammaln(alpha)
        - gammaln(beta)
    )
    return np.where(ok, out, -np.inf)


def binom_logpmf(x: np.ndarray | float, n: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Log pmf of the binomial (the ``kappa -> inf`` limit), broadcasting."""
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    ok = (x >= 0) & (x <= n)
    xs, ns = np.where(ok, x, 0.0), np.where(ok, n, 0.0)
    s = np.asarray(s, dtype=float)
    out = gammaln(ns + 1) - gammaln(xs + 1) - gammaln(ns - xs + 1) + xs * np.log(s) + (ns - xs) * np.log1p(-s)
    return np.where(ok, out, -np.inf)


def partial_loglik(
    x: int | np.ndarray,
    n: np.ndarray,
    fraction: float | np.ndarray,
    a: np.ndarray | float,
    b: np.ndarray | float,
    kappa: np.ndarray | float | None,
) -> np.ndarray:
    """``log p(x | N = n)`` of a partial count under the share curve; ``kappa=None`` is binomial."""
    s = share_curve(fraction, a, b)
    if kappa is None:
        return binom_logpmf(x, n, s)
    kappa = np.asarray(kappa, dtype=float)
    return betabinom_logpmf(x, n, kappa * s, kappa * (1 - s))


def partial_loglik_grid(
    x: int,
    grid: np.ndarray,
    fraction: float,
    a: np.ndarray,
    b: np.ndarray,
    kappa: np.ndarray | None,
) -> np.ndarray:
    """:func:`partial_loglik` of one count ``x`` for draws ``a, b, kappa`` (S,) and full counts ``grid`` (G,): (S, G).

    The same log pmf, with the terms that depend on the grid alone or on the draw alone
    computed once on their (G,) or (S,) vectors; only the two mixed ``gammaln`` terms
    (one product for the binomial) run on the (S, G) array. ``-inf`` where ``grid < x``.
    """
    n = np.asarray(grid, dtype=float)
    ok = n >= x
    ns = np.where(ok, n, float(x))
    on_grid = np.where(ok, gammaln(ns + 1) - gammaln(ns - x + 1), -np.inf)[None, :]
    s = share_curve(fraction, np.asarray(a, dtype=float), np.asarray(b, dtype=float))[:, None]
    if kappa is None:
        return on_grid + (x * np.log(s) - gammaln(x + 1.0)) + (ns - x)[None, :] * np.log1p(-s)
    k = np.asarray(kappa, dtype=float)[:, None]
    alpha, beta = k * s, k * (1 - s)
    on_draw = gammaln(x + alpha) + gammaln(alpha + beta) - gammaln(alpha) - gammaln(beta) - gammaln(x + 1.0)
    return on_grid + on_draw + gammaln((ns - x)[None, :] + beta) - gammaln(ns[None, :] + alpha + beta)


def naive_estimate(partial_count: float, fraction: float) -> float:
    """Scale up in proportion to time: ``x / f`` (``x * 12 / m`` for whole months, up to day counts)."""
    return float(partial_count) / float(fraction)


def pmf_quantile(grid: np.ndarray, pmf: np.ndarray, q: float | Sequence[float]) -> np.ndarray:
    """Quantile(s) of a pmf on an integer grid (the smallest ``n`` with ``F(n) >= q``)."""
    cdf = np.cumsum(pmf) / pmf.sum()
    idx = np.searchsorted(cdf, np.atleast_1d(np.asarray(q, dtype=float)) - 1e-12, side="left")
    return grid[np.minimum(idx, len(grid) - 1)].astype(float)


def pmf_pit(grid: np.ndarray, pmf: np.ndarray, y: float) -> float:
    """Mid-PIT of an observed count: ``P(N < y) + P(N = y) / 2`` (uniform under calibration)."""
    p = pmf / pmf.sum()
    return float(p[grid < y].sum() + 0.5 * p[grid == y].sum())


def pmf_crps(grid: np.ndarray, pmf: np.ndarray, y: float) -> float:
    """Exact CRPS of a count distribution on a contiguous integer grid (lower is better)."""
    p = pmf / pmf.sum()
    cdf = np.cumsum(p)
    below = float(max(0, grid[0] - y)) if y < grid[0] else 0.0  # F = 0 on [y, grid[0]) contributes (0-1)^2
    above = float(max(0, y - grid[-1] - 1)) if y > grid[-1] else 0.0  # F = 1 on (grid[-1], y) contributes 1
    return float(np.sum((cdf - (grid >= y)) ** 2) + below + above)


def ess(weights: np.ndarray) -> float:
    """Kish effective sample size of (unnormalised) importance weights."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / np.sum(w**2))


def systematic_resample(weights: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn in proportion to ``weights`` by systematic resampling."""
    w = np.asarray(weights, dtype=float)
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    u = (rng.uniform() + np.arange(size)) / size
    return np.searchsorted(cdf, u, side="left")


# ----------------------------------------------------------------------------
# The historical pairs and the share curve
# ----------------------------------------------------------------------------


def check_month_day(month_end: Any, day: Any) -> None:
    if not is_whole(month_end):
        raise DataValidationError(
            f"month_end: {month_end!r} is not a whole month number; give 1..12 (6 = end of June)."
        )
    if not 1 <= int(month_end) <= 12:
        raise DataValidationError(
            f"month_end: {month_end} is not in 1..12 (the partial period runs January-month_end)."
        )
    if day is not None:
        if not is_whole(day) or not 1 <= int(day) <= 31:
            raise DataValidationError(f"day: {day!r} is not a day of the month (1..31); omit it for the month's end.")


def share_pairs(data_dir: str | Path | None = None) -> pd.DataFrame:
    """The historical (partial, final) pairs with the elapsed fraction of each partial period.

    Reads ``raw/arrivals_partial_year.csv`` (checked against the manifest, for
    ``ends_mid_month``) and the final counts of :func:`~nkdefections.data.load_data`.
    A period flagged ``ends_mid_month`` takes its day from the label ("Jan-Sep15" ->
    15), or the 15th if the label names none.  Years without a final count are dropped.

    Returns
    -------
    pandas.DataFrame
        ``year, period, month_end, day, fraction, partial, final, share``, one row per
        partial figure.
    """
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    specs = read_manifest(data_dir)
    rel = FILE_ROLES["partial"]
    table = read_table(data_dir / rel, specs[rel])
    ds = load_data(dir=data_dir)
    finals = dict(zip(ds[C.YEAR].values.astype(int), ds[C.ARRIVALS].values, strict=True))
    rows = []
    for r in table.itertuples(index=False):
        year = int(r.year)
        final = finals.get(year, np.nan)
        if not np.isfinite(final):
            continue
        day = None
        if r.ends_mid_month == "yes":
            found = _DAY_IN_LABEL.search(str(r.period))
            day = int(found.group(1)) if found else _MID_MONTH_DEFAULT_DAY
        frac = year_fraction(year, int(r.month_end), day)
        rows.append(
            {
                "year": year,
                "period": str(r.period),
                "month_end": int(r.month_end),
                "day": day,
                "fraction": frac,
                "partial": int(r.arrivals),
                "final": int(final),
                "share": int(r.arrivals) / int(final),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ShareFit:
    """Posterior draws of the share curve ``(a, b, kappa)``.

    ``kappa`` is ``None`` for the binomial variant (no year-to-year variation).
    """

    a: np.ndarray
    b: np.ndarray
    kappa: np.ndarray | None
    excluded_years: tuple[int, ...]
    years: tuple[int, ...]
    n_pairs: int
    ess: float
    mode: dict[str, float] = field(default_factory=dict)

    def expected_share(self, fraction: float) -> np.ndarray:
        """Draws of ``s(f)``, the expected share by ``fraction`` of the year."""
        return share_curve(fraction, self.a, self.b)

    def take(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``size`` draws of ``(a, b, kappa)`` (cycled with a random offset if fewer are stored)."""
        idx = (rng.integers(len(self.a)) + np.arange(size)) % len(self.a)
        return self.a[idx], self.b[idx], None if self.kappa is None else self.kappa[idx]


def _share_logpost(
    theta: np.ndarray, x: np.ndarray, n: np.ndarray, f: np.ndarray, w: np.ndarray, od: bool
) -> np.ndarray:
    """Weighted log posterior of ``theta = (a, log b[, log kappa])``, vectorised over leading dims."""
    theta = np.atleast_2d(theta)
    a, b = theta[:, :1], np.exp(theta[:, 1:2])
    kappa = np.exp(theta[:, 2:3]) if od else None
    ll = (w * partial_loglik(x, n, f, a, b, kappa)).sum(axis=1)
    names = ["a", "log_b", "log_kappa"] if od else ["a", "log_b"]
    lp = sum(stats.norm.logpdf(theta[:, i], *SHARE_PRIORS[k]) for i, k in enumerate(names))
    return ll + lp


def fit_share_curve(
    pairs: pd.DataFrame | None = None,
    *,
    exclude_years: Iterable[int] = (),
    overdispersed: bool = True,
    n_draws: int = 4000,
    seed: int = 0,
) -> ShareFit:
    """Fit the share curve to the historical pairs; return posterior draws.

    The log posterior (each year's figures weighted ``1 / count`` so a year counts once;
    priors :data:`SHARE_PRIORS`) is maximised, a multivariate-t proposal (4 d.f.) is
    centred on the mode with the inverse Hessian as scale, and ``n_draws`` draws are
    importance-resampled from it: exact up to Monte Carlo error for this 3-parameter,
    smooth posterior.

    Parameters
    ----------
    pairs
        Output of :func:`share_pairs` (read from ``data/`` if omitted).
    exclude_years
        Years left out (leave-one-year-out validation; the nowcast's own year).
    overdispersed
        Beta-binomial (default) or binomial (``kappa = inf``).
    n_draws, seed
        Number of draws and the seed of the proposal and the resampling.
    """
    pairs = share_pairs() if pairs is None else pairs
    excl = tuple(sorted({int(y) for y in exclude_years}))
    use = pairs[~pairs["year"].isin(excl)]
    if use["year"].nunique() < 3:
        raise DataValidationError(
            f"share curve: only {use['year'].nunique()} year(s) with partial and final counts after excluding "
            f"{list(excl)}; at least 3 are needed."
        )
    x = use["partial"].to_numpy(float)
    n = use["final"].to_numpy(float)
    f = use["fraction"].to_numpy(float)
    w = 1.0 / use.groupby("year")["year"].transform("size").to_numpy(float)
    dim = 3 if overdispersed else 2
    start = np.array([0.0, 0.0, 5.0][:dim])

    def neg(t: np.ndarray) -> float:
        return -float(_share_logpost(t, x, n, f, w, overdispersed)[0])

    res = optimize.minimize(neg, start, method="BFGS")
    mode = res.x
    H = _hessian(neg, mode)
    try:
        cov = np.linalg.inv(H)
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        cov = np.diag(np.full(dim, 0.25))
    rng = np.random.default_rng(seed)
    df = 4.0
    m = 4 * n_draws
    prop = stats.multivariate_t(loc=mode, shape=cov * 1.2**2, df=df, seed=rng)
    theta = prop.rvs(size=m).reshape(m, dim)
    logw = _share_logpost(theta, x, n, f, w, overdispersed) - prop.logpdf(theta)
    wts = np.exp(logw - logw.max())
    idx = systematic_resample(wts, n_draws, rng)
    rng.shuffle(idx)
    th = theta[idx]
    names = ["a", "log_b", "log_kappa"][:dim]
    return ShareFit(
        a=th[:, 0],
        b=np.exp(th[:, 1]),
        kappa=np.exp(th[:, 2]) if overdispersed else None,
        excluded_years=excl,
        years=tuple(int(y) for y in sorted(use["year"].unique())),
        n_pairs=len(use),
        ess=ess(wts),
        mode={k: float(v) for k, v in zip(names, mode, strict=True)},
    )


def _hessian(fun: Any, x0: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    d = len(x0)
    H = np.empty((d, d))
    for i in range(d):
        for j in range(i, d):
            e_i, e_j = np.eye(d)[i] * h, np.eye(d)[j] * h
            H[i, j] = H[j, i] = (
                fun(x0 + e_i + e_j) - fun(x0 + e_i - e_j) - fun(x0 - e_i + e_j) + fun(x0 - e_i - e_j)
            ) / (4 * h * h)
    return H
