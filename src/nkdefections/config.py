"""The library's plain configuration objects below the forecast layer.

:class:`DataConfig` (data window and files), :class:`ModelConfig`, :class:`SamplerConfig`,
:class:`GateConfig` (convergence gate) and :class:`Horizon` (forecast years).  The
scenario-level :class:`~nkdefections.forecast.config.ForecastConfig` lives with the
forecasts, and :class:`~nkdefections.pipeline.RunConfig` (what a run writes) with the
pipeline, so no configuration type looks upward.  The defaults are written here once,
as the dataclass field defaults, and each type has one ``from_dict`` that checks the
keys of a plain mapping (a resolved Hydra config section) and fills in those defaults.
The Hydra YAML files under ``configs/`` hold values only and are turned into these
objects in ``cli/``.
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
from pathlib import Path
from typing import Any

import numpy as np

from nkdefections import constants as C
from nkdefections.errors import ConfigError
from nkdefections.priors import DEFAULT_PRIORS, validate_prior
from nkdefections.validate import check_keys, choice, number, whole

LIKELIHOODS = ("negative_binomial", "poisson")
LATENTS = ("ar1", "random_walk", "none")
PARAMETERIZATIONS = ("noncentered", "log_mu")
INNOVATIONS = ("normal", "student_t")
#: Sign constraints a driver effect can carry, and transforms of a driver before it enters log mu.
SIGNS = ("nonpositive", "nonnegative")
TRANSFORMS = ("linear", "log1p")
SAMPLERS = ("numpyro", "nutpie", "pymc")
MAX_LAG = 3

#: The default's sign constraint and transform (experiments/model_structures: chosen by the
#: pre-registered rule over the linear AR(1), now configs/model/ar1_linear.yaml).
DEFAULT_SIGNS: dict[str, str] = {C.BORDER: "nonpositive"}
DEFAULT_TRANSFORMS: dict[str, str] = {C.SANCTIONS: "log1p"}

#: Default lag (years) of each driver: see configs/model/default.yaml for the reasoning.
DEFAULT_LAGS: dict[str, int] = {C.BORDER: 0, C.ECONOMY: 1, C.SANCTIONS: 0}


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
        next to a latent, see `docs/model/choice.md`).
    latent
        Latent log-rate dynamics: ``ar1`` (default), ``random_walk`` or ``none``.
    parameterization
        How the sampler sees the same model: ``log_mu`` (default: each year's log rate is the
        free variable and the latent its residual; GDP years with a figure are offsets from it
        in units of its measurement s.d., the others non-centred) or ``noncentered`` (the latent
        as standardised innovations and the true GDP growth centred: the form the prior is drawn
        from).  The fit engine samples ``log_mu`` (experiments/sbc/ENGINE_RULE.md).
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
    innovations
        ``normal`` (default) or ``student_t`` latent innovations (``nu`` from the prior
        ``nu``): a break such as 2012's is a rare, not an impossible, event.
    startup_drift
        Random-walk latent only: the changes into the start-up years (to
        :data:`~nkdefections.constants.STARTUP_END`) get their own mean (prior
        ``startup_drift``), so the 1999-2002 build-up is not read as ordinary volatility.
    signs
        ``{driver: nonpositive | nonnegative}``: the effect's prior is truncated at zero
        (an assumption, e.g. stricter enforcement does not raise crossings).
    transforms
        ``{driver: linear | log1p}``: ``log1p`` enters ``log(1 + x)`` (border or sanctions;
        a saturating dose: the tenth measure adds less than the first).
    by_sex
        Also model the female share of the arrivals (``configs/model/by_sex.yaml``): a logit
        AR(1) share with its own driver effects (priors ``share_*``, ``rho_share``,
        ``sigma_share``), observed as female ~ Binomial(total, share) where the counts by sex are
        published; the totals' model is unchanged (see ``nkdefections.model.optional``).
    """

    name: str = "default"
    likelihood: str = "poisson"
    latent: str = "ar1"
    parameterization: str = "log_mu"
    drivers: tuple[str, ...] = C.DRIVERS
    lags: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_LAGS))
    priors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    gdp_latest_sd: float = 0.05
    gdp_first_release_sd: float = 1.0
    gdp_sign_softness: float = 0.5
    innovations: str = "normal"
    startup_drift: bool = False
    signs: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SIGNS))
    transforms: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TRANSFORMS))
    by_sex: bool = False

    @property
    def gdp_form(self) -> str:
        """The GDP block's form: ``pinned`` under ``log_mu`` (with a latent), else ``centered``."""
        return "pinned" if self.parameterization == "log_mu" and self.latent != "none" else "centered"

    def __post_init__(self) -> None:
        choice(self.likelihood, LIKELIHOODS, "model.likelihood")
        choice(self.latent, LATENTS, "model.latent")
        choice(self.parameterization, PARAMETERIZATIONS, "model.parameterization")
        choice(self.innovations, INNOVATIONS, "model.innovations")
        if not isinstance(self.startup_drift, bool):
            raise ConfigError(f"model.startup_drift: {self.startup_drift!r} must be true or false.")
        if not isinstance(self.by_sex, bool):
            raise ConfigError(f"model.by_sex: {self.by_sex!r} must be true or false.")
        if self.startup_drift and self.latent != "random_walk":
            raise ConfigError("model.startup_drift: needs latent: random_walk (the AR(1) has its own start).")
        if self.innovations != "normal" and self.latent == "none":
            raise ConfigError("model.innovations: a model without a latent has no innovations; use latent: ar1.")
        for key, options in (("signs", SIGNS), ("transforms", TRANSFORMS)):
            mapping = dict(getattr(self, key) or {})
            check_keys(mapping, set(C.DRIVERS), f"model.{key}")
            for d, v in mapping.items():
                choice(v, options, f"model.{key}.{d}")
            if key == "transforms" and mapping.get(C.ECONOMY, "linear") != "linear":
                raise ConfigError(
                    "model.transforms.economy: growth can be negative; only border and sanctions take log1p."
                )
            object.__setattr__(self, key, mapping)
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
        d["signs"] = dict(self.signs)
        d["transforms"] = dict(self.transforms)
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

    ``name`` picks the NUTS implementation: ``nutpie`` (default) is the fit engine
    (:class:`nkdefections.model.refit.Refitter`), one compiled program per model that the
    main fit and every refit share; ``numpyro`` and ``pymc`` run :func:`pymc.sample` on the
    model (the main fit only: backtests, comparison, SBC and sensitivity need ``nutpie``).
    ``seed`` makes a run reproducible on one machine.
    """

    name: str = "nutpie"
    draws: int = 2000
    tune: int = 2000
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
    """The convergence gate a fit must pass (see `docs/model/gate.md`)."""

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


# ----------------------------------------------------------------------------
# Data window
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
    """Where the data live and which window to return.

    Parameters
    ----------
    dir
        Folder with ``manifest.json`` and ``raw/``; default
        :func:`nkdefections.data.tables.default_data_dir`.
    first_year, last_year
        The observation window (inclusive); both must lie inside the arrivals file
        and ``last_year`` may not exceed 2016.  Checked when the data are loaded.
    history
        Extra years before ``first_year`` to carry covariates for (room for lags);
        arrivals are not read for them.
    files
        Per-role replacement files (role -> path), e.g. ``{"border_events": "my_coding.csv"}``;
        a replacement must follow the same column schema; its checksum is recorded,
        not checked.  A role mapped to None (``null`` in ``configs/data/default.yaml``,
        which declares every role) reads the shipped file.
    """

    dir: Path | None = None
    first_year: int = 1999
    last_year: int = 2016
    history: int = 0
    files: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def window(self) -> str:
        """The observation window as text, e.g. ``1999-2016`` (for labels and messages)."""
        return f"{self.first_year}-{self.last_year}"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataConfig:
        """From a ``data`` config section; keys left out (or null) take the defaults above."""
        check_keys(d, {f.name for f in dataclasses.fields(cls)}, "data")
        kw = {k: v for k, v in d.items() if v is not None}
        if kw.get("dir"):
            kw["dir"] = Path(kw["dir"])
        else:
            kw.pop("dir", None)
        if "files" in kw:
            kw["files"] = dict(kw["files"])
        return cls(**kw)


# ----------------------------------------------------------------------------
# Forecast horizon, scenarios and comparisons
# ----------------------------------------------------------------------------

#: Default forecast years (inclusive): the year after the fit window to 2030.
DEFAULT_HORIZON = (2017, 2030)


@dataclass(frozen=True)
class Horizon:
    """Forecast years, inclusive."""

    start: int = DEFAULT_HORIZON[0]
    end: int = DEFAULT_HORIZON[1]

    @property
    def years(self) -> np.ndarray:
        return np.arange(self.start, self.end + 1)

    @classmethod
    def after(cls, last_year: int, end: int | None = None) -> Horizon:
        """The horizon of a fit whose window ends in ``last_year``: from the next year to ``end``
        (default 2030, or 14 years on if the window ends after 2029)."""
        start = int(last_year) + 1
        return cls(start, int(end) if end is not None else max(DEFAULT_HORIZON[1], start + 13))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], prefix: str = "forecast.horizon", last_year: int | None = None) -> Horizon:
        """From ``{start: 2017, end: 2030}``; a key left out (or null) takes its default.

        With ``last_year`` (the fit window's), the default start is the year after it, so a live
        window forecasts from the year after its data.
        """
        check_keys(d, {"start", "end"}, prefix)
        kw = {k: whole(d[k], f"{prefix}.{k}", what="is not a year") for k in ("start", "end") if d.get(k) is not None}
        if last_year is not None and "start" not in kw:
            h = cls.after(last_year, kw.get("end"))
        else:
            h = cls(**kw)
        if h.end < h.start:
            raise ConfigError(f"{prefix}: end {h.end} precedes start {h.start}.")
        return h
