"""The explorer's chart as a Plotly figure specification (plain JSON, drawn by Plotly.js in the page).

Top: the fan chart of the scenario (median, 50/80/95% intervals) over the observed series,
the baseline's median and 80% interval, and red triangles on the years a driver enters
outside its observed range.  Below, one panel per driver: its observed history, the
scenario's path (with the 95% band of an uncertain path), the observed range shaded, and
the path's years outside that range marked.  Everything is read off the tables and the
forecast Dataset; nothing is computed here that the library did not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from nkdefections import constants as C
from nkdefections.scenarios import observed_range

SCENARIO_COLOUR = "#d9731a"
BASELINE_COLOUR = "#4a5a6a"
FLAG_COLOUR = "crimson"
#: Unit of each driver, for the panels' axes.
UNITS = {C.BORDER: "border index", C.ECONOMY: "real GDP growth, %", C.SANCTIONS: "sanctions index"}


def history(data: xr.Dataset) -> dict[str, tuple[list[int], list[float | None]]]:
    """Each driver's observed values over the fit window (economy: the published GDP growth)."""
    first, last = int(data.attrs["first_year"]), int(data.attrs["last_year"])
    win = data.sel({C.YEAR: slice(first, last)})
    years = [int(y) for y in win[C.YEAR].values]
    out = {}
    for d, v in ((C.BORDER, C.BORDER_INDEX), (C.ECONOMY, C.GDP_GROWTH), (C.SANCTIONS, C.SANCTIONS_INDEX)):
        out[d] = (years, [None if np.isnan(x) else float(x) for x in win[v].values])
    return out


def _band(x: list[int], lo: list[float], hi: list[float], colour: str, opacity: float, name: str, **kw: Any) -> dict:
    """A filled band: the upper edge forward, the lower edge back, one closed polygon."""
    return {
        "type": "scatter",
        "x": x + x[::-1],
        "y": list(hi) + list(lo)[::-1],
        "fill": "toself",
        "fillcolor": colour,
        "opacity": opacity,
        "line": {"width": 0},
        "hoverinfo": "skip",
        "name": name,
        **kw,
    }


def _line(x: list, y: list, colour: str, name: str, width: float = 1.5, dash: str = "solid", **kw: Any) -> dict:
    line = {"color": colour, "width": width, "dash": dash}
    return {"type": "scatter", "x": x, "y": y, "mode": "lines", "line": line, "name": name, **kw}


def fan_traces(rows: list[dict[str, Any]], fc: xr.Dataset) -> list[dict]:
    """The fan chart's traces: observed series, the scenario's bands and median, the baseline, flags.

    ``rows``: :meth:`Explorer.comparison` (the library's summary and contrast rows).
    """
    yearly = [r for r in rows if not r["year"].startswith(C.CUMULATIVE)]
    x = [int(r["year"]) for r in yearly]
    col = {k: [r[k] for r in yearly] for k in yearly[0] if k not in ("year", "scenario", "baseline")}
    name, base = yearly[0]["scenario"], yearly[0]["baseline"]
    obs = fc["arrivals_observed"]
    traces: list[dict] = [
        {
            **_line([int(y) for y in obs[C.YEAR].values], [float(v) for v in obs.values], "black", "observed"),
            "mode": "lines+markers",
            "marker": {"size": 5},
        }
    ]
    for level, op in ((95, 0.15), (80, 0.25), (50, 0.4)):
        lo, hi = (col[c] for c in C.interval_columns(level))
        traces.append(_band(x, lo, hi, SCENARIO_COLOUR, op, f"{level}% interval"))
    traces.append(_line(x, col["median"], SCENARIO_COLOUR, f"{name} (median)", width=2.5))
    traces.append(_line(x, col["baseline_median"], BASELINE_COLOUR, f"{base} (median)", dash="dash"))
    traces.append(_line(x, col["baseline_upper_80"], BASELINE_COLOUR, f"{base} (80% upper)", width=1, dash="dot"))
    flagged = [r for r in yearly if r["extrapolated"]]
    if flagged:
        top = max(col["upper_95"]) * 1.03
        traces.append(
            {
                "type": "scatter",
                "x": [int(r["year"]) for r in flagged],
                "y": [top] * len(flagged),
                "mode": "markers",
                "marker": {"symbol": "triangle-up", "color": FLAG_COLOUR, "size": 9},
                "text": [f"{r['extrapolated_drivers']} outside the observed range" for r in flagged],
                "hoverinfo": "x+text",
                "name": "extrapolation (a driver outside its observed range)",
            }
        )
    return traces


def driver_traces(fc: xr.Dataset, hist: dict[str, tuple[list[int], list[float | None]]], name: str) -> list[dict]:
    """Per driver (axes 2-4): history, the scenario's path (95% band if uncertain), flagged years."""
    years = [int(y) for y in fc[C.YEAR_FUTURE].values]
    i = [str(n) for n in fc[C.SCENARIO].values].index(name)
    means, sds = fc["path_mean"].values[i], fc["path_sd"].values[i]
    flags = fc["path_extrapolated"].values[i].astype(bool)
    traces: list[dict] = []
    for k, d in enumerate(C.DRIVERS):
        axes = {"xaxis": f"x{k + 2}", "yaxis": f"y{k + 2}", "showlegend": False}
        mean, sd, flag = means[:, k], sds[:, k], flags[:, k]
        hy, hv = hist[d]
        traces.append(_line(hy, hv, "black", f"{d} observed", **axes))
        if np.any(sd > 0):
            lo, hi = [float(v) for v in mean - 1.96 * sd], [float(v) for v in mean + 1.96 * sd]
            traces.append(_band(years, lo, hi, SCENARIO_COLOUR, 0.2, f"{d} path 95%", **axes))
        path = [hv[-1], *[float(v) for v in mean]]
        traces.append(_line([hy[-1], *years], path, SCENARIO_COLOUR, f"{d} path", width=2, **axes))
        if flag.any():
            traces.append(
                {
                    "type": "scatter",
                    "x": [y for y, f in zip(years, flag, strict=True) if f],
                    "y": [float(v) for v, f in zip(mean, flag, strict=True) if f],
                    "mode": "markers",
                    "marker": {"symbol": "triangle-up", "color": FLAG_COLOUR, "size": 8},
                    "name": f"{d} outside its observed range",
                    **axes,
                }
            )
    return traces


def figure(rows: list[dict[str, Any]], fc: xr.Dataset, data: xr.Dataset, note: str) -> dict[str, Any]:
    """The whole figure: ``{"data": [...], "layout": {...}}`` for ``Plotly.react``.

    ``note``: a provenance line (code version, fit, seed) drawn under the chart, so an
    exported PNG/SVG says what made it.
    """
    name = rows[0]["scenario"]
    first, last = int(data.attrs["first_year"]), int(data.attrs["last_year"])
    rng = observed_range(data)
    layout: dict[str, Any] = {
        "margin": {"l": 60, "r": 20, "t": 80, "b": 60},
        "title": {"text": f"{name}: arrivals in South Korea", "font": {"size": 15}, "x": 0.01, "y": 0.985},
        "xaxis": {"domain": [0, 1], "anchor": "y", "dtick": 2},
        "yaxis": {"domain": [0.42, 1], "title": {"text": "arrivals a year"}, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": 1.01, "yanchor": "bottom", "x": 0, "font": {"size": 10}},
        "shapes": [_divider(last)],
        "annotations": [_text(note, 0, -0.13, size=9, colour="#666")],
        "hovermode": "closest",
    }
    end = int(fc[C.YEAR_FUTURE].values[-1])
    for k, d in enumerate(C.DRIVERS):
        i, x0 = k + 2, k * 0.35
        layout[f"xaxis{i}"] = {"domain": [x0, x0 + 0.30], "anchor": f"y{i}", "dtick": 5}
        layout[f"yaxis{i}"] = {
            "domain": [0, 0.28],
            "anchor": f"x{i}",
            "title": {"text": UNITS[d], "font": {"size": 10}},
        }
        box = {"type": "rect", "xref": f"x{i}", "yref": f"y{i}", "x0": first, "x1": end, "y0": rng[d][0]}
        layout["shapes"].append({**box, "y1": rng[d][1], "fillcolor": "#9ab", "opacity": 0.15, "line": {"width": 0}})
        layout["annotations"].append(_text(f"{d}: shaded = observed {first}-{last} range", x0, 0.31, size=10))
    traces = fan_traces(rows, fc) + driver_traces(fc, history(data), name)
    return {"data": traces, "layout": layout}


def _divider(last: int) -> dict[str, Any]:
    line = {"color": "grey", "dash": "dot", "width": 1}
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": last + 0.5,
        "x1": last + 0.5,
        "y0": 0.42,
        "y1": 1,
        "line": line,
    }


def _text(text: str, x: float, y: float, *, size: int, colour: str = "#222") -> dict[str, Any]:
    font = {"size": size, "color": colour}
    return {
        "text": text,
        "xref": "paper",
        "yref": "paper",
        "x": x,
        "y": y,
        "showarrow": False,
        "xanchor": "left",
        "font": font,
    }
