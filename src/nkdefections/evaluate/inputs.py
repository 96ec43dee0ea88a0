"""The two inputs of ``nkdefections-score``, read and checked: a forecast and the published figures.

A forecast is a run folder (the output folder of ``nkdefections``, holding ``forecast.nc`` and
``run.json``) or a forecast netCDF file itself (``forecast.nc`` as a run writes it, or any
:func:`nkdefections.forecast` result saved with ``to_netcdf``).  The published figures are a
CSV with columns ``year`` and ``arrivals`` (other columns are ignored).

Anything that cannot be scored is refused with a :class:`~nkdefections.errors.DataValidationError`
whose message is one line: the file, what is wrong (with the row's line number for a CSV) and
how to fix it.  Nothing here writes a file.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from nkdefections import constants as C
from nkdefections.data.tables import sha256_file
from nkdefections.errors import DataValidationError
from nkdefections.validate import whole_valued

#: The forecast file a run folder holds.
FORECAST_FILE = "forecast.nc"
#: The provenance a run folder holds next to it.
RUN_FILE = "run.json"
#: Attributes every scorable forecast carries (written by :func:`nkdefections.forecast`).
PROVENANCE_ATTRS: tuple[str, ...] = (
    "fit_id",
    "data_hash",
    "model_config",
    "scenarios",
    "horizon",
    "seed",
    "package_versions",
    "code_version",
)
#: The observed series of the fit window: the no-change forecast starts from its last year.
WINDOW_OBSERVED = "arrivals_observed"
#: Columns OBSERVED.csv must have.
OBSERVED_COLUMNS: tuple[str, ...] = ("year", C.ARRIVALS)

_REMAKE = (
    "re-create it with `nkdefections` (a run folder's forecast.nc) or save a `nkdefections.forecast(...)` "
    "result with `to_netcdf`, which record them"
)


@dataclass(frozen=True)
class ForecastInput:
    """A forecast ready to score: its dataset (loaded into memory) and where it came from."""

    dataset: xr.Dataset
    path: Path  # the netCDF file
    run_dir: Path | None = None  # the run folder, when one was given
    run_meta: dict[str, Any] | None = None  # its run.json

    @property
    def fitted_years(self) -> np.ndarray:
        return self.dataset[C.YEAR].values.astype(int)

    @property
    def forecast_years(self) -> np.ndarray:
        return self.dataset[C.YEAR_FUTURE].values.astype(int)

    def files(self) -> dict[str, dict[str, str]]:
        """Path and sha256 of the forecast file (and run.json) for the provenance record."""
        out = {"forecast": {"path": str(self.path), "sha256": sha256_file(self.path)}}
        if self.run_dir is not None and (self.run_dir / RUN_FILE).is_file():
            out["run_json"] = {"path": str(self.run_dir / RUN_FILE), "sha256": sha256_file(self.run_dir / RUN_FILE)}
        return out


def _fail(path: Path, what: str) -> DataValidationError:
    return DataValidationError(f"{path}: {what}")


def _open_netcdf(path: Path) -> xr.Dataset:
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            return ds.load()
    except Exception as exc:  # h5py/h5netcdf/xarray raise many types for a file that is not netCDF
        raise _fail(
            path,
            f"not a readable netCDF file ({type(exc).__name__}: {exc}); pass a forecast.nc that "
            "a run wrote, or its run folder.",
        ) from None


def _check_forecast(ds: xr.Dataset, path: Path) -> None:
    missing = [k for k in PROVENANCE_ATTRS if str(ds.attrs.get(k, "")).strip() == ""]
    if missing:
        raise _fail(
            path,
            f"provenance attributes missing or empty: {', '.join(missing)}; a forecast is scored only "
            f"with a record of the fit and data it came from: {_REMAKE}.",
        )
    dims = (C.CHAIN, C.DRAW, C.SCENARIO, C.YEAR_FUTURE)
    if C.OBSERVED not in ds or set(ds[C.OBSERVED].dims) != set(dims):
        got = ds[C.OBSERVED].dims if C.OBSERVED in ds else "absent"
        raise _fail(path, f"variable {C.OBSERVED!r} with dims {dims} needed (the count draws), found {got}; {_REMAKE}.")
    if WINDOW_OBSERVED not in ds or ds[WINDOW_OBSERVED].dims != (C.YEAR,):
        raise _fail(
            path,
            f"variable {WINDOW_OBSERVED!r} (year) needed: the fitted series the no-change "
            f"forecast starts from; {_REMAKE}.",
        )
    y = ds[C.OBSERVED].values
    if not np.all(whole_valued(y)) or np.any(y < 0):
        raise _fail(
            path,
            f"{C.OBSERVED!r} draws must be non-negative whole counts; the file is damaged or was "
            f"not written by nkdefections: {_REMAKE}.",
        )
    fitted, future = ds[C.YEAR].values, ds[C.YEAR_FUTURE].values
    if len(fitted) == 0 or len(future) == 0 or int(future[0]) != int(fitted[-1]) + 1:
        raise _fail(
            path,
            f"its forecast years must start the year after its fitted years (`{C.YEAR}` and "
            f"`{C.YEAR_FUTURE}` coordinates); {_REMAKE}.",
        )
    if ds.sizes[C.CHAIN] * ds.sizes[C.DRAW] < 2:
        raise _fail(path, f"{C.OBSERVED!r} has fewer than 2 draws; nothing to score.")


def _read_run_meta(run_dir: Path, ds: xr.Dataset) -> dict[str, Any] | None:
    path = run_dir / RUN_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"not readable JSON ({exc}); restore the run folder or pass its forecast.nc alone.") from None
    fit_id = meta.get("fit_id") if isinstance(meta, dict) else None
    if fit_id is not None and str(fit_id) != str(ds.attrs["fit_id"]):
        raise _fail(
            path,
            f"fit_id {fit_id} differs from {FORECAST_FILE}'s {ds.attrs['fit_id']}: the files come from "
            f"different runs; pass the {FORECAST_FILE} you mean to score directly.",
        )
    return meta if isinstance(meta, dict) else None


def read_forecast(path: str | Path) -> ForecastInput:
    """Open a run folder or a forecast ``.nc`` file and check that it can be scored.

    Raises
    ------
    DataValidationError
        Not found; a folder without ``forecast.nc``; a file that is not ``.nc``; an unreadable
        file; missing provenance attributes (:data:`PROVENANCE_ATTRS`) or variables; a run.json
        from a different fit.
    """
    p = Path(path)
    if not p.exists():
        raise _fail(p, "not found; pass a run folder (the output_dir of `nkdefections`) or its forecast.nc.")
    run_dir = None
    if p.is_dir():
        run_dir, p = p, p / FORECAST_FILE
        if not p.is_file():
            raise _fail(
                run_dir,
                f"no {FORECAST_FILE} in this folder; pass the output folder of an `nkdefections` run "
                f"that forecast scenarios, or a forecast .nc file.",
            )
    elif p.suffix.lower() != ".nc":
        raise _fail(
            p,
            f"unknown file type {p.suffix or '(no suffix)'!r}; pass a run folder or a forecast .nc file "
            "(netCDF, as `nkdefections` writes it).",
        )
    ds = _open_netcdf(p)
    _check_forecast(ds, p)
    meta = _read_run_meta(run_dir, ds) if run_dir is not None else None
    return ForecastInput(ds, p, run_dir, meta)


def _whole(cell: str | None, path: Path, line: int, column: str, *, minimum: int) -> int:
    text = (cell or "").strip()
    try:
        value = float(text)
    except ValueError:
        value = np.nan
    if not np.isfinite(value) or value != round(value) or value < minimum:
        what = "a year" if column == "year" else f"a whole count >= {minimum}"
        hint = " (write counts without thousands separators)" if "," in text or "_" in text else ""
        raise _fail(path, f"line {line}: {column} = {text!r} is not {what}{hint}; fix or remove the row.")
    return int(value)


def read_observed(path: str | Path) -> pd.DataFrame:
    """Read OBSERVED.csv (columns ``year``, ``arrivals``) into a frame sorted by year.

    Every cell is checked; a message names the line (the header is line 1).

    Raises
    ------
    DataValidationError
        Not found, not ``.csv``, not UTF-8, empty, a missing column, a year or count that is not a
        whole number (counts must be >= 0), or a year given twice.
    """
    p = Path(path)
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "not found"
        raise _fail(p, f"{what}; pass a CSV file with columns year,arrivals.")
    if p.suffix.lower() != ".csv":
        raise _fail(
            p,
            f"unknown file type {p.suffix or '(no suffix)'!r}; the published figures must be a .csv "
            "file with columns year,arrivals.",
        )
    try:
        with p.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            fields = [(c or "").strip() for c in (reader.fieldnames or [])]
            reader.fieldnames = fields
            rows = [(reader.line_num, row) for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _fail(
            p, f"not a readable UTF-8 CSV ({exc}); save it as CSV (UTF-8) with columns year,arrivals."
        ) from None
    missing = [c for c in OBSERVED_COLUMNS if c not in fields]
    if missing:
        raise _fail(
            p,
            f"missing column(s) {', '.join(missing)} (found: {', '.join(fields) or 'none'}); the header "
            "line must read year,arrivals.",
        )
    if not rows:
        raise _fail(p, "no data rows below the header; add one row per published year, e.g. 2017,<count>.")
    seen: dict[int, int] = {}
    out = []
    for line, row in rows:
        year = _whole(row.get("year"), p, line, "year", minimum=1)
        count = _whole(row.get(C.ARRIVALS), p, line, C.ARRIVALS, minimum=0)
        if year in seen:
            raise _fail(
                p, f"line {line}: year {year} appears again (first on line {seen[year]}); keep one row per year."
            )
        seen[year] = line
        out.append({"year": year, C.ARRIVALS: count, "line": line})
    return pd.DataFrame(out).sort_values("year", ignore_index=True)


def check_years(forecast: ForecastInput, observed: pd.DataFrame, observed_path: str | Path) -> None:
    """Refuse observed years the forecast does not cover (fitted years, or beyond the horizon)."""
    fitted, future = forecast.fitted_years, forecast.forecast_years
    span = f"{future[0]}-{future[-1]}"
    for year, line in zip(observed["year"], observed["line"], strict=True):
        if year in future:
            continue
        if year <= fitted[-1]:
            why = (
                f"is not after the fitted window {fitted[0]}-{fitted[-1]}: the forecast covers {span}, and only "
                "figures for years it forecast can score it"
            )
        else:
            why = f"is not a forecast year: {forecast.path.name} covers {span}"
        raise _fail(
            Path(observed_path),
            f"line {line}: year {year} {why}; remove the row, or score a forecast whose horizon covers it.",
        )
