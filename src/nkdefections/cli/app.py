"""The ``nkdefections`` command: a Hydra app over ``configs/``.

This is the only module that sees an OmegaConf ``DictConfig``: it turns the config into
plain objects (:class:`DataConfig`, :class:`ModelConfig`, :class:`SamplerConfig`,
:class:`GateConfig`, :class:`ForecastConfig`, :class:`RunConfig`) and calls
:func:`nkdefections.pipeline.run`.  Every error the package raises on purpose is printed
as one clear message and exits with status 2, before any sampling and with nothing
written.

Multirun (``-m``) sweeps write one folder per job under the sweep folder; the
:class:`GatherSweep` callback collects their tables into ``sweep_table.csv`` (and
``sweep_contrasts.csv``) at the end of the sweep.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nkdefections.config import DataConfig, GateConfig, ModelConfig, SamplerConfig
from nkdefections.errors import ConfigError, NKDefectionsError, ScenarioError
from nkdefections.resources import config_dir
from nkdefections.validate import check_keys

if TYPE_CHECKING:  # pragma: no cover - the annotations only; imported where used (they pull in PyMC)
    from nkdefections.forecast.config import ForecastConfig
    from nkdefections.pipeline import RunConfig

log = logging.getLogger("nkdefections")

CONFIG_DIR = config_dir()
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
    "scenarios",
    "custom_scenarios",
    "forecast",
    "compare",
    "outputs",
    "sweep",
    "experiment",
}


def _default_output_dir() -> str:
    """``outputs/<timestamp>`` for a single run; the job's own folder inside a multirun sweep."""
    try:
        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return str(hc.runtime.output_dir)
    except ValueError:  # composed outside a Hydra app (tests, notebooks)
        pass
    return f"outputs/{_dt.datetime.now():%Y-%m-%d_%H-%M-%S}"


if not OmegaConf.has_resolver("nk_output_dir"):
    OmegaConf.register_new_resolver("nk_output_dir", _default_output_dir)


def user_config_dirs(config_sources: Any = None) -> list[Path]:
    """The user's config folders: ``--config-dir`` and ``hydra.searchpath=[file://...]`` entries.

    Read from ``hydra.runtime.config_sources`` (``config_sources``, default: the running
    Hydra app's); the shipped folder (provider ``main``) and non-file sources are left out.
    Scenario files are read by :func:`load_scenario`, not by Hydra, so this is how a
    ``scenario/`` folder next to a user's ``model/`` folder is found.
    """
    if config_sources is None:
        try:
            config_sources = HydraConfig.get().runtime.config_sources
        except ValueError:  # composed outside a Hydra app
            return []
    out = []
    for src in config_sources or []:
        get = src.get if isinstance(src, Mapping) else lambda k, s=src: getattr(s, k, None)
        if get("schema") == "file" and get("provider") != "main" and get("path"):
            out.append(Path(str(get("path"))))
    return out


def _scenarios(cfg: Mapping[str, Any], search_path: list[Path] | None = None) -> list[Any]:
    from nkdefections.scenarios.scenario import load_scenario, scenario_from_dict

    if search_path is None:
        search_path = user_config_dirs()

    names = cfg.get("scenarios") or []
    if isinstance(names, str):
        names = [names]
    custom = cfg.get("custom_scenarios") or {}
    if not isinstance(custom, Mapping):
        raise ScenarioError("custom_scenarios: expected a mapping name -> scenario definition.")
    out = []
    for name, spec in custom.items():
        if not isinstance(spec, Mapping):
            raise ScenarioError(
                f"custom_scenarios.{name}: expected a scenario definition (name, description, drivers), got {spec!r}."
            )
    for name in names:
        if name in custom:
            spec = dict(custom[name])
            spec.setdefault("name", name)
            out.append(scenario_from_dict(spec, source=f"custom_scenarios.{name}"))
        else:
            out.append(load_scenario(str(name), search_path=search_path))
    for name, spec in custom.items():  # inline scenarios are always forecast
        if name not in names:
            spec = dict(spec)
            spec.setdefault("name", name)
            out.append(scenario_from_dict(spec, source=f"custom_scenarios.{name}"))
    return out


def _forecast_config(
    cfg: Mapping[str, Any], search_path: list[Path] | None = None, last_year: int | None = None
) -> ForecastConfig | None:
    fc = dict(cfg.get("forecast") or {})
    check_keys(fc, {"enabled", "horizon", "seed"}, "forecast")
    if not fc.get("enabled", True):
        return None
    from nkdefections.forecast.config import ForecastConfig

    return ForecastConfig.from_dict(
        _scenarios(cfg, search_path), fc, dict(cfg.get("compare") or {}), last_year=last_year
    )


def _missing_keys(node: Any, prefix: str = "") -> list[str]:
    """The keys left at OmegaConf's mandatory marker ``???`` (e.g. by ``data=live``)."""
    if isinstance(node, Mapping):
        return [k for key, v in node.items() for k in _missing_keys(v, f"{prefix}{key}.")]
    return [prefix[:-1]] if isinstance(node, str) and node == "???" else []


def _check_required(cfg: Mapping[str, Any]) -> None:
    """Refuse a config whose option leaves values to be given (``???``), naming every one."""
    missing = [k for k in _missing_keys(cfg) if not k.startswith("hydra.")]
    if missing:
        example = " ".join(f"{k}=..." for k in missing[:3])
        raise ConfigError(
            f"{', '.join(missing)}: required by the chosen config option (marked ??? in its file, e.g. "
            f"configs/data/live.yaml) and not given; set them on the command line ({example})."
        )


def configs_from_dict(
    cfg: dict[str, Any], search_path: list[Path] | None = None
) -> tuple[DataConfig, ModelConfig, SamplerConfig, GateConfig, RunConfig]:
    """Plain config objects from a resolved config dict (validates every value).

    Each section goes through its type's ``from_dict`` (``nkdefections.config``), where the
    defaults are written once.  ``search_path``: the user's config folders searched for
    scenario files before the shipped ones (default: :func:`user_config_dirs` of the
    running Hydra app, if any).
    """
    check_keys(cfg, _TOP_KEYS, "config")
    _check_required(cfg)
    d = dict(cfg["data"])
    d["files"] = {k: v for k, v in dict(d.get("files") or {}).items() if v is not None}  # null: the shipped file
    data = DataConfig.from_dict(d)
    model = ModelConfig.from_dict(cfg["model"])
    sampler = SamplerConfig.from_dict(cfg["sampler"])
    gate = GateConfig.from_dict(cfg["gate"])
    outputs = dict(cfg.get("outputs") or {})
    check_keys(outputs, {"fit_checks", "plots"}, "outputs")
    values = {
        "output_dir": cfg.get("output_dir"),
        "cache_dir": cfg.get("cache_dir"),
        "overwrite": cfg.get("overwrite"),
        "prior_predictive_draws": cfg.get("prior_predictive_draws"),
        "seed": cfg.get("seed"),
        "fit_checks": outputs.get("fit_checks"),
        "plots": outputs.get("plots"),
        "extra": {"sweep": dict(cfg["sweep"])} if cfg.get("sweep") else None,
    }
    from nkdefections.pipeline import RunConfig  # imported here: the pipeline pulls in PyMC and matplotlib

    run = RunConfig.from_dict(values, forecast=_forecast_config(cfg, search_path, data.last_year))
    return data, model, sampler, gate, run


def _run(cfg: DictConfig) -> Path:
    from nkdefections.pipeline import run

    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"config: cannot resolve ({exc}).") from exc
    assert isinstance(resolved, dict)
    data, model, sampler, gate, run_config = configs_from_dict(resolved)
    try:
        overrides = list(HydraConfig.get().overrides.task)
    except ValueError:
        overrides = []
    if overrides:
        run_config.extra["overrides"] = overrides
    return run(data, model, sampler, gate, run_config, resolved_config=OmegaConf.to_yaml(resolved))


def _remove_if_empty(path: Any) -> None:
    try:
        p = Path(str(path))
        if p.is_dir() and not any(p.iterdir()):
            p.rmdir()
    except (OSError, ValueError):
        pass


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    from nkdefections.cli.console import install_warning_printer, run_summary

    install_warning_printer()  # after Hydra's logging setup: one `warning:` line per distinct warning
    try:
        out = _run(cfg)
    except (NKDefectionsError, KeyboardInterrupt) as exc:
        if HydraConfig.get().mode == RunMode.MULTIRUN:  # Hydra made the job folder: leave nothing
            _remove_if_empty(HydraConfig.get().runtime.output_dir)
        if isinstance(exc, KeyboardInterrupt):
            raise  # main() prints the one line and exits 130
        print(f"nkdefections: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(run_summary(out), flush=True)


class GatherSweep(Callback):
    """At the end of a multirun, gather every job's tables into one tidy table."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        table = gather_sweep(sweep_dir)
        if table is not None:
            print(f"nkdefections: gathered {table}")


def gather_sweep(sweep_dir: Path) -> Path | None:
    """Collect ``forecast_summary.csv`` and ``contrasts.csv`` of every job under ``sweep_dir``.

    Each row gets the job number, its overrides and its ``sweep.*`` parameters as columns.
    Returns the path of ``sweep_table.csv`` (None if no job wrote a forecast).
    """
    import pandas as pd

    frames: dict[str, list[pd.DataFrame]] = {"forecast_summary.csv": [], "contrasts.csv": []}
    for job in sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
        meta_path = job / "run.json"
        if not meta_path.is_file():
            continue
        meta = json.loads(meta_path.read_text())
        extra = meta.get("extra", {})
        cols = {"job": int(job.name), "overrides": " ".join(extra.get("overrides", []))}
        cols.update({f"sweep.{k}": v for k, v in extra.get("sweep", {}).items()})
        for name, acc in frames.items():
            f = job / name
            if f.is_file() and f.stat().st_size > 1:
                df = pd.read_csv(f)
                for i, (k, v) in enumerate(cols.items()):
                    df.insert(i, k, v)
                acc.append(df)
    if not frames["forecast_summary.csv"]:
        return None
    out = sweep_dir / "sweep_table.csv"
    pd.concat(frames["forecast_summary.csv"], ignore_index=True).to_csv(out, index=False)
    if frames["contrasts.csv"]:
        pd.concat(frames["contrasts.csv"], ignore_index=True).to_csv(sweep_dir / "sweep_contrasts.csv", index=False)
    return out


def main() -> None:
    """Console-script entry point.

    Ctrl-C anywhere (composing the config, sampling, writing) prints one line and exits
    with status 130; the run writes into a temporary folder that is removed, so nothing is
    left behind.
    """
    from nkdefections.cli.console import EXIT_INTERRUPTED, INTERRUPTED, CtrlC

    CtrlC().install()
    try:
        _hydra_main()
    except KeyboardInterrupt:
        print(f"\n{INTERRUPTED}" if sys.stderr.isatty() else INTERRUPTED, file=sys.stderr, flush=True)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
