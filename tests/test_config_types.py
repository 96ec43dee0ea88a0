"""Every config type has one home and one from_dict."""

from pathlib import Path

import pytest

from nkdefections import config
from nkdefections.errors import ConfigError, ScenarioError
from nkdefections.forecast.config import ForecastConfig
from nkdefections.pipeline import RunConfig
from nkdefections.scenarios.scenario import Scenario

pytestmark = pytest.mark.pure


def test_each_name_has_one_home():
    """The config types, the horizon and the threshold vocabulary are defined once, and the
    modules that once re-exported them no longer do (one import path per name)."""
    from nkdefections import constants, priors, validate
    from nkdefections.data import load
    from nkdefections.forecast import compare
    from nkdefections.forecast.config import ForecastConfig
    from nkdefections.pipeline import RunConfig
    from nkdefections.scenarios import scenario

    assert ForecastConfig.__module__ == "nkdefections.forecast.config"
    assert RunConfig.__module__ == "nkdefections.pipeline"
    assert config.Horizon.__module__ == config.DataConfig.__module__ == "nkdefections.config"
    assert validate.parse_thresholds.__module__ == "nkdefections.validate" and constants.CUMULATIVE == "cumulative"
    assert priors.validate_prior.__module__ == "nkdefections.priors"
    assert not hasattr(config, "ForecastConfig") and not hasattr(config, "RunConfig")
    assert not hasattr(config, "PRIOR_FAMILIES") and not hasattr(compare, "parse_thresholds")
    assert not hasattr(scenario, "DEFAULT_HORIZON") and load.DataConfig is config.DataConfig
    assert config.DEFAULT_HORIZON == (config.Horizon().start, config.Horizon().end)


@pytest.mark.parametrize(
    "cls", [config.DataConfig, config.ModelConfig, config.SamplerConfig, config.GateConfig, config.Horizon]
)
def test_from_dict_of_nothing_is_the_default(cls):
    assert cls.from_dict({}) == cls()


def test_from_dict_checks_keys_and_values():
    assert config.DataConfig.from_dict({"dir": "x", "first_year": 2001}) == config.DataConfig(Path("x"), 2001)
    assert config.DataConfig().window == "1999-2016"
    with pytest.raises(ConfigError, match=r"data: unknown key\(s\) \['frist_year'\]"):
        config.DataConfig.from_dict({"frist_year": 2001})
    with pytest.raises(ConfigError, match="forecast.horizon.start: True is not a year"):
        config.Horizon.from_dict({"start": True})
    with pytest.raises(ConfigError, match="forecast.horizon: end 2018 precedes start 2020"):
        config.Horizon.from_dict({"start": 2020, "end": 2018})


def test_forecast_and_run_from_dict():
    sq = Scenario(name="status_quo", description="", reasoning="", drivers={})
    fc = ForecastConfig.from_dict(
        [sq], {"enabled": True, "horizon": {"end": 2025}, "seed": 3}, {"thresholds": [{"year": 2020, "arrivals": 9}]}
    )
    assert fc.horizon == config.Horizon(2017, 2025) and fc.seed == 3 and fc.thresholds == [(2020, 9.0)]
    with pytest.raises(ConfigError, match="forecast.seed: -1 must be a whole number >= 0"):
        ForecastConfig.from_dict([sq], {"seed": -1})
    with pytest.raises(ScenarioError, match="compare.thresholds: year 2040 is outside the horizon"):
        ForecastConfig.from_dict([sq], {}, {"thresholds": [{"year": 2040, "arrivals": 1}]})
    run = RunConfig.from_dict({"output_dir": "out", "cache_dir": None}, forecast=fc)
    assert run == RunConfig(output_dir=Path("out"), forecast=fc)
    with pytest.raises(ConfigError, match="output_dir: must name a folder"):
        RunConfig.from_dict({})
    with pytest.raises(ConfigError, match="prior_predictive_draws: 0 must be >= 1"):
        RunConfig.from_dict({"output_dir": "o", "prior_predictive_draws": 0})
