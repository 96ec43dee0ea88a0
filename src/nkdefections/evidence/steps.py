"""Evidence steps in-process: backtest, comparison, sensitivity and their README fragments."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nkdefections.config import SamplerConfig
from nkdefections.provenance import provenance
from nkdefections.report.blocks import markdown_table

log = logging.getLogger(__name__)

#: Sampler of every refit in the published evidence: the project's default settings.
FULL_SAMPLER = SamplerConfig(progressbar=False)
QUICK_SAMPLER = SamplerConfig(draws=200, tune=200, chains=2, progressbar=False)
#: Sampler of the model comparison (10 variants x (8 LFO + 1 full + up to 18 LOO) refits):
#: 4 chains x 500 draws after 500 tuning, enough for log predictive densities.
COMPARE_SAMPLER = SamplerConfig(draws=500, tune=500, progressbar=False)


def _sampler(quick: bool) -> SamplerConfig:
    return QUICK_SAMPLER if quick else FULL_SAMPLER


def step_meta(
    step: str, settings: dict[str, Any], seconds: float, prov: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What made a step's outputs; ``prov`` should be taken when the step starts (the code that ran)."""
    from nkdefections.data.load import load_data

    ds = load_data()
    prov = prov or provenance()
    return {
        "step": step,
        "settings": settings,
        "data_hash": str(ds.attrs["data_hash"]),
        "data_files": json.loads(ds.attrs["files"]),
        "package_versions": prov["packages"],
        "code_version": prov["code_version"],
        "machine": prov["machine"],
        "seconds": round(seconds, 1),
        "command": " ".join(["nkdefections-evidence", *sys.argv[1:]])
        if Path(sys.argv[0]).name in ("nkdefections-evidence", "evidence.py", "__main__.py")
        else f"nkdefections.evidence step {step!r} (called from Python)",
    }


def _write_table(df: pd.DataFrame, out: Path, name: str, floatfmt: str = "{:.3g}") -> None:
    df.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(markdown_table(df, floatfmt) + "\n", encoding="utf-8")


def _plt() -> Any:
    # no matplotlib.use() here: headless, pyplot falls back to Agg by itself, and a
    # library call must not switch the backend of the caller's session
    import matplotlib.pyplot as plt

    return plt


# ----------------------------------------------------------------------------
# Steps: each writes into `out` and returns a short summary for the card
# ----------------------------------------------------------------------------


def step_backtest(out: Path, quick: bool = False) -> dict[str, Any]:
    """Rolling-origin backtest 2008-2015, h = 1..3, conditional and status quo, with baselines."""
    from nkdefections.evaluate import scores as E
    from nkdefections.evaluate.backtest import backtest_targets, run_backtest
    from nkdefections.evaluate.variance import pit_dispersion, spread_error

    origins = (2012, 2013) if quick else tuple(range(2008, 2016))
    bt = run_backtest(origins=origins, sampler=_sampler(quick))
    bt.scores.to_csv(out / "scores.csv", index=False)
    bt.fits.to_csv(out / "fits.csv", index=False)
    summary = bt.summary()
    _write_table(summary, out, "summary")
    skills = [
        E.relative_skill(bt.scores, "default", mode).assign(model_mode=mode) for mode in ("conditional", "status_quo")
    ]
    skill = pd.concat(skills, ignore_index=True)
    skill = skill[skill["method"] != "default"]
    _write_table(skill, out, "skill")
    targets = backtest_targets(bt.scores)
    _write_table(targets, out, "targets")
    bt.variance.to_csv(out / "variance.csv", index=False)
    variance = spread_error(bt.variance[bt.variance["method"] == "default"])
    _write_table(variance, out, "variance_summary")
    _plot_variance(variance, out / "variance.png")
    dispersion = pit_dispersion(bt.scores[bt.scores["method"].isin(["default", "no_change"])])
    _write_table(dispersion, out, "pit_dispersion")
    _plot_backtest(bt.scores, out / "backtest.png")
    _plot_pit(bt.scores, out / "pit.png")
    fragment = backtest_fragment(summary, skill, bt.fits, targets, variance, dispersion)
    (out / "readme.md").write_text(fragment, encoding="utf-8")
    return {
        "targets": targets,
        "summary": summary,
        "skill": skill,
        "fits": bt.fits,
        "seconds": bt.seconds,
        "settings": {**bt.settings, "compile_seconds": bt.compile_seconds},
    }


def backtest_fragment(
    summary: pd.DataFrame,
    skill: pd.DataFrame,
    fits: pd.DataFrame,
    targets: pd.DataFrame | None = None,
    variance: pd.DataFrame | None = None,
    dispersion: pd.DataFrame | None = None,
) -> str:
    """The backtest's tables: scores, skill against each baseline, targets, variance sources, dispersion tests."""

    order = {"default": 0, "no_change": 1, "rw_drift": 2, "ets": 3, "arima": 4}
    s = summary.assign(_o=summary["method"].map(order).fillna(9)).sort_values(["_o", "mode", "horizon"])
    s = s.assign(
        method=np.where(s["mode"] == "-", s["method"], s["method"] + " (" + s["mode"] + ")"),
        mean_width_80=s["mean_width_80"].round().astype(int),
        coverage=[
            f"{a:.2f} / {b:.2f} / {c:.2f}" for a, b, c in zip(s.coverage_50, s.coverage_80, s.coverage_95, strict=True)
        ],
    )
    table = s[["method", "horizon", "n", "mean_crps", "mean_crps_log", "mean_log_score", "coverage", "mean_width_80"]]
    table = table.rename(
        columns={
            "mean_crps": "CRPS",
            "mean_crps_log": "CRPS (log)",
            "mean_log_score": "log score",
            "coverage": "coverage 50/80/95%",
            "mean_width_80": "80% width",
        }
    )
    k = skill.assign(
        ratio=[
            f"{r:.2f} [{lo:.2f}, {hi:.2f}]"
            for r, lo, hi in zip(skill.crps_ratio, skill.crps_ratio_lower, skill.crps_ratio_upper, strict=True)
        ]
    )
    wide = k.pivot_table(index=["model_mode", "method"], columns="horizon", values="ratio", aggfunc="first")
    wide.columns = [f"h={int(c)}" for c in wide.columns]
    wide = wide.reset_index().rename(columns={"model_mode": "model forecast", "method": "against"})
    failing = int((~fits["passed"].astype(bool)).sum())
    target_lines = []
    if targets is not None:
        t = targets.assign(
            horizon=[("pooled" if h == 0 else str(h)) for h in targets["horizon"]],
            met=["yes" if m else "**no**" for m in targets["met"]],
            value=[
                f"{v:.2f}" if np.isnan(lo) else f"{v:.2f} [{lo:.2f}, {hi:.2f}]"
                for v, lo, hi in zip(targets["value"], targets["lower"], targets["upper"], strict=True)
            ],
        ).drop(columns=["lower", "upper"])
        target_lines = [
            "Targets (`targets.csv`; the fair `no_change` is the baseline; 90% bootstrap intervals in brackets):",
            "",
            markdown_table(t, "{:.2f}"),
            "",
        ]
    variance_lines = [] if variance is None else _variance_lines(variance)
    dispersion_lines = [] if dispersion is None else _dispersion_lines(dispersion)
    return "\n".join(
        [
            markdown_table(table, "{:.4g}"),
            "",
            "Relative skill: mean CRPS of the model divided by the baseline's over the same targets (< 1: the "
            "model is better), with a 90% bootstrap interval over origins:",
            "",
            markdown_table(wide),
            "",
            *target_lines,
            *variance_lines,
            *dispersion_lines,
            f"Refits: {len(fits)}, of which {failing} missed the convergence gate "
            f"(max divergences {int(fits['divergences'].max())}; min bulk ESS {fits['min_ess_bulk'].min():.0f}).",
            "",
        ]
    )


def _variance_lines(variance: pd.DataFrame) -> list[str]:
    """The fragment's lines for the variance decomposition (:func:`nkdefections.evaluate.variance.spread_error`)."""
    from nkdefections.evaluate.variance import SHARES

    v = variance.assign(mode=variance["mode"].str.replace("_", " "))
    v = v[["mode", "horizon", *[f"share_{k}" for k in SHARES], "count_noise", "error_over_spread"]]
    return [
        "Where the width comes from (`variance_summary.csv`): shares of the log-scale predictive variance, the "
        "count noise's share of the count variance, and rms realised log error over rms predictive log s.d. "
        "(near 1: calibrated; below 1: too wide):",
        "",
        markdown_table(v.rename(columns=lambda c: c.removeprefix("share_").replace("_", " ")), "{:.2f}"),
        "",
    ]


def _dispersion_lines(dispersion: pd.DataFrame) -> list[str]:
    """The fragment's lines for :func:`nkdefections.evaluate.variance.pit_dispersion`'s table."""
    dsp = dispersion.assign(mode=dispersion["mode"].str.replace("_", " "))
    cols = ["method", "mode", "horizon", "n", "coverage_80", "p_coverage_80", "chi2", "p_too_wide", "independent"]
    return [
        "Is a width wrong beyond chance (`pit_dispersion.csv`)? The 80% coverage with its two-sided binomial "
        "p-value, and the sum of the PITs' squared normal scores (n expected) with the p-value of a spread "
        "wider than the errors. Only the one-year-ahead forecasts are independent under calibration; the "
        "longer horizons share target years, so their p-values overstate the evidence:",
        "",
        markdown_table(dsp[cols].rename(columns=lambda c: c.replace("_", " ")), "{:.3g}"),
        "",
    ]


def _plot_pit(scores: pd.DataFrame, path: Path) -> None:
    """PIT histograms (mid-PIT, pooled over origins and horizons) of the model's two modes and no-change."""
    plt = _plt()
    panels = [("default", "conditional"), ("default", "status_quo"), ("no_change", "-")]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
    for ax, (m, mode) in zip(axes, panels, strict=True):
        pit = scores[(scores["method"] == m) & (scores["mode"] == mode)]["pit"]
        ax.hist(pit, bins=5, range=(0, 1), color="C0", edgecolor="white")
        ax.axhline(len(pit) / 5, color="k", ls="--", lw=1, label="uniform")
        ax.set_title(f"{m} ({mode})" if mode != "-" else m)
        ax.set_xlabel(f"PIT (n = {len(pit)})")
    axes[0].set_ylabel("forecasts")
    axes[0].legend(fontsize=8)
    fig.suptitle("Backtest PIT: flat = calibrated; U = too narrow; hump = too wide")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_variance(summ: pd.DataFrame, path: Path) -> None:
    """Stacked shares of the log-scale predictive variance by mode and horizon (``spread_error``'s table)."""
    from nkdefections.evaluate.variance import SHARES

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, (mode, g) in zip(axes, summ.groupby("mode"), strict=False):
        bottom = np.zeros(len(g))
        for k in SHARES:
            vals = g[f"share_{k}"].clip(lower=0).to_numpy()
            ax.bar(g["horizon"], vals, bottom=bottom, label=k.replace("_", " "))
            bottom += vals
        for h, r in zip(g["horizon"], g["error_over_spread"], strict=True):
            ax.annotate(f"error/spread {r:.2f}", (h, 1.02), ha="center", fontsize=8)
        ax.set_title(mode.replace("_", " "))
        ax.set_xlabel("horizon (years)")
        ax.set_xticks(g["horizon"])
    axes[0].set_ylabel("share of Var(log mu)")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Where the backtest forecasts' width comes from")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_backtest(scores: pd.DataFrame, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True)
    for ax, h in zip(axes, (1, 2, 3), strict=True):
        s = scores[scores["horizon"] == h]
        obs = s.drop_duplicates("target_year").sort_values("target_year")
        ax.plot(obs["target_year"], obs["observed"], "ko-", label="observed", zorder=5)
        styles = {("default", "conditional"): "C0", ("default", "status_quo"): "C1", ("no_change", "-"): "C2"}
        for i, ((m, mode), color) in enumerate(styles.items()):
            g = s[(s["method"] == m) & (s["mode"] == mode)].sort_values("target_year")
            if g.empty:
                continue
            x = g["target_year"] + (i - 1) * 0.15
            ax.errorbar(
                x,
                g["median"],
                yerr=[g["median"] - g["lower_80"], g["upper_80"] - g["median"]],
                fmt="o",
                color=color,
                capsize=2,
                label=f"{m} ({mode})" if mode != "-" else m,
            )
        ax.set_title(f"{h} year(s) ahead")
        ax.set_xlabel("target year")
    axes[0].set_ylabel("arrivals (median and 80% interval)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Rolling-origin backtest: forecasts made at origin = target - h")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def step_compare(out: Path, quick: bool = False) -> dict[str, Any]:
    """Model variants by exact leave-future-out CV (origins 2008-2015) and PSIS-LOO."""
    from nkdefections.evaluate.comparison import compare_models, default_variants

    variants = default_variants()
    origins = (2012, 2013) if quick else tuple(range(2008, 2016))
    if quick:
        variants = {k: variants[k] for k in list(variants)[:3]}
    t0 = time.perf_counter()
    sampler = QUICK_SAMPLER if quick else COMPARE_SAMPLER
    table, pointwise, results, pointwise_loo = compare_models(variants, origins=origins, sampler=sampler)
    cols = [
        "variant",
        "elpd_lfo",
        "elpd_lfo_diff",
        "se_diff",
        "crps_h1",
        "crps_h2",
        "crps_h3",
        "elpd_loo",
        "se_loo",
        "max_pareto_k",
        "n_k_over_0.7",
        "elpd_loo_exact",
        "se_loo_exact",
        "loo_exact_diff",
        "loo_exact_se_diff",
        "full_fit_passed",
        "lfo_refits_failing_gate",
        "loo_refits_failing_gate",
        "max_divergences",
    ]
    _write_table(table[cols], out, "comparison")
    table.to_csv(out / "comparison_full.csv", index=False)
    pointwise.to_csv(out / "lfo_pointwise.csv", index_label="origin")
    pointwise_loo.to_csv(out / "loo_exact_pointwise.csv", index_label="year")
    pd.concat([r.fits for r in results.values()]).to_csv(out / "fits.csv", index=False)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.5))
    t = table.iloc[::-1]
    ax.errorbar(t["elpd_lfo_diff"], t["variant"], xerr=t["se_diff"], fmt="o", capsize=3)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("ELPD-LFO difference from the default (one-step-ahead, 8 origins, ± 1 s.e.)")
    fig.tight_layout()
    fig.savefig(out / "comparison.png", dpi=110)
    plt.close(fig)
    (out / "readme.md").write_text(compare_fragment(table), encoding="utf-8")
    settings = {
        "origins": list(origins),
        "sampler": sampler.to_dict(),
        "variants": {k: v.to_dict() for k, v in variants.items()},
    }
    return {"table": table[cols], "seconds": time.perf_counter() - t0, "settings": settings}


def compare_fragment(table: pd.DataFrame) -> str:
    """The README's model-comparison table."""
    t = table.copy()
    t["ELPD-LFO (diff ± s.e.)"] = [
        f"{e:.1f} ({d:+.1f} ± {s:.1f})" for e, d, s in zip(t.elpd_lfo, t.elpd_lfo_diff, t.se_diff, strict=True)
    ]
    t["CRPS h=1/2/3"] = [
        f"{a:.0f} / {b:.0f} / {c:.0f}" for a, b, c in zip(t.crps_h1, t.crps_h2, t.crps_h3, strict=True)
    ]
    t["PSIS-LOO (k > 0.7)"] = [
        f"{e:.1f} ± {s:.1f} ({n})" for e, s, n in zip(t.elpd_loo, t.se_loo, t["n_k_over_0.7"], strict=True)
    ]
    cols = ["variant", "ELPD-LFO (diff ± s.e.)", "CRPS h=1/2/3", "PSIS-LOO (k > 0.7)"]
    if "elpd_loo_exact" in t:
        t["LOO, exact refits for k > 0.7 (diff ± s.e.)"] = [
            f"{e:.1f} ({d:+.1f} ± {s:.1f})"
            for e, d, s in zip(t.elpd_loo_exact, t.loo_exact_diff, t.loo_exact_se_diff, strict=True)
        ]
        cols.append("LOO, exact refits for k > 0.7 (diff ± s.e.)")
    t["full fit / LFO / LOO refits off the gate (max div.)"] = [
        f"{'passed' if p else 'FAILED'} / {a} / {b} ({c})"
        for p, a, b, c in zip(
            t.full_fit_passed, t.lfo_refits_failing_gate, t.loo_refits_failing_gate, t.max_divergences, strict=True
        )
    ]
    cols.append("full fit / LFO / LOO refits off the gate (max div.)")
    return markdown_table(t[cols]) + "\n"


def step_sensitivity(out: Path, quick: bool = False) -> dict[str, Any]:
    """Each driver's effect prior s.d. halved and doubled, exact refits on the fit window."""
    from nkdefections.evaluate.sensitivity import prior_sensitivity

    t0 = time.perf_counter()
    table = prior_sensitivity(sampler=_sampler(quick))
    _write_table(table, out, "sensitivity")
    (out / "readme.md").write_text(sensitivity_fragment(table), encoding="utf-8")
    plt = _plt()
    drivers = list(dict.fromkeys(table["driver"]))
    fig, axes = plt.subplots(1, len(drivers), figsize=(4.5 * len(drivers), 3.2))
    for ax, drv in zip(np.atleast_1d(axes), drivers, strict=True):
        g = table[table["driver"] == drv].sort_values("factor")
        y = np.arange(len(g))
        ax.errorbar(
            g["median_pct"],
            y,
            xerr=[g["median_pct"] - g["q05_pct"], g["q95_pct"] - g["median_pct"]],
            fmt="o",
            capsize=3,
        )
        ax.set_yticks(y, [f"prior sd x{f:g}" for f in g["factor"]])
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(f"{drv}: % change per unit (90%)")
    fig.tight_layout()
    fig.savefig(out / "sensitivity.png", dpi=110)
    plt.close(fig)
    return {"table": table, "seconds": time.perf_counter() - t0, "settings": {"factors": [0.5, 2.0]}}


def sensitivity_fragment(table: pd.DataFrame) -> str:
    """The README's prior-sensitivity table: one row per driver."""
    rows = []
    for drv, g in table.groupby("driver", sort=False):
        cells = {"driver": drv}
        for r in g.sort_values("factor").itertuples():
            cells[f"prior sd x{r.factor:g}"] = f"{r.median_pct:+.1f}% [{r.q05_pct:+.1f}, {r.q95_pct:+.1f}]"
        ref = g[g["factor"] == 1.0].iloc[0]
        cells["contraction"] = f"{ref.contraction:.2f}"
        moved = g[g["factor"] != 1.0]
        cells["max shift (post. s.d.)"] = f"{moved['shift_sd'].abs().max():.2f}"
        cells["gate (by factor)"] = " / ".join(
            "passed" if bool(r.passed) else f"FAILED ({int(r.divergences)} div.)"
            for r in g.sort_values("factor").itertuples()
        )
        cells["verdict"] = ref.verdict
        rows.append(cells)
    return markdown_table(pd.DataFrame(rows)) + "\n"
