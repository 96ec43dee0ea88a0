"""The default run as a library function: fit (or reuse the cached fit), check, write.

``nkdefections`` (the CLI) is a thin Hydra wrapper around :func:`run_fit`; a
notebook can call :func:`run_fit` with plain config objects and get the same
folder.

Outputs are written into a temporary sibling folder and renamed into place only
when everything succeeded, so a failed run leaves nothing behind, and an existing
output folder is never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nkdefections import constants as C
from nkdefections.checks import coverage, interval_table, one_step_replicates, shape_checks
from nkdefections.config import GateConfig, ModelConfig, SamplerConfig
from nkdefections.data import DataConfig, drivers_frame
from nkdefections.errors import OutputExistsError
from nkdefections.provenance import provenance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    """Where and how the default run writes."""

    output_dir: Path
    cache_dir: Path | None = None
    overwrite: bool = False
    prior_predictive_draws: int = 500
    seed: int = 2


def check_output_dir(path: Path, overwrite: bool) -> None:
    """Refuse to write into an existing, non-empty folder unless ``overwrite``."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())) and not overwrite:
        raise OutputExistsError(
            f"output_dir {path}: exists and is not empty; earlier results are never replaced "
            "silently. Choose another output_dir=..., or pass overwrite=true to replace it."
        )


def _draws(da: Any) -> np.ndarray:
    """(chain, draw, year) -> (sample, year)."""
    v = np.asarray(da.values)
    return v.reshape(-1, v.shape[-1])


def run_fit(
    data_config: DataConfig,
    model_config: ModelConfig,
    sampler: SamplerConfig,
    gate: GateConfig,
    run: RunConfig,
    *,
    resolved_config: str | None = None,
) -> Path:
    """Fit the model and write the run folder; return its path.

    Every input is validated before sampling (data files, config values, output
    folder).  See the README's "Output schema" for the files written.
    """
    from nkdefections.model import DefectionModel  # PyMC import only when fitting
    from nkdefections.plots import predictive_fan
    from nkdefections.report import write_report

    out = Path(run.output_dir)
    check_output_dir(out, run.overwrite)
    t0 = time.perf_counter()
    model = DefectionModel(config=model_config, data_config=data_config)  # validates data
    _ = model.model  # builds the graph: structural errors surface before sampling
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        years = model.design.years
        observed = model.design.y.astype(float)

        prior = model.sample_prior_predictive(draws=run.prior_predictive_draws, seed=run.seed)
        prior_rep = _draws(prior.prior_predictive[C.OBSERVED])
        predictive_fan(
            years,
            observed,
            prior_rep,
            tmp / C.PRIOR_PLOT,
            title="Prior predictive check: arrivals implied by the priors alone",
            log_scale=True,
            n_lines=30,
        )
        prior_table = interval_table(years, observed, prior_rep)

        t_fit = time.perf_counter()
        model.fit(sampler, gate, cache_dir=run.cache_dir)
        fit_seconds = time.perf_counter() - t_fit
        model.save(tmp / C.POSTERIOR_FILE)

        pp = model.sample_posterior_predictive(seed=run.seed)
        rep = _draws(pp.posterior_predictive[C.OBSERVED])
        ppc = interval_table(years, observed, rep)
        cov = coverage(ppc)
        post = model.idata.posterior
        flat = {
            k: (_draws(post[k]) if post[k].ndim > 2 else np.asarray(post[k].values).ravel())
            for k in (C.LOG_MU, C.LATENT, C.RHO, C.SIGMA_LATENT, C.OVERDISPERSION)
            if k in post
        }
        rep1 = one_step_replicates(
            flat[C.LOG_MU],
            flat[C.LATENT],
            flat.get(C.RHO),
            flat.get(C.SIGMA_LATENT),
            np.random.default_rng(run.seed),
            kind=model_config.latent,
            overdispersion=flat.get(C.OVERDISPERSION),
        )
        ppc1 = interval_table(years[1:], observed[1:], rep1)
        cov = cov.assign(one_step_empirical=coverage(ppc1)["empirical"], one_step_years=len(ppc1))
        ppc1.to_csv(tmp / "one_step_check.csv", index=False)
        predictive_fan(
            years[1:],
            observed[1:],
            rep1,
            tmp / "one_step_ahead.png",
            title="One-step-ahead predictive check (latent redrawn from year t-1)",
        )
        shapes = shape_checks(years, observed, rep)
        predictive_fan(
            years, observed, rep, tmp / C.POSTERIOR_PLOT, title="Posterior predictive check, 1999-2016"
        )

        effects = model.effects(prob=0.90)
        summary = model.parameter_summary(prob=0.90)
        effects.to_csv(tmp / "effects.csv", index=False)
        summary.to_csv(tmp / C.SUMMARY_FILE, index=False)
        model.convergence.table.to_csv(tmp / C.DIAGNOSTICS_FILE, index=False)
        ppc.to_csv(tmp / C.PPC_FILE, index=False)
        cov.to_csv(tmp / "ppc_coverage.csv", index=False)
        shapes.to_csv(tmp / "ppc_shape_checks.csv", index=False)
        drivers_frame(model.data.sel({C.YEAR: years})).to_csv(tmp / C.DRIVERS_FILE, index=False)
        if resolved_config is not None:
            (tmp / C.CONFIG_FILE).write_text(resolved_config, encoding="utf-8")

        prov = provenance()
        meta = {
            "fit_id": model.attrs["fit_id"],
            "cache_hit": bool(model.attrs.get("cache_hit", False)),
            "data_hash": model.data_hash,
            "data_files": json.loads(model.data.attrs["files"]),
            "window": [int(years[0]), int(years[-1])],
            "model_config": model_config.to_dict(),
            "sampler_config": sampler.to_dict(),
            "gate_config": gate.to_dict(),
            "convergence": model.convergence.summary_row(),
            "package_versions": prov["packages"],
            "code_version": prov["code_version"],
            "fit_code_version": model.attrs.get("code_version"),
            "seconds": {"fit_or_load": round(fit_seconds, 2), "total": round(time.perf_counter() - t0, 2)},
        }
        (tmp / "run.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        write_report(
            tmp / C.REPORT_FILE,
            meta=meta,
            effects=effects,
            summary=summary,
            convergence=model.convergence,
            coverage_table=cov,
            shapes=shapes,
            prior_table=prior_table,
            n_years=len(years),
        )
        if out.exists():
            # only reachable with overwrite=True (checked above)
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %s", out)
    return out


def effects_markdown(effects: pd.DataFrame) -> str:
    """The driver-effects table as markdown (used by the report and the README)."""
    lines = [
        "| driver | unit | lag (years) | median % change | 90% interval | P(effect > 0) |",
        "|---|---|---|---|---|---|",
    ]
    for r in effects.itertuples():
        lines.append(
            f"| {r.driver} | {r.unit} | {r.lag_years} | {r.median_pct:+.1f}% | "
            f"{r.q05_pct:+.1f}% to {r.q95_pct:+.1f}% | {r.prob_positive:.2f} |"
        )
    return "\n".join(lines)
