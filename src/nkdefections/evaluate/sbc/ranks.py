"""SBC kernels: the quantities' labels, thinning, ranks and uniformity tests (pure numpy/scipy)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from scipy import stats

from nkdefections import constants as C
from nkdefections.config import GateConfig, SamplerConfig
from nkdefections.errors import ConfigError

if TYPE_CHECKING:  # importing the refit engine pulls in PyMC: only the drivers need it
    pass

log = logging.getLogger(__name__)


#: The dimension of simulated data sets / synthetic series.
SIMULATION = "simulation"
#: Posterior draws pooled over chains after thinning.
SAMPLE = "sample"
#: The derived quantity "log-likelihood of the simulated data".
LOGLIK = "loglik"
#: Default number of posterior draws kept for the ranks (ranks take L + 1 = 100 values).
THIN_TO = 99
#: Default seed of the SBC and recovery experiments.
SEED = 20161231
#: The known log-rate effects per unit of each driver used for recovery (as in tests/evaluate/test_recovery.py).
TRUE_BETA: dict[str, float] = {C.BORDER: -0.6, C.ECONOMY: -0.03, C.SANCTIONS: 0.06}
#: The convergence gate recorded for every refit (the project's default gate, never enforced here).
SBC_GATE = GateConfig(enforce=False)
#: Sampler settings of the SBC and recovery experiments: the defaults (4 chains x 2000 draws after 2000 tuning,
#: target_accept 0.95), as the fits they calibrate use.
SBC_SAMPLER = SamplerConfig(progressbar=False)


# ----------------------------------------------------------------------------
# Pure kernels: element labels, thinning, ranks
# ----------------------------------------------------------------------------


def element_values(ds: xr.Dataset, names: Sequence[str], sample_dim: str) -> dict[str, np.ndarray]:
    """Every element of the variables ``names`` as a 1-d array over ``sample_dim``.

    Labels follow the diagnostics table: ``level``, ``beta[border]``, ``gdp_true[1998]``
    (coordinate values, or positions where a dimension has no coordinate).
    """
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name not in ds:
            continue
        da = ds[name]
        extra = [d for d in da.dims if d != sample_dim]
        da = da.transpose(sample_dim, *extra)
        values = np.asarray(da.values, dtype=float)
        if not extra:
            out[name] = values
            continue
        labels = [list(da[d].values) if d in da.coords else list(range(da.sizes[d])) for d in extra]
        for idx in np.ndindex(*values.shape[1:]):
            lab = ",".join(str(labels[k][i]) for k, i in enumerate(idx))
            out[f"{name}[{lab}]"] = values[(slice(None), *idx)]
    return out


def thin_indices(n_total: int, L: int) -> np.ndarray:
    """Indices of ``L`` draws out of ``n_total`` pooled draws at a fixed stride ``n_total // L``.

    Draws are pooled chain after chain, so the stride thins every chain alike.
    """
    if L < 1 or n_total < L:
        raise ConfigError(f"sbc thinning: cannot keep {L} draws out of {n_total}; sample more draws or lower thin_to.")
    return np.arange(L) * (n_total // L)


def thin_posterior(posterior: xr.Dataset, L: int) -> xr.Dataset:
    """The posterior pooled over ``(chain, draw)`` (chain after chain) and thinned to ``L`` draws (dim ``sample``)."""
    stacked = posterior.stack({SAMPLE: (C.CHAIN, C.DRAW)}).drop_vars([SAMPLE, C.CHAIN, C.DRAW], errors="ignore")
    idx = thin_indices(stacked.sizes[SAMPLE], L)
    return stacked.isel({SAMPLE: idx})


def sbc_rank(true_value: float, draws: np.ndarray, rng: np.random.Generator) -> int:
    """Rank of ``true_value`` among ``draws``: the number of draws below it, ties split at random.

    Returns an integer in ``0..len(draws)``; uniform on that range for a calibrated procedure.
    """
    draws = np.asarray(draws, dtype=float)
    if not np.isfinite(true_value) or not np.isfinite(draws).all():
        raise ConfigError(f"sbc rank: non-finite value (true {true_value}, draws finite: {np.isfinite(draws).all()}).")
    less = int((draws < true_value).sum())
    ties = int((draws == true_value).sum())
    return less + (int(rng.integers(0, ties + 1)) if ties else 0)


# ----------------------------------------------------------------------------
# Pure kernels: uniformity tests for ranks in 0..L
# ----------------------------------------------------------------------------


def rank_counts(ranks: np.ndarray, L: int) -> np.ndarray:
    """``K[..., i-1] = #{r < i}`` for ``i = 1..L`` (last axis of ``ranks`` = simulations)."""
    ranks = np.asarray(ranks, dtype=np.int64)
    if ranks.size and (ranks.min() < 0 or ranks.max() > L):
        raise ConfigError(f"ranks must lie in 0..{L}; got {ranks.min()}..{ranks.max()}.")
    flat = ranks.reshape(-1, ranks.shape[-1])
    rows = np.arange(flat.shape[0])[:, None]
    hist = np.bincount((flat + rows * (L + 1)).ravel(), minlength=flat.shape[0] * (L + 1))
    hist = hist.reshape(flat.shape[0], L + 1)
    return np.cumsum(hist, axis=1)[:, :L].reshape(*ranks.shape[:-1], L)


@functools.lru_cache(maxsize=32)
def _binomial_cdf_table(n: int, L: int) -> np.ndarray:
    """``T[i-1, k] = P(Binomial(n, i/(L+1)) <= k)`` for ``i = 1..L``, ``k = 0..n``."""
    z = np.arange(1, L + 1) / (L + 1)
    return stats.binom.cdf(np.arange(n + 1)[None, :], n, z[:, None])


def _pointwise_p(counts: np.ndarray, n: int, L: int) -> np.ndarray:
    """Two-sided binomial tail probabilities of the counts ``K_i`` (last axis ``i = 1..L``)."""
    table = _binomial_cdf_table(n, L)
    i = np.arange(L)
    lower = table[i, counts]
    below = np.where(counts > 0, table[i, np.maximum(counts - 1, 0)], 0.0)
    return np.minimum(1.0, 2.0 * np.minimum(lower, 1.0 - below))


def ecdf_gamma(ranks: np.ndarray, L: int) -> float | np.ndarray:
    """Säilynoja et al.'s ECDF statistic: the smallest pointwise two-sided binomial tail probability.

    ``ranks`` (last axis: simulations) take values in ``0..L``.  Small values mean the
    rank ECDF strays far from uniform somewhere.
    """
    ranks = np.asarray(ranks)
    g = _pointwise_p(rank_counts(ranks, L), ranks.shape[-1], L).min(axis=-1)
    return float(g) if np.ndim(g) == 0 else g


@functools.lru_cache(maxsize=32)
def null_gamma(n: int, L: int, n_null: int, seed: int) -> np.ndarray:
    """Sorted draws of :func:`ecdf_gamma` for ``n`` independent uniform ranks (seeded)."""
    rng = np.random.default_rng(seed)
    out = np.empty(n_null)
    for start in range(0, n_null, 2000):  # in blocks, to keep memory small
        stop = min(n_null, start + 2000)
        ranks = rng.integers(0, L + 1, size=(stop - start, n))
        out[start:stop] = ecdf_gamma(ranks, L)
    return np.sort(out)


def ecdf_uniformity_test(ranks: np.ndarray, L: int, *, n_null: int = 10_000, seed: int = 0) -> float:
    """p-value of the ECDF (simultaneous band) test that ``ranks`` are uniform on ``0..L``.

    ``p = (1 + #{gamma_null <= gamma}) / (1 + n_null)``, with ``n_null`` simulated rank sets
    of the same size (seeded, cached): a conservative Monte Carlo p-value.
    """
    ranks = np.asarray(ranks)
    if ranks.ndim != 1 or len(ranks) < 2:
        raise ConfigError(f"ecdf test: need a 1-d set of at least 2 ranks, got shape {ranks.shape}.")
    null = null_gamma(len(ranks), L, n_null, seed)
    g = ecdf_gamma(ranks, L)
    return float((1 + np.searchsorted(null, g, side="right")) / (1 + n_null))


def ecdf_band(
    n: int, L: int, prob: float = 0.95, *, n_null: int = 10_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simultaneous ``prob`` band for the rank ECDF of ``n`` uniform ranks on ``0..L``.

    Returns ``(z, lower, upper)``: the evaluation points ``z_i = i/(L+1)`` and the band
    on the ECDF scale (counts / n).  The ECDF stays inside at every point with probability
    at least ``prob`` (Säilynoja et al. 2022, simulation method); it is the acceptance
    region of :func:`ecdf_uniformity_test` at level ``1 - prob``.
    """
    null = null_gamma(n, L, n_null, seed)
    g_crit = float(np.quantile(null, 1.0 - prob, method="lower"))
    z = np.arange(1, L + 1) / (L + 1)
    k = np.arange(n + 1)
    p = _pointwise_p(np.broadcast_to(k[:, None], (n + 1, L)).copy(), n, L)  # (k, i)
    inside = p >= g_crit
    lower = np.array([k[inside[:, i]].min() for i in range(L)]) / n
    upper = np.array([k[inside[:, i]].max() for i in range(L)]) / n
    return z, lower, upper


def chisq_uniformity_test(ranks: np.ndarray, L: int, bins: int = 10) -> float:
    """Pearson chi-square p-value of ``ranks`` (values ``0..L``) over ``bins`` rank bins (Talts et al. 2018).

    Bins split the ``L + 1`` rank values as evenly as possible; expected counts use each
    bin's exact share.  The chi-square approximation wants about 5 or more per bin.
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    edges = np.linspace(0, L + 1, bins + 1).round().astype(int)
    obs = np.histogram(ranks, bins=edges)[0]
    expected = len(ranks) * np.diff(edges) / (L + 1)
    return float(stats.chisquare(obs, expected).pvalue)


def randomized_pit(ranks: np.ndarray, L: int, rng: np.random.Generator) -> np.ndarray:
    """Continuous PIT values ``(r + U) / (L + 1)``, ``U ~ U(0, 1)``: exactly U(0, 1) when ranks are uniform."""
    ranks = np.asarray(ranks, dtype=float)
    return (ranks + rng.uniform(size=ranks.shape)) / (L + 1)


def pot_c_uniformity_test(ranks: np.ndarray, L: int, *, seed: int = 0) -> float:
    """ArviZ's ``pot_c`` uniformity test (arviz-stats) on randomised PIT values of ``ranks``."""
    from arviz_stats.base import array_stats

    u = randomized_pit(ranks, L, np.random.default_rng(seed))
    p, _, _ = array_stats.uniformity_test(u, axis=-1, method="pot_c")
    return float(p)
