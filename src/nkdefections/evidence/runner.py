"""Evidence runner: output folders, the main-run, SBC and nowcast steps, and the model card."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from nkdefections.errors import OutputExistsError
from nkdefections.evidence.steps import QUICK_SAMPLER, step_backtest, step_compare, step_meta, step_sensitivity
from nkdefections.provenance import provenance, source_checkout

log = logging.getLogger(__name__)


def step_sbc(out: Path, quick: bool = False, sims: int | None = None) -> dict[str, Any]:
    """Simulation-based calibration and parameter recovery (:mod:`nkdefections.evidence.sbc`) into ``out``.

    The card runs the calibration (100 simulations by default) and the recovery study
    (20 series); the negative controls that show the test's power are in the
    experiment's own results (``nkdefections-evidence sbc``).
    """
    from nkdefections.evidence.sbc import SBCSettings, run_sbc_study

    n = sims or (12 if quick else 100)
    settings = SBCSettings(sims=n, series=4 if quick else 20, controls=(), command="nkdefections-evidence card")
    if quick:
        settings = dataclasses.replace(settings, draws=200, tune=200, chains=2)
    text = run_sbc_study(out, settings)
    shutil.rmtree(out / "raw", ignore_errors=True)  # per-simulation output: large, not part of the card
    return {"results_md": text.replace("](results/", "]("), "settings": {"sims": n}}


def main_run_configs(out: Path, quick: bool = False) -> tuple[Any, ...]:
    """The plain config objects of the default ``nkdefections`` run (``configs/config.yaml``), into ``out``.

    Built from the dataclasses' defaults, which equal the shipped YAML defaults (a test
    checks that); ``quick``: 2 chains x 200 draws after 200 tuning, relaxed gate.
    """
    from nkdefections.config import DataConfig, GateConfig, ModelConfig, SamplerConfig
    from nkdefections.constants import CUMULATIVE
    from nkdefections.forecast.config import ForecastConfig
    from nkdefections.pipeline import RunConfig
    from nkdefections.resources import cache_dir
    from nkdefections.scenarios.scenario import DEFAULT_SCENARIOS, load_scenario

    sampler = SamplerConfig()
    gate = GateConfig()
    if quick:
        sampler = dataclasses.replace(sampler, draws=QUICK_SAMPLER.draws, tune=QUICK_SAMPLER.tune, chains=2)
        gate = dataclasses.replace(gate, enforce=False)
    forecast = ForecastConfig(
        scenarios=[load_scenario(name) for name in DEFAULT_SCENARIOS],
        thresholds=[(2020, 2000.0), (CUMULATIVE, 20000.0)],
    )
    run = RunConfig(output_dir=Path(out), cache_dir=cache_dir() / "fits", overwrite=True, forecast=forecast)
    return DataConfig(), ModelConfig(), sampler, gate, run


def step_run(out: Path, quick: bool = False) -> dict[str, Any]:
    """The main job (fit, gate, checks, scenario forecasts) with :func:`nkdefections.pipeline.run`, into ``out``."""
    from nkdefections.pipeline import run

    run(*main_run_configs(out, quick))
    return {
        "meta": json.loads((out / "run.json").read_text(encoding="utf-8")),
        "dir": str(out),
        "coverage": pd.read_csv(out / "ppc_coverage.csv"),
        "shapes": pd.read_csv(out / "ppc_shape_checks.csv"),
    }


def step_nowcast(out: Path, quick: bool = False) -> dict[str, Any]:
    """Nowcast validation (:mod:`nkdefections.evidence.nowcast`) written into ``out``."""
    from nkdefections.evidence.nowcast import run_nowcast_validation

    return {"results_md": run_nowcast_validation(out)}


def step_sbc_experiment(out: Path, quick: bool = False, settings: Any = None) -> dict[str, Any]:
    """The full SBC experiment (negative controls included), ``settings`` an :class:`SBCSettings`."""
    from nkdefections.evidence.sbc import SBCSettings, run_sbc_study

    settings = settings or SBCSettings()
    if quick:
        settings = dataclasses.replace(settings, sims=12, series=4, control_sims=12, draws=200, tune=200, chains=2)
    return {"results_md": run_sbc_study(out, settings), "settings": dataclasses.asdict(settings)}


def step_nowcast_experiment(out: Path, quick: bool = False, refit: bool = False) -> dict[str, Any]:
    """The nowcast validation; ``refit`` adds the real-time refits."""
    from nkdefections.evidence.nowcast import run_nowcast_validation

    return {"results_md": run_nowcast_validation(out, refit=refit), "settings": {"refit": refit}}


def step_structures(out: Path, quick: bool = False) -> dict[str, Any]:
    """Candidate structures by the backtest against the fair no-change (experiments/model_structures)."""
    from nkdefections.config import SamplerConfig
    from nkdefections.evidence.structures import run_structures

    origins = (2012, 2013) if quick else tuple(range(2008, 2016))
    sampler = QUICK_SAMPLER if quick else SamplerConfig(progressbar=False)
    res = run_structures(out, sampler=sampler, origins=origins)
    return {**res, "settings": {"origins": list(origins), "sampler": sampler.to_dict(), "winner": res["winner"]}}


def step_calibration(out: Path, quick: bool = False) -> dict[str, Any]:
    """Candidates for the latent innovation by the backtest's calibration (experiments/calibration)."""
    from nkdefections.config import SamplerConfig
    from nkdefections.evidence.calibration import run_calibration

    origins = (2012, 2013) if quick else tuple(range(2008, 2016))
    sampler = QUICK_SAMPLER if quick else SamplerConfig(progressbar=False)
    res = run_calibration(out, sampler=sampler, origins=origins)
    return {**res, "settings": {"origins": list(origins), "sampler": sampler.to_dict(), "winner": res["winner"]}}


STEPS: dict[str, Callable[..., dict[str, Any]]] = {
    "backtest": step_backtest,
    "compare": step_compare,
    "structures": step_structures,
    "calibration": step_calibration,
    "sensitivity": step_sensitivity,
    "sbc": step_sbc_experiment,
    "nowcast": step_nowcast_experiment,
}


# ----------------------------------------------------------------------------
# Output folders: refuse to replace, write atomically
# ----------------------------------------------------------------------------


def _prepare(out: Path, overwrite: bool) -> Path:
    out = Path(out).resolve()
    cwd = Path.cwd().resolve()
    repo = source_checkout()  # None for an installed wheel
    if out == cwd or out in cwd.parents or (repo is not None and (out == repo or out in repo.parents)):
        raise OutputExistsError(
            f"--out {out}: is the current folder, the repository or one of their parents; "
            "replacing it would delete them. Choose a new folder, e.g. outputs/model-card."
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise OutputExistsError(
            f"{out}: exists and holds results; earlier results are never replaced silently. "
            "Pass --overwrite to replace them or --out to write elsewhere."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))


def _commit(tmp: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    os.replace(tmp, out)


def run_step(name: str, out: Path, *, quick: bool = False, overwrite: bool = False, **kw: Any) -> dict[str, Any]:
    """Run one evidence step into ``out`` (atomically); return its summary."""
    tmp = _prepare(out, overwrite)
    try:
        t0 = time.perf_counter()
        prov = provenance()  # the code that runs, taken before it runs
        res = STEPS[name](tmp, quick=quick, **kw)
        meta = step_meta(name, {"quick": quick, **res.get("settings", {})}, time.perf_counter() - t0, prov)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        _commit(tmp, Path(out))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return res


# ----------------------------------------------------------------------------
# The model card
# ----------------------------------------------------------------------------


def build_card(out: Path, *, quick: bool = False, overwrite: bool = False, sims: int | None = None) -> Path:
    """Run every check into ``out`` and write ``out/MODEL_CARD.md``."""
    from nkdefections.report.card import render_card

    out = Path(out)
    tmp = _prepare(out, overwrite)
    try:
        t0 = time.perf_counter()
        prov = provenance()  # the code that runs, taken before it runs
        parts: dict[str, Any] = {}
        timings: dict[str, float] = {}
        for name, fn in (
            ("run", step_run),
            ("backtest", step_backtest),
            ("compare", step_compare),
            ("sbc", step_sbc),
            ("sensitivity", step_sensitivity),
            ("nowcast", step_nowcast),
        ):
            sub = tmp / name
            sub.mkdir()
            t = time.perf_counter()
            log.warning("model card: %s ...", name)
            kw = {"sims": sims} if name == "sbc" else {}
            parts[name] = fn(sub, quick=quick, **kw)
            timings[name] = round(time.perf_counter() - t, 1)
            if name != "run":
                meta = step_meta(name, {"quick": quick, **parts[name].get("settings", {})}, timings[name], prov)
                (sub / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        meta = step_meta("card", {"quick": quick, "timings_seconds": timings}, time.perf_counter() - t0, prov)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        (tmp / "MODEL_CARD.md").write_text(render_card(parts, meta), encoding="utf-8")
        _commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "MODEL_CARD.md"
