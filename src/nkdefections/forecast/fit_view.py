"""A fit as data: the frozen view of a posterior that forecasts and nowcasts consume.

:class:`FitView` holds what carrying a fit forward needs -- the posterior arrays flattened
to ``(sample, ...)``, the model's lags, drivers and transforms (its :class:`ModelConfig`),
the fitted years and counts, the driver history, and the fit's provenance -- and nothing
that samples.  The model builds it (:meth:`nkdefections.model.DefectionModel.fit_view`);
:func:`nkdefections.forecast.forecast` and :func:`nkdefections.forecast.nowcast` take it,
or anything with a ``fit_view()`` method, so the forecast layer never calls into the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import xarray as xr

from nkdefections import constants as C
from nkdefections.arithmetic import flatten_draws
from nkdefections.config import ModelConfig
from nkdefections.errors import PosteriorFileError


@runtime_checkable
class FitSource(Protocol):
    """Anything that can give its fit as a :class:`FitView` (a fitted ``DefectionModel``)."""

    def fit_view(self) -> FitView: ...


def _frozen(a: np.ndarray, dtype: Any = None) -> np.ndarray:
    a = np.array(a, dtype=dtype, copy=True)
    a.setflags(write=False)
    return a


def _by_driver(post: xr.Dataset, name: str, S: int) -> np.ndarray:
    """(sample, driver) draws of an effect for every driver of C.DRIVERS; zeros for drivers not in the model."""
    out = np.zeros((S, len(C.DRIVERS)))
    if name in post:
        b = flatten_draws(post[name])
        for j, d in enumerate(post[C.DRIVER].values):
            out[:, C.DRIVERS.index(str(d))] = b[:, j]
    return out


def _arrays(post: xr.Dataset, kind: str) -> dict[str, np.ndarray | None]:
    S = post.sizes[C.CHAIN] * post.sizes[C.DRAW]
    beta = _by_driver(post, C.BETA, S)
    latent = flatten_draws(post[C.LATENT])
    out: dict[str, np.ndarray | None] = {
        "intercept": flatten_draws(post[C.INTERCEPT]),
        "beta": beta,
        "latent": latent,
        "latent_last": latent[:, -1],
        "log_mu": flatten_draws(post[C.LOG_MU]) if C.LOG_MU in post else None,
        "rho": flatten_draws(post[C.RHO]) if kind == "ar1" else np.ones(S) if kind == "random_walk" else np.zeros(S),
        "sigma": flatten_draws(post[C.SIGMA_LATENT]) if kind != "none" else np.zeros(S),
        "overdispersion": flatten_draws(post[C.OVERDISPERSION]) if C.OVERDISPERSION in post else None,
        "nu": flatten_draws(post[C.NU]) if C.NU in post else None,
        "closure_elasticity": flatten_draws(post[C.CLOSURE_ELASTICITY]) if C.CLOSURE_ELASTICITY in post else None,
    }
    if C.SHARE_INTERCEPT in post:  # the by-sex model's share block (nkdefections.model.optional)
        out["share_intercept"] = flatten_draws(post[C.SHARE_INTERCEPT])
        out["share_beta"] = _by_driver(post, C.SHARE_BETA, S)
        out["share_latent_last"] = flatten_draws(post[C.SHARE_LATENT])[:, -1]
        out["rho_share"] = flatten_draws(post[C.RHO_SHARE])
        out["sigma_share"] = flatten_draws(post[C.SIGMA_SHARE])
        out["share_closure"] = flatten_draws(post[C.SHARE_CLOSURE]) if C.SHARE_CLOSURE in post else None
    if C.GDP_TRUE in post:
        out["gdp_true"] = flatten_draws(post[C.GDP_TRUE])
        out["gdp_years"] = post[C.GDP_YEAR].values.astype(int)
    return {k: None if v is None else _frozen(v) for k, v in out.items()}


@dataclass(frozen=True, eq=False)
class FitView:
    """A fitted posterior as read-only data.

    Attributes
    ----------
    config
        The fitted :class:`~nkdefections.config.ModelConfig` (lags, drivers, transforms, priors).
    data
        The data the model was fitted on (drivers, counts, ``first_year``/``last_year`` attrs),
        including the history years the lags reach back into.
    years, arrivals
        The fitted years and their observed counts.
    chain, draw
        The posterior's chain and draw coordinates (``sample = chain * n_draw + draw``).
    arrays
        Posterior arrays flattened to ``(sample, ...)``: ``intercept``, ``beta`` (sample,
        driver) with zeros for drivers not in the model, ``latent`` (sample, year),
        ``latent_last``, ``log_mu`` (or ``None``), ``rho``, ``sigma``, ``overdispersion`` and
        ``nu`` (or ``None``), ``closure_elasticity`` (or ``None``: no fitted year closed),
        ``gdp_true``/``gdp_years`` with the GDP measurement block, and with the female share
        (``model.by_sex``) ``share_intercept``, ``share_beta`` (sample, driver),
        ``share_latent_last``, ``rho_share``, ``sigma_share`` and ``share_closure`` (or ``None``).
    attrs
        The fit's provenance (``fit_id``, ``package_versions``, ``machine``, ...).
    data_hash
        Hash of the fitted data.
    """

    config: ModelConfig
    data: xr.Dataset
    years: np.ndarray
    arrivals: np.ndarray
    chain: np.ndarray
    draw: np.ndarray
    arrays: Mapping[str, np.ndarray | None]
    attrs: Mapping[str, Any]
    data_hash: str

    @classmethod
    def from_posterior(
        cls,
        posterior: xr.Dataset,
        *,
        config: ModelConfig,
        data: xr.Dataset,
        years: np.ndarray,
        arrivals: np.ndarray,
        attrs: Mapping[str, Any],
        data_hash: str,
    ) -> FitView:
        """Flatten a posterior group (``chain``, ``draw``, ...) into a view."""
        return cls(
            config=config,
            data=data,
            years=_frozen(years, int),
            arrivals=_frozen(arrivals),
            chain=_frozen(posterior[C.CHAIN].values),
            draw=_frozen(posterior[C.DRAW].values),
            arrays=MappingProxyType(_arrays(posterior, config.latent)),
            attrs=MappingProxyType(dict(attrs)),
            data_hash=str(data_hash),
        )

    @property
    def n_samples(self) -> int:
        return len(self.chain) * len(self.draw)

    @property
    def first_year(self) -> int:
        return int(self.years[0])

    @property
    def last_year(self) -> int:
        return int(self.years[-1])


def as_fit_view(fit: FitView | FitSource | Any) -> FitView:
    """``fit`` itself if it is a :class:`FitView`, else ``fit.fit_view()``; a clear error otherwise."""
    if isinstance(fit, FitView):
        return fit
    if isinstance(fit, FitSource):
        return fit.fit_view()
    raise PosteriorFileError(
        f"expected a fitted DefectionModel or a FitView, got {type(fit).__name__}; fit a model "
        "(DefectionModel().fit()) or load one (DefectionModel.load(path)) first."
    )


def posterior_arrays(fit: FitView | FitSource) -> dict[str, np.ndarray | None]:
    """The posterior quantities a forecast needs, flattened to (sample, ...) (see :class:`FitView`)."""
    return dict(as_fit_view(fit).arrays)
