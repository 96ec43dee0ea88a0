"""Live mode: the user's own files past 2016 (a synthetic extension), and the observed open border.

Pure tests of the loader and the config; the live fit itself is in test_live_fit (``fit`` tier).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nkdefections import constants as C
from nkdefections.config import DataConfig
from nkdefections.data.load import LIVE_ROLES, load_data
from nkdefections.errors import DataValidationError
from tests.helpers.live_data import write_live_files


def _names(exc: pytest.ExceptionInfo[BaseException], *parts: str) -> None:
    msg = str(exc.value)
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"


@pytest.mark.pure
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


@pytest.mark.pure
def test_rows_after_the_window_are_not_read(tmp_path):
    files = write_live_files(tmp_path, 2020)
    ds = load_data(DataConfig(last_year=2018, files=files))
    assert int(ds[C.YEAR].max()) == 2018
    # the pre-registered window from the same files: the same data as the shipped files give
    pre = load_data(DataConfig(files=files))
    ref = load_data(DataConfig())
    np.testing.assert_array_equal(pre[C.ARRIVALS].values, ref[C.ARRIVALS].values)
    np.testing.assert_array_equal(pre[C.SANCTIONS_INDEX].values, ref[C.SANCTIONS_INDEX].values)


@pytest.mark.pure
@pytest.mark.parametrize("role", LIVE_ROLES)
def test_live_window_refuses_a_shipped_file(tmp_path, role):
    files = write_live_files(tmp_path, 2020)
    del files[role]
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2020, files=files))
    _names(exc, "data.last_year", "2020", "after 2016", repr(role), f"data.files.{role}=", "configs/data/live.yaml")


@pytest.mark.pure
def test_live_window_past_the_arrivals_file(tmp_path):
    files = write_live_files(tmp_path, 2019)
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2020, files=files))
    _names(exc, files["arrivals"], "1999-2020", "(1999-2019)")


@pytest.mark.pure
@pytest.mark.parametrize("year, parts", [(2019, ["missing year(s) [2019]"]), (2020, ["year(s) [2020]", "add the row"])])
def test_live_window_missing_a_gdp_year(tmp_path, year, parts):
    files = write_live_files(tmp_path, 2020)
    gdp = Path(files["gdp"])
    gdp.write_text("".join(ln for ln in gdp.read_text().splitlines(keepends=True) if not ln.startswith(f"{year},")))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2020, files=files))
    _names(exc, str(gdp), *parts)


@pytest.mark.pure
def test_live_arrivals_gap_is_located(tmp_path):
    files = write_live_files(tmp_path, 2020)
    arr = Path(files["arrivals"])
    arr.write_text("".join(ln for ln in arr.read_text().splitlines(keepends=True) if not ln.startswith("2018,")))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2020, files=files))
    _names(exc, str(arr), "missing year(s) [2018]")


@pytest.mark.pure
def test_negative_live_count_is_located(tmp_path):
    files = write_live_files(tmp_path, 2020, arrivals={2020: -5})
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2020, files=files))
    _names(exc, files["arrivals"], "row 23", "negative count -5")


@pytest.mark.pure
def test_observed_border_open(tmp_path):
    files = write_live_files(tmp_path, 2020, border_open={2019: 0.6, 2020: 0.1, 2030: 0.5})
    ds = load_data(DataConfig(last_year=2020, files=files))
    op = ds[C.BORDER_OPEN]
    assert op.sel(year=2020).item() == 0.1 and op.sel(year=2019).item() == 0.6
    assert np.all(op.sel(year=slice(1999, 2018)).values == 1.0)  # years it does not list are open
    meta = load_data(DataConfig(last_year=2020, files=files)).attrs["files"]
    assert "border_open" in meta


@pytest.mark.pure
@pytest.mark.parametrize("value, row", [(0.0, 3), (1.2, 3), (-0.1, 3)])
def test_border_open_outside_0_1_is_located(tmp_path, value, row):
    files = write_live_files(tmp_path, 2020, border_open={2019: 0.5, 2020: value})
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2020, files=files))
    _names(exc, files["border_open"], f"row {row}", "'open_fraction'", f"{value:g}", "(0, 1]")


@pytest.mark.pure
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


# ----------------------------------------------------------------------------
# The closure learned from data
# ----------------------------------------------------------------------------

#: Simulated closure years: the border 30% open for three years, then half open.
CLOSED = {2020: 0.3, 2021: 0.3, 2022: 0.3, 2023: 0.5}


def closure_files(folder: Path, e_true: float, seed: int, last_year: int = 2024) -> dict[str, str]:
    """Synthetic 2017-``last_year`` counts whose closed years are thinned by ``open ** e_true``.

    A Poisson count thinned with probability p is Poisson with mean ``p * mu``, so the closed years
    follow the model's closure term exactly: ``log mu_t + e * log(open_t)``.
    """
    rng = np.random.default_rng(seed)
    base = {y: int(rng.poisson(1300)) for y in range(2017, last_year + 1)}
    counts = {y: int(rng.binomial(n, CLOSED.get(y, 1.0) ** e_true)) for y, n in base.items()}
    return write_live_files(folder, last_year, arrivals=counts, border_open=CLOSED, border_event=False)


@pytest.mark.pure
def test_closure_enters_the_graph_only_when_a_fitted_year_is_closed(tmp_path):
    from nkdefections.config import ModelConfig
    from nkdefections.model.graph import build_model, design

    shipped = load_data(DataConfig(history=1))
    assert not design(shipped, ModelConfig()).closure_observed
    assert C.CLOSURE_ELASTICITY not in build_model(shipped).named_vars  # the default graph is unchanged
    closed = load_data(DataConfig(last_year=2024, history=1, files=closure_files(tmp_path, 0.9, 0)))
    d = design(closed, ModelConfig())
    assert d.closure_observed and d.log_open[list(d.years).index(2020)] == pytest.approx(np.log(0.3))
    model = build_model(closed)
    assert C.CLOSURE_ELASTICITY in [rv.name for rv in model.free_RVs]
    # the series ends the window open: a window without closed years has no elasticity to learn
    early = load_data(DataConfig(last_year=2019, history=1, files=closure_files(tmp_path / "b", 0.9, 0)))
    assert C.CLOSURE_ELASTICITY not in build_model(early).named_vars


def _recover(tmp_path: Path, e_true: float, seed: int) -> np.ndarray:
    from nkdefections import DefectionModel, GateConfig, SamplerConfig

    files = closure_files(tmp_path / f"e{e_true}-{seed}", e_true, seed)
    model = DefectionModel(data_config=DataConfig(last_year=2024, files=files))
    sampler = SamplerConfig(name="nutpie", draws=500, tune=1000, chains=4, cores=2, seed=seed, progressbar=False)
    model.fit(sampler, GateConfig(rhat_max=1.02, ess_bulk_min=300, ess_tail_min=300, max_divergences=0, enforce=False))
    assert model.convergence is not None and model.convergence.passed, model.convergence.message()
    return model.idata.posterior[C.CLOSURE_ELASTICITY].values.ravel()


#: The prior's s.d. (a N(0.7, 0.3) truncated to [0, 1.5]).
PRIOR_SD = float(__import__("scipy.stats", fromlist=["truncnorm"]).truncnorm.std(-0.7 / 0.3, 0.8 / 0.3, 0.7, 0.3))


@pytest.mark.fit
def test_closure_elasticity_is_recovered_from_simulated_closure_years(tmp_path):
    """One simulated data set: the 90% interval covers the true e and is much narrower than the prior's."""
    draws = _recover(tmp_path, 0.9, seed=3)
    lo, hi = np.quantile(draws, [0.05, 0.95])
    assert lo < 0.9 < hi, (lo, hi)
    assert draws.std() < 0.6 * PRIOR_SD, (draws.std(), PRIOR_SD)  # the data speak: the prior does not


@pytest.mark.slow
@pytest.mark.parametrize("e_true", [0.3, 0.7, 1.2])
@pytest.mark.parametrize("seed", [11, 12])
def test_closure_recovery_across_truths_and_seeds(tmp_path, e_true, seed):
    draws = _recover(tmp_path, e_true, seed)
    lo, hi = np.quantile(draws, [0.025, 0.975])
    assert lo < e_true < hi, (e_true, lo, hi)
    assert draws.std() < 0.6 * PRIOR_SD
    # the estimate moves with the truth, not with the prior mean 0.7
    assert abs(np.median(draws) - e_true) < 0.25


@pytest.mark.pure
def test_closure_term_uses_the_estimate_when_there_is_one(tmp_path):
    import xarray as xr

    from nkdefections.forecast.kernel import closure_source, closure_term

    paths = xr.Dataset(
        {
            C.BORDER_OPEN: (("scenario", "year_future"), np.array([[1.0, 0.5], [1.0, 1.0]])),
            f"{C.BORDER_OPEN}_sd": (("scenario", "year_future"), np.zeros((2, 2))),
        }
    )
    e = np.array([0.2, 0.9, 1.4])
    term = closure_term(paths, 3, np.random.default_rng(0), e)
    np.testing.assert_allclose(term[:, 0, 1], e * np.log(0.5))
    assert np.all(term[:, 1] == 0.0) and np.all(term[:, 0, 0] == 0.0)
    prior = closure_term(paths, 3, np.random.default_rng(0))
    assert not np.allclose(prior[:, 0, 1], term[:, 0, 1])  # without an estimate: prior draws
    assert closure_source(e, paths) == "estimated" and closure_source(None, paths) == "assumed"
    assert closure_source(None, paths.assign({C.BORDER_OPEN: paths[C.BORDER_OPEN] * 0 + 1})) == "unused"


@pytest.mark.pure
def test_closure_note_says_which_it_is():
    from nkdefections.report.extras import closure_note

    est = closure_note("estimated", np.linspace(0.6, 1.0, 101))
    assert "estimated" in est and "e = 0.80" in est and "data.files.border_open" in est
    assert "assumption" in closure_note("assumed") and "prior N(0.7, 0.3)" in closure_note("assumed")
    assert closure_note("unused") is None


@pytest.mark.pure
def test_scenarios_start_from_the_observed_open_fraction(tmp_path):
    from nkdefections.config import Horizon
    from nkdefections.scenarios.paths import scenario_paths
    from nkdefections.scenarios.scenario import Scenario

    files = write_live_files(tmp_path, 2020, border_open={2019: 0.3, 2020: 0.6})
    data = load_data(DataConfig(last_year=2020, files=files))
    h = Horizon(2021, 2024)
    hold = Scenario("hold", drivers={"border": {"type": "hold"}})
    reopen = Scenario("reopen", drivers={C.BORDER_OPEN: {"type": "step", "year": 2022, "value": 1.0}})
    shut = Scenario("shut", drivers={C.BORDER_OPEN: {"type": "step", "value": 0.1}})
    p = scenario_paths([hold, reopen, shut], data, h)
    op = p[C.BORDER_OPEN]
    assert op.sel(scenario="hold").values.tolist() == [0.6] * 4  # the last fitted year's fraction holds
    assert op.sel(scenario="reopen").values.tolist() == [0.6, 1.0, 1.0, 1.0]
    flagged = p["extrapolated"].sel(driver=C.BORDER)
    assert not flagged.sel(scenario="hold").any() and not flagged.sel(scenario="reopen").any()  # seen: 0.3 to 1
    assert flagged.sel(scenario="shut").all()  # more closed than any fitted year
    shipped = scenario_paths([hold, shut], load_data(DataConfig()), Horizon())
    assert shipped[C.BORDER_OPEN].sel(scenario="hold").values.min() == 1.0  # shipped data: open


# ----------------------------------------------------------------------------
# Arrivals by sex: the data
# ----------------------------------------------------------------------------


def _edit_arrivals(folder: Path, year: int, **cells: str) -> dict[str, str]:
    files = write_live_files(folder, 2018)
    path = Path(files["arrivals"])
    lines = path.read_text().splitlines(keepends=True)
    header = lines[0].strip().split(",")
    for i, line in enumerate(lines):
        if line.startswith(f"{year},"):
            import csv
            import io

            row = next(csv.reader(io.StringIO(line)))
            for k, v in cells.items():
                row[header.index(k)] = v
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerow(row)
            lines[i] = buf.getvalue()
    path.write_text("".join(lines))
    return files


@pytest.mark.pure
def test_female_counts_where_published():
    ds = load_data(DataConfig())
    f = ds[C.FEMALE]
    assert np.isnan(f.sel(year=[1999, 2000, 2001]).values).all()  # only totals published
    assert f.sel(year=2002).item() == 632 and f.sel(year=2016).item() == 1116


@pytest.mark.pure
@pytest.mark.parametrize(
    "cells, parts",
    [
        (dict(male="", female="1500"), ["row 19 (year 2016)", "'female'", "1500 is above the total arrivals 1418"]),
        (dict(male="1419", female=""), ["row 19 (year 2016)", "'male'", "1419 is above the total"]),
        (dict(male="300", female="1116"), ["row 19 (year 2016)", "male 300 + female 1116 = 1416", "not the total"]),
    ],
)
def test_bad_counts_by_sex_are_located(tmp_path, cells, parts):
    files = _edit_arrivals(tmp_path, 2016, **cells)
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(last_year=2018, files=files))
    _names(exc, files["arrivals"], *parts)


@pytest.mark.pure
def test_one_count_by_sex_gives_the_other(tmp_path):
    files = _edit_arrivals(tmp_path, 2016, male="302", female="")
    assert load_data(DataConfig(last_year=2018, files=files))[C.FEMALE].sel(year=2016).item() == 1116
    files = _edit_arrivals(tmp_path / "b", 2017, female="900")
    ds = load_data(DataConfig(last_year=2018, files=files))
    assert ds[C.FEMALE].sel(year=2017).item() == 900 and np.isnan(ds[C.FEMALE].sel(year=2018).item())
