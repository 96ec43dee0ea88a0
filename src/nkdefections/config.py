"""Plain configuration objects for the model, the sampler and the convergence gate.

These dataclasses are the library's configuration: the Hydra YAML files under
``configs/`` hold values only and are turned into these objects in ``cli.py``.
Every constructor validates its values and raises :class:`ConfigError` with the
config key (``model.priors.beta_border.sigma``), the bad value and how to fix it,
before anything is sampled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nkdefections import constants as C
from nkdefections.errors import ConfigError
from nkdefections.validate import check_keys, choice, number, whole

LIKELIHOODS = ("negative_binomial", "poisson")
LATENTS = ("ar1", "random_walk", "none")
PARAMETERIZATIONS = ("centered", "noncentered")
SAMPLERS = ("numpyro", "nutpie", "pymc")
MAX_LAG = 3

#: Default lag (years) of each driver: see configs/model/default.yaml for the reasoning.
DEFAULT_LAGS: dict[str, int] = {C.BORDER: 0, C.ECONOMY: 1, C.SANCTIONS: 0}

#: Prior families and their parameters. Scale parameters must be > 0.
PRIOR_FAMILIES: dict[str, tuple[str, ...]] = {
    "normal": ("mu", "sigma"),
    "halfnormal": ("sigma",),
    "beta": ("alpha", "beta"),
    "gamma": ("alpha", "beta"),
}
_POSITIVE = {"sigma", "alpha", "beta"}

#: The default priors (see README "Priors" for the reasoning behind each number).
DEFAULT_PRIORS: dict[str, dict[str, Any]] = {
    "level": {"dist": "normal", "mu": 7.0, "sigma": 1.5},
    "beta_border": {"dist": "normal", "mu": 0.0, "sigma": 0.5},
    "beta_economy": {"dist": "normal", "mu": 0.0, "sigma": 0.1},
    "beta_sanctions": {"dist": "normal", "mu": 0.0, "sigma": 0.15},
    "rho": {"dist": "beta", "alpha": 3.0, "beta": 2.0},
    "sigma_latent": {"dist": "gamma", "alpha": 2.0, "beta": 10.0},
    "latent_init": {"dist": "normal", "mu": 0.0, "sigma": 1.5},
    "overdispersion": {"dist": "gamma", "alpha": 2.0, "beta": 10.0},
    "gdp_mean": {"dist": "normal", "mu": 1.0, "sigma": 2.0},
    "gdp_sd": {"dist": "halfnormal", "sigma": 3.0},
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


@dataclass(frozen=True)
class ModelConfig:
    """The model's structure and priors.

    Parameters
    ----------
    name
        A label for reports (``default``, ``poisson`` ...).
    likelihood
        ``poisson`` (default; with the AR(1) latent this is a Poisson-lognormal
        state-space model, overdispersed through the latent) or
        ``negative_binomial`` (adds transient overdispersion; weakly identified
        next to a latent, see README "Model choice").
    latent
        Latent log-rate dynamics: ``ar1`` (default), ``random_walk`` or ``none``.
    parameterization
        ``noncentered`` (default) or ``centered`` latent states.
    drivers
        Which of ``border``, ``economy``, ``sanctions`` enter the model.
    lags
        Years by which each driver leads arrivals (0..3).
    priors
        Prior specs by name; missing names take :data:`DEFAULT_PRIORS`.
    gdp_latest_sd, gdp_first_release_sd
        Measurement s.d. (percentage points) of a latest-vintage and of a
        first-release-only GDP growth figure.
    gdp_sign_softness
        Scale (pp) of the soft constraint that applies a known sign (2005 > 0).
    """

    name: str = "default"
    likelihood: str = "poisson"
    latent: str = "ar1"
    parameterization: str = "noncentered"
    drivers: tuple[str, ...] = C.DRIVERS
    lags: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_LAGS))
    priors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    gdp_latest_sd: float = 0.05
    gdp_first_release_sd: float = 1.0
    gdp_sign_softness: float = 0.5

    def __post_init__(self) -> None:
        choice(self.likelihood, LIKELIHOODS, "model.likelihood")
        choice(self.latent, LATENTS, "model.latent")
        choice(self.parameterization, PARAMETERIZATIONS, "model.parameterization")
        if isinstance(self.drivers, str):
            raise ConfigError(f"model.drivers: {self.drivers!r} is a string; give a list such as [{self.drivers}].")
        drivers = tuple(self.drivers)
        for d in drivers:
            choice(d, C.DRIVERS, "model.drivers")
        if len(set(drivers)) != len(drivers):
            raise ConfigError(f"model.drivers: {list(drivers)} names a driver twice.")
        # keep the canonical order so coordinates are stable
        object.__setattr__(self, "drivers", tuple(d for d in C.DRIVERS if d in drivers))
        lags = dict(self.lags)
        check_keys(lags, set(C.DRIVERS), "model.lags")
        full_lags = dict(DEFAULT_LAGS)  # a partial override keeps the other defaults
        for d, v in lags.items():
            lag = whole(v, f"model.lags.{d}", minimum=0)
            if lag > MAX_LAG:
                raise ConfigError(f"model.lags.{d}: {lag} exceeds the maximum lag {MAX_LAG}.")
            full_lags[d] = lag
        object.__setattr__(self, "lags", full_lags)
        check_keys(self.priors, set(DEFAULT_PRIORS), "model.priors")
        merged = {}
        for name, default in DEFAULT_PRIORS.items():
            override = self.priors.get(name, {})
            if not isinstance(override, Mapping):
                validate_prior(name, override)  # raises ConfigError naming the key
            # a partial override fills in the default's parameters only for the same
            # family; switching family (e.g. gamma -> halfnormal) takes the override alone
            same_family = override.get("dist", default["dist"]) == default["dist"]
            merged[name] = validate_prior(name, {**default, **override} if same_family else dict(override))
        object.__setattr__(self, "priors", merged)
        for key in ("gdp_latest_sd", "gdp_first_release_sd", "gdp_sign_softness"):
            v = number(getattr(self, key), f"model.{key}")
            if v <= 0:
                raise ConfigError(f"model.{key}: {v} must be > 0.")
            object.__setattr__(self, key, v)

    @property
    def max_lag(self) -> int:
        return max((self.lags[d] for d in self.drivers), default=0)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["drivers"] = list(self.drivers)
        d["lags"] = dict(self.lags)
        d["priors"] = {k: dict(v) for k, v in self.priors.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        allowed = {f.name for f in dataclasses.fields(cls)}
        check_keys(d, allowed, "model")
        kw = dict(d)
        if "drivers" in kw:
            kw["drivers"] = tuple(kw["drivers"])
        return cls(**kw)


@dataclass(frozen=True)
class SamplerConfig:
    """NUTS settings.

    ``name`` picks the NUTS implementation (``numpyro`` default: fastest here,
    see README "Sampler choice"; ``nutpie``; ``pymc``).  ``seed`` makes a run
    reproducible.
    """

    name: str = "numpyro"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    cores: int = 2
    target_accept: float = 0.95
    seed: int = 20161231
    progressbar: bool = True

    def __post_init__(self) -> None:
        choice(self.name, SAMPLERS, "sampler.name")
        whole(self.draws, "sampler.draws", minimum=1)
        whole(self.tune, "sampler.tune", minimum=0)
        whole(self.chains, "sampler.chains", minimum=1)
        whole(self.cores, "sampler.cores", minimum=1)
        whole(self.seed, "sampler.seed", minimum=0)
        ta = number(self.target_accept, "sampler.target_accept")
        if not 0 < ta < 1:
            raise ConfigError(f"sampler.target_accept: {ta} must be strictly between 0 and 1.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The settings that change the draws (progress bar excluded)."""
        d = self.to_dict()
        d.pop("progressbar")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SamplerConfig:
        check_keys(d, {f.name for f in dataclasses.fields(cls)}, "sampler")
        return cls(**dict(d))


@dataclass(frozen=True)
class GateConfig:
    """The convergence gate a fit must pass (see README "Convergence gate")."""

    rhat_max: float = 1.01
    ess_bulk_min: float = 400.0
    ess_tail_min: float = 400.0
    max_divergences: int = 0
    enforce: bool = True

    def __post_init__(self) -> None:
        if number(self.rhat_max, "gate.rhat_max") < 1.0:
            raise ConfigError(f"gate.rhat_max: {self.rhat_max} must be >= 1.")
        for key in ("ess_bulk_min", "ess_tail_min"):
            if number(getattr(self, key), f"gate.{key}") < 0:
                raise ConfigError(f"gate.{key}: must be >= 0.")
        whole(self.max_divergences, "gate.max_divergences", minimum=0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GateConfig:
        check_keys(d, {f.name for f in dataclasses.fields(cls)}, "gate")
        return cls(**dict(d))


def stable_hash(obj: Any, n: int = 16) -> str:
    """Short sha256 of a JSON-serialisable object (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]
