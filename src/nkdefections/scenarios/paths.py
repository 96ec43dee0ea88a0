"""Scenario paths as arrays: the value in force, the observed range, and the paths of many scenarios."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from nkdefections import constants as C
from nkdefections.config import Horizon
from nkdefections.errors import ScenarioError
from nkdefections.scenarios.scenario import Scenario


def last_observed(data: xr.Dataset) -> dict[str, float]:
    """Each driver's value in force at the end of the last observed year (the reference for hold/relative).

    Border and sanctions: every event dated in or before that year at full weight (the data's
    ``*_in_force``; the pro-rated yearly index where a data set lacks it).  Economy: the last
    growth figure.  Keys ``<driver>_prorated`` give the last year's pro-rated index
    (``hold`` with ``reading: prorated``).
    """
    last = int(data.attrs["last_year"])

    def at(var: str) -> float:
        return float(data[var].sel({C.YEAR: last}))

    out = {C.ECONOMY: at(C.GDP_GROWTH), f"{C.ECONOMY}_prorated": at(C.GDP_GROWTH)}
    for d, (index, in_force) in C.EVENT_INDICES.items():
        out[f"{d}_prorated"] = at(index)
        out[d] = at(in_force) if in_force in data else at(index)
    return out


def observed_range(data: xr.Dataset) -> dict[str, tuple[float, float]]:
    """Range of each driver over the observation window: outside it the model extrapolates."""
    first, last = int(data.attrs["first_year"]), int(data.attrs["last_year"])
    win = data.sel({C.YEAR: slice(first, last)})
    out = {}
    for d, v in ((C.BORDER, C.BORDER_INDEX), (C.SANCTIONS, C.SANCTIONS_INDEX), (C.ECONOMY, C.GDP_GROWTH)):
        x = win[v].values
        out[d] = (float(np.nanmin(x)), float(np.nanmax(x)))
    return out


def observed_open(data: xr.Dataset) -> tuple[float, float]:
    """The open-border fraction of the last fitted year and its minimum over the window (1, 1 without a series)."""
    if C.BORDER_OPEN not in data:
        return 1.0, 1.0
    first, last = int(data.attrs["first_year"]), int(data.attrs["last_year"])
    x = data[C.BORDER_OPEN].sel({C.YEAR: slice(first, last)}).values
    return float(data[C.BORDER_OPEN].sel({C.YEAR: last})), float(np.min(x))


def scenario_paths(scenarios: Sequence[Scenario], data: xr.Dataset, horizon: Horizon = Horizon()) -> xr.Dataset:
    """Mean path, sd and extrapolation flag per (scenario, year_future, driver)."""
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ScenarioError(f"scenarios: name(s) {dup} selected twice; each scenario must be unique.")
    last = last_observed(data)
    rng = observed_range(data)
    means, sds, shared = zip(*(s.path(last, horizon) for s in scenarios), strict=True)
    mean = np.stack(means)
    lo = np.array([rng[d][0] for d in C.DRIVERS])
    hi = np.array([rng[d][1] for d in C.DRIVERS])
    sd = np.stack(sds)
    # an uncertain path extrapolates where its central 95% leaves the observed range
    outside = (mean - 1.96 * sd < lo - 1e-9) | (mean + 1.96 * sd > hi + 1e-9)
    last_open, min_open = observed_open(data)
    open_mean, open_sd = (
        np.stack(x) for x in zip(*(s.open_border(horizon, last_open) for s in scenarios), strict=True)
    )
    # a border more closed than any fitted year (with the shipped data: any closure) is outside the evidence
    outside[:, :, C.DRIVERS.index(C.BORDER)] |= open_mean < min_open - 1e-9
    coords = {C.SCENARIO: names, C.YEAR_FUTURE: horizon.years, C.DRIVER: list(C.DRIVERS)}
    dims = (C.SCENARIO, C.YEAR_FUTURE, C.DRIVER)
    return xr.Dataset(
        {
            "path_mean": (dims, mean),
            "path_sd": (dims, sd),
            "path_shared": (dims, np.stack(shared)),
            C.BORDER_OPEN: ((C.SCENARIO, C.YEAR_FUTURE), open_mean),
            f"{C.BORDER_OPEN}_sd": ((C.SCENARIO, C.YEAR_FUTURE), open_sd),
            "extrapolated": (dims, outside),
            "observed_min": (C.DRIVER, lo),
            "observed_max": (C.DRIVER, hi),
            "last_observed": (C.DRIVER, np.array([last[d] for d in C.DRIVERS])),
        },
        coords=coords,
    )
