"""The ``nkdefections`` command: a Hydra app over ``configs/``.

This is the only module that sees an OmegaConf ``DictConfig``: it turns the
config into plain objects (:class:`DataConfig`, :class:`ModelConfig`,
:class:`SamplerConfig`, :class:`GateConfig`, :class:`RunConfig`) and calls
:func:`nkdefections.pipeline.run_fit`.  Every error the package raises on purpose
is printed as one clear message and exits with status 2, before any sampling and
with nothing written.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nkdefections.config import GateConfig, ModelConfig, SamplerConfig, _check_keys
from nkdefections.data import DataConfig
from nkdefections.errors import ConfigError, NKDefectionsError

log = logging.getLogger("nkdefections")

CONFIG_DIR = Path(os.environ.get("NKDEFECTIONS_CONFIG_DIR", Path(__file__).resolve().parents[2] / "configs"))
_TOP_KEYS = {
    "data",
    "model",
    "sampler",
    "gate",
    "output_dir",
    "overwrite",
    "cache_dir",
    "prior_predictive_draws",
    "seed",
}


def configs_from_dict(cfg: dict[str, Any]) -> tuple[DataConfig, ModelConfig, SamplerConfig, GateConfig, Any]:
    """Plain config objects from a resolved config dict (validates every value)."""
    from nkdefections.pipeline import RunConfig

    _check_keys(cfg, _TOP_KEYS, "config")
    d = dict(cfg["data"])
    _check_keys(d, {"dir", "first_year", "last_year", "files"}, "data")
    data = DataConfig(
        dir=Path(d["dir"]) if d.get("dir") else None,
        first_year=d.get("first_year", 1999),
        last_year=d.get("last_year", 2016),
        files=dict(d.get("files") or {}),
    )
    model = ModelConfig.from_dict(cfg["model"])
    sampler = SamplerConfig.from_dict(cfg["sampler"])
    gate = GateConfig.from_dict(cfg["gate"])
    draws = cfg.get("prior_predictive_draws", 500)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws <= 0:
        raise ConfigError(f"prior_predictive_draws: {draws!r} must be a whole number > 0.")
    if not cfg.get("output_dir"):
        raise ConfigError("output_dir: must name a folder for this run's outputs.")
    run = RunConfig(
        output_dir=Path(cfg["output_dir"]),
        cache_dir=Path(cfg["cache_dir"]) if cfg.get("cache_dir") else None,
        overwrite=bool(cfg.get("overwrite", False)),
        prior_predictive_draws=draws,
        seed=int(cfg.get("seed", 2)),
    )
    return data, model, sampler, gate, run


def _run(cfg: DictConfig) -> Path:
    from nkdefections.pipeline import run_fit

    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"config: cannot resolve ({exc}).") from exc
    assert isinstance(resolved, dict)
    data, model, sampler, gate, run = configs_from_dict(resolved)
    return run_fit(data, model, sampler, gate, run, resolved_config=OmegaConf.to_yaml(cfg, resolve=True))


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        out = _run(cfg)
    except NKDefectionsError as exc:
        print(f"nkdefections: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"nkdefections: wrote {out}")


def main() -> None:
    """Console-script entry point."""
    _hydra_main()


if __name__ == "__main__":
    main()
