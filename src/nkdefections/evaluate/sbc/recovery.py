"""Parameter recovery: synthetic series with known effects, refitted."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from nkdefections import constants as C
from nkdefections.arithmetic import draw_counts, latent_step
from nkdefections.config import GateConfig, ModelConfig, SamplerConfig
from nkdefections.errors import ConfigError
from nkdefections.evaluate.sbc.calibration import derive_seed, fit_row
from nkdefections.evaluate.sbc.ranks import SAMPLE, SBC_GATE, SBC_SAMPLER, SEED, SIMULATION, TRUE_BETA, element_values
from nkdefections.evaluate.sbc.simulate import group_of

if TYPE_CHECKING:  # importing the refit engine pulls in PyMC: only the drivers need it
    from nkdefections.model.refit import Refitter

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------
# Parameter recovery with known parameters
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecoveryTruth:
    """Fixed "true" parameters of the recovery series (the values of ``tests/evaluate/test_recovery.py``).

    ``log mu_t = intercept + x_t . beta + z_t``, ``z_1999 = latent_start``,
    ``z_t = rho z_{t-1} + sigma_latent eps_t``; ``x_t`` are the real lag-aligned drivers,
    the economy column the published GDP figures with missing years set to ``gdp_fill``.
    """

    intercept: float = 7.3
    beta: Mapping[str, float] = field(default_factory=lambda: dict(TRUE_BETA))
    rho: float = 0.7
    sigma_latent: float = 0.15
    latent_start: float = -2.3
    gdp_fill: float = 1.0

    def drivers(self, design: Any) -> np.ndarray:
        """The driver matrix ``(year, driver)`` the series are simulated with."""
        X = np.array(design.X_fixed, dtype=float)
        if design.economy_col is not None:
            g = np.where(np.isnan(design.gdp_all), self.gdp_fill, design.gdp_all)
            X[:, design.economy_col] = g[design.economy_idx]
        return X

    def beta_vector(self, design: Any) -> np.ndarray:
        missing = set(design.drivers) - set(self.beta)
        if missing:
            raise ConfigError(f"recovery truth: no true effect for driver(s) {sorted(missing)}.")
        return np.array([float(self.beta[k]) for k in design.drivers])

    def values(self, design: Any) -> dict[str, float]:
        """True values of the recovered quantities (``level`` = log mu at the design centre, no latent)."""
        b = self.beta_vector(design)
        out = {
            C.LEVEL: self.intercept + float(design.center @ b),
            C.INTERCEPT: self.intercept,
            C.RHO: self.rho,
            C.SIGMA_LATENT: self.sigma_latent,
        }
        for k, drv in enumerate(design.drivers):
            out[f"{C.BETA}[{drv}]"] = float(b[k])
            out[f"{C.EFFECT_PCT}[{drv}]"] = float(100 * np.expm1(b[k]))
        return out


def simulate_series(design: Any, truth: RecoveryTruth, n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic arrival series from ``truth`` on the real drivers of ``design``.

    Returns ``(arrivals, latent)``, each ``(n, year)``.  Series ``i`` depends only on
    ``seed`` and ``i``.
    """
    X = truth.drivers(design)
    b = truth.beta_vector(design)
    T = len(design.years)
    y = np.empty((n, T), dtype=np.int64)
    z = np.empty((n, T))
    for i in range(n):
        rng = np.random.default_rng(derive_seed(seed, i, 3))
        z[i, 0] = truth.latent_start
        eps = rng.standard_normal(T - 1)
        for t in range(1, T):
            z[i, t] = latent_step(z[i, t - 1], truth.rho, truth.sigma_latent, eps[t - 1])
        y[i] = draw_counts(np.exp(truth.intercept + X @ b + z[i]), rng)
    return y, z


@dataclass
class RecoveryResult:
    """Per-series posterior summaries against known truths, and refit diagnostics.

    ``table``: one row per (series, quantity) with ``truth``, posterior ``mean``, ``sd``
    and the 5/25/75/95% quantiles; the quantity ``latent`` pools every year.
    ``fits``: one row per series (as :attr:`SBCResult.fits`).
    """

    table: pd.DataFrame
    fits: pd.DataFrame
    truth: dict[str, float]
    settings: dict[str, Any]

    def summary(self) -> pd.DataFrame:
        """Per quantity: truth, mean estimate, bias, RMSE, coverage of the 50%/90% intervals, width, power.

        ``excludes_zero_90``: the fraction of series whose 90% interval excludes 0 (for the
        effects: how often the data detect the effect); ``sign_right_90``: ... and lies on
        the true effect's side.
        """
        rows = []
        for q, t in self.table.groupby("quantity", sort=False):
            err = t["mean"] - t["truth"]
            row = {
                "quantity": q,
                "truth": float(t["truth"].mean()) if q != C.LATENT else np.nan,
                "series": int(t[SIMULATION].nunique()),
                "mean_estimate": float(t["mean"].mean()),
                "bias": float(err.mean()),
                "rmse": float(np.sqrt((err**2).mean())),
                "coverage_50": float(((t["q25"] <= t["truth"]) & (t["truth"] <= t["q75"])).mean()),
                "coverage_90": float(((t["q05"] <= t["truth"]) & (t["truth"] <= t["q95"])).mean()),
                "width_90": float((t["q95"] - t["q05"]).mean()),
            }
            if group_of(q) in (C.BETA, C.EFFECT_PCT):
                excl = (t["q05"] > 0) | (t["q95"] < 0)
                right = np.where(t["truth"] < 0, t["q95"] < 0, t["q05"] > 0)
                row["excludes_zero_90"] = float(excl.mean())
                row["sign_right_90"] = float(np.mean(right))
            rows.append(row)
        return pd.DataFrame(rows)


def _posterior_row(v: np.ndarray) -> dict[str, float]:
    q05, q25, q75, q95 = np.quantile(v, [0.05, 0.25, 0.75, 0.95])
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)), "q05": q05, "q25": q25, "q75": q75, "q95": q95}


def run_recovery(
    n_series: int = 20,
    seed: int = SEED,
    *,
    truth: RecoveryTruth | None = None,
    refitter: Refitter | None = None,
    config: ModelConfig | None = None,
    data: xr.Dataset | None = None,
    sampler: SamplerConfig | None = None,
    gate: GateConfig = SBC_GATE,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
) -> RecoveryResult:
    """Refit ``n_series`` synthetic series with known parameters (:class:`RecoveryTruth`).

    The simulated counts are swapped into the compiled model
    (:class:`~nkdefections.model.refit.Refitter`); the GDP figures, the known-sign constraint and
    the centring are the real data's, as in a fit of the real series.

    Returns
    -------
    RecoveryResult
        :meth:`RecoveryResult.summary` gives bias, coverage and power per quantity.
    """
    from nkdefections.model.refit import Refitter

    t_start = time.perf_counter()
    truth = truth or RecoveryTruth()
    if refitter is None:
        refitter = Refitter(config, data, sampler or SBC_SAMPLER)
    d = refitter.design
    true = truth.values(d)
    y, z = simulate_series(d, truth, n_series, seed)
    rows, fit_rows = [], []
    for i in range(n_series):
        fit_seed = derive_seed(seed, i, 4)
        fit = refitter.fit(refitter.inputs(arrivals=y[i]), seed=fit_seed, gate=gate)
        post = fit.posterior.stack({SAMPLE: (C.CHAIN, C.DRAW)}).drop_vars([SAMPLE, C.CHAIN, C.DRAW])
        values = element_values(post, [C.LEVEL, C.INTERCEPT, C.BETA, C.EFFECT_PCT, C.RHO, C.SIGMA_LATENT], SAMPLE)
        for q, v in values.items():
            if q in true:
                rows.append({SIMULATION: i, "quantity": q, "truth": true[q], **_posterior_row(v)})
        if C.LATENT in post:
            lat = post[C.LATENT].transpose(SAMPLE, C.YEAR).values
            for t, year in enumerate(d.years):
                rows.append(
                    {
                        SIMULATION: i,
                        "quantity": C.LATENT,
                        "year": int(year),
                        "truth": z[i, t],
                        **_posterior_row(lat[:, t]),
                    }
                )
        row = {SIMULATION: i, "fit_seed": fit_seed, **fit_row(fit)}
        fit_rows.append(row)
        if progress is not None:
            progress(i, row)
    s = refitter.sampler
    settings = {
        "n_series": n_series,
        "seed": seed,
        "truth": {**{k: v for k, v in truth.__dict__.items() if k != "beta"}, "beta": dict(truth.beta)},
        "sampler": s.to_dict(),
        "gate": gate.to_dict(),
        "model": refitter.config.to_dict(),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    return RecoveryResult(
        table=pd.DataFrame(rows), fits=pd.DataFrame(fit_rows).set_index(SIMULATION), truth=true, settings=settings
    )
