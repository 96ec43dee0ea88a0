"""Scoring pre-registered forecasts against newly published figures.

A forecast written by :func:`nkdefections.forecast` (a run folder's ``forecast.nc``) used the
fit window only (1999-2016 by default), so once official figures for later years are
published it can be scored honestly: :func:`score_forecast_file` scores every scenario
against them, year by year and pooled over the scored years, next to the no-change forecast
from the last fitted year.  ``nkdefections-score`` is this function plus the output folder.

Scores, from the count draws (``crps`` and ``log_score``: lower is better)
--------------------------------------------------------------------------
``crps``
    :func:`nkdefections.evaluate.scores.crps_samples`: the fair estimator (what
    ``scoringrules.crps_ensemble(estimator="pwm")`` computes), the one the backtest uses, so the numbers can be set
    beside its table.  In arrivals.
``log_score``
    ``-log`` of a Gaussian kernel density estimate of the draws at the observed count
    (what ``scoringrules.logs_ensemble`` computes), with Silverman's bandwidth (``scoringrules``' own rule)
    floored at :data:`LOG_SCORE_MIN_BANDWIDTH` = 1 arrival.  In nats.  Why a kernel estimate:
    the forecast file keeps count draws and ``mu`` but not the overdispersion draws, so the
    exact mixture mass the backtest uses cannot be computed here.  Yet the empirical pmf of,
    say, 4,000 draws spread over about 1,000 distinct counts puts 0-3 draws on any one count:
    too noisy, and ``-inf`` at a count no draw hit.  The kernel borrows strength from
    neighbouring counts.  Why the floor: with a bandwidth of at least 1 the kernel density at
    the integers sums to 1 within 1e-8 (Poisson summation), so it is a pmf on the counts, and a
    near-degenerate ensemble cannot give an unbounded score.  For spreads of tens of arrivals or
    more (every real forecast here) it is close to the count mass: from 4,000 draws of the
    no-change forecast, the gap to its exact pmf averaged 0.002 nats and stayed below 0.22
    nats out to 2-3 predictive s.d. (10 seeds x 12 points; ``tests/evaluate/test_score.py`` checks
    three).  The
    no-change forecast is scored by the same estimator from its draws (not by its exact pmf),
    so a difference between the two is not a difference of estimators.
``pit``, ``pit_lower``, ``pit_upper``
    The randomised PIT for counts: with ``F`` the empirical CDF of the draws,
    ``pit_lower = F(y - 1)``, ``pit_upper = F(y)`` and ``pit = pit_lower + V (pit_upper -
    pit_lower)``, ``V ~ Uniform(0, 1)`` (Czado, Gneiting & Held 2009).  If a figure is a draw
    of the distribution the draws come from, ``pit`` is uniform up to the ensemble's Monte
    Carlo error (exactly, if it is one of the draws), which neither bound nor the mid-PIT
    ``(F(y-1) + F(y)) / 2`` is for counts of a few.  One ``V`` per year from ``seed``, shared by every scenario
    and by the no-change forecast; ``pit_lower``/``pit_upper`` are the non-random bounds.
``covered_50``, ``covered_80``, ``covered_95``
    1.0 when the figure lies in the central equal-tailed interval of the draws (bounds
    included, :func:`nkdefections.evaluate.scores.interval_metrics`), else 0.0; pooled rows
    hold the fraction of years covered.
``no_change_*``
    The same scores for the no-change forecast: ``fit_baseline("no_change", ...)`` (the
    backtest's baseline, see :mod:`nkdefections.evaluate.baselines`) fitted on the forecast's
    own fitted series (``arrivals_observed``), from its last year, with as many draws as the
    forecast has.
``skill_ratio``
    ``crps / no_change_crps``; pooled rows: mean CRPS over mean no-change CRPS.  Below 1 the
    model forecast was better than "next year as the last fitted year"; above 1, worse.

Pooled rows have ``year = "pooled"`` (:data:`POOLED`), ``n_years`` the number of years scored,
and the means of ``crps`` and ``log_score``; ``horizon``, ``observed``, ``median`` and the
PIT columns are empty there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nkdefections import constants as C
from nkdefections.arithmetic import flatten_draws
from nkdefections.data.tables import sha256_file
from nkdefections.errors import DataValidationError
from nkdefections.evaluate.baselines import BaselineForecast, fit_baseline
from nkdefections.evaluate.inputs import (
    WINDOW_OBSERVED,
    ForecastInput,
    check_years,
    read_forecast,
    read_observed,
)
from nkdefections.evaluate.scores import LEVELS, crps_samples, interval_metrics
from nkdefections.provenance import package_versions, provenance

#: The ``year`` label of rows pooled over the scored years.
POOLED = "pooled"
#: The log score's kernel bandwidth never goes below this (arrivals); see the module docstring.
LOG_SCORE_MIN_BANDWIDTH = 1.0
#: The baseline every scenario is compared with.
BASELINE = "no_change"
#: Scores computed for the model and (prefixed ``no_change_``) for the baseline.
METHOD_COLUMNS: tuple[str, ...] = (
    "median",
    "crps",
    "log_score",
    "pit",
    "pit_lower",
    "pit_upper",
    *(f"covered_{round(p * 100)}" for p in LEVELS),
)
#: Columns of ``scores.csv``, in order.
SCORE_COLUMNS: tuple[str, ...] = (
    C.SCENARIO,
    "year",
    "horizon",
    "n_years",
    "observed",
    *METHOD_COLUMNS,
    *(f"{BASELINE}_{c}" for c in METHOD_COLUMNS),
    "skill_ratio",
)


# ---------------------------------------------------------------------------------------------
# Array kernels (last axis = draws)
# ---------------------------------------------------------------------------------------------


def kde_bandwidth(samples: Any) -> np.ndarray:
    """Silverman's bandwidth (as ``scoringrules.logs_ensemble`` computes it), floored at 1 arrival."""
    s = np.asarray(samples, dtype=float)
    q75, q25 = np.quantile(s, [0.75, 0.25], axis=-1)
    silverman = 1.06 * np.minimum(np.std(s, axis=-1), (q75 - q25) / 1.34) * s.shape[-1] ** (-0.2)
    return np.maximum(silverman, LOG_SCORE_MIN_BANDWIDTH)


def log_score_kde(samples: Any, y: Any) -> np.ndarray:
    """``-log`` of the Gaussian kernel density of the count draws at ``y`` (nats; lower is better).

    What ``scoringrules.logs_ensemble`` computes with ``bw=kde_bandwidth(samples)`` (an equal-weight
    mixture of normals, one per draw), in NumPy: the tests check it against ``scoringrules``, which
    is not imported here because it compiles numba kernels on import (about 3 s a process).  See
    the module docstring for why a kernel estimate.
    """
    s = np.asarray(samples, dtype=float)
    yy = np.broadcast_to(np.asarray(y, dtype=float), s.shape[:-1])
    bw = kde_bandwidth(s)[..., None]
    z = (yy[..., None] - s) / bw
    density = np.sum(np.exp(-0.5 * z**2) / np.sqrt(2.0 * np.pi) / bw / s.shape[-1], axis=-1)
    return np.asarray(-np.log(density), dtype=float)


def randomised_pit(samples: Any, y: Any, v: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Randomised PIT of counts ``y`` under the empirical CDF ``F`` of the draws.

    Returns ``(pit, F(y - 1), F(y))`` with ``pit = F(y - 1) + v (F(y) - F(y - 1))``; ``v`` in
    [0, 1) broadcast against ``y``.
    """
    s = np.asarray(samples)
    yy = np.asarray(y, dtype=float)[..., None]
    lower = np.mean(s < yy, axis=-1)
    upper = np.mean(s <= yy, axis=-1)
    return lower + np.asarray(v, dtype=float) * (upper - lower), lower, upper


def score_draws(samples: Any, y: Any, v: Any) -> dict[str, np.ndarray]:
    """Every score of :data:`METHOD_COLUMNS` for draws ``(..., S)`` against counts ``y`` (...)."""
    s = np.asarray(samples, dtype=float)
    pit, lower, upper = randomised_pit(s, y, v)
    out = {
        "median": np.median(s, axis=-1),
        "crps": crps_samples(s, y),
        "log_score": log_score_kde(s, y),
        "pit": pit,
        "pit_lower": lower,
        "pit_upper": upper,
    }
    iv = interval_metrics(s, y, LEVELS)
    out |= {k: v.astype(float) for k, v in iv.items() if k.startswith("covered_")}
    return out


# ---------------------------------------------------------------------------------------------
# The labelled layer
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProspectiveScores:
    """What :func:`score_forecast_file` returns.

    ``scores`` is the table of ``scores.csv`` (:data:`SCORE_COLUMNS`); ``baseline`` the fitted
    no-change forecast and ``baseline_draws`` its draws for the scored years ``(year, S)``;
    ``meta`` the provenance record written as ``score.json``.
    """

    scores: pd.DataFrame
    forecast: ForecastInput
    observed: pd.DataFrame
    baseline: BaselineForecast
    baseline_draws: np.ndarray
    meta: dict[str, Any]

    def pooled(self) -> pd.DataFrame:
        """The pooled rows only, one per scenario."""
        return self.scores[self.scores["year"] == POOLED].reset_index(drop=True)


def scenario_draws(forecast: ForecastInput, years: Any) -> np.ndarray:
    """Count draws ``(scenario, year, S)`` of the forecast for ``years``."""
    da = forecast.dataset[C.OBSERVED].sel({C.YEAR_FUTURE: np.asarray(years)})
    per = [flatten_draws(da.sel({C.SCENARIO: s}).transpose(C.CHAIN, C.DRAW, C.YEAR_FUTURE)) for s in da[C.SCENARIO]]
    return np.stack(per).transpose(0, 2, 1)  # flatten_draws: (S, year) per scenario


def no_change_forecast(forecast: ForecastInput, last_year: int) -> BaselineForecast:
    """The no-change forecast from the last fitted year up to ``last_year``."""
    window = forecast.dataset[WINDOW_OBSERVED]
    years = window[C.YEAR].values.astype(int)
    try:
        return fit_baseline(BASELINE, years, window.values, int(last_year) - int(years[-1]))
    except DataValidationError as exc:
        raise DataValidationError(
            f"{forecast.path}: its fitted series `{WINDOW_OBSERVED}` cannot start the no-change forecast: {exc}"
        ) from None


def _pooled_row(scenario: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {C.SCENARIO: scenario, "year": POOLED, "horizon": pd.NA, "n_years": len(rows)}
    for prefix in ("", f"{BASELINE}_"):
        for c in METHOD_COLUMNS:
            pooled = c in ("crps", "log_score") or c.startswith("covered_")
            row[prefix + c] = float(np.mean([r[prefix + c] for r in rows])) if pooled else np.nan
    row["skill_ratio"] = row["crps"] / row[f"{BASELINE}_crps"]
    return row


def prospective_scores(
    forecast: ForecastInput, observed: pd.DataFrame, *, seed: int = 0
) -> tuple[pd.DataFrame, BaselineForecast, np.ndarray]:
    """Score every scenario of ``forecast`` against ``observed`` (columns ``year``, ``arrivals``).

    The years must be forecast years (:func:`~nkdefections.evaluate.inputs.check_years`).
    Returns the score table (:data:`SCORE_COLUMNS`), the no-change forecast and its draws
    ``(year, S)``.  ``seed`` drives the PIT randomisation and the no-change draws.
    """
    years = observed["year"].to_numpy(dtype=int)
    y = observed[C.ARRIVALS].to_numpy(dtype=float)
    draws = scenario_draws(forecast, years)
    rng = np.random.default_rng(seed)
    v = rng.uniform(size=len(years))
    base = no_change_forecast(forecast, int(years.max()))
    base_draws = base.samples(rng, draws.shape[-1])[years - base.origin - 1]
    model = score_draws(draws, y[None, :], v[None, :])
    ref = score_draws(base_draws, y, v)
    rows = []
    for i, scenario in enumerate(forecast.dataset[C.SCENARIO].values.astype(str)):
        per = []
        for j, year in enumerate(years):
            row: dict[str, Any] = {
                C.SCENARIO: scenario,
                "year": str(year),
                "horizon": int(year - base.origin),
                "n_years": 1,
                "observed": int(y[j]),
            }
            row |= {c: float(model[c][i, j]) for c in METHOD_COLUMNS}
            row |= {f"{BASELINE}_{c}": float(ref[c][j]) for c in METHOD_COLUMNS}
            row["skill_ratio"] = row["crps"] / row[f"{BASELINE}_crps"]
            per.append(row)
        rows += [*per, _pooled_row(scenario, per)]
    table = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    table = table.astype({"horizon": "Int64", "n_years": int, "observed": "Int64"})
    return table, base, base_draws


def score_forecast_file(forecast: str | Path, observed: str | Path, *, seed: int = 0) -> ProspectiveScores:
    """Score a run folder's (or a forecast file's) scenarios against published figures.

    Parameters
    ----------
    forecast : path
        A run folder (holding ``forecast.nc`` and ``run.json``) or a forecast ``.nc`` file.
    observed : path
        A CSV with columns ``year`` and ``arrivals``: the newly published figures.
    seed : int
        Seed of the PIT randomisation and the no-change forecast's draws.

    Returns
    -------
    ProspectiveScores
        The score table and what it was computed from; see the module docstring for each
        column.  Nothing is written: ``nkdefections.pipeline.score`` writes the folder.

    Raises
    ------
    DataValidationError
        Unscorable inputs (see :mod:`nkdefections.evaluate.inputs`): unknown file types,
        missing provenance attributes, malformed CSV rows, years the forecast does not cover.
    """
    fc = read_forecast(forecast)
    obs = read_observed(observed)
    check_years(fc, obs, observed)
    t0 = datetime.now(UTC)
    table, base, base_draws = prospective_scores(fc, obs, seed=int(seed))
    meta = score_meta(fc, obs, Path(observed), base, seed=int(seed), created=t0)
    return ProspectiveScores(table, fc, obs.drop(columns="line"), base, base_draws, meta)


def score_meta(
    fc: ForecastInput, obs: pd.DataFrame, observed_path: Path, base: BaselineForecast, *, seed: int, created: datetime
) -> dict[str, Any]:
    """The provenance record of a scoring (``score.json``)."""
    prov = provenance()
    attrs = {k: fc.dataset.attrs[k] for k in sorted(fc.dataset.attrs)}
    return {
        "created": created.isoformat(timespec="seconds"),
        "inputs": {**fc.files(), "observed": {"path": str(observed_path), "sha256": sha256_file(observed_path)}},
        "observed_years": [int(y) for y in obs["year"]],
        "forecast_attrs": {k: v.item() if isinstance(v, np.generic) else v for k, v in attrs.items()},
        "run": fc.run_meta,
        "scenarios": [str(s) for s in fc.dataset[C.SCENARIO].values],
        "draws": int(fc.dataset.sizes[C.CHAIN] * fc.dataset.sizes[C.DRAW]),
        "fitted_window": [int(fc.fitted_years[0]), int(fc.fitted_years[-1])],
        "seed": seed,
        "estimators": {
            "crps": "the fair ensemble CRPS (scoringrules.crps_ensemble(estimator='pwm')'s formula), as the backtest",
            "log_score": f"-log of a Gaussian KDE (scoringrules.logs_ensemble's formula, Silverman bandwidth >= "
            f"{LOG_SCORE_MIN_BANDWIDTH:g} arrival) on the draws",
            "pit": "randomised PIT under the empirical CDF of the draws, one uniform per year shared by all",
            "intervals": "central equal-tailed intervals of the draws, bounds included",
        },
        "baseline": {
            "name": BASELINE,
            "method": base.method,
            "origin": base.origin,
            "loc": base.loc.tolist(),
            "scale": base.scale.tolist(),
            "df": base.df,
            "warnings": list(base.warnings),
        },
        "package_versions": {**prov["packages"], **package_versions(("statsmodels", "matplotlib"))},
        "code_version": prov["code_version"],
        "machine": prov["machine"],
    }
