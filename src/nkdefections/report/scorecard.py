"""The scorecard of a pre-registered forecast: its files, the markdown/HTML text and the figure.

Everything here renders a :class:`~nkdefections.evaluate.prospective.ProspectiveScores`
computed below; nothing is scored here.  :func:`write_scorecard` writes the files into a
folder that exists (``nkdefections.pipeline.score`` makes it atomically).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from nkdefections import constants as C
from nkdefections.arithmetic import flatten_draws
from nkdefections.evaluate.prospective import BASELINE, POOLED, ProspectiveScores
from nkdefections.report.blocks import Block, render_html, render_markdown
from nkdefections.report.plots import new_figure, save_figure

#: Forecast years the figure shows beyond the last scored year (within the horizon).
EXTRA_YEARS = 2
#: Fitted years the figure shows before the forecast.
HISTORY_YEARS = 10


def _levels(df: pd.DataFrame) -> list[str]:
    return [c.removeprefix("covered_") for c in df.columns if c.startswith("covered_")]


def _panel(ax, result: ProspectiveScores, scenario: str, shown: np.ndarray, nc: np.ndarray) -> None:
    ds = result.forecast.dataset
    window = ds["arrivals_observed"].isel({C.YEAR: slice(-HISTORY_YEARS, None)})
    ax.plot(window[C.YEAR].values, window.values, "o-", color="black", ms=2.5, lw=0.9, label="fitted series")
    draws = flatten_draws(ds[C.OBSERVED].sel({C.SCENARIO: scenario, C.YEAR_FUTURE: shown}).astype(float))
    q = np.quantile(draws, [0.025, 0.10, 0.25, 0.5, 0.75, 0.90, 0.975], axis=0)
    for (lo, hi), a, lab in (((0, 6), 0.15, "95%"), ((1, 5), 0.25, "80%"), ((2, 4), 0.4, "50%")):
        ax.fill_between(shown, q[lo], q[hi], color="C1", alpha=a, lw=0, label=f"forecast {lab}")
    ax.plot(shown, q[3], color="C1", lw=1.6, label="forecast median")
    base_years = result.baseline.target_years
    nq = np.quantile(nc, [0.10, 0.5, 0.90], axis=1)
    ax.plot(base_years, nq[1], color="grey", ls="--", lw=1.1, label="no-change median")
    ax.plot(base_years, nq[0], color="grey", ls=":", lw=0.9, label="no-change 80%")
    ax.plot(base_years, nq[2], color="grey", ls=":", lw=0.9)
    obs = result.observed
    ax.plot(obs["year"], obs[C.ARRIVALS], "D", color="crimson", ms=5, zorder=5, label="published figure")
    ax.axvline(base_years[0] - 0.5, color="grey", lw=0.8, ls=":")
    row = result.scores[(result.scores[C.SCENARIO] == scenario) & (result.scores["year"] == POOLED)].iloc[0]
    ax.set_title(
        f"{scenario}: CRPS {row['crps']:.0f} vs no-change {row[f'{BASELINE}_crps']:.0f} "
        f"(skill ratio {row['skill_ratio']:.2f})",
        fontsize=8.5,
    )
    ax.grid(alpha=0.3)


def score_fans(result: ProspectiveScores, path: str | Path, *, seed: int = 0) -> Path:
    """One panel per scenario: the forecast fan, the no-change forecast and the published figures."""
    ds = result.forecast.dataset
    future = result.forecast.forecast_years
    last = min(int(result.observed["year"].max()) + EXTRA_YEARS, int(future[-1]))
    shown = future[future <= last]
    nc = result.baseline.samples(np.random.default_rng(seed), 4000)  # (horizon, n) for the guide lines
    scenarios = [str(s) for s in ds[C.SCENARIO].values]
    ncols = min(len(scenarios), 3)
    nrows = -(-len(scenarios) // ncols)
    fig = new_figure(figsize=(4.2 * ncols, 3.3 * nrows + 0.6), dpi=110)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    for ax, scenario in zip(axes, scenarios, strict=False):
        _panel(ax, result, scenario, shown, nc)
    for ax in axes[len(scenarios) :]:
        ax.set_visible(False)
    axes[0].set_ylim(bottom=0)  # after every panel: the shared top then fits them all
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=7.5, frameon=False)
    fig.supylabel("arrivals in South Korea", fontsize=9)
    fig.suptitle("Pre-registered forecasts against the published figures", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save_figure(fig, path)


def _yes(v: float) -> str:
    return "yes" if v == 1.0 else "no"


def _tables(result: ProspectiveScores) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = result.scores
    ks = _levels(df)
    pooled = df[df["year"] == POOLED]
    p = pd.DataFrame(
        {
            "scenario": pooled[C.SCENARIO],
            "years": pooled["n_years"].astype(int),
            "CRPS": pooled["crps"],
            "no-change CRPS": pooled[f"{BASELINE}_crps"],
            "skill ratio": pooled["skill_ratio"].map(lambda v: f"{v:.2f}"),
            "log score": pooled["log_score"].map(lambda v: f"{v:.2f}"),
            "no-change log score": pooled[f"{BASELINE}_log_score"].map(lambda v: f"{v:.2f}"),
            **{f"in {k}%": pooled[f"covered_{k}"].map(lambda v: f"{v:.0%}") for k in ks},
        }
    )
    per = df[df["year"] != POOLED]
    y = pd.DataFrame(
        {
            "scenario": per[C.SCENARIO],
            "year": per["year"],
            "published": per["observed"].astype(int),
            "median": per["median"].map(lambda v: f"{v:.0f}"),
            "CRPS": per["crps"],
            "no-change CRPS": per[f"{BASELINE}_crps"],
            "skill ratio": per["skill_ratio"].map(lambda v: f"{v:.2f}"),
            "PIT": per["pit"].map(lambda v: f"{v:.2f}"),
            **{f"in {k}%": per[f"covered_{k}"].map(_yes) for k in ks},
        }
    )
    return p, y


def _reading() -> list[str]:
    return [
        "CRPS (arrivals; lower is better): how far the forecast distribution was from the published figure, "
        "in arrivals; for a point forecast it is the absolute error.",
        "Skill ratio = model CRPS / no-change CRPS. Below 1 the model beat the forecast 'every later year "
        "equals the last fitted year' (0.8: a 20% lower CRPS); above 1 it did worse. The pooled ratio is mean CRPS "
        "over mean no-change CRPS.",
        "Log score (nats; lower is better): minus the log probability the forecast gave the published count "
        "(a kernel estimate from the draws, the same for both forecasts). A difference of 1 means the figure was "
        "e times more probable under the forecast with the lower score.",
        "PIT: where the figure fell in the forecast distribution (near 0: below most draws; near 1: above). "
        "Over many years a calibrated forecast gives uniform PITs; a few years cannot show calibration.",
        "in k%: whether the central k% interval covered the figure; pooled, the share of years covered, "
        "which should approach k% only over many years.",
        "Scenarios are conditional forecasts. A scenario whose driver assumptions did not happen can score badly "
        "without the model being wrong; judge the model by the scenario closest to what happened.",
    ]


def scorecard_blocks(result: ProspectiveScores, figure: Path | None) -> list[Block]:
    """The scorecard's content (rendered as ``scorecard.md`` and ``scorecard.html``)."""
    m = result.meta
    a = m["forecast_attrs"]
    obs_in = m["inputs"]["observed"]
    years = ", ".join(str(y) for y in m["observed_years"])
    pooled, per_year = _tables(result)
    blocks: list[Block] = [
        ("h1", "Scorecard: pre-registered forecasts against published figures"),
        (
            "p",
            f"Forecast `{m['inputs']['forecast']['path']}`: fit `{a['fit_id']}` on "
            f"{m['fitted_window'][0]}-{m['fitted_window'][1]}, horizon {a['horizon']}, {m['draws']} draws, "
            f"written by `{a['code_version']}`. Published figures `{obs_in['path']}` "
            f"(sha256 `{obs_in['sha256'][:12]}`): {years}. Scored by `{m['code_version']}` on {m['created']}.",
        ),
        ("h2", f"Pooled over the scored years, next to the no-change forecast from {result.baseline.origin}"),
        ("table", (pooled, "{:.0f}")),
        ("h2", "Per year"),
        ("table", (per_year, "{:.0f}")),
    ]
    if figure is not None:
        blocks.append(
            ("img", (figure, "Forecast fans (50/80/95%) with the published figures and the no-change forecast"))
        )
    blocks += [
        ("h2", "How to read it"),
        ("ul", _reading()),
        ("h2", "Provenance"),
        (
            "p",
            f"`{C.SCORE_META}`: the input files' sha256, the forecast's own provenance attributes (fit id, data hash, "
            f"model config, scenarios, versions), the run's `run.json` when a run folder was scored, the estimators, "
            f"the fitted no-change forecast and the package and code versions of this scoring. `{C.SCORES_FILE}`: "
            "every number above at full precision.",
        ),
    ]
    return blocks


def write_scorecard(result: ProspectiveScores, out_dir: Path, *, plots: bool = True) -> dict[str, Path]:
    """Write ``scores.csv``, ``score.json``, ``scorecard.md``/``.html`` and the figure into ``out_dir``."""
    out_dir = Path(out_dir)
    files = {"scores": out_dir / C.SCORES_FILE, "meta": out_dir / C.SCORE_META}
    result.scores.to_csv(files["scores"], index=False)
    files["meta"].write_text(json.dumps(result.meta, indent=2, default=str) + "\n", encoding="utf-8")
    figure = score_fans(result, out_dir / C.SCORE_PLOT, seed=int(result.meta["seed"])) if plots else None
    if figure is not None:
        files["figure"] = figure
    blocks = scorecard_blocks(result, figure)
    files["scorecard"] = out_dir / C.SCORECARD_FILE
    files["scorecard"].write_text(render_markdown(blocks), encoding="utf-8")
    files["html"] = out_dir / C.SCORECARD_HTML
    files["html"].write_text(render_html(blocks, "nkdefections scorecard"), encoding="utf-8")
    return files
