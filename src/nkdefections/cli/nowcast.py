"""The ``nkdefections-nowcast`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nkdefections.forecast.nowcast.nowcast import nowcast, nowcast_summary
from nkdefections.forecast.nowcast.share import MONTHS, PRIORS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="nkdefections-nowcast",
        description="Predictive distribution of a year's arrivals from its year-to-date count.",
    )
    parser.add_argument("--year", type=int, required=True, help="calendar year of the partial count")
    parser.add_argument("--month-end", type=int, required=True, help="last month of the period (6 = Jan-Jun)")
    parser.add_argument("--day", type=int, default=None, help="period ends on this day of --month-end")
    parser.add_argument("--count", type=int, required=True, help="arrivals from January 1 to the period's end")
    parser.add_argument("--posterior", type=Path, default=None, help="a saved posterior (DefectionModel.save)")
    parser.add_argument(
        "--prior", choices=PRIORS, default=None, help="default: model with --posterior, else loguniform"
    )
    parser.add_argument("--scenario", default="status_quo", help="drivers beyond the fit window")
    parser.add_argument("--binomial", action="store_true", help="binomial instead of beta-binomial")
    parser.add_argument("--no-leave-out", action="store_true", help="let the year's own final count fit the share")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from nkdefections.errors import NKDefectionsError

    try:
        model = None
        if args.posterior is not None:
            from nkdefections.model.defection import DefectionModel

            model = DefectionModel.load(args.posterior)
        res = nowcast(
            args.count,
            args.year,
            args.month_end,
            day=args.day,
            model=model,
            prior=args.prior,
            leave_out=not args.no_leave_out,
            overdispersed=not args.binomial,
            scenario=args.scenario,
            seed=args.seed,
        )
    except NKDefectionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    a = res.attrs
    end = f"{MONTHS[a['month_end'] - 1]}" + ("" if a["day"] < 0 else f" {a['day']}")
    print(
        f"nowcast of {a['year']} from {a['partial_count']} arrivals in Jan-{end} ({a['fraction']:.1%} of the year); "
        f"prior: {a['prior']}, observation model: {a['observation_model']}"
    )
    print(
        f"expected share by then {a['share_expected_median']:.3f} (share curve fitted on {a['share_years']}); "
        f"naive x/f estimate {a['naive_estimate']:.0f}; effective draws {a['effective_draws']:.0f}"
    )
    print(nowcast_summary(res).to_string(index=False, float_format=lambda v: f"{v:.0f}"))
    return 0


_main = main  # the name before the console script existed (tests/forecast/test_nowcast.py)


if __name__ == "__main__":
    raise SystemExit(main())
