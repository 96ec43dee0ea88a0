"""Arrivals by sex (model=by_sex): the share block, its forecasts, tables and report.

Pure tests of the tables on a made-up forecast; one real by-sex fit (``fit`` tier) shared by the
module, reused from the fit cache by the run through the pipeline.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nkdefections import constants as C
from tests.helpers.fit import SMALL_GATE, SMALL_SAMPLER


def _fake_forecast(seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = (2, 50, 2, 3)
    total = rng.poisson(1000, shape)
    share = rng.uniform(0.6, 0.9, shape)
    female = rng.binomial(total, share)
    dims = ("chain", "draw", "scenario", "year_future")
    coords = {"scenario": ["a", "b"], "year_future": [2017, 2018, 2019], "driver": list(C.DRIVERS)}
    flags = np.zeros((2, 3, 3), dtype=bool)
    return xr.Dataset(
        {
            C.OBSERVED: (dims, total),
            C.FEMALE: (dims, female),
            C.MALE: (dims, total - female),
            C.FEMALE_SHARE: (dims, share),
            "extrapolated": (("scenario", "year_future", "driver"), flags),
        },
        coords=coords,
    )


@pytest.mark.pure
def test_summary_by_sex_splits_every_row():
    from nkdefections.forecast.compare import summary_by_sex, summary_table

    fc = _fake_forecast()
    t = summary_by_sex(fc)
    total = summary_table(fc)
    assert len(t) == 2 * len(total) and set(t["sex"]) == {"female", "male"}
    f = t[t.sex == "female"].set_index(["scenario", "year"])
    m = t[t.sex == "male"].set_index(["scenario", "year"])
    tot = total.set_index(["scenario", "year"])
    # the means add up exactly (medians need not)
    np.testing.assert_allclose(f["mean"] + m["mean"], tot["mean"], rtol=1e-12)
    share = f["female_share_median"]
    assert ((share > 0.6) & (share < 0.9)).all()
    expect = float(np.median(fc[C.FEMALE_SHARE].sel(scenario="a", year_future=2018).values))
    assert share.loc[("a", "2018")] == pytest.approx(expect)
    assert summary_by_sex(fc.drop_vars([C.FEMALE, C.MALE, C.FEMALE_SHARE])).empty


@pytest.mark.pure
def test_console_prints_women_and_men(tmp_path):
    from nkdefections.cli.console import _sex_lines
    from nkdefections.forecast.compare import summary_by_sex

    summary_by_sex(_fake_forecast()).to_csv(tmp_path / "forecast_by_sex.csv", index=False)
    lines = _sex_lines(tmp_path / "forecast_by_sex.csv")
    assert lines[0].startswith("by sex, cumulative 2017-2019")
    assert lines[1].lstrip().startswith("a") and "female" in lines[1] and "male" in lines[1] and "%" in lines[1]
    assert _sex_lines(tmp_path / "none.csv") == []


def sex_fit_scenario(name: str):
    from nkdefections.scenarios.scenario import load_scenario

    return load_scenario(name)


@pytest.fixture(scope="module")
def sex_fit(fit_cache_dir):
    from nkdefections import DefectionModel, GateConfig, ModelConfig, SamplerConfig

    model = DefectionModel(config=ModelConfig(name="by_sex", by_sex=True))
    model.fit(SamplerConfig(**SMALL_SAMPLER), GateConfig(**SMALL_GATE), cache_dir=fit_cache_dir)
    return model


@pytest.mark.fit
def test_by_sex_fit_passes_the_gate_and_leaves_the_totals_alone(sex_fit, small_fit):
    assert sex_fit.convergence.passed, sex_fit.convergence.message()
    post = sex_fit.idata.posterior
    for name in (C.SHARE_LEVEL, C.SHARE_BETA, C.RHO_SHARE, C.SIGMA_SHARE, C.SHARE_LATENT, C.FEMALE_SHARE):
        assert name in post
    # given the observed totals the share's likelihood is separate: the totals' posterior is the default's
    a, b = post[C.BETA], small_fit.idata.posterior[C.BETA]
    se = np.hypot(a.std().item(), b.std().item()) / np.sqrt(1000)  # a generous Monte Carlo error
    np.testing.assert_allclose(a.mean(("chain", "draw")), b.mean(("chain", "draw")), atol=10 * se + 0.02)
    # the fitted share follows the published 55-80%
    share = post[C.FEMALE_SHARE].median(("chain", "draw")).sel(year=slice(2002, 2016)).values
    observed = sex_fit.data[C.FEMALE].sel(year=slice(2002, 2016)).values / sex_fit.data[C.ARRIVALS].sel(
        year=slice(2002, 2016)
    ).values
    assert np.max(np.abs(share - observed)) < 0.05


@pytest.mark.fit
def test_by_sex_forecast_splits_the_totals(sex_fit):
    fc = sex_fit.forecast(["status_quo", "border_closure"])
    total, female, male = fc[C.OBSERVED], fc[C.FEMALE], fc[C.MALE]
    assert (female + male == total).all() and (female >= 0).all() and (male >= 0).all()
    share = fc[C.FEMALE_SHARE]
    assert ((share > 0) & (share < 1)).all()
    assert 0.6 < float(share.sel(scenario="status_quo", year_future=2017).median()) < 0.9
    # the split is drawn after the totals: the same posterior without the share block forecasts the same totals
    import dataclasses
    from types import MappingProxyType

    from nkdefections.forecast.kernel import forecast

    view = sex_fit.fit_view()
    no_share = dataclasses.replace(view, arrays=MappingProxyType({**view.arrays, C.SHARE_INTERCEPT: None}))
    plain = forecast(no_share, [sex_fit_scenario("status_quo"), sex_fit_scenario("border_closure")])
    assert C.FEMALE not in plain
    np.testing.assert_array_equal(plain[C.OBSERVED].values, total.values)


@pytest.mark.fit
def test_by_sex_run_writes_the_tables_and_the_report(sex_fit, fit_cache_dir, tmp_path):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from nkdefections.cli.app import CONFIG_DIR, configs_from_dict
    from nkdefections.cli.console import run_summary
    from nkdefections.pipeline import run
    from tests.helpers.fit import SMALL_OVERRIDES

    overrides = ["model=by_sex", *SMALL_OVERRIDES, f"output_dir={tmp_path / 'run'}", f"cache_dir={fit_cache_dir}"]
    overrides += ["scenarios=[status_quo,border_closure]"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)
    out = run(*configs_from_dict(cfg))
    meta = json.loads((out / "run.json").read_text())
    assert meta["cache_hit"] is True and meta["model_config"]["by_sex"] is True
    t = pd.read_csv(out / "forecast_by_sex.csv")
    assert set(t["sex"]) == {"female", "male"} and set(t["scenario"]) == {"status_quo", "border_closure"}
    report = (out / "report.md").read_text()
    assert "### Arrivals by sex" in report and "female_share_median" in report
    assert "by sex, cumulative 2017-2030" in run_summary(out)
    fx = pd.read_csv(out / "share_effects.csv")
    assert list(fx["driver"]) == ["border", "economy", "sanctions"]
    assert (fx["logit_lower_90"] < fx["logit_median"]).all() and (fx["logit_median"] < fx["logit_upper_90"]).all()


@pytest.mark.fit
def test_explorer_shows_women_and_men(sex_fit, tmp_path):
    from nkdefections.explore import Explorer, Settings
    from nkdefections.explore.output import provenance_info, result

    ex = Explorer(sex_fit, Settings(seed=3, save_dir=tmp_path / "scenario"))
    form = {
        "scenario": {"name": "mine", "description": "", "drivers": {"border": [{"type": "step", "value": "0.5"}]}},
        "baseline": "status_quo",
        "threshold": {"year": "2020", "arrivals": "2000"},
    }
    ev = ex.evaluate(form)
    rows = ex.comparison(ev)
    for r in rows:
        assert r["female_lower_80"] <= r["female_median"] <= r["female_upper_80"]
        assert 0.5 < r["female_share_median"] < 0.95
        # women and men split the total: their medians add up to about the total's
        assert abs(r["female_median"] + r["male_median"] - r["median"]) <= 0.05 * r["median"] + 5
    page = result(ex, ev, provenance_info(ex))  # what the page receives
    assert all("female_median" in r and "male_upper_80" in r for r in page["rows"])


@pytest.mark.pure
def test_simulated_women_stay_within_the_simulated_totals():
    from nkdefections.evaluate.sbc.simulate import simulate_female

    rng = np.random.default_rng(0)
    totals = rng.poisson(800, (5, 6))
    share = rng.uniform(0.2, 0.9, (5, 6))
    published = np.array([np.nan, np.nan, 1, 1, 1, 1])
    f = simulate_female(totals, share, published, seed=4)
    assert np.isnan(f[:, :2]).all() and (f[:, 2:] <= totals[:, 2:]).all() and (f[:, 2:] >= 0).all()
    # simulation i depends only on the seed and i: a longer run starts with a shorter one
    np.testing.assert_array_equal(simulate_female(totals[:3], share[:3], published, seed=4), f[:3])


@pytest.mark.pure
def test_refit_inputs_take_female_counts_checked_against_the_totals():
    from nkdefections import ModelConfig
    from nkdefections.config import DataConfig
    from nkdefections.data import load_data
    from nkdefections.errors import ConfigError
    from nkdefections.model.graph import build_model, design
    from nkdefections.model.refit_inputs import RefitSpec, refit_inputs

    cfg = ModelConfig(name="by_sex", by_sex=True)
    data = load_data(DataConfig(history=1))
    model = build_model(data, cfg, evaluation=True)
    d = design(data, cfg)
    names = ["arrivals_data", "obs_weight", "gdp_obs_all", "gdp_obs_sd_all", "gdp_obs_weight", "gdp_sign_weight"]
    names += ["driver_center", "level_prior_mu", "level_prior_sigma", "beta_prior_mu", "beta_prior_sigma"]
    base = {n: np.asarray(model[n].get_value()).copy() for n in [*names, "female_data", "female_weight"]}
    assert base["female_weight"].tolist() == [0.0] * 3 + [1.0] * 15  # published from 2002
    f = np.where(np.isnan(d.female), np.nan, np.minimum(d.y, 500))
    x = refit_inputs(d, cfg, {k: v.copy() for k, v in base.items()}, RefitSpec(female=f))
    assert x["female_data"][3] == 500 and x["female_weight"].sum() == 15
    with pytest.raises(ConfigError, match="between 0 and the year's total"):
        refit_inputs(d, cfg, {k: v.copy() for k, v in base.items()}, RefitSpec(female=np.where(np.isnan(f), f, 1e5)))
    plain = ModelConfig()
    m0 = build_model(data, plain, evaluation=True)
    x0 = {n: np.asarray(m0[n].get_value()).copy() for n in names}
    with pytest.raises(ConfigError, match="only the by-sex model"):
        refit_inputs(design(data, plain), plain, x0, RefitSpec(female=f))


def test_share_backtest_scores_the_women_given_the_totals():
    """A fake refitter whose 'posterior' share is the realised share: well calibrated, better than holding it."""
    from types import SimpleNamespace

    from nkdefections.evaluate.share_backtest import MODEL, NO_CHANGE, run_share_backtest

    years = np.arange(2002, 2012)
    y = np.full(len(years), 1000)
    true_share = np.linspace(0.55, 0.8, len(years))
    rng = np.random.default_rng(1)
    female = rng.binomial(y, true_share).astype(float)
    design = SimpleNamespace(years=years, y=y, female=female)
    post = xr.Dataset(
        {C.FEMALE_SHARE: (("chain", "draw", "year"), np.broadcast_to(true_share, (2, 500, len(years))).copy())},
        coords={"year": years},
    )
    report = SimpleNamespace(summary_row=lambda: {"passed": True})
    refitter = SimpleNamespace(
        config=SimpleNamespace(by_sex=True),
        design=design,
        inputs=lambda **kw: kw,
        fit=lambda x, seed: SimpleNamespace(posterior=post, seconds=0.1, convergence=report),
    )
    scores, fits = run_share_backtest(origins=(2005, 2006, 2007, 2008), horizons=(1, 2, 3), refitter=refitter)
    assert len(fits) == 4 and set(scores["method"]) == {MODEL, NO_CHANGE}
    assert len(scores) == 2 * 4 * 3
    m, b = (scores[scores.method == k] for k in (MODEL, NO_CHANGE))
    assert m["crps"].mean() < b["crps"].mean()  # the share rose: holding it is worse
    assert m["covered_95"].mean() >= 0.8
    with pytest.raises(Exception, match="no female share"):
        run_share_backtest(refitter=SimpleNamespace(config=SimpleNamespace(by_sex=False)))


@pytest.mark.slow
def test_by_sex_fit_passes_its_gate_across_seeds(fit_cache_dir):
    """The shared by-sex fit's gate with margin at five sampler seeds, not only the one the fit tier uses."""
    from nkdefections import DefectionModel, GateConfig, ModelConfig, SamplerConfig

    worst = []
    for seed in (11, 12, 13, 14, 15):
        model = DefectionModel(config=ModelConfig(name="by_sex", by_sex=True))
        model.fit(SamplerConfig(**{**SMALL_SAMPLER, "seed": seed}), GateConfig(**{**SMALL_GATE, "enforce": False}))
        assert model.convergence.passed, (seed, model.convergence.message())
        worst.append(float(model.convergence.table["rhat"].max()))
    assert max(worst) < 1.02
