"""Calibrated conditional forecasts: candidates for the latent innovation, judged by the backtest.

The rule is pre-registered in ``experiments/calibration/README.md`` and coded in :func:`decide`:
eligible = the full fit passes the gate and at most one of the 8 refits misses it; calibration
score C = the mean over the two modes of ``|log(error / spread)|`` (:mod:`nkdefections.evaluate.variance`);
the lowest C replaces the default only if at least :data:`MIN_GAIN` below the default's, its R
(mean of the six CRPS ratios against ``no_change``) at most :data:`MAX_R_LOSS` above, and its
ELPD-LFO no worse by more than one paired s.e.; C within :data:`TIE` count as tied, and the
candidate earlier in :data:`ORDER` wins a tie.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nkdefections.config import ModelConfig, SamplerConfig
from nkdefections.evidence.structures import run_structures, tied_best
from nkdefections.report.blocks import markdown_table

#: The rule's thresholds (experiments/calibration/README.md).
MIN_GAIN = 0.10
MAX_R_LOSS = 0.02
TIE = 0.05
MAX_FAILED_REFITS = 1
#: The tie-break: the default, then a documented option, then a new prior.
ORDER = ("default", "student_t", "sigma_small")
#: ``sigma_small``'s prior on the latent innovation's scale: mean 0.10.
SIGMA_SMALL_PRIOR = {"dist": "gamma", "alpha": 4.0, "beta": 40.0}
MODES = ("conditional", "status_quo")


def candidates(base: ModelConfig | None = None) -> dict[str, ModelConfig]:
    """The default and the two changes to its latent innovation, the reference first."""
    base = base or ModelConfig()
    rep = dataclasses.replace
    return {
        "default": base,
        "student_t": rep(base, name="student_t", innovations="student_t"),
        "sigma_small": rep(base, name="sigma_small", priors={**base.priors, "sigma_latent": SIGMA_SMALL_PRIOR}),
    }


def calibration_score(row: pd.Series) -> float:
    """C: the mean over the modes of ``|log(rms error / rms spread)|`` (0 = the spread matches the errors)."""
    return float(np.mean([abs(np.log(row[f"error_over_spread_{m}"])) for m in MODES]))


def decide(table: pd.DataFrame) -> tuple[str, str]:
    """Apply the pre-registered rule; return (winner, the reason in a sentence)."""
    t = table.set_index("candidate")
    best = tied_best(t, "C", TIE, lambda n: ORDER.index(n) if n in ORDER else len(ORDER), MAX_FAILED_REFITS)
    if best is None:
        return "default", "no candidate is eligible; the default stays."
    ref = t.loc["default"]
    if best == "default":
        return "default", f"the default's C ({ref['C']:.3f}) is within {TIE} of the best; it stays."
    b = t.loc[best]
    gain, r_loss = float(ref["C"] - b["C"]), float(b["R"] - ref["R"])
    diff, se = float(b["elpd_lfo_diff"]), float(b["elpd_lfo_se"])
    if gain < MIN_GAIN:
        return "default", f"{best} has the lowest C, but only {gain:.3f} below the default's (< {MIN_GAIN}); it stays."
    if r_loss > MAX_R_LOSS:
        return "default", f"{best} lowers C by {gain:.3f}, but raises R by {r_loss:.3f} (> {MAX_R_LOSS}); it stays."
    if diff < -se:
        return "default", f"{best} lowers C by {gain:.3f}, but its ELPD-LFO is {diff:+.2f} (s.e. {se:.2f}); it stays."
    return (
        best,
        f"{best} lowers C by {gain:.3f} (>= {MIN_GAIN}), R {r_loss:+.3f}, ELPD-LFO {diff:+.2f} ± {se:.2f}: "
        "it replaces the default.",
    )


def calibration_fragment(table: pd.DataFrame, winner: str, reason: str) -> str:
    """The README table: C, error/spread by mode, R, coverage, ELPD-LFO, targets, gate; then the verdict."""

    def pair(a: str, b: str, fmt: str = "{:.2f} / {:.2f}") -> list[str]:
        return [fmt.format(x, y) for x, y in zip(table[a], table[b], strict=True)]

    t = table.assign(
        spread=pair("error_over_spread_conditional", "error_over_spread_status_quo"),
        coverage=pair("coverage80_conditional", "coverage80_status_quo"),
        elpd=pair("elpd_lfo_diff", "elpd_lfo_se", "{:+.2f} ± {:.2f}"),
        met=[f"{m} of {n}" for m, n in zip(table["targets_met"], table["targets"], strict=True)],
        gate=[
            f"{'passed' if p else 'FAILED'} / {n}"
            for p, n in zip(table["full_fit_passed"], table["refits_failing_gate"], strict=True)
        ],
    )
    cols = {
        "candidate": "candidate",
        "C": "C",
        "spread": "error / spread cond / sq",
        "R": "R",
        "coverage": "80% coverage cond / sq",
        "elpd": "ELPD-LFO diff ± s.e.",
        "met": "backtest targets met",
        "gate": "full fit / refits off gate",
    }
    return "\n".join(
        [
            "*Written by `nkdefections-evidence calibration`; files in [`results/`](results/).*",
            "",
            "C: calibration score (0 = spread matches errors); error / spread: rms log error over rms predictive",
            "log s.d. (below 1: too wide); R: mean CRPS ratio against the fair `no_change`.",
            "",
            markdown_table(t[list(cols)].rename(columns=cols), "{:.3f}"),
            "",
            f"**Decision** (the pre-registered rule above): {reason}",
            "",
        ]
    )


def run_calibration(out: Path, *, sampler: SamplerConfig, origins: tuple[int, ...]) -> dict[str, Any]:
    """Backtest every candidate, score C, apply :func:`decide`, write the tables into ``out``."""

    def decide_with_c(table: pd.DataFrame) -> tuple[str, str]:
        table["C"] = [calibration_score(r) for _, r in table.iterrows()]
        return decide(table)

    return run_structures(
        out,
        candidates(),
        sampler=sampler,
        origins=origins,
        decide=decide_with_c,
        fragment=calibration_fragment,
        table_name="calibration",
    )
