"""Backtest forecasts from a refit, and the evaluation settings refused before any fit.

The evidence commands and the model card built from their tables: tests/evidence/test_evidence.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nkdefections import constants as C
from nkdefections.config import SamplerConfig
from nkdefections.errors import ConfigError

TINY = SamplerConfig(draws=100, tune=150, chains=2, progressbar=False, seed=5)


@pytest.fixture(scope="module")
def refitter():
    from nkdefections.model.refit import Refitter

    return Refitter(sampler=TINY)


def _fake_fit(refitter, *, beta=(-0.5, 0.02, 0.05), S=40):
    """A RefitResult with fixed posterior draws (no sampling)."""
    from nkdefections.model.refit import RefitResult

    d = refitter.design
    rng = np.random.default_rng(0)
    post = xr.Dataset(
        {
            C.INTERCEPT: ((C.CHAIN, C.DRAW), np.full((1, S), 7.0)),
            C.BETA: ((C.CHAIN, C.DRAW, C.DRIVER), np.broadcast_to(np.array(beta), (1, S, 3)).copy()),
            C.LATENT: ((C.CHAIN, C.DRAW, C.YEAR), np.zeros((1, S, len(d.years)))),
            C.GDP_TRUE: ((C.CHAIN, C.DRAW, C.GDP_YEAR), rng.normal(1.0, 0.1, (1, S, len(d.gdp_years)))),
            C.RHO: ((C.CHAIN, C.DRAW), np.full((1, S), 0.5)),
        },
        coords={C.DRIVER: list(d.drivers), C.YEAR: d.years, C.GDP_YEAR: d.gdp_years},
    )
    return RefitResult(idata=xr.DataTree.from_dict({"posterior": post}), convergence=None, seconds=0.0, inputs={})


def test_status_quo_holds_what_is_in_force_at_the_origin_and_conditional_uses_the_realised_values(refitter):
    from nkdefections.evaluate.backtest import forecast_log_mu

    fit = _fake_fit(refitter, beta=(-0.5, 0.0, 0.0))  # border only
    data = refitter.data
    border = data[C.BORDER_INDEX]
    cond = forecast_log_mu(fit, refitter, 2011, [2012, 2013, 2014], "conditional")
    sq = forecast_log_mu(fit, refitter, 2011, [2012, 2013, 2014], "status_quo")
    np.testing.assert_allclose(cond[0], 7.0 - 0.5 * border.sel(year=[2012, 2013, 2014]).values)
    # in force at the end of 2011: 0.75 (the 2011 CCTV/wire build-up and the December crackdown at full
    # weight), not the 2011 yearly index 0.125 that pro-rates them
    assert float(data[C.BORDER_IN_FORCE].sel(year=2011)) == 0.75
    np.testing.assert_allclose(sq[0], 7.0 - 0.5 * 0.75)
    assert (cond[0] < sq[0]).all()  # the 2012 tightening lowers the conditional forecast further


def test_variance_rows_put_the_drawn_gdp_on_the_gdp_share(refitter):
    """With a flat latent and fixed effects, all of a forecast's variance is the GDP it draws."""
    from nkdefections.evaluate.backtest import _variance_rows, forecast_log_mu

    fit = _fake_fit(refitter, beta=(0.0, 0.3, 0.0), S=400)  # the economy only
    targets = [2012, 2013]
    rng = np.random.default_rng(0)
    rows = {}
    for mode in ("conditional", "status_quo"):
        log_mu = forecast_log_mu(fit, refitter, 2011, targets, mode)
        counts = rng.poisson(np.exp(log_mu))
        rows[mode] = _variance_rows(fit, refitter, 2011, targets, mode, log_mu, counts, [1500, 1500], "default")
        assert list(rows[mode]["horizon"]) == [1, 2] and set(rows[mode]["mode"]) == {mode}
    # status quo holds the last published growth (2010), drawn from the GDP block: all the variance
    sq = rows["status_quo"]
    np.testing.assert_allclose(sq["share_gdp_draws"], 1.0, atol=1e-9)
    assert (sq["share_latent_innovation"] == 0.0).all() and (sq["var_log_mu"] > 0).all()
    # conditional takes the realised 2011 and 2012 figures as published: nothing is drawn
    np.testing.assert_allclose(rows["conditional"]["var_log_mu"], 0.0, atol=1e-20)


def test_origin_year_gdp_is_unknown_at_the_origin(refitter):
    from nkdefections.evaluate.backtest import forecast_log_mu

    fit = _fake_fit(refitter, beta=(0.0, 0.1, 0.0))
    gdp = refitter.data[C.GDP_GROWTH]
    g = fit.posterior[C.GDP_TRUE]
    cond = forecast_log_mu(fit, refitter, 2010, [2012], "conditional")  # lag 1: GDP 2011, realised
    np.testing.assert_allclose(cond[:, 0], 7.0 + 0.1 * float(gdp.sel(year=2011)))
    cond1 = forecast_log_mu(fit, refitter, 2010, [2011], "conditional")  # GDP 2010: realised too
    np.testing.assert_allclose(cond1[:, 0], 7.0 + 0.1 * float(gdp.sel(year=2010)))
    sq = forecast_log_mu(fit, refitter, 2010, [2011, 2012], "status_quo")  # held at the last published: 2009
    g2009 = g.sel({C.GDP_YEAR: 2009}).values.ravel()
    np.testing.assert_allclose(sq, 7.0 + 0.1 * np.column_stack([g2009, g2009]))
    with pytest.raises(ConfigError, match="mode"):
        forecast_log_mu(fit, refitter, 2010, [2012], "optimistic")


def test_refit_inputs_hide_gdp_not_yet_published(refitter):
    d = refitter.design
    x = refitter.inputs(origin=2010, gdp_publication_lag=1)
    seen = dict(zip(d.gdp_years.tolist(), x["gdp_obs_weight"].tolist(), strict=True))
    assert seen[2009] == 1.0 and seen[2010] == 0.0 and seen[2011] == 0.0
    sd = dict(zip(d.gdp_years.tolist(), x["gdp_obs_sd_all"].tolist(), strict=True))
    assert sd[2009] == refitter.config.gdp_first_release_sd  # the newest figure is a first release
    assert sd[2008] == pytest.approx(refitter.config.gdp_latest_sd)
    assert refitter.inputs(origin=2010)["gdp_obs_weight"][list(d.gdp_years).index(2010)] == 1.0
    with pytest.raises(ConfigError, match="gdp_publication_lag"):
        refitter.inputs(origin=2010, gdp_publication_lag=-1)


@pytest.mark.pure
def test_backtest_targets_read_the_issue_thresholds():
    from nkdefections.evaluate.backtest import backtest_targets

    rows = []
    for origin in range(2008, 2016):
        for h in (1, 2, 3):
            if origin + h > 2016:
                continue
            k = dict(origin=origin, target_year=origin + h, horizon=h)
            rows += [
                dict(method="no_change", mode="-", crps=100.0 * h, covered_80=True, **k),
                dict(method="default", mode="conditional", crps=80.0 * h, covered_80=origin % 5 != 0, **k),
                dict(method="default", mode="status_quo", crps=95.0 * h, covered_80=origin % 2 == 0, **k),
            ]
    t = backtest_targets(pd.DataFrame(rows)).set_index(["target", "mode", "horizon"])
    assert t.loc[("conditional no worse than status quo", "conditional", 1), "value"] == pytest.approx(80 / 95)
    assert t.loc[("CRPS ratio against no_change", "conditional", 2), "met"]  # 0.80 < 1.0
    assert not t.loc[("CRPS ratio against no_change", "status_quo", 3), "met"]  # 0.95, not < 0.9
    cov = t.loc[("pooled 80% coverage", "conditional", 0)]
    assert cov["value"] == pytest.approx(17 / 21) and cov["met"]
    sq_cov = np.mean([(o % 2 == 0) for o in range(2008, 2016) for h in (1, 2, 3) if o + h <= 2016])
    assert t.loc[("pooled 80% coverage", "status_quo", 0), "value"] == pytest.approx(sq_cov)
    # constant ratios: the bootstrap interval collapses onto the value; a coverage has none
    r = t.loc[("conditional no worse than status quo", "conditional", 1)]
    assert r["lower"] == pytest.approx(80 / 95) and r["upper"] == pytest.approx(80 / 95)
    assert np.isnan(cov["lower"]) and np.isnan(cov["upper"])
    with pytest.raises(ConfigError, match="both modes"):
        backtest_targets(pd.DataFrame(rows).query("mode != 'status_quo'"))


def test_ratio_interval_covers_the_ratio_and_widens_with_noise():
    from nkdefections.evaluate.scores import ratio_interval

    rng = np.random.default_rng(4)
    b = rng.gamma(4.0, 50.0, 8)
    lo, hi = ratio_interval(1.2 * b * rng.lognormal(0, 0.3, 8), b)
    lo2, hi2 = ratio_interval(1.2 * b * rng.lognormal(0, 0.05, 8), b)
    assert lo < hi and lo2 < 1.2 * 1.05 and hi2 > 1.2 * 0.95
    assert hi - lo > hi2 - lo2
    with pytest.raises(ConfigError, match="paired, non-empty"):
        ratio_interval(np.ones(3), np.ones(4))


def test_backtest_rejects_bad_settings_before_fitting(refitter):
    from nkdefections.evaluate.backtest import run_backtest

    with pytest.raises(ConfigError, match="origins"):
        run_backtest(refitter=refitter, origins=(2016,))
    with pytest.raises(ConfigError, match="baseline"):
        run_backtest(refitter=refitter, origins=(2012,), baselines=("prophet",))


@pytest.mark.fit
def test_small_backtest_scores_model_and_baselines(refitter):
    from nkdefections.evaluate.backtest import run_backtest

    bt = run_backtest(refitter=refitter, origins=(2013, 2014))
    s = bt.scores
    # 2013: h = 1..3; 2014: h = 1, 2 -> 5 targets per method and mode
    assert len(s[(s["method"] == "default") & (s["mode"] == "conditional")]) == 5
    assert set(s["method"]) == {"default", "no_change", "rw_drift", "ets", "arima"}
    assert np.isfinite(s["crps"]).all() and np.isfinite(s["log_score"]).all()
    assert (s["target_year"] <= 2016).all()
    summary = bt.summary()
    assert {"mean_crps", "mean_log_score", "coverage_80"} <= set(summary.columns)
    assert len(bt.fits) == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"horizons": (0,)}, "horizons"),
        ({"horizons": ()}, "horizons"),
        ({"horizons": (1.5,)}, "horizons"),
        ({"modes": ()}, "modes"),
        ({"origins": (2010, 2010)}, "repeats"),
        ({"origins": (2010.5,)}, "whole number"),
        ({"seed": -5}, "seed"),
    ],
)
def test_bad_backtest_plans_are_refused_before_fitting(refitter, kwargs, match, monkeypatch):
    from nkdefections.evaluate.backtest import run_backtest

    monkeypatch.setattr(refitter, "fit", lambda *a, **k: pytest.fail("sampled before validating"))
    with pytest.raises(ConfigError, match=match):
        run_backtest(refitter=refitter, **{"origins": (2012,), **kwargs})


@pytest.mark.pure
def test_compare_models_refuses_an_empty_variant_set_and_one_step_less_horizons():
    from nkdefections.evaluate.comparison import compare_models

    with pytest.raises(ConfigError, match="no variants"):
        compare_models({})
    with pytest.raises(ConfigError, match="include 1"):
        compare_models(None, horizons=(2, 3))


@pytest.mark.pure
@pytest.mark.parametrize("factors", [(), (1.0,), ("a",), (0.5, 0.5), (True,), (-2.0,)])
def test_bad_sensitivity_factors_are_refused_before_fitting(factors):
    from nkdefections.evaluate.sensitivity import prior_sensitivity

    with pytest.raises(ConfigError, match="factors"):
        prior_sensitivity(factors=factors)
