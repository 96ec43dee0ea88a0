"""The short markdown report of a fit run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nkdefections import constants as C
from nkdefections.diagnostics import ConvergenceReport


def markdown_table(df: pd.DataFrame, floatfmt: str = "{:.3g}") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [floatfmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(
    path: Path,
    *,
    meta: dict[str, Any],
    effects: pd.DataFrame,
    summary: pd.DataFrame,
    convergence: ConvergenceReport,
    coverage_table: pd.DataFrame,
    shapes: pd.DataFrame,
    prior_table: pd.DataFrame,
    n_years: int,
) -> Path:
    """Write ``report.md`` for one run."""
    from nkdefections.pipeline import effects_markdown

    cv = convergence.summary_row()
    m = meta["model_config"]
    prior_cov = float(prior_table["inside_90"].mean())
    lines = [
        "# nkdefections fit report",
        "",
        f"- window: {meta['window'][0]}-{meta['window'][1]} ({n_years} yearly observations)",
        f"- model: `{m['name']}` (likelihood {m['likelihood']}, latent {m['latent']}, "
        f"{m['parameterization']}; lags {m['lags']})",
        f"- fit id `{meta['fit_id']}` (cache hit: {meta['cache_hit']}), data hash `{meta['data_hash']}`, "
        f"code {meta['code_version']}",
        f"- sampler: {meta['sampler_config']['name']}, {meta['sampler_config']['chains']} chains x "
        f"{meta['sampler_config']['draws']} draws (+{meta['sampler_config']['tune']} tuning), "
        f"seed {meta['sampler_config']['seed']}",
        "",
        "## Driver effects",
        "",
        "Posterior % change in expected arrivals per unit of each driver (median and 90% "
        "equal-tailed interval):",
        "",
        effects_markdown(effects) if len(effects) else "(no drivers in this model)",
        "",
        "With 18 yearly observations these effects are weakly identified: the border effect is "
        "informed essentially by one event (the 2011-12 tightening and the 2012 drop), the "
        "sanctions index rises almost monotonically with time and is partly confounded with the "
        "latent dynamics, and the economy effect rests on noisy GDP estimates. Read the intervals, "
        "not the medians.",
        "",
        "## Convergence gate",
        "",
        f"{'PASSED' if convergence.passed else 'FAILED (gate relaxed by the user)'}: max R-hat "
        f"{cv['max_rhat']:.4f} (limit {convergence.gate.rhat_max}), min bulk ESS {cv['min_ess_bulk']:.0f}, "
        f"min tail ESS {cv['min_ess_tail']:.0f} (limit {convergence.gate.ess_bulk_min:g}/"
        f"{convergence.gate.ess_tail_min:g}), divergences {cv['divergences']}. Per-parameter values: "
        f"`{C.DIAGNOSTICS_FILE}`.",
        "",
    ]
    if not convergence.passed:
        lines += ["Failures:", "", *[f"- {f}" for f in convergence.failures], ""]
    lines += [
        "## Parameters",
        "",
        markdown_table(summary[["parameter", "mean", "sd", "median", "lower", "upper"]]),
        "",
        "(lower/upper: 90% equal-tailed interval)",
        "",
        "## Prior predictive check",
        "",
        f"![prior predictive]({C.PRIOR_PLOT})",
        "",
        f"{prior_cov:.0%} of the observed years fall inside the prior predictive 90% interval: the "
        "priors allow the observed range without forcing it.",
        "",
        "## Posterior predictive check",
        "",
        f"![posterior predictive]({C.POSTERIOR_PLOT})",
        "",
        "Interval coverage over the fitted years. `empirical`: the in-sample posterior "
        "predictive, which conditions on each year's own latent state and so nearly "
        "interpolates the data (coverage near 100% is expected and is no evidence of skill). "
        "`one_step_empirical`: the one-step-ahead check, where each year's latent state is "
        "redrawn from its AR(1) dynamics given the year before (plot `one_step_ahead.png`, "
        "table `one_step_check.csv`); this is the more honest calibration check, though still "
        "in-sample for the parameters.",
        "",
        markdown_table(coverage_table, "{:.2f}"),
        "",
        "Does the fit reproduce the known shape of the series?",
        "",
        markdown_table(
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
        "",
        "## Provenance",
        "",
        "Package versions, config, data file hashes: `run.json`; the resolved config: "
        f"`{C.CONFIG_FILE}`; the posterior with the same attributes: `{C.POSTERIOR_FILE}`.",
        "",
    ]
    path = Path(path)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
