"""SBC simulator: prior simulations of the default graph, the quantities ranked and rank summaries."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from nkdefections import constants as C
from nkdefections.arithmetic import nb_prob, nb_shape
from nkdefections.config import ModelConfig
from nkdefections.errors import ConfigError
from nkdefections.evaluate.sbc.ranks import (
    LOGLIK,
    SEED,
    SIMULATION,
    chisq_uniformity_test,
    ecdf_uniformity_test,
    element_values,
    pot_c_uniformity_test,
)

if TYPE_CHECKING:  # importing the refit engine pulls in PyMC: only the drivers need it
    from nkdefections.model.refit import Refitter

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------
# The simulator (PyMC prior predictive of the default graph)
# ----------------------------------------------------------------------------


def _load(config: ModelConfig | None, data: xr.Dataset | None) -> tuple[ModelConfig, xr.Dataset]:
    from nkdefections.config import DataConfig
    from nkdefections.data.load import load_data

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
    from nkdefections.model import forward
    from nkdefections.model.graph import design, generative_model

    if n < 1:
        raise ConfigError(f"simulations: {n} must be >= 1.")
    config, data = _load(config, data)
    d = design(data, config)
    model = generative_model(data, config)  # log_mu: the same model in innovation form
    with model, warnings.catch_warnings():
        # the only Potential is the soft known sign of 2005 GDP: the refit switches it off too
        warnings.filterwarnings("ignore", message=".*effect of Potentials.*")
        dt = forward.sample_prior_predictive(n, seed)
    prior = dt.prior.to_dataset().isel({C.CHAIN: 0}, drop=True).rename({C.DRAW: SIMULATION})
    pp = dt.prior_predictive.to_dataset().isel({C.CHAIN: 0}, drop=True).rename({C.DRAW: SIMULATION})
    gdp = np.full((n, len(d.gdp_years)), np.nan)
    if "gdp_observed" in pp:
        gdp[:, d.gdp_obs_idx] = pp["gdp_observed"].values
    y = pp[C.OBSERVED].values.astype(np.int64)
    out = prior.assign({C.ARRIVALS: ((SIMULATION, C.YEAR), y), C.GDP_GROWTH: ((SIMULATION, C.GDP_YEAR), gdp)})
    if config.by_sex:  # women among the simulated totals (the prior predictive's Binomial uses the real ones)
        out[C.FEMALE] = ((SIMULATION, C.YEAR), simulate_female(y, prior[C.FEMALE_SHARE].values, d.female, seed))
    out = out.assign_coords({SIMULATION: np.arange(n), C.YEAR: d.years, C.GDP_YEAR: d.gdp_years})
    simulator = "pymc.sample_prior_predictive(generative_model(data, config))"
    out.attrs = {"seed": int(seed), "n": int(n), "simulator": simulator}
    return out


def simulate_female(totals: np.ndarray, share: np.ndarray, published: np.ndarray, seed: int) -> np.ndarray:
    """Female counts ~ Binomial(simulated total, simulated share) in the years the real data publish
    them (NaN elsewhere); simulation ``i`` draws from its own stream ``(seed, i)``."""
    out = np.full(totals.shape, np.nan)
    pub = ~np.isnan(np.asarray(published, dtype=float))
    for i in range(totals.shape[0]):
        rng = np.random.default_rng([int(seed), 1, i])
        out[i, pub] = rng.binomial(totals[i, pub], share[i, pub])
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
    female = np.asarray(simulation[C.FEMALE].values) if C.FEMALE in simulation else None
    gdp = np.asarray(simulation[C.GDP_GROWTH].values)
    x = refitter.inputs(arrivals=y, gdp=gdp, female=female, sign_constraint=False)
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
        alpha = nb_shape(ds[C.OVERDISPERSION].values[:, None])
        ll = stats.nbinom.logpmf(y[None, :], alpha, nb_prob(alpha, mu)).sum(axis=1)
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
