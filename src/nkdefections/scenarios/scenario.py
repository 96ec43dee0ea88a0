"""Scenarios: named, documented assumptions about the future path of each driver.

A :class:`Scenario` gives, per driver, a list of path specs over a forecast horizon
(default 2017-2030).  It is plain data: the same scenario is written in Python
(``Scenario(...)``) or as YAML in ``configs/scenario/<name>.yaml``, and a user adds one
by dropping in a file.  This module is numpy only (no PyMC).

Path specs (``type`` key)
-------------------------
``hold``
    what is in force at the end of the last observed year (2016), from ``year`` (default:
    horizon start): for border and sanctions every event dated in or before 2016 at full
    weight (sanctions 9.5, where the 2016 yearly index, which pro-rates the measures of
    March and November 2016, is 8.14), for the economy the last published growth figure.
    ``reading: prorated`` holds the last year's pro-rated index instead.
``step``
    ``value`` from ``year`` on.
``ramp``
    linear from the value before ``start`` (or ``from_value``) to ``to_value`` at ``end``;
    the end value holds afterwards.
``values``
    explicit ``values: {year: value, ...}``; each year is covered once.
``relative``
    ``change`` added to the value in force (as ``hold``), from ``year`` on.

Any spec may add ``sd`` (>= 0): an uncertain path, ``value + sd * e`` with standard
normal ``e`` drawn per posterior draw, independently by year (``correlated: false``,
default) or shared by all the spec's years (``correlated: true``).  The uncertainty is
carried into the forecast.

A spec covers the years from its start to the year before the next spec of the same
driver starts (or the horizon end, or its own ``until``); years before the first spec
hold the value in force.  Two specs covering the same driver-year is an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nkdefections import constants as C
from nkdefections.config import Horizon
from nkdefections.errors import ScenarioError
from nkdefections.resources import config_dir
from nkdefections.validate import is_whole, number, whole, year_key

#: What a spec value that fails validation is not (the error text after "<where>, key '<key>': <value>").
_NOT_A_NUMBER = "is not a finite number"
_NOT_A_YEAR = "is not a year (a whole number)"

SPEC_TYPES = ("hold", "step", "ramp", "values", "relative")
#: Readings of ``hold``: what is in force at the end of the last year, or that year's pro-rated index.
HOLD_READINGS = ("in_force", "prorated")
_SPEC_KEYS = {
    "hold": {"year", "until", "reading"},
    "step": {"year", "value", "until"},
    "ramp": {"start", "end", "to_value", "from_value", "until"},
    "values": {"values"},
    "relative": {"year", "change", "until"},
}
_COMMON_KEYS = {"type", "sd", "correlated"}


@dataclass(frozen=True)
class Scenario:
    """A named set of assumptions about each driver's future path.

    Parameters
    ----------
    name
        Identifier (``border_crackdown``); used as the ``scenario`` coordinate.
    description
        One line on what the scenario assumes.
    reasoning
        Why the numbers are what they are (sources, analogies).
    drivers
        Per driver, a path spec mapping or a list of them (see module docstring).
        Drivers not named hold their last observed value.
    version
        Bump when the assumptions change; recorded in every output.
    source
        Where the scenario was read from (file path), for error messages.
    """

    name: str
    description: str = ""
    reasoning: str = ""
    drivers: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1
    source: str = "<python>"

    def __post_init__(self) -> None:
        where = f"scenario {self.name!r} ({self.source})"
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ScenarioError(f"{where}: name must be an identifier (letters, digits, _), got {self.name!r}.")
        if not isinstance(self.drivers, Mapping):
            raise ScenarioError(f"{where}, key 'drivers': expected a mapping driver -> spec(s).")
        unknown = sorted(set(self.drivers) - set(C.DRIVERS) - {C.BORDER_OPEN})
        if unknown:
            raise ScenarioError(
                f"{where}, key 'drivers': unknown driver(s) {unknown}; the drivers are {list(C.DRIVERS)}, "
                f"and the lever {C.BORDER_OPEN!r} (the open-border fraction, for a closure never seen in 1999-2016)."
            )
        norm = {}
        for d, specs in self.drivers.items():
            if isinstance(specs, Mapping):
                specs = [specs]
            if not isinstance(specs, Sequence) or isinstance(specs, str):
                raise ScenarioError(f"{where}, key 'drivers.{d}': expected a spec mapping or a list of them.")
            norm[d] = tuple(
                _check_spec(dict(s) if isinstance(s, Mapping) else s, f"{where}, key 'drivers.{d}[{i}]'")
                for i, s in enumerate(specs)
            )
        object.__setattr__(self, "drivers", norm)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "reasoning": self.reasoning,
            "version": self.version,
            "drivers": {d: [dict(s) for s in specs] for d, specs in self.drivers.items()},
        }

    # ------------------------------------------------------------------ paths
    def path(
        self, last_values: Mapping[str, float], horizon: Horizon = Horizon()
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean path, uncertainty and correlation flags.

        Returns
        -------
        mean : (n_years, n_drivers) array
        sd : (n_years, n_drivers) array of per-year standard deviations
        shared : (n_years, n_drivers) int array; for uncertain specs with
            ``correlated: true`` an id (>0) shared by that spec's years, else 0.
        """
        years = horizon.years
        H, K = len(years), len(C.DRIVERS)
        mean = np.empty((H, K))
        sd = np.zeros((H, K))
        shared = np.zeros((H, K), dtype=int)
        group = 0
        for k, d in enumerate(C.DRIVERS):
            last = float(last_values[d])
            prorated = float(last_values.get(f"{d}_prorated", last))
            mean[:, k], sd[:, k], shared[:, k], group = self._one_path(d, last, prorated, horizon, group)
        return mean, sd, shared

    def open_border(self, horizon: Horizon = Horizon(), last_open: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """The open-border fraction per year (1 = as open as in 1999-2016) and its s.d.

        Set by ``drivers.border_open`` path specs; where none is given, the fraction of the
        last fitted year holds (``last_open``: 1 unless the data carry an observed closure).
        Every value must lie in (0, 1]: a closure can only shut what 1999-2016 left open.
        """
        values, sd, _, _ = self._one_path(C.BORDER_OPEN, last_open, last_open, horizon, 0)
        bad = [(int(y), float(v)) for y, v in zip(horizon.years, values, strict=True) if not 0.0 < v <= 1.0]
        if bad:
            y, v = bad[0]
            raise ScenarioError(
                f"scenario {self.name!r} ({self.source}), key 'drivers.{C.BORDER_OPEN}': {v:g} in {y} is not an "
                "open-border fraction; give a value in (0, 1], e.g. 0.1 for a border 90% closed (1 = as in 1999-2016)."
            )
        return values, sd

    def _one_path(
        self, d: str, last: float, prorated: float, horizon: Horizon, group: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """One driver's (or lever's) mean path, s.d. and correlation ids over the horizon."""
        years = horizon.years
        H = len(years)
        sd = np.zeros(H)
        shared = np.zeros(H, dtype=int)
        specs = self.drivers.get(d, ())
        where = f"scenario {self.name!r} ({self.source}), key 'drivers.{d}'"
        covered = np.zeros(H, dtype=bool)
        values = np.full(H, np.nan)
        starts = [_start(s, horizon) for s in specs]
        order = np.argsort(starts, kind="stable")
        for j, i in enumerate(order):
            s = specs[i]
            start = starts[i]
            nxt = starts[order[j + 1]] if j + 1 < len(order) else horizon.end + 1
            if start < horizon.start or start > horizon.end:
                raise ScenarioError(
                    f"{where}[{i}]: starts in {start}, outside the horizon {horizon.start}-{horizon.end}; "
                    "move the spec inside it or change the horizon (forecast.horizon)."
                )
            if j + 1 < len(order) and nxt == start and s["type"] != "values":
                raise ScenarioError(
                    f"{where}[{i}]: year(s) [{start}] are already set by another spec of {d!r} starting in "
                    "the same year; give each driver-year one spec."
                )
            if s["type"] == "values":
                yrs = sorted(int(y) for y in s["values"])
            else:
                end = int(s["until"]) if s.get("until") is not None else nxt - 1
                yrs = list(range(start, end + 1))
            bad = [y for y in yrs if y < horizon.start or y > horizon.end]
            if bad:
                raise ScenarioError(
                    f"{where}[{i}]: year(s) {bad[:5]} outside the horizon {horizon.start}-{horizon.end}; "
                    "move the spec inside it or change the horizon (forecast.horizon)."
                )
            idx = np.array(yrs, dtype=int) - horizon.start
            clash = idx[covered[idx]]
            if len(clash):
                raise ScenarioError(
                    f"{where}[{i}]: year(s) {(clash + horizon.start).tolist()} are already set by another "
                    f"spec of {d!r}; give each driver-year one spec (use 'until' to end a spec early)."
                )
            prev = _value_before(values, idx[0], last) if len(idx) else last
            held = prorated if s.get("reading") == "prorated" else last
            values[idx] = _spec_values(s, np.array(yrs), prev, held, where + f"[{i}]")
            covered[idx] = True
            if s.get("sd"):
                sd[idx] = float(s["sd"])
                if s.get("correlated"):
                    group += 1
                    shared[idx] = group
        # uncovered years carry the last value forward (the observed one before any spec)
        current = last
        for t in range(H):
            if np.isnan(values[t]):
                values[t] = current
            current = values[t]
        return values, sd, shared, group


def _check_spec(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ScenarioError(f"{where}: expected a mapping with a 'type' key, got {spec!r}.")
    kind = spec.get("type")
    if kind not in SPEC_TYPES:
        raise ScenarioError(f"{where}, key 'type': unknown path type {kind!r}; choose one of {list(SPEC_TYPES)}.")
    extra = sorted(set(spec) - _SPEC_KEYS[kind] - _COMMON_KEYS)
    if extra:
        raise ScenarioError(
            f"{where}: unknown key(s) {extra} for a {kind!r} spec; allowed: {sorted(_SPEC_KEYS[kind] | _COMMON_KEYS)}."
        )
    out: dict[str, Any] = {"type": kind}
    required = {
        "step": ["value"],
        "ramp": ["start", "end", "to_value"],
        "values": ["values"],
        "relative": ["change"],
    }
    for key in required.get(kind, []):
        if spec.get(key) is None:
            raise ScenarioError(f"{where}, key '{key}': missing (a {kind!r} spec needs {required[kind]}).")
    for key in ("year", "until", "start", "end"):
        if spec.get(key) is not None:
            out[key] = whole(spec[key], f"{where}, key '{key}'", error=ScenarioError, what=_NOT_A_YEAR)
    for key in ("value", "to_value", "from_value", "change"):
        if spec.get(key) is not None:
            out[key] = number(spec[key], f"{where}, key '{key}'", error=ScenarioError, what=_NOT_A_NUMBER)
    if spec.get("reading") is not None:
        if spec["reading"] not in HOLD_READINGS:
            raise ScenarioError(
                f"{where}, key 'reading': {spec['reading']!r} is not one of {list(HOLD_READINGS)} "
                "(in_force: what is in force at the end of the last year; prorated: that year's yearly index)."
            )
        out["reading"] = spec["reading"]
    if kind == "ramp" and out["end"] <= out["start"]:
        raise ScenarioError(
            f"{where}: ramp end {out['end']} must come after its start {out['start']}; swap them or use a step."
        )
    if kind == "values":
        vals = spec["values"]
        if not isinstance(vals, Mapping) or not vals:
            raise ScenarioError(f"{where}, key 'values': expected a non-empty mapping year -> value.")
        clean = {}
        for y, v in vals.items():
            yi = year_key(y, f"{where}, key 'values'", error=ScenarioError)  # "2020" and 2020.0 are years
            if yi in clean:
                raise ScenarioError(f"{where}, key 'values': year {yi} given twice.")
            clean[yi] = number(v, f"{where}, key 'values.{y}'", error=ScenarioError, what=_NOT_A_NUMBER)
        out["values"] = dict(sorted(clean.items()))
    if "until" in out:
        start = out.get("year", out.get("start"))
        if start is not None and out["until"] < start:
            raise ScenarioError(f"{where}: until {out['until']} precedes the start {start}.")
    if spec.get("sd") is not None:
        s = number(spec["sd"], f"{where}, key 'sd'", error=ScenarioError, what=_NOT_A_NUMBER)
        if s < 0:
            raise ScenarioError(f"{where}, key 'sd': {s} must be >= 0.")
        out["sd"] = s
    if spec.get("correlated") is not None:
        if not isinstance(spec["correlated"], bool):
            raise ScenarioError(f"{where}, key 'correlated': must be true or false.")
        out["correlated"] = spec["correlated"]
    return out


def _start(spec: Mapping[str, Any], horizon: Horizon) -> int:
    if spec["type"] == "values":
        return min(spec["values"])
    if spec["type"] == "ramp":
        return int(spec["start"])
    return int(spec.get("year", horizon.start))


def _value_before(values: np.ndarray, i: int, last: float) -> float:
    prior = values[:i][~np.isnan(values[:i])]
    return float(prior[-1]) if len(prior) else last


def _spec_values(spec: Mapping[str, Any], years: np.ndarray, prev: float, last: float, where: str) -> np.ndarray:
    kind = spec["type"]
    if kind == "hold":
        return np.full(len(years), last)
    if kind == "step":
        return np.full(len(years), spec["value"])
    if kind == "relative":
        return np.full(len(years), last + spec["change"])
    if kind == "values":
        return np.array([spec["values"][int(y)] for y in years])
    # ramp: linear from `from_value` (default: the value the year before) at start-1 to to_value at end
    v0 = spec.get("from_value", prev)
    start, end = spec["start"], spec["end"]
    frac = np.clip((years - (start - 1)) / (end - (start - 1)), 0.0, 1.0)
    return v0 + frac * (spec["to_value"] - v0)


# ------------------------------------------------------------------ YAML files


#: The scenarios of the default run, in the order of ``configs/config.yaml`` (a test keeps them equal).
DEFAULT_SCENARIOS = (
    "status_quo",
    "border_crackdown",
    "border_reopening",
    "sanctions_tightened",
    "sanctions_relief",
    "economic_crisis",
    "combined_stress",
    "border_closure",
)


def scenario_dir() -> Path:
    """The shipped scenario folder, ``<config dir>/scenario``."""
    return config_dir() / "scenario"


def scenario_dirs(directory: Path | None = None, search_path: Sequence[Path | str] = ()) -> list[Path]:
    """Folders searched for ``<name>.yaml``, first match wins.

    ``search_path``: config folders of the user (e.g. Hydra's ``--config-dir`` and
    ``hydra.searchpath``); their ``scenario/`` subfolders come first, so a user's file
    shadows a shipped one of the same name.  Then ``directory`` (default: the shipped folder).
    """
    dirs = [Path(p) / "scenario" for p in search_path]
    dirs.append(Path(directory) if directory is not None else scenario_dir())
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def available_scenarios(directory: Path | None = None, search_path: Sequence[Path | str] = ()) -> list[str]:
    """Names of the scenario YAML files in ``configs/scenario/`` (and the user's ``scenario/`` folders)."""
    return sorted({p.stem for d in scenario_dirs(directory, search_path) for p in d.glob("*.yaml")})


def scenario_from_dict(d: Mapping[str, Any], *, source: str = "<dict>") -> Scenario:
    """Build a :class:`Scenario` from a mapping (e.g. a parsed YAML file)."""
    if not isinstance(d, Mapping):
        raise ScenarioError(f"{source}: expected a mapping with name, description, drivers.")
    allowed = {"name", "description", "reasoning", "drivers", "version"}
    extra = sorted(set(d) - allowed)
    if extra:
        raise ScenarioError(f"{source}: unknown key(s) {extra}; allowed keys are {sorted(allowed)}.")
    if "name" not in d:
        raise ScenarioError(f"{source}, key 'name': missing.")
    version = d.get("version", 1)
    if not is_whole(version) or version < 1:
        raise ScenarioError(f"{source}, key 'version': {version!r} must be a whole number >= 1.")
    return Scenario(
        name=d["name"],
        description=str(d.get("description", "")),
        reasoning=str(d.get("reasoning", "")),
        drivers=dict(d.get("drivers") or {}),
        version=version,
        source=source,
    )


def _is_path(name: str | Path) -> bool:
    text = str(name)
    return isinstance(name, Path) or text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text


def _yaml_loader() -> Any:
    """A safe YAML loader that reads ``1e-3`` as a number, as Hydra's loader does (plain YAML 1.1 does not)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
            |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
            |\.[0-9_]+(?:[eE][-+][0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
            re.X,
        ),
        list("-+0123456789."),
    )
    return Loader


def read_scenario_file(path: Path) -> Scenario:
    """Read one scenario YAML file; its ``name`` must equal the file name (without ``.yaml``)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"scenario file {path}: does not exist. Give the path of a YAML scenario file.")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_yaml_loader())  # noqa: S506 - a SafeLoader
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: not a readable scenario file ({exc}).") from exc
    if isinstance(raw, Mapping) and "name" in raw and str(raw["name"]) != path.stem:
        raise ScenarioError(
            f"{path}: the scenario's name {raw['name']!r} differs from its file name {path.stem!r}; "
            f"scenarios are selected by file name, so rename the file to {raw['name']}.yaml or set name: {path.stem}."
        )
    return scenario_from_dict(raw, source=str(path))


def load_scenario(
    name: str | Path, directory: Path | None = None, *, search_path: Sequence[Path | str] = ()
) -> Scenario:
    """A scenario by name (``<name>.yaml`` in the scenario folders) or by the path of a YAML file.

    ``directory``: the scenario folder (default: the shipped ``configs/scenario``);
    ``search_path``: the user's config folders, whose ``scenario/`` subfolders are searched
    first.  An unknown name lists every known one.
    """
    if _is_path(name):
        return read_scenario_file(Path(name).expanduser())
    dirs = scenario_dirs(directory, search_path)
    for d in dirs:
        path = d / f"{name}.yaml"
        if path.is_file():
            return read_scenario_file(path)
    folders = ", ".join(str(d) for d in dirs)
    raise ScenarioError(
        f"unknown scenario {name!r}: no file {name}.yaml in {folders}. "
        f"Known scenarios: {available_scenarios(directory, search_path)}. "
        "Add one by dropping a YAML file into <your config dir>/scenario/ (with --config-dir), "
        "or give the path of a YAML file."
    )
