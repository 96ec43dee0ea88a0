"""Reports: one content model (a list of blocks) rendered as markdown and as
self-contained HTML (figures embedded), so both always say the same thing."""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nkdefections import constants as C
from nkdefections.config import DataConfig
from nkdefections.model.diagnostics import ConvergenceReport
from nkdefections.validate import is_real

Block = tuple[str, Any]  # ("h1"|"h2"|"h3"|"p"|"ul"|"table"|"img"|"div", payload)
# "div": (css class, [blocks]): a group the HTML lays out (the first screen's columns); markdown
# renders its blocks one after another.


def markdown_table(df: pd.DataFrame, floatfmt: str = "{:.3g}") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [floatfmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def splice(text: str, name: str, body: str, *, required: bool = True) -> str:
    """Replace what lies between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in ``text``.

    How generated tables reach the READMEs without hand-typed numbers.  Missing markers
    raise ``ValueError`` (or, with ``required=False``, leave ``text`` unchanged).
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        if required:
            raise ValueError(f"markers {start} ... {end} not found; add them where the generated text belongs.")
        return text
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{body.strip()}\n{end}{rest.split(end, 1)[1]}"


def render_markdown(blocks: Sequence[Block]) -> str:
    out = []
    for kind, payload in blocks:
        if kind == "div":
            out.append(render_markdown(payload[1]).rstrip("\n") + "\n")
            continue
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + payload)
        elif kind == "p":
            out.append(payload)
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in payload))
        elif kind == "table":
            df, fmt = payload if isinstance(payload, tuple) else (payload, "{:.3g}")
            out.append(markdown_table(df, fmt))
        elif kind == "img":
            path, alt = payload
            out.append(f"![{alt}]({Path(path).name})")
        out.append("")
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0 1.2em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left}th{background:#f3f3f3}
td.num{text-align:right}
img{max-width:100%;border:1px solid #eee}
code{background:#f6f6f6;padding:0 3px}
.flag{color:#b00020;font-weight:600}
h1{margin:0 0 0.3em;font-size:1.8em}
.headline>p{margin:0 0 0.4em}
.headline table{margin:0.3em 0 0.6em}
.headline th{white-space:nowrap}
.columns{display:flex;gap:1.2em;align-items:flex-start}
.columns>.chart{flex:0 0 66%}
.columns figure{margin:0}
.columns figcaption{font-size:0.8em;color:#555}
.caveats h3{margin:0 0 0.3em}
.caveats ul{margin:0;padding-left:1.1em;font-size:0.88em}
.caveats li{margin-bottom:0.4em}
"""


def _inline(text: str) -> str:
    """Escape, then render `code` spans (the only inline markdown the reports use)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


#: Text cells that read as numbers (``21,448``, ``15,796–29,700``, ``> 0.99``): right-aligned like numbers.
_NUMBER_TEXT = re.compile(r"[<>]? ?[-+]?[\d,.]+%?(–[-+]?[\d,.]+%?)?")


def _html_table(df: pd.DataFrame, fmt: str) -> str:
    """A table; extrapolation flags (``True`` in a table with an ``extrapolated`` column, or the
    driver names in an ``extrapolated`` column) in the flag style, numbers right-aligned."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for row in df.itertuples(index=False):
        cells = []
        for col, v in zip(df.columns, row, strict=True):
            text = fmt.format(v) if isinstance(v, float) else str(v)
            named = col == "extrapolated" and isinstance(v, str) and v not in ("", "—")
            flag = (v is True and "extrapolated" in df.columns) or named
            num = is_real(v) or (isinstance(v, str) and _NUMBER_TEXT.fullmatch(v) is not None)
            cls = ' class="flag"' if flag else (' class="num"' if num else "")
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _html_body(blocks: Sequence[Block]) -> list[str]:
    body = []
    for kind, payload in blocks:
        if kind == "div":
            css, children = payload
            body.append(f'<div class="{html.escape(css)}">' + "\n".join(_html_body(children)) + "</div>")
        elif kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline(payload)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(payload)}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in payload) + "</ul>")
        elif kind == "table":
            df, fmt = payload if isinstance(payload, tuple) else (payload, "{:.3g}")
            body.append(_html_table(df, fmt))
        elif kind == "img":
            path, alt = payload
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"/>'
                f"<figcaption>{html.escape(alt)}</figcaption></figure>"
            )
    return body


def render_html(blocks: Sequence[Block], title: str) -> str:
    body = _html_body(blocks)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


# ----------------------------------------------------------------------------- content


def effects_markdown(effects: pd.DataFrame) -> str:
    """The driver-effects table as markdown (used by the report and the README)."""
    return markdown_table(effects_table(effects))


def effects_table(effects: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver": effects["driver"],
            "unit": effects["unit"],
            "lag (years)": effects["lag_years"],
            "median % change": [f"{v:+.1f}%" for v in effects["median_pct"]],
            **({"MC s.e.": [f"{v:.1f}" for v in effects["mcse_median_pct"]]} if "mcse_median_pct" in effects else {}),
            "90% interval": [
                f"{a:+.1f}% to {b:+.1f}%" for a, b in zip(effects["q05_pct"], effects["q95_pct"], strict=True)
            ],
            "P(effect > 0)": [f"{v:.2f}" for v in effects["prob_positive"]],
        }
    )


#: The default data window (first, last fitted year), from :class:`~nkdefections.config.DataConfig`.
DEFAULT_WINDOW: tuple[int, int] = (DataConfig().first_year, DataConfig().last_year)


def _window_text(window: tuple[int, int]) -> tuple[str, int]:
    """``("1999-2016", 18)`` for the window (1999, 2016)."""
    first, last = int(window[0]), int(window[1])
    return f"{first}-{last}", last - first + 1


def header_blocks(meta: dict[str, Any], n_years: int, *, title: bool = True) -> list[Block]:
    """What made the run (window, model, fit id, sampler), under the report's title or, when
    the first screen (:func:`nkdefections.report.headline.headline_blocks`) holds the title,
    under its own heading."""
    m = meta["model_config"]
    s = meta["sampler_config"]
    return [
        ("h1", "nkdefections run report") if title else ("h2", "This run"),
        (
            "ul",
            [
                f"window: {meta['window'][0]}-{meta['window'][1]} ({n_years} yearly observations)",
                f"model: `{m['name']}` (likelihood {m['likelihood']}, latent {m['latent']}, "
                f"{m['parameterization']}; lags {m['lags']})",
                f"fit id `{meta['fit_id']}` (cache hit: {meta['cache_hit']}), data hash `{meta['data_hash']}`, "
                f"code {meta['code_version']}",
                f"sampler: {s['name']}, {s['chains']} chains x {s['draws']} draws "
                f"(+{s['tune']} tuning), seed {s['seed']}",
            ],
        ),
    ]


def fit_blocks(
    *,
    effects: pd.DataFrame,
    summary: pd.DataFrame,
    convergence: ConvergenceReport,
    coverage_table: pd.DataFrame | None,
    shapes: pd.DataFrame | None,
    prior_table: pd.DataFrame | None,
    figures: dict[str, Path],
    window: tuple[int, int] = DEFAULT_WINDOW,
) -> list[Block]:
    """Driver effects, convergence, parameters and predictive checks; ``window`` is the fitted (first, last) year."""
    span, n_obs = _window_text(window)
    cv = convergence.summary_row()
    blocks: list[Block] = [
        ("h2", "Driver effects"),
        (
            "p",
            "Posterior % change in expected arrivals per unit of each driver (median and 90% equal-tailed interval):",
        ),
        ("table", effects_table(effects)) if len(effects) else ("p", "(no drivers in this model)"),
        (
            "p",
            f"With {n_obs} yearly observations these effects are weakly identified: the border effect is "
            "informed essentially by one event (the 2011-12 tightening and the 2012 drop) and is "
            "sensitive to the latent dynamics assumed; the sanctions index rises almost monotonically "
            "with time and is partly confounded with the latent dynamics; the economy effect rests on "
            "noisy GDP estimates. Read the intervals, not the medians.",
        ),
        ("h2", "Convergence gate"),
        (
            "p",
            f"{'PASSED' if convergence.passed else 'FAILED (gate relaxed by the user)'}: max R-hat "
            f"{cv['max_rhat']:.4f} (limit {convergence.gate.rhat_max}), min bulk ESS {cv['min_ess_bulk']:.0f}, "
            f"min tail ESS {cv['min_ess_tail']:.0f} (limits {convergence.gate.ess_bulk_min:g}/"
            f"{convergence.gate.ess_tail_min:g}), divergences {cv['divergences']}. Per-parameter values: "
            f"`{C.DIAGNOSTICS_FILE}`.",
        ),
    ]
    if not convergence.passed:
        blocks.append(("ul", list(convergence.failures)))
    blocks += [
        ("h2", "Parameters"),
        ("table", summary[["parameter", "mean", "sd", "median", "lower", "upper"]]),
        ("p", "(lower/upper: 90% equal-tailed interval)"),
    ]
    if prior_table is not None:
        blocks += [
            ("h2", "Prior predictive check"),
            ("img", (figures["prior"], "prior predictive: arrivals implied by the priors alone")),
            (
                "p",
                f"{float(prior_table['inside_90'].mean()):.0%} of the observed years fall inside the prior "
                "predictive 90% interval: the priors allow the observed range without forcing it. (The "
                "soft known-sign constraint on 2005 GDP growth is not applied to prior draws.)",
            ),
        ]
    if coverage_table is not None and shapes is not None:
        blocks += _posterior_check_blocks(coverage_table, shapes, figures, span)
    return blocks


def _posterior_check_blocks(
    coverage_table: pd.DataFrame, shapes: pd.DataFrame, figures: dict[str, Path], span: str
) -> list[Block]:
    """The posterior predictive check: figure, coverage, one-step check and the series' shape checks."""
    return [
        ("h2", "Posterior predictive check"),
        ("img", (figures["posterior"], f"posterior predictive check, {span}")),
        (
            "p",
            "Interval coverage over the fitted years. `empirical`: the in-sample posterior predictive, "
            "which conditions on each year's own latent state and so nearly interpolates the data "
            "(coverage near 100% is expected and is no evidence of skill). `one_step_empirical`: the "
            "one-step-ahead check, where each year's latent state is redrawn from its dynamics given "
            "the year before (figure below, table `one_step_check.csv`). The states and parameters are "
            "smoothed (they have seen the whole series), so it over-covers by construction: a check of the "
            "dynamics, not of calibration. The calibration evidence is the rolling-origin backtest "
            "(`nkdefections-evidence backtest`: leave-future-out refits, PIT and coverage).",
        ),
        ("table", (coverage_table, "{:.2f}")),
        ("img", (figures["one_step"], "one-step-ahead predictive check")),
        ("p", "Does the fit reproduce the known shape of the series?"),
        (
            "table",
            (
                shapes[
                    [
                        "check",
                        "description",
                        "observed",
                        "replicated_median",
                        "replicated_lower_90",
                        "replicated_upper_90",
                        "reproduced",
                    ]
                ],
                "{:.4g}",
            ),
        ),
    ]


def forecast_blocks(
    *,
    scenarios: Sequence[Any],
    summary: pd.DataFrame,
    contrasts: pd.DataFrame,
    exceedance: pd.DataFrame,
    attribution: pd.DataFrame,
    extrapolation: pd.DataFrame,
    figures: dict[str, Path],
    horizon: str,
    window: tuple[int, int] = DEFAULT_WINDOW,
    closure: str | None = None,
    by_sex: pd.DataFrame | None = None,
    share_effects: pd.DataFrame | None = None,
) -> list[Block]:
    """Scenario assumptions, forecasts, contrasts and warnings; ``window`` is the fitted (first, last) year,
    ``closure`` the line on the closure elasticity (:func:`~nkdefections.report.extras.closure_note`), if
    any, and ``by_sex`` the by-sex table (:func:`~nkdefections.forecast.compare.summary_by_sex`)."""
    from nkdefections.report.extras import sex_blocks
    span, n_obs = _window_text(window)
    assumptions = pd.DataFrame(
        [
            {
                "scenario": s.name,
                "version": s.version,
                "description": s.description,
                "path specs": json.dumps(s.to_dict()["drivers"], sort_keys=True),
            }
            for s in scenarios
        ]
    )
    cum = summary[summary["year"].str.startswith("cumulative")][
        ["scenario", "year", "median", "lower_50", "upper_50", "lower_95", "upper_95", "extrapolated"]
    ]
    if len(extrapolation):
        extrapolation = _extrapolation_table(extrapolation, span)
    blocks: list[Block] = [
        ("h2", f"Scenario forecasts {horizon}"),
        (
            "p",
            "All scenarios are forecast from the same posterior draws with common random numbers (the "
            "same latent innovations, path-uncertainty draws and count uniforms), so the differences "
            "below come from the assumptions, not from Monte Carlo noise. Intervals include parameter "
            "uncertainty, the latent dynamics carried forward, and count noise.",
        ),
        ("h3", "Assumptions"),
        ("table", assumptions),
        (
            "p",
            "Reasoning behind each scenario: the `reasoning` field of its file in `configs/scenario/`, "
            "recorded in `forecast.nc`'s attributes.",
        ),
        ("h3", "Cumulative arrivals"),
        ("table", (cum, "{:.0f}")),
    ]
    if by_sex is not None and len(by_sex):
        blocks += sex_blocks(by_sex, share_effects)
    for name, path in figures.items():
        if name.startswith("fan_"):
            blocks.append(("img", (path, f"forecast fan chart: {name[4:]}")))
    blocks += _contrast_blocks(contrasts, attribution, figures)
    if len(exceedance):
        blocks += [("h3", "Exceedance probabilities"), ("table", (exceedance, "{:.3g}"))]
    blocks += [("h3", "Extrapolation warnings")]
    if len(extrapolation):
        blocks += [
            (
                "p",
                "In these scenario-years a driver enters the forecast (with its lag) outside the range "
                f"observed in {span} (for an uncertain path: its central 95% does). The model has no data "
                "there: its forecast there is the log-linear effect extended beyond the evidence. Treat those "
                "numbers as illustrations, not estimates. Per year: `extrapolation.csv`; in the figures: red "
                "triangles.",
            ),
            ("table", (extrapolation, "{:.3g}")),
        ]
    else:
        blocks.append(("p", f"No scenario takes a driver outside its {span} range."))
    return blocks + _caveats(n_obs, window, closure)


def _contrast_blocks(contrasts: pd.DataFrame, attribution: pd.DataFrame, figures: dict[str, Path]) -> list[Block]:
    """Contrasts and their attribution to the drivers over the cumulative window (zero contributions dropped)."""
    if not len(contrasts):
        return [("p", "One scenario only: no contrasts (select two or more to compare them).")]
    cols = ["scenario", "baseline", "year", "median_difference", "lower_90", "upper_90", "prob_greater"]
    cum_c = contrasts[contrasts["year"].str.startswith("cumulative")][[*cols, "extrapolated"]]
    attr = attribution[attribution["year"].str.startswith("cumulative")][
        ["scenario", "baseline", "driver", "median_contribution", "lower_90", "upper_90"]
    ]
    # drivers whose path is the same in both scenarios contribute exactly zero: not shown
    attr = attr[(attr[["median_contribution", "lower_90", "upper_90"]].abs() > 0).any(axis=1)]
    return [
        ("h3", "Contrasts"),
        ("p", "Difference A - baseline, draw by draw: median, 90% interval and P(A > baseline)."),
        ("table", (cum_c, "{:.3g}")),
        ("img", (figures["contrast"], "differences to the baseline")),
        ("h3", "Attribution of each gap to the drivers"),
        (
            "p",
            "Each draw's gap in expected arrivals is split among the drivers in proportion to their "
            "exact log-scale contributions beta_d * (x_A,d - x_B,d); the parts add up to the gap. Drivers "
            "with the same path in both scenarios contribute exactly zero and are omitted "
            "(`attribution.csv` has every row, per year).",
        ),
        ("table", (attr, "{:.0f}")),
    ]


def _extrapolation_table(extrapolation: pd.DataFrame, span: str) -> pd.DataFrame:
    """One row per scenario and driver: the years, values and spread outside the observed range."""
    g = extrapolation.groupby([C.SCENARIO, C.DRIVER], sort=False)
    return pd.DataFrame(
        {
            "years": g[C.YEAR_FUTURE].agg(lambda y: f"{y.min()}-{y.max()}" if y.min() != y.max() else str(y.min())),
            "value entering arrivals (mean)": g["path_mean"].agg(lambda v: f"{v.min():.3g} to {v.max():.3g}"),
            "sd across draws": g["path_sd"].max(),
            f"observed {span}": g.apply(
                lambda d: f"{d['observed_min'].iloc[0]:.3g} to {d['observed_max'].iloc[0]:.3g}",
                include_groups=False,
            ),
        }
    ).reset_index()


def _caveats(n_obs: int, window: tuple[int, int] = DEFAULT_WINDOW, closure: str | None = None) -> list[Block]:
    from nkdefections.report.extras import window_note

    return [
        ("h3", "Caveats"),
        (
            "ul",
            [
                f"{n_obs} yearly observations: driver effects are weakly identified and partly confounded with the "
                "latent dynamics; the border effect rests on one episode (2011-12) and shrinks under a "
                "random-walk latent (see `experiments/model_choice`).",
                "The effects are associations under the project's coding of the drivers, not causal effects.",
                window_note(window),
                "Scenario paths are assumptions; their uncertainty enters only where a spec gives `sd`.",
                *([closure] if closure else []),
            ],
        ),
    ]


def write_reports(out_dir: Path, blocks: list[Block], title: str = "nkdefections run report") -> None:
    (out_dir / C.REPORT_FILE).write_text(render_markdown(blocks), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(blocks, title), encoding="utf-8")
