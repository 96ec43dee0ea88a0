"""Pure tier: the data layer (no PyMC, no sampling).

The real data are checked against the reference figures (../shared/reference-data,
SOURCES.md); every bad input is produced by copying ``data/`` into ``tmp_path``,
editing one CSV there and re-hashing the manifest with ``update_manifest`` so that
exactly the intended error fires.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nkdefections import constants as C
from nkdefections.config import DataConfig
from nkdefections.data.load import cumulative_event_index, load_data, year_exposure
from nkdefections.data.tables import (
    FILE_ROLES,
    LAST_OBSERVED_YEAR,
    MANIFEST_NAME,
    default_data_dir,
    read_manifest,
    read_table,
    sha256_file,
    update_manifest,
)
from nkdefections.errors import DataValidationError

pytestmark = pytest.mark.pure

REPO_DATA = Path(__file__).resolve().parents[2] / "data"
YEARS = list(range(1999, 2017))

#: MOU final table, 1999-2016 (reference-data/arrivals_annual.csv, SOURCES.md).
REFERENCE_ARRIVALS = {
    1999: 148,
    2000: 312,
    2001: 583,
    2002: 1142,
    2003: 1285,
    2004: 1898,
    2005: 1384,
    2006: 2028,
    2007: 2554,
    2008: 2803,
    2009: 2914,
    2010: 2402,
    2011: 2706,
    2012: 1502,
    2013: 1514,
    2014: 1397,
    2015: 1275,
    2016: 1418,
}

ARRIVALS = "arrivals_annual.csv"
GDP = "gdp_growth_bok.csv"
BORDER = "border_events.csv"
SANCTIONS = "sanctions_events.csv"
PARTIAL = "arrivals_partial_year.csv"
TRADE = "china_nk_trade.csv"

Rows = list[list[str]]


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def read_rows(path: Path) -> Rows:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def write_rows(path: Path, rows: Rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def edit_csv(data_dir: Path, name: str, fn: Callable[[Rows], Rows], *, rehash: bool = True) -> Path:
    """Apply ``fn`` to the rows (header first) of ``raw/<name>``; re-hash the manifest."""
    path = data_dir / "raw" / name
    write_rows(path, fn(read_rows(path)))
    if rehash:
        update_manifest(data_dir)
    return path


def row_index(rows: Rows, key: str) -> int:
    """Index in ``rows`` of the record whose first cell is ``key`` (its file row is index + 1)."""
    return next(i for i, r in enumerate(rows) if r[0] == key)


def set_cell(key: str, column: str, value: str) -> Callable[[Rows], Rows]:
    def fn(rows: Rows) -> Rows:
        rows[row_index(rows, key)][rows[0].index(column)] = value
        return rows

    return fn


def assert_names(exc: pytest.ExceptionInfo, *parts: str) -> None:
    msg = str(exc.value)
    for part in parts:
        assert part in msg, f"{part!r} missing from error message: {msg}"


@pytest.fixture(scope="module")
def ds():
    return load_data(DataConfig(dir=REPO_DATA))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A private copy of the repository's data/ folder."""
    return Path(shutil.copytree(REPO_DATA, tmp_path / "data"))


def file_row(data_dir: Path, name: str, key: str) -> int:
    """1-based row (header = row 1) of the record ``key`` in the current ``raw/<name>``."""
    return row_index(read_rows(data_dir / "raw" / name), key) + 1


# ----------------------------------------------------------------------------
# the real data
# ----------------------------------------------------------------------------


def test_repo_manifest_matches_files():
    specs = read_manifest(REPO_DATA)
    assert set(FILE_ROLES.values()) <= set(specs)
    for rel, spec in specs.items():
        assert sha256_file(REPO_DATA / rel) == spec.sha256, rel


def test_default_data_dir_is_repo_data(monkeypatch):
    monkeypatch.delenv("NKDEFECTIONS_DATA_DIR", raising=False)
    assert default_data_dir().resolve() == REPO_DATA.resolve()
    monkeypatch.setenv("NKDEFECTIONS_DATA_DIR", "/somewhere/else")
    assert default_data_dir() == Path("/somewhere/else")


def test_years_are_1999_to_2016(ds):
    assert ds[C.YEAR].values.tolist() == YEARS
    assert int(ds[C.YEAR].max()) <= LAST_OBSERVED_YEAR == 2016
    assert ds.attrs["first_year"] == 1999 and ds.attrs["last_year"] == 2016
    assert ds.attrs["history_years"] == 0


@pytest.mark.parametrize("year, value", [(2009, 2914), (1999, 148), (2016, 1418), (2002, 1142)])
def test_arrivals_spot_checks(ds, year, value):
    assert ds[C.ARRIVALS].sel(year=year).item() == value


def test_arrivals_match_reference_and_2009_is_the_peak(ds):
    got = dict(zip(ds[C.YEAR].values.tolist(), ds[C.ARRIVALS].values.tolist(), strict=True))
    assert got == REFERENCE_ARRIVALS
    assert int(ds[C.ARRIVALS].idxmax()) == 2009
    assert not np.isnan(ds[C.ARRIVALS].values).any()
    assert ds.attrs["stock_pre1999"] == 947


def test_border_index(ds):
    b = ds[C.BORDER_INDEX].to_series()
    assert (b.loc[:2010] == 0).all()
    assert b.loc[2013] == pytest.approx(1.0) and b.loc[2014] == pytest.approx(1.0)
    # pro-rated first years: 2011-08-01 (+0.25), 2011-12-17 (+0.5), 2012-07-01 (+0.25), 2015-10-01 (+0.25)
    assert b.loc[2011] == pytest.approx(0.25 * 153 / 365 + 0.5 * 15 / 365)
    assert b.loc[2012] == pytest.approx(0.75 + 0.25 * 184 / 366)
    assert b.loc[2015] == pytest.approx(1.0 + 0.25 * 92 / 365)
    assert b.loc[2016] == pytest.approx(1.25)
    assert (np.diff(b.to_numpy()) >= 0).all()


def test_sanctions_index(ds):
    s = ds[C.SANCTIONS_INDEX].to_series()
    assert (np.diff(s.to_numpy()) >= 0).all(), "sanctions index must be non-decreasing"
    assert (s.loc[:2005] == 0).all()  # Res 825 (1993) has weight 0
    assert s.loc[2014] == pytest.approx(5.5)
    # 2016: Kaesong 02-10 (1.0), Res 2270 03-02 (2.0), Res 2321 11-30 (1.0), leap year
    assert s.loc[2016] == pytest.approx(5.5 + (1.0 * 326 + 2.0 * 305 + 1.0 * 32) / 366)


def test_gdp_growth_and_vintage(ds):
    g = ds[C.GDP_GROWTH].to_series()
    assert g[g.isna()].index.tolist() == [2005]
    assert g.loc[1999] == pytest.approx(6.1)
    assert g.loc[2009] == pytest.approx(-0.9)
    assert g.loc[2016] == pytest.approx(3.9)
    vintage = dict(zip(YEARS, ds[C.GDP_VINTAGE].values.tolist(), strict=True))
    expected = {y: "latest" if y == 1999 or y >= 2008 else "first_release" for y in YEARS}
    expected[2005] = "none"
    assert vintage == expected
    sign = ds[C.GDP_KNOWN_SIGN].to_series()
    assert sign[sign != 0].to_dict() == {2005: 1}


def test_optional_covariates(ds):
    grain = ds[C.GRAIN].to_series()
    # SOURCES.md: grain gaps 2000-2002, 2006, 2009-2012 unverified
    assert grain[grain.isna()].index.tolist() == [2000, 2001, 2002, 2006, 2009, 2010, 2011, 2012]
    assert grain.loc[1999] == pytest.approx(4.22)
    trade = ds[C.TRADE].to_series()
    assert not trade.isna().any()
    assert trade.loc[2016] == pytest.approx(6.05)


def test_partial_year_counts(ds):
    part = {
        (int(y), str(p)): (int(m), int(a))
        for y, p, m, a in zip(
            ds["partial_year"].values,
            ds["partial_period"].values,
            ds["partial_month_end"].values,
            ds["partial_arrivals"].values,
            strict=True,
        )
    }
    # SOURCES.md: 815 is January-July 2016; H1 2016 = 749, H1 2015 = 614
    assert part[(2016, "Jan-Jul")] == (7, 815)
    assert part[(2016, "H1")] == (6, 749)
    assert part[(2015, "H1")] == (6, 614)
    assert all(1999 <= y <= 2016 for y, _ in part)


def test_files_attr_records_every_role(ds):
    files = json.loads(ds.attrs["files"])
    assert set(files) == set(FILE_ROLES)
    for role, meta in files.items():
        assert meta["path"] == FILE_ROLES[role]
        assert meta["sha256"] == sha256_file(REPO_DATA / FILE_ROLES[role])


def test_data_hash_stable_across_loads(ds, data_dir):
    again = load_data(DataConfig(dir=REPO_DATA))
    assert again.attrs["data_hash"] == ds.attrs["data_hash"]
    assert len(ds.attrs["data_hash"]) == 16
    # it depends on the file contents, not on where the folder lives
    assert load_data(DataConfig(dir=data_dir)).attrs["data_hash"] == ds.attrs["data_hash"]


@pytest.mark.parametrize("name", [ARRIVALS, GDP, BORDER, SANCTIONS, TRADE])
def test_data_hash_changes_when_a_file_changes(ds, data_dir, name):
    def touch(rows: Rows) -> Rows:
        rows[1][-1] = rows[1][-1] + " (edited)"  # a free-text column only
        return rows

    edit_csv(data_dir, name, touch)
    assert load_data(DataConfig(dir=data_dir)).attrs["data_hash"] != ds.attrs["data_hash"]


def test_history_adds_covariate_years_with_nan_arrivals(ds):
    h = load_data(DataConfig(dir=REPO_DATA, history=2))
    assert h[C.YEAR].values.tolist() == [1997, 1998, *YEARS]
    assert np.isnan(h[C.ARRIVALS].sel(year=[1997, 1998]).values).all()
    assert h.attrs["history_years"] == 2
    assert (h[C.BORDER_INDEX].sel(year=[1997, 1998]).values == 0).all()
    assert (h[C.SANCTIONS_INDEX].sel(year=[1997, 1998]).values == 0).all()
    assert np.isnan(h[C.GDP_GROWTH].sel(year=[1997, 1998]).values).all()
    assert h[C.GDP_VINTAGE].sel(year=1997).item() == "none"
    for var in (C.ARRIVALS, C.BORDER_INDEX, C.SANCTIONS_INDEX, C.GDP_GROWTH):
        np.testing.assert_array_equal(h[var].sel(year=YEARS).values, ds[var].values)


def test_window_keyword_override():
    sub = load_data(DataConfig(dir=REPO_DATA), first_year=2002, last_year=2010)
    assert sub[C.YEAR].values.tolist() == list(range(2002, 2011))
    assert sub[C.ARRIVALS].sel(year=2002).item() == 1142
    assert set(sub["partial_year"].values.tolist()) <= set(range(2002, 2011))
    assert 2016 not in sub["partial_year"].values


# ----------------------------------------------------------------------------
# pure functions
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "date, year, expected",
    [
        (dt.date(2011, 1, 1), 2011, 1.0),  # Jan 1: the whole year
        (dt.date(2011, 12, 31), 2011, 1 / 365),  # Dec 31: one day
        (dt.date(2012, 12, 31), 2012, 1 / 366),  # leap year
        (dt.date(2011, 7, 1), 2011, 184 / 365),
        (dt.date(2012, 7, 1), 2012, 184 / 366),  # leap day before July
        (dt.date(2011, 3, 1), 2011, 306 / 365),
        (dt.date(2012, 3, 1), 2012, 306 / 366),
        (dt.date(2012, 2, 29), 2012, 307 / 366),
        (dt.date(2012, 1, 1), 2011, 0.0),  # next Jan 1: not in this year
        (dt.date(2015, 6, 1), 2011, 0.0),  # before the event
        (dt.date(2005, 6, 1), 2011, 1.0),  # every later year
        (dt.date(2010, 12, 31), 2011, 1.0),
    ],
)
def test_year_exposure(date, year, expected):
    assert year_exposure(date, year) == pytest.approx(expected, abs=1e-15)


def test_year_exposure_is_between_0_and_1_and_monotone():
    days = [dt.date(2012, 1, 1) + dt.timedelta(days=k) for k in range(366)]
    values = [year_exposure(d, 2012) for d in days]
    assert all(0 < v <= 1 for v in values)
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_cumulative_event_index_rules():
    years = np.arange(1998, 2003)
    assert cumulative_event_index([], [], years).tolist() == [0.0] * 5
    step = cumulative_event_index([dt.date(2000, 1, 1)], [2.0], years)
    assert step.tolist() == [0.0, 0.0, 2.0, 2.0, 2.0]
    two = cumulative_event_index([dt.date(2000, 1, 1), dt.date(2001, 7, 1)], [2.0, 0.5], years)
    np.testing.assert_allclose(two, [0, 0, 2.0, 2.0 + 0.5 * 184 / 365, 2.5])
    # additive: the index of two events is the sum of their indexes
    np.testing.assert_allclose(
        two,
        step + cumulative_event_index([dt.date(2001, 7, 1)], [0.5], years),
    )
    late = cumulative_event_index([dt.date(2017, 1, 1)], [1.0], years)
    assert late.tolist() == [0.0] * 5


def test_cumulative_event_index_is_non_decreasing_for_positive_weights():
    rng = np.random.default_rng(0)
    dates = [dt.date(2000, 1, 1) + dt.timedelta(days=int(k)) for k in rng.integers(0, 6000, 20)]
    weights = rng.uniform(0, 2, 20).tolist()
    idx = cumulative_event_index(dates, weights, np.arange(1995, 2020))
    assert (np.diff(idx) >= 0).all()
    assert idx[0] == 0 and idx[-1] == pytest.approx(sum(weights))


def test_cumulative_event_index_requires_matching_lengths():
    with pytest.raises(ValueError):
        cumulative_event_index([dt.date(2000, 1, 1)], [1.0, 2.0], np.arange(2000, 2002))


# ----------------------------------------------------------------------------
# bad inputs: each must name the file, the row (or column) and the bad value
# ----------------------------------------------------------------------------


def _drop(key: str) -> Callable[[Rows], Rows]:
    return lambda rows: [r for r in rows if r[0] != key]


def _duplicate(key: str) -> Callable[[Rows], Rows]:
    def fn(rows: Rows) -> Rows:
        i = row_index(rows, key)
        return rows[: i + 1] + [list(rows[i])] + rows[i + 1 :]

    return fn


def _drop_column(column: str) -> Callable[[Rows], Rows]:
    def fn(rows: Rows) -> Rows:
        j = rows[0].index(column)
        return [r[:j] + r[j + 1 :] for r in rows]

    return fn


def _rename_column(old: str, new: str) -> Callable[[Rows], Rows]:
    def fn(rows: Rows) -> Rows:
        rows[0][rows[0].index(old)] = new
        return rows

    return fn


def _append(row: list[str]) -> Callable[[Rows], Rows]:
    return lambda rows: [*rows, row]


# (id, file, edit, fragments that must appear in the message besides the file name)
BAD_CELLS = [
    (
        "negative_count",
        ARRIVALS,
        set_cell("2009", "arrivals", "-2914"),
        ["row 12", "'arrivals'", "-2914", "negative"],
    ),
    (
        "non_integer_count",
        ARRIVALS,
        set_cell("2009", "arrivals", "2914.5"),
        ["row 12", "'arrivals'", "'2914.5'", "whole number"],
    ),
    (
        "thousands_separator",
        ARRIVALS,
        set_cell("2009", "arrivals", "2,914"),
        ["row 12", "'arrivals'", "'2,914'", "not a number"],
    ),
    (
        "non_numeric_count",
        ARRIVALS,
        set_cell("2004", "male", "many"),
        ["row 7", "'male'", "'many'", "not a number"],
    ),
    (
        "non_numeric_float",
        TRADE,
        set_cell("2010", "usd_billion", "3.5bn"),
        ["row 13", "'usd_billion'", "'3.5bn'", "not a number"],
    ),
    (
        "decimal_comma_float",
        GDP,
        set_cell("2016", "growth_pct", "3,9"),
        ["row 19", "'growth_pct'", "'3,9'", "not a number"],
    ),
    (
        "infinite_float",
        TRADE,
        set_cell("2010", "usd_billion", "inf"),
        ["row 13", "'usd_billion'", "'inf'", "not a finite number"],
    ),
    (
        "empty_cell",
        ARRIVALS,
        set_cell("2009", "arrivals", ""),
        ["row 12", "'arrivals'", "''", "does not allow missing values"],
    ),
    (
        "nan_cell",
        ARRIVALS,
        set_cell("2009", "arrivals", "NaN"),
        ["row 12", "'arrivals'", "'NaN'", "does not allow missing values"],
    ),
    (
        "empty_str_cell",
        ARRIVALS,
        set_cell("2010", "source", ""),
        ["row 13", "'source'", "does not allow missing values"],
    ),
    (
        "empty_float_cell",
        TRADE,
        set_cell("2003", "usd_billion", "NA"),
        ["row 6", "'usd_billion'", "'NA'", "does not allow missing values"],
    ),
    (
        "bad_choice",
        GDP,
        set_cell("2010", "vintage", "final"),
        ["row 13", "'vintage'", "'final'", "'latest'", "'first_release'", "'none'"],
    ),
    (
        "bad_sign_choice",
        GDP,
        set_cell("2005", "known_sign", "positive"),
        ["row 8", "'known_sign'", "'positive'"],
    ),
    (
        "bad_date",
        BORDER,
        set_cell("2011-12-17", "effective_date", "2011-12-32"),
        ["row 3", "'effective_date'", "'2011-12-32'", "YYYY-MM-DD"],
    ),
    (
        "implausible_year",
        ARRIVALS,
        set_cell("2009", "year", "209"),
        ["row 12", "'year'", "209", "plausible year"],
    ),
    (
        "non_numeric_year",
        ARRIVALS,
        set_cell("2009", "year", "2009a"),
        ["row 12", "'year'", "'2009a'", "not a number"],
    ),
    (
        "month_out_of_range",
        PARTIAL,
        set_cell("2002", "month_end", "13"),
        ["row 2", "'month_end'", "13", "1..12"],
    ),
]


@pytest.mark.parametrize("name, edit, parts", [c[1:] for c in BAD_CELLS], ids=[c[0] for c in BAD_CELLS])
def test_bad_cell(data_dir, name, edit, parts):
    path = edit_csv(data_dir, name, edit)
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), *parts)


def test_missing_year(data_dir):
    path = edit_csv(data_dir, ARRIVALS, _drop("2005"))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "missing year(s) [2005]", "from 1999 to 2016")


def test_missing_year_in_gdp(data_dir):
    path = edit_csv(data_dir, GDP, _drop("2012"))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "missing year(s) [2012]")


def test_missing_last_year_is_a_window_error(data_dir):
    path = edit_csv(data_dir, ARRIVALS, _drop("2016"))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "1999-2016", "(1999-2015)")


def test_gdp_missing_window_year(data_dir):
    # the contiguous check passes (1999-2015 has no gap) but the window needs 2016
    path = edit_csv(data_dir, GDP, _drop("2016"))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "[2016]")


def test_duplicated_year(data_dir):
    path = edit_csv(data_dir, ARRIVALS, _duplicate("2005"))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    # 2005 is row 8; its copy is row 9
    assert_names(exc, str(path), "row 9", "duplicated year 2005")


def test_duplicated_stock_key(data_dir):
    path = edit_csv(data_dir, "arrivals_stock_pre1999.csv", _duplicate("1998"))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "row 3", "duplicated through_year 1998")


@pytest.mark.parametrize("column", ["arrivals", "male", "notes"])
def test_missing_column(data_dir, column):
    path = edit_csv(data_dir, ARRIVALS, _drop_column(column))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), f"missing column(s) ['{column}']")
    assert "Unexpected columns" not in str(exc.value)


def test_renamed_column(data_dir):
    path = edit_csv(data_dir, ARRIVALS, _rename_column("arrivals", "total"))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "missing column(s) ['arrivals']", "Unexpected columns ['total']")


def test_gdp_vintage_must_match_value(data_dir):
    path = edit_csv(data_dir, GDP, set_cell("2010", "vintage", "none"))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "row 13", "vintage 'none'", "-0.5")


def test_checksum_mismatch(data_dir):
    def edit(rows: Rows) -> Rows:  # the total and, so the counts by sex still add up, the men
        return set_cell("2009", "male", "700")(set_cell("2009", "arrivals", "2952")(rows))

    path = edit_csv(data_dir, ARRIVALS, edit, rehash=False)
    spec = read_manifest(data_dir)["raw/" + ARRIVALS]
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "checksum mismatch", spec.sha256[:12], sha256_file(path)[:12], "manifest --update")
    # after a deliberate re-hash the same edit loads
    update_manifest(data_dir)
    assert load_data(DataConfig(dir=data_dir))[C.ARRIVALS].sel(year=2009).item() == 2952


def test_observation_after_2016(data_dir):
    def add_2017(rows: Rows) -> Rows:
        new = list(rows[-1])
        new[0], new[1] = "2017", "1127"
        return [*rows, new]

    path = edit_csv(data_dir, ARRIVALS, add_2017)
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    # 1999 is row 2, 2016 row 19, the new 2017 row is row 20
    assert_names(exc, str(path), "row(s) [20]", "year(s) [2017]", "after 2016")


def test_sanctions_measure_after_2016(data_dir):
    path = edit_csv(
        data_dir,
        SANCTIONS,
        _append(["2017-08-05", "1.0", "UNSC", "Res 2371", "coal ban", "un.org", "future measure"]),
    )
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "row(s) [13]", "2017-08-05", "after 2016")


@pytest.mark.parametrize(
    "window, parts",
    [
        (dict(first_year=1990), ["data.first_year/last_year", "1990-2016", "(1999-2016)", ARRIVALS]),
        (dict(last_year=2017), ["data.last_year", "2017", "after 2016"]),
        (dict(first_year=2014), ["data.first_year/last_year", "2014-2016", "fewer than 5 years"]),
        (dict(history=-1), ["data.history", "-1", ">= 0"]),
        (dict(first_year=1999.5), ["data.first_year", "1999.5", "whole number"]),
        (dict(last_year="2016"), ["data.last_year", "'2016'", "whole number"]),
        (dict(history=True), ["data.history", "True", "whole number"]),
    ],
)
def test_bad_window(window, parts):
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=REPO_DATA, **window))
    assert_names(exc, *parts)


def test_window_outside_truncated_data(data_dir):
    path = edit_csv(data_dir, ARRIVALS, _drop("1999"))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir, first_year=1999))
    assert_names(exc, str(path), "1999-2016", "(2000-2016)")
    # a window inside the remaining data loads
    assert load_data(DataConfig(dir=data_dir, first_year=2000))[C.YEAR].values[0] == 2000


def test_missing_manifest(data_dir):
    (data_dir / MANIFEST_NAME).unlink()
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(data_dir / MANIFEST_NAME), "manifest not found")


def test_data_dir_without_anything(tmp_path):
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=tmp_path))
    assert_names(exc, str(tmp_path / MANIFEST_NAME), "manifest not found")


@pytest.mark.parametrize(
    "text, parts",
    [
        ("{not json", ["malformed manifest"]),
        ('{"description": "no files"}', ["malformed manifest", "'files'"]),
        ("[1, 2]", ["malformed manifest"]),
    ],
)
def test_malformed_manifest(data_dir, text, parts):
    (data_dir / MANIFEST_NAME).write_text(text, encoding="utf-8")
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(data_dir / MANIFEST_NAME), *parts)


def _edit_manifest(data_dir: Path, fn: Callable[[dict], None]) -> None:
    path = data_dir / MANIFEST_NAME
    raw = json.loads(path.read_text(encoding="utf-8"))
    fn(raw)
    path.write_text(json.dumps(raw, indent=2), encoding="utf-8")


def test_manifest_unknown_column_type(data_dir):
    _edit_manifest(data_dir, lambda m: m["files"]["raw/" + ARRIVALS]["columns"][1].update(type="integer"))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, "raw/arrivals_annual.csv", "'arrivals'", "unknown type 'integer'")


def test_manifest_missing_entry(data_dir):
    _edit_manifest(data_dir, lambda m: m["files"].pop("raw/" + BORDER))
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, MANIFEST_NAME, "no entry for 'raw/border_events.csv'")


def test_missing_data_file(data_dir):
    path = data_dir / "raw" / TRADE
    path.unlink()
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "data file not found", "raw/china_nk_trade.csv")


def test_unreadable_csv(data_dir):
    path = data_dir / "raw" / ARRIVALS
    path.write_bytes(b"")
    update_manifest(data_dir)
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "not a readable CSV")


def test_unknown_files_role(data_dir):
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir, files={"borders": "x.csv", "arrivals": ""}))
    assert_names(exc, "data.files", "unknown role(s) ['borders']", *sorted(FILE_ROLES))


def test_update_manifest_rewrites_hashes(data_dir):
    path = edit_csv(data_dir, TRADE, set_cell("2009", "notes", "approximate (checked)"), rehash=False)
    new = update_manifest(data_dir)
    assert set(new) == set(read_manifest(data_dir))
    assert new["raw/" + TRADE] == sha256_file(path)
    assert read_manifest(data_dir)["raw/" + TRADE].sha256 == sha256_file(path)
    # everything but the hash is preserved
    new_spec, old_spec = read_manifest(data_dir)["raw/" + TRADE], read_manifest(REPO_DATA)["raw/" + TRADE]
    assert dataclasses.replace(new_spec, sha256="") == dataclasses.replace(old_spec, sha256="")


def test_read_table_returns_parsed_values():
    spec = read_manifest(REPO_DATA)["raw/" + BORDER]
    t = read_table(REPO_DATA / "raw" / BORDER, spec)
    assert list(t.columns) == spec.column_names
    assert all(isinstance(d, dt.date) for d in t["effective_date"])
    assert t["increment"].dtype == float
    gdp = read_table(REPO_DATA / "raw" / GDP, read_manifest(REPO_DATA)["raw/" + GDP])
    assert gdp["year"].tolist() == YEARS
    assert gdp["known_sign"].tolist().count("+") == 1


# ----------------------------------------------------------------------------
# user-supplied replacement files
# ----------------------------------------------------------------------------

BORDER_HEADER = ["date_reported", "effective_date", "increment", "actor", "event", "source", "coding_note"]


def test_replacement_file_is_used(ds, tmp_path):
    mine = tmp_path / "my_border_coding.csv"
    write_rows(mine, [BORDER_HEADER, ["2005", "2005-01-01", "1.0", "NK", "test step", "test", "test coding"]])
    alt = load_data(DataConfig(dir=REPO_DATA, files={"border_events": str(mine)}))
    b = alt[C.BORDER_INDEX].to_series()
    assert (b.loc[:2004] == 0).all() and (b.loc[2005:] == 1.0).all()
    assert not np.allclose(alt[C.BORDER_INDEX].values, ds[C.BORDER_INDEX].values)
    # the other covariates are untouched
    np.testing.assert_array_equal(alt[C.SANCTIONS_INDEX].values, ds[C.SANCTIONS_INDEX].values)
    files = json.loads(alt.attrs["files"])
    assert files["border_events"]["path"] == str(mine)
    assert files["border_events"]["source"] == "user-supplied"
    assert files["border_events"]["sha256"] == sha256_file(mine)
    assert alt.attrs["data_hash"] != ds.attrs["data_hash"]


def test_replacement_file_is_schema_validated(tmp_path):
    mine = tmp_path / "my_border_coding.csv"
    write_rows(
        mine,
        [
            [c for c in BORDER_HEADER if c != "increment"],
            ["2005", "2005-01-01", "NK", "test step", "test", "test coding"],
        ],
    )
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=REPO_DATA, files={"border_events": str(mine)}))
    assert_names(exc, str(mine), "missing column(s) ['increment']")


def test_replacement_file_cells_are_validated(tmp_path):
    mine = tmp_path / "my_border_coding.csv"
    write_rows(
        mine,
        [
            BORDER_HEADER,
            ["2005", "2005-01-01", "1.0", "NK", "ok", "test", "test"],
            ["2006", "01/06/2006", "1.0", "NK", "bad date", "test", "test"],
        ],
    )
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=REPO_DATA, files={"border_events": str(mine)}))
    assert_names(exc, str(mine), "row 3", "'effective_date'", "'01/06/2006'")


def test_replacement_file_missing(tmp_path):
    mine = tmp_path / "nope.csv"
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=REPO_DATA, files={"border_events": str(mine)}))
    assert_names(exc, str(mine), "not found")


def test_replacement_optional_covariate_may_be_all_empty(tmp_path):
    # a schema-valid grain file without any verified value: all NaN, no crash
    mine = tmp_path / "grain.csv"
    write_rows(
        mine,
        [
            ["year", "million_tonnes", "estimator", "source", "notes"],
            *[[str(y), "", "", "", "unverified"] for y in YEARS],
        ],
    )
    alt = load_data(DataConfig(dir=REPO_DATA, files={"grain": str(mine)}))
    assert np.isnan(alt[C.GRAIN].values).all()


@pytest.mark.parametrize("name", [GDP, TRADE, "grain_production_rda.csv", "arrivals_partial_year.csv"])
def test_any_yearly_file_refuses_years_after_2016(data_dir, name):
    def add_2017(rows: Rows) -> Rows:
        new = list(rows[-1])
        new[0] = "2017"
        return [*rows, new]

    path = edit_csv(data_dir, name, add_2017)
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "year(s) [2017]", "after 2016")


def test_blank_line_is_reported_at_its_own_row(data_dir):
    path = data_dir / "raw" / ARRIVALS
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join([*lines[:5], "\n", *lines[5:]]), encoding="utf-8")  # blank file row 6
    update_manifest(data_dir)
    with pytest.raises(DataValidationError) as exc:
        load_data(DataConfig(dir=data_dir))
    assert_names(exc, str(path), "row 6")


def test_update_manifest_without_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(DataValidationError, match="manifest not found"):
        update_manifest(tmp_path)


def test_raw_files_are_reproduced_from_the_reference_data(tmp_path):
    """scripts/build_data.py rebuilds data/raw byte for byte from ../shared/reference-data."""
    import subprocess
    import sys

    ref = REPO_DATA.parent.parent / "shared" / "reference-data"
    if not ref.is_dir():
        pytest.skip(f"reference data not found at {ref}")
    script = REPO_DATA.parent / "scripts" / "build_data.py"
    subprocess.run([sys.executable, str(script), str(ref), str(tmp_path)], check=True)
    for built in sorted(tmp_path.glob("*.csv")):
        assert built.read_bytes() == (REPO_DATA / "raw" / built.name).read_bytes(), built.name
    assert len(list(tmp_path.glob("*.csv"))) == len(list((REPO_DATA / "raw").glob("*.csv")))
