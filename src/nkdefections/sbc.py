r"""Correctness of the inference: simulation-based calibration and parameter recovery.

Two checks of the *whole fitting procedure* (model + NUTS + the refit engine), issue 4:

**Simulation-based calibration** (SBC; Talts et al. 2018, Modrák et al. 2023).  Draw
every parameter :math:`\theta^{(n)}` and a data set :math:`y^{(n)}` from the model's
prior, refit the model to :math:`y^{(n)}`, and take the rank of each true value among
:math:`L` (thinned) posterior draws.  If the procedure computes the posterior
correctly, every rank is uniform on :math:`\{0, \dots, L\}`; the shape of a
non-uniform rank distribution says what is wrong (a U shape: posteriors too narrow, a
hump: too wide, a slope: biased).

**Parameter recovery.**  Simulate series from *fixed* known parameters (the real drivers,
known effects, :data:`TRUE_BETA`), refit, and measure bias, the coverage of the 50% and
90% intervals, and how often the border effect's 90% interval excludes zero (power).
At fixed parameters Bayesian intervals need not have nominal frequentist coverage; the
check guards against gross bias and shows what these 18 counts can identify.

The simulator and the fitted model are the same model
-----------------------------------------------------
:func:`simulate_prior` samples the **default graph** ``build_model(data, config)`` with
:func:`pymc.sample_prior_predictive` (variables ``arrivals`` and ``gdp_observed``: the GDP
figures at the years the real data have them, with their vintage's measurement s.d.).
The refit uses the evaluation graph the :class:`~nkdefections.refit.Refitter` compiles,
with two settings (:func:`sbc_inputs`):

* the soft known-sign ``Potential`` on 2005 GDP growth is switched off
  (``sign_constraint=False``): prior predictive sampling ignores Potentials, so the
  simulations do not obey it;
* the driver centre is pinned to the design's centre.  ``Refitter.inputs(gdp=...)``
  re-centres the economy column on the mean of the swapped GDP figures; with simulated
  figures that is a different centre from the one the simulator used, and since
  ``intercept = level - centre . beta`` it would be a different model (a data-dependent
  prior), not the one the data were drawn from.

``tests/test_sbc.py`` checks that, with these inputs, the evaluation graph's log density
equals the default graph's (free parameters + both likelihoods, without the Potential)
with the simulated data as observations, at random parameter values; and that it differs
when the centre is not pinned.  SBC itself is the end-to-end check.

Ranks and tests
---------------
Ranks are computed for every element of every free parameter (in constrained space, as
stored in the posterior) and for a few derived quantities: ``intercept`` (a linear
combination of level and effects), ``mu`` and ``latent`` in the last year, and
``loglik``, the log-likelihood of the simulated data (arrivals and GDP figures), which
Modrák et al. (2023) recommend because it reacts to miscalibration that no single
parameter shows.  ``effect_pct`` is a monotone function of ``beta`` and has the same
ranks, so it is not repeated.  The posterior (``chains x draws``, pooled chain after
chain) is thinned with a fixed stride to ``L`` draws to reduce autocorrelation; ties are
broken at random (seeded).

Uniformity per quantity is tested with the **ECDF test** of Säilynoja, Bürkner & Vehtari
(2022): with :math:`N` simulations, :math:`K_i = \#\{r < i\}` is Binomial(:math:`N, z_i`),
:math:`z_i = i/(L+1)`, at every :math:`i = 1..L` under uniformity; the statistic is the
smallest two-sided pointwise tail probability :math:`\gamma = \min_i 2\min(F(K_i),
1 - F(K_i - 1))` and its null distribution is simulated from uniform ranks (seeded).  Its
level-0.95 simultaneous band is what :func:`plot_ecdf` draws, so "the ECDF leaves the
band" and "p < 0.05" are the same event (up to the discreteness of :math:`\gamma`).  Also
reported: Pearson's chi-square on ``bins`` equal-probability rank bins (Talts et al.) and
ArviZ's ``pot_c`` test on randomised PIT values :math:`(r + U)/(L + 1)`.  With ``m``
quantities tested at level 0.05, about ``0.05 m`` false alarms are expected from a
calibrated procedure; :meth:`SBCResult.summary` reports both the nominal flags and the
Bonferroni flags (``p < 0.05 / m``, family-wise error 5%).

Failed refits (divergences, R-hat or ESS outside the gate) are **kept** in the ranks:
dropping them conditions on the simulated data and would itself bias the ranks.  They are
counted and reported, and the tests are repeated on the converged subset as a
sensitivity check only.

References
----------
Talts, Betancourt, Simpson, Vehtari & Gelman (2018), Validating Bayesian inference
algorithms with simulation-based calibration, arXiv:1804.06788.
Modrák, Moon, Kim, Bürkner, Huurre, Faltejsková, Gelman & Vehtari (2023),
Simulation-based calibration checking for Bayesian computation: the choice of test
quantities shapes sensitivity, Bayesian Analysis.
Säilynoja, Bürkner & Vehtari (2022), Graphical test for discrete uniformity and its
applications in goodness-of-fit evaluation and multiple sample comparison, Statistics
and Computing 32, 32.
"""

from __future__ import annotations

import functools
import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from nkdefections import constants as C
from nkdefections.config import GateConfig, ModelConfig, SamplerConfig
from nkdefections.errors import ConfigError

if TYPE_CHECKING:  # importing the refit engine pulls in PyMC: only the drivers need it
    from nkdefections.refit import Refitter

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
#: The known log-rate effects per unit of each driver used for recovery (as in tests/test_recovery.py).
TRUE_BETA: dict[str, float] = {C.BORDER: -0.6, C.ECONOMY: -0.03, C.SANCTIONS: 0.06}
#: The convergence gate recorded for every refit (the project's default gate, never enforced here).
SBC_GATE = GateConfig(enforce=False)
#: Sampler settings of the SBC and recovery experiments (4 chains x 500 draws after 500 tuning).
SBC_SAMPLER = SamplerConfig(draws=500, tune=500, chains=4, progressbar=False)


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


def _rank_counts(ranks: np.ndarray, L: int) -> np.ndarray:
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
    g = _pointwise_p(_rank_counts(ranks, L), ranks.shape[-1], L).min(axis=-1)
    return float(g) if np.ndim(g) == 0 else g


@functools.lru_cache(maxsize=32)
def _null_gamma(n: int, L: int, n_null: int, seed: int) -> np.ndarray:
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
    null = _null_gamma(len(ranks), L, n_null, seed)
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
    null = _null_gamma(n, L, n_null, seed)
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


# ----------------------------------------------------------------------------
# The simulator (PyMC prior predictive of the default graph)
# ----------------------------------------------------------------------------


def _load(config: ModelConfig | None, data: xr.Dataset | None) -> tuple[ModelConfig, xr.Dataset]:
    from nkdefections.data import DataConfig, load_data

    config = config or ModelConfig()
    if data is None:
        data = load_data(DataConfig(history=config.max_lag))
    return config, data


def simulate_prior(
    n: int, seed: int = SEED, *, config: ModelConfig | None = None, data: xr.Dataset | None = None
) -> xr.Dataset:
    """Draw ``n`` parameter sets and data sets from the model's prior (the SBC simulator).

    Samples the default graph ``build_model(data, config)`` with
    :func:`pymc.sample_prior_predictive`.  Simulation ``i`` depends only on ``seed`` and
    ``i`` (``simulate_prior(n, s)`` starts with ``simulate_prior(k, s)`` for ``k < n``).

    Parameters
    ----------
    n
        Number of simulations.
    seed
        Seed of the prior predictive draws.
    config, data
        The model and the real data whose design (drivers, GDP years and vintages) the
        simulations keep; defaults: :class:`ModelConfig` and :func:`load_data`.

    Returns
    -------
    xarray.Dataset
        Dimension ``simulation`` (0..n-1): every free parameter and deterministic of the
        model under its model name (the truths), ``arrivals`` (simulation, year), and
        ``gdp_growth`` (simulation, gdp_year): simulated GDP figures where the real data
        have one, NaN elsewhere.  ``attrs``: seed, n.
    """
    import pymc as pm

    from nkdefections.model import build_model, design

    if n < 1:
        raise ConfigError(f"simulations: {n} must be >= 1.")
    config, data = _load(config, data)
    d = design(data, config)
    model = build_model(data, config)
    with model, warnings.catch_warnings():
        # the only Potential is the soft known sign of 2005 GDP: the refit switches it off too
        warnings.filterwarnings("ignore", message=".*effect of Potentials.*")
        dt = pm.sample_prior_predictive(draws=n, random_seed=seed)
    prior = dt.prior.to_dataset().isel({C.CHAIN: 0}, drop=True).rename({C.DRAW: SIMULATION})
    pp = dt.prior_predictive.to_dataset().isel({C.CHAIN: 0}, drop=True).rename({C.DRAW: SIMULATION})
    gdp = np.full((n, len(d.gdp_years)), np.nan)
    if "gdp_observed" in pp:
        gdp[:, d.gdp_obs_idx] = pp["gdp_observed"].values
    out = prior.assign(
        {
            C.ARRIVALS: ((SIMULATION, C.YEAR), pp[C.OBSERVED].values.astype(np.int64)),
            C.GDP_GROWTH: ((SIMULATION, C.GDP_YEAR), gdp),
        }
    )
    out = out.assign_coords({SIMULATION: np.arange(n), C.YEAR: d.years, C.GDP_YEAR: d.gdp_years})
    out.attrs = {"seed": int(seed), "n": int(n), "simulator": "pymc.sample_prior_predictive(build_model(data, config))"}
    return out


def sbc_inputs(refitter: Refitter, simulation: xr.Dataset) -> dict[str, np.ndarray]:
    """Refit inputs for one simulated data set (one element of :func:`simulate_prior`'s ``simulation`` dim).

    The simulated counts and GDP figures over the full window, the known-sign constraint
    off (prior predictive draws ignore it), and the driver centre pinned to the design's
    centre (the simulator's), so the fitted model is the simulating model.
    """
    y = np.asarray(simulation[C.ARRIVALS].values)
    if y.max(initial=0) > np.iinfo(np.int32).max:
        raise ConfigError(f"sbc: a simulated count ({y.max()}) exceeds the int32 range of the refit engine.")
    x = refitter.inputs(arrivals=y, gdp=np.asarray(simulation[C.GDP_GROWTH].values), sign_constraint=False)
    if "driver_center" in x:
        x["driver_center"] = refitter.design.center.astype(x["driver_center"].dtype).copy()
    return x


# ----------------------------------------------------------------------------
# Quantities ranked: free parameters and derived quantities
# ----------------------------------------------------------------------------


def log_likelihood(
    ds: xr.Dataset, y: np.ndarray, gdp: np.ndarray, gdp_sd: np.ndarray, config: ModelConfig, sample_dim: str
) -> np.ndarray:
    """Log-likelihood of the data (counts ``y`` and GDP figures ``gdp``, NaN = missing) per draw of ``ds``.

    ``ds`` holds ``mu`` (and ``gdp_true``, ``overdispersion`` where the model has them) with
    the leading dimension ``sample_dim``.
    """
    mu = ds[C.MU].transpose(sample_dim, C.YEAR).values
    if config.likelihood == "negative_binomial":
        alpha = 1.0 / ds[C.OVERDISPERSION].values[:, None] ** 2
        ll = stats.nbinom.logpmf(y[None, :], alpha, alpha / (alpha + mu)).sum(axis=1)
    else:
        ll = stats.poisson.logpmf(y[None, :], mu).sum(axis=1)
    obs = ~np.isnan(gdp)
    if C.GDP_TRUE in ds and obs.any():
        g = ds[C.GDP_TRUE].transpose(sample_dim, C.GDP_YEAR).values[:, obs]
        ll = ll + stats.norm.logpdf(gdp[obs][None, :], g, gdp_sd[obs][None, :]).sum(axis=1)
    return ll


def quantities(
    ds: xr.Dataset,
    free_parameters: Sequence[str],
    *,
    y: np.ndarray,
    gdp: np.ndarray,
    gdp_sd: np.ndarray,
    config: ModelConfig,
    sample_dim: str,
) -> dict[str, np.ndarray]:
    """The quantities SBC ranks, each a 1-d array over ``sample_dim``.

    Every element of the free parameters, then ``intercept``, ``mu[last year]``,
    ``latent[last year]`` and :data:`LOGLIK` (see the module docstring).
    """
    out = element_values(ds, free_parameters, sample_dim)
    last = int(ds[C.YEAR].values[-1])
    if C.INTERCEPT in ds:
        out[C.INTERCEPT] = np.asarray(ds[C.INTERCEPT].values, dtype=float)
    out[f"{C.MU}[{last}]"] = np.asarray(ds[C.MU].sel({C.YEAR: last}).values, dtype=float)
    if C.LATENT in ds and config.latent != "none":
        out[f"{C.LATENT}[{last}]"] = np.asarray(ds[C.LATENT].sel({C.YEAR: last}).values, dtype=float)
    out[LOGLIK] = log_likelihood(ds, y, gdp, gdp_sd, config, sample_dim)
    return out


def group_of(quantity: str) -> str:
    """The parameter group of a quantity label: ``beta[border]`` -> ``beta``."""
    return quantity.split("[", 1)[0]


# ----------------------------------------------------------------------------
# Summaries of ranks
# ----------------------------------------------------------------------------


def rank_summary(
    ranks: pd.DataFrame,
    L: int,
    *,
    alpha: float = 0.05,
    bins: int = 10,
    n_null: int = 10_000,
    seed: int = 0,
    free: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per quantity (column of ``ranks``): the uniformity tests and the rank moments.

    Columns: ``quantity``, ``group``, ``kind`` (free/derived), ``n`` simulations,
    ``mean_rank`` and ``sd_rank`` of ``r / L`` (uniform: 0.5 and about 0.29; a larger s.d.
    means posteriors too narrow, a smaller one too wide), ``p_ecdf`` (the verdict's test),
    ``p_chisq``, ``p_pot_c``, ``flag`` (``p_ecdf < alpha``) and ``flag_bonferroni``
    (``p_ecdf < alpha / m`` with ``m`` = number of quantities).
    """
    m = ranks.shape[1]
    free_groups = set(free) if free is not None else None
    rows = []
    for k, q in enumerate(ranks.columns):
        r = ranks[q].to_numpy()
        frac = r / L
        p = ecdf_uniformity_test(r, L, n_null=n_null, seed=seed)
        rows.append(
            {
                "quantity": q,
                "group": group_of(q),
                "kind": "free" if free_groups is None or group_of(q) in free_groups else "derived",
                "n": len(r),
                "mean_rank": float(frac.mean()),
                "sd_rank": float(frac.std(ddof=1)),
                "p_ecdf": p,
                "p_chisq": chisq_uniformity_test(r, L, bins),
                "p_pot_c": pot_c_uniformity_test(r, L, seed=seed + k),
                "flag": bool(p < alpha),
                "flag_bonferroni": bool(p < alpha / m),
            }
        )
    return pd.DataFrame(rows)


def group_summary(summary: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Per parameter group: elements tested, flags at ``alpha`` (and how many chance alone gives), Bonferroni flags."""
    rows = []
    for g, sub in summary.groupby("group", sort=False):
        rows.append(
            {
                "group": g,
                "kind": sub["kind"].iloc[0],
                "elements": len(sub),
                "flagged": int(sub["flag"].sum()),
                "expected_by_chance": alpha * len(sub),
                "flagged_bonferroni": int(sub["flag_bonferroni"].sum()),
                "min_p_ecdf": float(sub["p_ecdf"].min()),
                "mean_rank_range": f"{sub['mean_rank'].min():.2f}-{sub['mean_rank'].max():.2f}",
                "sd_rank_range": f"{sub['sd_rank'].min():.3f}-{sub['sd_rank'].max():.3f}",
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------
# The SBC driver
# ----------------------------------------------------------------------------


def _seed(seed: int, *keys: int) -> int:
    """A 32-bit seed that depends only on ``seed`` and ``keys`` (not on how many simulations run)."""
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0])


def _fit_row(fit: Any) -> dict[str, Any]:
    row = fit.convergence.summary_row()
    return {
        "seconds": round(float(fit.seconds), 3),
        "passed": bool(row["passed"]),
        "divergences": int(row["divergences"]),
        "max_rhat": float(row["max_rhat"]),
        "min_ess_bulk": float(row["min_ess_bulk"]),
        "min_ess_tail": float(row["min_ess_tail"]),
        "failures": " | ".join(fit.convergence.failures),
    }


@dataclass
class SBCResult:
    """Ranks and refit diagnostics of an SBC run.

    Attributes
    ----------
    ranks
        One row per simulation, one integer column (``0..L``) per quantity.
    fits
        One row per simulation: ``fit_seed``, ``seconds``, gate verdict ``passed``,
        ``divergences``, ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``failures``.
    posterior
        Long table (simulation, quantity, truth, posterior mean and s.d. over all draws):
        z-scores and contraction.
    L
        Thinned posterior draws per rank (ranks take ``L + 1`` values).
    free_parameters
        The model's free parameter names (groups of kind "free").
    settings
        Seed, sampler settings, gate, stride, run time (JSON-serialisable).
    """

    ranks: pd.DataFrame
    fits: pd.DataFrame
    posterior: pd.DataFrame
    L: int
    free_parameters: list[str]
    settings: dict[str, Any]
    simulations: xr.Dataset | None = field(default=None, repr=False)

    def summary(self, *, alpha: float = 0.05, converged_only: bool = False, **kw: Any) -> pd.DataFrame:
        """:func:`rank_summary` of all simulations (or only those whose refit passed the gate)."""
        ranks = self.ranks[self.fits["passed"].to_numpy()] if converged_only else self.ranks
        return rank_summary(ranks, self.L, alpha=alpha, free=self.free_parameters, **kw)

    def contraction(self) -> pd.DataFrame:
        """Per quantity: mean posterior z-score of the truth and the posterior contraction.

        Contraction ``1 - mean(posterior var) / var(truth over simulations)``: 0 = the data
        teach nothing beyond the prior, 1 = the posterior pins the value down.
        """
        rows = []
        for q, sub in self.posterior.groupby("quantity", sort=False):
            z = (sub["post_mean"] - sub["truth"]) / sub["post_sd"]
            rows.append(
                {
                    "quantity": q,
                    "mean_z": float(z.mean()),
                    "sd_z": float(z.std(ddof=1)),
                    "contraction": float(1 - (sub["post_sd"] ** 2).mean() / sub["truth"].var(ddof=1)),
                }
            )
        return pd.DataFrame(rows)


def run_sbc(
    n_sims: int = 100,
    seed: int = SEED,
    *,
    refitter: Refitter | None = None,
    config: ModelConfig | None = None,
    data: xr.Dataset | None = None,
    sampler: SamplerConfig | None = None,
    thin_to: int = THIN_TO,
    gate: GateConfig = SBC_GATE,
    make_inputs: Callable[[Refitter, xr.Dataset], dict[str, np.ndarray]] | None = None,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
) -> SBCResult:
    """Simulation-based calibration of the fitting procedure.

    Parameters
    ----------
    n_sims
        Number of simulated data sets (100 or more for a meaningful test).
    seed
        Seeds the prior draws (:func:`simulate_prior`), each refit and the tie-breaking;
        the same seed gives the same ranks (JAX's NUTS is deterministic given its key).
    refitter
        A :class:`~nkdefections.refit.Refitter` to reuse (its compiled code is reused across
        calls); built from ``config``, ``data``, ``sampler`` (default :data:`SBC_SAMPLER`)
        if omitted.
    thin_to
        ``L``, the posterior draws kept per rank (fixed stride over the pooled chains).
    gate
        Convergence criteria recorded for each refit (never enforced: failed refits stay
        in the ranks and are counted).
    make_inputs
        Builds the refit inputs of one simulation; default :func:`sbc_inputs`.  Only for
        negative controls (e.g. fitting with the known-sign constraint on, which the
        simulator does not obey): anything else makes the fitted model differ from the
        simulating one.
    progress
        Called after each refit with the simulation index and its row of :attr:`SBCResult.fits`.

    Returns
    -------
    SBCResult
    """
    from nkdefections.refit import Refitter

    t_start = time.perf_counter()
    if refitter is None:
        refitter = Refitter(config, data, sampler or SBC_SAMPLER)
    config = refitter.config
    s = refitter.sampler
    thin_indices(s.chains * s.draws, thin_to)  # validates before anything runs
    sims = simulate_prior(n_sims, seed, config=config, data=refitter.data)
    d = refitter.design
    free = list(refitter.free_parameters)
    rank_rows, fit_rows, post_rows = [], [], []
    for i in range(n_sims):
        sim = sims.isel({SIMULATION: i})
        y = sim[C.ARRIVALS].values
        g = sim[C.GDP_GROWTH].values
        fit_seed = _seed(seed, i, 1)
        fit = refitter.fit((make_inputs or sbc_inputs)(refitter, sim), seed=fit_seed, gate=gate)
        kw = dict(y=y, gdp=g, gdp_sd=d.gdp_sd_all, config=config)
        truth = quantities(sim.expand_dims(SAMPLE), free, sample_dim=SAMPLE, **kw)
        full = fit.posterior.stack({SAMPLE: (C.CHAIN, C.DRAW)}).drop_vars([SAMPLE, C.CHAIN, C.DRAW])
        post_all = quantities(full, free, sample_dim=SAMPLE, **kw)
        idx = thin_indices(full.sizes[SAMPLE], thin_to)
        rng = np.random.default_rng(_seed(seed, i, 2))
        rank_rows.append({q: sbc_rank(float(truth[q][0]), post_all[q][idx], rng) for q in truth})
        for q in truth:
            post_rows.append(
                {
                    SIMULATION: i,
                    "quantity": q,
                    "truth": float(truth[q][0]),
                    "post_mean": float(post_all[q].mean()),
                    "post_sd": float(post_all[q].std(ddof=1)),
                }
            )
        row = {SIMULATION: i, "fit_seed": fit_seed, **_fit_row(fit)}
        fit_rows.append(row)
        if progress is not None:
            progress(i, row)
    ranks = pd.DataFrame(rank_rows, index=pd.RangeIndex(n_sims, name=SIMULATION))
    fits = pd.DataFrame(fit_rows).set_index(SIMULATION)
    settings = {
        "n_sims": n_sims,
        "seed": seed,
        "L": thin_to,
        "stride": (s.chains * s.draws) // thin_to,
        "sampler": s.to_dict(),
        "gate": gate.to_dict(),
        "model": config.to_dict(),
        "compile_seconds": refitter.compile_seconds,
        "seconds": round(time.perf_counter() - t_start, 1),
        "simulator": sims.attrs["simulator"],
        "refit_inputs": (
            "sbc_inputs: sign_constraint=False, driver_center pinned to the design centre"
            if make_inputs is None
            else getattr(make_inputs, "__name__", repr(make_inputs))
        ),
    }
    return SBCResult(
        ranks=ranks,
        fits=fits,
        posterior=pd.DataFrame(post_rows),
        L=thin_to,
        free_parameters=free,
        settings=settings,
        simulations=sims,
    )


# ----------------------------------------------------------------------------
# Parameter recovery with known parameters
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecoveryTruth:
    """Fixed "true" parameters of the recovery series (the values of ``tests/test_recovery.py``).

    ``log mu_t = intercept + x_t . beta + z_t``, ``z_1999 = latent_start``,
    ``z_t = rho z_{t-1} + sigma_latent eps_t``; ``x_t`` are the real lag-aligned drivers,
    the economy column the published GDP figures with missing years set to ``gdp_fill``.
    """

    intercept: float = 7.3
    beta: Mapping[str, float] = field(default_factory=lambda: dict(TRUE_BETA))
    rho: float = 0.7
    sigma_latent: float = 0.15
    latent_start: float = -2.3
    gdp_fill: float = 1.0

    def drivers(self, design: Any) -> np.ndarray:
        """The driver matrix ``(year, driver)`` the series are simulated with."""
        X = np.array(design.X_fixed, dtype=float)
        if design.economy_col is not None:
            g = np.where(np.isnan(design.gdp_all), self.gdp_fill, design.gdp_all)
            X[:, design.economy_col] = g[design.economy_idx]
        return X

    def beta_vector(self, design: Any) -> np.ndarray:
        missing = set(design.drivers) - set(self.beta)
        if missing:
            raise ConfigError(f"recovery truth: no true effect for driver(s) {sorted(missing)}.")
        return np.array([float(self.beta[k]) for k in design.drivers])

    def values(self, design: Any) -> dict[str, float]:
        """True values of the recovered quantities (``level`` = log mu at the design centre, no latent)."""
        b = self.beta_vector(design)
        out = {
            C.LEVEL: self.intercept + float(design.center @ b),
            C.INTERCEPT: self.intercept,
            C.RHO: self.rho,
            C.SIGMA_LATENT: self.sigma_latent,
        }
        for k, drv in enumerate(design.drivers):
            out[f"{C.BETA}[{drv}]"] = float(b[k])
            out[f"{C.EFFECT_PCT}[{drv}]"] = float(100 * np.expm1(b[k]))
        return out


def simulate_series(design: Any, truth: RecoveryTruth, n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic arrival series from ``truth`` on the real drivers of ``design``.

    Returns ``(arrivals, latent)``, each ``(n, year)``.  Series ``i`` depends only on
    ``seed`` and ``i``.
    """
    X = truth.drivers(design)
    b = truth.beta_vector(design)
    T = len(design.years)
    y = np.empty((n, T), dtype=np.int64)
    z = np.empty((n, T))
    for i in range(n):
        rng = np.random.default_rng(_seed(seed, i, 3))
        z[i, 0] = truth.latent_start
        eps = rng.standard_normal(T - 1)
        for t in range(1, T):
            z[i, t] = truth.rho * z[i, t - 1] + truth.sigma_latent * eps[t - 1]
        y[i] = rng.poisson(np.exp(truth.intercept + X @ b + z[i]))
    return y, z


@dataclass
class RecoveryResult:
    """Per-series posterior summaries against known truths, and refit diagnostics.

    ``table``: one row per (series, quantity) with ``truth``, posterior ``mean``, ``sd``
    and the 5/25/75/95% quantiles; the quantity ``latent`` pools every year.
    ``fits``: one row per series (as :attr:`SBCResult.fits`).
    """

    table: pd.DataFrame
    fits: pd.DataFrame
    truth: dict[str, float]
    settings: dict[str, Any]

    def summary(self) -> pd.DataFrame:
        """Per quantity: truth, mean estimate, bias, RMSE, coverage of the 50%/90% intervals, width, power.

        ``excludes_zero_90``: the fraction of series whose 90% interval excludes 0 (for the
        effects: how often the data detect the effect); ``sign_right_90``: ... and lies on
        the true effect's side.
        """
        rows = []
        for q, t in self.table.groupby("quantity", sort=False):
            err = t["mean"] - t["truth"]
            row = {
                "quantity": q,
                "truth": float(t["truth"].mean()) if q != C.LATENT else np.nan,
                "series": int(t[SIMULATION].nunique()),
                "mean_estimate": float(t["mean"].mean()),
                "bias": float(err.mean()),
                "rmse": float(np.sqrt((err**2).mean())),
                "coverage_50": float(((t["q25"] <= t["truth"]) & (t["truth"] <= t["q75"])).mean()),
                "coverage_90": float(((t["q05"] <= t["truth"]) & (t["truth"] <= t["q95"])).mean()),
                "width_90": float((t["q95"] - t["q05"]).mean()),
            }
            if group_of(q) in (C.BETA, C.EFFECT_PCT):
                excl = (t["q05"] > 0) | (t["q95"] < 0)
                right = np.where(t["truth"] < 0, t["q95"] < 0, t["q05"] > 0)
                row["excludes_zero_90"] = float(excl.mean())
                row["sign_right_90"] = float(np.mean(right))
            rows.append(row)
        return pd.DataFrame(rows)


def _posterior_row(v: np.ndarray) -> dict[str, float]:
    q05, q25, q75, q95 = np.quantile(v, [0.05, 0.25, 0.75, 0.95])
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)), "q05": q05, "q25": q25, "q75": q75, "q95": q95}


def run_recovery(
    n_series: int = 20,
    seed: int = SEED,
    *,
    truth: RecoveryTruth | None = None,
    refitter: Refitter | None = None,
    config: ModelConfig | None = None,
    data: xr.Dataset | None = None,
    sampler: SamplerConfig | None = None,
    gate: GateConfig = SBC_GATE,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
) -> RecoveryResult:
    """Refit ``n_series`` synthetic series with known parameters (:class:`RecoveryTruth`).

    The simulated counts are swapped into the compiled model
    (:class:`~nkdefections.refit.Refitter`); the GDP figures, the known-sign constraint and
    the centring are the real data's, as in a fit of the real series.

    Returns
    -------
    RecoveryResult
        :meth:`RecoveryResult.summary` gives bias, coverage and power per quantity.
    """
    from nkdefections.refit import Refitter

    t_start = time.perf_counter()
    truth = truth or RecoveryTruth()
    if refitter is None:
        refitter = Refitter(config, data, sampler or SBC_SAMPLER)
    d = refitter.design
    true = truth.values(d)
    y, z = simulate_series(d, truth, n_series, seed)
    rows, fit_rows = [], []
    for i in range(n_series):
        fit_seed = _seed(seed, i, 4)
        fit = refitter.fit(refitter.inputs(arrivals=y[i]), seed=fit_seed, gate=gate)
        post = fit.posterior.stack({SAMPLE: (C.CHAIN, C.DRAW)}).drop_vars([SAMPLE, C.CHAIN, C.DRAW])
        values = element_values(post, [C.LEVEL, C.INTERCEPT, C.BETA, C.EFFECT_PCT, C.RHO, C.SIGMA_LATENT], SAMPLE)
        for q, v in values.items():
            if q in true:
                rows.append({SIMULATION: i, "quantity": q, "truth": true[q], **_posterior_row(v)})
        if C.LATENT in post:
            lat = post[C.LATENT].transpose(SAMPLE, C.YEAR).values
            for t, year in enumerate(d.years):
                rows.append(
                    {
                        SIMULATION: i,
                        "quantity": C.LATENT,
                        "year": int(year),
                        "truth": z[i, t],
                        **_posterior_row(lat[:, t]),
                    }
                )
        row = {SIMULATION: i, "fit_seed": fit_seed, **_fit_row(fit)}
        fit_rows.append(row)
        if progress is not None:
            progress(i, row)
    s = refitter.sampler
    settings = {
        "n_series": n_series,
        "seed": seed,
        "truth": {**{k: v for k, v in truth.__dict__.items() if k != "beta"}, "beta": dict(truth.beta)},
        "sampler": s.to_dict(),
        "gate": gate.to_dict(),
        "model": refitter.config.to_dict(),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    return RecoveryResult(
        table=pd.DataFrame(rows), fits=pd.DataFrame(fit_rows).set_index(SIMULATION), truth=true, settings=settings
    )


# ----------------------------------------------------------------------------
# Figures (matplotlib, Agg)
# ----------------------------------------------------------------------------


def _grid(n: int, ncols: int, size: tuple[float, float] = (2.4, 1.9)) -> tuple[Any, np.ndarray]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def plot_ecdf(
    ranks: pd.DataFrame,
    L: int,
    path: str | Path,
    *,
    prob: float = 0.95,
    summary: pd.DataFrame | None = None,
    n_null: int = 10_000,
    seed: int = 0,
    ncols: int = 5,
    title: str | None = None,
) -> Path:
    """ECDF-difference plot of each column of ``ranks`` with the simultaneous ``prob`` band.

    Plots ``ECDF(z_i) - z_i`` at ``z_i = i/(L+1)`` (Säilynoja et al. 2022); the grey band is
    :func:`ecdf_band`.  With ``summary`` (from :func:`rank_summary`) each panel shows its
    ECDF-test p-value, red when flagged after Bonferroni, orange when flagged at the nominal level.
    """
    n = len(ranks)
    z, lo, hi = ecdf_band(n, L, prob, n_null=n_null, seed=seed)
    fig, axes = _grid(ranks.shape[1], ncols)
    info = summary.set_index("quantity") if summary is not None else None
    counts = _rank_counts(ranks.to_numpy().T, L) / n  # (quantity, i)
    for ax, q, ecdf in zip(axes, ranks.columns, counts, strict=False):
        ax.fill_between(z, lo - z, hi - z, step="mid", color="0.85", lw=0)
        ax.axhline(0, color="0.5", lw=0.6)
        color, label = "C0", q
        if info is not None:
            r = info.loc[q]
            color = "C3" if r["flag_bonferroni"] else ("C1" if r["flag"] else "C0")
            label = f"{q}  p={r['p_ecdf']:.3f}"
        ax.step(z, ecdf - z, where="mid", color=color, lw=1.1)
        ax.set_title(label, fontsize=7.5)
        ax.tick_params(labelsize=6)
        ax.set_xlim(0, 1)
    fig.suptitle(
        title or f"SBC rank ECDF - uniform CDF, {n} simulations, L = {L}; grey: simultaneous {prob:.0%} band",
        fontsize=9,
    )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def plot_rank_hist(
    ranks: pd.DataFrame, L: int, path: str | Path, *, bins: int = 10, ncols: int = 5, title: str | None = None
) -> Path:
    """Rank histograms (``bins`` bins) with the pointwise 99% binomial range of each bin count (Talts et al.)."""
    n = len(ranks)
    edges = np.linspace(0, L + 1, bins + 1).round().astype(int)
    share = np.diff(edges) / (L + 1)
    lo, hi = stats.binom.ppf(0.005, n, share), stats.binom.ppf(0.995, n, share)
    fig, axes = _grid(ranks.shape[1], ncols)
    for ax, q in zip(axes, ranks.columns, strict=False):
        counts = np.histogram(ranks[q].to_numpy(), bins=edges)[0]
        ax.fill_between(edges, np.r_[lo, lo[-1]], np.r_[hi, hi[-1]], step="post", color="0.85", lw=0)
        ax.stairs(counts, edges, fill=True, color="C0", alpha=0.8)
        ax.axhline(n * share.mean(), color="0.4", lw=0.6)
        ax.set_title(q, fontsize=7.5)
        ax.tick_params(labelsize=6)
    fig.suptitle(title or f"SBC rank histograms, {n} simulations, L = {L}; grey: 99% range per bin", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def plot_ecdf_pit_arviz(ranks: pd.DataFrame, L: int, path: str | Path, *, seed: int = 0) -> Path:
    """The same check drawn by ArviZ: :func:`arviz_plots.plot_ecdf_pit` on randomised PIT values.

    A cross-check of :func:`plot_ecdf` with ArviZ's own implementation (its default
    ``pot_c`` method highlights the points that drive a rejection instead of drawing a band).
    """
    import matplotlib

    matplotlib.use("Agg")
    import arviz_plots as azp

    rng = np.random.default_rng(seed)
    pit = {
        q.replace("[", "_").replace("]", "").replace(",", "_"): (
            (C.CHAIN, C.DRAW),
            randomized_pit(ranks[q].to_numpy(), L, rng)[None, :],
        )
        for q in ranks.columns
    }
    dt = xr.DataTree.from_dict({"prior_sbc": xr.Dataset(pit)})
    pc = azp.plot_ecdf_pit(dt, group="prior_sbc", backend="matplotlib")
    path = Path(path)
    pc.savefig(path)
    import matplotlib.pyplot as plt

    plt.close("all")
    return path


def plot_recovery(result: RecoveryResult, path: str | Path, quantities_: Sequence[str] | None = None) -> Path:
    """Per quantity, each series' 50% and 90% intervals and mean against the true value."""
    tab = result.table[result.table["quantity"] != C.LATENT]
    names = list(quantities_ or [q for q in tab["quantity"].unique() if group_of(q) != C.EFFECT_PCT])
    fig, axes = _grid(len(names), 4, size=(3.0, 2.4))
    for ax, q in zip(axes, names, strict=False):
        t = tab[tab["quantity"] == q].sort_values(SIMULATION)
        x = np.arange(len(t))
        ax.vlines(x, t["q05"], t["q95"], color="C0", lw=0.8)
        ax.vlines(x, t["q25"], t["q75"], color="C0", lw=2.5)
        ax.plot(x, t["mean"], "o", color="C0", ms=2)
        ax.axhline(float(t["truth"].iloc[0]), color="C3", lw=1)
        if group_of(q) == C.BETA:
            ax.axhline(0, color="0.5", lw=0.6, ls=":")
        ax.set_title(q, fontsize=8)
        ax.set_xlabel("series", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle("Recovery: 50% (thick) and 90% intervals per synthetic series; red: the true value", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
