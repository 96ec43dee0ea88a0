"""Copy the small result tables and figures of a policy_scenarios run into results/.

.venv/bin/nkdefections experiment=policy_scenarios output_dir=outputs/exp_policy
.venv/bin/python experiments/policy_scenarios/collect.py outputs/exp_policy
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def main(run_dir: Path) -> None:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    cum = lambda df: df[df["year"].astype(str).str.startswith("cumulative")]  # noqa: E731
    pd.read_csv(run_dir / "effects.csv").to_csv(out / "effects.csv", index=False)
    cum(pd.read_csv(run_dir / "forecast_summary.csv")).round(0).to_csv(out / "cumulative.csv", index=False)
    s = pd.read_csv(run_dir / "forecast_summary.csv")
    s[s["year"].isin(["2017", "2020"])].round(0).to_csv(out / "years_2017_2020.csv", index=False)
    cum(pd.read_csv(run_dir / "contrasts.csv")).round(4).to_csv(out / "contrasts_cumulative.csv", index=False)
    pd.read_csv(run_dir / "exceedance.csv").round(3).to_csv(out / "exceedance.csv", index=False)
    a = cum(pd.read_csv(run_dir / "attribution.csv"))
    a = a[(a[["median_contribution", "lower_90", "upper_90"]].abs() > 0).any(axis=1)]
    a.round(0).to_csv(out / "attribution_cumulative.csv", index=False)
    for f in (
        "contrasts.png",
        "fan_status_quo.png",
        "fan_border_crackdown.png",
        "fan_border_reopening.png",
        "fan_combined_stress.png",
    ):
        shutil.copy(run_dir / f, out / f)
    c = pd.read_csv(out / "cumulative.csv")
    k = pd.read_csv(out / "contrasts_cumulative.csv")
    e = pd.read_csv(out / "exceedance.csv")
    e = e[(e.year.astype(str) == "2020") & (e.threshold == 2000)]
    lines = ["| scenario | median | 50% interval | 95% interval | extrapolated |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.scenario} | {r.median:,.0f} | {r.lower_50:,.0f}–{r.upper_50:,.0f} | {r.lower_95:,.0f}–{r.upper_95:,.0f} "
        f"| {'yes: ' + str(r.extrapolated_drivers) if r.extrapolated else 'no'} |"
        for r in c.itertuples()
    ]
    lines += [
        "",
        "| scenario | median difference | 90% interval | P(more arrivals than status quo) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.scenario} | {r.median_difference:+,.0f} | {r.lower_90:+,.0f} to {r.upper_90:+,.0f} | "
        f"{r.prob_greater:.2f} |"
        for r in k.itertuples()
    ]
    lines += [
        "",
        "P(arrivals in 2020 > 2,000): " + "; ".join(f"{r.scenario} {r.prob_exceed:.2f}" for r in e.itertuples()),
    ]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    meta = json.loads((run_dir / "run.json").read_text())
    keep = {k: meta[k] for k in ("fit_id", "data_hash", "code_version", "convergence", "horizon", "forecast_seed")}
    (out / "provenance.json").write_text(json.dumps(keep, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
