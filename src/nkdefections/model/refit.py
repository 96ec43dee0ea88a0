"""One sampler program per model graph, compiled once: the engine behind every fit.

A :class:`Refitter` builds the evaluation-mode graph of a model
(:func:`nkdefections.model.build_model` with ``evaluation=True``) over the full
observation window and compiles it **once per process** with nutpie's numba backend
(:func:`nutpie.compile_pymc_model`).  Every swappable quantity
(:data:`nkdefections.model.EVAL_DATA`) is a shared data array of that program, so a refit
swaps arrays (:meth:`nutpie.compile_pymc.CompiledPyMCModel.with_data`) and never
recompiles; ``draws``, ``tune``, ``target_accept`` and the seed are arguments of the
sampler, not part of the program.  Two refitters of the same model and data share the
compiled program (:meth:`Refitter.program`, keyed by :func:`program_key`), and so does the main fit
(:meth:`nkdefections.model.DefectionModel.fit` with ``sampler.name="nutpie"``).

* a fit "on 1999..origin" is the full-window graph with the likelihood weights of
  later years set to 0 (and their GDP figures masked), so every origin has the same
  shapes; the latent process runs on through the masked years under its prior, which is
  exactly its forecast distribution;
* simulation-based calibration swaps in simulated counts and GDP figures;
* prior sensitivity swaps the prior parameters of the level and the driver effects.

Centring follows the training window (the drivers' means over 1999..origin), so a
masked fit is the same model as a fit on the shorter series (tested against
:class:`~nkdefections.model.DefectionModel` in ``tests/model/test_refit.py``).

There is no retry: a refit that misses its gate is recorded as it is.  The geometry
(``parameterization="log_mu"``) and the sampler settings were chosen once, by the rule in
``experiments/sbc/ENGINE_RULE.md``, and SBC calibrates that one procedure.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from nkdefections import constants as C
from nkdefections.config import DataConfig, GateConfig, ModelConfig, SamplerConfig, stable_hash
from nkdefections.data.load import load_data
from nkdefections.errors import ConfigError
from nkdefections.model.diagnostics import ConvergenceReport, check_convergence
from nkdefections.model.graph import EVAL_DATA, build_model, design, parameter_names, ranked_parameters
from nkdefections.model.refit_inputs import RefitSpec, refit_inputs

log = logging.getLogger(__name__)

#: nutpie's mass-matrix adaptation for every fit: a diagonal plus a low-rank correction learnt from
#: the draws and gradients, which takes the level-persistence correlation of the AR(1) (the commonest
#: gate failure with a diagonal matrix in the tuning simulations of experiments/sbc/ENGINE_RULE.md)
ADAPTATION = "low_rank"

#: Compiled programs of this process, by :func:`program_key`: one per model graph and window.
_PROGRAMS: dict[str, Any] = {}
#: Refitters of this process, by program key and sampler settings (:meth:`Refitter.shared`).
_REFITTERS: dict[tuple[str, str], Refitter] = {}


def program_key(config: ModelConfig, data: xr.Dataset) -> str:
    """What a compiled program depends on: the model config and the data's design (hash and window)."""
    return stable_hash(
        {
            "model": config.to_dict(),
            "data": data.attrs.get("data_hash"),
            "years": [int(v) for v in data[C.YEAR].values],
            "window": [int(data.attrs["first_year"]), int(data.attrs["last_year"])],
        }
    )


@dataclass
class RefitResult:
    """One refit: the posterior (constrained parameters and deterministics) and its diagnostics."""

    idata: xr.DataTree
    convergence: ConvergenceReport
    #: wall seconds of the sampling (the compilation is in :attr:`Refitter.compile_seconds`)
    seconds: float
    inputs: dict[str, np.ndarray] = field(repr=False)
    #: the parameterisation whose draws these are
    parameterization: str = "log_mu"
    #: the NUTS target acceptance the draws were sampled at
    target_accept: float | None = None
    #: sampler runs behind this result (always 1: the engine has no retry)
    attempts: int = 1

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior draws as a Dataset (dims chain, draw, ...)."""
        return self.idata.posterior.to_dataset()


class Refitter:
    """Fit one model many times on swapped data from one compiled program.

    Parameters
    ----------
    config
        The model to refit (default :class:`ModelConfig`).
    data
        The full data set (default: :func:`load_data` with the history the lags need).
    sampler
        NUTS settings; ``name`` must be ``nutpie`` (the engine's sampler).  ``draws``,
        ``tune``, ``chains``, ``cores`` and ``target_accept`` are read at every fit.

    Examples
    --------
    >>> r = Refitter()                                   # doctest: +SKIP
    >>> fit = r.fit(r.inputs(origin=2010), seed=1)       # doctest: +SKIP
    >>> fit.posterior["latent"].sel(year=2011)           # doctest: +SKIP
    """

    def __init__(
        self,
        config: ModelConfig | None = None,
        data: xr.Dataset | None = None,
        sampler: SamplerConfig | None = None,
    ) -> None:
        self.config = config or ModelConfig()
        if data is None:
            data = load_data(DataConfig(history=self.config.max_lag))
        self.data = data
        self.sampler = sampler or SamplerConfig(progressbar=False)
        if self.sampler.name != "nutpie":
            raise ConfigError(
                f"sampler.name: the fit engine runs nutpie on one compiled program; got {self.sampler.name!r}. "
                "Use sampler=nutpie for backtests, model comparison, SBC and sensitivity."
            )
        self.design = design(data, self.config)
        self.model = build_model(data, self.config, evaluation=True)
        self.free_parameters = parameter_names(self.model)
        #: what SBC ranks: the free parameters, with log_mu's offsets replaced by gdp_true and latent
        self.ranked_parameters = ranked_parameters(self.model, self.config)
        self.key = program_key(self.config, data)
        #: seconds this refitter spent compiling (0.0 when the process had the program already)
        self.compile_seconds: float | None = None

    @classmethod
    def shared(
        cls, config: ModelConfig | None = None, data: xr.Dataset | None = None, sampler: SamplerConfig | None = None
    ) -> Refitter:
        """This process's refitter for ``(config, data, sampler)``: built once, then reused.

        Building one costs a graph (about a second); the compiled program is shared anyway.
        """
        fresh = None
        if data is None:
            fresh = cls(config, data, sampler)
            data = fresh.data
        key = (program_key(config or ModelConfig(), data), stable_hash((sampler or SamplerConfig()).to_dict()))
        if key not in _REFITTERS:
            _REFITTERS[key] = fresh or cls(config, data, sampler)
        return _REFITTERS[key]

    # -- inputs -----------------------------------------------------------------
    @property
    def years(self) -> np.ndarray:
        """The observation years of the compiled window."""
        return self.design.years

    def default_inputs(self) -> dict[str, np.ndarray]:
        """The evaluation data as built (the full window, every weight 1)."""
        return {name: np.asarray(self.model[name].get_value()).copy() for name in self.data_names()}

    def data_names(self) -> list[str]:
        """The swappable data arrays of this graph, in :data:`EVAL_DATA` order."""
        return [n for n in EVAL_DATA if n in self.model.named_vars]

    def inputs(self, spec: RefitSpec | None = None, **changes: Any) -> dict[str, np.ndarray]:
        """Arrays for one refit: ``spec`` (a :class:`RefitSpec`), or its fields as keywords
        (``inputs(origin=2010)`` is ``inputs(RefitSpec(origin=2010))``); nothing given: the
        full-window fit."""
        if spec is not None and changes:
            raise ConfigError(f"Refitter.inputs: give a RefitSpec or its fields {sorted(changes)}, not both.")
        if spec is None:
            try:
                spec = RefitSpec(**changes)
            except TypeError:
                fields = [f.name for f in dataclasses.fields(RefitSpec)]
                raise ConfigError(
                    f"Refitter.inputs: unknown field(s) {sorted(set(changes) - set(fields))}; RefitSpec has {fields}."
                ) from None
        return refit_inputs(self.design, self.config, self.default_inputs(), spec)  # fresh copies, filled in place

    # -- compilation ----------------------------------------------------------------
    def program(self) -> Any:
        """The compiled nutpie program of this graph (compiled on first use in the process, then shared)."""
        if self.key in _PROGRAMS:
            if self.compile_seconds is None:
                self.compile_seconds = 0.0
            return _PROGRAMS[self.key]
        import nutpie

        from nkdefections.model.program_cache import cached_callbacks, environment_key, fill_in_child
        from nkdefections.resources import cache_dir

        t0 = time.perf_counter()
        folder = cache_dir() / "nutpie"
        # a cold cache is filled by a child process, so that this one loads the compiled code like every
        # later process does (same seed, same draws, cold or warm); see nkdefections.model.program_cache
        marker = folder / f"program-{self.key}-{environment_key()}.done"
        fill_in_child(marker, f"{__name__}._compile_program", self.config, self.data)
        # nutpie's two C callbacks are loaded from (or saved to) <cache>/nutpie: without it numba
        # compiles them again in every process (~15 s warm, most of a cold fit's ~55 s)
        with warnings.catch_warnings(), cached_callbacks(folder):
            warnings.filterwarnings("ignore", category=UserWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            _PROGRAMS[self.key] = nutpie.compile_pymc_model(self.model, backend="numba")
        self.compile_seconds = time.perf_counter() - t0
        log.info("compiled the %s sampler program in %.1f s", self.config.name, self.compile_seconds)
        return _PROGRAMS[self.key]

    # -- fitting ----------------------------------------------------------------------
    def fit(
        self,
        inputs: Mapping[str, np.ndarray] | None = None,
        *,
        seed: int | None = None,
        gate: GateConfig | None = None,
        progressbar: bool = False,
    ) -> RefitResult:
        """Sample the posterior for ``inputs`` (default: the full window).

        The gate is evaluated and reported, never raised: a backtest or SBC run must
        record a failing refit, not stop at it.  ``seconds`` is the sampling's wall time.
        """
        import nutpie

        x = dict(self.default_inputs() if inputs is None else inputs)
        missing = set(self.data_names()) - set(x)
        if missing:
            raise ConfigError(f"refit inputs: missing {sorted(missing)}; build them with Refitter.inputs().")
        weight = np.asarray(x["obs_weight"])
        if not np.isin(weight, (0.0, 1.0)).all():  # the graph's latent solution assumes a year is seen or not
            raise ConfigError(
                f"refit inputs: obs_weight must be 0 (year unseen) or 1 (seen); got {sorted(set(weight.tolist()))}. "
                "Build the inputs with Refitter.inputs(origin=..., exclude_years=...)."
            )
        seed = self.sampler.seed if seed is None else int(seed)
        s = self.sampler
        program = self.program()
        swapped = program.with_data(**{n: x[n] for n in self.data_names()})
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            running = nutpie.sample(
                swapped,
                draws=s.draws,
                tune=s.tune,
                chains=s.chains,
                cores=min(s.cores, s.chains),
                seed=seed,
                target_accept=s.target_accept,
                adaptation=ADAPTATION,
                save_warmup=False,
                progress_bar=progressbar,
                blocking=False,
            )
            # nutpie's own blocking call answers Ctrl-C with the draws so far, as if the fit had ended:
            # an interrupted fit must stop the caller instead, with nothing half-sampled returned
            try:
                idata = running.wait()
            except BaseException:
                running.cancel()
                raise
        seconds = time.perf_counter() - t0
        idata = _plain(idata)
        report = check_convergence(idata, self.free_parameters, gate or GateConfig(enforce=False))
        return RefitResult(
            idata=idata,
            convergence=report,
            seconds=seconds,
            inputs=x,
            parameterization=self.config.parameterization,
            target_accept=s.target_accept,
        )

    def fit_many(
        self,
        inputs: Sequence[Mapping[str, np.ndarray]],
        *,
        seeds: Sequence[int],
        gate: GateConfig | None = None,
    ) -> list[RefitResult]:
        """Refit many independent data sets one after another on the one compiled program.

        Each fit runs its chains on ``sampler.cores`` threads (nutpie), so the two cores of a
        small machine are busy without a second process.
        """
        if len(inputs) != len(seeds):
            raise ConfigError(f"fit_many: {len(inputs)} inputs but {len(seeds)} seeds; give one seed per data set.")
        return [self.fit(x, seed=int(seed), gate=gate) for x, seed in zip(inputs, seeds, strict=True)]


def _compile_program(config: ModelConfig, data: xr.Dataset) -> None:
    """Compile the program of ``(config, data)`` into the disk caches (run in a child by :meth:`Refitter.program`)."""
    Refitter(config, data, SamplerConfig(progressbar=False)).program()


#: sample-stat names the package reads, from nutpie's names
_STATS = {
    "diverging": "diverging",
    "n_steps": "n_steps",
    "mean_tree_accept": "acceptance_rate",
    "depth": "tree_depth",
    "step_size": "step_size",
    "energy": "energy",
    "logp": "lp",
}


def _plain(idata: xr.DataTree) -> xr.DataTree:
    """Posterior and the sample stats the package reads, as plain numpy-backed datasets."""
    post = idata.posterior.to_dataset().as_numpy()
    raw = idata.sample_stats.to_dataset()
    stats = xr.Dataset({new: raw[old] for old, new in _STATS.items() if old in raw}).as_numpy()
    stats = stats.drop_vars([c for c in stats.coords if c not in (C.CHAIN, C.DRAW)])
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
