"""Candidate model structures judged by the backtest against the fair no-change.

The decision rule is pre-registered in ``experiments/model_structures/README.md`` and coded in
:func:`decide`: eligible = the full fit passes the gate and at most one of the 8 refits misses
it; score R = mean of the six CRPS ratios against ``no_change`` (two modes x h = 1..3); the
lowest R replaces the default only if at least :data:`MIN_GAIN` below the default's and its
ELPD-LFO is no worse than the default's by more than one paired s.e.; R within :data:`TIE`
count as tied, and the simpler candidate wins a tie.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nkdefections.config import ModelConfig, SamplerConfig
from nkdefections.report.blocks import markdown_table

log = logging.getLogger(__name__)

#: The rule's thresholds (experiments/model_structures/README.md).
MIN_GAIN = 0.05
TIE = 0.02
MAX_FAILED_REFITS = 1
#: The policy-shaped priors of the ``*_policy`` candidates.
POLICY = {
    "signs": {"border": "nonpositive"},
    "transforms": {"sanctions": "log1p"},
}
POLICY_SANCTIONS_PRIOR = {"dist": "normal", "mu": 0.0, "sigma": 0.1}


#: The default at pre-registration (``configs/model/ar1_linear.yaml``): free-signed border effect,
#: linear sanctions with N(0, 0.15) per index unit.  The rule replaced it by ``ar1_policy``.
LINEAR_SANCTIONS_PRIOR = {"dist": "normal", "mu": 0.0, "sigma": 0.15}


def linear_default() -> ModelConfig:
    """The reference of the experiment: the default as it was when the rule was committed."""
    base = ModelConfig()
    priors = {**base.priors, "beta_sanctions": LINEAR_SANCTIONS_PRIOR}
    return dataclasses.replace(base, name="ar1_linear", signs={}, transforms={}, priors=priors)


#: Candidate key -> its file in configs/model ("default" is the default at pre-registration).
FILES = {
    "default": "ar1_linear",
    "local_level": "local_level",
    "local_level_t": "local_level_t",
    "ar1_policy": "ar1_policy",
    "local_level_policy": "local_level_policy",
}


def candidates(base: ModelConfig | None = None) -> dict[str, ModelConfig]:
    """The candidates of ``configs/model/<FILES[key]>.yaml`` (a test keeps the two equal), the reference first."""
    base = base or linear_default()
    rep = dataclasses.replace
    policy_priors = {**base.priors, "beta_sanctions": POLICY_SANCTIONS_PRIOR}
    local = rep(base, name="local_level", latent="random_walk", startup_drift=True)
    local_t = rep(local, name="local_level_t", innovations="student_t")
    return {
        "default": base,
        "local_level": local,
        "local_level_t": local_t,
        "ar1_policy": rep(base, name="ar1_policy", priors=policy_priors, **POLICY),
        "local_level_policy": rep(local_t, name="local_level_policy", priors=policy_priors, **POLICY),
    }


#: How many rows of the README's candidate table each candidate changes (the tie-break).
CHANGES = {"default": 0, "local_level": 1, "ar1_policy": 2, "local_level_t": 2, "local_level_policy": 4}


def candidate_row(name: str, bt: Any, full_passed: bool, reference_scores: pd.DataFrame) -> dict[str, Any]:
    """One candidate's backtest against ``no_change``: six CRPS ratios, R, ELPD-LFO terms, coverage, gate."""
    from nkdefections.evaluate.backtest import backtest_targets

    s = pd.concat([bt.scores, reference_scores], ignore_index=True)
    s = s.assign(method=s["method"].replace({name: "default"})) if name != "default" else s
    targets = backtest_targets(s)
    ratios = targets[targets["target"].str.startswith("CRPS ratio")]
    row: dict[str, Any] = {"candidate": name}
    for r in ratios.itertuples():
        row[f"ratio_{r.mode}_h{r.horizon}"] = float(r.value)
    row["R"] = float(ratios["value"].mean())
    for mode in ("conditional", "status_quo"):
        cov = targets[(targets["target"] == "pooled 80% coverage") & (targets["mode"] == mode)]
        row[f"coverage80_{mode}"] = float(cov["value"].iloc[0])
    row["targets_met"] = int(targets["met"].sum())
    row["targets"] = int(len(targets))
    one = bt.scores[(bt.scores["horizon"] == 1) & (bt.scores["mode"] == "conditional")].sort_values("origin")
    row["_lfo"] = -one["log_score"].to_numpy()
    row["elpd_lfo"] = float(row["_lfo"].sum())
    row["full_fit_passed"] = bool(full_passed)
    row["refits_failing_gate"] = int((~bt.fits["passed"].astype(bool)).sum())
    row["max_divergences"] = int(bt.fits["divergences"].max())
    row["seconds"] = float(bt.seconds)
    if not bt.variance.empty:  # the spread-error ratio of each mode, pooled over horizons
        from nkdefections.evaluate.variance import spread_error

        for r in spread_error(bt.variance, by=("mode",)).itertuples():
            row[f"error_over_spread_{r.mode}"] = float(r.error_over_spread)
    return row


def tied_best(
    t: pd.DataFrame, score: str, tie: float, simpler: Callable[[str], int], max_failed: int = MAX_FAILED_REFITS
) -> str | None:
    """The eligible candidate of lowest ``score`` (rows of ``t`` indexed by candidate), ties to the simplest.

    Eligible: the full fit passes the gate and at most ``max_failed`` refits miss it.  Scores within
    ``tie`` of the lowest count as tied, and the lowest ``simpler(name)`` wins among them.  None when
    no candidate is eligible or the table has no ``default`` row.
    """
    eligible = t[t["full_fit_passed"] & (t["refits_failing_gate"] <= max_failed)]
    if eligible.empty or "default" not in t.index:
        return None
    tied = eligible[eligible[score] <= eligible[score].min() + tie]
    return min(tied.index, key=lambda n: (simpler(n), tied.loc[n, score]))


def decide(table: pd.DataFrame) -> tuple[str, str]:
    """Apply the pre-registered rule to the candidate table; return (winner, the reason in a sentence)."""
    t = table.set_index("candidate")
    best = tied_best(t, "R", TIE, lambda n: CHANGES.get(n, 9))
    if best is None:
        return "default", "no candidate is eligible; the default stays."
    ref = t.loc["default"]
    if best == "default":
        return "default", f"the default's R ({ref['R']:.3f}) is within {TIE} of the best; it stays."
    gain = float(ref["R"] - t.loc[best, "R"])
    diff, se = float(t.loc[best, "elpd_lfo_diff"]), float(t.loc[best, "elpd_lfo_se"])
    if gain < MIN_GAIN:
        return "default", f"{best} has the lowest R, but only {gain:.3f} below the default's (< {MIN_GAIN}); it stays."
    if diff < -se:
        return "default", f"{best} lowers R by {gain:.3f}, but its ELPD-LFO is {diff:+.2f} (s.e. {se:.2f}); it stays."
    return (
        best,
        f"{best} lowers R by {gain:.3f} (>= {MIN_GAIN}) with ELPD-LFO {diff:+.2f} ± {se:.2f}: it replaces the default.",
    )


def _paired(table: list[dict[str, Any]]) -> pd.DataFrame:
    ref = next(r for r in table if r["candidate"] == "default")["_lfo"]
    for r in table:
        delta = r["_lfo"] - ref
        r["elpd_lfo_diff"] = float(delta.sum())
        r["elpd_lfo_se"] = float(np.sqrt(len(delta)) * delta.std(ddof=1)) if r["candidate"] != "default" else 0.0
    return pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in table])


def run_structures(
    out: Path,
    variants: Mapping[str, ModelConfig] | None = None,
    *,
    sampler: SamplerConfig,
    origins: tuple[int, ...],
    decide: Callable[[pd.DataFrame], tuple[str, str]] = decide,
    fragment: Callable[[pd.DataFrame, str, str], str] | None = None,
    table_name: str = "structures",
) -> dict[str, Any]:
    """Backtest every candidate (plus its full-data fit), apply ``decide``, write the tables.

    The calibration experiment (:mod:`nkdefections.evidence.calibration`) passes its own
    candidates, rule and README fragment.
    """
    from nkdefections.evaluate.backtest import run_backtest
    from nkdefections.model.refit import Refitter

    variants = dict(variants or candidates())
    rows, reference = [], None
    for name, cfg in variants.items():
        r = Refitter(cfg, sampler=sampler)
        bt = run_backtest(
            refitter=r, origins=origins, baselines=("no_change",) if reference is None else (), method=name
        )
        if reference is None:
            reference = bt.scores[bt.scores["method"] == "no_change"]
            bt.scores = bt.scores[bt.scores["method"] != "no_change"]
        full = r.fit(r.inputs(), seed=2017)
        rows.append(candidate_row(name, bt, full.convergence.passed, reference))
        bt.scores.to_csv(out / f"scores_{name}.csv", index=False)
        bt.fits.assign(candidate=name).to_csv(out / f"fits_{name}.csv", index=False)
        bt.variance.to_csv(out / f"variance_{name}.csv", index=False)
        log.warning("%s: %s R = %.3f (%.0f s)", table_name, name, rows[-1]["R"], rows[-1]["seconds"])
    reference.to_csv(out / "scores_no_change.csv", index=False)
    table = _paired(rows)
    winner, reason = decide(table)
    table.to_csv(out / f"{table_name}.csv", index=False)
    md = (fragment or structures_fragment)(table, winner, reason)
    (out / "readme.md").write_text(md, encoding="utf-8")
    return {"table": table, "winner": winner, "reason": reason, "results_md": md}


def structures_fragment(table: pd.DataFrame, winner: str, reason: str) -> str:
    """The README table: six ratios, R, ELPD-LFO, coverage, gate; then the rule's verdict."""
    t = table.assign(
        conditional=[
            f"{a:.2f} / {b:.2f} / {c:.2f}"
            for a, b, c in zip(
                table["ratio_conditional_h1"], table["ratio_conditional_h2"], table["ratio_conditional_h3"], strict=True
            )
        ],
        status_quo=[
            f"{a:.2f} / {b:.2f} / {c:.2f}"
            for a, b, c in zip(
                table["ratio_status_quo_h1"], table["ratio_status_quo_h2"], table["ratio_status_quo_h3"], strict=True
            )
        ],
        elpd=[f"{d:+.2f} ± {s:.2f}" for d, s in zip(table["elpd_lfo_diff"], table["elpd_lfo_se"], strict=True)],
        coverage=[
            f"{a:.2f} / {b:.2f}"
            for a, b in zip(table["coverage80_conditional"], table["coverage80_status_quo"], strict=True)
        ],
        gate=[
            f"{'passed' if p else 'FAILED'} / {n} ({d})"
            for p, n, d in zip(
                table["full_fit_passed"], table["refits_failing_gate"], table["max_divergences"], strict=True
            )
        ],
        met=[f"{m} of {n}" for m, n in zip(table["targets_met"], table["targets"], strict=True)],
    )
    cols = {
        "candidate": "candidate",
        "conditional": "conditional ratio h=1/2/3",
        "status_quo": "status-quo ratio h=1/2/3",
        "R": "R",
        "elpd": "ELPD-LFO diff ± s.e.",
        "coverage": "80% coverage cond / sq",
        "met": "targets met",
        "gate": "full fit / refits off gate (max div.)",
    }
    return "\n".join(
        [
            "*Written by `nkdefections-evidence structures`; files in [`results/`](results/).*",
            "",
            "CRPS ratios against the fair `no_change` over the same targets (< 1: better than no-change):",
            "",
            markdown_table(t[list(cols)].rename(columns=cols), "{:.3f}"),
            "",
            f"**Decision** (the pre-registered rule above): {reason}",
            "",
        ]
    )
