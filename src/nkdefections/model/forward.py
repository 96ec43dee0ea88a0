"""Forward sampling (prior and posterior predictive draws) compiled for a single call.

PyMC compiles the function behind :func:`pymc.sample_prior_predictive` and
:func:`pymc.sample_posterior_predictive` with PyTensor's default backend, numba.  A forward
function is called a few hundred times and then thrown away, so numba's compile dominates:
measured on the default model (2 cores, 2026-12-07), a prior predictive of 500 draws took
17.8 s with empty compile caches and 3.5 s with warm ones, of which well under a second was
drawing.  Compiled with ``FAST_COMPILE`` (PyTensor's Python linker: every node runs its
NumPy ``perform``) the same call takes 1.9 s cold and 0.2 s warm.

The random streams are the same: both backends draw from the same NumPy ``Generator``
in the same order, so integer draws (the arrivals) are identical and real-valued ones
agree to the last few bits (the transforms are evaluated by NumPy instead of numba's
LLVM code; largest difference measured 7e-10 on values near 10^4).  Tested in
``tests/model/test_forward.py``.

Only forward draws use this mode.  The sampler's log density and gradient are compiled by
numba once per graph and cached on disk (:mod:`nkdefections.model.program_cache`), where
the compiled speed is what matters.
"""

from __future__ import annotations

from typing import Any

#: ``compile_kwargs`` for PyMC's forward-sampling functions (see the module docstring)
FORWARD_COMPILE: dict[str, Any] = {"mode": "FAST_COMPILE"}


def sample_prior_predictive(draws: int, seed: Any, **kwargs: Any) -> Any:
    """:func:`pymc.sample_prior_predictive` in the model context, compiled with :data:`FORWARD_COMPILE`."""
    import pymc as pm

    return pm.sample_prior_predictive(draws=draws, random_seed=seed, compile_kwargs=dict(FORWARD_COMPILE), **kwargs)


def sample_posterior_predictive(idata: Any, seed: Any, **kwargs: Any) -> Any:
    """:func:`pymc.sample_posterior_predictive` in the model context, compiled with :data:`FORWARD_COMPILE`."""
    import pymc as pm

    return pm.sample_posterior_predictive(idata, random_seed=seed, compile_kwargs=dict(FORWARD_COMPILE), **kwargs)
