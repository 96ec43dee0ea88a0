"""Live mode: the user's own files past 2016 (a synthetic extension), and the observed open border.

Pure tests of the loader and the config; the live fit itself is in test_live_fit (``fit`` tier).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from live_data import write_live_files
from nkdefections import constants as C
from nkdefections.config import DataConfig
from nkdefections.data.load import LIVE_ROLES, load_data
from nkdefections.errors import DataValidationError


def _names(exc: pytest.ExceptionInfo[BaseException], *parts: str) -> None:
    msg = str(exc.value)
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_live_window_fits_the_users_files(tmp_path):
    files = write_live_files(tmp_path, 2020, arrivals={2019: 777})
    ds = load_data(DataConfig(last_year=2020, files=files))
    assert ds[C.YEAR].values.tolist() == list(range(1999, 2021))
    assert ds.attrs["last_year"] == 2020 and ds.attrs["live"] == 1
    assert ds[C.ARRIVALS].sel(year=2019).item() == 777
    assert ds[C.ARRIVALS].sel(year=2016).item() == 1418  # the shipped years unchanged
    # the made-up 2018-03-01 event: 10 of 12 months of 2018, fully from 2019
    b = ds[C.BORDER_INDEX]
    assert b.sel(year=2018).item() == pytest.approx(1.25 + 0.25 * 306 / 365)
    assert b.sel(year=2019).item() == pytest.approx(1.5)
    assert ds[C.GDP_GROWTH].sel(year=2020).item() == 0.5
    assert np.all(ds[C.BORDER_OPEN].values == 1.0)  # no border_open file: open every year
    shipped = load_data(DataConfig())
    assert shipped.attrs["live"] == 0 and shipped.attrs["data_hash"] != ds.attrs["data_hash"]


def test_rows_after_the_window_are_not_read(tmp_path):
    files = write_live_files(tmp_path, 2020)
    ds = load_data(DataConfig(last_year=2018, files=files))
    assert int(ds[C.YEAR].max()) == 2018
    # the pre-registered window from the same files: the same data as the shipped files give
    pre = load_data(DataConfig(files=files))
    ref = load_data(DataConfig())
    np.testing.assert_array_equal(pre[C.ARRIVALS].values, ref[C.ARRIVALS].values)
    np.testing.assert_array_equal(pre[C.SANCTIONS_INDEX].values, ref[C.SANCTIONS_INDEX].values)


@pytest.mark.parametrize("role", LIVE_ROLES)
def test_live_window_refuses_a_shipped_file(tmp_path, role):
    files = write_live_files(tmp_path, 2020)
    del files[role]
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2020, files=files))
    _names(exc, "data.last_year", "2020", "after 2016", repr(role), f"data.files.{role}=", "configs/data/live.yaml")


def test_live_window_past_the_arrivals_file(tmp_path):
    files = write_live_files(tmp_path, 2019)
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2020, files=files))
    _names(exc, files["arrivals"], "1999-2020", "(1999-2019)")


@pytest.mark.parametrize("year, parts", [(2019, ["missing year(s) [2019]"]), (2020, ["year(s) [2020]", "add the row"])])
def test_live_window_missing_a_gdp_year(tmp_path, year, parts):
    files = write_live_files(tmp_path, 2020)
    gdp = Path(files["gdp"])
    gdp.write_text("".join(ln for ln in gdp.read_text().splitlines(keepends=True) if not ln.startswith(f"{year},")))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2020, files=files))
    _names(exc, str(gdp), *parts)


def test_live_arrivals_gap_is_located(tmp_path):
    files = write_live_files(tmp_path, 2020)
    arr = Path(files["arrivals"])
    arr.write_text("".join(ln for ln in arr.read_text().splitlines(keepends=True) if not ln.startswith("2018,")))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2020, files=files))
    _names(exc, str(arr), "missing year(s) [2018]")


def test_negative_live_count_is_located(tmp_path):
    files = write_live_files(tmp_path, 2020, arrivals={2020: -5})
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2020, files=files))
    _names(exc, files["arrivals"], "row 23", "negative count -5")


def test_observed_border_open(tmp_path):
    files = write_live_files(tmp_path, 2020, border_open={2019: 0.6, 2020: 0.1, 2030: 0.5})
    ds = load_data(DataConfig(last_year=2020, files=files))
    op = ds[C.BORDER_OPEN]
    assert op.sel(year=2020).item() == 0.1 and op.sel(year=2019).item() == 0.6
    assert np.all(op.sel(year=slice(1999, 2018)).values == 1.0)  # years it does not list are open
    meta = load_data(DataConfig(last_year=2020, files=files)).attrs["files"]
    assert "border_open" in meta


@pytest.mark.parametrize("value, row", [(0.0, 3), (1.2, 3), (-0.1, 3)])
def test_border_open_outside_0_1_is_located(tmp_path, value, row):
    files = write_live_files(tmp_path, 2020, border_open={2019: 0.5, 2020: value})
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2020, files=files))
    _names(exc, files["border_open"], f"row {row}", "'open_fraction'", f"{value:g}", "(0, 1]")


def test_border_open_is_a_users_role_only():
    ds = load_data(DataConfig())
    assert "border_open" not in ds.attrs["files"]  # the shipped data's hash is unchanged by the new role
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(files={"border_opn": "x.csv"}))
    _names(exc, "unknown role(s) ['border_opn']", "'border_open'")


@pytest.mark.fit
def test_live_run_fits_forecasts_and_labels_the_window(tmp_path):
    """The whole run on a synthetic 1999-2020 window: data=live through the config, a real (small) fit."""
    import json

    import xarray as xr
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from nkdefections.cli.app import CONFIG_DIR, configs_from_dict
    from nkdefections.pipeline import run

    files = write_live_files(tmp_path / "mine", 2020)
    overrides = [
        "data=live",
        "data.last_year=2020",
        *(f"data.files.{k}={v}" for k, v in files.items()),
        "sampler.draws=300",
        "sampler.tune=300",
        "sampler.chains=2",
        "gate.enforce=false",
        f"output_dir={tmp_path / 'run'}",
        f"cache_dir={tmp_path / 'cache'}",
    ]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)
    out = run(*configs_from_dict(cfg))
    meta = json.loads((out / "run.json").read_text())
    assert meta["window"] == [1999, 2020] and meta["horizon"] == "2021-2030"
    with xr.open_dataset(out / "forecast.nc", engine="h5netcdf") as fc:
        assert fc["year_future"].values[0] == 2021 and list(fc["scenario"].values) == ["status_quo"]
        assert int(fc["arrivals_observed"]["year"].max()) == 2020
    report = (out / "report.md").read_text()
    assert "1999-2020" in report and "Live fit on 1999-2020" in report and "pre-registered: no" not in report
    assert "Scenario forecasts 2021-2030" in report
