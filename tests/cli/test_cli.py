"""The Hydra app: every config composes and validates; the default run writes its folder;
bad input stops before sampling with a clear message and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from nkdefections.cli.app import CONFIG_DIR, configs_from_dict
from nkdefections.errors import ConfigError
from nkdefections.provenance import machine
from tests.helpers import REPO
from tests.helpers.fit import SMALL_OVERRIDES

#: What data=live leaves to the user (the four files; data.last_year separately).
LIVE_VALUES = [f"data.files.{role}=/my/{role}.csv" for role in ("arrivals", "gdp", "border_events", "sanctions_events")]


@pytest.mark.pure
def test_live_option_names_what_it_needs():
    cfg = OmegaConf.to_container(_compose(["data=live", "output_dir=/tmp/x"]), resolve=True)
    with pytest.raises(ConfigError) as exc:
        configs_from_dict(cfg)
    msg = str(exc.value)
    for key in ("data.last_year", *(v.split("=")[0] for v in LIVE_VALUES), "configs/data/live.yaml"):
        assert key in msg, msg
    data, _, _, _, run = configs_from_dict(
        OmegaConf.to_container(_compose(["data=live", "output_dir=/x", "data.last_year=2020", *LIVE_VALUES]))
    )
    assert data.last_year == 2020 and data.files["arrivals"] == "/my/arrivals.csv"
    assert "border_open" not in data.files  # optional: null reads none
    assert (run.forecast.horizon.start, run.forecast.horizon.end) == (2021, 2030)  # the year after the window
    assert [s.name for s in run.forecast.scenarios] == ["status_quo"]
    assert run.forecast.thresholds == [("cumulative", 20000.0)]


@pytest.mark.pure
def test_default_horizon_follows_the_window():
    def horizon(*o: str) -> tuple[int, int]:
        run = configs_from_dict(OmegaConf.to_container(_compose(["output_dir=/x", *o]), resolve=True))[4]
        return run.forecast.horizon.start, run.forecast.horizon.end

    assert horizon() == (2017, 2030)  # the pre-registered horizon, unchanged
    assert horizon("data.last_year=2012", "compare.thresholds=[]") == (2013, 2030)
    assert horizon("forecast.horizon.start=2017", "forecast.horizon.end=2025") == (2017, 2025)


def _compose(overrides: list[str]):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        return compose(config_name="config", overrides=overrides)


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


@pytest.mark.pure
@pytest.mark.parametrize(
    "override",
    [f"{g}={o}" for g in ("data", "model", "sampler", "gate") for o in _options(g)],
)
def test_every_config_option_composes_and_validates(override):
    extra = [] if override != "data=live" else [*LIVE_VALUES, "data.last_year=2020"]
    cfg = _compose([override, "output_dir=/tmp/x", *extra])
    data, model, sampler, gate, run = configs_from_dict(OmegaConf.to_container(cfg, resolve=True))
    assert model.drivers and sampler.draws > 0 and run.output_dir == Path("/tmp/x")


@pytest.mark.pure
def test_model_variants_differ_from_default():
    base = configs_from_dict(OmegaConf.to_container(_compose(["output_dir=/x"]), resolve=True))[1]
    nb = configs_from_dict(OmegaConf.to_container(_compose(["model=negbin_ar1", "output_dir=/x"]), resolve=True))[1]
    assert base.likelihood == "poisson" and nb.likelihood == "negative_binomial"
    assert nb.priors == base.priors  # variants inherit the default priors


@pytest.mark.pure
def test_candidate_structure_files_equal_the_experiment_s_candidates():
    """configs/model/<candidate>.yaml and nkdefections.evidence.structures.candidates() are the same models."""
    from nkdefections.config import ModelConfig
    from nkdefections.evidence.structures import FILES, candidates

    for key, cfg in candidates().items():
        composed = configs_from_dict(
            OmegaConf.to_container(_compose([f"model={FILES[key]}", "output_dir=/x"]), resolve=True)
        )
        assert composed[1] == cfg, key
    # the rule's pick is the default now: the same model under another name
    import dataclasses

    assert dataclasses.replace(candidates()["ar1_policy"], name="default") == ModelConfig()


@pytest.mark.pure
@pytest.mark.parametrize(
    "override, key",
    [
        ("sampler.draws=0", "sampler.draws"),
        ("sampler.draws=-5", "sampler.draws"),
        ("sampler.chains=0", "sampler.chains"),
        ("model.priors.beta_border.sigma=0", "model.priors.beta_border.sigma"),
        ("model.priors.rho.alpha=-1", "model.priors.rho.alpha"),
        ("model.likelihood=gaussian", "model.likelihood"),
        ("+model.foo=1", "model"),
        ("sampler.target_accept=1.5", "sampler.target_accept"),
    ],
)
def test_bad_config_values_raise_named_errors(override, key):
    cfg = OmegaConf.to_container(_compose([override, "output_dir=/tmp/x"]), resolve=True)
    with pytest.raises(ConfigError) as err:
        configs_from_dict(cfg)
    assert key in str(err.value)


def _cli(args: list[str], tmp_path: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    exe = Path(sys.executable).with_name("nkdefections")
    return subprocess.run([str(exe), *args], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize(
    "args, expect",
    [
        (["model=nope"], "Could not find 'model/nope'"),
        (["sampler=nope"], "Available options in 'sampler'"),
        (["model.priors.beta_economy.sigma=-0.1"], "model.priors.beta_economy.sigma: -0.1 must be > 0"),
        (["sampler.draws=0"], "sampler.draws: 0 must be >= 1"),
        (["sampler.chains=0"], "sampler.chains: 0 must be >= 1"),
        (["data.first_year=1990"], "outside the arrivals data (1999-2016)"),
        (["data.last_year=2018"], "data.last_year: 2018 is after 2016"),
    ],
)
def test_cli_bad_input_stops_and_writes_nothing(args, expect, tmp_path):
    out = tmp_path / "run"
    res = _cli([*args, f"output_dir={out}", f"cache_dir={tmp_path / 'cache'}"], tmp_path)
    assert res.returncode != 0
    assert expect in res.stderr, res.stderr[-2000:]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no log file, no partial folder


def test_cli_bad_data_file_stops_before_sampling(tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(REPO / "data", data)
    p = data / "raw" / "arrivals_annual.csv"
    p.write_text(p.read_text().replace("\n2009,2914,", "\n2009,-2914,"))
    out = tmp_path / "run"
    res = _cli([f"data.dir={data}", f"output_dir={out}"], tmp_path)
    assert res.returncode == 2
    assert "checksum mismatch" in res.stderr and "arrivals_annual.csv" in res.stderr
    assert not out.exists()


@pytest.mark.fit
def test_cli_default_run_writes_every_output(small_fit, fit_cache_dir, tmp_path):
    """The real console script, reusing the session's cached fit (no second sampling)."""
    out = tmp_path / "run"
    res = _cli([*SMALL_OVERRIDES, f"output_dir={out}", f"cache_dir={fit_cache_dir}"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    names = {p.name for p in out.iterdir()}
    assert {
        "posterior.nc",
        "parameter_summary.csv",
        "effects.csv",
        "convergence.csv",
        "prior_predictive.png",
        "posterior_predictive.png",
        "one_step_ahead.png",
        "posterior_predictive_check.csv",
        "ppc_coverage.csv",
        "ppc_shape_checks.csv",
        "report.md",
        "report.html",
        "run.json",
        "config.yaml",
        "drivers.csv",
        "forecast.nc",
        "forecast_summary.csv",
        "contrasts.csv",
        "exceedance.csv",
        "attribution.csv",
        "extrapolation.csv",
        "contrasts.png",
        "fan_status_quo.png",
        "fan_combined_stress.png",
    } <= names
    meta = json.loads((out / "run.json").read_text())
    assert meta["cache_hit"] is True and meta["fit_id"] == small_fit.fit_id()
    assert meta["convergence"]["passed"] is True
    assert {"pymc", "arviz", "xarray", "hydra-core"} <= set(meta["package_versions"])
    assert meta["code_version"]
    assert meta["machine"] == machine() and "fit_machine" in meta  # draws are exact per machine only
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "border_crackdown" in html and "Caveats" in html
    summary = pd.read_csv(out / "forecast_summary.csv")
    assert set(summary["scenario"]) == set(meta["extrapolated"]) | {
        "status_quo",
        "border_reopening",
        "sanctions_relief",
    }
    assert summary[summary.scenario == "border_crackdown"]["extrapolated"].all()
    fc = xr.open_dataset(out / "forecast.nc", engine="h5netcdf")
    assert fc["arrivals"].dims == ("chain", "draw", "scenario", "year_future")
    assert "border_crackdown" in json.loads(fc.attrs["scenarios"])
    fc.close()
    report = (out / "report.md").read_text()
    assert "## Driver effects" in report and "border" in report and "90% interval" in report

    eff = pd.read_csv(out / "effects.csv")
    assert list(eff["driver"]) == ["border", "economy", "sanctions"]
    # same numbers as the library gives for the same fit
    pd.testing.assert_frame_equal(eff, small_fit.effects(), check_exact=False, rtol=1e-9)
    # an existing run folder is never replaced silently
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = _cli([*SMALL_OVERRIDES, f"output_dir={out}", f"cache_dir={fit_cache_dir}"], tmp_path)
    assert again.returncode == 2 and "exists and is not empty" in again.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert leftovers == []


@pytest.mark.pure
def test_output_dir_check_refuses_existing(tmp_path):
    from nkdefections.errors import OutputExistsError
    from nkdefections.pipeline import check_output_dir

    (tmp_path / "a").mkdir()
    check_output_dir(tmp_path / "a", overwrite=False)  # empty folder is fine
    (tmp_path / "a" / "x").write_text("1")
    with pytest.raises(OutputExistsError, match="overwrite=true"):
        check_output_dir(tmp_path / "a", overwrite=False)
    check_output_dir(tmp_path / "a", overwrite=True)


SCENARIO_BAD = [
    (["scenarios=[status_quo,no_such]"], "unknown scenario 'no_such'", "border_crackdown"),
    (["+custom_scenarios.x.drivers.borders.type=hold"], "unknown driver(s) ['borders']", "custom_scenarios.x"),
    (
        [
            "+custom_scenarios.x.drivers.border.type=step",
            "+custom_scenarios.x.drivers.border.year=2040",
            "+custom_scenarios.x.drivers.border.value=1",
        ],
        "outside the horizon 2017-2030",
        "custom_scenarios.x",
    ),
    (
        ["+custom_scenarios.x.drivers.border.type=step", "+custom_scenarios.x.drivers.border.year=2018"],
        "key 'value': missing",
        "drivers.border",
    ),
    (
        [
            "+custom_scenarios.x.drivers.border.type=ramp",
            "+custom_scenarios.x.drivers.border.start=2020",
            "+custom_scenarios.x.drivers.border.end=2018",
            "+custom_scenarios.x.drivers.border.to_value=1",
        ],
        "ramp end 2018 must come after its start 2020",
        "drivers.border",
    ),
    (["compare.thresholds=[{year:2020,arrivals:many}]"], "compare.thresholds[0].arrivals: 'many' is not a number", ""),
]


@pytest.mark.parametrize("args, expect, where", SCENARIO_BAD)
def test_cli_bad_scenario_input_stops_before_anything(args, expect, where, tmp_path):
    out = tmp_path / "run"
    res = _cli([*args, f"output_dir={out}", f"cache_dir={tmp_path / 'cache'}"], tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert expect in res.stderr and where in res.stderr, res.stderr[-2000:]
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_two_specs_for_the_same_driver_year_in_a_file(tmp_path):
    import shutil

    cfg = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, cfg)
    (cfg / "scenario" / "clash.yaml").write_text(
        "name: clash\ndescription: two specs in 2019\ndrivers:\n  border:\n"
        "    - {type: step, year: 2017, until: 2020, value: 1.0}\n    - {type: step, year: 2019, value: 2.0}\n"
    )
    out = tmp_path / "run"
    res = _cli(["scenarios=[status_quo,clash]", f"output_dir={out}"], tmp_path, {"NKDEFECTIONS_CONFIG_DIR": str(cfg)})
    assert res.returncode == 2
    assert "clash.yaml" in res.stderr and "drivers.border" in res.stderr and "already set" in res.stderr
    assert not out.exists()


@pytest.mark.fit
def test_new_scenario_yaml_works_without_code_change(small_fit, fit_cache_dir, tmp_path):
    import shutil

    cfg = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, cfg)
    (cfg / "scenario" / "my_thaw.yaml").write_text(
        "name: my_thaw\ndescription: a user's own scenario\nreasoning: dropped in as a file\n"
        "drivers:\n  sanctions: {type: ramp, start: 2017, end: 2020, to_value: 4.0}\n"
        "  border: {type: step, year: 2018, value: 0.5}\n"
    )
    out = tmp_path / "run"
    res = _cli(
        [*SMALL_OVERRIDES, "scenarios=[status_quo,my_thaw]", f"output_dir={out}", f"cache_dir={fit_cache_dir}"],
        tmp_path,
        {"NKDEFECTIONS_CONFIG_DIR": str(cfg)},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    contr = pd.read_csv(out / "contrasts.csv")
    row = contr[(contr.scenario == "my_thaw") & contr.year.str.startswith("cumulative")].iloc[0]
    assert row["baseline"] == "status_quo" and 0 <= row["prob_greater"] <= 1
    assert json.loads((out / "run.json").read_text())["cache_hit"] is True


@pytest.mark.fit
def test_multirun_sweep_reuses_the_cached_fit_and_gathers(small_fit, fit_cache_dir, tmp_path):
    res = _cli(
        [
            "-m",
            "experiment=enforcement_sanctions_sweep",
            *SMALL_OVERRIDES,
            "sweep.border=0,1,2",
            "sweep.sanctions=5.5,11.14",
            f"cache_dir={fit_cache_dir}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    table = pd.read_csv(tmp_path / "sweep" / "sweep_table.csv")
    assert sorted(table["job"].unique()) == list(range(6))
    assert set(table["sweep.border"]) == {0, 1, 2} and set(table["sweep.sanctions"]) == {5.5, 11.14}
    cum = table[table.year == "cumulative 2017-2020"].set_index(["sweep.border", "sweep.sanctions"])["mean"]
    assert cum.loc[(0, 5.5)] > cum.loc[(2, 5.5)]  # tighter border, fewer arrivals (border effect < 0)
    for job in range(6):
        meta = json.loads((tmp_path / "sweep" / str(job) / "run.json").read_text())
        assert meta["cache_hit"] is True and meta["fit_id"] == small_fit.fit_id()
    assert table[table["sweep.border"] == 2]["extrapolated"].all()


@pytest.mark.pure
def test_launcher_configs_compose():
    from hydra.utils import get_class

    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        slurm = compose(
            config_name="config",
            overrides=["hydra/launcher=slurm", "experiment=enforcement_sanctions_sweep"],
            return_hydra_config=True,
        )
        par = compose(config_name="config", overrides=["hydra/launcher=local_parallel"], return_hydra_config=True)
    launcher = slurm.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.cpus_per_task == 2 and launcher.timeout_min > 0
    assert get_class(launcher._target_).__name__ == "SlurmLauncher"  # the plugin is installed and importable
    assert par.hydra.launcher._target_.endswith("JoblibLauncher") and par.hydra.launcher.n_jobs == 2
    assert slurm.hydra.sweeper.params["sweep.border"] == "range(0,2.25,0.25)"


@pytest.mark.pure
@pytest.mark.parametrize(
    "override, message",
    [
        ("seed=abc", "seed: 'abc' must be a whole number >= 0"),
        ("seed=-1", "seed: -1 must be a whole number >= 0"),
        ("+custom_scenarios.foo=3", "custom_scenarios.foo: expected a scenario definition"),
    ],
)
def test_more_bad_values_are_named_errors(override, message):
    from nkdefections.errors import NKDefectionsError

    cfg = OmegaConf.to_container(_compose([override, "output_dir=/tmp/x"]), resolve=True)
    with pytest.raises(NKDefectionsError) as err:
        configs_from_dict(cfg)
    assert message in str(err.value)
