"""Time scenario forecasting and a cached-fit multirun sweep, as a user meets them.

Usage::

    python benchmarks/forecast.py              # 10 scenarios x 14 years x 4000 draws; 100-job sweeps
    python benchmarks/forecast.py --repeat 3   # every measurement three times, medians
    python benchmarks/forecast.py --quick      # smoke version: 3 scenarios, 2 x 2 sweeps

Two measurements, in one run:

1. **Forecast**: 10 scenarios x 2017-2030 x every posterior draw of the default fit
   (4 chains x 1000 draws), once with ``nkdefections.forecast.forecast`` (one call for
   all scenarios) and once the plain PyMC way: per scenario, ``build_forecast_model``
   plus ``pm.sample_posterior_predictive(model.idata, var_names=["arrivals_future"])``
   (10 calls, each compiling its own function: part of what a user pays).  Scenario
   paths are deterministic (any ``sd`` removed) so that both compute the same
   forecast; the medians per scenario and year are compared as a sanity check.
2. **Sweep**: the real ``nkdefections -m experiment=enforcement_sanctions_sweep``
   command over a 10 x 10 grid (100 jobs), in a subprocess with a temporary working
   folder, reusing the fit cached by step 0; sequential (Hydra's basic launcher) and
   with ``hydra/launcher=local_parallel`` (joblib, 2 workers).  A 1-job sweep is timed
   first (fixed start-up cost, and a check that the CLI hits the same cached fit).
   Every job's ``run.json`` must say ``"cache_hit": true`` and ``sweep_table.csv`` must
   hold every job.

Step 0 loads the default fit (``DefectionModel().fit(SamplerConfig(progressbar=False),
GateConfig(), cache_dir=...)``), sampling it once if the cache does not have it.

Results (JSON and markdown, with date, machine and package versions) go to
``benchmarks/results/`` (git-ignored); the sweeps' output logs to a ``logs-forecast-*``
folder next to them.  The exit status is 0 when every measurement ran and every check
(agreement, job count, cache hits) passed, 1 otherwise; the speed targets are reported,
not enforced.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nkdefections.scenarios.scenario import DEFAULT_SCENARIOS

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT = HERE / "results"
DEFAULT_SEED = 20161231
SHIPPED = DEFAULT_SCENARIOS  # the seven shipped scenarios of the default run
#: Three more scenarios (deterministic) to make ten.
EXTRA: tuple[dict[str, Any], ...] = (
    {"name": "border_half", "drivers": {"border": {"type": "step", "value": 0.5}}},
    {
        "name": "sanctions_ramp",
        "drivers": {"sanctions": {"type": "ramp", "start": 2017, "end": 2022, "to_value": 12.0}},
    },
    {
        "name": "mixed_values",
        "drivers": {
            "border": {"type": "relative", "change": -0.5},
            "economy": {"type": "values", "values": {2017: -1.0, 2018: 0.5, 2019: 1.5}},
        },
    },
)
QUICK_SCENARIOS = ("status_quo", "border_crackdown", "border_half")
EXPERIMENT = "enforcement_sanctions_sweep"
FULL_GRID = {"sweep.border": "range(0,2.5,0.25)", "sweep.sanctions": "range(4,14,1)"}  # 10 x 10 = 100
QUICK_GRID = {"sweep.border": "range(0,0.5,0.25)", "sweep.sanctions": "range(4,6,1)"}  # 2 x 2 = 4
PROBE_GRID = {"sweep.border": "1.0", "sweep.sanctions": "8"}  # 1 job
TARGET_RATIO = 20.0
TARGET_SWEEP_S = 60.0
REL_TOL = 0.05  # medians "within a few %"
Z_TOL = 4.0  # ... or within 4 Monte Carlo standard errors of the difference
PACKAGES = (
    "nkdefections",
    "pymc",
    "pytensor",
    "numpy",
    "scipy",
    "xarray",
    "arviz",
    "jax",
    "numpyro",
    "hydra-core",
    "hydra-joblib-launcher",
    "joblib",
    "omegaconf",
    "pandas",
    "h5netcdf",
)


# ----------------------------------------------------------------------------
# Step 0: the fit
# ----------------------------------------------------------------------------


def load_fit(cache_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The default fit, from the fit cache (sampled and saved there if missing)."""
    from nkdefections import DefectionModel, GateConfig, SamplerConfig
    from nkdefections.errors import OutputExistsError

    t0 = time.perf_counter()
    for attempt in range(2):
        try:
            model = DefectionModel().fit(SamplerConfig(progressbar=False), GateConfig(), cache_dir=cache_dir)
            break
        except OutputExistsError:  # another process saved the same fit meanwhile: load that one
            if attempt:
                raise
    seconds = time.perf_counter() - t0
    post = model.idata.posterior
    return model, {
        "fit_id": model.attrs["fit_id"],
        "cache_dir": str(cache_dir),
        "cache_hit": bool(model.attrs.get("cache_hit")),
        "seconds": seconds,
        "chains": int(post.sizes["chain"]),
        "draws": int(post.sizes["draw"]),
        "cached_files": sorted(p.name for p in cache_dir.glob("fit-*.nc")),
    }


# ----------------------------------------------------------------------------
# Step 1: forecast() against pm.sample_posterior_predictive
# ----------------------------------------------------------------------------


def deterministic(scenario: Any) -> Any:
    """The scenario with every path's ``sd``/``correlated`` removed (its mean path)."""
    from nkdefections.scenarios.scenario import Scenario

    drivers = {
        d: [{k: v for k, v in spec.items() if k not in ("sd", "correlated")} for spec in specs]
        for d, specs in scenario.drivers.items()
    }
    return Scenario(scenario.name, scenario.description, scenario.reasoning, drivers, scenario.version)


def scenario_set(quick: bool) -> tuple[list[Any], list[str]]:
    """The benchmark's scenarios (deterministic) and the names whose ``sd`` was removed."""
    from nkdefections.scenarios.scenario import Scenario, load_scenario

    pool = [load_scenario(n) for n in SHIPPED] + [Scenario(e["name"], drivers=e["drivers"]) for e in EXTRA]
    if quick:
        pool = [s for s in pool if s.name in QUICK_SCENARIOS]
    stripped = [s.name for s in pool if any(spec.get("sd") for specs in s.drivers.values() for spec in specs)]
    return [deterministic(s) for s in pool], stripped


@contextlib.contextmanager
def numba_compile_time() -> Iterator[Callable[[], float]]:
    """Seconds of numba compilation (or compile-cache loading) while the block runs.

    PyTensor's default (numba) backend JIT-compiles a function on its first call, i.e.
    inside the sampling loop of ``pm.sample_posterior_predictive``, not while PyMC builds it.
    """
    try:
        from numba.core import event
    except ImportError:  # pragma: no cover - numba is a PyTensor dependency
        yield lambda: 0.0
        return
    listener = event.TimingListener()
    event.register("numba:compile", listener)
    try:
        yield lambda: listener.duration if listener.done else 0.0
    finally:
        event.unregister("numba:compile", listener)


class CompileTimer:
    """Pass-through wrapper of PyMC's ``compile_forward_sampling_function`` (changes no argument).

    Records the call's wall time and the numba compile time inside it.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn
        self.seconds: list[float] = []
        self.numba_seconds: list[float] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        with numba_compile_time() as numba_s:
            try:
                return self._fn(*args, **kwargs)
            finally:
                self.seconds.append(time.perf_counter() - t0)
                self.numba_seconds.append(numba_s())


def median_se(x: np.ndarray, axis: int = 0, d: float = 0.05) -> np.ndarray:
    """Monte Carlo standard error of the median: 1 / (2 sqrt(n) f(median)), f from a quantile spread."""
    n = x.shape[axis]
    lo, hi = np.quantile(x, [0.5 - d, 0.5 + d], axis=axis)
    return (hi - lo) / (2 * d) / (2 * np.sqrt(n))


def agreement(kernel: np.ndarray, ref: np.ndarray, years: np.ndarray) -> dict[str, Any]:
    """Per-year medians of one scenario's (sample, year) arrays from both methods."""
    mk, mr = np.median(kernel, axis=0), np.median(ref, axis=0)
    rel = mr / np.maximum(mk, 1e-12) - 1
    se = np.sqrt(median_se(kernel) ** 2 + median_se(ref) ** 2)
    z = np.abs(mr - mk) / np.maximum(se, 1e-12)
    ok = (np.abs(rel) <= REL_TOL) | (z <= Z_TOL)
    worst = int(np.argmax(np.abs(rel)))
    return {
        "years": years.tolist(),
        "median_forecast": mk.tolist(),
        "median_pymc": mr.tolist(),
        "rel_diff": rel.tolist(),
        "z": z.tolist(),
        "max_abs_rel_diff": float(np.abs(rel).max()),
        "worst_year": int(years[worst]),
        "max_z": float(z.max()),
        "years_within_rel_tol": int((np.abs(rel) <= REL_TOL).sum()),
        "ok": bool(ok.all()),
    }


def bench_forecast(model: Any, scenarios: list[Any], seed: int) -> dict[str, Any]:
    """One repetition of measurement 1: forecast() once, then the PyMC way per scenario."""
    import pymc as pm
    import pymc.sampling.forward as fwd

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the PyMC twin lives with the tests' helpers
    from nkdefections.config import Horizon
    from nkdefections.forecast.kernel import forecast
    from nkdefections.scenarios.paths import last_observed
    from tests.helpers.pymc_twin import build_forecast_model

    horizon = Horizon()
    years = horizon.years
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    fc = forecast(model, scenarios, horizon, seed=seed)
    t_forecast = time.perf_counter() - t0
    arrivals = fc["arrivals"]
    shape = tuple(int(s) for s in arrivals.shape)

    last = last_observed(model.data)
    timer = CompileTimer(fwd.compile_forward_sampling_function)
    calls = []
    fwd.compile_forward_sampling_function = timer
    try:
        for i, sc in enumerate(scenarios):
            mean, sd, _ = sc.path(last, horizon)
            assert not sd.any(), sc.name  # deterministic paths only
            with numba_compile_time() as numba_s:
                t0 = time.perf_counter()
                fm = build_forecast_model(model, mean, horizon)
                t1 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pp = pm.sample_posterior_predictive(
                        model.idata,
                        var_names=["arrivals_future"],
                        model=fm,
                        random_seed=seed + 1 + i,
                        progressbar=False,
                    )
                t2 = time.perf_counter()
                numba_total = numba_s()
            jit_later = max(numba_total - timer.numba_seconds[-1], 0.0)  # numba compiles outside PyMC's compile step
            ref = np.asarray(pp.posterior_predictive["arrivals_future"].values).reshape(-1, len(years))
            kern = np.asarray(arrivals.sel(scenario=sc.name).values).reshape(-1, len(years))
            calls.append(
                {
                    "scenario": sc.name,
                    "build_s": t1 - t0,
                    "sppc_s": t2 - t1,
                    "graph_compile_s": timer.seconds[-1],
                    "numba_jit_after_s": jit_later,
                    "numba_total_s": numba_total,
                    "compile_s": timer.seconds[-1] + jit_later,
                    "total_s": t2 - t0,
                    "agreement": agreement(kern, ref, years),
                }
            )
    finally:
        fwd.compile_forward_sampling_function = timer._fn
    t_pymc = sum(c["total_s"] for c in calls)
    compile_s = sum(c["compile_s"] for c in calls)
    return {
        "loadavg_1min_before": load,
        "forecast_s": t_forecast,
        "forecast_shape": shape,
        "pymc_s": t_pymc,
        "pymc_build_s": sum(c["build_s"] for c in calls),
        "pymc_compile_s": compile_s,
        "pymc_graph_compile_s": sum(c["graph_compile_s"] for c in calls),
        "pymc_numba_jit_after_s": sum(c["numba_jit_after_s"] for c in calls),
        "pymc_first_call_s": calls[0]["total_s"],
        "pymc_per_call_median_s": statistics.median(c["total_s"] for c in calls),
        "ratio": t_pymc / t_forecast,
        "ratio_without_compile": (t_pymc - compile_s) / t_forecast,
        "agree": all(c["agreement"]["ok"] for c in calls),
        "calls": calls,
    }


# ----------------------------------------------------------------------------
# Step 2: the multirun sweep through the real CLI
# ----------------------------------------------------------------------------


def cli_command() -> list[str]:
    exe = Path(sys.executable).with_name("nkdefections")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "nkdefections.cli"]


def sweep_command(grid: dict[str, str], cache_dir: Path, sweep_dir: Path, parallel: bool) -> list[str]:
    cmd = [*cli_command(), "-m", f"experiment={EXPERIMENT}"]
    cmd += [f"{k}={v}" for k, v in grid.items()]
    cmd += [f"cache_dir={cache_dir}", f"hydra.sweep.dir={sweep_dir}"]
    if parallel:
        cmd.append("hydra/launcher=local_parallel")
    return cmd


def grid_size(grid: dict[str, str]) -> int:
    """Number of jobs of a grid of Hydra ``range(start,stop,step)`` or comma lists."""
    n = 1
    for v in grid.values():
        m = re.fullmatch(r"range\(([^,]+),([^,]+),([^,]+)\)", v)
        if m:
            a, b, s = (float(x) for x in m.groups())
            n *= len(np.arange(a, b, s))
        else:
            n *= len(v.split(","))
    return n


_HYDRA_JOB = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[HYDRA\] \t#(\d+) :")


def job_starts(log_text: str) -> list[float]:
    """Wall-clock (epoch) start of every job, from Hydra's basic launcher log lines."""
    out = []
    for line in log_text.splitlines():
        m = _HYDRA_JOB.match(line)
        if m:
            out.append(dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return out


def verify_sweep(sweep_dir: Path, expected: int) -> dict[str, Any]:
    """Job folders, ``sweep_table.csv`` and every job's ``run.json``."""
    import pandas as pd

    jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    metas = [json.loads((j / "run.json").read_text()) for j in jobs if (j / "run.json").is_file()]
    table = sweep_dir / "sweep_table.csv"
    table_jobs = table_points = None
    if table.is_file():
        df = pd.read_csv(table)
        table_jobs = int(df["job"].nunique())
        cols = [c for c in df.columns if c.startswith("sweep.")]
        table_points = int(df[cols].drop_duplicates().shape[0]) if cols else None
    hits = sum(1 for m in metas if m.get("cache_hit") is True)
    secs = [m.get("seconds", {}) for m in metas]
    res = {
        "expected_jobs": expected,
        "job_dirs": len(jobs),
        "run_json": len(metas),
        "cache_hits": hits,
        "sweep_table": table.is_file(),
        "sweep_table_jobs": table_jobs,
        "sweep_table_points": table_points,
        "sum_job_total_s": float(sum(s.get("total", 0.0) for s in secs)),
        "sum_job_fit_or_load_s": float(sum(s.get("fit_or_load", 0.0) for s in secs)),
        "sum_job_forecast_s": float(sum(m.get("forecast_seconds", 0.0) for m in metas)),
        "median_job_total_s": statistics.median(s.get("total", 0.0) for s in secs) if secs else None,
        "max_job_fit_or_load_s": max((s.get("fit_or_load", 0.0) for s in secs), default=None),
    }
    res["ok"] = (
        len(jobs) == expected
        and len(metas) == expected
        and hits == expected
        and table_jobs == expected
        and table_points == expected
    )
    return res


def run_sweep(
    label: str, grid: dict[str, str], cache_dir: Path, work: Path, log_dir: Path, parallel: bool, timeout: float
) -> dict[str, Any]:
    """Run one sweep command with cwd = a fresh temporary folder; time it and check its outputs."""
    cwd = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=work))
    sweep_dir = cwd / "sweep"
    cmd = sweep_command(grid, cache_dir, sweep_dir, parallel)
    expected = grid_size(grid)
    log_path = log_dir / f"{label}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    load = os.getloadavg()[0]
    with open(log_path, "w") as log:
        start_epoch = time.time()
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
            rc: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            rc = None
        wall = time.perf_counter() - t0
    text = log_path.read_text()
    rec: dict[str, Any] = {
        "label": label,
        "parallel": parallel,
        "command": " ".join(f"'{c}'" if "(" in c else c for c in cmd),
        "cwd": str(cwd),
        "wall_s": wall,
        "returncode": rc,
        "loadavg_1min_before": load,
        "log": str(log_path),
    }
    rec.update(verify_sweep(sweep_dir, expected) if sweep_dir.is_dir() else {"ok": False, "expected_jobs": expected})
    rec["ok"] = bool(rec["ok"] and rc == 0)
    starts = job_starts(text)
    if starts and not parallel:
        rec["startup_to_first_job_s"] = starts[0] - start_epoch
        gaps = np.diff(starts)
        rec["job_interval_median_s"] = float(np.median(gaps)) if len(gaps) else None
        rec["last_job_start_to_exit_s"] = start_epoch + wall - starts[-1]
    if not rec["ok"]:
        rec["log_tail"] = text[-3000:]
    return rec


# ----------------------------------------------------------------------------
# Summaries and formatting
# ----------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(statistics.median(vals)) if vals else None


def _fmt(x: float | None, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(b) for b in body)])


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    fc = result["forecast_runs"]
    sw = result["sweep_runs"]
    seq = [r for r in sw if r["label"].startswith("sweep-seq")]
    par = [r for r in sw if r["label"].startswith("sweep-par")]
    probe = [r for r in sw if r["label"].startswith("probe")]
    s = {
        "forecast_s": _median([r["forecast_s"] for r in fc]),
        "pymc_s": _median([r["pymc_s"] for r in fc]),
        "pymc_compile_s": _median([r["pymc_compile_s"] for r in fc]),
        "pymc_graph_compile_s": _median([r["pymc_graph_compile_s"] for r in fc]),
        "pymc_numba_jit_after_s": _median([r["pymc_numba_jit_after_s"] for r in fc]),
        "pymc_build_s": _median([r["pymc_build_s"] for r in fc]),
        "pymc_first_call_s": _median([r["pymc_first_call_s"] for r in fc]),
        "pymc_per_call_median_s": _median([r["pymc_per_call_median_s"] for r in fc]),
        "ratio": _median([r["ratio"] for r in fc]),
        "ratio_without_compile": _median([r["ratio_without_compile"] for r in fc]),
        "agree": all(r["agree"] for r in fc) if fc else None,
        "probe_wall_s": _median([r["wall_s"] for r in probe]),
        "sequential_wall_s": _median([r["wall_s"] for r in seq if r["ok"]]),
        "parallel_wall_s": _median([r["wall_s"] for r in par if r["ok"]]),
        "sequential_ok": bool(seq) and all(r["ok"] for r in seq),
        "parallel_ok": bool(par) and all(r["ok"] for r in par),
        "sequential_job_interval_s": _median([r.get("job_interval_median_s") for r in seq]),
        "sequential_startup_s": _median([r.get("startup_to_first_job_s") for r in seq]),
        "sequential_sum_job_total_s": _median([r.get("sum_job_total_s") for r in seq]),
    }
    n = seq[0]["expected_jobs"] if seq else None
    if s["sequential_wall_s"] is not None and s["probe_wall_s"] is not None and n and n > 1:
        s["marginal_per_job_s"] = (s["sequential_wall_s"] - s["probe_wall_s"]) / (n - 1)
    s["ratio_met"] = None if s["ratio"] is None else s["ratio"] >= TARGET_RATIO
    s["sweep_met"] = None if s["sequential_wall_s"] is None else s["sequential_wall_s"] < TARGET_SWEEP_S
    s["sweep_parallel_met"] = None if s["parallel_wall_s"] is None else s["parallel_wall_s"] < TARGET_SWEEP_S
    return s


def _verdict(met: bool | None) -> str:
    return "not evaluated" if met is None else ("MET" if met else "NOT MET")


def header_lines(result: dict[str, Any]) -> list[str]:
    m, st, fit = result["machine"], result["settings"], result["fit"]
    return [
        f"# nkdefections forecast and sweep benchmark ({result['created']})",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['platform']}, Python {m['python']}; "
        f"code {m['code_version']}; 1-min load average {m['loadavg_start']:.2f} at start, "
        f"{m['loadavg_end']:.2f} at the end.",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        f"PyTensor: linker {m['pytensor']['linker']}, compiledir {m['pytensor']['compiledir']}.",
        "",
        f"Fit {fit['fit_id']}: {fit['chains']} chains x {fit['draws']} draws, "
        + ("loaded from the cache" if fit["cache_hit"] else "sampled now (cache miss) and saved")
        + f" in {fit['seconds']:.1f} s ({fit['cache_dir']}).",
        f"{st['repeat']} repeat(s), medians shown" + (", QUICK smoke run." if st["quick"] else "."),
    ]


def forecast_lines(result: dict[str, Any]) -> list[str]:
    st, fit, s, fc_runs = result["settings"], result["fit"], result["summary"], result["forecast_runs"]
    lines = [
        f"## 1. Forecast: {st['n_scenarios']} scenarios x {st['n_years']} years x {fit['chains'] * fit['draws']} draws",
        "",
        "Scenarios: "
        + ", ".join(st["scenarios"])
        + (f" (sd removed from {', '.join(st['sd_removed'])})" if st["sd_removed"] else "")
        + ".",
        "",
        markdown_table(
            [
                "method",
                "calls",
                "wall s",
                "compile s (graph + numba JIT)",
                "model build s",
                "first call s",
                "per call s",
            ],
            [
                ["forecast()", "1", _fmt(s["forecast_s"], 3), "-", "-", _fmt(s["forecast_s"], 3), "-"],
                [
                    "build_forecast_model + pm.sample_posterior_predictive",
                    str(st["n_scenarios"]),
                    _fmt(s["pymc_s"]),
                    f"{_fmt(s['pymc_compile_s'])} ({_fmt(s['pymc_graph_compile_s'])} + "
                    f"{_fmt(s['pymc_numba_jit_after_s'])})",
                    _fmt(s["pymc_build_s"], 3),
                    _fmt(s["pymc_first_call_s"]),
                    _fmt(s["pymc_per_call_median_s"]),
                ],
            ],
        ),
        "",
        f"Speed-up of forecast(): {_fmt(s['ratio'], 1)}x "
        f"({_fmt(s['ratio_without_compile'], 1)}x without PyMC's compilation). "
        f"Target >= {TARGET_RATIO:g}x: {_verdict(s['ratio_met'])}.",
    ]
    if len(fc_runs) > 1:
        lines.append(
            "Per repeat: "
            + "; ".join(
                f"{r['forecast_s']:.3f} s vs {r['pymc_s']:.2f} s = {r['ratio']:.1f}x "
                f"(load {r['loadavg_1min_before']:.2f})"
                for r in fc_runs
            )
        )
    header = [
        "scenario",
        f"years within {REL_TOL:.0%}",
        "max |rel diff|",
        "in year",
        "max z",
        "2017 median fc/pymc",
        "2030 median fc/pymc",
        "agrees",
    ]
    body = []
    for c in fc_runs[-1]["calls"]:
        a = c["agreement"]
        body.append(
            [
                c["scenario"],
                f"{a['years_within_rel_tol']}/{st['n_years']}",
                f"{a['max_abs_rel_diff']:.1%}",
                str(a["worst_year"]),
                f"{a['max_z']:.1f}",
                f"{a['median_forecast'][0]:.0f}/{a['median_pymc'][0]:.0f}",
                f"{a['median_forecast'][-1]:.0f}/{a['median_pymc'][-1]:.0f}",
                "yes" if a["ok"] else "NO",
            ]
        )
    lines += [
        "",
        f"Agreement (repeat {len(fc_runs)}): median arrivals per scenario and year, forecast() vs PyMC; a year "
        f"agrees if within {REL_TOL:.0%} or within {Z_TOL:g} Monte Carlo standard errors of the difference.",
        "",
        markdown_table(header, body),
        "",
        f"All scenarios agree in every repeat: {'yes' if s['agree'] else 'NO'}.",
    ]
    return lines


def sweep_lines(result: dict[str, Any]) -> list[str]:
    st, s, sw_runs = result["settings"], result["summary"], result["sweep_runs"]
    header = [
        "run",
        "jobs",
        "wall s",
        "exit",
        "run.json",
        "cache hits",
        "sweep_table jobs",
        "sum of job run() s",
        "start-up s",
        "job interval s",
        "load before",
    ]
    body = [
        [
            r["label"],
            str(r["expected_jobs"]),
            _fmt(r["wall_s"], 1),
            str(r["returncode"]),
            f"{r.get('run_json', 0)}/{r['expected_jobs']}",
            f"{r.get('cache_hits', 0)}/{r['expected_jobs']}",
            str(r.get("sweep_table_jobs")),
            _fmt(r.get("sum_job_total_s"), 1),
            _fmt(r.get("startup_to_first_job_s"), 1),
            _fmt(r.get("job_interval_median_s"), 3),
            _fmt(r["loadavg_1min_before"]),
        ]
        for r in sw_runs
    ]
    lines = [
        f"## 2. Multirun sweep, cached fit ({st['sweep_jobs']} jobs)",
        "",
        "Command (cwd: a fresh temporary folder): `" + result["sweep_commands"]["sequential"] + "`",
        "Parallel: the same plus `hydra/launcher=local_parallel` (joblib, 2 workers). "
        "probe: the same command with a single job (sweep.border=1.0 sweep.sanctions=8).",
        "",
        markdown_table(header, body),
        "",
        f"Sequential {st['sweep_jobs']}-job sweep: {_fmt(s['sequential_wall_s'], 1)} s; "
        f"parallel: {_fmt(s['parallel_wall_s'], 1)} s. Target < {TARGET_SWEEP_S:g} s: sequential "
        f"{_verdict(s['sweep_met'])}, parallel {_verdict(s['sweep_parallel_met'])}.",
        f"Checks (every job folder, run.json with cache_hit true, sweep_table.csv with every job): sequential "
        f"{'pass' if s['sequential_ok'] else 'FAIL'}, parallel {'pass' if s['parallel_ok'] else 'FAIL'}.",
    ]
    if s.get("marginal_per_job_s") is not None:
        lines.append(
            f"Where the time goes (sequential): the 1-job sweep takes {_fmt(s['probe_wall_s'], 1)} s (interpreter, "
            f"imports, Hydra, fit load, one job, gather); each further job adds {_fmt(s['marginal_per_job_s'], 3)} s "
            f"(median interval between Hydra's launch lines {_fmt(s['sequential_job_interval_s'], 3)} s), of which "
            f"{_fmt((s['sequential_sum_job_total_s'] or 0) / st['sweep_jobs'], 3)} s inside pipeline.run."
        )
    return lines


def report_text(result: dict[str, Any]) -> str:
    """The human-readable report (printed, and saved as markdown)."""
    lines = header_lines(result)
    if result["forecast_runs"]:
        lines += [""] + forecast_lines(result)
    if result["sweep_runs"]:
        lines += [""] + sweep_lines(result)
    if result["settings"]["quick"]:
        lines.append("\nQuick smoke run: not the benchmark's sizes; the targets refer to the full run.")
    lines += ["", NOTES]
    return "\n".join(lines)


NOTES = """\
Notes: forecast() is one call for all scenarios (draw-level numpy, common random numbers). The PyMC
column is, per scenario, build_forecast_model(...) plus pm.sample_posterior_predictive(model.idata,
var_names=["arrivals_future"], model=fm), which builds a forward-sampling function ("graph": timed by a
pass-through wrapper of pymc.sampling.forward.compile_forward_sampling_function) and calls it once per
draw; PyTensor's numba backend JIT-compiles it (or loads it from its cache) on the first call ("numba
JIT": numba:compile events outside the graph step). The compile caches are the user's own (PYTENSOR_FLAGS
decides), so a second run mostly loads from them.
Sweep wall = the whole CLI command timed by this script; start-up = process start to Hydra's first
"#0 :" launch line; job interval = median time between successive launch lines (sequential only);
sum of job run() s = the jobs' own run.json "seconds.total" (pipeline.run: fit load, forecast, tables,
writing). The machine is shared: compare medians of --repeat 3 and the load averages."""


# ----------------------------------------------------------------------------
# Machine and main
# ----------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """The fit benchmark's machine record plus PyTensor's compile settings."""
    import pytensor
    from run import machine_info as base_machine_info  # benchmarks/ is on sys.path when run as a script

    return {
        **base_machine_info(PACKAGES),
        "pytensor": {"linker": str(pytensor.config.linker), "compiledir": str(pytensor.config.compiledir)},
    }


def default_cache_dir() -> Path:
    """The CLI's default fit cache when run from the repository: ``$NKDEFECTIONS_CACHE_DIR/fits`` or ``.cache/fits``."""
    root = os.environ.get("NKDEFECTIONS_CACHE_DIR")
    return (Path(root) if root else REPO / ".cache") / "fits"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Time forecast() against PyMC, and a cached-fit 100-job CLI sweep.")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 scenarios, 2 x 2 sweeps")
    ap.add_argument("--repeat", type=int, default=1, help="repeat every measurement N times, report medians")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="forecast seed of repeat 1 (repeat i: seed+i-1)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="fit cache (default: the CLI's, .cache/fits)")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="where the JSON and markdown go")
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds allowed per sweep command")
    ap.add_argument("--skip-forecast", action="store_true", help="only the sweeps")
    ap.add_argument("--skip-sweep", action="store_true", help="only the forecast comparison")
    ap.add_argument("--keep", action="store_true", help="keep the sweeps' temporary folders")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from nkdefections.config import Horizon

    cache_dir = (args.cache_dir or default_cache_dir()).resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    created = dt.datetime.now(dt.UTC)
    stamp = created.strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    log_dir = args.out_dir / f"logs-forecast-{stamp}"
    log_dir.mkdir()
    work = Path(tempfile.mkdtemp(prefix="nkbench-forecast-"))
    machine = machine_info()

    print(f"fit: loading (or sampling) the default fit, cache {cache_dir}", flush=True)
    model, fit = load_fit(cache_dir)
    print(
        f"fit {fit['fit_id']}: {'cache hit' if fit['cache_hit'] else 'sampled'} in {fit['seconds']:.1f} s, "
        f"{fit['chains']} x {fit['draws']} draws",
        flush=True,
    )
    scenarios, stripped = scenario_set(args.quick)
    grid = QUICK_GRID if args.quick else FULL_GRID
    forecast_runs: list[dict[str, Any]] = []
    sweep_runs: list[dict[str, Any]] = []
    try:
        for i in range(args.repeat):
            tag = f"r{i + 1}"
            if not args.skip_forecast:
                rec = bench_forecast(model, scenarios, args.seed + i)
                rec["repeat"] = i + 1
                forecast_runs.append(rec)
                print(
                    f"[{tag}] forecast(): {rec['forecast_s']:.3f} s; PyMC x{len(scenarios)}: {rec['pymc_s']:.2f} s "
                    f"(compile {rec['pymc_compile_s']:.2f} s) -> {rec['ratio']:.1f}x; "
                    f"agree: {rec['agree']}",
                    flush=True,
                )
            if not args.skip_sweep:
                runs = [("probe", PROBE_GRID, False), ("sweep-seq", grid, False), ("sweep-par", grid, True)]
                for label, g, parallel in runs:
                    rec = run_sweep(f"{label}-{tag}", g, cache_dir, work, log_dir, parallel, args.timeout)
                    rec["repeat"] = i + 1
                    sweep_runs.append(rec)
                    print(
                        f"[{tag}] {label} ({rec['expected_jobs']} jobs): {rec['wall_s']:.1f} s, "
                        f"exit {rec['returncode']}, cache hits {rec.get('cache_hits', 0)}/{rec['expected_jobs']}, "
                        f"ok {rec['ok']}",
                        flush=True,
                    )
                    if label == "probe" and rec.get("cache_hits") != 1:
                        print(
                            "  WARNING: the CLI did not reuse the benchmark's cached fit (different fit key?); "
                            "the sweeps below use whatever fit the CLI cached now.",
                            flush=True,
                        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result: dict[str, Any] = {
        "created": created.isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/forecast.py", *(argv if argv is not None else sys.argv[1:])]),
        "settings": {
            "quick": args.quick,
            "repeat": args.repeat,
            "seeds": [args.seed + i for i in range(args.repeat)],
            "scenarios": [s.name for s in scenarios],
            "sd_removed": stripped,
            "n_scenarios": len(scenarios),
            "n_years": len(Horizon().years),
            "sweep_grid": grid,
            "sweep_jobs": grid_size(grid),
            "rel_tol": REL_TOL,
            "z_tol": Z_TOL,
            "targets": {"ratio_min": TARGET_RATIO, "sweep_max_s": TARGET_SWEEP_S},
        },
        "machine": {**machine, "loadavg_end": os.getloadavg()[0]},
        "fit": fit,
        "sweep_commands": {
            "sequential": " ".join(
                f"'{c}'" if "(" in c else c for c in sweep_command(grid, cache_dir, Path("<tmp>/sweep"), False)
            ),
            "parallel": " ".join(
                f"'{c}'" if "(" in c else c for c in sweep_command(grid, cache_dir, Path("<tmp>/sweep"), True)
            ),
        },
        "forecast_runs": forecast_runs,
        "sweep_runs": sweep_runs,
    }
    result["summary"] = summarise(result)
    text = report_text(result)
    print("\n" + text, flush=True)
    (args.out_dir / f"forecast-{stamp}.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out_dir / f"forecast-{stamp}.md").write_text(text + "\n")
    print(f"\nwrote {args.out_dir / f'forecast-{stamp}.json'} and .md", flush=True)
    ok = all(r["agree"] for r in forecast_runs) and all(r["ok"] for r in sweep_runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
