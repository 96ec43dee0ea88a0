"""Predictive-check kernels on fake replicated arrays (no sampling); the gate is in tests/model/test_diagnostics.py."""

from __future__ import annotations

import numpy as np
import pytest

from nkdefections.evaluate.checks import coverage, draw_counts, interval_table, one_step_replicates, shape_checks

pytestmark = pytest.mark.pure

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
