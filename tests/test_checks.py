"""Predictive-check kernels and the convergence gate on fake posteriors (no sampling)."""

from __future__ import annotations

import numpy as np
import pytest

from nkdefections.config import GateConfig
from nkdefections.evaluate.checks import coverage, draw_counts, interval_table, one_step_replicates, shape_checks
from nkdefections.model.diagnostics import check_convergence

YEARS = np.arange(1999, 2017)
OBS = np.array(
    [148, 312, 583, 1142, 1285, 1898, 1384, 2028, 2554, 2803, 2914, 2402, 2706, 1502, 1514, 1397, 1275, 1418],
    dtype=float,
)


def test_interval_table_and_coverage_calibrated():
    rng = np.random.default_rng(0)
    mu = np.full(400, 50.0)
    observed = rng.poisson(mu).astype(float)
    rep = rng.poisson(mu, size=(4000, mu.size))
    tab = interval_table(np.arange(400), observed, rep)
    cov = coverage(tab).set_index("nominal")["empirical"]
    for p in (0.5, 0.8, 0.9, 0.95):
        assert abs(cov[p] - p) < 0.08
    assert 0.4 < tab["pit"].mean() < 0.6


def test_coverage_detects_miscalibration():
    rep = np.random.default_rng(1).poisson(100, size=(2000, 50))
    tab = interval_table(np.arange(50), np.full(50, 200.0), rep)
    assert coverage(tab)["empirical"].max() == 0.0


def test_shape_checks_pass_for_replicates_of_the_data_and_fail_otherwise():
    rng = np.random.default_rng(2)
    good = rng.poisson(OBS, size=(2000, OBS.size))
    res = shape_checks(YEARS, OBS, good).set_index("check")
    assert res["reproduced"].all(), res
    flat = rng.poisson(np.full(OBS.size, OBS.mean()), size=(2000, OBS.size))
    bad = shape_checks(YEARS, OBS, flat).set_index("check")
    assert not bad.loc["digits_1999", "reproduced"]
    assert not bad.loc["peak_year", "reproduced"]


def test_shape_checks_skip_years_outside_window():
    rng = np.random.default_rng(3)
    sub = slice(5, 12)  # 2004-2010
    res = shape_checks(YEARS[sub], OBS[sub], rng.poisson(OBS[sub], size=(500, 7)))
    assert set(res["check"]) == {"peak_value", "peak_year"}


def test_draw_counts_moments():
    rng = np.random.default_rng(4)
    mu = np.full((20000, 1), 1000.0)
    pois = draw_counts(mu, rng)
    assert abs(pois.mean() - 1000) < 5 and abs(pois.var() / 1000 - 1) < 0.05
    nb = draw_counts(mu, rng, overdispersion=np.full(20000, 0.2))
    # Var = mu + mu^2 / phi, phi = 1/0.2^2 = 25
    assert abs(nb.var() / (1000 + 1000**2 / 25) - 1) < 0.05


def test_one_step_replicates_follow_ar1():
    rng = np.random.default_rng(5)
    S, T = 4000, 6
    latent = np.tile(np.linspace(-1, 0, T), (S, 1))
    fixed = np.full((S, T), np.log(1000.0))
    rho, sigma = np.full(S, 0.5), np.full(S, 1e-6)
    rep = one_step_replicates(fixed + latent, latent, rho, sigma, rng)
    expect = 1000.0 * np.exp(0.5 * latent[0, :-1])
    np.testing.assert_allclose(rep.mean(axis=0), expect, rtol=0.02)
    rw = one_step_replicates(fixed + latent, latent, None, sigma, rng, kind="random_walk")
    np.testing.assert_allclose(rw.mean(axis=0), 1000.0 * np.exp(latent[0, :-1]), rtol=0.02)


# ------------------------------------------------------------- the gate on fake posteriors


def test_gate_passes_well_mixed_chains(fake_idata):
    rng = np.random.default_rng(6)
    idata = fake_idata({"a": rng.standard_normal((4, 1000)), "b": rng.standard_normal((4, 1000, 3))})
    rep = check_convergence(idata, ["a", "b"], GateConfig())
    assert rep.passed, rep.message()
    assert set(rep.table["parameter"]) == {"a", "b[0]", "b[1]", "b[2]"}


def test_gate_fails_on_rhat_ess_and_divergences(fake_idata):
    rng = np.random.default_rng(7)
    stuck = rng.standard_normal((4, 1000)) + np.array([0, 0, 0, 3.0])[:, None]
    sticky = np.cumsum(rng.standard_normal((4, 1000)) * 0.05, axis=1)
    div = np.zeros((4, 1000), dtype=bool)
    div[0, :3] = True
    idata = fake_idata({"stuck": stuck, "sticky": sticky}, diverging=div)
    rep = check_convergence(idata, ["stuck", "sticky"], GateConfig())
    msg = rep.message()
    assert not rep.passed
    assert "R-hat > 1.01" in msg and "stuck" in msg
    assert "ess bulk < 400" in msg and "sticky" in msg
    assert "3 divergent transition(s)" in msg
    assert "target_accept" in msg  # says what to try
    import re

    from nkdefections.config import PARAMETERIZATIONS

    suggested = [v.strip() for m in re.findall(r"model\.parameterization=([\w /]+)", msg) for v in m.split("/")]
    assert suggested and set(suggested) <= set(PARAMETERIZATIONS)  # only forms the config accepts
    relaxed = check_convergence(
        idata, ["stuck", "sticky"], GateConfig(rhat_max=10, ess_bulk_min=0, ess_tail_min=0, max_divergences=5)
    )
    assert relaxed.passed


def test_gate_treats_nan_diagnostics_as_failure(fake_idata):
    const = np.ones((4, 500))
    rep = check_convergence(fake_idata({"c": const}), ["c"], GateConfig())
    assert not rep.passed


@pytest.mark.parametrize("bad", [{"rhat_max": 0.9}, {"ess_bulk_min": -1}, {"max_divergences": -1}])
def test_gate_config_validation(bad):
    from nkdefections.errors import ConfigError

    with pytest.raises(ConfigError, match="gate."):
        GateConfig(**bad)
