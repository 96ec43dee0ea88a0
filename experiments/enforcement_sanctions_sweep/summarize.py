"""Pivot a gathered enforcement x sanctions sweep into a table and a figure.

.venv/bin/nkdefections -m experiment=enforcement_sanctions_sweep hydra.sweep.dir=outputs/exp_sweep
.venv/bin/python experiments/enforcement_sanctions_sweep/summarize.py outputs/exp_sweep
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent


def main(sweep_dir: Path) -> None:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    t = pd.read_csv(sweep_dir / "sweep_table.csv")
    cum = t[t["year"] == "cumulative 2017-2020"].copy()
    cols = [
        "sweep.border",
        "sweep.sanctions",
        "mean",
        "median",
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
        "extrapolated",
        "extrapolated_drivers",
    ]
    res = cum[cols].sort_values(["sweep.sanctions", "sweep.border"])
    num = ["mean", "median", "lower_80", "upper_80", "lower_95", "upper_95"]
    res[num] = res[num].round(0)
    res.to_csv(out / "cumulative_2017_2020.csv", index=False)
    pivot = cum.pivot(index="sweep.border", columns="sweep.sanctions", values="mean").round(0)
    pivot.to_csv(out / "expected_cumulative_pivot.csv")
    (out / "expected_cumulative_pivot.md").write_text(
        "| border index | "
        + " | ".join(f"sanctions {c:g}" for c in pivot.columns)
        + " |\n"
        + "|---|"
        + "---|" * len(pivot.columns)
        + "\n"
        + "\n".join(f"| {i:g} | " + " | ".join(f"{v:,.0f}" for v in row) + " |" for i, row in pivot.iterrows())
        + "\n"
    )
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for i, (s, g) in enumerate(cum.groupby("sweep.sanctions")):
        g = g.sort_values("sweep.border")
        c = f"C{i}"
        ax.fill_between(g["sweep.border"], g["lower_80"], g["upper_80"], color=c, alpha=0.15, lw=0)
        ax.plot(g["sweep.border"], g["mean"], "o-", color=c, ms=3, label=f"sanctions index {s:g}")
        ext = g[g["extrapolated"]]
        ax.scatter(ext["sweep.border"], ext["mean"], marker="^", color="crimson", s=18, zorder=5)
    ax.axvspan(1.25, 2.05, color="grey", alpha=0.08, lw=0)
    ax.text(1.3, ax.get_ylim()[1] * 0.95, "border index beyond 1999-2016 range", fontsize=7, va="top")
    ax.set_xlabel("border enforcement index from 2017 (1 = the 2011-12 tightening; 2016 = 1.25)")
    ax.set_ylabel("expected arrivals 2017-2020 (sum)")
    ax.set_title(
        "Expected cumulative arrivals 2017-2020: mean and 80% interval\n(red: a driver outside its observed range)",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "sweep.png")
    plt.close(fig)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
