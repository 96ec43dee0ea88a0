"""Slow statistical test: parameter recovery on synthetic series with known driver effects.

Run with ``make test-slow``. Not part of the default run: 20 refits with the compiled refit
engine (:func:`nkdefections.evaluate.sbc.run_recovery`, about 3 minutes here). The full study, with
its tables and figures, is ``experiments/sbc/``; simulation-based calibration is
``tests/evaluate/test_sbc.py``.
"""

from __future__ import annotations

import pytest

from nkdefections.evaluate import sbc

pytestmark = pytest.mark.slow

#: The known effects (log-rate per unit); kept here so the test documents its truth.
TRUE_BETA = sbc.TRUE_BETA
EFFECTS = [f"beta[{d}]" for d in TRUE_BETA]


@pytest.fixture(scope="module")
def recovery():
    from nkdefections.model.refit import Refitter

    return sbc.run_recovery(20, seed=sbc.SEED, refitter=Refitter(sampler=sbc.SBC_SAMPLER))


def test_driver_effects_are_recovered(recovery):
    """50% and 90% intervals of the three effects over 20 synthetic series cover the truth.

    60 intervals per level. Were coverage nominal and the intervals independent, 47 or more
    of the 90% intervals would cover with probability 0.998 and 20..40 of the 50% intervals
    with probability 0.99 (binomial); at fixed true values Bayesian intervals need not be
    exactly nominal, so these bounds catch gross bias or overconfidence, not small shrinkage.
    The seeds are fixed, so the result is reproducible.
    """
    tab = recovery.table[recovery.table["quantity"].isin(EFFECTS)]
    assert len(tab) == 60
    cover90 = ((tab["q05"] <= tab["truth"]) & (tab["truth"] <= tab["q95"])).sum()
    cover50 = ((tab["q25"] <= tab["truth"]) & (tab["truth"] <= tab["q75"])).sum()
    assert cover90 >= 47, recovery.summary()
    assert 20 <= cover50 <= 40, recovery.summary()


def test_border_effect_is_detected(recovery):
    """The border effect is the one these data identify: its 90% interval is below zero more often than not.

    At the true effect of -45% the posterior is shrunk towards the prior mean 0 (SBC gives a
    contraction of about 0.8 for beta[border]: the expected shrinkage is about 0.2 x 0.6 on
    the log scale), and a latent shock around 2011-12 can mask part of the step, so the 90%
    interval excludes zero in about 70% of series (14 of 20 in experiments/sbc at this seed).
    The earlier 4-series version asked for 3 of 4, which overstated the power.  The bound is
    10 of 20: were the power 0.7, it would hold with probability 0.98 (binomial).
    """
    s = recovery.summary().set_index("quantity")
    assert s.loc["beta[border]", "sign_right_90"] >= 0.5, s
    # the other two effects are small next to their uncertainty: no claim of detection


def test_recovery_refits_converge(recovery):
    """Synthetic series like the real one sample cleanly: at most 5 divergences in any refit."""
    assert (recovery.fits["divergences"] <= 5).all(), recovery.fits
    assert len(recovery.fits) == 20
