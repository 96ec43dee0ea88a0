"""The calibration experiment's pre-registered rule (experiments/calibration/README.md), on made-up tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nkdefections.evidence import calibration as K

pytestmark = pytest.mark.pure


def _table(**overrides: dict) -> pd.DataFrame:
    base = {
        "default": dict(C=0.60, R=0.70, elpd_lfo_diff=0.0, elpd_lfo_se=0.0),
        "student_t": dict(C=0.30, R=0.70, elpd_lfo_diff=0.1, elpd_lfo_se=0.3),
        "sigma_small": dict(C=0.10, R=0.69, elpd_lfo_diff=0.2, elpd_lfo_se=0.3),
    }
    rows = []
    for name, row in base.items():
        rows.append(
            {"candidate": name, "full_fit_passed": True, "refits_failing_gate": 0, **row, **overrides.get(name, {})}
        )
    return pd.DataFrame(rows)


def test_the_lowest_calibration_score_wins_when_it_keeps_skill_and_lfo():
    assert K.decide(_table())[0] == "sigma_small"


def test_a_tie_goes_to_the_documented_option():
    winner, reason = K.decide(_table(student_t={"C": 0.14}))
    assert winner == "student_t", reason


@pytest.mark.parametrize(
    "overrides, why",
    [
        ({"sigma_small": {"C": 0.55}, "student_t": {"C": 0.52}}, "only"),  # gain 0.08 < 0.10
        ({"sigma_small": {"R": 0.73}, "student_t": {"C": 0.59}}, "raises R"),  # skill lost
        ({"sigma_small": {"elpd_lfo_diff": -1.0}, "student_t": {"C": 0.59}}, "ELPD-LFO"),
        ({"sigma_small": {"full_fit_passed": False}, "student_t": {"refits_failing_gate": 2}}, "within"),
    ],
)
def test_the_default_stays_unless_every_condition_holds(overrides, why):
    winner, reason = K.decide(_table(**overrides))
    assert winner == "default" and why in reason, reason


def test_calibration_score_is_zero_when_spread_matches_errors_and_symmetric_in_the_log():
    row = pd.Series({"error_over_spread_conditional": 1.0, "error_over_spread_status_quo": 1.0})
    assert K.calibration_score(row) == 0.0
    wide = pd.Series({"error_over_spread_conditional": 0.5, "error_over_spread_status_quo": 2.0})
    assert K.calibration_score(wide) == pytest.approx(math.log(2.0))


def test_the_candidates_change_only_the_latent_innovation():
    c = K.candidates()
    assert list(c) == list(K.ORDER)
    assert c["student_t"].innovations == "student_t" and c["student_t"].priors == c["default"].priors
    assert c["sigma_small"].priors["sigma_latent"] == K.SIGMA_SMALL_PRIOR
    assert {k: v for k, v in c["sigma_small"].priors.items() if k != "sigma_latent"} == {
        k: v for k, v in c["default"].priors.items() if k != "sigma_latent"
    }
