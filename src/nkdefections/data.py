"""Load, validate and assemble the 1999-2016 data set.

The facts live in ``data/raw/*.csv`` (copied from the checked reference figures,
each row with its source) and are pinned by ``data/manifest.json``: source,
vintage, sha256 and a column schema for every file.  :func:`load_data` checks
every file against the manifest, validates every cell, builds the three driver
covariates from the dated facts, and returns an :class:`xarray.Dataset` with
dimension ``year``.

Nothing here imports PyMC: this module is plain numpy / pandas / xarray and its
tests run in milliseconds.

Covariate construction (the rules are documented in ``data/README.md``):

* **border enforcement** -- ``border_index(t) = sum_e increment_e * exposure_e(t)``
  over the coded border events, where ``exposure_e(t)`` is the fraction of
  calendar year ``t`` after the event's effective date (0 before, 1 for every
  later year).
* **sanctions** -- the same cumulative, exposure-weighted sum over the dated
  sanctions measures, with each measure's ``weight``.
* **economy** -- Bank of Korea real GDP growth as published, with its vintage
  (``latest`` / ``first_release`` / ``none``) and any known sign.  Missing and
  first-release values are *not* filled here: the model treats them as uncertain.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from nkdefections import constants as C
from nkdefections.errors import DataValidationError

MANIFEST_NAME = "manifest.json"
#: The last year whose observations may enter the project (pre-registration rule).
LAST_OBSERVED_YEAR = 2016

#: The files load_data needs, by role.
FILE_ROLES: dict[str, str] = {
    "arrivals": "raw/arrivals_annual.csv",
    "stock": "raw/arrivals_stock_pre1999.csv",
    "partial": "raw/arrivals_partial_year.csv",
    "gdp": "raw/gdp_growth_bok.csv",
    "grain": "raw/grain_production_rda.csv",
    "trade": "raw/china_nk_trade.csv",
    "border_events": "raw/border_events.csv",
    "sanctions_events": "raw/sanctions_events.csv",
}

_TYPES = {"year", "count", "float", "str", "date", "month", "choice"}


def default_data_dir() -> Path:
    """Return the data folder: ``$NKDEFECTIONS_DATA_DIR`` or the repository's ``data/``."""
    env = os.environ.get("NKDEFECTIONS_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "data"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------
# Manifest
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpec:
    """Schema of one column: its type, whether it may be empty, allowed values."""

    name: str
    type: str
    nullable: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileSpec:
    """Manifest entry of one data file."""

    path: str
    sha256: str
    source: str
    vintage: str
    description: str
    columns: tuple[ColumnSpec, ...]
    key: str | None = None
    contiguous: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def read_manifest(data_dir: Path) -> dict[str, FileSpec]:
    """Read and check ``manifest.json`` in ``data_dir``; return specs by relative path."""
    path = Path(data_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DataValidationError(
            f"{path}: data manifest not found. Point data.dir at a folder holding "
            f"{MANIFEST_NAME} and raw/*.csv (the repository's data/ folder)."
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        specs = {}
        for rel, entry in raw["files"].items():
            cols = []
            for c in entry["columns"]:
                if c["type"] not in _TYPES:
                    raise DataValidationError(
                        f"{path}: file {rel!r} column {c['name']!r} has unknown type "
                        f"{c['type']!r}; use one of {sorted(_TYPES)}."
                    )
                cols.append(
                    ColumnSpec(
                        name=c["name"],
                        type=c["type"],
                        nullable=bool(c.get("nullable", False)),
                        choices=tuple(c.get("choices", ())),
                    )
                )
            specs[rel] = FileSpec(
                path=rel,
                sha256=entry["sha256"],
                source=entry["source"],
                vintage=entry["vintage"],
                description=entry["description"],
                columns=tuple(cols),
                key=entry.get("key"),
                contiguous=bool(entry.get("contiguous", False)),
            )
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise DataValidationError(
            f"{path}: malformed manifest ({exc!r}). Restore it from git or regenerate it "
            "with `python -m nkdefections.data manifest --update`."
        ) from exc
    return specs


def update_manifest(data_dir: Path | None = None) -> dict[str, str]:
    """Recompute the sha256 of every file listed in the manifest and write it back.

    Use after deliberately editing a data file; review the diff before committing.
    Returns the new hashes by relative path.
    """
    data_dir = Path(data_dir or default_data_dir())
    path = data_dir / MANIFEST_NAME
    read_manifest(data_dir)  # a clear DataValidationError if missing or malformed
    raw = json.loads(path.read_text(encoding="utf-8"))
    new = {}
    for rel, entry in raw["files"].items():
        entry["sha256"] = sha256_file(data_dir / rel)
        new[rel] = entry["sha256"]
    path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return new


# ----------------------------------------------------------------------------
# Cell validation
# ----------------------------------------------------------------------------


def _is_empty(cell: str) -> bool:
    return cell.strip() == "" or cell.strip().lower() in {"nan", "na", "n/a", "null"}


def _parse_cell(cell: str, col: ColumnSpec, where: str) -> Any:
    """Parse one cell by its column spec, raising a message that names the place."""
    text = cell.strip()
    if _is_empty(text):
        if col.nullable:
            return None
        raise DataValidationError(
            f"{where}, column {col.name!r}: empty or NaN value {cell!r}, but the manifest "
            f"does not allow missing values in this column. Fill in the value from the "
            f"source, or mark the column nullable in {MANIFEST_NAME} if a gap is genuine."
        )
    if col.type == "str":
        return text
    if col.type == "choice":
        if text not in col.choices:
            raise DataValidationError(
                f"{where}, column {col.name!r}: value {text!r} is not one of {list(col.choices)}."
            )
        return text
    if col.type == "date":
        try:
            return _dt.date.fromisoformat(text)
        except ValueError:
            raise DataValidationError(
                f"{where}, column {col.name!r}: {text!r} is not a date; write it as YYYY-MM-DD."
            ) from None
    try:
        value = float(text)  # no comma stripping: "6,1" must not become 61.0
    except ValueError:
        raise DataValidationError(
            f"{where}, column {col.name!r}: {text!r} is not a number. Use digits only "
            "(no thousands separators or units) and leave a genuinely missing cell empty."
        ) from None
    if not math.isfinite(value):
        raise DataValidationError(f"{where}, column {col.name!r}: {text!r} is not a finite number.")
    if col.type == "float":
        return value
    if value != int(value):
        raise DataValidationError(
            f"{where}, column {col.name!r}: {text!r} is not a whole number; {col.type} values must be integers."
        )
    ivalue = int(value)
    if col.type == "count" and ivalue < 0:
        raise DataValidationError(
            f"{where}, column {col.name!r}: negative count {ivalue}; counts of people "
            "cannot be negative. Check the sign against the source."
        )
    if col.type == "year" and not 1900 <= ivalue <= 2100:
        raise DataValidationError(f"{where}, column {col.name!r}: {ivalue} is not a plausible year.")
    if col.type == "month" and not 1 <= ivalue <= 12:
        raise DataValidationError(f"{where}, column {col.name!r}: month {ivalue} is not in 1..12.")
    return ivalue


def read_table(path: Path, spec: FileSpec, *, check_sha: bool = True) -> pd.DataFrame:
    """Read one CSV and validate it against its manifest entry.

    Parameters
    ----------
    path
        The CSV file.
    spec
        Its manifest entry (columns, key, checksum).
    check_sha
        Compare the file's sha256 with the manifest's (off for user-supplied files).

    Returns
    -------
    pandas.DataFrame
        Parsed values (ints, floats, dates, strings; ``None`` for allowed gaps).
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: data file not found (manifest entry {spec.path!r}).")
    if check_sha:
        actual = sha256_file(path)
        if actual != spec.sha256:
            raise DataValidationError(
                f"{path}: checksum mismatch (manifest sha256 {spec.sha256[:12]}..., file "
                f"{actual[:12]}...). The file changed since the manifest was written. If the "
                "edit is deliberate, review it and run `python -m nkdefections.data manifest "
                "--update`; otherwise restore the file with `git checkout -- data/`."
            )
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataValidationError(f"{path}: not a readable CSV file ({exc}).") from exc
    header = list(frame.columns)
    expected = spec.column_names
    missing = [c for c in expected if c not in header]
    if missing:
        extra = [c for c in header if c not in expected]
        hint = f" Unexpected columns {extra} may be renamed versions." if extra else ""
        raise DataValidationError(f"{path}: missing column(s) {missing}; the header must contain {expected}.{hint}")
    rows: dict[str, list[Any]] = {c.name: [] for c in spec.columns}
    for i, record in enumerate(frame.itertuples(index=False), start=2):
        values = dict(zip(header, record, strict=True))
        where = f"{path}, row {i}"
        for col in spec.columns:
            rows[col.name].append(_parse_cell(values[col.name], col, where))
    out = pd.DataFrame(rows)
    for col in spec.columns:
        if col.type == "float":  # an all-empty column would stay object (None), not NaN
            out[col.name] = out[col.name].astype(float)
    if spec.key is not None:
        keys = out[spec.key]
        dup = keys[keys.duplicated()].tolist()
        if dup:
            line = int(np.flatnonzero(keys.duplicated().to_numpy())[0]) + 2
            raise DataValidationError(
                f"{path}, row {line}: duplicated {spec.key} {dup[0]}; each {spec.key} must "
                "appear once. Remove or merge the duplicate row."
            )
        if spec.contiguous and len(keys):
            have = set(int(k) for k in keys)
            full = set(range(min(have), max(have) + 1))
            gaps = sorted(full - have)
            if gaps:
                raise DataValidationError(
                    f"{path}: missing {spec.key}(s) {gaps}; the file must have one row per "
                    f"{spec.key} from {min(have)} to {max(have)} (leave values empty if unknown)."
                )
    return out


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


# ----------------------------------------------------------------------------
# The loader
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
    """Where the data live and which window to return.

    Parameters
    ----------
    dir
        Folder with ``manifest.json`` and ``raw/``; default :func:`default_data_dir`.
    first_year, last_year
        The observation window (inclusive); both must lie inside the arrivals file
        and ``last_year`` may not exceed 2016.
    history
        Extra years before ``first_year`` to carry covariates for (room for lags);
        arrivals are not read for them.
    files
        Per-role replacement files (role -> path), e.g. ``{"border_events": "my_coding.csv"}``;
        a replacement must follow the same column schema; its checksum is recorded,
        not checked.
    """

    dir: Path | None = None
    first_year: int = 1999
    last_year: int = 2016
    history: int = 0
    files: Mapping[str, str] = field(default_factory=dict)


def _resolve(config: DataConfig) -> tuple[Path, dict[str, FileSpec], dict[str, tuple[Path, bool]]]:
    data_dir = Path(config.dir) if config.dir else default_data_dir()
    specs = read_manifest(data_dir)
    unknown = sorted(set(config.files) - set(FILE_ROLES))
    if unknown:
        raise DataValidationError(f"data.files: unknown role(s) {unknown}; known roles are {sorted(FILE_ROLES)}.")
    paths: dict[str, tuple[Path, bool]] = {}
    for role, rel in FILE_ROLES.items():
        if rel not in specs:
            raise DataValidationError(f"{data_dir / MANIFEST_NAME}: no entry for {rel!r}.")
        if role in config.files and config.files[role]:
            paths[role] = (Path(config.files[role]), False)
        else:
            paths[role] = (data_dir / rel, True)
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
    tables: dict[str, pd.DataFrame] = {}
    file_meta: dict[str, dict[str, str]] = {}
    for role, (path, from_manifest) in paths.items():
        spec = specs[FILE_ROLES[role]]
        tables[role] = read_table(path, spec, check_sha=from_manifest)
        file_meta[role] = {
            "path": str(path if not from_manifest else FILE_ROLES[role]),
            "sha256": sha256_file(path),
            "source": spec.source if from_manifest else "user-supplied",
            "vintage": spec.vintage if from_manifest else "user-supplied",
        }

    for role in ("arrivals", "partial", "gdp", "grain", "trade"):
        yrs = tables[role]["year"].astype(int)
        late = yrs[yrs > LAST_OBSERVED_YEAR]
        if len(late):
            raise DataValidationError(
                f"{paths[role][0]}, row(s) {[int(i) + 2 for i in late.index]}: observation(s) for "
                f"year(s) {late.tolist()} found; no observation "
                f"after {LAST_OBSERVED_YEAR} may enter the project (forecasts from 2017 on are "
                "pre-registered). Remove those rows."
            )
    arr = tables["arrivals"]
    arr_years = arr["year"].astype(int)
    lo, hi = int(arr_years.min()), int(arr_years.max())
    if config.first_year < lo or config.last_year > hi:
        raise DataValidationError(
            f"data.first_year/last_year: window {config.first_year}-{config.last_year} is "
            f"outside the arrivals data ({lo}-{hi}) in {paths['arrivals'][0]}. Choose a window "
            f"inside {lo}-{hi}."
        )

    years = np.arange(config.first_year - config.history, config.last_year + 1)
    obs_years = np.arange(config.first_year, config.last_year + 1)
    arrivals = np.full(len(years), np.nan)
    by_year = dict(zip(arr_years, arr["arrivals"], strict=True))
    for i, y in enumerate(years):
        if y >= config.first_year:
            arrivals[i] = by_year[int(y)]

    gdp = tables["gdp"]
    gdp_years = set(int(y) for y in gdp["year"])
    needed = set(int(y) for y in obs_years)
    missing_gdp = sorted(needed - gdp_years)
    if missing_gdp:
        raise DataValidationError(
            f"{paths['gdp'][0]}: no row for year(s) {missing_gdp} of the observation window; "
            "add the row (leave growth_pct empty and vintage 'none' if no value is known)."
        )
    for i, row in gdp.iterrows():
        has_value = not pd.isna(row["growth_pct"])
        if has_value == (row["vintage"] == "none"):
            raise DataValidationError(
                f"{paths['gdp'][0]}, row {int(i) + 2}: vintage {row['vintage']!r} does not match "
                f"growth_pct {row['growth_pct']!r}; use vintage 'none' exactly when the value "
                "is empty."
            )
    g = gdp.set_index(gdp["year"].astype(int))
    growth = np.array([float(g.at[y, "growth_pct"]) if y in g.index else np.nan for y in years])
    vintage = np.array([g.at[y, "vintage"] if y in g.index else "none" for y in years], dtype=object)
    sign_map = {None: 0, "+": 1, "-": -1}
    sign = np.array([sign_map.get(g.at[y, "known_sign"], 0) if y in g.index else 0 for y in years], dtype=int)

    border = tables["border_events"]
    border_idx = cumulative_event_index(list(border["effective_date"]), list(border["increment"]), years)
    sanc = tables["sanctions_events"]
    sanc_late = sanc[[d.year > LAST_OBSERVED_YEAR for d in sanc["effective_date"]]]
    if len(sanc_late):
        raise DataValidationError(
            f"{paths['sanctions_events'][0]}, row(s) {[int(i) + 2 for i in sanc_late.index]}: measures "
            f"dated after {LAST_OBSERVED_YEAR} ({[d.isoformat() for d in sanc_late['effective_date']]}) "
            "found in the historical coding; future measures belong in a scenario, not in data/."
        )
    sanc_idx = cumulative_event_index(list(sanc["effective_date"]), list(sanc["weight"]), years)

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
            C.BORDER_INDEX: (C.YEAR, border_idx),
            C.SANCTIONS_INDEX: (C.YEAR, sanc_idx),
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
    ds[C.ARRIVALS].attrs = {"units": "persons", "long_name": "arrivals in South Korea (MOU final table)"}
    ds[C.BORDER_INDEX].attrs = {
        "units": "index (1 = the 2011-12 Kim Jong-un tightening)",
        "rule": "sum of event increments x fraction of the year after the effective date",
    }
    ds[C.SANCTIONS_INDEX].attrs = {
        "units": "index (1 = one binding UNSC sanctions resolution)",
        "rule": "sum of measure weights x fraction of the year after the effective date",
    }
    ds[C.GDP_GROWTH].attrs = {"units": "percent", "source": "Bank of Korea estimates"}
    ds.attrs = {
        "first_year": int(config.first_year),
        "last_year": int(config.last_year),
        "history_years": int(config.history),
        "stock_pre1999": int(stock["arrivals"]),
        "data_hash": data_hash(file_meta),
        "files": json.dumps(file_meta, sort_keys=True),
    }
    return ds


def data_hash(file_meta: Mapping[str, Mapping[str, str]]) -> str:
    """A short hash of every input file's sha256, by role."""
    blob = json.dumps({k: v["sha256"] for k, v in sorted(file_meta.items())}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_window(config: DataConfig) -> None:
    for key in ("first_year", "last_year", "history"):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise DataValidationError(f"data.{key}: {value!r} is not a whole number.")
    if config.history < 0:
        raise DataValidationError(f"data.history: {config.history} must be >= 0.")
    if config.last_year > LAST_OBSERVED_YEAR:
        raise DataValidationError(
            f"data.last_year: {config.last_year} is after {LAST_OBSERVED_YEAR}; no observation "
            "after 2016 may be fitted (forecasts from 2017 on are pre-registered)."
        )
    if config.first_year > config.last_year - 4:
        raise DataValidationError(
            f"data.first_year/last_year: window {config.first_year}-{config.last_year} holds "
            "fewer than 5 years; the model needs at least 5 observations."
        )


def drivers_frame(ds: xr.Dataset) -> pd.DataFrame:
    """The per-year drivers and arrivals as a tidy table (for reports and CSVs)."""
    cols = [C.ARRIVALS, C.BORDER_INDEX, C.SANCTIONS_INDEX, C.GDP_GROWTH, C.GDP_VINTAGE, C.GRAIN, C.TRADE]
    return ds[cols].to_dataframe().reset_index()


def _main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nkdefections.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("manifest", help="check the data files against the manifest, or --update it")
    m.add_argument("--update", action="store_true", help="rewrite the sha256 of every file")
    m.add_argument("--dir", type=Path, default=None)
    sub.add_parser("show", help="print the assembled per-year table")
    args = parser.parse_args(argv)
    if args.cmd == "manifest":
        if args.update:
            for rel, sha in update_manifest(args.dir).items():
                print(f"{sha}  {rel}")
            return 0
        load_data(DataConfig(dir=args.dir))
        print("all data files match the manifest")
        return 0
    print(drivers_frame(load_data()).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
