"""Figures: predictive fan charts over the observed series, one chart of every scenario.

Drawn with matplotlib's object-oriented API (a :class:`~matplotlib.figure.Figure` on its own
Agg canvas), so importing or calling this module never selects a pyplot backend, never
opens a window and leaves the caller's pyplot figures alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator


def new_figure(**kwargs: Any) -> Figure:
    """A figure drawn on its own Agg canvas (no pyplot state, no backend switch)."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path, **kwargs: Any) -> Path:
    """Write ``fig`` to ``path``; the figure is garbage once nothing refers to it."""
    path = Path(path)
    fig.savefig(path, **kwargs)
    return path


def predictive_fan(
    years: np.ndarray,
    observed: np.ndarray,
    replicated: np.ndarray,
    path: str | Path,
    *,
    title: str,
    log_scale: bool = False,
    n_lines: int = 0,
    seed: int = 0,
) -> Path:
    """Median, 50% and 90% bands of ``replicated`` (draws x years) with the observations."""
    fig = new_figure(figsize=(8, 4.5), dpi=110)
    ax = fig.subplots()
    q = np.quantile(replicated, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    ax.fill_between(years, q[0], q[4], color="C0", alpha=0.2, label="90% predictive interval")
    ax.fill_between(years, q[1], q[3], color="C0", alpha=0.35, label="50% predictive interval")
    ax.plot(years, q[2], color="C0", lw=1.5, label="predictive median")
    if n_lines:
        rng = np.random.default_rng(seed)
        for i in rng.choice(len(replicated), size=min(n_lines, len(replicated)), replace=False):
            ax.plot(years, replicated[i], color="C0", lw=0.4, alpha=0.3)
    ax.plot(years, observed, "o-", color="black", ms=4, lw=1, label="observed (MOU final)")
    if log_scale:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("year")
    ax.set_ylabel("arrivals in South Korea")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def forecast_fan(
    years_obs: np.ndarray,
    observed: np.ndarray,
    years: np.ndarray,
    draws: np.ndarray,
    path: str | Path,
    *,
    title: str,
    extrapolated: np.ndarray | None = None,
    extrapolated_label: str = "",
) -> Path:
    """Observed series and a forecast fan (median, 50/80/95% bands); extrapolated years marked."""
    fig = new_figure(figsize=(8.5, 5.2), dpi=110)
    ax = fig.subplots()
    window = f"{int(years_obs[0])}-{int(years_obs[-1])}"
    ax.plot(years_obs, observed, "o-", color="black", ms=3.5, lw=1, label=f"observed {window}")
    q = np.quantile(draws, [0.025, 0.10, 0.25, 0.5, 0.75, 0.90, 0.975], axis=0)
    for (lo, hi), a, lab in (((0, 6), 0.15, "95%"), ((1, 5), 0.25, "80%"), ((2, 4), 0.4, "50%")):
        ax.fill_between(years, q[lo], q[hi], color="C1", alpha=a, lw=0, label=f"{lab} interval")
    ax.plot(years, q[3], color="C1", lw=1.8, label="median forecast")
    if extrapolated is not None and extrapolated.any():
        top = float(np.nanmax(q[6])) * 1.02
        xs = years[extrapolated]
        ax.scatter(
            xs,
            np.full(len(xs), top),
            marker="^",
            color="crimson",
            s=18,
            zorder=5,
            label=f"extrapolation: {extrapolated_label} outside {window} range",
        )
    ax.axvline(years_obs[-1] + 0.5, color="grey", lw=0.8, ls=":")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("year")
    ax.set_ylabel("arrivals in South Korea")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=7.5, frameon=False)
    fig.tight_layout()
    return save_figure(fig, path)


def contrast_plot(contrasts: Any, path: str | Path, *, title: str) -> Path:
    """Per-year median difference to the baseline with 90% bands, one line per scenario."""
    df = contrasts[~contrasts["year"].str.startswith("cumulative")].copy()
    df["year"] = df["year"].astype(int)
    cum = contrasts[contrasts["year"].str.startswith("cumulative")]
    fig = new_figure(figsize=(11, 4.5), dpi=110)
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    for i, (name, g) in enumerate(df.groupby("scenario", sort=False)):
        c = f"C{i % 10}"
        ax.fill_between(g["year"], g["lower_90"], g["upper_90"], color=c, alpha=0.15, lw=0)
        ax.plot(g["year"], g["median_difference"], color=c, lw=1.5, label=name)
        ext = g[g["extrapolated"]]
        if len(ext):
            ax.scatter(ext["year"], ext["median_difference"], marker="^", color=c, s=16, zorder=5)
    ax.axhline(0, color="black", lw=0.8)
    base = ", ".join(sorted(set(df["baseline"])))
    ax.set_title(f"difference to {base} per year (median, 90%)", fontsize=9)
    ax.set_xlabel("year")
    ax.set_ylabel("arrivals difference")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    y = np.arange(len(cum))
    ax2.errorbar(
        cum["median_difference"],
        y,
        xerr=[cum["median_difference"] - cum["lower_90"], cum["upper_90"] - cum["median_difference"]],
        fmt="o",
        color="C0",
        capsize=3,
    )
    labels = [
        f"{r.scenario}{' (extrap.)' if r.extrapolated else ''}\nP(>{r.baseline})={r.prob_greater:.2f}"
        for r in cum.itertuples()
    ]
    ax2.set_yticks(y, labels, fontsize=7)
    ax2.axvline(0, color="black", lw=0.8)
    ax2.set_title(f"{cum['year'].iloc[0] if len(cum) else 'cumulative'}: difference (median, 90%)", fontsize=9)
    ax2.grid(alpha=0.3, axis="x")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def scenario_overlay(
    years_obs: np.ndarray,
    observed: np.ndarray,
    years: np.ndarray,
    draws: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    baseline: str | None = None,
    extrapolated: Mapping[str, str] | None = None,
) -> Path:
    """Every scenario's median and 80% band in one chart, over the observed series, saved to ``path``.

    ``draws``: scenario name -> (sample, year) forecast draws, in the order to draw them;
    ``extrapolated``: scenario name -> the drivers it takes outside the observed range (a
    non-empty value draws its median dashed); ``baseline`` is drawn bolder and named in the legend.
    """
    fig = scenario_overlay_figure(years_obs, observed, years, draws, baseline=baseline, extrapolated=extrapolated)
    return save_figure(fig, path)


def scenario_overlay_figure(
    years_obs: np.ndarray,
    observed: np.ndarray,
    years: np.ndarray,
    draws: Mapping[str, np.ndarray],
    *,
    baseline: str | None = None,
    extrapolated: Mapping[str, str] | None = None,
) -> Figure:
    """The figure of :func:`scenario_overlay` (720 x 390 px), not saved."""
    fig = new_figure(figsize=(7.2, 3.9), dpi=100)
    ax = fig.subplots()
    window = f"{int(years_obs[0])}-{int(years_obs[-1])}"
    horizon = f"{int(years[0])}-{int(years[-1])}"
    colours = colormaps["tab10"].colors if len(draws) <= 10 else colormaps["tab20"].colors
    flagged = {k for k, v in (extrapolated or {}).items() if v}
    (obs,) = ax.plot(years_obs, observed, "o-", color="black", ms=3, lw=1.2, label=f"observed {window}", zorder=5)
    handles, top = [obs], float(np.max(observed))
    for i, (name, d) in enumerate(draws.items()):
        c = colours[i % len(colours)]
        lo, med, hi = np.quantile(d, [0.10, 0.5, 0.90], axis=0)
        top = max(top, float(np.max(hi)))
        base = name == baseline
        ax.fill_between(years, lo, hi, color=c, alpha=0.2 if base else 0.12, lw=0)
        (line,) = ax.plot(
            years,
            med,
            color=c,
            lw=2.4 if base else 1.6,
            ls="--" if name in flagged else "-",
            label=name + (" (baseline)" if base else ""),
            zorder=4 if base else 3,
        )
        handles.append(line)
    ax.axvline(years_obs[-1] + 0.5, color="grey", lw=0.8, ls=":")
    # head room so the legend (upper left) stays above the observed series
    ax.set_ylim(0, max(top * 1.04, float(np.max(observed)) / 0.6))
    ax.set_xlim(years_obs[0] - 0.5, years[-1] + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("year")
    ax.set_ylabel("arrivals per year")
    ax.set_title(f"Forecast {horizon} by scenario: median (line) and 80% interval (band)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(
        handles=handles,
        loc="upper left",
        ncol=2,
        fontsize=7.5,
        framealpha=0.85,
        title=f"dashed: a driver outside its {window} range" if flagged else None,
        title_fontsize=7.5,
    )
    fig.tight_layout()
    return fig
