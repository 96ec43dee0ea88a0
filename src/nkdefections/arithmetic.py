"""The model's arithmetic, shared by the graph, the forecast kernel, the backtest, the nowcast, the checks and SBC.

One definition of each formula the model is made of, so the fitted graph, the forecasts
and the scores cannot drift apart:

* :func:`nb_shape` and :func:`nb_prob`: the negative binomial's shape ``phi = 1 / od**2``
  (``od`` is the model's ``overdispersion`` variable) and scipy/numpy's success
  probability ``phi / (phi + mu)``;
* :func:`lag_year`: the year a driver's value comes from (``t - lag``, or no later than
  what is known at a backtest origin);
* :func:`latent_step`: one step of the latent state, ``z_t = rho z_{t-1} + sigma e_t``;
* :func:`draw_counts`: Poisson or negative-binomial counts with mean ``mu``;
* :func:`mixture_log_pmf`: ``log p(y)`` of the equal-weight mixture over posterior draws.

The functions are written with plain operators so they work unchanged on numpy arrays,
xarray DataArrays and PyTensor variables, and each keeps the exact floating-point
operations (and their order) of the code it replaced: routing a caller through here must
not change a single bit of a draw, a forecast or a score.  Pure numpy/scipy: no PyMC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from scipy.special import logsumexp


def flatten_draws(da: Any) -> np.ndarray:
    """Values of a DataArray with leading (chain, draw) dims as (sample, ...)."""
    v = np.asarray(da.values)
    return v.reshape((-1,) + v.shape[2:])


def nb_shape(overdispersion: Any) -> Any:
    """Negative-binomial shape ``phi = 1 / overdispersion**2`` (``pymc.NegativeBinomial``'s ``alpha``).

    The model's ``overdispersion`` is ``1 / sqrt(phi)``; the variance of a count with mean
    ``mu`` is ``mu + mu**2 / phi``.  Works on numpy, xarray and PyTensor operands alike.
    """
    return 1.0 / overdispersion**2


def nb_prob(phi: Any, mu: Any) -> Any:
    """Success probability ``phi / (phi + mu)`` of the negative binomial with shape ``phi`` and mean ``mu``."""
    return phi / (phi + mu)


def lag_year(year: int, lag: int, known_until: int | None = None) -> int:
    """The year whose driver value enters year ``year`` under ``lag``.

    ``known_until`` caps it at the last year known (a backtest's status-quo mode holds
    drivers at the values known at the origin).
    """
    src = int(year) - int(lag)
    return src if known_until is None else min(src, int(known_until))


def latent_step(prev: Any, rho: Any, sigma: Any, eps: Any) -> Any:
    """One step of the latent state: ``rho * prev + sigma * eps`` (AR(1); ``rho = 1`` is a random walk)."""
    return rho * prev + sigma * eps


def transform_driver(x: Any, kind: str) -> Any:
    """A driver's value as it enters log mu: ``linear`` (itself) or ``log1p`` (``log(1 + x)``)."""
    if kind == "log1p":
        return np.log1p(x)
    return x


def student_t_scale(rng: np.random.Generator, nu: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``1 / sqrt(chi2_nu / nu)``, per draw (``nu`` has the leading axis): normal x this is Student-t."""
    nu = np.asarray(nu, dtype=float).reshape((-1,) + (1,) * (len(shape) - 1))
    return 1.0 / np.sqrt(rng.chisquare(np.broadcast_to(nu, shape)) / nu)


def draw_counts(mu: np.ndarray, rng: np.random.Generator, overdispersion: np.ndarray | None = None) -> np.ndarray:
    """Poisson (``overdispersion`` None) or negative-binomial counts with mean ``mu``.

    ``overdispersion`` is 1/sqrt(phi), one value per draw, broadcast against ``mu`` along
    the first axis.  One call of ``rng.poisson`` or ``rng.negative_binomial``.
    """
    mu = np.asarray(mu, dtype=float)
    if overdispersion is None:
        return rng.poisson(mu)
    phi = nb_shape(np.asarray(overdispersion, dtype=float))
    phi = phi.reshape(phi.shape + (1,) * (mu.ndim - phi.ndim))
    return rng.negative_binomial(phi, nb_prob(phi, mu))


def mixture_log_pmf(y: Any, mu: Any, alpha: Any | None = None) -> Any:
    """``log p(y)`` of the equal-weight mixture over the draws on the last axis of ``mu``.

    ``logsumexp_s log f(y | mu_s, alpha_s) - log S`` with ``f`` Poisson (``alpha`` None) or
    the negative binomial with shape ``alpha`` (see :func:`nb_shape`).  ``y`` has the shape
    of ``mu`` without its last axis; ``alpha`` broadcasts against ``mu``.
    """
    yy = np.asarray(y)[..., None]
    if alpha is None:
        lp = stats.poisson.logpmf(yy, mu)
    else:
        lp = stats.nbinom.logpmf(yy, alpha, nb_prob(alpha, mu))
    return logsumexp(lp, axis=-1) - np.log(np.shape(mu)[-1])
