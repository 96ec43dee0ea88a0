"""The shared arithmetic reproduces the formulas it replaced bit for bit (same operations, same RNG calls)."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats
from scipy.special import logsumexp

from nkdefections.arithmetic import draw_counts, lag_year, latent_step, mixture_log_pmf, nb_prob, nb_shape

pytestmark = pytest.mark.pure

RNG = np.random.default_rng(7)
OD = RNG.gamma(2.0, 0.1, size=500)
MU = RNG.gamma(3.0, 300.0, size=(500, 4))


def test_nb_shape_and_prob_are_the_written_out_formulas_on_numpy_and_xarray():
    np.testing.assert_array_equal(nb_shape(OD), 1.0 / OD**2)
    da = xr.DataArray(OD, dims="s")
    np.testing.assert_array_equal(nb_shape(da).values, (1.0 / da**2).values)
    phi = nb_shape(OD)[:, None]
    np.testing.assert_array_equal(nb_prob(phi, MU), phi / (phi + MU))


def test_draw_counts_makes_the_same_rng_calls():
    a = draw_counts(MU, np.random.default_rng(1), OD)
    phi = 1.0 / OD**2
    b = np.random.default_rng(1).negative_binomial(phi[:, None], phi[:, None] / (phi[:, None] + MU))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(draw_counts(MU, np.random.default_rng(2)), np.random.default_rng(2).poisson(MU))
    # one value per draw broadcast along the first axis, for 1-D mu too
    np.testing.assert_array_equal(
        draw_counts(MU[:, 0], np.random.default_rng(3), OD),
        np.random.default_rng(3).negative_binomial(phi, phi / (phi + MU[:, 0])),
    )


def test_mixture_log_pmf_matches_the_backtest_closure_and_the_scores():
    n = nb_shape(OD)
    for h in range(MU.shape[1]):
        for y in (0, 17, 900, 5000):
            p = n[:, None] / (n[:, None] + MU)
            old_nb = float(logsumexp(stats.nbinom.logpmf(y, n, p[:, h])) - np.log(len(n)))
            assert float(mixture_log_pmf(y, MU[:, h], n)) == old_nb
            old_p = float(logsumexp(stats.poisson.logpmf(y, MU[:, h])) - np.log(MU.shape[0]))
            assert float(mixture_log_pmf(y, MU[:, h])) == old_p
    ys = np.array([3, 400, 1000, 20])  # vectorised over leading axes: mu (..., S)
    got = mixture_log_pmf(ys, MU.T, n)
    want = logsumexp(stats.nbinom.logpmf(ys[:, None], n, n / (n + MU.T)), axis=-1) - np.log(MU.shape[0])
    np.testing.assert_array_equal(got, want)


def test_latent_step_and_lag_year():
    prev, rho, sigma, eps = RNG.normal(size=(4, 50))
    np.testing.assert_array_equal(latent_step(prev, rho, sigma, eps), rho * prev + sigma * eps)
    assert lag_year(2010, 1) == 2009
    assert lag_year(2014, 0, known_until=2012) == 2012
    assert lag_year(2011, 1, known_until=2012) == 2010
