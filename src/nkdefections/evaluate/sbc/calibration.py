"""Simulation-based calibration: refit every prior simulation and rank its truth among the draws."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from nkdefections import constants as C
from nkdefections.config import GateConfig, ModelConfig, SamplerConfig
from nkdefections.evaluate.sbc.ranks import (
    SAMPLE,
    SBC_GATE,
    SBC_SAMPLER,
    SEED,
    SIMULATION,
    THIN_TO,
    sbc_rank,
    thin_indices,
)
from nkdefections.evaluate.sbc.simulate import quantities, rank_summary, sbc_inputs, simulate_prior
from nkdefections.evaluate.workers import default_workers, run_pieces, threads_per_worker

if TYPE_CHECKING:  # importing the refit engine pulls in PyMC: only the drivers need it
    from nkdefections.model.refit import Refitter

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------
# The SBC driver
# ----------------------------------------------------------------------------


def derive_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed that depends only on ``seed`` and ``keys`` (not on how many simulations run)."""
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0])


def fit_row(fit: Any) -> dict[str, Any]:
    row = fit.convergence.summary_row()
    return {
        "seconds": round(float(fit.seconds), 3),
        "passed": bool(row["passed"]),
        "divergences": int(row["divergences"]),
        "max_rhat": float(row["max_rhat"]),
        "min_ess_bulk": float(row["min_ess_bulk"]),
        "min_ess_tail": float(row["min_ess_tail"]),
        "failures": " | ".join(fit.convergence.failures),
        "parameterization": fit.parameterization,
        "target_accept": fit.target_accept,
        # sampler runs behind the row: 1, as the engine never retries (a gate miss is recorded as it is)
        "attempts": int(fit.attempts),
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
        the same seed gives the same ranks on the same machine (a cold compile runs in a child
        process, so every process loads the same compiled code: ``model.program_cache``).
    refitter
        A :class:`~nkdefections.model.refit.Refitter` to reuse (its compiled code is reused across
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
    from nkdefections.model.refit import Refitter

    t_start = time.perf_counter()
    if refitter is None:
        refitter = Refitter(config, data, sampler or SBC_SAMPLER)
    config = refitter.config
    s = refitter.sampler
    thin_indices(s.chains * s.draws, thin_to)  # validates before anything runs
    sims = simulate_prior(n_sims, seed, config=config, data=refitter.data)
    free = list(refitter.ranked_parameters)
    workers = min(default_workers(), n_sims)
    pieces = [(i, sims.isel({SIMULATION: i}), seed, thin_to, gate, make_inputs) for i in range(n_sims)]
    if workers > 1:  # each worker builds (and compiles) the refitter once, sampling on its share of the cores
        worker_sampler = dataclasses.replace(s, cores=threads_per_worker(s.cores, workers))
        fn: Callable[..., Any] = functools.partial(sbc_simulation_in_worker, (config, refitter.data, worker_sampler))
    else:  # in this process, on the caller's refitter
        fn = functools.partial(sbc_simulation, refitter)
    outcomes = run_pieces(
        fn, pieces, workers=workers, progress=(lambda i, out: progress(i, out[2])) if progress is not None else None
    )
    compile_seconds = max(out[3] for out in outcomes)
    rank_rows = [out[0] for out in outcomes]
    post_rows = [row for out in outcomes for row in out[1]]
    fit_rows = [out[2] for out in outcomes]
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
        "compile_seconds": compile_seconds,
        "workers": workers,
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


def sbc_simulation(
    refitter: Refitter,
    i: int,
    sim: xr.Dataset,
    seed: int,
    thin_to: int,
    gate: GateConfig,
    make_inputs: Callable[[Refitter, xr.Dataset], dict[str, np.ndarray]] | None,
) -> tuple[dict[str, int], list[dict[str, Any]], dict[str, Any], float]:
    """Refit simulation ``i`` and rank its truth: (rank row, posterior rows, fit row, compile seconds)."""
    config, d = refitter.config, refitter.design
    free = list(refitter.ranked_parameters)
    y = sim[C.ARRIVALS].values
    g = sim[C.GDP_GROWTH].values
    fit_seed = derive_seed(seed, i, 1)
    fit = refitter.fit((make_inputs or sbc_inputs)(refitter, sim), seed=fit_seed, gate=gate)
    kw = dict(y=y, gdp=g, gdp_sd=d.gdp_sd_all, config=config)
    truth = quantities(sim.expand_dims(SAMPLE), free, sample_dim=SAMPLE, **kw)
    full = fit.posterior.stack({SAMPLE: (C.CHAIN, C.DRAW)}).drop_vars([SAMPLE, C.CHAIN, C.DRAW])
    post_all = quantities(full, free, sample_dim=SAMPLE, **kw)
    idx = thin_indices(full.sizes[SAMPLE], thin_to)
    rng = np.random.default_rng(derive_seed(seed, i, 2))
    ranks = {q: sbc_rank(float(truth[q][0]), post_all[q][idx], rng) for q in truth}
    post_rows = [
        {
            SIMULATION: i,
            "quantity": q,
            "truth": float(truth[q][0]),
            "post_mean": float(post_all[q].mean()),
            "post_sd": float(post_all[q].std(ddof=1)),
        }
        for q in truth
    ]
    row = {SIMULATION: i, "fit_seed": fit_seed, **fit_row(fit)}
    return ranks, post_rows, row, float(refitter.compile_seconds or 0.0)


def sbc_simulation_in_worker(spec: tuple[ModelConfig, xr.Dataset, SamplerConfig], *piece: Any) -> Any:
    """:func:`sbc_simulation` in a worker process, on that process's one refitter for ``spec``."""
    from nkdefections.model.refit import Refitter

    return sbc_simulation(Refitter.shared(*spec), *piece)
