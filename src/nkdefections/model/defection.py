"""DefectionModel: fit, gate, save, load (tier 3)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from nkdefections import constants as C
from nkdefections.config import DataConfig, GateConfig, ModelConfig, SamplerConfig, stable_hash
from nkdefections.data.load import load_data
from nkdefections.errors import ConfigError, ConvergenceError, PosteriorFileError
from nkdefections.forecast.fit_view import FitView
from nkdefections.forecast.kernel import forecast
from nkdefections.model import forward
from nkdefections.model.diagnostics import ConvergenceReport, check_convergence
from nkdefections.model.graph import (
    build_model,
    design,
    generative_model,
    parameter_names,
)
from nkdefections.model.sampling import model_code_hash, pymc_posterior
from nkdefections.provenance import provenance
from nkdefections.scenarios.scenario import load_scenario

log = logging.getLogger(__name__)


FORMAT_VERSION = 1

#: In-process memo of the last cached fit read from disk: (path, mtime) -> (idata, attrs).
#: The third item caches the fit's diagnostics table, which does not depend on the gate.
_LOADED: dict[tuple[str, int], tuple[xr.DataTree, dict[str, Any], dict[str, Any]]] = {}
# ----------------------------------------------------------------------------
# Tier 3: the class
# ----------------------------------------------------------------------------


def _set_aside(path: Path, exc: Exception) -> Path:
    """Rename an unusable fit-cache entry to ``<name>.corrupt[-N]`` and warn; the caller refits."""
    aside = path.with_name(path.name + ".corrupt")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{n}")
    os.replace(path, aside)
    warnings.warn(
        f"fit cache: {path.name} could not be used ({exc}); moved it to {aside} and refitting. "
        "Delete it once you no longer need it for a look.",
        UserWarning,
        stacklevel=3,
    )
    return aside


class DefectionModel:
    r"""Bayesian model of yearly North Korean defector arrivals in South Korea.

    For year :math:`t` (1999..2016) with arrivals :math:`y_t` (default model):

    .. math::

        y_t &\sim \mathrm{Poisson}(\mu_t)
            \quad(\text{or } \mathrm{NegBin}(\mu_t, \phi),\ \phi = 1/\kappa^2) \\
        \log \mu_t &= \alpha + \beta_B B_{t-\ell_B} + \beta_E G_{t-\ell_E}
            + \beta_S S_{t-\ell_S} + z_t, \qquad
            \alpha = \lambda - \bar x \cdot \beta \\
        z_{1999} &\sim \mathcal N(m_0, s_0), \qquad
            z_t = \rho z_{t-1} + \sigma \varepsilon_t,\ \varepsilon_t \sim \mathcal N(0, 1) \\
        G_t &\sim \mathcal N(m_G, s_G), \qquad
            \hat G_t \sim \mathcal N(G_t, \tau_t)

    :math:`B` is the border-enforcement index (1 = the 2011-12 tightening),
    :math:`S` the sanctions index (1 = one binding UNSC resolution), :math:`G`
    the true real GDP growth (pp) of which the Bank of Korea figure
    :math:`\hat G_t` is a noisy measurement (:math:`\tau_t` = 0.05 for the
    latest vintage, 1.0 for a first release; missing years are imputed).
    The free parameter :math:`\lambda` (``level``) is the long-run log level at
    the drivers' 1999-2016 means :math:`\bar x` (this centring decorrelates it
    from the effects); ``intercept`` :math:`\alpha` is derived.
    :math:`z_t` is the persistent latent deviation (AR(1) reverting to zero, or
    a random walk, or absent); with a Poisson likelihood it is also what makes
    the counts overdispersed.  :math:`\kappa` (``overdispersion``, NB variants) is
    the coefficient of variation of transient noise.  The effect of a driver is
    reported as
    :math:`100(e^{\beta}-1)` % change in expected arrivals per unit.

    The sampler sees this model in the coordinates ``config.parameterization`` names:
    ``log_mu`` (default) samples each :math:`\log \mu_t` directly and writes the AR(1)
    density on the residual :math:`z_t` (an exact change of variables of the innovation
    form ``noncentered``; see :func:`nkdefections.model.graph.build_model`).

    Parameters
    ----------
    data
        The output of :func:`nkdefections.data.load_data`; loaded with enough
        history for the lags if omitted.
    config
        A :class:`ModelConfig`; defaults to the default model.

    Examples
    --------
    >>> m = DefectionModel().fit(SamplerConfig(draws=500))      # doctest: +SKIP
    >>> m.effects()                                             # doctest: +SKIP
    """

    def __init__(
        self,
        data: xr.Dataset | None = None,
        config: ModelConfig | None = None,
        *,
        data_config: DataConfig | None = None,
    ) -> None:
        self.config = config or ModelConfig()
        if data is None:
            dc = data_config or DataConfig()
            data = load_data(dataclasses.replace(dc, history=max(dc.history, self.config.max_lag)))
        self.data = data
        self.design = design(data, self.config)  # validates lags against the data
        self.idata: xr.DataTree | None = None
        self.sampler_config: SamplerConfig | None = None
        self.convergence: ConvergenceReport | None = None
        self.attrs: dict[str, Any] = {}
        self._model: pm.Model | None = None

    # -- identity -------------------------------------------------------------
    @property
    def model(self) -> pm.Model:
        """The PyMC model (built on first use)."""
        if self._model is None:
            self._model = build_model(self.data, self.config)
        return self._model

    @property
    def data_hash(self) -> str:
        return str(self.data.attrs["data_hash"])

    def fit_id(self, sampler: SamplerConfig | None = None) -> str:
        """Hash of everything that determines the posterior draws.

        Data hash, model config, observation window and the sampler settings
        (seed included); also the fit-cache key.
        """
        sampler = sampler or self.sampler_config or SamplerConfig()
        return stable_hash(
            {
                "format": FORMAT_VERSION,
                "data": self.data_hash,
                "window": [self.data.attrs["first_year"], self.data.attrs["last_year"]],
                "model": self.config.to_dict(),
                "sampler": sampler.identity(),
            }
        )

    # -- sampling -------------------------------------------------------------
    def sample_prior_predictive(self, draws: int = 500, seed: int = 1) -> xr.DataTree:
        """Draws from the prior and the prior predictive distribution."""
        if draws <= 0:
            raise ConfigError(f"prior predictive draws: {draws} must be > 0.")
        with generative_model(self.data, self.config), warnings.catch_warnings():
            # the only Potential is the soft known sign of 2005 GDP growth; prior draws
            # of arrivals ignore it (documented in the README's prior predictive section)
            warnings.filterwarnings("ignore", message=".*effect of Potentials.*")
            return forward.sample_prior_predictive(draws, seed)

    def fit(
        self,
        sampler: SamplerConfig | None = None,
        gate: GateConfig | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> DefectionModel:
        """Sample the posterior with NUTS and apply the convergence gate.

        Parameters
        ----------
        sampler
            NUTS settings; default :class:`SamplerConfig`.
        gate
            Convergence criteria; default R-hat <= 1.01, bulk and tail ESS >= 400,
            no divergences.  ``GateConfig(enforce=False)`` reports failures as a
            warning instead of raising.
        cache_dir
            If given, a fit with the same :meth:`fit_id` saved there is loaded
            instead of sampling, and a new fit is saved there.

        Raises
        ------
        ConvergenceError
            If the gate fails and is enforced; the message lists what failed and
            what to try.
        """
        sampler = sampler or SamplerConfig()
        gate = gate or GateConfig()
        self.sampler_config = sampler
        key = self.fit_id(sampler)
        # the cache also keys on the model code, so a changed model never reuses a stale fit
        cached = Path(cache_dir) / f"fit-{key}-{model_code_hash()}.nc" if cache_dir else None
        loaded_from_cache = False
        if cached is not None and cached.is_file():
            memo_key = (str(cached.resolve()), cached.stat().st_mtime_ns)
            if memo_key not in _LOADED:  # a sweep in one process reads the file once
                log.info("reusing cached fit %s", cached)
                try:
                    loaded = DefectionModel.load(cached, data=self.data)
                except PosteriorFileError as exc:
                    _set_aside(cached, exc)
                else:
                    _LOADED.clear()
                    _LOADED[memo_key] = (loaded.idata, dict(loaded.attrs), {})
            if memo_key in _LOADED:
                idata, attrs, memo = _LOADED[memo_key]
                self.idata, self.attrs = idata, dict(attrs)
                self.attrs["cache_hit"] = True
                loaded_from_cache = True
        if not loaded_from_cache:
            if sampler.name == "nutpie":
                self.idata = self._sample_engine(sampler)
            else:
                self.idata = pymc_posterior(self.model, self.design.y, self.config.parameterization, sampler)
            self.attrs = self._attrs(sampler)
            if cached is not None:
                self.save(cached, overwrite=True)
            self.attrs["cache_hit"] = False
            memo: dict[str, Any] = {}
        names = (
            json.loads(self.attrs["free_parameters"])
            if "free_parameters" in self.attrs
            else parameter_names(self.model)
        )
        self.convergence = check_convergence(self.idata, names, gate, table=memo.get("table"))
        memo["table"] = self.convergence.table
        if not self.convergence.passed:
            msg = self.convergence.message()
            if gate.enforce:
                raise ConvergenceError(msg, self.convergence)
            warnings.warn(msg, stacklevel=2)
        return self

    def _sample_engine(self, sampler: SamplerConfig) -> xr.DataTree:
        """The posterior from the fit engine (:class:`~nkdefections.model.refit.Refitter`): the program
        every refit of this model shares, on the full window with every weight 1.

        The evaluation graph with every weight 1 is the same posterior as :attr:`model` (tested);
        its filler variables (the masked years' innovations, which no full-window quantity reads)
        are dropped, so the posterior holds exactly the variables of :attr:`model`.
        """
        from nkdefections.model.refit import Refitter

        refitter = Refitter.shared(self.config, self.data, sampler)
        s = sampler
        log.info("sampling (%s, %d tune + %d draws, %d chains) ...", s.name, s.tune, s.draws, s.chains)
        fit = refitter.fit(seed=s.seed, progressbar=s.progressbar)
        post = fit.idata.posterior.to_dataset()
        keep = [v for v in post.data_vars if v in self.model.named_vars]
        post = post[keep]
        post = post.drop_vars([c for c in post.coords if c not in post.dims and c not in (C.CHAIN, C.DRAW)])
        post = post.drop_dims([d for d in post.dims if not any(d in post[v].dims for v in post.data_vars)])
        return xr.DataTree.from_dict({"posterior": post, "sample_stats": fit.idata.sample_stats.to_dataset()})

    def _attrs(self, sampler: SamplerConfig) -> dict[str, Any]:
        prov = provenance()
        return {
            "nkdefections_format": FORMAT_VERSION,
            "fit_id": self.fit_id(sampler),
            "data_hash": self.data_hash,
            "data_files": self.data.attrs["files"],
            "first_year": int(self.data.attrs["first_year"]),
            "last_year": int(self.data.attrs["last_year"]),
            "model_config": json.dumps(self.config.to_dict(), sort_keys=True),
            "sampler_config": json.dumps(sampler.to_dict(), sort_keys=True),
            "package_versions": json.dumps(prov["packages"], sort_keys=True),
            "code_version": prov["code_version"],
            "machine": json.dumps(prov["machine"], sort_keys=True),
            "model_code": model_code_hash(),
            "free_parameters": json.dumps(parameter_names(self.model)),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }

    def require_fit(self) -> xr.DataTree:
        if self.idata is None:
            raise PosteriorFileError("the model is not fitted: call .fit() or DefectionModel.load().")
        return self.idata

    def fit_view(self) -> FitView:
        """This fit as read-only data (:class:`~nkdefections.forecast.FitView`): the posterior
        arrays, config, fitted years and counts, driver history and provenance that forecasts
        and nowcasts take."""
        return FitView.from_posterior(
            self.require_fit().posterior,
            config=self.config,
            data=self.data,
            years=self.design.years,
            arrivals=self.design.y,
            attrs=self.attrs,
            data_hash=self.data_hash,
        )

    # -- results --------------------------------------------------------------
    def effects(self, prob: float = 0.90) -> pd.DataFrame:
        """Driver effects as % change in expected arrivals per unit, with an interval.

        Returns a table with one row per driver: the unit, the posterior median (and its
        Monte Carlo standard error) and mean of the % change, the equal-tailed ``prob``
        interval, and P(effect > 0).  A driver entering as ``log(1 + x)`` (``transforms``)
        has no constant effect per unit; its row gives the % change when ``1 + x`` doubles,
        ``100 (2^beta - 1)``.
        """
        post = self.require_fit().posterior
        if C.BETA not in post:
            return pd.DataFrame()
        pct = post[C.EFFECT_PCT].stack(sample=(C.CHAIN, C.DRAW))
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
        rows = []
        units = {
            C.BORDER: "+1 border index (the 2011-12 tightening)",
            C.ECONOMY: "+1 pp real GDP growth",
            C.SANCTIONS: "+1 sanctions index (one binding UNSC resolution)",
        }
        import arviz as az

        for drv in pct[C.DRIVER].values:
            da = post[C.EFFECT_PCT].sel({C.DRIVER: drv})
            unit = units[str(drv)]
            if self.config.transforms.get(str(drv), "linear") == "log1p":
                da = 100.0 * (2.0 ** post[C.BETA].sel({C.DRIVER: drv}) - 1.0)
                unit = f"doubling of 1 + {drv} index (e.g. 4.25 -> 9.5)"
            v = da.values.ravel()
            # Monte Carlo s.e. of the median: how far another run (another seed or CPU) may move it
            mcse = float(az.mcse(da, method="median"))
            lag = self.config.lags[str(drv)]
            rows.append(
                {
                    "driver": str(drv),
                    "unit": unit,
                    "lag_years": lag,
                    "median_pct": float(np.median(v)),
                    "mcse_median_pct": mcse,
                    "mean_pct": float(v.mean()),
                    C.quantile_label(lo): float(np.quantile(v, lo)),
                    C.quantile_label(hi): float(np.quantile(v, hi)),
                    "prob_positive": float((v > 0).mean()),
                }
            )
        return pd.DataFrame(rows)

    def parameter_summary(self, prob: float = 0.90) -> pd.DataFrame:
        """Posterior summary of every scalar parameter and driver effect."""
        post = self.require_fit().posterior
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
        rows = []
        names = [
            C.LEVEL,
            C.INTERCEPT,
            C.BETA,
            C.EFFECT_PCT,
            C.RHO,
            C.SIGMA_LATENT,
            C.OVERDISPERSION,
            C.GDP_MEAN,
            C.GDP_SD,
        ]
        for name in names:
            if name not in post:
                continue
            da = post[name]
            extra = [d for d in da.dims if d not in (C.CHAIN, C.DRAW)]
            labels = [None] if not extra else list(da[extra[0]].values)
            for lab in labels:
                v = (da if lab is None else da.sel({extra[0]: lab})).values.ravel()
                rows.append(
                    {
                        "parameter": name if lab is None else f"{name}[{lab}]",
                        "mean": float(v.mean()),
                        "sd": float(v.std(ddof=1)),
                        "median": float(np.median(v)),
                        "lower": float(np.quantile(v, lo)),
                        "upper": float(np.quantile(v, hi)),
                        "interval": f"{prob:.0%} equal-tailed",
                    }
                )
        return pd.DataFrame(rows)

    def forecast(self, scenarios: Any, horizon: Any = None, *, seed: int = 0) -> xr.Dataset:
        """Forecast scenarios from this posterior (see :func:`nkdefections.forecast.forecast`).

        ``scenarios``: :class:`~nkdefections.scenarios.Scenario` objects or names of files
        in ``configs/scenario/``.  Returns draw-level arrivals with dims
        ``(chain, draw, scenario, year_future)``.
        """
        items = [load_scenario(s) if isinstance(s, str) else s for s in scenarios]
        return forecast(self.fit_view(), items, horizon, seed=seed)

    def sample_posterior_predictive(self, seed: int = 2) -> xr.DataTree:
        """Posterior predictive draws of arrivals for the observation years."""
        idata = self.require_fit()
        with self.model, warnings.catch_warnings():
            # posterior draws already carry the Potential's information
            warnings.filterwarnings("ignore", message=".*effect of Potentials.*")
            pp = forward.sample_posterior_predictive(idata, seed, var_names=[C.OBSERVED], progressbar=False)
        return pp

    # -- persistence ------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the posterior and its provenance to NetCDF (atomically).

        The file's attributes hold ``fit_id``, the model and sampler config, the data
        hash, package versions and code version.
        """
        idata = self.require_fit()
        path = Path(path)
        if path.exists() and not overwrite:
            from nkdefections.errors import OutputExistsError

            raise OutputExistsError(f"{path}: exists; pass overwrite=True to replace it.")
        path.parent.mkdir(parents=True, exist_ok=True)
        keep = [g for g in ("posterior", "sample_stats", "observed_data", "constant_data") if g in idata.children]
        tree = xr.DataTree.from_dict({g: idata[g].to_dataset() for g in keep})
        tree.attrs = {k: v for k, v in self.attrs.items() if k != "cache_hit"}
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".nc.partial")
        os.close(fd)
        try:
            tree.to_netcdf(tmp, engine="h5netcdf")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        data: xr.Dataset | None = None,
        expected_id: str | None = None,
    ) -> DefectionModel:
        """Load a fitted model from :meth:`save` output, without refitting.

        The stored config rebuilds the model; the data are reloaded (or taken from
        ``data``) and must have the stored data hash.  A file whose ``fit_id`` does
        not match its own contents -- or ``expected_id`` when given -- is refused.
        """
        path = Path(path)
        if not path.is_file():
            raise PosteriorFileError(f"{path}: no such posterior file.")
        try:
            tree = xr.open_datatree(path, engine="h5netcdf").load()
        except Exception as exc:  # noqa: BLE001 - any reader error means an unusable file
            raise PosteriorFileError(f"{path}: not a readable NetCDF posterior ({exc}).") from exc
        attrs = dict(tree.attrs)
        if attrs.get("nkdefections_format") != FORMAT_VERSION or "fit_id" not in attrs:
            raise PosteriorFileError(
                f"{path}: not an nkdefections posterior of format {FORMAT_VERSION} "
                "(missing nkdefections_format/fit_id attributes)."
            )
        config = ModelConfig.from_dict(json.loads(attrs["model_config"]))
        sampler = SamplerConfig.from_dict(json.loads(attrs["sampler_config"]))
        if data is None:
            data = load_data(
                DataConfig(
                    first_year=int(attrs["first_year"]),
                    last_year=int(attrs["last_year"]),
                    history=config.max_lag,
                )
            )
        obj = cls(data, config)
        obj.sampler_config = sampler
        actual = obj.fit_id(sampler)
        if actual != attrs["fit_id"]:
            raise PosteriorFileError(
                f"{path}: fit id {attrs['fit_id']} does not match the id {actual} of its config "
                f"and data (data hash now {obj.data_hash}, in file {attrs.get('data_hash')}). "
                "The data or the code changed since the fit; refit instead of loading."
            )
        if attrs.get("model_code") != model_code_hash():
            warnings.warn(
                f"{path}: fitted with other model code ({attrs.get('model_code')}, now "
                f"{model_code_hash()}, code version {attrs.get('code_version')}); the posterior is "
                "loaded as saved, but refit if the model changed in substance.",
                stacklevel=2,
            )
        if expected_id is not None and expected_id != actual:
            raise PosteriorFileError(f"{path}: holds fit {actual}, expected {expected_id}.")
        obj.idata = tree
        obj.attrs = attrs
        return obj
