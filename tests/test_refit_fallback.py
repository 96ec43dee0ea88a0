"""The refit engine's fallback ladder (issue 9), without sampling: each rung's fit is faked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nkdefections.config import GateConfig, SamplerConfig
from nkdefections.model.diagnostics import ConvergenceReport
from nkdefections.model.refit import FALLBACK_LADDER, RefitResult, Refitter


def _report(passed: bool) -> ConvergenceReport:
    table = pd.DataFrame({"parameter": ["rho"], "rhat": [1.0], "ess_bulk": [1000.0], "ess_tail": [1000.0]})
    return ConvergenceReport(table, 0 if passed else 3, 1000, 4, GateConfig(), [] if passed else ["3 divergences"])


@pytest.fixture
def scripted(monkeypatch):
    """Refitter._fit_once replaced by a script: which (form, GDP form, target_accept) pass, and a call log."""
    calls: list[tuple[str, str, float]] = []
    passing: set[tuple[str, str, float]] = set()

    def fake(self, inputs=None, *, seed=None, gate=None):
        key = (self.config.parameterization, self.config.gdp_form, self.sampler.target_accept)
        calls.append(key)
        x = self.default_inputs() if inputs is None else dict(inputs)
        return RefitResult(
            idata=None,
            convergence=_report(key in passing),
            seconds=1.5,
            inputs=x,
            parameterization=key[0],
            gdp_form=key[1],
            target_accept=key[2],
        )

    monkeypatch.setattr(Refitter, "_fit_once", fake)
    return calls, passing


@pytest.fixture(scope="module")
def refitter_args():
    return {"sampler": SamplerConfig(progressbar=False)}


def test_a_passing_fit_is_kept_without_a_second_try(scripted, refitter_args):
    calls, passing = scripted
    passing.add(("log_mu", "pinned", 0.95))
    fit = Refitter(**refitter_args).fit(seed=1)
    assert calls == [("log_mu", "pinned", 0.95)]
    assert fit.parameterization == "log_mu" and fit.first_attempt is None


def test_a_missed_gate_climbs_the_ladder_to_the_first_rung_that_passes(scripted, refitter_args):
    calls, passing = scripted
    passing.add(("log_mu", "pinned", 0.99))  # the second rung
    r = Refitter(**refitter_args)
    fit = r.fit(seed=1)
    assert calls == [("log_mu", "pinned", 0.95), ("noncentered", "centered", 0.95), ("log_mu", "pinned", 0.99)]
    assert fit.convergence.passed and fit.parameterization == "log_mu"
    assert fit.first_attempt is not None and not fit.first_attempt.passed
    assert fit.seconds == pytest.approx(3 * 1.5)  # every attempt counted
    # the rungs are compiled once and kept
    r.fit(seed=2)
    assert len(r._fallback_refitters) == 2


def test_when_no_rung_passes_the_first_fit_is_returned(scripted, refitter_args):
    calls, _ = scripted
    fit = Refitter(**refitter_args).fit(seed=1)
    assert len(calls) == 1 + len(FALLBACK_LADDER)
    assert not fit.convergence.passed and fit.parameterization == "log_mu"
    assert fit.first_attempt is None and fit.seconds == pytest.approx(len(calls) * 1.5)


def test_the_fallback_fits_the_same_inputs(scripted, refitter_args):
    calls, passing = scripted
    passing.add(("noncentered", "centered", 0.95))
    r = Refitter(**refitter_args)
    x = r.inputs(origin=2010)
    seen = []
    original = Refitter._fit_once

    def spy(self, inputs=None, **kw):
        seen.append({k: np.asarray(v).copy() for k, v in inputs.items()})
        return original(self, inputs, **kw)

    Refitter._fit_once = spy
    try:
        fit = r.fit(x, seed=3)
    finally:
        Refitter._fit_once = original
    assert fit.parameterization == "noncentered"
    assert seen[0].keys() == seen[1].keys()
    for k in seen[0]:
        np.testing.assert_array_equal(seen[0][k], seen[1][k])


def test_fallback_off_or_another_form_never_retries(scripted, refitter_args):
    import dataclasses

    from nkdefections.config import ModelConfig

    calls, _ = scripted
    Refitter(**refitter_args, fallback=False).fit(seed=1)
    nc = dataclasses.replace(ModelConfig(), parameterization="noncentered")
    Refitter(nc, **refitter_args).fit(seed=1)
    assert calls == [("log_mu", "pinned", 0.95), ("noncentered", "centered", 0.95)]


def test_the_last_rungs_change_the_gdp_block_and_are_recorded(scripted, refitter_args):
    calls, passing = scripted
    passing.add(("noncentered", "pinned", 0.95))  # the last rung
    fit = Refitter(**refitter_args).fit(seed=1)
    assert calls[1:] == [
        ("noncentered", "centered", 0.95),
        ("log_mu", "pinned", 0.99),
        ("noncentered", "centered", 0.99),
        ("log_mu", "noncentered", 0.95),
        ("noncentered", "pinned", 0.95),
    ]
    assert (fit.parameterization, fit.gdp_form) == ("noncentered", "pinned") and fit.convergence.passed
    from nkdefections.evaluate.sbc.calibration import fit_row

    row = fit_row(fit)
    assert (row["parameterization"], row["gdp_form"], row["target_accept"]) == ("noncentered", "pinned", 0.95)
    assert row["first_attempt_failures"] == "3 divergences"
