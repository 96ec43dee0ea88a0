"""Forward draws compiled with FAST_COMPILE are the draws numba's compiled function gives (model/forward.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nkdefections.model import forward


def test_forward_compile_is_pytensors_python_linker():
    assert forward.FORWARD_COMPILE == {"mode": "FAST_COMPILE"}


def test_prior_predictive_draws_match_the_numba_compiled_function():
    import pymc as pm

    from nkdefections.model.defection import DefectionModel
    from nkdefections.model.graph import generative_model

    m = DefectionModel()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*effect of Potentials.*")
        with generative_model(m.data, m.config):
            numba = pm.sample_prior_predictive(draws=40, random_seed=20161231)  # PyTensor's default backend
        python = m.sample_prior_predictive(draws=40, seed=20161231)  # the package's path
    for group in ("prior", "prior_predictive"):
        a, b = numba[group], python[group]
        assert set(a.data_vars) == set(b.data_vars)
        for name in a.data_vars:
            x, y = a[name].values, b[name].values
            if np.issubdtype(x.dtype, np.integer):
                np.testing.assert_array_equal(x, y, err_msg=f"{group}.{name}")
            else:  # the same random stream; NumPy and numba round the transforms differently in the last bits
                np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12, err_msg=f"{group}.{name}")


def test_another_seed_gives_other_draws():  # the comparison above would pass if both paths ignored the seed
    from nkdefections.model.defection import DefectionModel

    m = DefectionModel()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*effect of Potentials.*")
        a = m.sample_prior_predictive(draws=20, seed=1).prior_predictive["arrivals"].values
        b = m.sample_prior_predictive(draws=20, seed=2).prior_predictive["arrivals"].values
    assert not np.array_equal(a, b)


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
