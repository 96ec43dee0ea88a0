"""Dispersed start points of a ``log_mu`` fit (used by :class:`DefectionModel` and the refit engine)."""

from __future__ import annotations

import numpy as np
import pymc as pm

from nkdefections import constants as C

#: Half-widths of the uniform jitter of a ``log_mu`` fit's start per free variable, in its
#: unconstrained space: about one posterior s.d. each (PyMC's default, U(-1, 1) everywhere, puts
#: the level some ten posterior s.d. off, where a chain can stall with a collapsed step size).
START_JITTER: dict[str, float] = {
    C.LEVEL: 0.1,
    C.BETA: 0.05,
    C.LOG_MU_OFFSET: 1.0,
    C.GDP_PINNED_OFFSET: 1.0,
    C.GDP_INNOVATION: 1.0,
    C.LATENT_INNOVATION: 1.0,
    f"{C.LATENT_INNOVATION}_init": 1.0,
    f"{C.LATENT_INNOVATION}_rest": 1.0,
}
START_JITTER_DEFAULT = 0.5


def start_points(model: pm.Model, y: np.ndarray, chains: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """Dispersed start points for a ``log_mu`` fit, one per chain, in unconstrained space.

    Keys are value-variable names (``rho_logodds__``, ...).  The centre is the model's initial
    point with the level at the mean log count (so the latent residuals start near zero); each
    variable is jittered by ``U(-s, s)`` with ``s`` from :data:`START_JITTER`.
    """
    centre = model.initial_point()
    level = float(np.mean(np.log(np.asarray(y, dtype=float) + 0.5)))
    out = []
    for _ in range(chains):
        point = {}
        for v in model.value_vars:
            name = model.values_to_rvs[v].name
            base = np.asarray(centre[v.name], dtype=float)
            if name == C.LEVEL:
                base = np.full_like(base, level)
            s = START_JITTER.get(name, START_JITTER_DEFAULT)
            point[v.name] = base + rng.uniform(-s, s, size=base.shape)
        out.append(point)
    return out


def constrained(model: pm.Model, points: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Unconstrained points (value-variable names) as constrained values keyed by variable name."""
    import pytensor

    outs = model.replace_rvs_by_values(list(model.free_RVs))
    fn = pytensor.function(model.value_vars, outs, on_unused_input="ignore")
    names = [rv.name for rv in model.free_RVs]
    return [
        {n: np.asarray(x) for n, x in zip(names, fn(*[pt_[v.name] for v in model.value_vars]), strict=True)}
        for pt_ in points
    ]
