"""Figures of the SBC and recovery experiments.

Drawn on :class:`~matplotlib.figure.Figure` objects with their own Agg canvas
(:func:`nkdefections.report.plots.new_figure`): nothing here selects a pyplot backend.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from nkdefections import constants as C
from nkdefections.evaluate.sbc.ranks import SIMULATION, ecdf_band, randomized_pit, rank_counts
from nkdefections.evaluate.sbc.recovery import RecoveryResult
from nkdefections.evaluate.sbc.simulate import group_of
from nkdefections.report.plots import new_figure, save_figure

if TYPE_CHECKING:  # importing the refit engine pulls in PyMC: only the drivers need it
    pass

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------
# Figures (matplotlib Figure objects on an Agg canvas)
# ----------------------------------------------------------------------------


def _grid(n: int, ncols: int, size: tuple[float, float] = (2.4, 1.9)) -> tuple[Any, np.ndarray]:
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig = new_figure(figsize=(size[0] * ncols, size[1] * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def plot_ecdf(
    ranks: pd.DataFrame,
    L: int,
    path: str | Path,
    *,
    prob: float = 0.95,
    summary: pd.DataFrame | None = None,
    n_null: int = 10_000,
    seed: int = 0,
    ncols: int = 5,
    title: str | None = None,
) -> Path:
    """ECDF-difference plot of each column of ``ranks`` with the simultaneous ``prob`` band.

    Plots ``ECDF(z_i) - z_i`` at ``z_i = i/(L+1)`` (Säilynoja et al. 2022); the grey band is
    :func:`ecdf_band`.  With ``summary`` (from :func:`rank_summary`) each panel shows its
    ECDF-test p-value, red when flagged after Bonferroni, orange when flagged at the nominal level.
    """
    n = len(ranks)
    z, lo, hi = ecdf_band(n, L, prob, n_null=n_null, seed=seed)
    fig, axes = _grid(ranks.shape[1], ncols)
    info = summary.set_index("quantity") if summary is not None else None
    counts = rank_counts(ranks.to_numpy().T, L) / n  # (quantity, i)
    for ax, q, ecdf in zip(axes, ranks.columns, counts, strict=False):
        ax.fill_between(z, lo - z, hi - z, step="mid", color="0.85", lw=0)
        ax.axhline(0, color="0.5", lw=0.6)
        color, label = "C0", q
        if info is not None:
            r = info.loc[q]
            color = "C3" if r["flag_bonferroni"] else ("C1" if r["flag"] else "C0")
            label = f"{q}  p={r['p_ecdf']:.3f}"
        ax.step(z, ecdf - z, where="mid", color=color, lw=1.1)
        ax.set_title(label, fontsize=7.5)
        ax.tick_params(labelsize=6)
        ax.set_xlim(0, 1)
    fig.suptitle(
        title or f"SBC rank ECDF - uniform CDF, {n} simulations, L = {L}; grey: simultaneous {prob:.0%} band",
        fontsize=9,
    )
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_rank_hist(
    ranks: pd.DataFrame, L: int, path: str | Path, *, bins: int = 10, ncols: int = 5, title: str | None = None
) -> Path:
    """Rank histograms (``bins`` bins) with the pointwise 99% binomial range of each bin count (Talts et al.)."""
    n = len(ranks)
    edges = np.linspace(0, L + 1, bins + 1).round().astype(int)
    share = np.diff(edges) / (L + 1)
    lo, hi = stats.binom.ppf(0.005, n, share), stats.binom.ppf(0.995, n, share)
    fig, axes = _grid(ranks.shape[1], ncols)
    for ax, q in zip(axes, ranks.columns, strict=False):
        counts = np.histogram(ranks[q].to_numpy(), bins=edges)[0]
        ax.fill_between(edges, np.r_[lo, lo[-1]], np.r_[hi, hi[-1]], step="post", color="0.85", lw=0)
        ax.stairs(counts, edges, fill=True, color="C0", alpha=0.8)
        ax.axhline(n * share.mean(), color="0.4", lw=0.6)
        ax.set_title(q, fontsize=7.5)
        ax.tick_params(labelsize=6)
    fig.suptitle(title or f"SBC rank histograms, {n} simulations, L = {L}; grey: 99% range per bin", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_ecdf_pit_arviz(ranks: pd.DataFrame, L: int, path: str | Path, *, seed: int = 0) -> Path:
    """The same check drawn by ArviZ: :func:`arviz_plots.plot_ecdf_pit` on randomised PIT values.

    A cross-check of :func:`plot_ecdf` with ArviZ's own implementation (its default
    ``pot_c`` method highlights the points that drive a rejection instead of drawing a band).
    """
    import arviz_plots as azp
    import matplotlib.pyplot as plt  # ArviZ draws through pyplot; only its own figures are closed below

    rng = np.random.default_rng(seed)
    pit = {
        q.replace("[", "_").replace("]", "").replace(",", "_"): (
            (C.CHAIN, C.DRAW),
            randomized_pit(ranks[q].to_numpy(), L, rng)[None, :],
        )
        for q in ranks.columns
    }
    dt = xr.DataTree.from_dict({"prior_sbc": xr.Dataset(pit)})
    before = set(plt.get_fignums())
    try:
        pc = azp.plot_ecdf_pit(dt, group="prior_sbc", backend="matplotlib")
        path = Path(path)
        pc.savefig(path)
    finally:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
    return path


def plot_recovery(result: RecoveryResult, path: str | Path, quantities_: Sequence[str] | None = None) -> Path:
    """Per quantity, each series' 50% and 90% intervals and mean against the true value."""
    tab = result.table[result.table["quantity"] != C.LATENT]
    names = list(quantities_ or [q for q in tab["quantity"].unique() if group_of(q) != C.EFFECT_PCT])
    fig, axes = _grid(len(names), 4, size=(3.0, 2.4))
    for ax, q in zip(axes, names, strict=False):
        t = tab[tab["quantity"] == q].sort_values(SIMULATION)
        x = np.arange(len(t))
        ax.vlines(x, t["q05"], t["q95"], color="C0", lw=0.8)
        ax.vlines(x, t["q25"], t["q75"], color="C0", lw=2.5)
        ax.plot(x, t["mean"], "o", color="C0", ms=2)
        ax.axhline(float(t["truth"].iloc[0]), color="C3", lw=1)
        if group_of(q) == C.BETA:
            ax.axhline(0, color="0.5", lw=0.6, ls=":")
        ax.set_title(q, fontsize=8)
        ax.set_xlabel("series", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle("Recovery: 50% (thick) and 90% intervals per synthetic series; red: the true value", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
