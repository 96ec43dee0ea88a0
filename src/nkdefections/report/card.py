"""Render the model card (markdown) from the outputs of :func:`nkdefections.evidence.build_card`.

Every number in the card is read from the step outputs it cites; the prose around
them is fixed text about intended use, data and assumptions, and sentences whose
conclusion depends on a result are generated from that result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nkdefections import constants as C
from nkdefections.config import DataConfig
from nkdefections.report.blocks import markdown_table
from nkdefections.report.extras import window_note


def _fmt(df: pd.DataFrame, digits: int = 3) -> str:
    return markdown_table(df.round(digits), "{:.4g}")


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def _verdict(r: Any) -> str:
    """Per-horizon reading of a CRPS ratio with its bootstrap interval."""
    if r.crps_ratio_upper < 1:
        return "better"
    if r.crps_ratio_lower > 1:
        return "worse"
    return "not distinguishable"


def _backtest_text(summary: pd.DataFrame, skill: pd.DataFrame) -> list[str]:
    lines = []
    for mode in ("conditional", "status_quo"):
        s = skill[(skill["model_mode"] == mode) & (skill["method"] == "no_change")]
        if s.empty:
            continue
        parts = [
            f"h={int(r.horizon)}: {r.crps_ratio:.2f} [{r.crps_ratio_lower:.2f}, {r.crps_ratio_upper:.2f}], "
            f"{_verdict(r)}"
            for r in s.itertuples()
        ]
        lines.append(
            f"- **{mode}** forecasts, mean CRPS relative to the no-change baseline (below 1 = the model is better; "
            f"90% bootstrap interval over origins): " + "; ".join(parts) + "."
        )
    d = summary[summary["method"] == "default"]
    for mode, g in d.groupby("mode"):
        cov = ", ".join(f"h={int(r.horizon)}: {r.coverage_80:.2f}" for r in g.itertuples())
        lines.append(
            f"- 80% interval coverage of the **{mode}** forecasts: {cov} (targets per horizon: "
            f"{', '.join(str(int(n)) for n in g['n'])})."
        )
    return lines


#: An ELPD difference below this is not trusted with a handful of forecasts (Sivula et al. 2022).
ELPD_TRUST = 4.0


def _compare_text(table: pd.DataFrame, n_origins: int) -> list[str]:
    """The comparison's verdict under the documented decision rule (`docs/evidence/comparison.md`)."""
    ref = table[table["elpd_lfo_diff"] == 0.0]["variant"]
    ref_name = ref.iloc[0] if len(ref) else "the default"
    better = table[table["elpd_lfo_diff"] > ELPD_TRUST]
    worse = table[table["elpd_lfo_diff"] < -ELPD_TRUST]
    tied = table[(table["elpd_lfo_diff"].abs() <= ELPD_TRUST) & (table["variant"] != ref_name)]
    best = table.loc[table["elpd_lfo"].idxmax()]
    out = [
        f"- Best ELPD-LFO: **{best['variant']}** ({best['elpd_lfo_diff']:+.1f} ± {best['se_diff']:.1f} against "
        f"{ref_name}).",
        f"- Clearly worse than {ref_name} (ELPD-LFO lower by more than {ELPD_TRUST:g}): "
        + ("; ".join(worse["variant"]) or "none")
        + ".",
        f"- Within {ELPD_TRUST:g} of it (not distinguishable with these {n_origins} forecasts): "
        + ("; ".join(tied["variant"]) or "none")
        + ".",
    ]
    if len(better):
        out.append(
            "- **Better by more than the threshold: " + "; ".join(better["variant"]) + "**: under the decision rule "
            "such a variant would replace the default (if it keeps the three drivers and passes the gate)."
        )
    else:
        out.append(f"- No variant beats {ref_name} by more than {ELPD_TRUST:g}: the default stands under the rule.")
    out.append(
        "- PSIS-LOO is shown with its Pareto-k diagnostics: with a latent state per year most k exceed 0.7, so the "
        "exact-refit LOO column is the usable one; LOO measures interpolation between neighbouring years, LFO "
        "(the criterion) forecasting."
    )
    return out


def render_card(parts: dict[str, Any], meta: dict[str, Any]) -> str:
    """The markdown model card; ``parts`` are the step summaries, figures are relative paths."""
    run_meta = parts["run"]["meta"]
    d = DataConfig()  # a run.json without "window" was fitted on the default window
    window = tuple(int(y) for y in run_meta.get("window", (d.first_year, d.last_year)))
    lines = _card_head(meta, run_meta, window) + _card_run_checks(parts) + _card_backtest(parts, window)
    lines += _card_compare(parts) + _card_sbc(parts) + _card_sensitivity_nowcast(parts) + _card_tail(meta, window)
    return "\n".join(lines)


def _card_head(meta: dict[str, Any], run_meta: dict[str, Any], window: tuple[int, ...]) -> list[str]:
    """Title, intended use, data, model and assumptions, convergence."""
    first, last = window
    span = f"{first}-{last}"
    cv = run_meta["convergence"]
    kind = "QUICK SMOKE RUN: not the published numbers" if meta["settings"]["quick"] else "full run"
    lines: list[str] = [
        "# Model card: nkdefections default model",
        "",
        f"Generated by `nkdefections-evidence card` (code {meta['code_version']}, data hash "
        f"{meta['data_hash']}, {kind}"
        f"; run time {meta['seconds']:.0f} s). Every number below was computed by this command; the "
        "folders next to this file hold the tables, figures and `meta.json` (settings, package versions) of "
        "each check.",
        "",
        "## Intended use",
        "",
        "- **For**: scenario analysis of yearly North Korean defector arrivals in South Korea -- how expected "
        "arrivals respond to assumed paths of border enforcement, economic shocks and sanctions -- with honest "
        "uncertainty, by policy analysts and researchers.",
        "- **Not for**: monthly or regional figures, decisions about individuals, or causal claims about a single "
        f"policy. With {last - first + 1} yearly observations the driver effects are associations conditional on "
        "the model's assumptions (below), not experiments.",
        f"- {window_note((first, last))}",
        "",
        "## Data",
        "",
        f"- Arrivals {span} (Ministry of Unification), the border and sanctions indices, Bank of Korea GDP "
        f"growth estimates; {len(run_meta['data_files'])} files with sha256 and sources in `data/manifest.json` "
        "(see `data/README.md` for the coding rules of the indices).",
        "- GDP growth is observed with error (first releases 2000-07, one missing year) and modelled as latent.",
        "",
        "## Model and assumptions",
        "",
        f"- Likelihood `{run_meta['model_config']['likelihood']}`, latent `{run_meta['model_config']['latent']}`, "
        f"drivers {run_meta['model_config']['drivers']} with lags {run_meta['model_config']['lags']}.",
        "- log expected arrivals = level + driver effects (centred) + a persistent latent deviation; equations and "
        "priors in the documentation (`docs/model/index.md`, `docs/model/priors.md`).",
        f"- Assumes the driver effects are constant over {span} and into the forecast horizon, that the indices "
        "measure what they name, and that the latent dynamics continue as estimated.",
        "",
        "## Evidence",
        "",
        f"### Convergence of the {span} fit",
        "",
        f"Gate {'PASSED' if cv['passed'] else 'FAILED'}: max R-hat {cv['max_rhat']:.4f}, min bulk ESS "
        f"{cv['min_ess_bulk']:.0f}, min tail ESS {cv['min_ess_tail']:.0f}, {cv['divergences']} divergences "
        f"({cv['chains']} chains x {cv['draws']} draws). Report: `run/report.md`.",
        "",
    ]
    return lines


def _card_run_checks(parts: dict[str, Any]) -> list[str]:
    """Driver effects and the posterior predictive checks of the main run."""
    run_dir = Path("run")
    lines: list[str] = []
    effects = _read(Path(parts["run"].get("dir", "")) / "effects.csv") if "dir" in parts["run"] else None
    if effects is not None:
        lines += ["Driver effects (% change in expected arrivals per unit, 90% interval):", "", _fmt(effects), ""]
    cov = parts["run"].get("coverage")
    shapes = parts["run"].get("shapes")
    lines += [
        "### Posterior predictive checks",
        "",
        f"![posterior predictive]({run_dir / C.POSTERIOR_PLOT})",
        "",
        f"![one-step-ahead check]({run_dir / 'one_step_ahead.png'})",
        "",
    ]
    if cov is not None:
        lines += [
            "In-sample coverage nearly interpolates the data (expected with a per-year latent). The one-step-ahead "
            "column redraws each latent from smoothed states that have seen the whole series, so it over-covers by "
            "construction; the calibration evidence is the backtest's leave-future-out one-step forecasts "
            "(PIT, coverage):",
            "",
            _fmt(cov, 2),
            "",
        ]
    if shapes is not None:
        ok = int(shapes["reproduced"].sum())
        lines += [
            f"The fit reproduces {ok} of {len(shapes)} shape checks of the series (`run/ppc_shape_checks.csv`).",
            "",
        ]
    return lines


def _card_backtest(parts: dict[str, Any], window: tuple[int, ...]) -> list[str]:
    """The rolling-origin backtest."""
    first = window[0]
    bt = parts["backtest"]
    lines: list[str] = [
        "### Rolling-origin backtest (2008-2015 origins, 1-3 years ahead)",
        "",
        f"Each origin: refit on {first}..origin, forecast with the drivers' realised values (`conditional`) and with "
        "the drivers held at their origin values (`status_quo`, what an analyst would have forecast). Lower CRPS "
        "and log score are better.",
        "",
        _fmt(bt["summary"]),
        "",
        *_backtest_text(bt["summary"], bt["skill"]),
        "",
        "![backtest](backtest/backtest.png)",
        "",
        "Relative skill against each baseline (`crps_ratio` = model / baseline; bootstrap interval over origins): "
        "`backtest/skill.md`.",
        "",
    ]
    return lines


def _card_compare(parts: dict[str, Any]) -> list[str]:
    """Model comparison."""
    lines: list[str] = []
    cmp_table = parts["compare"]["table"]
    lines += [
        "### Model comparison (leave-future-out, exact refits; PSIS-LOO)",
        "",
        "Differences are against the default (first row of the variants), with the s.e. of the paired difference.",
        "",
        _fmt(cmp_table),
        "",
        *_compare_text(cmp_table, len(parts["compare"].get("settings", {}).get("origins", [])) or 8),
        "",
        "![comparison](compare/comparison.png)",
        "",
    ]
    return lines


def _card_sbc(parts: dict[str, Any]) -> list[str]:
    """Simulation-based calibration and parameter recovery."""
    lines: list[str] = ["### Simulation-based calibration and parameter recovery", ""]
    sbc_md = parts["sbc"].get("results_md", "")
    if sbc_md:
        body = sbc_md.split("\n", 1)[1].strip()
        body = body.replace("\n### ", "\n##### ").replace("\n## ", "\n#### ").replace("](", "](sbc/")
        lines += [body, ""]
    else:
        lines += ["(not run)", ""]
    return lines


def _card_sensitivity_nowcast(parts: dict[str, Any]) -> list[str]:
    """Prior sensitivity and the nowcast validation."""
    sens = parts["sensitivity"]["table"]
    verdicts = sens.drop_duplicates("driver")[["driver", "verdict"]]
    lines: list[str] = [
        "### Prior sensitivity (effect prior s.d. halved and doubled, exact refits)",
        "",
        _fmt(
            sens[
                [
                    "driver",
                    "factor",
                    "prior_sd",
                    "median_pct",
                    "q05_pct",
                    "q95_pct",
                    "prob_negative",
                    "shift_sd",
                    "width_ratio",
                    "contraction",
                    "passed",
                ]
            ]
        ),
        "",
        *[f"- **{r.driver}**: {r.verdict}." for r in verdicts.itertuples()],
        "",
        "![sensitivity](sensitivity/sensitivity.png)",
        "",
        "### Nowcasting from partial-year counts",
        "",
        "Leave-one-year-out validation on every year with a partial and a final figure: `nowcast/results.md`.",
        "",
    ]
    now_md = parts["nowcast"].get("results_md", "")
    if "## Summary by method" in now_md:
        block = now_md.split("## Summary by method", 1)[1].split("\n## ", 1)[0]
        lines += ["Summary by method" + block.strip().split("\n", 1)[0], *block.strip().split("\n")[1:], ""]
    return lines


def _card_tail(meta: dict[str, Any], window: tuple[int, ...]) -> list[str]:
    """Known limits and provenance."""
    first, last = window
    lines: list[str] = [
        "## Known limits",
        "",
        f"- {last - first + 1} yearly observations: effects are weakly identified; the border effect rests "
        "essentially on one event (the 2011-12 tightening) and its size depends on the prior and on the latent "
        "dynamics (see sensitivity and comparison above).",
        "- Backtest origins before 2011 could not learn the border effect at all (the index is flat until 2011).",
        "- The backtest treats an origin year's count and GDP as known at the origin; in reality GDP estimates "
        "appear in July of the following year.",
        "- Scenario forecasts assume the estimated effects carry over to driver values outside the observed range; "
        "such values are flagged in the run report.",
        "",
        "## Provenance",
        "",
        f"Code {meta['code_version']}; data hash {meta['data_hash']}; packages: "
        + ", ".join(f"{k} {v}" for k, v in meta["package_versions"].items() if v != "not installed")
        + ". Per-check settings and timings: `*/meta.json`.",
        "",
    ]
    return lines
