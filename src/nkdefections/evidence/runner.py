"""Evidence runner: output folders, the main-run, SBC and nowcast steps, and the model card."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from nkdefections.errors import NKDefectionsError, OutputExistsError
from nkdefections.evidence.steps import step_backtest, step_compare, step_meta, step_sensitivity
from nkdefections.provenance import provenance

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[3]  # TODO(issue 8): in-process steps


def _run_script(args: list[str], what: str) -> None:
    """Run a step that lives in its own script; a failure raises with the end of its stderr."""
    res = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        raise NKDefectionsError(f"{what} failed (exit {res.returncode}):\n{res.stderr[-3000:]}")


def step_sbc(out: Path, quick: bool = False, sims: int | None = None) -> dict[str, Any]:
    """Simulation-based calibration and parameter recovery (experiments/sbc/run.py) into ``out``.

    The card runs the calibration (100 simulations by default) and the recovery study
    (20 series); the negative controls that show the test's power are in the
    experiment's own results (``experiments/sbc/run.py --sims 100``).
    """
    n = sims or (12 if quick else 100)
    args = [sys.executable, str(REPO / "experiments" / "sbc" / "run.py"), "--out", str(out), "--controls", ""]
    args += ["--sims", str(n), "--series", "4" if quick else "20"]
    if quick:
        args += ["--draws", "200", "--tune", "200", "--chains", "2"]
    _run_script(args, "the SBC run")
    shutil.rmtree(out / "raw", ignore_errors=True)  # per-simulation output: large, not part of the card
    return {"results_md": (out / "results.md").read_text(encoding="utf-8"), "settings": {"sims": n}}


def step_run(out: Path, quick: bool = False) -> dict[str, Any]:
    """The main job (fit, gate, checks, scenario forecasts) via the Hydra CLI, into ``out``."""
    args = [sys.executable, "-m", "nkdefections.cli", f"output_dir={out}", "overwrite=true"]
    if quick:
        args += ["sampler.draws=200", "sampler.tune=200", "sampler.chains=2", "gate=relaxed"]
    _run_script(args, "the main run")
    return {
        "meta": json.loads((out / "run.json").read_text(encoding="utf-8")),
        "dir": str(out),
        "coverage": pd.read_csv(out / "ppc_coverage.csv"),
        "shapes": pd.read_csv(out / "ppc_shape_checks.csv"),
    }


def step_nowcast(out: Path, quick: bool = False) -> dict[str, Any]:
    """Nowcast validation (experiments/nowcast/run.py) written into ``out``."""
    args = [sys.executable, str(REPO / "experiments" / "nowcast" / "run.py"), "--out", str(out)]
    _run_script(args, "the nowcast validation")
    return {"results_md": (out / "results.md").read_text(encoding="utf-8")}


STEPS: dict[str, Callable[..., dict[str, Any]]] = {
    "backtest": step_backtest,
    "compare": step_compare,
    "sensitivity": step_sensitivity,
}


# ----------------------------------------------------------------------------
# Output folders: refuse to replace, write atomically
# ----------------------------------------------------------------------------


def _prepare(out: Path, overwrite: bool) -> Path:
    out = Path(out).resolve()
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents or out == REPO or out in REPO.parents:
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
