"""The package as users get it: a wheel with its files, user config folders, provenance outside a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from nkdefections.cli.app import configs_from_dict, user_config_dirs
from nkdefections.errors import ScenarioError
from nkdefections.evidence.runner import main_run_configs
from nkdefections.provenance import code_version, source_checkout
from nkdefections.resources import config_dir
from nkdefections.scenarios.scenario import DEFAULT_SCENARIOS, available_scenarios, load_scenario

REPO = Path(__file__).resolve().parents[2]
THAW = "name: my_thaw\ndescription: thaw\ndrivers:\n  border: {type: step, year: 2018, value: 0.5}\n"


def _compose(overrides: list[str]) -> tuple[dict, list[Path]]:
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        cfg = compose("config", overrides=["output_dir=unused", *overrides], return_hydra_config=True)
    sources = OmegaConf.to_container(cfg.hydra.runtime.config_sources)
    with open_dict(cfg):
        del cfg["hydra"]
    resolved = OmegaConf.to_container(cfg, resolve=True)
    return resolved, user_config_dirs(sources)


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    (tmp_path / "scenario").mkdir()
    (tmp_path / "scenario" / "my_thaw.yaml").write_text(THAW)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "my_variant.yaml").write_text(
        "defaults:\n  - default\n  - _self_\nname: my_variant\nlatent: random_walk\n"
    )
    return tmp_path


def test_wheel_carries_configs_and_data_as_files(tmp_path: Path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (whl,) = tmp_path.glob("nkdefections-*.whl")
    with zipfile.ZipFile(whl) as z:
        infos = {i.filename: i for i in z.infolist()}
    page = ("explore/static/index.html", "explore/static/explorer.js", "explore/static/explorer.css")
    for rel in ("_configs/config.yaml", "_configs/scenario/status_quo.yaml", "_data/manifest.json", *page):
        info = infos[f"nkdefections/{rel}"]
        assert info.file_size > 0 and (info.external_attr >> 28) != 0o12  # a real file, not a symlink
    shipped = {p.relative_to(REPO / "data").as_posix() for p in (REPO / "data").rglob("*") if p.is_file()}
    assert {n.removeprefix("nkdefections/_data/") for n in infos if n.startswith("nkdefections/_data/")} == shipped


@pytest.mark.pure
def test_no_path_arithmetic_on_file_in_the_package():
    hits = [str(p) for p in (REPO / "src").rglob("*.py") if "__file__" in p.read_text(encoding="utf-8")]
    assert hits == []


@pytest.mark.pure
def test_user_scenario_found_through_config_dir_and_shadows_shipped(user_dir: Path):
    cfg, search = _compose([f"hydra.searchpath=[file://{user_dir}]", "scenarios=[my_thaw,status_quo]"])
    assert search == [user_dir]
    *_, run = configs_from_dict(cfg, search_path=search)
    assert [s.name for s in run.forecast.scenarios] == ["my_thaw", "status_quo"]
    assert run.forecast.scenarios[0].source == str(user_dir / "scenario" / "my_thaw.yaml")
    (user_dir / "scenario" / "status_quo.yaml").write_text(THAW.replace("my_thaw", "status_quo"))
    assert load_scenario("status_quo", search_path=[user_dir]).description == "thaw"
    assert "my_thaw" in available_scenarios(search_path=[user_dir])
    with pytest.raises(ScenarioError) as err:
        load_scenario("nope", search_path=[user_dir])
    assert "my_thaw" in str(err.value) and "border_crackdown" in str(err.value)


@pytest.mark.pure
def test_user_model_variant_through_hydra(user_dir: Path):
    cfg, search = _compose([f"hydra.searchpath=[file://{user_dir}]", "model=my_variant"])
    _, model, *_ = configs_from_dict(cfg, search_path=search)
    assert model.name == "my_variant" and model.latent == "random_walk"


@pytest.mark.pure
def test_scenario_by_path_and_name_must_match_file(tmp_path: Path):
    path = tmp_path / "thaw.yaml"
    path.write_text(THAW.replace("my_thaw", "thaw"))
    assert load_scenario(str(path)).name == "thaw" and load_scenario(path).name == "thaw"
    bad = tmp_path / "other.yaml"
    bad.write_text(THAW)
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad)
    assert "'my_thaw'" in str(err.value) and "'other'" in str(err.value)


@pytest.mark.pure
def test_documented_data_file_override_works_as_written():
    cfg, search = _compose(["data.files.border_events=/path/x.csv"])
    data, *_ = configs_from_dict(cfg, search_path=search)
    assert data.files == {"border_events": "/path/x.csv"}
    cfg, search = _compose([])
    assert configs_from_dict(cfg, search_path=search)[0].files == {}


@pytest.mark.pure
def test_evidence_main_run_equals_the_default_cli_run(tmp_path: Path):
    cfg, search = _compose([f"output_dir={tmp_path}"])
    data, model, sampler, gate, run = configs_from_dict(cfg, search_path=search)
    e_data, e_model, e_sampler, e_gate, e_run = main_run_configs(tmp_path)
    assert (e_data, e_model, e_sampler, e_gate) == (data, model, sampler, gate)
    assert tuple(cfg["scenarios"]) == DEFAULT_SCENARIOS
    assert [s.to_dict() for s in e_run.forecast.scenarios] == [s.to_dict() for s in run.forecast.scenarios]
    assert list(e_run.forecast.thresholds) == list(run.forecast.thresholds)
    for key in ("horizon", "seed", "baseline", "pairs", "cumulative_window"):
        assert getattr(e_run.forecast, key) == getattr(run.forecast, key), key
    for key in ("prior_predictive_draws", "seed", "fit_checks", "plots"):
        assert getattr(e_run, key) == getattr(run, key), key
    assert e_run.cache_dir.resolve() == run.cache_dir.resolve()


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


@pytest.mark.pure
def test_provenance_of_an_install_inside_another_repo_is_the_package_version(tmp_path: Path):
    other = tmp_path / "other"
    pkg = other / ".venv" / "lib" / "python3.12" / "site-packages" / "nkdefections"
    pkg.mkdir(parents=True)
    (other / "pyproject.toml").write_text("[project]\nname = 'other'\n")
    _git(other, "init", "-q")
    _git(other, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x")
    assert source_checkout(pkg) is None
    checkout = tmp_path / "clone"
    (checkout / "src" / "nkdefections").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\nname = 'nkdefections'\n")
    _git(checkout, "init", "-q")
    assert source_checkout(checkout / "src" / "nkdefections") == checkout.resolve()
    assert code_version(other).startswith("git:")  # an explicit root is trusted
