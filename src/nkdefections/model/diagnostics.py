"""The convergence gate: R-hat, bulk/tail ESS and divergences for every parameter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from nkdefections.config import GateConfig


@dataclass
class ConvergenceReport:
    """Per-parameter diagnostics and the gate's verdict."""

    table: pd.DataFrame  # parameter, rhat, ess_bulk, ess_tail
    divergences: int
    draws: int
    chains: int
    gate: GateConfig
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def message(self) -> str:
        if self.passed:
            return "convergence gate passed"
        tips = (
            "What to try: more tuning (sampler.tune=4000), a higher target acceptance "
            "(sampler.target_accept=0.99), more draws for ESS (sampler.draws=2000), or "
            "the other parameterisation (model.parameterization=noncentered; the default is log_mu). "
            "To look at a failing fit anyway, relax the gate explicitly: gate.enforce=false."
        )
        return "convergence gate failed:\n  - " + "\n  - ".join(self.failures) + "\n" + tips

    def summary_row(self) -> dict[str, float | int | bool]:
        t = self.table
        return {
            "passed": self.passed,
            "max_rhat": float(t["rhat"].max()),
            "min_ess_bulk": float(t["ess_bulk"].min()),
            "min_ess_tail": float(t["ess_tail"].min()),
            "divergences": int(self.divergences),
            "chains": self.chains,
            "draws": self.draws,
        }


def _flatten(ds: xr.Dataset, column: str) -> pd.DataFrame:
    rows = []
    for name, da in ds.data_vars.items():
        if da.ndim == 0:
            rows.append({"parameter": name, column: float(da)})
            continue
        stacked = da.stack(_i=da.dims) if da.ndim > 1 else da
        dims = da.dims
        for idx in np.ndindex(*da.shape):
            label = ",".join(str(da[d].values[i]) if d in da.coords else str(i) for d, i in zip(dims, idx, strict=True))
            rows.append({"parameter": f"{name}[{label}]", column: float(da.values[idx])})
        del stacked
    return pd.DataFrame(rows)


def diagnostics_table(posterior: xr.Dataset, var_names: Sequence[str]) -> pd.DataFrame:
    """R-hat (rank-normalised), bulk and tail ESS for every element of ``var_names``."""
    post = posterior[list(var_names)]
    rhat = _flatten(az.rhat(post), "rhat")
    bulk = _flatten(az.ess(post, method="bulk"), "ess_bulk")
    tail = _flatten(az.ess(post, method="tail"), "ess_tail")
    return rhat.merge(bulk, on="parameter").merge(tail, on="parameter")


def check_convergence(
    idata: xr.DataTree, var_names: Sequence[str], gate: GateConfig, *, table: pd.DataFrame | None = None
) -> ConvergenceReport:
    """Apply ``gate`` to the free parameters ``var_names`` of a fit.

    ``table``: a precomputed :func:`diagnostics_table` of the same fit (the gate's
    thresholds are then applied without recomputing R-hat and ESS).
    """
    post = idata.posterior.to_dataset()
    if table is None:
        table = diagnostics_table(post, var_names)
    stats = idata.sample_stats.to_dataset()
    div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    failures = []
    bad = table[~(table["rhat"] <= gate.rhat_max)]
    if len(bad):
        worst = bad.sort_values("rhat", ascending=False).head(5)
        failures.append(
            f"R-hat > {gate.rhat_max} for {len(bad)} parameter(s), worst: "
            + ", ".join(f"{r.parameter}={r.rhat:.3f}" for r in worst.itertuples())
        )
    for col, lim in (("ess_bulk", gate.ess_bulk_min), ("ess_tail", gate.ess_tail_min)):
        bad = table[~(table[col] >= lim)]
        if len(bad):
            worst = bad.sort_values(col).head(5)
            failures.append(
                f"{col.replace('_', ' ')} < {lim:g} for {len(bad)} parameter(s), lowest: "
                + ", ".join(f"{r.parameter}={getattr(r, col):.0f}" for r in worst.itertuples())
            )
    if div > gate.max_divergences:
        failures.append(f"{div} divergent transition(s) (allowed: {gate.max_divergences})")
    return ConvergenceReport(
        table=table,
        divergences=div,
        draws=int(post.sizes["draw"]),
        chains=int(post.sizes["chain"]),
        gate=gate,
        failures=failures,
    )
