"""Copy the by-sex tables of a ``model=by_sex`` run into results/ and write results/summary.md.

.venv/bin/nkdefections model=by_sex output_dir=outputs/exp_by_sex
.venv/bin/python experiments/by_sex/collect.py outputs/exp_by_sex
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def main(run_dir: Path) -> None:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    fx = pd.read_csv(run_dir / "share_effects.csv")
    fx.round(4).to_csv(out / "share_effects.csv", index=False)
    t = pd.read_csv(run_dir / "forecast_by_sex.csv")
    keep = t[t["year"].astype(str).str.startswith("cumulative") | (t["year"].astype(str) == "2017")]
    keep.round(3).to_csv(out / "by_sex_2017_and_cumulative.csv", index=False)
    lines = [
        "| driver | per | effect on the logit share | 90% interval | share, pp | 90% interval | P(> 0) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.driver} | {r.unit} | {r.logit_median:+.2f} | {r.logit_lower_90:+.2f} to {r.logit_upper_90:+.2f} | "
        f"{r.share_pp_median:+.1f} | {r.share_pp_lower_90:+.1f} to {r.share_pp_upper_90:+.1f} | {r.prob_positive:.2f} |"
        for r in fx.itertuples()
    ]
    cum = keep[keep["year"].astype(str).str.startswith("cumulative")]
    lines += ["", "| scenario | women | 80% | men | 80% | female share | 80% |", "|---|---|---|---|---|---|---|"]
    for name, g in cum.groupby("scenario", sort=False):
        f, m = g[g.sex == "female"].iloc[0], g[g.sex == "male"].iloc[0]
        lines.append(
            f"| {name} | {f['median']:,.0f} | {f.lower_80:,.0f}–{f.upper_80:,.0f} | {m['median']:,.0f} | "
            f"{m.lower_80:,.0f}–{m.upper_80:,.0f} | {f.female_share_median:.0%} | "
            f"{f.female_share_lower_80:.0%}–{f.female_share_upper_80:.0%} |"
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    meta = json.loads((run_dir / "run.json").read_text())
    prov = {k: meta[k] for k in ("fit_id", "data_hash", "code_version", "convergence", "horizon", "forecast_seed")}
    (out / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
