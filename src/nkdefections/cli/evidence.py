"""The ``nkdefections-evidence`` command: every evidence step and the model card."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from nkdefections.errors import NKDefectionsError
from nkdefections.evidence.runner import STEPS, build_card, run_step

log = logging.getLogger(__name__)

#: Default output folders, relative to the current folder (the experiments' folders in a checkout).
DEFAULT_OUT = {
    "backtest": "experiments/backtest/results",
    "compare": "experiments/model_comparison/results",
    "structures": "experiments/model_structures/results",
    "calibration": "experiments/calibration/results",
    "sensitivity": "experiments/prior_sensitivity/results",
    "sbc": "experiments/sbc/results",
    "nowcast": "experiments/nowcast/results",
    "card": "outputs/model-card",
}
#: The experiment README that gets the results spliced in when the default folder is used.
README = {
    "sbc": "experiments/sbc/README.md",
    "nowcast": "experiments/nowcast/README.md",
    "structures": "experiments/model_structures/README.md",
    "calibration": "experiments/calibration/README.md",
}


def _parser() -> argparse.ArgumentParser:
    from nkdefections.evidence.sbc import CONTROLS, SBCSettings

    d = SBCSettings()
    parser = argparse.ArgumentParser(prog="nkdefections-evidence", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=[*STEPS, "card"])
    parser.add_argument(
        "--out", type=Path, help="output folder (default: experiments/<step>/results; card: outputs/model-card)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--quick", action="store_true", help="small samplers: a smoke run, not the published numbers")
    parser.add_argument("--sims", type=int, default=None, help="sbc, card: SBC simulations (default 100; quick 12)")
    sbc = parser.add_argument_group("sbc")
    sbc.add_argument("--series", type=int, default=d.series, help="recovery series (0: skip recovery)")
    sbc.add_argument(
        "--controls",
        default=",".join(d.controls),
        help=f"comma-separated negative controls {sorted(CONTROLS)}; '' none",
    )
    sbc.add_argument("--control-sims", type=int, default=d.control_sims, help="simulations per negative control")
    sbc.add_argument("--seed", type=int, default=d.seed)
    sbc.add_argument("--draws", type=int, default=d.draws)
    sbc.add_argument("--tune", type=int, default=d.tune)
    sbc.add_argument("--chains", type=int, default=d.chains)
    sbc.add_argument("--thin", type=int, default=d.thin, help="L, posterior draws per rank")
    now = parser.add_argument_group("nowcast")
    now.add_argument("--refit", action="store_true", help="also the real-time variant (12 refits per year)")
    return parser


def _step_kwargs(args: argparse.Namespace, argv: list[str]) -> dict:
    if args.command == "nowcast":
        return {"refit": args.refit}
    if args.command != "sbc":
        return {}
    from nkdefections.evidence.sbc import SBCSettings

    settings = SBCSettings(
        sims=100 if args.sims is None else args.sims,
        series=args.series,
        controls=tuple(c for c in args.controls.split(",") if c),
        control_sims=args.control_sims,
        seed=args.seed,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        thin=args.thin,
        command=" ".join(["nkdefections-evidence", *argv]),
    )
    return {"settings": settings}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.sims is not None and args.sims < (0 if args.command == "sbc" else 1):
        parser.error(f"--sims: {args.sims} must be >= 1 (sbc: >= 0, 0 skips the calibration)")
    out = args.out or Path(DEFAULT_OUT[args.command])  # relative to the current folder
    try:
        if args.command == "card":
            path = build_card(out, quick=args.quick, overwrite=args.overwrite, sims=args.sims)
            print(f"wrote {path}")
            return 0
        kw = _step_kwargs(args, argv)
        readme = Path(README[args.command]) if args.out is None and args.command in README else None
        res = run_step(args.command, out, quick=args.quick, overwrite=args.overwrite, **kw)
        if readme is not None and readme.is_file() and "results_md" in res:
            from nkdefections.evidence.sbc import splice_readme

            splice_readme(readme, res["results_md"])
            print(f"updated {readme}")
        print(f"wrote {out}")
    except NKDefectionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
