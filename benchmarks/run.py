"""Time the project's fit against a plain PyMC baseline, cold and warm.

Usage::

    python benchmarks/run.py                 # full: 4 chains x (1000 tune + 1000 draws)
    python benchmarks/run.py --repeat 3      # median of three runs of everything
    python benchmarks/run.py --quick         # smoke version (100 + 100), seconds not minutes

Every measurement is a fresh ``python benchmarks/worker.py`` process, timed by this
parent from start to exit: the wall time is what a user waits for.  A *cold* run
starts with empty compile caches (a new ``PYTENSOR_FLAGS=base_compiledir``, a new
``NKDEFECTIONS_CACHE_DIR`` for the JAX persistent cache, a new ``NUMBA_CACHE_DIR``);
the *warm* run right after it reuses the same directories, like a user's second
run.  The variants (see ``worker.py``):

* ``baseline-default``: the model as a user would first write it (the latent as
  innovations, ``noncentered``) sampled with ``pm.sample()`` at PyMC's defaults (nutpie when
  installed, its default chains): the baseline of the ratios;
* ``baseline-default-logmu``: ``pm.sample()`` defaults on the ``log_mu`` form (the geometry's share);
* ``project-nutpie-noncentered``: the project's sampler settings on the innovation form (the sampler's share);
* ``baseline-pymc``: the innovation form, plain ``pm.sample(..., nuts_sampler="pymc")``, 4 chains;
* ``project-nutpie``: the project's default ``DefectionModel().fit(...)``: the fit engine
  (nutpie on the one compiled program every refit shares);
* ``project-numpyro``, ``project-pymc``: the project's fit through ``pm.sample`` with the other samplers.

A full run also writes ``fit-latest.json`` (warm/cold ratios, times, ESS ratio, leapfrog
steps, divergences).  Results (JSON and a markdown table, with date, machine and package versions) go to
``benchmarks/results/`` (git-ignored); the workers' logs to a ``logs-*`` folder
next to them.  The exit status is 0 when every measurement ran, 1 otherwise; it
does not depend on the speed-up target, which is reported, not enforced.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
DEFAULT_OUT = HERE / "results"
VARIANTS = (  # as in worker.py
    "baseline-default",  # pm.sample() with PyMC's defaults on the innovation form (the model as first written)
    "baseline-default-logmu",  # pm.sample() with PyMC's defaults on the log_mu form: the geometry's share
    "project-nutpie-noncentered",  # the project's sampler settings on the innovation form: the sampler's share
    "project-nutpie",  # the project's default fit: the fit engine (log_mu form + nutpie, low-rank mass matrix)
    "project-numpyro",  # the project's fit through pm.sample(nuts_sampler="numpyro") (the previous default)
    "baseline-pymc",  # PyMC's own NUTS, 4 chains, on the innovation form (the earlier baseline)
    "project-pymc",
)
DEFAULT_VARIANTS = VARIANTS[:4]
BASELINE, PROJECT = "baseline-default", "project-nutpie"
CACHES = ("cold", "warm")
DEFAULT_SEED = 20161231  # SamplerConfig's default seed
CHAINS, CORES = 4, 2
FULL = {"draws": 1000, "tune": 1000}
QUICK = {"draws": 100, "tune": 100}
TARGET_SPEEDUP = 5.0
#: The machine-readable summary of the latest full run (issue 9's targets read it).
LATEST = "fit-latest.json"
#: Variables that would let a worker find caches outside the benchmark's own folders.
CACHE_ENV = (
    "PYTENSOR_FLAGS",
    "NKDEFECTIONS_CACHE_DIR",
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES",
    "XLA_FLAGS",
    "NUMBA_CACHE_DIR",
)
PACKAGES = (
    "nkdefections",
    "pymc",
    "pytensor",
    "numba",
    "jax",
    "jaxlib",
    "numpyro",
    "nutpie",
    "arviz",
    "numpy",
    "scipy",
    "xarray",
)


# ----------------------------------------------------------------------------
# Running the workers
# ----------------------------------------------------------------------------


def worker_env(cache_root: Path) -> dict[str, str]:
    """The environment of a worker whose compile caches all live under ``cache_root``."""
    env = {k: v for k, v in os.environ.items() if k not in CACHE_ENV}
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache_root / 'pytensor'}"
    env["NKDEFECTIONS_CACHE_DIR"] = str(cache_root / "nkdefections")
    env["NUMBA_CACHE_DIR"] = str(cache_root / "numba")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def dir_stats(path: Path) -> dict[str, int]:
    """Number of files and bytes under ``path`` (to show that a cold run filled the caches)."""
    files = [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def run_worker(
    variant: str,
    cache: str,
    cache_root: Path,
    *,
    draws: int,
    tune: int,
    seed: int,
    log_path: Path,
    timeout: float,
) -> dict[str, Any]:
    """Run one measurement in a fresh process; return the worker's record plus the wall time."""
    out = log_path.with_suffix(".json")
    cmd = [
        sys.executable,
        str(WORKER),
        variant,
        "--draws",
        str(draws),
        "--tune",
        str(tune),
        "--seed",
        str(seed),
        "--chains",
        str(CHAINS),
        "--cores",
        str(CORES),
        "--out",
        str(out),
    ]
    load_before = os.getloadavg()[0]
    caches_before = dir_stats(cache_root)
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd,
                env=worker_env(cache_root),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
            returncode: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            returncode = None
        wall = time.perf_counter() - t0
    record: dict[str, Any] = {"variant": variant, "cache": cache, "seed": seed}
    if returncode == 0 and out.is_file():
        record.update(json.loads(out.read_text()))
        record["ok"] = True
    else:
        record["ok"] = False
        record["error"] = "timeout" if returncode is None else f"exit status {returncode}"
        record["log_tail"] = log_path.read_text()[-3000:]
    record.update(
        wall_s=wall,
        loadavg_1min_before=load_before,
        cache_files_before=caches_before["files"],
        cache_files_after=dir_stats(cache_root)["files"],
        log=str(log_path),
    )
    return record


def derived(rec: dict[str, Any]) -> dict[str, Any]:
    """Add the per-run rates and the time outside ``pm.sample`` to a successful record."""
    ess, wall, samp, call = rec["min_ess_bulk"], rec["wall_s"], rec["sampling_time_s"], rec["pm_sample_s"]
    rec["ess_per_wall_s"] = ess / wall
    rec["ess_per_sampling_s"] = ess / samp if samp else None
    rec["outside_pm_sample_s"] = wall - call  # interpreter, imports, data, model, diagnostics
    rec["jit_compile_s"] = rec["jit"].get("compile_s")
    rec["pm_sample_minus_compile_s"] = call - (rec["jit_compile_s"] or 0.0)
    return rec


# ----------------------------------------------------------------------------
# Summaries
# ----------------------------------------------------------------------------

SUMMARY_FIELDS = (
    "wall_s",
    "mean_leapfrog_steps",
    "pm_sample_s",
    "sampling_time_s",
    "jit_compile_s",
    "pm_sample_minus_compile_s",
    "outside_pm_sample_s",
    "min_ess_bulk",
    "ess_per_sampling_s",
    "ess_per_wall_s",
    "divergences",
    "max_rhat",
)


def _median(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(statistics.median(vals)) if vals else None


def summarise(records: list[dict[str, Any]], variants: Sequence[str]) -> list[dict[str, Any]]:
    """Median of every field per (variant, cache) over the successful repeats."""
    rows = []
    for variant in variants:
        for cache in CACHES:
            runs = [r for r in records if r["variant"] == variant and r["cache"] == cache and r["ok"]]
            failed = sum(1 for r in records if r["variant"] == variant and r["cache"] == cache and not r["ok"])
            row: dict[str, Any] = {"variant": variant, "cache": cache, "n": len(runs), "failed": failed}
            for f in SUMMARY_FIELDS:
                row[f] = _median([r[f] for r in runs])
            row["gate_passed"] = sum(1 for r in runs if r.get("gate_passed"))
            walls = [r["wall_s"] for r in runs]
            row["wall_min_s"] = min(walls) if walls else None
            row["wall_max_s"] = max(walls) if walls else None
            if runs and runs[0]["jit"].get("kind") == "jax":
                row["jax_cache_hits"] = _median([r["jit"]["cache_hits"] for r in runs])
                row["jax_cache_misses"] = _median([r["jit"]["cache_misses"] for r in runs])
                row["jax_devices"] = runs[0]["jit"]["jax_devices"]
            rows.append(row)
    return rows


def _get(rows: list[dict[str, Any]], variant: str, cache: str, field: str) -> float | None:
    for r in rows:
        if r["variant"] == variant and r["cache"] == cache:
            return r[field]
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(rows: list[dict[str, Any]], variants: Sequence[str]) -> dict[str, Any]:
    """Speed-up and ESS ratios of every variant against the baseline (medians)."""
    out: dict[str, Any] = {}
    for v in variants:
        if v == BASELINE:
            continue
        out[v] = {
            "wall_speedup_warm": _ratio(_get(rows, BASELINE, "warm", "wall_s"), _get(rows, v, "warm", "wall_s")),
            "wall_speedup_cold": _ratio(_get(rows, BASELINE, "cold", "wall_s"), _get(rows, v, "cold", "wall_s")),
            "min_ess_ratio_warm": _ratio(
                _get(rows, v, "warm", "min_ess_bulk"), _get(rows, BASELINE, "warm", "min_ess_bulk")
            ),
            "min_ess_ratio_cold": _ratio(
                _get(rows, v, "cold", "min_ess_bulk"), _get(rows, BASELINE, "cold", "min_ess_bulk")
            ),
            "ess_per_wall_s_ratio_warm": _ratio(
                _get(rows, v, "warm", "ess_per_wall_s"), _get(rows, BASELINE, "warm", "ess_per_wall_s")
            ),
        }
    return out


def latest_summary(result: dict[str, Any]) -> dict[str, Any]:
    """``fit-latest.json``: the headline numbers of a full run, flat, for scripts and the README."""
    rows, rat = result["summary"], result["ratios"].get(PROJECT, {})
    runs = [r for r in result["runs"] if r["ok"] and r["variant"] == PROJECT]
    steps = [r.get("mean_leapfrog_steps") for r in runs if r.get("mean_leapfrog_steps") is not None]
    return {
        "created": result["created"],
        "code_version": result["machine"]["code_version"],
        "baseline": BASELINE,
        "project": PROJECT,
        "warm_ratio": rat.get("wall_speedup_warm"),
        "cold_ratio": rat.get("wall_speedup_cold"),
        "project_warm_s": _get(rows, PROJECT, "warm", "wall_s"),
        "project_cold_s": _get(rows, PROJECT, "cold", "wall_s"),
        "baseline_warm_s": _get(rows, BASELINE, "warm", "wall_s"),
        "baseline_cold_s": _get(rows, BASELINE, "cold", "wall_s"),
        "min_ess_ratio": rat.get("min_ess_ratio_warm"),
        "mean_leapfrog_steps": _median(steps),
        "divergences": max((r["divergences"] for r in runs), default=None),
        "target_met": result["target"]["met"],
        "ratios": result["ratios"],
        "leapfrog_steps_by_variant": {
            v: _median([r.get("mean_leapfrog_steps") for r in result["runs"] if r["ok"] and r["variant"] == v])
            for v in result["variants"]
        },
    }


def verdict(rat: dict[str, Any]) -> dict[str, Any]:
    """Is the project's fit >= TARGET_SPEEDUP x faster (warm wall) than the baseline at equal or better min ESS?"""
    r = rat.get(PROJECT)
    if not r or r["wall_speedup_warm"] is None or r["min_ess_ratio_warm"] is None:
        return {"met": None, "reason": f"needs successful warm runs of {BASELINE} and {PROJECT}"}
    fast = r["wall_speedup_warm"] >= TARGET_SPEEDUP
    ess_ok = r["min_ess_ratio_warm"] >= 1.0
    reasons = []
    if not fast:
        reasons.append(f"warm wall speed-up {r['wall_speedup_warm']:.2f}x < {TARGET_SPEEDUP:g}x")
    if not ess_ok:
        reasons.append(f"min bulk ESS is {r['min_ess_ratio_warm']:.2f}x the baseline's (< 1)")
    return {"met": fast and ess_ok, "reason": "; ".join(reasons) or "both conditions hold"}


# ----------------------------------------------------------------------------
# Formatting
# ----------------------------------------------------------------------------


def _fmt(x: float | None, nd: int = 1) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _fmtx(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


Column = tuple[str, Callable[[dict[str, Any]], str]]

RESULT_COLUMNS: tuple[Column, ...] = (
    ("variant", lambda r: r["variant"]),
    ("cache", lambda r: r["cache"]),
    ("n", lambda r: str(r["n"]) + (f" ({r['failed']} failed)" if r["failed"] else "")),
    ("wall s", lambda r: _fmt(r["wall_s"])),
    ("wall range s", lambda r: f"{_fmt(r['wall_min_s'])}-{_fmt(r['wall_max_s'])}"),
    ("sampling s", lambda r: _fmt(r["sampling_time_s"])),
    ("min ESS bulk", lambda r: _fmt(r["min_ess_bulk"], 0)),
    ("ESS/s sampling", lambda r: _fmt(r["ess_per_sampling_s"])),
    ("ESS/s wall", lambda r: _fmt(r["ess_per_wall_s"])),
    ("divergences", lambda r: _fmt(r["divergences"], 0)),
    ("max R-hat", lambda r: _fmt(r["max_rhat"], 3)),
    ("gate passed", lambda r: f"{r['gate_passed']}/{r['n']}"),
)

TIME_COLUMNS: tuple[Column, ...] = (
    ("variant", lambda r: r["variant"]),
    ("cache", lambda r: r["cache"]),
    ("wall s", lambda r: _fmt(r["wall_s"])),
    ("outside pm.sample s", lambda r: _fmt(r["outside_pm_sample_s"])),
    ("pm.sample s", lambda r: _fmt(r["pm_sample_s"])),
    ("jit compile s", lambda r: _fmt(r["jit_compile_s"])),
    ("pm.sample minus compile s", lambda r: _fmt(r["pm_sample_minus_compile_s"])),
    ("reported sampling s", lambda r: _fmt(r["sampling_time_s"])),
    (
        "JAX cache hits/misses",
        lambda r: f"{_fmt(r['jax_cache_hits'], 0)}/{_fmt(r['jax_cache_misses'], 0)}" if "jax_cache_hits" in r else "-",
    ),
)


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table (also readable as plain text)."""
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(b) for b in body)])


def columns_table(rows: list[dict[str, Any]], columns: Sequence[Column]) -> str:
    """The medians in ``rows`` as a markdown table of ``columns``."""
    return markdown_table([c for c, _ in columns], [[f(r) for _, f in columns] for r in rows])


def ratios_table(rat: dict[str, Any]) -> str:
    """Ratios against the baseline as a markdown table."""
    header = [
        f"variant vs {BASELINE}",
        "wall speed-up warm",
        "wall speed-up cold",
        "min ESS ratio warm",
        "min ESS ratio cold",
        "ESS/s-wall ratio warm",
    ]
    body = [
        [
            v,
            _fmtx(r["wall_speedup_warm"]),
            _fmtx(r["wall_speedup_cold"]),
            _fmtx(r["min_ess_ratio_warm"]),
            _fmtx(r["min_ess_ratio_cold"]),
            _fmtx(r["ess_per_wall_s_ratio_warm"]),
        ]
        for v, r in rat.items()
    ]
    return markdown_table(header, body)


def ranking(rows: list[dict[str, Any]], variants: Sequence[str]) -> list[str]:
    """Variants from the shortest to the longest warm wall time."""
    warm = [(_get(rows, v, "warm", "wall_s"), v) for v in variants]
    return [v for t, v in sorted((t, v) for t, v in warm if t is not None)]


NOTES = """\
Columns: wall = the whole worker process as timed by the parent (what a user waits for);
pm.sample = the pm.sample call, compilation included; jit compile = numba or JAX compilation
(tracing, lowering, XLA compile or cache load) seen in the main process during pm.sample;
outside pm.sample = interpreter start, imports, data, model build, diagnostics;
sampling = PyMC's reported sampling_time, which differs per sampler (numpyro: includes JAX
tracing and XLA compilation; pymc: includes starting its worker processes; nutpie: sampling only).
ESS = min bulk ESS over all free parameters; divergences are post-tuning; gate passed = runs
that pass the project's default convergence gate (R-hat <= 1.01, bulk and tail ESS >= 400, no
divergences; reported, not enforced); cold = empty compile caches, warm = the same caches
reused by a second process."""


def report_text(result: dict[str, Any]) -> str:
    """The human-readable report (printed, and saved as markdown)."""
    s, m = result["settings"], result["machine"]
    rows, rat, ver = result["summary"], result["ratios"], result["target"]
    lines = [
        f"# nkdefections sampler benchmark ({result['created']})",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['platform']}, Python {m['python']}; "
        f"code {m['code_version']}; 1-min load average {m['loadavg_start']:.2f} at start.",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        "",
        f"Settings: {s['chains']} chains x ({s['tune']} tune + {s['draws']} draws), cores={s['cores']}, "
        f"seeds {s['seeds']}, {s['repeat']} repeat(s) (medians shown)" + (", QUICK smoke run." if s["quick"] else "."),
        "",
        columns_table(rows, RESULT_COLUMNS),
        "",
        ratios_table(rat),
        "",
        "Where the time goes (medians):",
        "",
        columns_table(rows, TIME_COLUMNS),
        "",
    ]
    order = ranking(rows, result["variants"])
    if order:
        best = order[0]
        lines.append(
            "Warm wall time, fastest first: "
            + " < ".join(f"{v} {_fmt(_get(rows, v, 'warm', 'wall_s'))} s" for v in order)
        )
        if len(order) > 1:
            lead = _ratio(_get(rows, order[1], "warm", "wall_s"), _get(rows, best, "warm", "wall_s"))
            lines.append(f"Fastest: {best}, {_fmtx(lead)} faster than the runner-up {order[1]} (warm wall).")
    target = f"Target (>= {TARGET_SPEEDUP:g}x warm wall at equal or better min ESS, {PROJECT} vs {BASELINE})"
    if ver["met"] is None:
        lines.append(f"{target}: not evaluated: {ver['reason']}.")
    else:
        lines.append(f"{target}: {'MET' if ver['met'] else 'NOT MET'} ({ver['reason']}).")
    if s["quick"]:
        lines.append("Quick smoke run: too few draws for the ratios to mean anything; run without --quick.")
    lines += ["", NOTES]
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# Machine and main
# ----------------------------------------------------------------------------


def machine_info(packages_of_interest: Sequence[str] = PACKAGES) -> dict[str, Any]:
    """nproc, CPU, OS, Python, package versions and the code version (shared by forecast.py)."""
    from nkdefections.provenance import code_version, machine, package_versions

    packages = package_versions(packages_of_interest)
    code = code_version()
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": machine()["cpu"] or "unknown CPU",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "executable": sys.executable,
        "packages": packages,
        "code_version": code,
        "loadavg_start": os.getloadavg()[0],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Time the project's fit against plain PyMC, cold and warm, each in a fresh process."
    )
    ap.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK['tune']} tune + {QUICK['draws']} draws")
    ap.add_argument("--repeat", type=int, default=1, help="repeat every measurement N times, report medians")
    ap.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=list(DEFAULT_VARIANTS), help="which to run"
    )
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of repeat 1; repeat i uses seed+i-1")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="where the JSON and markdown go")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per measurement")
    ap.add_argument("--keep-caches", action="store_true", help="keep the temporary cache folders")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measurement, print the report, write JSON and markdown; 0 if all ran."""
    args = parse_args(argv)
    size = QUICK if args.quick else FULL
    variants = [v for v in VARIANTS if v in args.variants]
    created = dt.datetime.now(dt.UTC)
    stamp = created.strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    log_dir = args.out_dir / f"logs-{stamp}"
    log_dir.mkdir()
    tmp_root = Path(tempfile.mkdtemp(prefix="nkbench-"))
    machine = machine_info()
    records: list[dict[str, Any]] = []
    total = args.repeat * len(variants) * len(CACHES)
    print(
        f"{total} measurements, {CHAINS} chains x ({size['tune']} tune + {size['draws']} draws); logs in {log_dir}",
        flush=True,
    )
    try:
        for i in range(args.repeat):
            seed = args.seed + i
            for variant in variants:
                cache_root = tmp_root / f"{variant}-r{i + 1}"
                cache_root.mkdir()
                for cache in CACHES:  # cold fills the fresh folders, warm reuses them
                    rec = run_worker(
                        variant,
                        cache,
                        cache_root,
                        draws=size["draws"],
                        tune=size["tune"],
                        seed=seed,
                        log_path=log_dir / f"{variant}-{cache}-r{i + 1}.log",
                        timeout=args.timeout,
                    )
                    rec["repeat"] = i + 1
                    if rec["ok"]:
                        derived(rec)
                        msg = (
                            f"wall {rec['wall_s']:.1f} s, pm.sample {rec['pm_sample_s']:.1f} s, "
                            f"min ESS {rec['min_ess_bulk']:.0f}, divergences {rec['divergences']}"
                        )
                    else:
                        msg = f"FAILED ({rec['error']}), see {rec['log']}"
                    records.append(rec)
                    print(f"[{len(records)}/{total}] {variant:16s} {cache} r{i + 1}: {msg}", flush=True)
                if not args.keep_caches:
                    shutil.rmtree(cache_root, ignore_errors=True)
    finally:
        if not args.keep_caches:
            shutil.rmtree(tmp_root, ignore_errors=True)
    summary = summarise(records, variants)
    rat = ratios(summary, variants)
    result = {
        "created": created.isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "variants": variants,
        "settings": {
            **size,
            "chains": CHAINS,
            "cores": CORES,
            "quick": args.quick,
            "repeat": args.repeat,
            "seeds": [args.seed + i for i in range(args.repeat)],
        },
        "machine": {**machine, "loadavg_end": os.getloadavg()[0]},
        "summary": summary,
        "ratios": rat,
        "target": verdict(rat),
        "runs": records,
    }
    text = report_text(result)
    print("\n" + text, flush=True)
    (args.out_dir / f"bench-{stamp}.json").write_text(json.dumps(result, indent=2))
    (args.out_dir / f"bench-{stamp}.md").write_text(text + "\n")
    if not args.quick:
        (args.out_dir / LATEST).write_text(json.dumps(latest_summary(result), indent=2) + "\n")
    print(f"\nwrote {args.out_dir / f'bench-{stamp}.json'} and .md", flush=True)
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
