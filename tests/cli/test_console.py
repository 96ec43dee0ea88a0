"""What the ``nkdefections`` command prints, and how it stops.

Pure tests (closing summary on a fake run folder, warning lines, the fit progress line)
need no fit.  One test puts a truncated NetCDF in the fit cache and checks it is set
aside and refitted; one sends Ctrl-C to the real console script while it samples.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from nkdefections.cli.console import (
    EXIT_INTERRUPTED,
    INTERRUPTED,
    WarningPrinter,
    format_warning,
    gate_line,
    run_summary,
)

GATE = {"rhat_max": 1.01, "ess_bulk_min": 400, "ess_tail_min": 400, "max_divergences": 0, "enforce": True}


def _fake_run(root: Path, *, passed: bool = True, enforce: bool = True, forecast: bool = True, report: bool = True):
    root.mkdir()
    meta = {
        "cache_hit": False,
        "convergence": {
            "passed": passed,
            "max_rhat": 1.004 if passed else 1.079,
            "min_ess_bulk": 1314.2 if passed else 18.9,
            "min_ess_tail": 1500.0 if passed else 56.5,
            "divergences": 0,
            "chains": 4,
            "draws": 1000,
        },
        "gate_config": {**GATE, "enforce": enforce},
        "extrapolated": ["border_crackdown"] if forecast else [],
        "seconds": {"fit_or_load": 12.3, "total": 41.6},
    }
    (root / "run.json").write_text(json.dumps(meta))
    pd.DataFrame(
        {
            "driver": ["border", "economy", "sanctions"],
            "unit": ["+1 border index", "+1 pp real GDP growth", "+1 sanctions index"],
            "lag_years": [0, 1, 0],
            "median_pct": [-46.8, 0.58, 4.5],
            "mean_pct": [-45.7, 0.5, 5.0],
            "q05_pct": [-63.5, -3.61, -2.73],
            "q95_pct": [-20.4, 4.12, 14.42],
            "prob_positive": [0.005, 0.59, 0.855],
        }
    ).to_csv(root / "effects.csv", index=False)
    if forecast:
        cols = dict(mean=0.0, lower_50=0.0, upper_50=0.0, lower_95=0.0, upper_95=0.0)
        pd.DataFrame(
            [
                dict(scenario="status_quo", year="2017", median=1510.5, lower_80=1131.4, upper_80=1983.2,
                     extrapolated=False, extrapolated_drivers="", **cols),
                dict(scenario="status_quo", year="cumulative 2017-2030", median=21957.5, lower_80=15352.8,
                     upper_80=30361.8, extrapolated=False, extrapolated_drivers="", **cols),
                dict(scenario="border_crackdown", year="cumulative 2017-2030", median=11739.0, lower_80=7190.6,
                     upper_80=18227.2, extrapolated=True, extrapolated_drivers="border", **cols),
            ]
        ).to_csv(root / "forecast_summary.csv", index=False)
        pd.DataFrame(
            [
                dict(scenario="border_crackdown", baseline="status_quo", year="2017", prob_greater=0.2),
                dict(scenario="border_crackdown", baseline="status_quo", year="cumulative 2017-2030",
                     prob_greater=0.005),
            ]
        ).to_csv(root / "contrasts.csv", index=False)
    if report:
        (root / "report.html").write_text("<html></html>")
    return root


@pytest.mark.pure
def test_run_summary_shows_gate_effects_scenarios_and_report(tmp_path):
    run = _fake_run(tmp_path / "run")
    text = run_summary(run)
    lines = text.splitlines()
    assert lines[0] == "nkdefections: run finished in 42 s (fit sampled: 4 chains x 1000 draws)"
    assert lines[1].startswith("convergence gate: passed; max R-hat 1.004 (limit 1.01)")
    assert "min ESS bulk 1314 (limit 400) / tail 1500 (limit 400), divergences 0 (limit 0)" in lines[1]
    assert "median, 90% interval" in lines[2]
    border = next(line for line in lines if line.strip().startswith("border "))
    assert "-46.8%" in border and "(-63.5% to -20.4%)" in border and "P>0 0.005" in border
    economy = next(line for line in lines if line.strip().startswith("economy"))
    assert "+0.6%" in economy and "(-3.6% to +4.1%)" in economy and "lag 1" in economy
    assert "cumulative arrivals 2017-2030 (median, 80% interval, P(> status_quo))" in text
    sq = next(line for line in lines if line.strip().startswith("status_quo"))
    assert "21,958" in sq and "(15,353 to 30,362)" in sq and sq.rstrip().endswith("baseline")
    bc = next(line for line in lines if line.strip().startswith("border_crackdown"))
    assert "11,739" in bc and "(7,191 to 18,227)" in bc and "0.005" in bc and "extrapolated: border" in bc
    assert "2017 " not in text.replace("2017-2030", "")  # yearly rows stay in the tables, not the summary
    assert lines[-2] == f"report: {run / 'report.html'}"
    assert lines[-1] == f"all outputs: {run}"


@pytest.mark.pure
def test_run_summary_without_forecast_or_report(tmp_path):
    run = _fake_run(tmp_path / "run", forecast=False, report=False)
    text = run_summary(run)
    assert "scenarios" not in text
    assert "report: none written" in text
    assert "border" in text


@pytest.mark.pure
def test_gate_line_says_when_a_failed_gate_was_not_enforced():
    meta = json.loads(json.dumps({"convergence": {"passed": False, "max_rhat": 1.08}, "gate_config": GATE}))
    assert gate_line(meta).startswith("convergence gate: FAILED; max R-hat 1.080")
    meta["gate_config"]["enforce"] = False
    assert "not enforced (gate.enforce=false): do not trust these numbers" in gate_line(meta)


@pytest.mark.pure
def test_warnings_print_as_one_warning_line_once():
    out = io.StringIO()
    printer = WarningPrinter(out)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = printer
        for _ in range(2):
            warnings.warn("scenario 'x' takes ['border'] outside the 1999-2016 range", UserWarning, stacklevel=1)
        warnings.warn("gate failed:\n  - R-hat > 1.01\nWhat to try: more tuning", UserWarning, stacklevel=1)
    text = out.getvalue()
    assert text.count("warning: scenario 'x'") == 1
    assert "test_console.py" not in text and "UserWarning" not in text and "warnings.warn" not in text
    assert format_warning("a\n  - b") == "warning: a\n  - b\n"
    assert text.splitlines()[1:] == ["warning: gate failed:", "  - R-hat > 1.01", "  What to try: more tuning"]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.pure
def test_fit_progress_is_one_line_and_restores_numpyro():
    pytest.importorskip("numpyro")
    import numpyro.util as nutil

    from nkdefections.model.sampling import FitProgress

    before = (nutil.tqdm_auto, nutil.tqdm)
    tty = _Tty()
    with FitProgress("sampling (numpyro, 10 tune + 10 draws)", stream=tty, interval=0.0) as fp:
        assert nutil.tqdm_auto == fp.bar
        bars = [nutil.tqdm_auto(range(20), position=c) for c in range(4)]  # what numpyro does per chain
        for b in bars:
            b.set_description("Compiling.. ", refresh=True)
            b.update(10)
        assert fp.line().startswith("sampling (numpyro, 10 tune + 10 draws): 4 chains, 40/80 iterations (50%)")
        for _ in nutil.tqdm.trange(5):  # the one-chain path
            pass
        assert fp.done[4] == 5
    assert (nutil.tqdm_auto, nutil.tqdm) == before
    shown = tty.getvalue()
    assert "\n" not in shown  # redrawn in place, never a second line
    assert shown.endswith("\r") and "40/80 iterations" in shown

    log_file = io.StringIO()  # not a terminal: nothing drawn while sampling
    with pytest.raises(KeyboardInterrupt), FitProgress("sampling", stream=log_file):
        nutil.tqdm_auto(range(3), position=0).update(1)
        raise KeyboardInterrupt
    assert log_file.getvalue() == ""
    assert (nutil.tqdm_auto, nutil.tqdm) == before


@pytest.mark.fit
def test_corrupt_fit_cache_entry_is_set_aside_and_refitted(small_fit, tmp_path, monkeypatch):
    """A truncated NetCDF in the fit cache: a warning, the file moved aside, a fresh fit saved."""
    from nkdefections.config import GateConfig, SamplerConfig
    from nkdefections.model import defection as D
    from tests.helpers.fit import SMALL_GATE, SMALL_SAMPLER

    sampler = SamplerConfig(**SMALL_SAMPLER)
    good = small_fit.save(tmp_path / "good.nc")
    cache = tmp_path / "fits"
    cache.mkdir()
    entry = cache / f"fit-{small_fit.fit_id(sampler)}-{D.model_code_hash()}.nc"
    entry.write_bytes(good.read_bytes()[: good.stat().st_size // 3])  # an interrupted copy
    calls = []

    def fake_sample(self, sampler):  # the refit: reuse the session's draws instead of sampling again
        calls.append(sampler)
        return small_fit.idata

    monkeypatch.setattr(D.DefectionModel, "_sample_engine", fake_sample)
    with pytest.warns(UserWarning, match=r"could not be used .* moved it to .*\.corrupt and refitting"):
        model = D.DefectionModel().fit(sampler, GateConfig(**SMALL_GATE), cache_dir=cache)
    assert len(calls) == 1 and model.attrs["cache_hit"] is False
    assert (cache / (entry.name + ".corrupt")).stat().st_size == good.stat().st_size // 3
    assert D.DefectionModel.load(entry).fit_id() == small_fit.fit_id(sampler)  # the new entry is whole


def test_ctrl_c_while_sampling_exits_130_with_one_line_and_writes_nothing(tmp_path):
    """SIGINT to the real console script during sampling (a shell's `&` would ignore it)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "runs" / "run"
    cmd = [
        sys.executable, "-m", "nkdefections.cli", f"output_dir={out}", "cache_dir=null",
        "sampler.draws=200", "sampler.tune=200", "sampler.chains=2", "gate=relaxed",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before = []
    deadline = time.monotonic() + 300
    try:
        for line in proc.stderr:  # wait until sampling has started
            before.append(line)
            if "sampling (" in line or time.monotonic() > deadline:
                break
        assert any("sampling (" in line for line in before), "".join(before)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        stdout, after = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, "".join(before) + after
    assert [line for line in after.splitlines() if line.strip()] == [INTERRUPTED], after
    assert "Traceback" not in after and stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no run folder, no partial folder, no parent


@pytest.mark.pure
def test_figures_leave_the_matplotlib_backend_and_pyplot_alone(tmp_path):
    """Drawing a figure neither switches the backend nor opens or closes pyplot figures."""
    import matplotlib
    import matplotlib.pyplot as plt
    import numpy as np

    from nkdefections.report import plots

    backend = matplotlib.get_backend()
    mine = plt.figure()  # a figure of the caller's session
    try:
        years = np.arange(1999, 2017)
        path = plots.predictive_fan(years, years * 1.0, np.tile(years * 1.0, (50, 1)), tmp_path / "f.png", title="t")
        assert path.stat().st_size > 0
        assert matplotlib.get_backend() == backend
        assert plt.get_fignums() == [mine.number]
    finally:
        plt.close(mine)


@pytest.mark.pure
def test_numpyro_setup_changes_no_environment_variable(tmp_path):
    """The JAX device count and compile cache go through jax.config, never os.environ."""
    jax = pytest.importorskip("jax")
    from nkdefections.config import SamplerConfig
    from nkdefections.model.sampling import configure_jax, sample_kwargs

    env = dict(os.environ)
    kw = sample_kwargs(SamplerConfig(name="numpyro", chains=2))
    assert dict(os.environ) == env
    assert kw["nuts"]["chain_method"] == "parallel" and kw["random_seed"] == SamplerConfig().seed
    assert jax.config.jax_compilation_cache_dir  # set (by us, or kept as the caller set it)
    chosen = jax.config.jax_compilation_cache_dir
    configure_jax(cache_dir=tmp_path / "elsewhere")
    assert jax.config.jax_compilation_cache_dir == chosen  # a cache folder already chosen is kept
    assert dict(os.environ) == env


def test_jax_compile_cache_is_one_folder_per_cpu_feature_set(tmp_path):
    """Executables compiled for one CPU's instruction set are never loaded on another (a fresh, unconfigured JAX)."""
    pytest.importorskip("jax")
    from nkdefections.provenance import machine

    code = (
        "import sys, jax\n"
        "from nkdefections.model.sampling import configure_jax\n"
        "configure_jax(cache_dir=sys.argv[1])\n"
        "print(jax.config.jax_compilation_cache_dir)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    res = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    cpu = machine()
    flags = cpu["cpu_flags_sha256"] or f"unknown-{cpu['arch'] or 'cpu'}"
    assert res.stdout.strip().splitlines()[-1] == str((tmp_path / f"cpu-{flags}").resolve())
