"""Backtest of the by-sex model's female share: fit on ..origin, forecast the women given the totals.

.venv/bin/python experiments/by_sex/backtest.py   # 8 origins (2008-2015) x horizons 1-3, about 1 min

Writes results/share_backtest_scores.csv (one row per forecast), results/share_backtest_summary.csv
(per method and horizon: mean CRPS, coverage) and results/share_backtest.md; see
nkdefections.evaluate.share_backtest for what is scored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nkdefections.evaluate import scores as E
from nkdefections.evaluate.share_backtest import MODEL, NO_CHANGE, run_share_backtest

HERE = Path(__file__).resolve().parent


def main(out: Path) -> None:
    scores, fits = run_share_backtest()
    out.mkdir(parents=True, exist_ok=True)
    scores.to_csv(out / "share_backtest_scores.csv", index=False)
    summary = E.summary_by_horizon(scores)
    summary.round(4).to_csv(out / "share_backtest_summary.csv", index=False)
    m = summary[summary.method == MODEL].set_index("horizon")
    b = summary[summary.method == NO_CHANGE].set_index("horizon")
    pooled = scores[scores.method == MODEL]
    lines = [
        f"Share backtest of model=by_sex: {len(fits)} origins ({fits.origin.min()}-{fits.origin.max()}), "
        f"{int(fits['passed'].sum())} of {len(fits)} refits pass the gate, {fits.attrs['seconds']:.0f} s.",
        "",
        "| horizon | n | mean CRPS, by_sex | mean CRPS, share held | ratio | 50% coverage | 80% coverage |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in m.index:
        lines.append(
            f"| {h} | {m.at[h, 'n']} | {m.at[h, 'mean_crps']:.1f} | {b.at[h, 'mean_crps']:.1f} | "
            f"{m.at[h, 'mean_crps'] / b.at[h, 'mean_crps']:.2f} | {m.at[h, 'coverage_50']:.2f} | "
            f"{m.at[h, 'coverage_80']:.2f} |"
        )
    lines += [
        "",
        f"Pooled over horizons ({len(pooled)} forecasts): 50% coverage {pooled.covered_50.mean():.2f}, "
        f"80% coverage {pooled.covered_80.mean():.2f}.",
    ]
    (out / "share_backtest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "results")
    main(ap.parse_args().out)
