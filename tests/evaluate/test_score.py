"""``nkdefections-score``: scoring pre-registered forecasts against published figures (fake forecasts, no MCMC).

The fake forecasts have the structure and provenance attributes of :func:`nkdefections.forecast`'s
output (dims ``(chain, draw, scenario, year_future)``, ``arrivals_observed`` over the fit window,
the same attrs), written to netCDF the way a run writes ``forecast.nc``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from nkdefections import constants as C
from nkdefections.cli.score import main
from nkdefections.data.tables import sha256_file
from nkdefections.evaluate.baselines import fit_baseline
from nkdefections.evaluate.inputs import ForecastInput, read_observed
from nkdefections.evaluate.prospective import (
    POOLED,
    SCORE_COLUMNS,
    kde_bandwidth,
    log_score_kde,
    prospective_scores,
    randomised_pit,
    score_forecast_file,
)

WINDOW = np.arange(1999, 2017)
#: A made-up fitted series of the right size and shape (not the data set's figures).
WINDOW_COUNTS = np.array(
    [150, 300, 600, 1100, 1300, 1900, 1400, 2000, 2500, 2800, 2900, 2400, 2700, 1500, 1500, 1400, 1300, 1400]
)
YEARS = np.arange(2017, 2023)
SCENARIOS = ("status_quo", "higher", "lower")
FACTORS = (1.0, 1.3, 0.75)


def fake_forecast(
    seed: int = 0, *, level: float = 1400.0, chains: int = 2, draws: int = 500, years: np.ndarray = YEARS
) -> xr.Dataset:
    """Three scenarios sharing latent paths and count uniforms: ``status_quo`` and two shifted by 1.3 and 0.75."""
    rng = np.random.default_rng(seed)
    S, H = chains * draws, len(years)
    z = rng.normal(0, 0.15, (S, H)).cumsum(axis=1)
    mu = level * np.exp(z)[:, None, :] * np.asarray(FACTORS)[None, :, None]
    phi = 30.0
    u = rng.uniform(size=(S, 1, H))
    y = stats.nbinom.ppf(np.broadcast_to(u, mu.shape), phi, phi / (phi + mu)).astype(np.int64)
    dims = (C.CHAIN, C.DRAW, C.SCENARIO, C.YEAR_FUTURE)
    n = len(SCENARIOS)
    ds = xr.Dataset(
        {
            C.OBSERVED: (dims, y.reshape(chains, draws, n, H)),
            C.MU: (dims, mu.reshape(chains, draws, n, H)),
            "extrapolated": ((C.SCENARIO, C.YEAR_FUTURE, C.DRIVER), np.zeros((n, H, 3), dtype=bool)),
            "arrivals_observed": ((C.YEAR,), WINDOW_COUNTS),
        },
        coords={
            C.CHAIN: np.arange(chains),
            C.DRAW: np.arange(draws),
            C.SCENARIO: list(SCENARIOS),
            C.YEAR_FUTURE: years,
            C.DRIVER: list(C.DRIVERS),
            C.YEAR: WINDOW,
        },
    )
    ds.attrs = {
        "scenarios": json.dumps({s: {"name": s} for s in SCENARIOS}, sort_keys=True),
        "fit_id": f"fake-{seed}",
        "data_hash": "0123456789abcdef",
        "horizon": f"{years[0]}-{years[-1]}",
        "seed": int(seed),
        "lags": json.dumps({"border": 0, "economy": 1, "sanctions": 0}),
        "model_config": json.dumps({"name": "fake"}),
        "package_versions": json.dumps({"nkdefections": "0.1.0"}),
        "fit_package_versions": "{}",
        "code_version": "git:fake",
        "common_random_numbers": "latent innovations and count uniforms shared by scenarios",
    }
    return ds


def write_forecast(ds: xr.Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path, engine="h5netcdf", encoding={C.OBSERVED: {"zlib": True}, C.MU: {"zlib": True}})
    return path


def write_observed(path: Path, rows: list[tuple] | str) -> Path:
    text = rows if isinstance(rows, str) else "year,arrivals\n" + "".join(f"{y},{a}\n" for y, a in rows)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder as ``nkdefections`` leaves it (the parts scoring reads)."""
    d = tmp_path / "run"
    write_forecast(fake_forecast(), d / "forecast.nc")
    (d / "run.json").write_text(json.dumps({"fit_id": "fake-0", "window": [1999, 2016]}))
    return d


@pytest.fixture
def observed(tmp_path: Path) -> Path:
    return write_observed(tmp_path / "published.csv", [(2017, 1300), (2018, 1250), (2020, 1700)])


def _draws(ds: xr.Dataset, scenario: str, year: int) -> np.ndarray:
    return ds[C.OBSERVED].sel({C.SCENARIO: scenario, C.YEAR_FUTURE: year}).values.ravel().astype(float)


# ---------------------------------------------------------------------------------------------
# (a) the numbers are scoringrules' on the same draws
# ---------------------------------------------------------------------------------------------


def test_crps_in_scores_csv_equals_scoringrules_on_the_same_draws(run_dir: Path, observed: Path, tmp_path: Path):
    import scoringrules as sr

    assert main([str(run_dir), str(observed), "--out", str(tmp_path / "s")]) == 0
    scores = pd.read_csv(tmp_path / "s" / C.SCORES_FILE, dtype={"year": str})
    ds = fake_forecast()
    obs = dict(zip(*pd.read_csv(observed).to_numpy().T, strict=True))
    per = scores[scores["year"] != POOLED]
    assert len(per) == len(SCENARIOS) * 3
    for r in per.itertuples():
        draws = _draws(ds, r.scenario, int(r.year))
        assert r.crps == pytest.approx(float(sr.crps_ensemble(obs[int(r.year)], draws, estimator="pwm")), rel=1e-10)
        assert r.observed == obs[int(r.year)]
        assert r.median == np.median(draws)
    # the no-change forecast: the same estimator on its own draws, which the library returns
    res = score_forecast_file(run_dir, observed)
    years = list(res.observed["year"])
    for j, year in enumerate(years):
        want = float(sr.crps_ensemble(obs[year], res.baseline_draws[j].astype(float), estimator="pwm"))
        got = per.loc[per["year"] == str(year), "no_change_crps"].to_numpy()
        np.testing.assert_allclose(got, want, rtol=1e-10)
    # and the baseline is the backtest's no-change forecast on the fitted series
    ref = fit_baseline("no_change", WINDOW, WINDOW_COUNTS, max(years) - 2016)
    np.testing.assert_array_equal(res.baseline.loc, ref.loc)
    np.testing.assert_array_equal(res.baseline.scale, ref.scale)


def test_pooled_rows_and_columns(run_dir: Path, observed: Path):
    res = score_forecast_file(run_dir, observed)
    df = res.scores
    assert tuple(df.columns) == SCORE_COLUMNS
    for s in SCENARIOS:
        g = df[(df[C.SCENARIO] == s) & (df["year"] != POOLED)]
        p = df[(df[C.SCENARIO] == s) & (df["year"] == POOLED)].iloc[0]
        assert p["n_years"] == 3 and list(g["horizon"]) == [1, 2, 4]
        assert p["crps"] == pytest.approx(g["crps"].mean())
        assert p["skill_ratio"] == pytest.approx(g["crps"].mean() / g["no_change_crps"].mean())
        np.testing.assert_allclose(g["skill_ratio"], g["crps"] / g["no_change_crps"])
        assert p["covered_80"] == pytest.approx(g["covered_80"].mean())
        assert set(g["covered_80"]) <= {0.0, 1.0} and np.isnan(p["pit"])
        assert ((g["pit_lower"] <= g["pit"]) & (g["pit"] <= g["pit_upper"])).all()
    # the no-change forecast does not depend on the scenario
    per = df[df["year"] != POOLED]
    assert per.groupby("year")["no_change_crps"].nunique().eq(1).all()


def test_log_score_kernel_estimate_matches_an_exact_pmf():
    """The KDE log score against the no-change forecast's exact count pmf, and the floor's guarantees."""
    bf = fit_baseline("no_change", WINDOW, WINDOW_COUNTS, 2)
    draws = bf.samples(np.random.default_rng(1), 4000)
    for h, y in ((1, 1300), (1, 2100), (2, 900)):
        exact = -float(bf.log_pmf(h, y))
        assert log_score_kde(draws[h - 1], y) == pytest.approx(exact, abs=0.1)
    # a point mass: finite (bandwidth floored at 1 arrival), and the density at the integers is a pmf
    point = np.full(200, 5.0)
    assert kde_bandwidth(point) == 1.0
    assert log_score_kde(point, 5) == pytest.approx(0.5 * np.log(2 * np.pi))
    small = np.random.default_rng(2).poisson(3.0, 1000)
    ks = np.arange(-20, 40)
    assert np.exp(-log_score_kde(np.broadcast_to(small, (ks.size, small.size)), ks)).sum() == pytest.approx(1, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# (b) figures drawn from the forecast itself: uniform PIT, and the true scenario scores best
# ---------------------------------------------------------------------------------------------


def _replicates(ds: xr.Dataset, n: int, seed: int) -> list[pd.DataFrame]:
    """Score ``n`` sets of synthetic figures, each year's a random draw of status_quo."""
    fc = ForecastInput(ds, Path("fake.nc"))
    rng = np.random.default_rng(seed)
    sq = ds[C.OBSERVED].sel({C.SCENARIO: "status_quo"}).stack(s=(C.CHAIN, C.DRAW)).transpose("s", C.YEAR_FUTURE)
    years = ds[C.YEAR_FUTURE].values
    out = []
    for r in range(n):
        pick = rng.integers(0, sq.shape[0], len(years))
        figures = sq.values[pick, np.arange(len(years))]
        obs = pd.DataFrame({"year": years, C.ARRIVALS: figures})
        out.append(prospective_scores(fc, obs, seed=seed * 100_000 + r)[0])
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("level", [3.0, 1400.0])
def test_pit_is_uniform_when_the_figures_come_from_the_forecast(seed: int, level: float):
    """Kolmogorov-Smirnov and chi-square (10 bins) over 60 x 20 PITs, p > 0.001 at every seed.

    At level 3 (counts of a few) the PIT's randomisation matters: the non-random bounds and the
    mid-PIT fail the same test there, so the test can fail.
    """
    ds = fake_forecast(seed, level=level, years=np.arange(2017, 2037))
    tables = _replicates(ds, 60, seed)
    rows = pd.concat([t[(t[C.SCENARIO] == "status_quo") & (t["year"] != POOLED)] for t in tables])
    pit = rows["pit"].to_numpy()
    assert stats.kstest(pit, "uniform").pvalue > 1e-3
    counts = np.histogram(pit, bins=10, range=(0, 1))[0]
    assert stats.chisquare(counts).pvalue > 1e-3
    if level < 10:
        mid = 0.5 * (rows["pit_lower"] + rows["pit_upper"]).to_numpy()
        assert stats.kstest(mid, "uniform").pvalue < 1e-3
        assert stats.kstest(rows["pit_upper"].to_numpy(), "uniform").pvalue < 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crps_is_lower_for_the_true_scenario_than_for_shifted_ones(seed: int):
    """CRPS is proper: its expectation is lowest for the distribution the figures come from.

    Over 100 replicates of 6 synthetic years: the mean pooled CRPS of the true scenario is lower
    than each shifted one's by more than 3 standard errors of the paired difference, and it wins
    in most replicates (a 6-year record does not always tell a 30% shift apart).
    """
    tables = _replicates(fake_forecast(seed), 100, seed)
    pooled = pd.DataFrame([t[t["year"] == POOLED].set_index(C.SCENARIO)["crps"] for t in tables])
    for other in ("higher", "lower"):
        diff = pooled[other] - pooled["status_quo"]
        assert diff.mean() > 3 * diff.std() / np.sqrt(len(diff)), (other, diff.describe())
        assert (diff > 0).mean() > 0.7, (other, (diff > 0).mean())


@pytest.mark.pure
def test_randomised_pit_kernel():
    draws = np.array([0, 1, 1, 2, 3])
    pit, lo, hi = randomised_pit(draws, 1, 0.5)
    assert (lo, hi, pit) == (0.2, 0.6, pytest.approx(0.4))
    pit, lo, hi = randomised_pit(draws, 7, 0.3)
    assert (lo, hi, pit) == (1.0, 1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# (c) refusals: one line, exit status 2, nothing written
# ---------------------------------------------------------------------------------------------


def _refused(capsys, args: list[str], out: Path, *needles: str) -> str:
    parent_before = sorted(p.name for p in out.parent.iterdir()) if out.parent.exists() else []
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("nkdefections-score: error: ")
    for n in needles:
        assert n in err, (n, err)
    assert not out.exists()
    after = sorted(p.name for p in out.parent.iterdir()) if out.parent.exists() else []
    assert after == parent_before, "a partial folder was left behind"
    return err


@pytest.mark.pure
def test_refuses_a_forecast_without_provenance(tmp_path: Path, observed: Path, capsys):
    ds = fake_forecast()
    del ds.attrs["fit_id"]
    ds.attrs["data_hash"] = ""
    nc = write_forecast(ds, tmp_path / "stripped.nc")
    _refused(capsys, [str(nc), str(observed)], tmp_path / "out", str(nc), "fit_id, data_hash", "to_netcdf")


@pytest.mark.pure
def test_refuses_a_forecast_without_its_fitted_series(tmp_path: Path, observed: Path, capsys):
    nc = write_forecast(fake_forecast().drop_vars("arrivals_observed"), tmp_path / "f.nc")
    _refused(capsys, [str(nc), str(observed)], tmp_path / "out", str(nc), "arrivals_observed")


@pytest.mark.pure
@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("year,arrivals\n2017,1300\n2031,900\n", ["line 3: year 2031 is not a forecast year", "2017-2022"]),
        ("year,arrivals\n2016,1418\n", ["line 2: year 2016 is not after the fitted window 1999-2016"]),
        ("year,count\n2017,1300\n", ["missing column(s) arrivals", "found: year, count"]),
        ("year,arrivals\n2017,1300\n2018,1250.5\n", ["line 3: arrivals = '1250.5' is not a whole count"]),
        ("year,arrivals\n2017,-4\n", ["line 2: arrivals = '-4' is not a whole count >= 0"]),
        ("year,arrivals\n2017,\n", ["line 2: arrivals = '' is not a whole count"]),
        ('year,arrivals\n2017,"1,300"\n', ["line 2", "without thousands separators"]),
        ("year,arrivals\nnext,1300\n", ["line 2: year = 'next' is not a year"]),
        ("year,arrivals\n2017,1300\n2018,1250\n2017,1299\n", ["line 4: year 2017 appears again (first on line 2)"]),
        ("year,arrivals\n", ["no data rows"]),
        ("", ["missing column(s) year, arrivals"]),
    ],
)
def test_refuses_malformed_or_uncovered_figures(run_dir: Path, tmp_path: Path, capsys, text: str, needles: list):
    obs = write_observed(tmp_path / "bad.csv", text)
    _refused(capsys, [str(run_dir), str(obs)], tmp_path / "out", str(obs), *needles)


@pytest.mark.pure
def test_refuses_unknown_file_types(run_dir: Path, observed: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    xlsx = tmp_path / "published.xlsx"
    xlsx.write_bytes(b"PK\x03\x04")
    _refused(capsys, [str(run_dir), str(xlsx)], out, str(xlsx), "unknown file type '.xlsx'")
    _refused(capsys, [str(observed), str(observed)], out, "unknown file type '.csv'", "run folder or a forecast .nc")
    fake_nc = tmp_path / "notes.nc"
    fake_nc.write_text("not netCDF")
    _refused(capsys, [str(fake_nc), str(observed)], out, str(fake_nc), "not a readable netCDF file")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    _refused(capsys, [str(empty), str(observed)], out, str(empty), "no forecast.nc in this folder")
    _refused(capsys, [str(tmp_path / "nowhere"), str(observed)], out, "not found")
    _refused(capsys, [str(run_dir), str(tmp_path)], out, str(tmp_path), "is a folder; pass a CSV file")


@pytest.mark.pure
def test_refuses_a_run_json_from_another_fit(run_dir: Path, observed: Path, tmp_path: Path, capsys):
    (run_dir / "run.json").write_text(json.dumps({"fit_id": "another"}))
    _refused(capsys, [str(run_dir), str(observed)], tmp_path / "out", "run.json", "fit_id another differs")


def test_never_replaces_earlier_results_silently(run_dir: Path, observed: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main([str(run_dir), str(observed), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "exists and is not empty" in err and (out / "mine.txt").read_text() == "keep"
    assert main([str(run_dir), str(observed), "--out", str(out), "--overwrite"]) == 0
    assert not (out / "mine.txt").exists() and (out / C.SCORES_FILE).is_file()
    # the run folder itself is never the output folder, not even with --overwrite
    assert main([str(run_dir), str(observed), "--out", str(run_dir), "--overwrite"]) == 2
    assert "holds the input" in capsys.readouterr().err and (run_dir / "forecast.nc").is_file()
    # a refused input with --overwrite leaves the earlier results alone
    bad = write_observed(tmp_path / "bad.csv", "year,arrivals\n2040,1\n")
    assert main([str(run_dir), str(bad), "--out", str(out), "--overwrite"]) == 2
    assert (out / C.SCORES_FILE).is_file()


# ---------------------------------------------------------------------------------------------
# (d) the command end to end
# ---------------------------------------------------------------------------------------------


def test_cli_end_to_end_on_a_run_folder_and_on_a_forecast_file(run_dir: Path, observed: Path, tmp_path: Path, capsys):
    out = tmp_path / "deep" / "scores"
    assert main([str(run_dir), str(observed), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "scored 3 scenario(s) over 3 year(s)" in stdout and "status_quo" in stdout
    for name in (C.SCORES_FILE, C.SCORECARD_FILE, C.SCORECARD_HTML, C.SCORE_PLOT, C.SCORE_META):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".partial")]
    meta = json.loads((out / C.SCORE_META).read_text())
    assert meta["inputs"]["forecast"]["sha256"] == sha256_file(run_dir / "forecast.nc")
    assert meta["inputs"]["run_json"]["sha256"] == sha256_file(run_dir / "run.json")
    assert meta["inputs"]["observed"]["sha256"] == sha256_file(observed)
    assert meta["forecast_attrs"]["fit_id"] == "fake-0" and meta["run"]["fit_id"] == "fake-0"
    assert meta["baseline"]["name"] == "no_change" and meta["baseline"]["origin"] == 2016
    assert meta["observed_years"] == [2017, 2018, 2020]
    assert {"statsmodels", "numpy", "nkdefections"} <= set(meta["package_versions"])
    assert meta["code_version"]
    card = (out / C.SCORECARD_FILE).read_text()
    assert "skill ratio" in card and "status_quo" in card and f"]({C.SCORE_PLOT})" in card
    assert "data:image/png;base64," in (out / C.SCORECARD_HTML).read_text()
    # the .nc directly gives the same scores (seeded), and the figures' file is not copied anywhere
    out2 = tmp_path / "direct"
    assert main([str(run_dir / "forecast.nc"), str(observed), "--out", str(out2), "--no-plot"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / C.SCORES_FILE), pd.read_csv(out2 / C.SCORES_FILE))
    assert not (out2 / C.SCORE_PLOT).exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [C.SCORES_FILE, C.SCORECARD_FILE, C.SCORECARD_HTML, C.SCORE_PLOT, C.SCORE_META]
    )


@pytest.mark.pure
def test_read_observed_sorts_and_ignores_extra_columns(tmp_path: Path):
    p = write_observed(tmp_path / "o.csv", "\ufeffyear, arrivals ,source\n2019,1600.0,made-up\n2017,1500,made-up\n")
    df = read_observed(p)
    assert list(df["year"]) == [2017, 2019] and list(df[C.ARRIVALS]) == [1500, 1600]


def test_help_works():
    res = subprocess.run(
        [sys.executable, "-m", "nkdefections.cli.score", "--help"], capture_output=True, text=True, check=True
    )
    assert "RUN_OR_FORECAST.nc" in res.stdout and "--overwrite" in res.stdout
    import nkdefections

    assert nkdefections.score_forecast_file is score_forecast_file
