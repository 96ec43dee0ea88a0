"""The ``nkdefections-explore`` command: the scenario explorer on ``http://127.0.0.1:PORT/``.

It finds the posterior the way ``nkdefections`` does: the run's Hydra config (the shipped
``configs/``, the user's ``--config-dir``, any ``key=value`` overrides) gives the data,
model, sampler and gate, and the fit with that id is read from the fit cache, or sampled
once (one progress line) if there is none.  ``--fit FILE`` takes a saved posterior instead,
``--run DIR`` a run folder's ``posterior.nc`` with that run's forecast seed and horizon.
The forecast seed, horizon, baseline, threshold and cumulative window come from the same
config, so the page's numbers are the ones ``nkdefections --config-dir DIR
scenarios=[<saved>,<baseline>]`` writes.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from nkdefections.errors import ConfigError, NKDefectionsError

PROG = "nkdefections-explore"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Explore scenarios live in the browser, from one fitted posterior (serves on 127.0.0.1).",
        epilog="Overrides are the nkdefections command's (e.g. model=random_walk forecast.seed=3); "
        "they select the fit and the forecast settings exactly as there.",
    )
    p.add_argument("--port", type=int, default=8050, help="port on 127.0.0.1 (0: a free one; the URL is printed)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--fit", type=Path, default=None, help="a saved posterior (posterior.nc, DefectionModel.save)")
    src.add_argument("--run", type=Path, default=None, help="a run folder of nkdefections (uses its posterior.nc)")
    p.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help="your config folder (as nkdefections --config-dir): scenarios in DIR/scenario/ are loadable, "
        "and saved ones go there",
    )
    p.add_argument(
        "--save-dir",
        type=Path,
        default=None,
        help="where 'Save scenario' writes (default: CONFIG_DIR/scenario, else ./nkdefections-configs/scenario)",
    )
    p.add_argument("--start", default="status_quo", help="the scenario the page starts from")
    p.add_argument("overrides", nargs="*", help="Hydra overrides of the nkdefections command (key=value)")
    return p


def compose(config_dir: Path | None, overrides: list[str]) -> tuple[Any, ...]:
    """The plain config objects of ``nkdefections [--config-dir DIR] OVERRIDES`` (Hydra's compose API)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    from nkdefections.cli.app import configs_from_dict, user_config_dirs
    from nkdefections.resources import config_dir as shipped

    extra = [f"hydra.searchpath=[file://{config_dir.expanduser().resolve()}]"] if config_dir else []
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(shipped())):
            cfg = hydra_compose("config", overrides=[*overrides, *extra], return_hydra_config=True)
        search = user_config_dirs(OmegaConf.to_container(cfg.hydra.runtime.config_sources))
        with open_dict(cfg):
            del cfg["hydra"]
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"overrides {overrides}: {exc}") from exc
    assert isinstance(resolved, dict)
    return (*configs_from_dict(resolved, search_path=search), search)


def load_model(args: argparse.Namespace, configs: tuple[Any, ...]) -> tuple[Any, str, dict[str, Any]]:
    """The fitted model, a line saying where it came from, and the run's forecast settings (``--run``)."""
    from nkdefections import constants as C
    from nkdefections.model.defection import DefectionModel
    from nkdefections.model.diagnostics import check_convergence

    data_cfg, model_cfg, sampler, gate, run_cfg, _ = configs
    if args.fit is None and args.run is None:
        model = DefectionModel(config=model_cfg, data_config=data_cfg)
        if run_cfg.cache_dir is None:
            print(f"{PROG}: cache_dir is null: sampling the fit (it is not kept)", file=sys.stderr, flush=True)
        model.fit(sampler, gate, cache_dir=run_cfg.cache_dir)
        how = "reused from the fit cache" if model.attrs.get("cache_hit") else "sampled now"
        return model, how, {}
    run_meta: dict[str, Any] = {}
    path = args.fit
    if args.run is not None:
        path = args.run / C.POSTERIOR_FILE
        if not path.is_file():
            raise ConfigError(
                f"--run {args.run}: no {C.POSTERIOR_FILE} there (a run with outputs.fit_checks=false keeps none); "
                "give the fit with --fit, or leave both out to use the cached fit of the config."
            )
        meta_file = args.run / "run.json"
        run_meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    model = DefectionModel.load(path)
    names = json.loads(model.attrs.get("free_parameters", "[]"))
    if names:
        model.convergence = check_convergence(model.idata, names, gate)
        if not model.convergence.passed:
            warnings.warn(f"{path}: {model.convergence.message()}", stacklevel=2)
    return model, f"read from {path}", run_meta


def settings(
    args: argparse.Namespace,
    configs: tuple[Any, ...],
    run_meta: dict[str, Any],
    source: str,
    last_year: int | None = None,
) -> Any:
    """The explorer's :class:`Settings` from the config (and a ``--run`` folder's forecast seed and horizon).

    ``last_year``: the fit window's; a horizon that does not start the year after it (a live fit
    explored with the default config) moves to start there, keeping its end.
    """
    from nkdefections.config import Horizon
    from nkdefections.constants import CUMULATIVE
    from nkdefections.explore import Settings

    run_cfg, search = configs[4], configs[5]
    fc = run_cfg.forecast
    horizon, seed = (fc.horizon, fc.seed) if fc is not None else (Horizon(), 0)
    overrides = list(args.overrides)
    if run_meta:
        start, end = (int(v) for v in str(run_meta.get("horizon", f"{horizon.start}-{horizon.end}")).split("-"))
        horizon, seed = Horizon(start, end), int(run_meta.get("forecast_seed", seed))
        overrides = list(run_meta.get("extra", {}).get("overrides", overrides))
    if last_year is not None and horizon.start != int(last_year) + 1:
        horizon = Horizon.after(int(last_year), horizon.end if horizon.end > int(last_year) + 1 else None)
    threshold = fc.thresholds[0] if fc is not None and fc.thresholds else (horizon.start + 3, 2000.0)
    if threshold[0] != CUMULATIVE and not horizon.start <= int(threshold[0]) <= horizon.end:
        threshold = (min(horizon.start + 3, horizon.end), threshold[1])
    if args.save_dir is not None:
        save_dir = args.save_dir
    elif args.config_dir is not None:
        save_dir = args.config_dir / "scenario"
    else:
        save_dir = Path("nkdefections-configs") / "scenario"
    overrides = [o for o in overrides if not o.startswith(("scenarios=", "output_dir=", "overwrite="))]
    return Settings(
        horizon=horizon,
        seed=seed,
        baseline=fc.baseline if fc is not None else "status_quo",
        threshold=threshold,
        window=fc.cumulative_window if fc is not None else None,
        search_path=tuple(search),
        save_dir=save_dir.expanduser().resolve(),
        overrides=tuple(overrides),
        source=source,
    )


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; bad input prints one message and exits with status 2."""
    args = parser().parse_args(argv)
    from nkdefections.cli.console import install_warning_printer

    install_warning_printer()
    try:
        configs = compose(args.config_dir, list(args.overrides))
        model, source, run_meta = load_model(args, configs)
        print(f"{PROG}: fit {model.attrs['fit_id']} {source}", file=sys.stderr, flush=True)
        from nkdefections.explore import Explorer
        from nkdefections.explore.server import serve

        explorer = Explorer(model, settings(args, configs, run_meta, source, int(model.data.attrs["last_year"])))
        explorer.load(args.start)  # an unknown start scenario is refused before serving
        serve(explorer, port=args.port, start=args.start)
    except NKDefectionsError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (Ctrl-C); nothing was written.", file=sys.stderr)
        return 130
    except OSError as exc:  # the port is taken, ...
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
