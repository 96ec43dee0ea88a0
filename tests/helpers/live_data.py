"""A synthetic extension of the shipped data past 2016, for the live-mode tests.

No post-2016 figure is shipped in the repository: the years after 2016 get made-up values
(arrivals drawn from a fixed seed around the 2012-2016 level, growth 0.5%), marked
``synthetic (test)`` in every row, and the event codings are the shipped ones with one
made-up border event in 2018.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

REPO_DATA = Path(__file__).resolve().parents[2] / "data" / "raw"
#: The source column of every made-up row.
SOURCE = "tests/helpers/live_data.py"


def _rows(name: str) -> list[list[str]]:
    with (REPO_DATA / name).open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def write_live_files(
    folder: Path,
    last_year: int = 2020,
    *,
    seed: int = 0,
    arrivals: dict[int, int] | None = None,
    border_open: dict[int, float] | None = None,
    border_event: bool = True,
) -> dict[str, str]:
    """Write the four live-mode inputs (and ``border_open`` if given) into ``folder``.

    Returns the ``data.files`` mapping (role -> path).  ``arrivals`` replaces the made-up counts of
    the years it names; ``border_event=False`` leaves out the made-up 2018 border event.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    later = range(2017, last_year + 1)
    counts = {y: int(rng.poisson(1300)) for y in later}
    counts.update(arrivals or {})
    arr = _rows("arrivals_annual.csv")
    arr += [[str(y), str(counts[y]), "", "", "synthetic (test)", SOURCE, ""] for y in later]
    gdp = _rows("gdp_growth_bok.csv")
    gdp += [[str(y), "0.5", "latest", "0.5", "", "synthetic (test)", SOURCE] for y in later]
    border = _rows("border_events.csv")
    if border_event and last_year >= 2018:
        border.append(
            ["2018-03", "2018-03-01", "0.25", "NK", "made-up tightening", SOURCE, "synthetic (test)"]
        )
    files = {
        "arrivals": str(_write(folder / "arrivals.csv", arr)),
        "gdp": str(_write(folder / "gdp.csv", gdp)),
        "border_events": str(_write(folder / "border_events.csv", border)),
        "sanctions_events": str(_write(folder / "sanctions_events.csv", _rows("sanctions_events.csv"))),
    }
    if border_open is not None:
        rows = [["year", "open_fraction", "source", "notes"]]
        rows += [
            [str(y), repr(float(v)), SOURCE, "synthetic (test)"] for y, v in sorted(border_open.items())
        ]
        files["border_open"] = str(_write(folder / "border_open.csv", rows))
    return files
