"""Build the project's ``data/raw/`` files from the checked reference figures.

This script documents, in code, how every project data file was derived from
``../shared/reference-data/`` (the checked figures with their sources).  It is
run once by a maintainer, never at model run time; its output is committed and
pinned by ``data/manifest.json``.  Re-run it only when the reference data change,
then refresh the manifest with ``nkdefections-data manifest --update``.

Rules applied here:

* No observation after 2016 is copied (the forecasts for 2017 onward are
  pre-registered).
* Every row keeps its source and status; nothing is filled in.  Values that the
  reference marks as missing stay empty; their treatment is the model's job.
* The coding columns (``increment`` of a border event, ``weight`` of a sanctions
  measure, ``effective_date``) are the project's documented judgements; the rule
  is in ``data/README.md``.

Usage::

    python scripts/build_data.py ../shared/reference-data data/raw
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

LAST_YEAR = 2016

# Border-enforcement coding (see data/README.md, "Border enforcement index").
# One unit = the whole 2011-12 Kim Jong-un tightening; each event carries the
# share of it that we attribute to that event.  Dates given only to the month
# are coded on the 1st; dates given only to the year at mid-year (07-01);
# "late <year>" on 10-01.
BORDER_CODING = {
    "2011-07/08": ("2011-08-01", 0.25, "first CCTV/wire build-up; month range coded at its later month"),
    "2011-12-17": ("2011-12-17", 0.50, "succession crackdown: shoot-to-kill orders, collective punishment"),
    "2011-12-30": ("2011-12-30", 0.00, "political event, no enforcement change of its own (context row)"),
    "2012-02": ("2012-02-01", 0.00, "China's cooperation on repatriation: context row, not coded as NK enforcement"),
    "2012-04-11": ("2012-04-11", 0.00, "political event, no enforcement change of its own (context row)"),
    "2012": ("2012-07-01", 0.25, "Tumen fencing, phone monitoring: year-only date coded at mid-year"),
    "2015": ("2015-10-01", 0.25, "Chinese-side fence (2015) and high-tension wires (late 2015): coded at 10-01"),
}

# Sanctions coding (see data/README.md, "Sanctions intensity index").
# weight: 1 = a binding UNSC sanctions resolution of the 1718/1874 kind.
SANCTIONS_WEIGHTS = {
    "Res 825": (0.0, "call to reconsider NPT withdrawal; no sanctions"),
    "Res 1695": (0.5, "non-binding missile measures"),
    "Res 1718": (1.0, "first binding UN sanctions regime"),
    "Res 1874": (1.0, "arms embargo, cargo inspection"),
    "Res 2087": (0.5, "extends listings; few new measures"),
    "Res 2094": (1.0, "financial measures"),
    "Res 2270": (2.0, "sectoral: mineral exports, cargo inspection of all NK cargo; widest to date"),
    "Res 2321": (1.0, "coal export cap; content not verified in the reference corpus"),
    "Kumgang tourism halted": (0.5, "loss of one hard-currency source"),
    "May 24 measures": (1.0, "inter-Korean trade halt except Kaesong"),
    "Kaesong Industrial Complex fully suspended": (1.0, "loss of ~50,000 jobs' wages"),
}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _year_ok(y: str) -> bool:
    return y.isdigit() and int(y) <= LAST_YEAR


def main(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)

    rows = _read(src / "arrivals_annual.csv")
    out = []
    stock = []
    for r in rows:
        if r["year"].startswith("<=1998"):
            stock.append([1998, r["total"], r["male"], r["female"], r["status"], r["source"], r["notes"]])
            continue
        if not _year_ok(r["year"]):
            continue
        out.append([r["year"], r["total"], r["male"], r["female"], r["status"], r["source"], r["notes"]])
    _write(dst / "arrivals_annual.csv", ["year", "arrivals", "male", "female", "status", "source", "notes"], out)
    _write(
        dst / "arrivals_stock_pre1999.csv",
        ["through_year", "arrivals", "male", "female", "status", "source", "notes"],
        stock,
    )

    period_map = {
        "H1 (Jan-Jun)": (1, 6),
        "H1": (1, 6),
        "Jan-Feb": (1, 2),
        "Jan-Sep": (1, 9),
        "Jan-Sep15": (1, 9),
        "Jan-Nov": (1, 11),
        "Jan-Apr17": (1, 4),
        "Q1": (1, 3),
        "Jan-Jul": (1, 7),
        "Jan-Apr": (1, 4),
        "Jan-May": (1, 5),
    }
    part = []
    for r in _read(src / "arrivals_partial_year.csv"):
        if not _year_ok(r["year"]):
            continue
        m0, m1 = period_map[r["period"]]
        partial_month = "yes" if r["period"] in {"Jan-Sep15", "Jan-Apr17"} else "no"
        part.append(
            [r["year"], r["period"], m0, m1, partial_month, r["total"], r["male"], r["female"], r["source"], r["notes"]]
        )
    _write(
        dst / "arrivals_partial_year.csv",
        [
            "year",
            "period",
            "month_start",
            "month_end",
            "ends_mid_month",
            "arrivals",
            "male",
            "female",
            "source",
            "notes",
        ],
        part,
    )

    gdp = []
    for r in _read(src / "gdp_growth_bok.csv"):
        if not _year_ok(r["year"]):
            continue
        latest, first = r["latest_vintage_pct"], r["first_release_pct"]
        if latest:
            value, vintage = latest, "latest"
        elif first:
            value, vintage = first, "first_release"
        else:
            value, vintage = "", "none"
        # 2005: no value, but the MOU 2006 assessment calls it the 7th straight year of growth.
        sign = "+" if r["year"] == "2005" else ""
        gdp.append([r["year"], value, vintage, first, sign, r["status"], r["source"]])
    _write(
        dst / "gdp_growth_bok.csv",
        ["year", "growth_pct", "vintage", "first_release_pct", "known_sign", "status", "source"],
        gdp,
    )

    grain = [
        [r["year"], r["million_tonnes"], r["estimator"], r["source"], r["notes"]]
        for r in _read(src / "grain_production_rda.csv")
        if _year_ok(r["year"])
    ]
    _write(dst / "grain_production_rda.csv", ["year", "million_tonnes", "estimator", "source", "notes"], grain)

    trade = [
        [r["year"], r["usd_billion"], r["basis"], r["source"], r["notes"]]
        for r in _read(src / "china_nk_trade.csv")
        if _year_ok(r["year"])
    ]
    _write(dst / "china_nk_trade.csv", ["year", "usd_billion", "basis", "source", "notes"], trade)

    border = []
    for r in _read(src / "border_events.csv"):
        eff, inc, why = BORDER_CODING[r["date"]]
        border.append([r["date"], eff, inc, r["actor"], r["event"], r["source"], why])
    _write(
        dst / "border_events.csv",
        ["date_reported", "effective_date", "increment", "actor", "event", "source", "coding_note"],
        border,
    )

    sanc = []
    for r in _read(src / "sanctions_events.csv"):
        w, why = SANCTIONS_WEIGHTS[r["measure"]]
        if int(r["date"][:4]) > LAST_YEAR:
            continue
        sanc.append([r["date"], w, r["actor"], r["measure"], r["description"], r["source"], why])
    sanc.sort(key=lambda x: x[0])
    _write(
        dst / "sanctions_events.csv",
        ["effective_date", "weight", "actor", "measure", "description", "source", "coding_note"],
        sanc,
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
