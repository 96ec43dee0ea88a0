"""Every config type lives in config.py, has one from_dict, and its old home re-exports it."""

from pathlib import Path

import pytest

from nkdefections import config
from nkdefections.errors import ConfigError, ScenarioError
from nkdefections.scenarios.scenario import Scenario


def test_old_homes_reexport_the_same_objects():
    from nkdefections.data.load import DataConfig
    from nkdefections.forecast.compare import CUMULATIVE, parse_thresholds
    from nkdefections.pipeline import ForecastConfig, RunConfig
    from nkdefections.scenarios.scenario import DEFAULT_HORIZON, Horizon

    assert DataConfig is config.DataConfig and Horizon is config.Horizon
    assert ForecastConfig is config.ForecastConfig and RunConfig is config.RunConfig
    assert parse_thresholds is config.parse_thresholds and CUMULATIVE == config.CUMULATIVE
    assert DEFAULT_HORIZON == (config.Horizon().start, config.Horizon().end)


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
    fc = config.ForecastConfig.from_dict(
        [sq], {"enabled": True, "horizon": {"end": 2025}, "seed": 3}, {"thresholds": [{"year": 2020, "arrivals": 9}]}
    )
    assert fc.horizon == config.Horizon(2017, 2025) and fc.seed == 3 and fc.thresholds == [(2020, 9.0)]
    with pytest.raises(ConfigError, match="forecast.seed: -1 must be a whole number >= 0"):
        config.ForecastConfig.from_dict([sq], {"seed": -1})
    with pytest.raises(ScenarioError, match="compare.thresholds: year 2040 is outside the horizon"):
        config.ForecastConfig.from_dict([sq], {}, {"thresholds": [{"year": 2040, "arrivals": 1}]})
    run = config.RunConfig.from_dict({"output_dir": "out", "cache_dir": None}, forecast=fc)
    assert run == config.RunConfig(output_dir=Path("out"), forecast=fc)
    with pytest.raises(ConfigError, match="output_dir: must name a folder"):
        config.RunConfig.from_dict({})
    with pytest.raises(ConfigError, match="prior_predictive_draws: 0 must be >= 1"):
        config.RunConfig.from_dict({"output_dir": "o", "prior_predictive_draws": 0})
