"""Figures (matplotlib, Agg backend): predictive fan charts over the observed series."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
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
    ax.set_xlabel("year")
    ax.set_ylabel("arrivals in South Korea")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
