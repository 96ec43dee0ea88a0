"""Covariate construction and the loader: validated files -> xarray.Dataset (dim year)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from nkdefections import constants as C
from nkdefections.config import DataConfig
from nkdefections.data.tables import (
    FILE_ROLES,
    LAST_OBSERVED_YEAR,
    MANIFEST_NAME,
    USER_ROLES,
    FileSpec,
    default_data_dir,
    read_manifest,
    read_table,
    sha256_file,
)
from nkdefections.errors import DataValidationError
from nkdefections.validate import whole

# ----------------------------------------------------------------------------
# Covariate construction (pure functions)
# ----------------------------------------------------------------------------


def year_exposure(date: _dt.date, year: int) -> float:
    """Fraction of calendar ``year`` on or after ``date`` (0 before it, 1 after)."""
    start = _dt.date(year, 1, 1)
    end = _dt.date(year + 1, 1, 1)
    if date <= start:
        return 1.0
    if date >= end:
        return 0.0
    return (end - date).days / (end - start).days


def cumulative_event_index(dates: list[_dt.date], weights: list[float], years: np.ndarray) -> np.ndarray:
    """Exposure-weighted cumulative index: ``sum_e w_e * exposure(date_e, t)``.

    The rule shared by the border and the sanctions covariates: each dated event
    adds its weight from its effective date on, pro-rated within its first year.
    """
    years = np.asarray(years, dtype=int)
    out = np.zeros(len(years), dtype=float)
    for d, w in zip(dates, weights, strict=True):
        out += float(w) * np.array([year_exposure(d, int(y)) for y in years])
    return out


def in_force_index(dates: list[_dt.date], weights: list[float], years: np.ndarray) -> np.ndarray:
    """What is in force at the end of each year: ``sum_e w_e`` over events dated in or before it.

    Equals :func:`cumulative_event_index` of the next year when that year has no new events.
    """
    years = np.asarray(years, dtype=int)
    out = np.zeros(len(years), dtype=float)
    for d, w in zip(dates, weights, strict=True):
        out += float(w) * (d.year <= years)
    return out


# ----------------------------------------------------------------------------
# The loader
# ----------------------------------------------------------------------------


def _resolve(config: DataConfig) -> tuple[Path, dict[str, FileSpec], dict[str, tuple[Path, bool]]]:
    """The data folder, the file specs by role, and each role's path with whether it is the shipped file.

    A user-only role (:data:`USER_ROLES`) appears only when ``data.files`` names a file for it.
    """
    data_dir = Path(config.dir) if config.dir else default_data_dir()
    manifest = read_manifest(data_dir)
    known = sorted({*FILE_ROLES, *USER_ROLES})
    unknown = sorted(set(config.files) - set(known))
    if unknown:
        raise DataValidationError(f"data.files: unknown role(s) {unknown}; known roles are {known}.")
    paths: dict[str, tuple[Path, bool]] = {}
    specs: dict[str, FileSpec] = {}
    for role, rel in FILE_ROLES.items():
        if rel not in manifest:
            raise DataValidationError(f"{data_dir / MANIFEST_NAME}: no entry for {rel!r}.")
        specs[role] = manifest[rel]
        if role in config.files and config.files[role]:
            paths[role] = (Path(config.files[role]), False)
        else:
            paths[role] = (data_dir / rel, True)
    for role, spec in USER_ROLES.items():
        if config.files.get(role):
            specs[role] = spec
            paths[role] = (Path(config.files[role]), False)
    return data_dir, specs, paths


def load_data(config: DataConfig | None = None, **kwargs: Any) -> xr.Dataset:
    """Load and validate the data set.

    Parameters
    ----------
    config
        A :class:`DataConfig`; keyword arguments override its fields
        (``load_data(first_year=2002)``).

    Returns
    -------
    xarray.Dataset
        Dimension ``year`` (``first_year - history`` .. ``last_year``) with
        ``arrivals`` (NaN in history years), ``border_index``, ``sanctions_index``,
        ``gdp_growth`` (NaN where unpublished), ``gdp_vintage``, ``gdp_known_sign``,
        ``grain_production`` and ``china_trade`` (optional covariates, NaN where
        unverified); dimension ``partial`` with the partial-year counts.
        ``attrs`` hold the data hash, the files with their sha256, source and
        vintage, the observation window and the pre-1999 stock.
    """
    if config is None:
        config = DataConfig()
    if kwargs:
        config = DataConfig(**{**config.__dict__, **kwargs})
    _check_window(config)
    data_dir, specs, paths = _resolve(config)
    _check_live_files(config, paths)
    tables, file_meta = _read_tables(specs, paths)
    _check_no_late_rows(tables, paths)
    years = np.arange(config.first_year - config.history, config.last_year + 1)
    arrivals = _arrivals(config, tables["arrivals"], paths["arrivals"][0], years)
    female = _female(config, tables["arrivals"], paths["arrivals"][0], years)
    growth, vintage, sign = _gdp(config, tables["gdp"], paths["gdp"][0], years)
    border_idx, sanc_idx, border_force, sanc_force = _event_indices(tables, paths, years)
    border_open = _border_open(tables.get("border_open"), paths.get("border_open"), years)

    def optional(table: pd.DataFrame, column: str) -> np.ndarray:
        t = table.set_index(table["year"].astype(int))
        return np.array([float(t.at[y, column]) if y in t.index else np.nan for y in years])

    part = tables["partial"]
    part = part[(part["year"] >= config.first_year) & (part["year"] <= config.last_year)]
    if len(tables["stock"]) != 1:
        raise DataValidationError(
            f"{paths['stock'][0]}: expected exactly one row (the stock of arrivals up to 1998), "
            f"found {len(tables['stock'])}."
        )
    stock = tables["stock"].iloc[0]

    ds = xr.Dataset(
        {
            C.ARRIVALS: (C.YEAR, arrivals),
            C.FEMALE: (C.YEAR, female),
            C.BORDER_INDEX: (C.YEAR, border_idx),
            C.SANCTIONS_INDEX: (C.YEAR, sanc_idx),
            C.BORDER_IN_FORCE: (C.YEAR, border_force),
            C.BORDER_OPEN: (C.YEAR, border_open),
            C.SANCTIONS_IN_FORCE: (C.YEAR, sanc_force),
            C.GDP_GROWTH: (C.YEAR, growth),
            C.GDP_VINTAGE: (C.YEAR, vintage.astype(str)),
            C.GDP_KNOWN_SIGN: (C.YEAR, sign),
            C.GRAIN: (C.YEAR, optional(tables["grain"], "million_tonnes")),
            C.TRADE: (C.YEAR, optional(tables["trade"], "usd_billion")),
            "partial_year": (C.PARTIAL, part["year"].to_numpy(dtype=int)),
            "partial_period": (C.PARTIAL, part["period"].to_numpy(dtype=str)),
            "partial_month_end": (C.PARTIAL, part["month_end"].to_numpy(dtype=int)),
            "partial_arrivals": (C.PARTIAL, part["arrivals"].to_numpy(dtype=int)),
        },
        coords={C.YEAR: years, C.PARTIAL: np.arange(len(part))},
    )
    _describe(ds)
    ds.attrs = {
        "first_year": int(config.first_year),
        "last_year": int(config.last_year),
        "live": int(config.last_year > LAST_OBSERVED_YEAR),
        "history_years": int(config.history),
        "stock_pre1999": int(stock["arrivals"]),
        "data_hash": data_hash(file_meta),
        "files": json.dumps(file_meta, sort_keys=True),
    }
    return ds


def _read_tables(
    specs: Mapping[str, FileSpec], paths: Mapping[str, tuple[Path, bool]]
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]]:
    """Every role's table, and its path, sha256, source and vintage for the provenance record."""
    tables: dict[str, pd.DataFrame] = {}
    file_meta: dict[str, dict[str, str]] = {}
    for role, (path, from_manifest) in paths.items():
        spec = specs[role]
        tables[role] = read_table(path, spec, check_sha=from_manifest)
        file_meta[role] = {
            "path": str(path if not from_manifest else FILE_ROLES[role]),
            "sha256": sha256_file(path),
            "source": spec.source if from_manifest else "user-supplied",
            "vintage": spec.vintage if from_manifest else "user-supplied",
        }
    return tables, file_meta


def _check_no_late_rows(tables: Mapping[str, pd.DataFrame], paths: Mapping[str, tuple[Path, bool]]) -> None:
    """No observation after LAST_OBSERVED_YEAR in a shipped yearly table (the forecasts are pre-registered).

    A user's own file (``data.files.*``) may run past it: that is the live mode, and rows after
    ``data.last_year`` are not read.
    """
    for role in ("arrivals", "partial", "gdp", "grain", "trade"):
        if not paths[role][1]:
            continue
        yrs = tables[role]["year"].astype(int)
        late = yrs[yrs > LAST_OBSERVED_YEAR]
        if len(late):
            raise DataValidationError(
                f"{paths[role][0]}, row(s) {[int(i) + 2 for i in late.index]}: observation(s) for "
                f"year(s) {late.tolist()} found; no observation "
                f"after {LAST_OBSERVED_YEAR} may enter the project (forecasts from 2017 on are "
                "pre-registered). Remove those rows."
            )


def _arrivals(config: DataConfig, arr: pd.DataFrame, path: Path, years: np.ndarray) -> np.ndarray:
    """Arrivals per year of ``years`` (NaN in the history years); the window must lie inside the file."""
    arr_years = arr["year"].astype(int)
    lo, hi = int(arr_years.min()), int(arr_years.max())
    if config.first_year < lo or config.last_year > hi:
        raise DataValidationError(
            f"data.first_year/last_year: window {config.first_year}-{config.last_year} is "
            f"outside the arrivals data ({lo}-{hi}) in {path}. Choose a window "
            f"inside {lo}-{hi}."
        )
    arrivals = np.full(len(years), np.nan)
    by_year = dict(zip(arr_years, arr["arrivals"], strict=True))
    for i, y in enumerate(years):
        if y >= config.first_year:
            arrivals[i] = by_year[int(y)]
    return arrivals


def _count(v: Any) -> int | None:
    """A nullable count cell as read (None, or NaN in a column pandas made float) -> int or None."""
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else int(v)


def _female(config: DataConfig, arr: pd.DataFrame, path: Path, years: np.ndarray) -> np.ndarray:
    """Female arrivals per year where published (NaN elsewhere), checked against the totals row by row.

    A row may give both counts (they must add up to the total), only ``female`` (men are the rest),
    only ``male`` (women are the rest) or neither (the total alone, as for 1999-2001).
    """
    female = np.full(len(years), np.nan)
    index = {int(y): i for i, y in enumerate(years)}
    for row_no, (_, row) in enumerate(arr.iterrows(), start=2):
        total, m, f = int(row["arrivals"]), _count(row["male"]), _count(row["female"])
        where = f"{path}, row {row_no} (year {int(row['year'])})"
        for col, v in (("female", f), ("male", m)):
            if v is not None and v > total:
                raise DataValidationError(
                    f"{where}, column {col!r}: {v} is above the total arrivals {total}; a count by sex "
                    "cannot exceed the total. Check both cells against the source."
                )
        if m is not None and f is not None and m + f != total:
            raise DataValidationError(
                f"{where}: male {m} + female {f} = {m + f}, not the total arrivals {total}. "
                "Correct the cell that differs from the source, or leave 'male' empty (men are then the rest)."
            )
        y = int(row["year"])
        if y in index and config.first_year <= y <= config.last_year:
            if f is not None:
                female[index[y]] = f
            elif m is not None:
                female[index[y]] = total - m
    return female


def _gdp(
    config: DataConfig, gdp: pd.DataFrame, path: Path, years: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GDP growth, its vintage and its known sign per year; every window year needs a row."""
    obs_years = np.arange(config.first_year, config.last_year + 1)
    gdp_years = set(int(y) for y in gdp["year"])
    needed = set(int(y) for y in obs_years)
    missing_gdp = sorted(needed - gdp_years)
    if missing_gdp:
        raise DataValidationError(
            f"{path}: no row for year(s) {missing_gdp} of the observation window; "
            "add the row (leave growth_pct empty and vintage 'none' if no value is known)."
        )
    for i, row in gdp.iterrows():
        has_value = not pd.isna(row["growth_pct"])
        if has_value == (row["vintage"] == "none"):
            raise DataValidationError(
                f"{path}, row {int(i) + 2}: vintage {row['vintage']!r} does not match "
                f"growth_pct {row['growth_pct']!r}; use vintage 'none' exactly when the value "
                "is empty."
            )
    g = gdp.set_index(gdp["year"].astype(int))
    growth = np.array([float(g.at[y, "growth_pct"]) if y in g.index else np.nan for y in years])
    vintage = np.array([g.at[y, "vintage"] if y in g.index else "none" for y in years], dtype=object)
    sign_map = {None: 0, "+": 1, "-": -1}
    sign = np.array([sign_map.get(g.at[y, "known_sign"], 0) if y in g.index else 0 for y in years], dtype=int)
    return growth, vintage, sign


def _event_indices(
    tables: Mapping[str, pd.DataFrame], paths: Mapping[str, tuple[Path, bool]], years: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The border and sanctions indices per year from their dated events, then their year-end in-force values."""
    border = tables["border_events"]
    border_idx = cumulative_event_index(list(border["effective_date"]), list(border["increment"]), years)
    sanc = tables["sanctions_events"]
    sanc_late = sanc[[d.year > LAST_OBSERVED_YEAR for d in sanc["effective_date"]]]
    if len(sanc_late) and paths["sanctions_events"][1]:
        raise DataValidationError(
            f"{paths['sanctions_events'][0]}, row(s) {[int(i) + 2 for i in sanc_late.index]}: measures "
            f"dated after {LAST_OBSERVED_YEAR} ({[d.isoformat() for d in sanc_late['effective_date']]}) "
            "found in the historical coding; future measures belong in a scenario, not in data/."
        )
    sanc_idx = cumulative_event_index(list(sanc["effective_date"]), list(sanc["weight"]), years)
    border_force = in_force_index(list(border["effective_date"]), list(border["increment"]), years)
    sanc_force = in_force_index(list(sanc["effective_date"]), list(sanc["weight"]), years)
    return border_idx, sanc_idx, border_force, sanc_force


def _border_open(table: pd.DataFrame | None, where: tuple[Path, bool] | None, years: np.ndarray) -> np.ndarray:
    """The observed open-border fraction per year: the file's value, 1 where it lists none (or no file).

    Every listed value must lie in (0, 1]: 1 is the border as open as in 1999-2016, and a closure
    can only shut what was open.
    """
    out = np.ones(len(years))
    if table is None or where is None:
        return out
    for i, row in table.iterrows():
        v = float(row["open_fraction"])
        if not 0.0 < v <= 1.0:
            raise DataValidationError(
                f"{where[0]}, row {int(i) + 2}, column 'open_fraction': {v:g} is not an open-border fraction; "
                "give a value in (0, 1] (1 = as open as in 1999-2016, 0.1 = 90% closed)."
            )
    by_year = dict(zip(table["year"].astype(int), table["open_fraction"].astype(float), strict=True))
    for i, y in enumerate(years):
        out[i] = by_year.get(int(y), 1.0)
    return out


def _describe(ds: xr.Dataset) -> None:
    """Units and coding rules of the main variables."""
    ds[C.ARRIVALS].attrs = {"units": "persons", "long_name": "arrivals in South Korea (MOU final table)"}
    ds[C.FEMALE].attrs = {"units": "persons", "long_name": "female arrivals, where published (NaN: the total only)"}
    ds[C.BORDER_INDEX].attrs = {
        "units": "index (1 = the 2011-12 Kim Jong-un tightening)",
        "rule": "sum of event increments x fraction of the year after the effective date",
    }
    ds[C.SANCTIONS_INDEX].attrs = {
        "units": "index (1 = one binding UNSC sanctions resolution)",
        "rule": "sum of measure weights x fraction of the year after the effective date",
    }
    for var, like in ((C.BORDER_IN_FORCE, C.BORDER_INDEX), (C.SANCTIONS_IN_FORCE, C.SANCTIONS_INDEX)):
        ds[var].attrs = {
            "units": ds[like].attrs["units"],
            "rule": "sum of the increments of every event dated in or before the year (in force at its end)",
        }
    ds[C.GDP_GROWTH].attrs = {"units": "percent", "source": "Bank of Korea estimates"}
    ds[C.BORDER_OPEN].attrs = {
        "units": "fraction (1 = as open as in 1999-2016)",
        "rule": "data.files.border_open where given; 1 in every year it does not list",
    }


def data_hash(file_meta: Mapping[str, Mapping[str, str]]) -> str:
    """A short hash of every input file's sha256, by role."""
    blob = json.dumps({k: v["sha256"] for k, v in sorted(file_meta.items())}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_window(config: DataConfig) -> None:
    for key in ("first_year", "last_year", "history"):
        value = getattr(config, key)
        whole(value, f"data.{key}", error=DataValidationError)
    if config.history < 0:
        raise DataValidationError(f"data.history: {config.history} must be >= 0.")
    if config.first_year > config.last_year - 4:
        raise DataValidationError(
            f"data.first_year/last_year: window {config.first_year}-{config.last_year} holds "
            "fewer than 5 years; the model needs at least 5 observations."
        )


#: The roles whose shipped files end in LAST_OBSERVED_YEAR and that a window past it needs from the
#: user: the counts, the growth figures and the two event codings (an event file lists changes,
#: so the shipped coding cannot say that nothing changed after 2016).
LIVE_ROLES: tuple[str, ...] = ("arrivals", "gdp", "border_events", "sanctions_events")


def _check_live_files(config: DataConfig, paths: Mapping[str, tuple[Path, bool]]) -> None:
    """A window past LAST_OBSERVED_YEAR (live mode) reads every role of LIVE_ROLES from the user's files.

    The shipped files stop in 2016 (the pre-registration rule); whether the user's files cover the
    window year by year is checked when they are read (arrivals and GDP need a row per year).
    """
    if config.last_year <= LAST_OBSERVED_YEAR:
        return
    shipped = [role for role in LIVE_ROLES if paths[role][1]]
    if shipped:
        given = " ".join(f"data.files.{role}=my_{role}.csv" for role in shipped)
        raise DataValidationError(
            f"data.last_year: {config.last_year} is after {LAST_OBSERVED_YEAR}, the last year of the shipped "
            f"data (the pre-registered window). A live window reads your own files for every yearly "
            f"input; these still come from the shipped data: {shipped}. Supply them ({given}, "
            "same columns as the shipped files, running to data.last_year; see configs/data/live.yaml "
            f"and the how-to 'Fit your own later data'), or set data.last_year <= {LAST_OBSERVED_YEAR}."
        )


def drivers_frame(ds: xr.Dataset) -> pd.DataFrame:
    """The per-year drivers and arrivals as a tidy table (for reports and CSVs)."""
    cols = [C.ARRIVALS, C.BORDER_INDEX, C.SANCTIONS_INDEX, C.GDP_GROWTH, C.GDP_VINTAGE, C.GRAIN, C.TRADE]
    return ds[cols].to_dataframe().reset_index()
