"""The ``nkdefections-score`` command: score a pre-registered forecast against published figures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_EPILOG = """\
OBSERVED.csv has one row per published year, e.g.

    year,arrivals
    2017,<count>
    2018,<count>

Writes scores.csv, scorecard.md, scorecard.html, score_fan.png and score.json into --out.
Exit status 2 (one line on stderr) for input that cannot be scored or an existing --out.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nkdefections-score",
        description=(
            "Score a pre-registered forecast (a run folder or its forecast.nc) against newly published\n"
            "figures: CRPS, log score, PIT and 50/80/95% interval coverage per scenario and year and\n"
            "pooled, next to the no-change forecast from the last fitted year (skill ratio = model CRPS /\n"
            "no-change CRPS)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("forecast", type=Path, metavar="RUN_OR_FORECAST.nc", help="a run folder or a forecast .nc")
    parser.add_argument("observed", type=Path, metavar="OBSERVED.csv", help="published figures: year,arrivals")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="output folder (new or empty; see --overwrite)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    parser.add_argument("--seed", type=int, default=0, help="seed of the PIT randomisation and no-change draws")
    parser.add_argument("--no-plot", action="store_true", help="skip the figure")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from nkdefections.errors import NKDefectionsError
    from nkdefections.pipeline import score

    try:
        out = score(
            args.forecast, args.observed, args.out, overwrite=args.overwrite, seed=args.seed, plots=not args.no_plot
        )
    except NKDefectionsError as exc:
        print(f"nkdefections-score: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    import pandas as pd

    from nkdefections import constants as C

    pooled = pd.read_csv(out / C.SCORES_FILE, dtype={"year": str})
    pooled = pooled[pooled["year"] == "pooled"]
    print(
        f"scored {len(pooled)} scenario(s) over {int(pooled['n_years'].iloc[0])} year(s) "
        "(pooled CRPS, no-change CRPS, skill ratio, 80% coverage):"
    )
    for r in pooled.itertuples():
        print(f"  {r.scenario:<22} {r.crps:>8.1f} {r.no_change_crps:>8.1f}   {r.skill_ratio:5.2f}   {r.covered_80:.0%}")
    print(f"scorecard: {out / C.SCORECARD_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
