"""The arrays one refit swaps in: origins, held-out years, simulated data and priors.

:class:`RefitSpec` says what one refit changes; :meth:`Refitter.inputs
<nkdefections.model.refit.Refitter.inputs>` turns it into the arrays with :func:`refit_inputs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nkdefections.config import ModelConfig
from nkdefections.errors import ConfigError
from nkdefections.model.graph import Design
from nkdefections.priors import validate_prior
from nkdefections.validate import whole_number, whole_valued


@dataclass(frozen=True)
class RefitSpec:
    """What one refit changes against the full-window fit; every field's default is "as fitted".

    Attributes
    ----------
    origin
        Last year the fit sees (default: the last year of the window).  Counts and GDP
        figures after it get weight 0; the drivers are centred on their means over
        ``first_year..origin``.
    exclude_years
        Years whose count gets weight 0 as well (leave-one-out refits); the centring and
        the GDP figures are unchanged.
    arrivals
        Replacement counts for every year of the window (e.g. simulated).
    gdp
        Replacement GDP figures for every GDP year (NaN = missing).
    sign_constraint
        Keep the soft known-sign constraint on 2005 GDP growth (SBC turns it off because
        prior simulations do not obey it).
    priors
        ``{"level": {"mu":..., "sigma":...}, "beta_border": {...}, ...}``: replacement
        parameters of the normal priors of the level and the driver effects.
    female
        Replacement female counts for every year of the window (NaN = not published; the by-sex
        model only), each at most the year's count.
    gdp_publication_lag
        Years after which a GDP figure is published (the Bank of Korea's estimate for a
        year comes out in July of the next, so a forecast made at the end of ``origin``
        knows GDP up to ``origin - 1``: lag 1).  Figures after ``origin - lag`` are unseen,
        and the newest seen one is a first release (its measurement s.d. is the
        first-release one, whatever its vintage in the data).  Default 0: GDP known through
        the origin, as the full-window fit knows it.
    """

    origin: int | None = None
    exclude_years: Sequence[int] = ()
    arrivals: np.ndarray | None = None
    gdp: np.ndarray | None = None
    sign_constraint: bool = True
    priors: Mapping[str, Mapping[str, float]] | None = None
    gdp_publication_lag: int = 0
    female: np.ndarray | None = None


def refit_inputs(
    design: Design, config: ModelConfig, x: dict[str, np.ndarray], spec: RefitSpec
) -> dict[str, np.ndarray]:
    """Fill ``x`` (fresh copies of the default inputs) for the refit ``spec`` of ``design``."""
    origin, exclude_years, arrivals, gdp = spec.origin, spec.exclude_years, spec.arrivals, spec.gdp
    sign_constraint, priors, gdp_publication_lag = spec.sign_constraint, spec.priors, spec.gdp_publication_lag
    d = design
    last = int(d.years[-1])
    origin = last if origin is None else whole_number(origin, "origin", what="a year")
    if not d.years[0] + 2 <= origin <= last:
        raise ConfigError(
            f"origin: {origin} is outside {int(d.years[0]) + 2}..{last}; a fit needs at least three "
            "observed years and cannot see beyond the data window."
        )
    seen = d.years <= origin
    excluded = [whole_number(y, "exclude_years", what="a year") for y in exclude_years]
    bad = sorted(set(excluded) - {int(y) for y in d.years})
    if bad:
        raise ConfigError(f"exclude_years: {bad} are not years of the window {int(d.years[0])}..{last}.")
    x["obs_weight"] = (seen & ~np.isin(d.years, excluded)).astype(float)
    if arrivals is not None:
        arrivals = np.asarray(arrivals, dtype=float)
        if (
            arrivals.shape != d.y.shape
            or not whole_valued(arrivals).all()
            or (arrivals < 0).any()
        ):
            raise ConfigError(
                f"arrivals: need {d.y.shape[0]} finite, non-negative whole counts (one per year "
                f"{int(d.years[0])}..{last}), got {arrivals!r}."
            )
        dtype = x["arrivals_data"].dtype
        if arrivals.max() > np.iinfo(dtype).max:
            raise ConfigError(f"arrivals: {arrivals.max():.0f} exceeds the {dtype} data container of the model.")
        x["arrivals_data"] = arrivals.astype(dtype)
    if "gdp_obs_all" in x:
        g = d.gdp_all if gdp is None else np.asarray(gdp, dtype=float)
        if g.shape != d.gdp_all.shape:
            raise ConfigError(f"gdp: need {d.gdp_all.shape[0]} values (years {d.gdp_years[0]}..), got {g.shape}.")
        if np.isinf(g).any():
            raise ConfigError("gdp: infinite values; use NaN for a missing year.")
        lag = whole_number(gdp_publication_lag, "gdp_publication_lag", what="a year")
        if lag < 0:
            raise ConfigError(f"gdp_publication_lag: {lag} must be >= 0 (years until a GDP figure is published).")
        newest = origin - lag
        known = ~np.isnan(g) & (d.gdp_years <= newest)
        x["gdp_obs_all"] = np.where(known, np.nan_to_num(g), 0.0)
        x["gdp_obs_weight"] = known.astype(float)
        if lag:
            first_release = config.gdp_first_release_sd
            x["gdp_obs_sd_all"] = np.where(d.gdp_years == newest, first_release, d.gdp_sd_all)
        if "gdp_sign_weight" in x:
            # the known sign (2005) is information about that year: a fit that stops
            # before it must not see it, as a fit on the shorter series would not
            sign_years = d.gdp_years[d.gdp_sign_idx]
            seen_sign = bool(len(sign_years)) and bool((sign_years <= newest).all())
            x["gdp_sign_weight"] = np.asarray(1.0 if sign_constraint and seen_sign else 0.0)
    # centre on the training window, as a fit on the shorter series would
    center = d.X_fixed[seen].mean(axis=0)
    if d.economy_col is not None:
        obs = x["gdp_obs_weight"] > 0
        center[d.economy_col] = float(x["gdp_obs_all"][obs].mean()) if obs.any() else 0.0
    if "driver_center" in x:
        x["driver_center"] = center
    if "female_data" in x:
        _female_inputs(d, x, spec.female)
    elif spec.female is not None:
        raise ConfigError("female: only the by-sex model (model.by_sex) takes female counts.")
    swap_priors(d, x, priors or {})
    return x


def _female_inputs(d: Design, x: dict[str, np.ndarray], female: np.ndarray | None) -> None:
    """The by-sex graph's female counts and their weights (1 where published), checked against the totals."""
    if female is None:
        return
    f = np.asarray(female, dtype=float)
    pub = ~np.isnan(f)
    total = np.asarray(x["arrivals_data"], dtype=float)
    if f.shape != d.y.shape or not whole_valued(f[pub]).all() or (f[pub] < 0).any() or (f[pub] > total[pub]).any():
        raise ConfigError(
            f"female: need {d.y.shape[0]} whole counts (NaN where unpublished), each between 0 and the year's "
            f"total, got {female!r}."
        )
    x["female_data"] = np.where(pub, f, 0.0).astype(x["female_data"].dtype)
    x["female_weight"] = pub.astype(float)


def swap_priors(design: Design, x: dict[str, np.ndarray], priors: Mapping[str, Mapping[str, float]]) -> None:
    """Replace the normal priors of the level and the driver effects in the inputs ``x`` (checked)."""
    d = design
    for name, spec in priors.items():
        if name != "level" and (not name.startswith("beta_") or name.removeprefix("beta_") not in d.drivers):
            raise ConfigError(
                f"priors.{name}: only 'level' and beta_<driver> for drivers in the model "
                f"({[f'beta_{k}' for k in d.drivers]}) can be swapped without recompiling."
            )
        if name == "level":
            current = {"mu": float(x["level_prior_mu"]), "sigma": float(x["level_prior_sigma"])}
        else:
            k = list(d.drivers).index(name.removeprefix("beta_"))
            current = {"mu": float(x["beta_prior_mu"][k]), "sigma": float(x["beta_prior_sigma"][k])}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"priors.{name}: expected a mapping like {{mu: 0, sigma: 1}}, got {spec!r}.")
        # same checks as a config file's prior: known keys, finite numbers, sigma > 0
        checked = validate_prior(name, {"dist": "normal", **current, **spec}, prefix="priors")
        if name == "level":
            x["level_prior_mu"] = np.asarray(checked["mu"])
            x["level_prior_sigma"] = np.asarray(checked["sigma"])
        else:
            x["beta_prior_mu"][k] = checked["mu"]
            x["beta_prior_sigma"][k] = checked["sigma"]
