"""The default run as a library function: fit (or reuse the cached fit), check, forecast, compare, write.

``nkdefections`` (the CLI) is a thin Hydra wrapper around :func:`run`; a notebook can
call :func:`run` with plain config objects and get the same folder.

Outputs are written into a temporary sibling folder and renamed into place only when
everything succeeded, so a failed run leaves nothing behind, and an existing output
folder is never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from nkdefections import constants as C
from nkdefections.arithmetic import flatten_draws
from nkdefections.config import DataConfig, GateConfig, ModelConfig, SamplerConfig
from nkdefections.data.load import drivers_frame
from nkdefections.errors import ConfigError, OutputExistsError
from nkdefections.evaluate.checks import coverage, interval_table, one_step_replicates, shape_checks
from nkdefections.forecast.compare import (
    attribution,
    contrasts,
    default_pairs,
    exceedance,
    summary_by_sex,
    summary_table,
)
from nkdefections.forecast.config import ForecastConfig
from nkdefections.model.optional import share_effects
from nkdefections.provenance import provenance
from nkdefections.report.blocks import effects_markdown, fit_blocks, forecast_blocks, header_blocks, write_reports
from nkdefections.report.extras import closure_note
from nkdefections.report.headline import headline_blocks, headline_numbers
from nkdefections.scenarios.paths import scenario_paths
from nkdefections.validate import check_keys, seed, whole

log = logging.getLogger(__name__)

__all__ = ["RunConfig", "check_output_dir", "effects_markdown", "request_stop", "run", "score"]

@dataclass(frozen=True)
class RunConfig:
    """Where and what the run writes."""

    output_dir: Path
    cache_dir: Path | None = None
    overwrite: bool = False
    prior_predictive_draws: int = 500
    seed: int = 2
    fit_checks: bool = True  # prior/posterior predictive checks, their plots, the posterior copy
    plots: bool = True
    forecast: ForecastConfig | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in run.json (e.g. sweep parameters)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], forecast: ForecastConfig | None = None) -> RunConfig:
        """From the run's top-level values (``output_dir``, ``cache_dir``, ``overwrite``,
        ``prior_predictive_draws``, ``seed``, ``fit_checks``, ``plots``, ``extra``); keys left
        out take the defaults above.
        """
        names = {f.name for f in dataclasses.fields(cls)} - {"forecast"}
        check_keys(d, names, "run")
        if not d.get("output_dir"):
            raise ConfigError("output_dir: must name a folder for this run's outputs.")
        kw: dict[str, Any] = {k: v for k, v in d.items() if v is not None}
        kw["output_dir"] = Path(kw["output_dir"])
        if kw.get("cache_dir"):
            kw["cache_dir"] = Path(kw["cache_dir"])
        else:
            kw.pop("cache_dir", None)
        if "prior_predictive_draws" in kw:
            whole(kw["prior_predictive_draws"], "prior_predictive_draws", minimum=1)
        if "seed" in kw:
            seed(kw["seed"], "seed")
        for flag in ("overwrite", "fit_checks", "plots"):
            if flag in kw and not isinstance(kw[flag], bool):
                raise ConfigError(f"{flag}: {kw[flag]!r} must be true or false.")
        if "extra" in kw:
            kw["extra"] = dict(kw["extra"])
        return cls(forecast=forecast, **kw)


#: Set by :func:`request_stop` (the CLI's Ctrl-C handler); :func:`run` checks it between steps.
_STOP = threading.Event()


def request_stop() -> None:
    """Ask a running :func:`run` to stop at its next step, writing nothing.

    For a stop requested while something uninterruptible runs (a Ctrl-C that lands inside
    a C extension's callback and is swallowed there): :func:`run` raises
    :class:`KeyboardInterrupt` at the next step boundary and removes its partial folder.
    """
    _STOP.set()


#: Folders a running :func:`run` has made and not yet committed (its partial folder first,
#: then the parents it created, innermost first): what :func:`discard_partial` removes.
_PARTIAL: list[Path] = []


def discard_partial() -> None:
    """Remove what a running :func:`run` has written so far (for a hard stop by the CLI)."""
    for i, p in enumerate(list(_PARTIAL)):
        if i == 0:
            shutil.rmtree(p, ignore_errors=True)
            continue
        try:
            p.rmdir()
        except OSError:
            break
    _PARTIAL.clear()


def _checkpoint() -> None:
    if _STOP.is_set():
        raise KeyboardInterrupt("stop requested")


def check_output_dir(path: Path, overwrite: bool) -> None:
    """Refuse to write into an existing, non-empty folder unless ``overwrite``."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())) and not overwrite:
        raise OutputExistsError(
            f"output_dir {path}: exists and is not empty; earlier results are never replaced "
            "silently. Choose another output_dir=..., or pass overwrite=true to replace it."
        )


def _fit_checks(model: Any, run: RunConfig, tmp: Path, years: np.ndarray, observed: np.ndarray) -> dict[str, Any]:
    from nkdefections.report.plots import predictive_fan

    figures = {
        "prior": tmp / C.PRIOR_PLOT,
        "posterior": tmp / C.POSTERIOR_PLOT,
        "one_step": tmp / "one_step_ahead.png",
    }
    prior = model.sample_prior_predictive(draws=run.prior_predictive_draws, seed=run.seed)
    prior_rep = flatten_draws(prior.prior_predictive[C.OBSERVED])
    prior_table = interval_table(years, observed, prior_rep)
    pp = model.sample_posterior_predictive(seed=run.seed)
    rep = flatten_draws(pp.posterior_predictive[C.OBSERVED])
    ppc = interval_table(years, observed, rep)
    post = model.idata.posterior
    flat = {
        k: flatten_draws(post[k]) for k in (C.LOG_MU, C.LATENT, C.RHO, C.SIGMA_LATENT, C.OVERDISPERSION) if k in post
    }
    rep1 = one_step_replicates(
        flat[C.LOG_MU],
        flat[C.LATENT],
        flat.get(C.RHO),
        flat.get(C.SIGMA_LATENT),
        np.random.default_rng(run.seed),
        kind=model.config.latent,
        overdispersion=flat.get(C.OVERDISPERSION),
    )
    ppc1 = interval_table(years[1:], observed[1:], rep1)
    cov = coverage(ppc).assign(one_step_empirical=coverage(ppc1)["empirical"], one_step_years=len(ppc1))
    shapes = shape_checks(years, observed, rep)
    if run.plots:
        predictive_fan(
            years,
            observed,
            prior_rep,
            figures["prior"],
            title="Prior predictive check: arrivals implied by the priors alone",
            log_scale=True,
            n_lines=30,
        )
        span = f"{int(years[0])}-{int(years[-1])}"
        predictive_fan(years, observed, rep, figures["posterior"], title=f"Posterior predictive check, {span}")
        predictive_fan(
            years[1:],
            observed[1:],
            rep1,
            figures["one_step"],
            title="One-step-ahead predictive check (latent redrawn from year t-1)",
        )
    ppc.to_csv(tmp / C.PPC_FILE, index=False)
    ppc1.to_csv(tmp / "one_step_check.csv", index=False)
    cov.to_csv(tmp / "ppc_coverage.csv", index=False)
    shapes.to_csv(tmp / "ppc_shape_checks.csv", index=False)
    return {"coverage_table": cov, "shapes": shapes, "prior_table": prior_table, "figures": figures}


def _extrapolation_rows(fc: xr.Dataset, window: tuple[int, int]) -> pd.DataFrame:
    """Scenario-years where a driver enters outside the range observed in ``window``; warns once per scenario."""
    ext = fc["extrapolated"].to_dataframe().reset_index()
    ext = ext[ext["extrapolated"]].drop(columns="extrapolated")
    if len(ext):
        used = fc[C.DRIVER_VALUES].astype(float)
        values = xr.Dataset({"path_mean": used.mean((C.CHAIN, C.DRAW)), "path_sd": used.std((C.CHAIN, C.DRAW))})
        ext = ext.merge(values.to_dataframe().reset_index(), on=[C.SCENARIO, C.YEAR_FUTURE, C.DRIVER])
        rng = {d: (float(fc["observed_min"].sel(driver=d)), float(fc["observed_max"].sel(driver=d))) for d in C.DRIVERS}
        ext["observed_min"] = [rng[d][0] for d in ext[C.DRIVER]]
        ext["observed_max"] = [rng[d][1] for d in ext[C.DRIVER]]
        for sc, g in ext.groupby(C.SCENARIO):
            warnings.warn(
                f"scenario {sc!r} takes {sorted(set(g[C.DRIVER]))} outside the {window[0]}-{window[1]} range in "
                f"{int(g[C.YEAR_FUTURE].min())}-{int(g[C.YEAR_FUTURE].max())}: the model has no data there "
                "(flagged in the tables and plots).",
                UserWarning,
                stacklevel=3,
            )
    return ext


def _forecast_figures(
    fc: xr.Dataset, fcfg: ForecastConfig, contr: pd.DataFrame, baseline: str | None, tmp: Path
) -> dict[str, Path]:
    """The overlay of every scenario (the report's first chart), a fan chart per scenario, the contrasts."""
    from nkdefections.report.plots import contrast_plot, forecast_fan, scenario_overlay

    obs = fc["arrivals_observed"]
    flags = {}
    draws = {}
    for s in fcfg.scenarios:
        flag = fc["extrapolated"].sel({C.SCENARIO: s.name})
        present = [str(d) for d in flag[C.DRIVER].values]
        flags[s.name] = ", ".join(d for d in C.DRIVERS if d in present and bool(flag.sel({C.DRIVER: d}).any()))
        draws[s.name] = flatten_draws(fc[C.OBSERVED].sel({C.SCENARIO: s.name}).astype(float))
    figures: dict[str, Path] = {
        "scenarios": scenario_overlay(
            obs[C.YEAR].values,
            obs.values,
            fc[C.YEAR_FUTURE].values,
            draws,
            tmp / C.SCENARIOS_PLOT,
            baseline=baseline,
            extrapolated=flags,
        )
    }
    for s in fcfg.scenarios:
        flag = fc["extrapolated"].sel({C.SCENARIO: s.name})
        figures[f"fan_{s.name}"] = forecast_fan(
            obs[C.YEAR].values,
            obs.values,
            fc[C.YEAR_FUTURE].values,
            draws[s.name],
            tmp / f"fan_{s.name}.png",
            title=f"{s.name}: {s.description}"[:110],
            extrapolated=flag.any(C.DRIVER).values,
            extrapolated_label=flags[s.name],
        )
    if len(contr):
        figures["contrast"] = contrast_plot(contr, tmp / "contrasts.png", title="Scenario contrasts")
    return figures


def _forecast_outputs(
    model: Any, fcfg: ForecastConfig, tmp: Path, plots: bool
) -> tuple[list, dict[str, Any], dict[str, Any]]:
    """Forecast, compare, write the tables and figures; the report's blocks, ``run.json``'s part,
    and what the first screen needs (the headline numbers, the overlay chart, the baseline)."""
    from nkdefections.forecast.kernel import forecast

    t0 = time.perf_counter()
    fit = model.fit_view()
    fc = forecast(fit, fcfg.scenarios, fcfg.horizon, seed=fcfg.seed)
    seconds = time.perf_counter() - t0
    win = fcfg.cumulative_window
    summary = summary_table(fc, win)
    by_sex, share_fx = summary_by_sex(fc, win), share_effects(model.idata.posterior, model.config)
    pairs = list(fcfg.pairs) if fcfg.pairs is not None else default_pairs(fc, fcfg.baseline)
    contr = contrasts(fc, pairs, window=win) if pairs else pd.DataFrame()
    exc = exceedance(fc, fcfg.thresholds, window=win)
    attr = attribution(fc, fit.arrays["beta"], pairs, window=win) if pairs else pd.DataFrame()
    window = (fit.first_year, fit.last_year)
    ext = _extrapolation_rows(fc, window)
    fc.to_netcdf(
        tmp / "forecast.nc",
        engine="h5netcdf",
        encoding={C.OBSERVED: {"zlib": True}, C.MU: {"zlib": True}, C.DRIVER_VALUES: {"zlib": True}},
    )
    tables = dict(forecast_summary=summary, contrasts=contr, exceedance=exc, attribution=attr, extrapolation=ext)
    tables.update(dict(forecast_by_sex=by_sex, share_effects=share_fx) if len(by_sex) else {})
    for name, table in tables.items():
        table.to_csv(tmp / f"{name}.csv", index=False)
    baseline = pairs[0][1] if pairs and len({b for _, b in pairs}) == 1 else None  # None: several, or none
    figures = _forecast_figures(fc, fcfg, contr, baseline, tmp) if plots else {}
    blocks = (
        forecast_blocks(
            scenarios=fcfg.scenarios,
            summary=summary,
            contrasts=contr,
            exceedance=exc,
            attribution=attr,
            extrapolation=ext,
            figures=figures,
            horizon=fc.attrs["horizon"],
            window=window,
            closure=closure_note(fc.attrs["closure_elasticity"], fit.arrays["closure_elasticity"]),
            by_sex=by_sex,
            share_effects=share_fx,
        )
        if plots
        else []
    )
    meta = {
        "scenarios": [s.to_dict() for s in fcfg.scenarios],
        "horizon": fc.attrs["horizon"],
        "forecast_seed": fcfg.seed,
        "forecast_seconds": round(seconds, 3),
        "extrapolated": sorted(set(ext[C.SCENARIO])) if len(ext) else [],
        "closure_elasticity": fc.attrs["closure_elasticity"],
    }
    first = {"numbers": headline_numbers(summary, contr), "figure": figures.get("scenarios"), "baseline": baseline}
    return blocks, meta, first


#: The report's closing section.
_PROVENANCE_BLOCKS: list[tuple[str, str]] = [
    ("h2", "Provenance"),
    ("p", f"Package versions, configs, data file hashes: `run.json`; the resolved config: `{C.CONFIG_FILE}`."),
]


def _run_meta(
    model: Any,
    model_config: ModelConfig,
    sampler: SamplerConfig,
    gate: GateConfig,
    run_config: RunConfig,
    years: np.ndarray,
    fc_meta: dict[str, Any],
    seconds: dict[str, float],
) -> dict[str, Any]:
    """``run.json``: what made this run (configs, data, versions, the fit's own provenance, timings)."""
    prov = provenance()
    return {
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
        "machine": prov["machine"],
        "fit_machine": json.loads(model.attrs.get("machine", "{}")),
        "fit_package_versions": json.loads(model.attrs.get("package_versions", "{}")),
        **fc_meta,
        **({"extra": run_config.extra} if run_config.extra else {}),
        "seconds": seconds,
    }


def run(
    data_config: DataConfig,
    model_config: ModelConfig,
    sampler: SamplerConfig,
    gate: GateConfig,
    run_config: RunConfig,
    *,
    resolved_config: str | None = None,
) -> Path:
    """Fit (or reuse the cached fit), check, forecast and compare; return the run folder.

    Every input is validated before sampling (data files, config values, scenario paths,
    output folder).  See `docs/reference/output-schema.md` for the files written.
    """
    from nkdefections.model.defection import DefectionModel  # PyMC import only when fitting

    _STOP.clear()
    out = Path(run_config.output_dir)
    check_output_dir(out, run_config.overwrite)
    t0 = time.perf_counter()
    model = DefectionModel(config=model_config, data_config=data_config)  # validates data
    if run_config.forecast is not None:  # scenario paths validated against the data before sampling
        scenario_paths(run_config.forecast.scenarios, model.data, run_config.forecast.horizon)
        from nkdefections.forecast.kernel import check_horizon

        check_horizon(int(model.data.attrs["last_year"]), run_config.forecast.horizon)
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]  # removed again if the run fails
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    _PARTIAL[:] = [tmp, *made]
    try:
        years = model.design.years
        observed = model.design.y.astype(float)
        t_fit = time.perf_counter()
        model.fit(sampler, gate, cache_dir=run_config.cache_dir)
        _checkpoint()
        fit_seconds = time.perf_counter() - t_fit
        effects = model.effects(prob=0.90)
        summary = model.parameter_summary(prob=0.90)
        effects.to_csv(tmp / "effects.csv", index=False)
        summary.to_csv(tmp / C.SUMMARY_FILE, index=False)
        model.convergence.table.to_csv(tmp / C.DIAGNOSTICS_FILE, index=False)
        drivers_frame(model.data.sel({C.YEAR: years})).to_csv(tmp / C.DRIVERS_FILE, index=False)
        checks: dict[str, Any] = {"coverage_table": None, "shapes": None, "prior_table": None, "figures": {}}
        if run_config.fit_checks:
            model.save(tmp / C.POSTERIOR_FILE)
            checks = _fit_checks(model, run_config, tmp, years, observed)
            _checkpoint()
        fc_blocks: list = []
        fc_meta: dict[str, Any] = {}
        first: dict[str, Any] | None = None
        if run_config.forecast is not None:
            fc_blocks, fc_meta, first = _forecast_outputs(model, run_config.forecast, tmp, run_config.plots)
            _checkpoint()
        if resolved_config is not None:
            (tmp / C.CONFIG_FILE).write_text(resolved_config, encoding="utf-8")
        seconds = {"fit_or_load": round(fit_seconds, 2), "total": round(time.perf_counter() - t0, 2)}
        meta = _run_meta(model, model_config, sampler, gate, run_config, years, fc_meta, seconds)
        (tmp / "run.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        if run_config.plots and run_config.fit_checks:
            fit_part = fit_blocks(
                effects=effects, summary=summary, convergence=model.convergence, window=meta["window"], **checks
            )
            drivers = drivers_frame(model.data.sel({C.YEAR: years}))
            head = (
                headline_blocks(first["numbers"], meta, drivers, first["figure"], baseline=first["baseline"])
                if first
                else []
            )
            top = head + header_blocks(meta, len(years), title=not head)
            write_reports(tmp, top + fit_part + fc_blocks + _PROVENANCE_BLOCKS)
        _checkpoint()  # the last moment a stop leaves nothing behind
        if out.exists():
            # only reachable with overwrite=True or an empty folder (checked above)
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
        _PARTIAL.clear()
    except BaseException:  # an error or Ctrl-C: leave nothing behind
        discard_partial()
        raise
    log.debug("wrote %s", out)
    return out


def score(
    forecast: str | Path,
    observed: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    seed: int = 0,
    plots: bool = True,
) -> Path:
    """Score a pre-registered forecast against published figures; return the output folder.

    ``forecast``: a run folder or its ``forecast.nc``; ``observed``: a CSV with columns
    ``year``, ``arrivals``.  Writes ``scores.csv``, ``scorecard.md``/``.html``, ``score_fan.png``
    and ``score.json`` (provenance) into ``out``, atomically: every input is checked and scored
    before anything is written, the files go to a temporary sibling folder renamed into place
    at the end, and an existing non-empty ``out`` is replaced only with ``overwrite=True``.
    See :mod:`nkdefections.evaluate.prospective` for the scores.
    """
    from nkdefections.evaluate.prospective import score_forecast_file
    from nkdefections.report.scorecard import write_scorecard

    out = Path(out)
    for given in (Path(forecast), Path(observed)):
        if out.resolve() == given.resolve() or out.resolve() in given.resolve().parents:
            raise OutputExistsError(
                f"output folder {out}: holds the input {given}, which writing the scores there would replace; "
                "choose a folder of its own."
            )
    check_output_dir(out, overwrite)
    result = score_forecast_file(forecast, observed, seed=seed)  # refuses bad input before any write
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the scores are meant to be shared
        write_scorecard(result, tmp, plots=plots)
        if out.exists():  # only reachable with overwrite=True or an empty folder (checked above)
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in made:
            try:
                p.rmdir()
            except OSError:
                break
        raise
    return out
