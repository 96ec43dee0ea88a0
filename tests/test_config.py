"""Pure tier: configuration objects validate every value and name the bad key."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from nkdefections import constants as C
from nkdefections.config import (
    LATENTS,
    LIKELIHOODS,
    MAX_LAG,
    PARAMETERIZATIONS,
    SAMPLERS,
    GateConfig,
    ModelConfig,
    SamplerConfig,
    stable_hash,
)
from nkdefections.errors import ConfigError, NKDefectionsError
from nkdefections.priors import DEFAULT_PRIORS, PRIOR_FAMILIES, validate_prior

pytestmark = pytest.mark.pure


def raises_config(fn, *args, **kwargs) -> str:
    """Call ``fn`` and return the ConfigError message (fails if nothing is raised)."""
    with pytest.raises(ConfigError) as exc:
        fn(*args, **kwargs)
    assert isinstance(exc.value, NKDefectionsError) and isinstance(exc.value, ValueError)
    return str(exc.value)


def assert_all_in(msg: str, *parts: str) -> None:
    for part in parts:
        assert part in msg, f"{part!r} missing from error message: {msg}"


# ----------------------------------------------------------------------------
# defaults
# ----------------------------------------------------------------------------


def test_model_defaults_valid():
    m = ModelConfig()
    assert (m.name, m.likelihood, m.latent, m.parameterization) == (
        "default",
        "poisson",
        "ar1",
        "log_mu",
    )
    assert m.drivers == C.DRIVERS
    assert m.lags == {C.BORDER: 0, C.ECONOMY: 1, C.SANCTIONS: 0}
    assert m.max_lag == 1
    assert m.priors == DEFAULT_PRIORS
    assert set(m.priors) == set(DEFAULT_PRIORS)
    for spec in m.priors.values():
        assert all(isinstance(v, float) for k, v in spec.items() if k != "dist")
    assert (m.gdp_latest_sd, m.gdp_first_release_sd, m.gdp_sign_softness) == (0.05, 1.0, 0.5)


def test_every_default_prior_is_valid_on_its_own():
    for name, spec in DEFAULT_PRIORS.items():
        assert validate_prior(name, spec) == spec


def test_sampler_and_gate_defaults_valid():
    s = SamplerConfig()
    assert s.name in SAMPLERS and s.draws > 0 and s.chains > 0 and 0 < s.target_accept < 1
    g = GateConfig()
    assert (g.rhat_max, g.ess_bulk_min, g.ess_tail_min, g.max_divergences, g.enforce) == (
        1.01,
        400.0,
        400.0,
        0,
        True,
    )


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelConfig().latent = "none"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        SamplerConfig().draws = 5  # type: ignore[misc]


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("latent", LATENTS)
@pytest.mark.parametrize("parameterization", PARAMETERIZATIONS)
def test_every_listed_option_is_accepted(likelihood, latent, parameterization):
    m = ModelConfig(likelihood=likelihood, latent=latent, parameterization=parameterization)
    assert (m.likelihood, m.latent, m.parameterization) == (likelihood, latent, parameterization)


# ----------------------------------------------------------------------------
# unknown options
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, kwargs, key, options",
    [
        (ModelConfig, {"likelihood": "zip"}, "model.likelihood", LIKELIHOODS),
        (ModelConfig, {"likelihood": "Poisson"}, "model.likelihood", LIKELIHOODS),
        (ModelConfig, {"latent": "ar2"}, "model.latent", LATENTS),
        (ModelConfig, {"parameterization": "non-centered"}, "model.parameterization", PARAMETERIZATIONS),
        (ModelConfig, {"parameterization": "centered"}, "model.parameterization", PARAMETERIZATIONS),
        (ModelConfig, {"drivers": ("border", "trade")}, "model.drivers", C.DRIVERS),
        (SamplerConfig, {"name": "blackjax"}, "sampler.name", SAMPLERS),
    ],
)
def test_unknown_option(cls, kwargs, key, options):
    msg = raises_config(cls, **kwargs)
    (value,) = [v for v in kwargs.values()]
    bad = value[-1] if isinstance(value, tuple) else value
    assert_all_in(msg, f"{key}: unknown option {bad!r}", *(repr(o) for o in options))


# ----------------------------------------------------------------------------
# priors
# ----------------------------------------------------------------------------

SCALE_PARAMS = [
    (name, p)
    for name, spec in DEFAULT_PRIORS.items()
    for p in PRIOR_FAMILIES[spec["dist"]]
    if p in {"sigma", "alpha", "beta"}
]


def test_scale_params_cover_sigma_alpha_beta():
    assert {p for _, p in SCALE_PARAMS} == {"sigma", "alpha", "beta"}


@pytest.mark.parametrize("value", [0, 0.0, -1.0, -1e-9])
@pytest.mark.parametrize("name, param", SCALE_PARAMS)
def test_non_positive_prior_scale(name, param, value):
    msg = raises_config(ModelConfig, priors={name: {param: value}})
    assert_all_in(
        msg,
        f"model.priors.{name}.{param}: {float(value)}",
        "must be > 0",
        f"default {DEFAULT_PRIORS[name][param]}",
    )


@pytest.mark.parametrize("value", [0.0, -2.0])
def test_non_positive_scale_in_validate_prior_with_prefix(value):
    spec = {"dist": "gamma", "alpha": 2.0, "beta": value}
    msg = raises_config(validate_prior, "x", spec, prefix="scenario.priors")
    assert_all_in(msg, f"scenario.priors.x.beta: {value}", "must be > 0")


def test_location_may_be_negative_or_zero():
    m = ModelConfig(priors={"level": {"mu": -3.0}, "beta_border": {"mu": 0}})
    assert m.priors["level"]["mu"] == -3.0
    assert m.priors["beta_border"]["mu"] == 0.0


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("wide", "'wide' is not a number"),
        (True, "True is not a number"),
        (None, "None is not a number"),
        (math.nan, "nan is not finite"),
        (math.inf, "inf is not finite"),
    ],
)
def test_non_numeric_prior_param(value, fragment):
    msg = raises_config(ModelConfig, priors={"beta_border": {"sigma": value}})
    assert_all_in(msg, "model.priors.beta_border.sigma", fragment)


def test_unknown_prior_name():
    msg = raises_config(ModelConfig, priors={"beta_trade": {"dist": "normal", "mu": 0, "sigma": 1}})
    assert_all_in(msg, "model.priors: unknown key(s) ['beta_trade']", *(repr(n) for n in DEFAULT_PRIORS))


def test_unknown_prior_param():
    msg = raises_config(ModelConfig, priors={"level": {"scale": 1.0}})
    assert_all_in(msg, "model.priors.level: unknown key(s) ['scale']", "'mu'", "'sigma'", "'dist'")


def test_unknown_prior_family():
    msg = raises_config(ModelConfig, priors={"beta_border": {"dist": "cauchy", "sigma": 1.0}})
    assert_all_in(
        msg,
        "model.priors.beta_border.dist",
        "unknown prior family 'cauchy'",
        *(repr(f) for f in PRIOR_FAMILIES),
    )


@pytest.mark.parametrize(
    "name, spec, allowed",
    [
        ("rho", {"dist": "normal", "mu": 0.5, "sigma": 0.1}, ["beta"]),
        ("beta_border", {"dist": "gamma", "alpha": 2.0, "beta": 1.0}, ["normal"]),
        ("sigma_latent", {"dist": "normal", "mu": 0.0, "sigma": 1.0}, ["gamma", "halfnormal"]),
        ("level", {"dist": "halfnormal", "sigma": 1.0}, ["normal"]),
    ],
)
def test_wrong_family_for_parameter(name, spec, allowed):
    msg = raises_config(ModelConfig, priors={name: spec})
    assert_all_in(
        msg, f"model.priors.{name}.dist", f"{name} takes a prior of family {allowed}", f"got {spec['dist']!r}"
    )


def test_switching_to_an_allowed_family_drops_the_default_parameters():
    m = ModelConfig(
        priors={
            "sigma_latent": {"dist": "halfnormal", "sigma": 0.2},
            "gdp_sd": {"dist": "gamma", "alpha": 2.0, "beta": 1.0},
        }
    )
    assert m.priors["sigma_latent"] == {"dist": "halfnormal", "sigma": 0.2}
    assert m.priors["gdp_sd"] == {"dist": "gamma", "alpha": 2.0, "beta": 1.0}


def test_switching_family_requires_its_parameters():
    msg = raises_config(ModelConfig, priors={"sigma_latent": {"dist": "halfnormal"}})
    assert_all_in(msg, "model.priors.sigma_latent.sigma: missing", "halfnormal", "['sigma']")


@pytest.mark.parametrize("spec", [0.5, "beta(3, 2)", [3.0, 2.0]])
def test_prior_must_be_a_mapping(spec):
    msg = raises_config(ModelConfig, priors={"rho": spec})
    assert_all_in(msg, "model.priors.rho: expected a mapping", repr(spec))


def test_partial_prior_override_merges_with_defaults():
    m = ModelConfig(priors={"beta_border": {"sigma": 0.25}, "rho": {"alpha": 5}})
    assert m.priors["beta_border"] == {"dist": "normal", "mu": 0.0, "sigma": 0.25}
    assert m.priors["rho"] == {"dist": "beta", "alpha": 5.0, "beta": 2.0}
    for name in set(DEFAULT_PRIORS) - {"beta_border", "rho"}:
        assert m.priors[name] == DEFAULT_PRIORS[name]
    # restating the default family explicitly is the same override
    same = ModelConfig(priors={"beta_border": {"dist": "normal", "sigma": 0.25}, "rho": {"alpha": 5}})
    assert same.priors == m.priors
    # the module-level defaults are not mutated by an override
    assert DEFAULT_PRIORS["beta_border"]["sigma"] == 0.5


# ----------------------------------------------------------------------------
# sampler and gate
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"draws": 0}, "sampler.draws: 0 must be >= 1"),
        ({"draws": -100}, "sampler.draws: -100 must be >= 1"),
        ({"chains": 0}, "sampler.chains: 0 must be >= 1"),
        ({"chains": -2}, "sampler.chains: -2 must be >= 1"),
        ({"cores": 0}, "sampler.cores: 0 must be >= 1"),
        ({"tune": -1}, "sampler.tune: -1 must be >= 0"),
        ({"seed": -1}, "sampler.seed: -1 must be >= 0"),
        ({"draws": 1000.0}, "sampler.draws: 1000.0 is not a whole number"),
        ({"draws": 10.5}, "sampler.draws: 10.5 is not a whole number"),
        ({"draws": "1000"}, "sampler.draws: '1000' is not a whole number"),
        ({"draws": True}, "sampler.draws: True is not a whole number"),
        ({"chains": False}, "sampler.chains: False is not a whole number"),
        ({"tune": None}, "sampler.tune: None is not a whole number"),
        ({"target_accept": 0}, "sampler.target_accept: 0.0 must be strictly between 0 and 1"),
        ({"target_accept": 1}, "sampler.target_accept: 1.0 must be strictly between 0 and 1"),
        ({"target_accept": 1.5}, "sampler.target_accept: 1.5 must be strictly between 0 and 1"),
        ({"target_accept": -0.2}, "sampler.target_accept: -0.2 must be strictly between 0 and 1"),
        ({"target_accept": "0.9"}, "sampler.target_accept: '0.9' is not a number"),
        ({"target_accept": True}, "sampler.target_accept: True is not a number"),
        ({"target_accept": math.nan}, "sampler.target_accept: nan is not finite"),
    ],
)
def test_bad_sampler_values(kwargs, fragment):
    assert_all_in(raises_config(SamplerConfig, **kwargs), fragment)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"draws": 1},
        {"tune": 0},
        {"chains": 1},
        {"target_accept": 0.999},
        {"target_accept": 0.01},
        {"seed": 0},
    ],
)
def test_sampler_boundaries_accepted(kwargs):
    s = SamplerConfig(**kwargs)
    for k, v in kwargs.items():
        assert getattr(s, k) == v


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"rhat_max": 0.99}, "gate.rhat_max: 0.99 must be >= 1"),
        ({"rhat_max": "1.01"}, "gate.rhat_max: '1.01' is not a number"),
        ({"ess_bulk_min": -1}, "gate.ess_bulk_min: must be >= 0"),
        ({"ess_tail_min": -0.5}, "gate.ess_tail_min: must be >= 0"),
        ({"max_divergences": -1}, "gate.max_divergences: -1 must be >= 0"),
        ({"max_divergences": 0.5}, "gate.max_divergences: 0.5 is not a whole number"),
        ({"max_divergences": True}, "gate.max_divergences: True is not a whole number"),
    ],
)
def test_bad_gate_values(kwargs, fragment):
    assert_all_in(raises_config(GateConfig, **kwargs), fragment)


# ----------------------------------------------------------------------------
# drivers and lags
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lags, fragment",
    [
        ({"border": -1}, "model.lags.border: -1 must be >= 0"),
        ({"economy": MAX_LAG + 1}, f"model.lags.economy: {MAX_LAG + 1} exceeds the maximum lag {MAX_LAG}"),
        ({"sanctions": 10}, "model.lags.sanctions: 10 exceeds the maximum lag 3"),
        ({"economy": 1.5}, "model.lags.economy: 1.5 is not a whole number"),
        ({"economy": True}, "model.lags.economy: True is not a whole number"),
        ({"economy": "1"}, "model.lags.economy: '1' is not a whole number"),
        ({"trade": 1}, "model.lags: unknown key(s) ['trade']"),
    ],
)
def test_bad_lags(lags, fragment):
    msg = raises_config(ModelConfig, lags=lags)
    assert_all_in(msg, fragment)
    if "unknown key" in fragment:
        assert_all_in(msg, *(repr(d) for d in C.DRIVERS))


def test_max_lag_accepted():
    m = ModelConfig(lags={"border": 0, "economy": MAX_LAG, "sanctions": 2})
    assert m.lags == {"border": 0, "economy": 3, "sanctions": 2}
    assert m.max_lag == 3


def test_duplicate_drivers():
    msg = raises_config(ModelConfig, drivers=("border", "economy", "border"))
    assert_all_in(msg, "model.drivers", "['border', 'economy', 'border']", "twice")


def test_drivers_subset_and_canonical_order():
    m = ModelConfig(drivers=["sanctions", "border"], lags={"border": 1, "economy": 3, "sanctions": 0})
    assert m.drivers == ("border", "sanctions")
    # the lag of an excluded driver does not count
    assert m.max_lag == 1
    assert ModelConfig(drivers=()).max_lag == 0


# ----------------------------------------------------------------------------
# GDP measurement settings
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["gdp_latest_sd", "gdp_first_release_sd", "gdp_sign_softness"])
@pytest.mark.parametrize(
    "value, fragment", [(0, "0.0 must be > 0"), (-0.1, "-0.1 must be > 0"), ("1", "'1' is not a number")]
)
def test_bad_gdp_measurement_settings(key, value, fragment):
    assert_all_in(raises_config(ModelConfig, **{key: value}), f"model.{key}: {fragment}")


# ----------------------------------------------------------------------------
# serialisation and hashing
# ----------------------------------------------------------------------------

CUSTOM = dict(
    name="custom",
    likelihood="negative_binomial",
    latent="random_walk",
    parameterization="noncentered",
    drivers=("economy", "border"),
    lags={"border": 2, "economy": 3},
    priors={"sigma_latent": {"dist": "halfnormal", "sigma": 0.3}, "beta_economy": {"sigma": 0.2}},
    gdp_first_release_sd=1.5,
)


@pytest.mark.parametrize("kwargs", [{}, CUSTOM], ids=["default", "custom"])
def test_model_config_round_trip(kwargs):
    m = ModelConfig(**kwargs)
    d = m.to_dict()
    assert isinstance(d["drivers"], list)
    back = ModelConfig.from_dict(d)
    assert back == m
    assert back.to_dict() == d
    # also through JSON (what a run folder stores)
    assert ModelConfig.from_dict(json.loads(json.dumps(d))) == m


def test_model_to_dict_content():
    d = ModelConfig(**CUSTOM).to_dict()
    assert d["drivers"] == ["border", "economy"]
    assert d["lags"] == {"border": 2, "economy": 3, "sanctions": 0}
    assert d["priors"]["sigma_latent"] == {"dist": "halfnormal", "sigma": 0.3}
    assert d["priors"]["beta_economy"] == {"dist": "normal", "mu": 0.0, "sigma": 0.2}
    assert set(d) == {f.name for f in dataclasses.fields(ModelConfig)}


def test_from_dict_rejects_unknown_keys():
    msg = raises_config(ModelConfig.from_dict, {"likelihood": "poisson", "n_lags": 2})
    assert_all_in(msg, "model: unknown key(s) ['n_lags']", "'likelihood'", "'priors'")
    assert_all_in(raises_config(SamplerConfig.from_dict, {"draw": 10}), "sampler: unknown key(s) ['draw']")
    assert_all_in(raises_config(GateConfig.from_dict, {"rhat": 1.1}), "gate: unknown key(s) ['rhat']")


def test_from_dict_validates_values():
    msg = raises_config(ModelConfig.from_dict, {"priors": {"rho": {"beta": -1}}})
    assert_all_in(msg, "model.priors.rho.beta: -1.0 must be > 0")


def test_sampler_and_gate_round_trip():
    s = SamplerConfig(name="nutpie", draws=200, chains=2, target_accept=0.9, progressbar=False)
    assert SamplerConfig.from_dict(s.to_dict()) == s
    assert "progressbar" not in s.identity()
    assert s.identity() == {k: v for k, v in s.to_dict().items() if k != "progressbar"}
    g = GateConfig(rhat_max=1.05, ess_bulk_min=100, max_divergences=3, enforce=False)
    assert GateConfig.from_dict(g.to_dict()) == g


def test_stable_hash_is_order_independent():
    a = {"x": 1, "y": {"p": 1.5, "q": [1, 2]}, "z": "s"}
    b = {"z": "s", "y": {"q": [1, 2], "p": 1.5}, "x": 1}
    assert stable_hash(a) == stable_hash(b)
    assert len(stable_hash(a)) == 16 and len(stable_hash(a, n=8)) == 8
    assert stable_hash(a, n=8) == stable_hash(a)[:8]
    # but list order and values matter
    assert stable_hash({**a, "y": {"p": 1.5, "q": [2, 1]}}) != stable_hash(a)
    assert stable_hash({**a, "x": 2}) != stable_hash(a)


def test_stable_hash_of_model_configs():
    lags_a = {"border": 0, "economy": 1, "sanctions": 0}
    lags_b = {"sanctions": 0, "economy": 1, "border": 0}
    m1 = ModelConfig(lags=lags_a, priors={"rho": {"alpha": 4}, "level": {"mu": 6}})
    m2 = ModelConfig(
        lags=lags_b,
        priors={"level": {"mu": 6}, "rho": {"alpha": 4}},
        drivers=("sanctions", "economy", "border"),
    )
    assert stable_hash(m1.to_dict()) == stable_hash(m2.to_dict())
    assert stable_hash(m1.to_dict()) != stable_hash(ModelConfig().to_dict())
    # the progress bar does not change a sampler's identity
    assert stable_hash(SamplerConfig(progressbar=True).identity()) == stable_hash(
        SamplerConfig(progressbar=False).identity()
    )


def test_partial_lag_override_keeps_other_defaults():
    from nkdefections.config import DEFAULT_LAGS

    cfg = ModelConfig(lags={"border": 1})
    assert cfg.lags == {**DEFAULT_LAGS, "border": 1}


def test_drivers_given_as_a_string_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"model.drivers: 'border' is a string"):
        ModelConfig(drivers="border")


def test_structure_options_are_checked_with_the_key_named():
    with pytest.raises(ConfigError, match="model.startup_drift: needs latent: random_walk"):
        ModelConfig(startup_drift=True)
    with pytest.raises(ConfigError, match="model.transforms.economy"):
        ModelConfig(transforms={"economy": "log1p"})
    with pytest.raises(ConfigError, match="model.signs"):
        ModelConfig(signs={"borders": "nonpositive"})
    with pytest.raises(ConfigError, match="model.signs.border"):
        ModelConfig(signs={"border": "negative"})
    with pytest.raises(ConfigError, match="model.innovations"):
        ModelConfig(innovations="cauchy")
    m = ModelConfig(latent="random_walk", startup_drift=True, signs={"border": "nonpositive"})
    assert ModelConfig.from_dict(m.to_dict()) == m
