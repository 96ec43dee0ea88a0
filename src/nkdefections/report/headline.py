"""The report's first screen: the answer before the diagnostics.

A reader who stops after one screen gets three things:

- a table of the scenarios (median and 80% interval in the first forecast year and over the
  cumulative window, P(more arrivals than the baseline), the drivers taken outside their
  observed range);
- one chart of every scenario's median and 80% band over the observed series (drawn by
  :func:`nkdefections.report.plots.scenario_overlay`);
- the three caveats that matter most, worded from this run's own numbers.

Everything here is picked from the tables the forecast layer computed
(:func:`~nkdefections.forecast.compare.summary_table`,
:func:`~nkdefections.forecast.compare.contrasts`); nothing is recomputed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nkdefections import constants as C

Block = tuple[str, Any]

#: The text of a table cell for "no driver outside its observed range".
NOT_EXTRAPOLATED = "—"


def _is_cumulative(year: pd.Series) -> pd.Series:
    return year.astype(str).str.startswith(C.CUMULATIVE)


def _drivers(*names: str) -> str:
    """``"border, sanctions"`` from ``"border,sanctions"`` strings (empty ones ignored), in driver order."""
    got = {n for s in names if isinstance(s, str) for n in s.split(",") if n}
    order = [d for d in C.DRIVERS if d in got] + sorted(got - set(C.DRIVERS))
    return ", ".join(order)


def headline_numbers(summary: pd.DataFrame, contrasts: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario: the numbers of the headline table, unformatted.

    Parameters
    ----------
    summary
        :func:`~nkdefections.forecast.compare.summary_table` of the forecast.
    contrasts
        :func:`~nkdefections.forecast.compare.contrasts` of the forecast (may be empty).

    Returns
    -------
    pandas.DataFrame
        ``scenario``; ``first_year`` (the first forecast year's label) with ``first_median``,
        ``first_lower_80``, ``first_upper_80``; ``cumulative`` (the window's label) with
        ``cumulative_median``, ``cumulative_lower_80``, ``cumulative_upper_80``; ``baseline``
        (the scenario it is compared against, ``""`` if none; the scenario's own name if it is
        a baseline) and ``prob_greater`` (P(cumulative arrivals > the baseline's), draw by draw;
        NaN for a baseline); ``extrapolated_drivers`` (drivers outside their observed range in
        the first year or the cumulative window, ``""`` if none).
    """
    cum = summary[_is_cumulative(summary["year"])].set_index("scenario")
    per_year = summary[~_is_cumulative(summary["year"])]
    first_label = str(per_year["year"].iloc[0])
    first = per_year[per_year["year"] == first_label].set_index("scenario")
    if len(contrasts):
        ccum = contrasts[_is_cumulative(contrasts["year"])].drop_duplicates("scenario").set_index("scenario")
    else:
        ccum = pd.DataFrame(columns=["baseline", "prob_greater"])
    baselines = set(ccum["baseline"])
    rows = []
    for name in cum.index:
        f, c = first.loc[name], cum.loc[name]
        if name in ccum.index:
            base, prob = str(ccum.loc[name, "baseline"]), float(ccum.loc[name, "prob_greater"])
        else:
            base, prob = (name if name in baselines else ""), float("nan")
        rows.append(
            {
                "scenario": name,
                "first_year": first_label,
                "first_median": float(f["median"]),
                "first_lower_80": float(f["lower_80"]),
                "first_upper_80": float(f["upper_80"]),
                "cumulative": str(c["year"]),
                "cumulative_median": float(c["median"]),
                "cumulative_lower_80": float(c["lower_80"]),
                "cumulative_upper_80": float(c["upper_80"]),
                "baseline": base,
                "prob_greater": prob,
                "extrapolated_drivers": _drivers(f["extrapolated_drivers"], c["extrapolated_drivers"]),
            }
        )
    return pd.DataFrame(rows)


def count(x: float) -> str:
    """``21,448``: a count of arrivals as the tables show it."""
    return f"{x:,.0f}"


def probability(p: float) -> str:
    """``0.85``; ``> 0.99`` and ``< 0.01`` at the ends (a few thousand draws do not resolve more)."""
    if p > 0.99:
        return "> 0.99"
    if p < 0.01:
        return "< 0.01"
    return f"{p:.2f}"


def _window_label(label: str) -> str:
    """``2017-2030`` from ``cumulative 2017-2030``."""
    return label.removeprefix(C.CUMULATIVE).strip()


def headline_table(numbers: pd.DataFrame) -> pd.DataFrame:
    """The headline table as the report shows it (formatted strings, one row per scenario).

    Medians and 80% intervals of the first forecast year and of the total over the cumulative
    window; P(the total exceeds the baseline's), draw by draw; the drivers outside their range.
    """
    first = str(numbers["first_year"].iloc[0])
    window = _window_label(str(numbers["cumulative"].iloc[0]))
    bases = sorted({b for b, s in zip(numbers["baseline"], numbers["scenario"], strict=True) if b and b != s})
    p_head = f"P(total > {bases[0]})" if len(bases) == 1 else "P(total > its baseline)"
    p_cells = []
    for r in numbers.itertuples():
        if r.baseline == r.scenario:
            p_cells.append("baseline")
        elif r.baseline:
            p_cells.append(probability(r.prob_greater) + ("" if len(bases) == 1 else f" vs {r.baseline}"))
        else:
            p_cells.append(NOT_EXTRAPOLATED)
    return pd.DataFrame(
        {
            "scenario": numbers["scenario"],
            f"{first} median": numbers["first_median"].map(count),
            f"{first} 80%": [
                f"{count(a)}–{count(b)}"
                for a, b in zip(numbers["first_lower_80"], numbers["first_upper_80"], strict=True)
            ],
            f"total {window}": numbers["cumulative_median"].map(count),
            "total 80%": [
                f"{count(a)}–{count(b)}"
                for a, b in zip(numbers["cumulative_lower_80"], numbers["cumulative_upper_80"], strict=True)
            ],
            p_head: p_cells,
            "extrapolated": [d or NOT_EXTRAPOLATED for d in numbers["extrapolated_drivers"]],
        }
    )


def _reference_row(numbers: pd.DataFrame, baseline: str | None) -> pd.Series:
    """The baseline's row if it is in the table, else the first scenario's."""
    rows = numbers[numbers["scenario"] == baseline] if baseline else numbers.iloc[:0]
    return (rows if len(rows) else numbers).iloc[0]


def identification_notes(drivers: pd.DataFrame) -> list[str]:
    """What the border and sanctions effects are identified from, read off the fitted years' driver values.

    ``drivers``: :func:`~nkdefections.data.load.drivers_frame` over the fitted window.
    """
    notes = []
    years = drivers[C.YEAR].to_numpy(dtype=int)
    if C.BORDER_INDEX in drivers and len(years) > 1:
        x = drivers[C.BORDER_INDEX].to_numpy(dtype=float)
        moved = np.flatnonzero(x != x[0])
        if len(moved):
            start = int(years[moved[0]])
            notes.append(f"the border index moves only from {start}, so its effect rests on one episode")
    if C.SANCTIONS_INDEX in drivers and len(years) > 2:
        x = drivers[C.SANCTIONS_INDEX].to_numpy(dtype=float)
        if np.std(x) > 0:
            r = float(np.corrcoef(years, x)[0, 1])
            notes.append(
                f"the sanctions index tracks time (r = {r:.2f} with the year), "
                "so its effect is partly confounded with the trend"
            )
    return notes


def headline_caveats(
    numbers: pd.DataFrame, meta: dict[str, Any], drivers: pd.DataFrame, baseline: str | None = None
) -> list[str]:
    """The three caveats that matter most, from this run: data size, extrapolation, the fit.

    ``meta``: the run's ``run.json`` content (``window``, ``convergence``).  A fit that failed
    its gate puts that caveat first.
    """
    first, last = (int(y) for y in meta["window"])
    span, n_obs = f"{first}-{last}", last - first + 1
    ref = _reference_row(numbers, baseline)
    window = _window_label(str(ref["cumulative"]))
    lo, hi = float(ref["cumulative_lower_80"]), float(ref["cumulative_upper_80"])
    size = (
        f"{n_obs} yearly observations ({span}), so the intervals are wide: under {ref['scenario']}, "
        f"{count(lo)} to {count(hi)} arrivals in {window} (80%)."
    )
    n_ext = int((numbers["extrapolated_drivers"] != "").sum())
    if n_ext:
        extrapolation = (
            f"{n_ext} of {len(numbers)} scenarios take a driver outside its {span} range (flagged in the "
            "table, dashed in the chart): the model has no data there, so the fitted effect is extended and "
            "the forecast widens with the distance."
        )
    else:
        extrapolation = f"No scenario takes a driver outside its {span} range."
    conv = meta.get("convergence", {})
    fit_numbers = f"max R-hat {conv.get('max_rhat', float('nan')):.3f}, {conv.get('divergences', '?')} divergences"
    if conv.get("passed"):
        gate = f"The fit passed its convergence gate ({fit_numbers})."
    else:
        gate = f"The fit FAILED its convergence gate ({fit_numbers}; not enforced): do not rely on these numbers."
    notes = identification_notes(drivers)
    fit = f"{gate} The effects are associations" + (": " + "; ".join(notes) + "." if notes else ", not causal.")
    return [size, extrapolation, fit] if conv.get("passed") else [fit, size, extrapolation]


def headline_blocks(
    numbers: pd.DataFrame,
    meta: dict[str, Any],
    drivers: pd.DataFrame,
    figure: Path | None,
    *,
    baseline: str | None = None,
) -> list[Block]:
    """The first screen: title, one line of context, the table, the overlay chart and the caveats."""
    first, last = (int(y) for y in meta["window"])
    conv = meta.get("convergence", {})
    draws = f"{conv['chains'] * conv['draws']:,} posterior draws" if "chains" in conv and "draws" in conv else ""
    lead = (
        f"Yearly arrivals of North Korean defectors in South Korea: fitted to {first}-{last} "
        f"({last - first + 1} observations), forecast {meta.get('horizon', '')} under {len(numbers)} "
        f"scenario{'s' if len(numbers) != 1 else ''} from one posterior"
        + (f" ({draws}, common random numbers)" if draws else "")
        + ". The fit diagnostics and the details follow below."
    )
    chart: list[Block] = []
    if figure is not None:
        chart = [("img", (figure, "every scenario: median and 80% interval, over the observed series"))]
    caveats = [("h3", "Read with care"), ("ul", headline_caveats(numbers, meta, drivers, baseline))]
    return [
        ("h1", "nkdefections run report"),
        (
            "div",
            (
                "headline",
                [
                    ("p", lead),
                    ("table", headline_table(numbers)),
                    ("div", ("columns", [("div", ("chart", chart)), ("div", ("caveats", caveats))])),
                ],
            ),
        ),
    ]
