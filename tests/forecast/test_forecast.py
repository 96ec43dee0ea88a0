"""The forecast kernel on the shared real fit: schema, common random numbers, and agreement
in distribution with pm.sample_posterior_predictive on the same model and inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nkdefections import constants as C
from nkdefections.config import Horizon
from nkdefections.errors import ScenarioError
from nkdefections.scenarios.scenario import Scenario, load_scenario

pytestmark = pytest.mark.fit

SQ = Scenario("status_quo", drivers={"economy": {"type": "step", "value": 1.0}})
CRACK = Scenario(
    "crack",
    drivers={"border": {"type": "relative", "change": 1.0}, "economy": {"type": "values", "values": {2017: -3.0}}},
)


@pytest.fixture(scope="module")
def fc(small_fit):
    from nkdefections.forecast.kernel import forecast

    return forecast(small_fit, [SQ, CRACK, load_scenario("economic_crisis")], seed=11)


def test_forecast_schema(fc, small_fit):
    y = fc[C.OBSERVED]
    assert y.dims == (C.CHAIN, C.DRAW, C.SCENARIO, C.YEAR_FUTURE)
    assert list(fc[C.YEAR_FUTURE].values) == list(range(2017, 2031))
    assert list(fc[C.SCENARIO].values) == ["status_quo", "crack", "economic_crisis"]
    assert fc[C.DRIVER_VALUES].dims == (C.CHAIN, C.DRAW, C.SCENARIO, C.YEAR_FUTURE, C.DRIVER)
    assert (y.values >= 0).all() and np.issubdtype(y.dtype, np.integer)
    assert fc.attrs["fit_id"] == small_fit.fit_id()
    assert "economic_crisis" in fc.attrs["scenarios"]
    for key in ("data_hash", "model_config", "package_versions", "code_version", "machine", "seed", "horizon"):
        assert fc.attrs[key] != "", key


def test_lags_use_history_then_the_path(fc, small_fit):
    x = fc[C.DRIVER_VALUES]
    # economy lag 1: arrivals 2017 use the (latent) 2016 growth, 2018 use the scenario's 2017 value
    gdp2016 = small_fit.idata.posterior[C.GDP_TRUE].sel(gdp_year=2016).values
    np.testing.assert_allclose(x.sel(scenario="crack", year_future=2017, driver="economy").values, gdp2016, rtol=1e-5)
    assert np.allclose(x.sel(scenario="crack", year_future=2018, driver="economy"), -3.0)
    assert np.allclose(x.sel(scenario="crack", year_future=2017, driver="border"), 2.25)
    # uncertain path: spread across draws, mean near the spec
    e = x.sel(scenario="economic_crisis", year_future=2019, driver="economy").values
    assert abs(e.mean() + 2.3) < 0.15 and 0.8 < e.std() < 1.2


def test_common_random_numbers(fc, small_fit):
    from nkdefections.forecast.kernel import forecast

    # identical paths except border: the latent and count noise are shared, so on the fitted line
    # the crackdown is lower in (almost) every draw, not just on average
    line = forecast(small_fit, [SQ, CRACK], seed=11, widen=False)[C.OBSERVED]
    d = (line.sel(scenario="crack") - line.sel(scenario="status_quo")).sel(year_future=2020)
    assert float((d < 0).mean()) > 0.97
    # widened (the default): the crackdown goes 1 unit beyond the 2011-16 border range, where the
    # slope carries the prior's s.d. 0.5 on top; still lower in most draws, no longer in almost all
    y = fc[C.OBSERVED]
    w = (y.sel(scenario="crack") - y.sel(scenario="status_quo")).sel(year_future=2020)
    assert 0.7 < float((w < 0).mean()) <= float((d < 0).mean())
    if small_fit.config.signs.get("border") == "nonpositive":
        # the sign assumption holds beyond the range too: more enforcement never raises the border term
        t = fc[C.DRIVER_TERMS].sel(driver="border", year_future=2020)
        assert bool((t.sel(scenario="crack") <= t.sel(scenario="status_quo") + 1e-12).all())


def test_same_seed_same_forecast(small_fit):
    from nkdefections.forecast.kernel import forecast

    a = forecast(small_fit, [SQ, CRACK], seed=5)
    b = forecast(small_fit, [CRACK, SQ], seed=5)
    np.testing.assert_array_equal(
        a[C.OBSERVED].sel(scenario="crack").values, b[C.OBSERVED].sel(scenario="crack").values
    )


def test_horizon_must_follow_the_fit(small_fit):
    from nkdefections.forecast.kernel import forecast

    with pytest.raises(ScenarioError, match="forecast.horizon.start: 2018"):
        forecast(small_fit, [SQ], Horizon(2018, 2020))


@pytest.mark.parametrize("scenario", [SQ, CRACK], ids=lambda s: s.name)
def test_kernel_matches_sample_posterior_predictive(small_fit, scenario):
    """Same model, same inputs: the numpy kernel and PyMC agree in distribution."""
    import pymc as pm

    from nkdefections.forecast.kernel import forecast
    from nkdefections.scenarios.paths import last_observed
    from tests.helpers.pymc_twin import build_forecast_model

    horizon = Horizon()
    mean, _, _ = scenario.path(last_observed(small_fit.data), horizon)
    fm = build_forecast_model(small_fit, mean, horizon)
    with fm:
        pp = pm.sample_posterior_predictive(
            small_fit.idata, var_names=["arrivals_future"], random_seed=3, progressbar=False
        )
    ref = pp.posterior_predictive["arrivals_future"].values.reshape(-1, len(horizon.years))
    kern = np.concatenate(
        [
            # the twin extrapolates the fitted line: compare with widening off
            forecast(small_fit, [scenario], horizon, seed=s, widen=False)[C.OBSERVED].values.reshape(
                -1, len(horizon.years)
            )
            for s in range(4)
        ]
    )
    for h in (0, 3, 13):  # 2017, 2020, 2030
        ks = stats.ks_2samp(ref[:, h], kern[:, h])
        assert ks.pvalue > 1e-3, (scenario.name, 2017 + h, ks)
        assert abs(np.median(ref[:, h]) / np.median(kern[:, h]) - 1) < 0.1
        iqr = [np.subtract(*np.quantile(a[:, h], [0.75, 0.25])) for a in (ref, kern)]
        assert abs(iqr[0] / iqr[1] - 1) < 0.2, (scenario.name, 2017 + h, iqr)


def test_forecast_widens_where_a_driver_leaves_the_observed_range(small_fit):
    """Beyond 1999-2016 the slope gets the prior's uncertainty, times the distance; inside nothing changes."""
    from nkdefections.arithmetic import transform_driver
    from nkdefections.forecast.kernel import forecast

    econ = {"economy": {"type": "step", "value": 1.0}}
    far = Scenario("far", drivers={**econ, "sanctions": {"type": "step", "value": 16.0}})
    inside = Scenario("inside", drivers={**econ, "sanctions": {"type": "step", "value": 5.5}})
    wide = forecast(small_fit, [far, inside], seed=4)
    line = forecast(small_fit, [far, inside], seed=4, widen=False)
    # the sanctions term differs by gamma * (f(16) - f(max observed)), gamma ~ N(0, prior s.d.)
    cfg = small_fit.config
    kind = cfg.transforms.get("sanctions", "linear")
    excess = transform_driver(16.0, kind) - transform_driver(float(wide["observed_max"].sel(driver="sanctions")), kind)
    diff = (wide[C.DRIVER_TERMS] - line[C.DRIVER_TERMS]).sel(scenario="far", driver="sanctions", year_future=2020)
    ratio = float(diff.std()) / (cfg.priors["beta_sanctions"]["sigma"] * excess)
    assert abs(ratio - 1) < 0.1  # 4,000 draws: the s.d. of a s.d. is ~1.1%
    assert abs(float(diff.mean())) < 0.1 * cfg.priors["beta_sanctions"]["sigma"] * excess
    np.testing.assert_allclose(
        wide[C.MU].sel(scenario="inside").values[..., :5], line[C.MU].sel(scenario="inside").values[..., :5]
    )
    # same latent path and intercept in both scenarios: log mu minus the driver terms agrees
    rest = [
        np.log(wide[C.MU].sel(scenario=n)) - wide[C.DRIVER_TERMS].sel(scenario=n).sum(C.DRIVER)
        for n in ("far", "inside")
    ]
    np.testing.assert_allclose(rest[0].values, rest[1].values, rtol=0, atol=1e-9)


def test_readme_python_example_runs(small_fit, fit_cache_dir, tmp_path, monkeypatch):
    """The README's library example, run as written except for the small test sampler."""
    import re
    from pathlib import Path

    from tests.helpers import REPO
    from tests.helpers.fit import SMALL_GATE, SMALL_SAMPLER

    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- example:start -->\n```python\n(.*?)```\n<!-- example:end -->", text, re.S).group(1)
    assert "model.forecast(" in block and "contrasts(" in block
    block = block.replace("SamplerConfig(seed=20161231)", f"SamplerConfig(**{SMALL_SAMPLER!r})")
    block = block.replace("GateConfig()", f"GateConfig(**{SMALL_GATE!r})")
    block = block.replace('cache_dir=".cache/fits"', f"cache_dir={str(fit_cache_dir)!r}")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)  # noqa: S102 - the documented example
    assert ns["fc"]["arrivals"].dims == ("chain", "draw", "scenario", "year_future")
    assert list(ns["fc"]["scenario"].values) == ["status_quo", "border_crackdown", "thaw"]
    assert ns["same"].attrs["fit_id"] == small_fit.fit_id()
    assert Path("fit.nc").is_file()


def test_extrapolation_flags_follow_the_lags(fc):
    """economic_crisis: -2.3 +- 1 in 2017-19 enters arrivals with the one-year economy lag."""
    used = fc["extrapolated"].sel(scenario="economic_crisis", driver="economy").to_series()
    path = fc["path_extrapolated"].sel(scenario="economic_crisis", driver="economy").to_series()
    assert list(path[path].index) == [2017, 2018, 2019]
    assert list(used[used].index) == [2018, 2019, 2020]
    # the border has no lag: flagged from 2017
    crack = fc["extrapolated"].sel(scenario="crack", driver="border")
    assert bool(crack.sel(year_future=2017)) and bool(crack.all())


def test_absurd_paths_are_refused_not_hung(small_fit):
    from nkdefections.forecast.kernel import forecast

    typo = Scenario("typo", drivers={"border": {"type": "step", "value": -60.0}})  # percent typed as index
    with pytest.raises(ScenarioError, match=r"scenario\(s\) \['typo'\].*units"):
        forecast(small_fit, [SQ, typo])


def test_correlated_specs_draw_independently(small_fit):
    from nkdefections.forecast.kernel import forecast

    two = Scenario(
        "two",
        drivers={
            "economy": [
                {"type": "step", "year": 2017, "until": 2019, "value": 0.0, "sd": 1.0, "correlated": True},
                {"type": "step", "year": 2020, "value": 0.0, "sd": 1.0, "correlated": True},
            ]
        },
    )
    x = forecast(small_fit, [two], seed=2)[C.DRIVER_VALUES].sel(scenario="two", driver="economy")
    a = x.sel(year_future=2018).values.ravel()  # economy lag 1: 2017's value
    b = x.sel(year_future=2019).values.ravel()  # same spec: identical draw
    c = x.sel(year_future=2022).values.ravel()  # second spec
    np.testing.assert_allclose(a, b)
    assert abs(np.corrcoef(a, c)[0, 1]) < 0.15


def test_border_closure_scales_arrivals_by_the_assumed_elasticity(small_fit):
    """open = 0.1 from 2018: mu ratio to the same scenario without the closure is 0.1 ** e, e ~ TN(0.7, 0.3)."""
    from scipy import stats as st

    from nkdefections.forecast.kernel import forecast
    from nkdefections.priors import CLOSURE_ELASTICITY

    drivers = {"economy": {"type": "step", "value": 1.0}}
    shut = Scenario("shut", drivers={**drivers, "border_open": {"type": "step", "year": 2018, "value": 0.1}})
    fc = forecast(small_fit, [shut, Scenario("open", drivers=drivers)], seed=9)
    ratio = (fc[C.MU].sel(scenario="shut") / fc[C.MU].sel(scenario="open")).values.reshape(-1, 14)
    np.testing.assert_allclose(ratio[:, 0], 1.0)  # 2017: still open
    e = np.log(ratio[:, 1]) / np.log(0.1)  # the elasticity each draw used
    c = CLOSURE_ELASTICITY
    a, b = (c["lower"] - c["mean"]) / c["sd"], (c["upper"] - c["mean"]) / c["sd"]
    ks = st.kstest(e, st.truncnorm(a, b, loc=c["mean"], scale=c["sd"]).cdf)
    assert ks.pvalue > 1e-3 and 0.0 <= e.min() and e.max() <= 1.5
    assert bool(fc["extrapolated"].sel(scenario="shut", driver="border", year_future=2018))


# ----------------------------------------------------------------------------
# The kernel takes data: a FitView of the fit, never the model
# ----------------------------------------------------------------------------


def test_forecast_from_the_fit_view_equals_forecast_from_the_model(small_fit):
    from nkdefections.forecast import FitView, forecast

    view = small_fit.fit_view()
    assert isinstance(view, FitView)
    a = forecast(small_fit, [SQ, CRACK], seed=5)
    b = forecast(view, [SQ, CRACK], seed=5)
    # the same arrays and the same random numbers: exact equality is real here
    np.testing.assert_array_equal(a[C.OBSERVED].values, b[C.OBSERVED].values)
    np.testing.assert_array_equal(a[C.MU].values, b[C.MU].values)
    assert a.attrs["fit_id"] == b.attrs["fit_id"] == small_fit.fit_id()


def test_fit_view_is_read_only_and_complete(small_fit):
    view = small_fit.fit_view()
    post = small_fit.idata.posterior
    S = post.sizes[C.CHAIN] * post.sizes[C.DRAW]
    assert view.n_samples == S and view.last_year == 2016 and view.first_year == 1999
    assert view.arrays["latent"].shape == (S, len(view.years))
    np.testing.assert_array_equal(view.arrivals, small_fit.design.y)
    with pytest.raises(ValueError, match="read-only"):
        view.arrays["beta"][0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        view.chain[0] = 5  # the coordinates too: they are the posterior's, not copies to edit
    with pytest.raises(TypeError):
        view.arrays["beta"] = None  # the mapping itself is frozen
    with pytest.raises(AttributeError):
        view.config = None  # and so is the view


def test_the_nowcast_takes_the_fit_view(small_fit):
    from nkdefections.forecast.nowcast.nowcast import model_prior

    a = model_prior(small_fit, 2020, seed=3)
    b = model_prior(small_fit.fit_view(), 2020, seed=3)
    np.testing.assert_array_equal(a["mu"], b["mu"])
    np.testing.assert_array_equal(a["mu_next"], b["mu_next"])


def test_anything_else_is_refused_with_a_clear_error():
    from nkdefections.errors import PosteriorFileError
    from nkdefections.forecast import forecast

    with pytest.raises(PosteriorFileError, match="expected a fitted DefectionModel or a FitView, got dict"):
        forecast({}, [SQ])
