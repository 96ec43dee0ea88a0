"""Files the package needs at run time (its configs and data), found with importlib.resources.

The single source is the repository's top-level ``configs/`` and ``data/``; the package
reaches them as ``nkdefections/_configs`` and ``nkdefections/_data`` (symbolic links in a
checkout, real folders inside the built wheel and sdist). The environment variables
``NKDEFECTIONS_CONFIG_DIR`` and ``NKDEFECTIONS_DATA_DIR`` point elsewhere.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def _shipped(name: str) -> Path:
    return Path(str(resources.files("nkdefections").joinpath(name)))


def config_dir() -> Path:
    """The shipped Hydra config folder (``$NKDEFECTIONS_CONFIG_DIR`` overrides it)."""
    env = os.environ.get("NKDEFECTIONS_CONFIG_DIR")
    return Path(env) if env else _shipped("_configs")


def data_dir() -> Path:
    """The shipped data folder (``$NKDEFECTIONS_DATA_DIR`` overrides it)."""
    env = os.environ.get("NKDEFECTIONS_DATA_DIR")
    return Path(env) if env else _shipped("_data")


def cache_dir() -> Path:
    """Where compiled code and fits are cached: ``$NKDEFECTIONS_CACHE_DIR`` or ``./.cache``."""
    return Path(os.environ.get("NKDEFECTIONS_CACHE_DIR", ".cache"))
