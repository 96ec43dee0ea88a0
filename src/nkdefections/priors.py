"""Prior specs: the families, the defaults (`docs/model/priors.md`), and the check of one spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nkdefections.errors import ConfigError
from nkdefections.validate import check_keys, number

#: Prior families and their parameters. Scale parameters must be > 0.
PRIOR_FAMILIES: dict[str, tuple[str, ...]] = {
    "normal": ("mu", "sigma"),
    "halfnormal": ("sigma",),
    "beta": ("alpha", "beta"),
    "gamma": ("alpha", "beta"),
}
_POSITIVE = {"sigma", "alpha", "beta"}

#: The closure elasticity: arrivals scale as ``open_fraction ** e``, ``e ~ N(0.7, 0.3)`` truncated to
#: [0, 1.5].  Below 1 because many arrivals crossed into China years before and keep coming when the
#: border shuts; above 0 because a closed border stops new crossings.  1999-2016 never saw a closed
#: border, so with the shipped data ``e`` is an assumption drawn from this prior in the forecast;
#: when the fitted years carry an observed ``border_open`` below 1 (``data.files.border_open``),
#: the model estimates ``e`` under the same prior.  See `docs/how-to/scenarios.md`.
CLOSURE_ELASTICITY: dict[str, float] = {"mean": 0.7, "sd": 0.3, "lower": 0.0, "upper": 1.5}

#: The default priors (see `docs/model/priors.md` for the reasoning behind each number).
DEFAULT_PRIORS: dict[str, dict[str, Any]] = {
    "level": {"dist": "normal", "mu": 7.0, "sigma": 1.5},
    "beta_border": {"dist": "normal", "mu": 0.0, "sigma": 0.5},
    "beta_economy": {"dist": "normal", "mu": 0.0, "sigma": 0.1},
    "beta_sanctions": {"dist": "normal", "mu": 0.0, "sigma": 0.1},  # per unit of log(1 + index)
    "rho": {"dist": "beta", "alpha": 3.0, "beta": 2.0},
    "sigma_latent": {"dist": "gamma", "alpha": 4.0, "beta": 20.0},
    "latent_init": {"dist": "normal", "mu": 0.0, "sigma": 1.5},
    "overdispersion": {"dist": "gamma", "alpha": 2.0, "beta": 10.0},
    "gdp_mean": {"dist": "normal", "mu": 1.0, "sigma": 2.0},
    "gdp_sd": {"dist": "gamma", "alpha": 2.0, "beta": 1.0},
    "nu": {"dist": "gamma", "alpha": 2.0, "beta": 0.1},
    "startup_drift": {"dist": "normal", "mu": 0.0, "sigma": 0.5},
    # the female share (model by_sex): logit of the share at the drivers' means, its effects, its AR(1)
    "share_level": {"dist": "normal", "mu": 0.85, "sigma": 1.0},
    "share_beta_border": {"dist": "normal", "mu": 0.0, "sigma": 0.5},
    "share_beta_economy": {"dist": "normal", "mu": 0.0, "sigma": 0.1},
    "share_beta_sanctions": {"dist": "normal", "mu": 0.0, "sigma": 0.1},
    "share_closure": {"dist": "normal", "mu": 0.0, "sigma": 0.5},
    "rho_share": {"dist": "beta", "alpha": 3.0, "beta": 2.0},
    "sigma_share": {"dist": "gamma", "alpha": 4.0, "beta": 20.0},
}
_ALLOWED_FAMILIES = {
    "level": ("normal",),
    "beta_border": ("normal",),
    "beta_economy": ("normal",),
    "beta_sanctions": ("normal",),
    "rho": ("beta",),
    "sigma_latent": ("gamma", "halfnormal"),
    "latent_init": ("normal",),
    "overdispersion": ("gamma", "halfnormal"),
    "gdp_mean": ("normal",),
    "gdp_sd": ("gamma", "halfnormal"),
    "nu": ("gamma",),
    "startup_drift": ("normal",),
    "share_level": ("normal",),
    "share_beta_border": ("normal",),
    "share_beta_economy": ("normal",),
    "share_beta_sanctions": ("normal",),
    "share_closure": ("normal",),
    "rho_share": ("beta",),
    "sigma_share": ("gamma", "halfnormal"),
}


def validate_prior(name: str, spec: Mapping[str, Any], prefix: str = "model.priors") -> dict[str, Any]:
    """Check one prior spec ``{"dist": ..., <params>}``; return it with floats."""
    key = f"{prefix}.{name}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{key}: expected a mapping like {{dist: normal, mu: 0, sigma: 1}}, got {spec!r}.")
    dist = spec.get("dist")
    if dist not in PRIOR_FAMILIES:
        raise ConfigError(f"{key}.dist: unknown prior family {dist!r}; choose one of {sorted(PRIOR_FAMILIES)}.")
    allowed = _ALLOWED_FAMILIES.get(name)
    if allowed is not None and dist not in allowed:
        raise ConfigError(f"{key}.dist: {name} takes a prior of family {list(allowed)}, got {dist!r}.")
    params = PRIOR_FAMILIES[dist]
    check_keys(spec, {"dist", *params}, key)
    out: dict[str, Any] = {"dist": dist}
    for p in params:
        if p not in spec:
            raise ConfigError(f"{key}.{p}: missing; a {dist} prior needs {list(params)}.")
        v = number(spec[p], f"{key}.{p}")
        if p in _POSITIVE and v <= 0:
            raise ConfigError(
                f"{key}.{p}: {v} must be > 0 (a prior scale or shape cannot be zero or negative); "
                "widen it, e.g. to the default "
                f"{DEFAULT_PRIORS.get(name, {}).get(p, 1.0)}."
            )
        out[p] = v
    return out
