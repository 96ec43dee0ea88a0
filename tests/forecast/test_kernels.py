"""Pure numerical kernels of the forecast (no fit needed)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nkdefections.forecast.kernel import count_ppf, poisson_ppf

pytestmark = pytest.mark.pure


@pytest.mark.parametrize("log_lo, log_hi", [(-3, 1), (0, 5), (5, 10)])
def test_poisson_ppf_equals_scipy(log_lo, log_hi):
    rng = np.random.default_rng(log_hi)
    mu = np.exp(rng.uniform(log_lo, log_hi, 50_000))
    u = rng.uniform(size=mu.size)
    np.testing.assert_array_equal(poisson_ppf(u, mu), stats.poisson.ppf(u, mu))


def test_count_ppf_shapes_and_negative_binomial():
    rng = np.random.default_rng(1)
    mu = np.exp(rng.uniform(3, 8, size=(200, 3, 5)))
    u = rng.uniform(size=(200, 1, 5))  # shared by the 3 "scenarios"
    y = count_ppf(u, mu, None)
    assert y.shape == mu.shape
    # common random numbers: a larger mean never gives a smaller count for the same uniform
    order = np.argsort(mu, axis=1)
    assert (np.diff(np.take_along_axis(y, order, axis=1), axis=1) >= 0).all()
    od = rng.uniform(0.05, 0.5, size=200)
    phi = (1 / od**2)[:, None, None]
    expect = stats.nbinom.ppf(np.broadcast_to(u, mu.shape), phi, phi / (phi + mu))
    np.testing.assert_array_equal(count_ppf(u, mu, od), expect)
