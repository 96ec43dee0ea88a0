"""The Hydra app: every config composes and validates; the default run writes its folder;
bad input stops before sampling with a clear message and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import REPO, SMALL_GATE, SMALL_SAMPLER
from nkdefections.cli import CONFIG_DIR, configs_from_dict
from nkdefections.errors import ConfigError

SMALL_OVERRIDES = [f"sampler.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in SMALL_SAMPLER.items()] + [
    f"gate.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in SMALL_GATE.items()
]


def _compose(overrides: list[str]):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        return compose(config_name="config", overrides=overrides)


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "override",
    [f"{g}={o}" for g in ("data", "model", "sampler", "gate") for o in _options(g)],
)
def test_every_config_option_composes_and_validates(override):
    cfg = _compose([override, "output_dir=/tmp/x"])
    data, model, sampler, gate, run = configs_from_dict(OmegaConf.to_container(cfg, resolve=True))
    assert model.drivers and sampler.draws > 0 and run.output_dir == Path("/tmp/x")


def test_model_variants_differ_from_default():
    base = configs_from_dict(OmegaConf.to_container(_compose(["output_dir=/x"]), resolve=True))[1]
    nb = configs_from_dict(OmegaConf.to_container(_compose(["model=negbin_ar1", "output_dir=/x"]), resolve=True))[1]
    assert base.likelihood == "poisson" and nb.likelihood == "negative_binomial"
    assert nb.priors == base.priors  # variants inherit the default priors


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
        "run.json",
        "config.yaml",
        "drivers.csv",
    } <= names
    meta = json.loads((out / "run.json").read_text())
    assert meta["cache_hit"] is True and meta["fit_id"] == small_fit.fit_id()
    assert meta["convergence"]["passed"] is True
    assert {"pymc", "arviz", "xarray", "hydra-core"} <= set(meta["package_versions"])
    assert meta["code_version"]
    report = (out / "report.md").read_text()
    assert "## Driver effects" in report and "border" in report and "90% interval" in report
    import pandas as pd

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


def test_output_dir_check_refuses_existing(tmp_path):
    from nkdefections.errors import OutputExistsError
    from nkdefections.pipeline import check_output_dir

    (tmp_path / "a").mkdir()
    check_output_dir(tmp_path / "a", overwrite=False)  # empty folder is fine
    (tmp_path / "a" / "x").write_text("1")
    with pytest.raises(OutputExistsError, match="overwrite=true"):
        check_output_dir(tmp_path / "a", overwrite=False)
    check_output_dir(tmp_path / "a", overwrite=True)
