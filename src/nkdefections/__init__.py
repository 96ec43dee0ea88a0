"""nkdefections: Bayesian modelling and scenario forecasting of North Korean defector arrivals.

The public API::

    from nkdefections import load_data, DefectionModel, ModelConfig, SamplerConfig, GateConfig
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from nkdefections.config import GateConfig, ModelConfig, SamplerConfig
from nkdefections.data.load import DataConfig, load_data
from nkdefections.errors import (
    ConfigError,
    ConvergenceError,
    DataValidationError,
    NKDefectionsError,
    OutputExistsError,
    PosteriorFileError,
)

try:
    __version__ = version("nkdefections")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"


def __getattr__(name: str):  # lazy: importing PyMC costs seconds; data-only users skip it
    if name in {"DefectionModel", "build_model"}:
        from nkdefections import model

        return getattr(model, name)
    raise AttributeError(name)


__all__ = [
    "ConfigError",
    "ConvergenceError",
    "DataConfig",
    "DataValidationError",
    "DefectionModel",
    "GateConfig",
    "ModelConfig",
    "NKDefectionsError",
    "OutputExistsError",
    "PosteriorFileError",
    "SamplerConfig",
    "build_model",
    "load_data",
]
