"""The compile-once refit engine: inputs, masking, and equivalence with the default fit."""

from __future__ import annotations

import numpy as np
import pytest

from nkdefections import constants as C
from nkdefections.config import DataConfig, GateConfig, ModelConfig, SamplerConfig
from nkdefections.data.load import load_data
from nkdefections.errors import ConfigError
from nkdefections.model.graph import design
from tests.helpers.fit import SMALL_GATE, SMALL_SAMPLER


@pytest.fixture(scope="module")
def refitter():
    from nkdefections.model.refit import Refitter

    return Refitter(sampler=SamplerConfig(**SMALL_SAMPLER))


def test_inputs_mask_later_years_and_centre_on_the_training_window(refitter):
    x = refitter.inputs(origin=2010)
    years = refitter.years
    assert np.array_equal(x["obs_weight"], (years <= 2010).astype(float))
    gdp_years = refitter.design.gdp_years
    assert not x["gdp_obs_weight"][gdp_years > 2010].any()
    # a fit on 1999..2010 would centre on that window's means
    short = design(load_data(DataConfig(last_year=2010, history=1)), ModelConfig())
    np.testing.assert_allclose(x["driver_center"], short.center)
    full = refitter.inputs()
    assert full["obs_weight"].all()
    np.testing.assert_allclose(full["driver_center"], refitter.design.center)


def test_known_sign_applies_only_when_its_year_is_seen(refitter):
    """A fit stopping before 2005 must not see the 2005 'growth was positive' report."""
    assert float(refitter.inputs(origin=2004)["gdp_sign_weight"]) == 0.0
    assert float(refitter.inputs(origin=2005)["gdp_sign_weight"]) == 1.0
    assert float(refitter.inputs(origin=2005, sign_constraint=False)["gdp_sign_weight"]) == 0.0


def test_leave_one_out_masks_only_that_year(refitter):
    x = refitter.inputs(exclude_years=[2005])
    assert x["obs_weight"].sum() == len(refitter.years) - 1
    assert x["obs_weight"][list(refitter.years).index(2005)] == 0
    np.testing.assert_allclose(x["driver_center"], refitter.inputs()["driver_center"])


def test_inputs_swap_priors_and_data(refitter):
    x = refitter.inputs(priors={"beta_border": {"sigma": 1.0}, "level": {"mu": 6.0}})
    k = list(refitter.design.drivers).index(C.BORDER)
    assert x["beta_prior_sigma"][k] == 1.0
    assert x["beta_prior_mu"][k] == 0.0
    assert float(x["level_prior_mu"]) == 6.0
    y = np.arange(18) + 100
    assert np.array_equal(refitter.inputs(arrivals=y)["arrivals_data"], y)
    assert float(refitter.inputs(sign_constraint=False)["gdp_sign_weight"]) == 0.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"origin": 2017}, "origin"),
        ({"origin": 1999}, "origin"),
        ({"priors": {"rho": {"sigma": 1.0}}}, "priors.rho"),
        ({"priors": {"beta_border": {"sigma": -1.0}}}, "must be > 0"),
        ({"arrivals": np.full(18, -1)}, "non-negative"),
        ({"arrivals": np.ones(5)}, "18"),
        ({"exclude_years": [1990]}, "exclude_years"),
        ({"exclude_years": [2005.5]}, "whole number"),
        ({"origin": 2010.9}, "whole number"),
        ({"arrivals": np.full(18, 1.7)}, "whole counts"),
        ({"gdp": np.full(19, np.inf)}, "infinite"),
        ({"priors": {"level": {"sigma": 0.0}}}, "must be > 0"),
        ({"priors": {"beta_border": {"sigma": float("nan")}}}, "not finite"),
        ({"priors": {"level": {"sd": 0.1}}}, "unknown key"),
        ({"priors": {"level": {"mu": "x"}}}, "not a number"),
    ],
)
def test_bad_inputs_are_refused_before_sampling(refitter, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        refitter.inputs(**kwargs)


def test_a_fractional_likelihood_weight_is_refused_before_sampling(refitter, monkeypatch):
    """The graph solves the latent recursion for years that are seen (1) or not (0), nothing between."""
    monkeypatch.setattr(refitter, "program", lambda: pytest.fail("compiled before the inputs were checked"))
    x = refitter.inputs(origin=2012)
    x["obs_weight"] = np.where(x["obs_weight"] > 0, 0.5, 0.0)
    with pytest.raises(ConfigError, match=r"obs_weight must be 0 \(year unseen\) or 1"):
        refitter.fit(x, seed=1)


@pytest.mark.pure
@pytest.mark.parametrize("name", ["pymc", "numpyro"])
def test_only_the_engines_sampler_is_supported(name):
    from nkdefections.model.refit import Refitter

    with pytest.raises(ConfigError, match="sampler=nutpie"):
        Refitter(sampler=SamplerConfig(name=name))


@pytest.mark.fit
def test_full_window_refit_matches_the_default_fit(refitter, small_fit):
    """All weights 1: the evaluation graph is the default model (same posterior within MC error)."""
    fit = refitter.fit(seed=7)
    assert fit.convergence.summary_row()["divergences"] == 0
    a = fit.posterior[C.BETA].median((C.CHAIN, C.DRAW))
    b = small_fit.idata.posterior[C.BETA].median((C.CHAIN, C.DRAW))
    np.testing.assert_allclose(a.values, b.values, atol=0.1)
    assert abs(float(fit.posterior[C.RHO].median()) - float(small_fit.idata.posterior[C.RHO].median())) < 0.08
    # same seed, same draws: refits are reproducible
    again = refitter.fit(seed=7)
    np.testing.assert_array_equal(fit.posterior[C.BETA].values, again.posterior[C.BETA].values)


@pytest.mark.fit
def test_masked_refit_matches_a_fit_on_the_shorter_series(refitter):
    """Masking 2011-2016 is the same model as fitting 1999-2010 (level, effects, latent)."""
    from nkdefections.model.defection import DefectionModel

    short = DefectionModel(load_data(DataConfig(last_year=2010, history=1)))
    # to 2010 the border index is flat at 0, so the sign-constrained border effect is its prior alone,
    # piled at its bound: a stray divergence there is expected and is not what this test is about
    short.fit(SamplerConfig(**SMALL_SAMPLER), GateConfig(**{**SMALL_GATE, "enforce": False}))
    assert short.convergence.summary_row()["divergences"] <= 20
    masked = refitter.fit(refitter.inputs(origin=2010), seed=3)
    for name in (C.LEVEL, C.RHO, C.SIGMA_LATENT):
        a = masked.posterior[name].values.ravel()
        b = short.idata.posterior[name].values.ravel()
        assert abs(np.median(a) - np.median(b)) < 0.25 * b.std(), name
    a = masked.posterior[C.BETA].median((C.CHAIN, C.DRAW)).values
    b = short.idata.posterior[C.BETA].median((C.CHAIN, C.DRAW)).values
    sd = short.idata.posterior[C.BETA].std((C.CHAIN, C.DRAW)).values
    assert (np.abs(a - b) < 0.25 * sd).all(), (a, b)
    # the masked years run on under the prior (the forecast): the log rate is pinned by
    # the data in 2010 and spreads out by 2016
    log_mu = masked.posterior[C.LOG_MU]
    assert float(log_mu.sel({C.YEAR: 2016}).std()) > 3 * float(log_mu.sel({C.YEAR: 2010}).std())


def test_fit_many_fits_each_data_set_in_order_and_checks_its_arguments(refitter, monkeypatch):
    """One ``fit`` per data set, in input order, each with its own seed; a seed count that differs is refused."""
    monkeypatch.setattr(refitter, "fit", lambda x, *, seed, gate: f"fit-{seed}")
    assert refitter.fit_many([{}] * 3, seeds=[3, 4, 5]) == ["fit-3", "fit-4", "fit-5"]
    with pytest.raises(ConfigError, match="2 inputs but 1 seeds"):
        refitter.fit_many([{}, {}], seeds=[1])


@pytest.mark.fit
def test_refitters_of_one_model_share_one_compiled_program_and_swap_only_data(refitter):
    """A second refitter of the same model compiles nothing; the same seed and inputs give the same draws.

    Exact equality is real here: one process, one compiled program, one seed (nutpie's chains are
    deterministic given their seed), so any difference would be state leaking between refits.
    """
    from nkdefections.model.refit import Refitter

    x = refitter.inputs(origin=2012)
    first = refitter.fit(x, seed=5)
    refitter.fit(refitter.inputs(origin=2008), seed=6)  # another data set in between
    again = Refitter(refitter.config, refitter.data, refitter.sampler)
    assert again.program() is refitter.program() and again.compile_seconds == 0.0
    second = again.fit(x, seed=5)
    for name in (C.BETA, C.RHO, C.SIGMA_LATENT, C.LEVEL):
        np.testing.assert_array_equal(first.posterior[name].values, second.posterior[name].values)
    assert first.attempts == 1 and first.target_accept == refitter.sampler.target_accept


def test_a_refit_spec_and_its_fields_as_keywords_give_the_same_inputs(refitter):
    from nkdefections.errors import ConfigError
    from nkdefections.model.refit_inputs import RefitSpec

    a = refitter.inputs(RefitSpec(origin=2010, exclude_years=(2005,)))
    b = refitter.inputs(origin=2010, exclude_years=[2005])
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['orign'\]"):
        refitter.inputs(orign=2010)
    with pytest.raises(ConfigError, match="not both"):
        refitter.inputs(RefitSpec(), origin=2010)
