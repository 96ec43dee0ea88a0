"""Data files: the manifest, cell validation and table reading."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nkdefections.errors import DataValidationError
from nkdefections.resources import data_dir

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

#: Roles only a user supplies (``data.files.<role>``); no shipped file, so their schema lives here.
#: ``border_open``: the observed open-border fraction per year (1 = as open as in 1999-2016),
#: for windows that hold a closure; years it does not list are open (1).
USER_ROLES: dict[str, FileSpec] = {}


def default_data_dir() -> Path:
    """Return the data folder: ``$NKDEFECTIONS_DATA_DIR`` or the shipped ``data/``."""
    return data_dir()


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


USER_ROLES["border_open"] = FileSpec(
    path="border_open",
    sha256="",
    source="user-supplied",
    vintage="user-supplied",
    description="Observed open-border fraction per year (1 = as open as in 1999-2016)",
    columns=(
        ColumnSpec("year", "year"),
        ColumnSpec("open_fraction", "float"),
        ColumnSpec("source", "str", nullable=True),
        ColumnSpec("notes", "str", nullable=True),
    ),
    key="year",
)


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
            "with `nkdefections-data manifest --update`."
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
                "edit is deliberate, review it and run `nkdefections-data manifest "
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
