"""nkdefections: Bayesian modelling and scenario forecasting of North Korean defector arrivals.

The public API, importable from the top level::

    from nkdefections import (
        load_data, DefectionModel, ModelConfig, SamplerConfig, GateConfig,   # data and the model
        Scenario, load_scenario, Horizon,                                     # scenarios
        forecast, summary_table, contrasts, exceedance, attribution,          # forecasts and comparisons
        summary_by_sex,                                                       # women and men (model=by_sex)
        score_forecast_file,                                                  # pre-registered forecasts scored
    )

Names that pull in PyMC (``DefectionModel``, ``build_model``) are imported on first use,
so data-only and forecast-only users do not pay for it.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from nkdefections.config import DataConfig, GateConfig, ModelConfig, SamplerConfig
from nkdefections.data import load_data
from nkdefections.errors import (
    ConfigError,
    ConvergenceError,
    DataValidationError,
    NKDefectionsError,
    OutputExistsError,
    PosteriorFileError,
    ScenarioError,
)

try:
    __version__ = version("nkdefections")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

#: Lazily imported public names -> the module that defines them.
_LAZY = {
    "DefectionModel": "nkdefections.model.defection",
    "build_model": "nkdefections.model.graph",
    "Scenario": "nkdefections.scenarios.scenario",
    "Horizon": "nkdefections.config",
    "load_scenario": "nkdefections.scenarios.scenario",
    "available_scenarios": "nkdefections.scenarios.scenario",
    "forecast": "nkdefections.forecast.kernel",
    "posterior_arrays": "nkdefections.forecast.fit_view",
    "FitView": "nkdefections.forecast.fit_view",
    "summary_table": "nkdefections.forecast.compare",
    "summary_by_sex": "nkdefections.forecast.compare",
    "contrasts": "nkdefections.forecast.compare",
    "exceedance": "nkdefections.forecast.compare",
    "attribution": "nkdefections.forecast.compare",
    "nowcast": "nkdefections.forecast.nowcast.nowcast",
    "score_forecast_file": "nkdefections.evaluate.prospective",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nkdefections' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "ConfigError",
    "ConvergenceError",
    "DataConfig",
    "DataValidationError",
    "GateConfig",
    "ModelConfig",
    "NKDefectionsError",
    "OutputExistsError",
    "PosteriorFileError",
    "SamplerConfig",
    "ScenarioError",
    "load_data",
    *_LAZY,
]
