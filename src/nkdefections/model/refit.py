"""Compile once, refit many times: the engine behind backtests, LFO-CV, SBC and prior sensitivity.

A :class:`Refitter` builds the evaluation-mode graph of a model
(:func:`nkdefections.model.build_model` with ``evaluation=True``) over the full
observation window, compiles its log density to JAX **once** with every swappable
quantity (:data:`nkdefections.model.EVAL_DATA`) as a function argument, and runs
numpyro's NUTS kernel (the same kernel ``pm.sample(nuts_sampler="numpyro")`` uses,
with its step-size and diagonal mass-matrix adaptation) on the compiled function.
A refit then only swaps arrays:

* a fit "on 1999..origin" is the full-window graph with the likelihood weights of
  later years set to 0 (and their GDP figures masked), so every origin has the same
  shapes and reuses the compiled code; the latent process runs on through the
  masked years under its prior, which is exactly its forecast distribution;
* simulation-based calibration swaps in simulated counts and GDP figures;
* prior sensitivity swaps the prior parameters of the level and the driver effects.

Centring follows the training window (the drivers' means over 1999..origin), so a
masked fit is the same model as a fit on the shorter series (tested against
:class:`~nkdefections.model.DefectionModel` in ``tests/test_refit.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dataclasses_replace
from typing import Any

import numpy as np
import xarray as xr

from nkdefections import constants as C
from nkdefections.config import GateConfig, ModelConfig, SamplerConfig
from nkdefections.data.load import DataConfig, load_data
from nkdefections.errors import ConfigError
from nkdefections.model.diagnostics import ConvergenceReport, check_convergence
from nkdefections.model.graph import (
    EVAL_DATA,
    build_model,
    design,
    parameter_names,
    ranked_parameters,
)
from nkdefections.model.refit_inputs import refit_inputs, whole_number
from nkdefections.model.sampling import sample_kwargs
from nkdefections.model.starts import start_points

log = logging.getLogger(__name__)


#: What a ``log_mu`` refit that misses its gate tries next, in order: (parameterization,
#: GDP block (:attr:`ModelConfig.gdp_block`), target_accept or None for the refitter's own).
#: The last two rungs came from the seven SBC simulations that failed the first four
#: (README "Simulation-based calibration"): a GDP spread ``gdp_sd`` of 0.015-0.04 pp wants the
#: GDP block non-centred, a latent sigma near 0.017 with counts in the tens of thousands the
#: innovation form with the GDP years pinned.  See :class:`Refitter` ``fallback``.
FALLBACK_LADDER: tuple[tuple[str, str, float | None], ...] = (
    ("noncentered", "centered", None),
    ("log_mu", "pinned", 0.99),
    ("noncentered", "centered", 0.99),
    ("log_mu", "noncentered", None),
    ("noncentered", "pinned", None),
)


@dataclass
class RefitResult:
    """One refit: the posterior (constrained parameters and deterministics) and its diagnostics."""

    idata: xr.DataTree
    convergence: ConvergenceReport
    seconds: float
    inputs: dict[str, np.ndarray] = field(repr=False)
    #: the parameterisation whose draws these are (the fallback's when it was used)
    parameterization: str = "log_mu"
    #: the GDP block's form of those draws (:attr:`ModelConfig.gdp_form`)
    gdp_form: str = "pinned"
    #: the NUTS target acceptance those draws were sampled at (0.99 on two of the ladder's rungs)
    target_accept: float | None = None
    #: the gate report of the first attempt when the fallback replaced it, else None
    first_attempt: ConvergenceReport | None = field(default=None, repr=False)

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior draws as a Dataset (dims chain, draw, ...)."""
        return self.idata.posterior.to_dataset()


class Refitter:
    """Refit one model many times on swapped data without recompiling.

    Parameters
    ----------
    config
        The model to refit (default :class:`ModelConfig`).
    data
        The full data set (default: :func:`load_data` with the history the lags need).
    sampler
        NUTS settings; only ``numpyro`` is supported here (the name is checked).
    fallback
        ``log_mu`` only: when a fit misses its gate, climb :data:`FALLBACK_LADDER` (the
        innovation form, then both forms at ``target_accept`` 0.99, then two other forms of
        the GDP block; each compiled on first use) and keep the first fit that passes; if
        none does, the first fit.  Every rung samples the same model; ``log_mu`` suits counts
        that pin each year's rate more tightly than the latent's sigma does (the real data),
        the innovation form the opposite (small latent sigma or small counts, common among
        prior simulations), and a non-centred GDP block a growth spread narrower than the
        figures' s.d. (README "Simulation-based calibration").  The result records the forms
        it is from and the first attempt's gate report.  SBC checks the whole procedure,
        ladder included.

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
        *,
        fallback: bool = True,
    ) -> None:
        self.config = config or ModelConfig()
        self.fallback = bool(fallback) and self.config.parameterization == "log_mu"
        self._fallback_refitters: dict[tuple[str, str, float | None], Refitter] = {}
        if data is None:
            data = load_data(DataConfig(history=self.config.max_lag))
        self.data = data
        self.sampler = sampler or SamplerConfig(progressbar=False)
        if self.sampler.name != "numpyro":
            raise ConfigError(
                f"sampler.name: the refit engine runs numpyro's NUTS on a compiled graph; got "
                f"{self.sampler.name!r}. Use sampler=numpyro for backtests, SBC and sensitivity."
            )
        self.design = design(data, self.config)
        self.model = build_model(data, self.config, evaluation=True)
        self.free_parameters = parameter_names(self.model)
        #: what SBC ranks: the free parameters, with log_mu's offsets replaced by gdp_true and latent
        self.ranked_parameters = ranked_parameters(self.model, self.config)
        self._compiled: tuple[Any, Any, list[str], list[tuple[str, ...]]] | None = None
        self._run_many: Any = None  # the batched sampler (:meth:`fit_many`), built with the rest by _compile
        #: seconds to build the JAX functions (graph rewriting); XLA compiles them on the
        #: first fit, so that fit's ``seconds`` includes the compilation
        self.compile_seconds: float | None = None

    # -- inputs -----------------------------------------------------------------
    @property
    def years(self) -> np.ndarray:
        """The observation years of the compiled window."""
        return self.design.years

    def default_inputs(self) -> dict[str, np.ndarray]:
        """The evaluation data as built (the full window, every weight 1)."""
        return {name: np.asarray(self.model[name].get_value()).copy() for name in self._data_names()}

    def _data_names(self) -> list[str]:
        return [n for n in EVAL_DATA if n in self.model.named_vars]

    def inputs(
        self,
        origin: int | None = None,
        *,
        exclude_years: Sequence[int] = (),
        arrivals: np.ndarray | None = None,
        gdp: np.ndarray | None = None,
        sign_constraint: bool = True,
        priors: Mapping[str, Mapping[str, float]] | None = None,
        gdp_publication_lag: int = 0,
    ) -> dict[str, np.ndarray]:
        """Arrays for one refit.

        Parameters
        ----------
        origin
            Last year the fit sees (default: the last year of the window).  Counts
            and GDP figures after it get weight 0; the drivers are centred on their
            means over ``first_year..origin``.
        exclude_years
            Years whose count gets weight 0 as well (leave-one-out refits); the
            centring and the GDP figures are unchanged.
        arrivals
            Replacement counts for every year of the window (e.g. simulated).
        gdp
            Replacement GDP figures for every GDP year (NaN = missing).
        sign_constraint
            Keep the soft known-sign constraint on 2005 GDP growth (SBC turns it off
            because prior simulations do not obey it).
        priors
            ``{"level": {"mu":..., "sigma":...}, "beta_border": {...}, ...}``: replacement
            parameters of the normal priors of the level and the driver effects.
        gdp_publication_lag
            Years after which a GDP figure is published (the Bank of Korea's estimate for a
            year comes out in July of the next, so a forecast made at the end of ``origin``
            knows GDP up to ``origin - 1``: lag 1).  Figures after ``origin - lag`` are unseen,
            and the newest seen one is a first release (its measurement s.d. is the
            first-release one, whatever its vintage in the data).  Default 0: GDP known
            through the origin, as the full-window fit knows it.
        """
        return refit_inputs(
            self.design,
            self.config,
            self.default_inputs(),  # fresh copies, filled in place
            origin,
            exclude_years=exclude_years,
            arrivals=arrivals,
            gdp=gdp,
            sign_constraint=sign_constraint,
            priors=priors,
            gdp_publication_lag=gdp_publication_lag,
        )

    # -- compilation ----------------------------------------------------------------
    def _jaxified(self, outputs: list[Any]) -> Any:
        """A JAX function of (value variables..., data in :meth:`_data_names` order...) for ``outputs``.

        The data containers become function arguments, so one compiled function serves every refit.
        """
        from pymc.sampling.jax import get_jaxified_graph
        from pytensor.graph.replace import clone_replace

        model = self.model
        shared = [model[n] for n in self._data_names()]
        symbolic = [v.type(name=v.name) for v in shared]
        swapped = clone_replace(outputs, replace=dict(zip(shared, symbolic, strict=True)))
        return get_jaxified_graph(inputs=model.value_vars + symbolic, outputs=swapped)

    def _compile(self) -> tuple[Any, Any, list[str], list[tuple[str, ...]]]:
        if self._compiled is not None:
            return self._compiled
        sample_kwargs(self.sampler)  # sets the XLA/JAX cache environment before jax is imported
        import jax
        from numpyro.infer.hmc import hmc
        from pymc.util import get_default_varnames

        t0 = time.perf_counter()
        model = self.model
        logp_fn = self._jaxified([model.logp()])
        outs = list(get_default_varnames(model.unobserved_value_vars, include_transformed=False))
        out_names = [v.name for v in outs]
        out_dims = [tuple(model.named_vars_to_dims.get(n, ())) for n in out_names]
        post_fn = self._jaxified(outs)

        def potential_gen(*data: Any) -> Any:
            return lambda z: -logp_fn(*z, *data)[0]

        init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
        s = self.sampler

        def one_chain(key: Any, z0: Any, data: tuple[Any, ...]) -> Any:
            state = init_kernel(z0, s.tune, target_accept_prob=s.target_accept, model_args=data, rng_key=key)

            def warm(st: Any, _: Any) -> Any:
                return sample_kernel(st, model_args=data), None

            def draw(st: Any, _: Any) -> Any:
                st = sample_kernel(st, model_args=data)
                return st, (st.z, st.diverging, st.num_steps, st.accept_prob)

            state, _ = jax.lax.scan(warm, state, None, length=s.tune)
            _, out = jax.lax.scan(draw, state, None, length=s.draws)
            return out

        if jax.local_device_count() >= s.chains:
            run = jax.pmap(one_chain, in_axes=(0, 0, None))
        else:  # jax was imported before the host-device flag was set: vectorise the chains instead
            log.warning("only %d JAX devices for %d chains: chains run vectorised", jax.local_device_count(), s.chains)
            run = jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None)))
        post = jax.jit(jax.vmap(jax.vmap(lambda z, data: post_fn(*z, *data), in_axes=(0, None)), in_axes=(0, None)))
        # many data sets in one program: the chains as above, and inside each chain the data sets vectorised
        # (keys and starts per chain and data set, data per data set)
        if jax.local_device_count() >= s.chains:
            run_many = jax.pmap(jax.vmap(one_chain, in_axes=(0, 0, 0)), in_axes=(0, 0, None))
        else:
            run_many = jax.jit(jax.vmap(jax.vmap(one_chain, in_axes=(0, 0, 0)), in_axes=(0, 0, None)))
        self._run_many = run_many
        self._compiled = (run, post, out_names, out_dims)
        self.compile_seconds = time.perf_counter() - t0
        return self._compiled

    def _initial_points(self, rng: np.random.Generator, arrivals: np.ndarray) -> list[np.ndarray]:
        """Start points in unconstrained space, one per chain, stacked per value variable.

        The innovation forms use PyMC's initial point jittered by U(-1, 1) (as ``pm.sample``
        does); ``log_mu`` uses :func:`~nkdefections.model.starts.start_points` (the same
        dispersed starts as :meth:`DefectionModel.fit`, centred on this refit's counts).
        """
        chains = self.sampler.chains
        names = [v.name for v in self.model.value_vars]
        if self.config.parameterization == "log_mu":
            starts = start_points(self.model, arrivals, chains, rng)
            return [np.stack([s[n] for s in starts]) for n in names]
        ip = self.model.initial_point()
        values = [np.asarray(ip[n], dtype=float) for n in names]
        return [np.stack([v + rng.uniform(-1, 1, size=v.shape) for _ in range(chains)]) for v in values]

    # -- fitting ----------------------------------------------------------------------
    def fit(
        self, inputs: Mapping[str, np.ndarray] | None = None, *, seed: int | None = None, gate: GateConfig | None = None
    ) -> RefitResult:
        """Sample the posterior for ``inputs`` (default: the full window).

        The gate is evaluated and reported, never raised: a backtest or SBC run must
        record a failing refit, not stop at it.  With ``fallback`` a ``log_mu`` fit that
        misses the gate is refitted down :data:`FALLBACK_LADDER` (same inputs and seed); the
        first rung that passes is kept, else the first fit.
        ``seconds`` counts every attempt.
        """
        return self._climb(self._fit_once(inputs, seed=seed, gate=gate), seed=seed, gate=gate)

    def fit_many(
        self,
        inputs: Sequence[Mapping[str, np.ndarray]],
        *,
        seeds: Sequence[int],
        gate: GateConfig | None = None,
        batch_size: int = 1,
    ) -> list[RefitResult]:
        """Refit many independent data sets, ``batch_size`` at a time in one compiled program.

        Each data set's first attempt starts from the same points and random keys as
        :meth:`fit` with its seed would, with the data sets vectorised inside every chain
        (``jax.vmap``).  A vectorised NUTS step runs until the deepest tree of the batch is
        done, so a batch pays for its slowest member at every draw.  On the 2-core CPU this
        was measured on, that cancels the gain: 20 SBC refits took 40.0 s one at a time,
        43.8 s in batches of 5 and 44.3 s in one batch of 20 (mean leapfrog steps per draw
        24.7; the batches' per-draw maximum 39.5 and 60.4; ``benchmarks/batch.py``), hence
        the default ``batch_size=1``.  Measure before batching elsewhere.  The draws are the
        same distribution as :meth:`fit`'s (on that machine bit for bit the same; not
        guaranteed, as XLA compiles a batched program differently).  A first attempt that
        misses its gate climbs :data:`FALLBACK_LADDER` one data set at a time, as in
        :meth:`fit`.  Each result's ``seconds`` is its share of its batch's wall time plus
        its own ladder attempts.

        Parameters
        ----------
        inputs
            One mapping per data set, as built by :meth:`inputs`.
        seeds
            One seed per data set.
        gate
            Gate recorded for every refit (never raised).
        batch_size
            Data sets per compiled call; a batch's compile is cached per size, and a
            larger batch waits longer for its deepest tree.
        """
        if len(inputs) != len(seeds):
            raise ConfigError(f"fit_many: {len(inputs)} inputs but {len(seeds)} seeds; give one seed per data set.")
        size = whole_number(batch_size, "batch_size", "a count of data sets")
        if size < 1:
            raise ConfigError(f"batch_size: {size} must be >= 1 (data sets per compiled call).")
        if size == 1:  # one at a time: the program fit() already compiled
            return [self.fit(x, seed=int(seed), gate=gate) for x, seed in zip(inputs, seeds, strict=True)]
        results: list[RefitResult] = []
        for start in range(0, len(inputs), size):
            chunk = list(range(start, min(start + size, len(inputs))))
            firsts = self._fit_batch([inputs[i] for i in chunk], [int(seeds[i]) for i in chunk], gate=gate)
            results.extend(self._climb(f, seed=int(seeds[i]), gate=gate) for i, f in zip(chunk, firsts, strict=True))
        return results

    def _climb(self, first: RefitResult, *, seed: int | None, gate: GateConfig | None) -> RefitResult:
        """``first`` if it passed its gate (or there is no fallback), else the ladder's first passing rung."""
        if not self.fallback or first.convergence.passed:
            return first
        seconds = first.seconds
        for form, gdp_block, target_accept in FALLBACK_LADDER:
            alt = self._rung(form, gdp_block, target_accept)
            x = {n: first.inputs[n] for n in alt._data_names()}
            fit = alt._fit_once(x, seed=seed, gate=gate)
            seconds += fit.seconds
            passed = fit.convergence.passed
            ta = alt.sampler.target_accept
            log.info("refit missed its gate; %s, GDP %s, target_accept %s: %s", form, gdp_block, ta, passed)
            if passed:
                return dataclasses_replace(fit, seconds=seconds, inputs=first.inputs, first_attempt=first.convergence)
        return dataclasses_replace(first, seconds=seconds)

    def _rung(self, form: str, gdp_block: str, target_accept: float | None) -> Refitter:
        """The refitter of one fallback rung (compiled on first use, then kept)."""
        key = (form, gdp_block, target_accept)
        if key not in self._fallback_refitters:
            config = dataclasses_replace(self.config, parameterization=form, gdp_block=gdp_block)
            sampler = self.sampler
            if target_accept is not None:
                sampler = dataclasses_replace(sampler, target_accept=max(target_accept, sampler.target_accept))
            self._fallback_refitters[key] = Refitter(config, self.data, sampler, fallback=False)
        return self._fallback_refitters[key]

    def _fit_once(
        self, inputs: Mapping[str, np.ndarray] | None = None, *, seed: int | None = None, gate: GateConfig | None = None
    ) -> RefitResult:
        run, post, out_names, out_dims = self._compile()
        x, seed, keys, z0, data = self._prepare(inputs, seed)
        t0 = time.perf_counter()
        z, diverging, num_steps, accept = run(keys, z0, data)
        values = [np.asarray(v) for v in post(z, data)]
        seconds = time.perf_counter() - t0
        return self._result(x, values, diverging, num_steps, accept, seconds, gate)

    def _prepare(
        self, inputs: Mapping[str, np.ndarray] | None, seed: int | None
    ) -> tuple[dict[str, np.ndarray], int, Any, list[np.ndarray], tuple[np.ndarray, ...]]:
        """Checked inputs, the seed, the chains' random keys and start points, and the data arguments."""
        import jax

        x = dict(self.default_inputs() if inputs is None else inputs)
        missing = set(self._data_names()) - set(x)
        if missing:
            raise ConfigError(f"refit inputs: missing {sorted(missing)}; build them with Refitter.inputs().")
        seed = self.sampler.seed if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        z0 = self._initial_points(rng, np.asarray(x["arrivals_data"], dtype=float))
        keys = jax.random.split(jax.random.PRNGKey(seed), self.sampler.chains)
        data = tuple(np.asarray(x[n], dtype=self.model[n].dtype) for n in self._data_names())
        return x, seed, keys, z0, data

    def _fit_batch(
        self, inputs: Sequence[Mapping[str, np.ndarray]], seeds: Sequence[int], *, gate: GateConfig | None
    ) -> list[RefitResult]:
        """First attempts of several data sets in one call of the batched program."""
        import jax.numpy as jnp

        _, post, _, _ = self._compile()
        prepared = [self._prepare(x, seed) for x, seed in zip(inputs, seeds, strict=True)]
        # stack: keys and starts as (chain, data set, ...), data as (data set, ...)
        keys = jnp.stack([p[2] for p in prepared], axis=1)
        z0 = [np.stack([p[3][k] for p in prepared], axis=1) for k in range(len(prepared[0][3]))]
        data = tuple(np.stack([p[4][k] for p in prepared]) for k in range(len(prepared[0][4])))
        t0 = time.perf_counter()
        z, diverging, num_steps, accept = self._run_many(keys, z0, data)
        z = [np.asarray(v) for v in z]
        diverging, num_steps, accept = np.asarray(diverging), np.asarray(num_steps), np.asarray(accept)
        out = []
        for b, p in enumerate(prepared):
            values = [np.asarray(v) for v in post([v[:, b] for v in z], p[4])]
            out.append((p[0], values, diverging[:, b], num_steps[:, b], accept[:, b]))
        share = (time.perf_counter() - t0) / len(prepared)
        return [self._result(x, v, dv, ns, ac, share, gate) for x, v, dv, ns, ac in out]

    def _result(
        self,
        x: dict[str, np.ndarray],
        values: list[np.ndarray],
        diverging: Any,
        num_steps: Any,
        accept: Any,
        seconds: float,
        gate: GateConfig | None,
    ) -> RefitResult:
        _, _, out_names, out_dims = self._compile()
        idata = self._to_datatree(
            values, out_names, out_dims, np.asarray(diverging), np.asarray(num_steps), np.asarray(accept)
        )
        report = check_convergence(idata, self.free_parameters, gate or GateConfig(enforce=False))
        return RefitResult(
            idata=idata,
            convergence=report,
            seconds=seconds,
            inputs=x,
            parameterization=self.config.parameterization,
            gdp_form=self.config.gdp_form,
            target_accept=self.sampler.target_accept,
        )

    def _to_datatree(
        self,
        values: list[np.ndarray],
        names: list[str],
        dims: list[tuple[str, ...]],
        diverging: np.ndarray,
        num_steps: np.ndarray,
        accept: np.ndarray,
    ) -> xr.DataTree:
        coords = {k: np.asarray(v) for k, v in self.model.coords.items() if v is not None}
        post = {}
        for v, n, dd in zip(values, names, dims, strict=True):
            extra = list(dd) if dd else [f"{n}_dim_{i}" for i in range(v.ndim - 2)]
            post[n] = ([C.CHAIN, C.DRAW, *extra], v)
        chains, draws = diverging.shape
        ds = xr.Dataset(post, coords={C.CHAIN: np.arange(chains), C.DRAW: np.arange(draws)})
        ds = ds.assign_coords({k: v for k, v in coords.items() if k in ds.dims})
        stats = xr.Dataset(
            {
                "diverging": ((C.CHAIN, C.DRAW), diverging.astype(bool)),
                "n_steps": ((C.CHAIN, C.DRAW), num_steps),
                "acceptance_rate": ((C.CHAIN, C.DRAW), accept),
            }
        )
        return xr.DataTree.from_dict({"posterior": ds, "sample_stats": stats})
