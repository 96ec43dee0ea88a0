"""The ``nkdefections-evidence`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from nkdefections.errors import NKDefectionsError
from nkdefections.evidence.runner import STEPS, build_card, run_step

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nkdefections.evidence", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=[*STEPS, "card"])
    parser.add_argument("--out", type=Path, help="output folder (default: experiments/<command> or outputs/model-card)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--quick", action="store_true", help="small samplers: a smoke run, not the published numbers")
    parser.add_argument("--sims", type=int, default=None, help="card: SBC simulations (default 100; quick 12)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.sims is not None and args.sims < 1:
        parser.error(f"--sims: {args.sims} must be >= 1")
    defaults = {
        "backtest": "experiments/backtest/results",
        "compare": "experiments/model_comparison/results",
        "sensitivity": "experiments/prior_sensitivity/results",
        "card": "outputs/model-card",
    }
    out = args.out or Path(defaults[args.command])  # relative to the current folder
    try:
        if args.command == "card":
            path = build_card(out, quick=args.quick, overwrite=args.overwrite, sims=args.sims)
            print(f"wrote {path}")
        else:
            run_step(args.command, out, quick=args.quick, overwrite=args.overwrite)
            print(f"wrote {out}")
    except NKDefectionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
