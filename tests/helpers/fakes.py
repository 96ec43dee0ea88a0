"""Made-up posteriors and forecasts for the tests that need one without sampling."""

from __future__ import annotations

import numpy as np
import xarray as xr

from nkdefections import constants as C


def make_fake_idata(
    params: dict[str, np.ndarray], *, diverging: np.ndarray | None = None, coords: dict | None = None
) -> xr.DataTree:
    """A DataTree with a posterior of the given (chain, draw, ...) arrays, no sampling."""
    post = {}
    for name, arr in params.items():
        dims = ["chain", "draw"] + [f"{name}_dim_{i}" for i in range(arr.ndim - 2)]
        post[name] = (dims, arr)
    first = next(iter(params.values()))
    chains, draws = first.shape[:2]
    div = np.zeros((chains, draws), dtype=bool) if diverging is None else diverging
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(post, coords=coords),
            "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), div)}),
        }
    )


#: The forecast years of :func:`fake_forecast`.
YEARS = np.arange(2017, 2021)


def fake_forecast(seed: int = 0) -> tuple[xr.Dataset, np.ndarray]:
    """Three scenarios on a log-linear model with known beta and a shared latent path."""
    rng = np.random.default_rng(seed)
    chains, draws, H = 2, 500, len(YEARS)
    S = chains * draws
    beta = np.column_stack([rng.normal(-0.6, 0.1, S), np.zeros(S), rng.normal(0.05, 0.02, S)])
    X = np.zeros((S, 3, H, 3))
    X[:, :, :, 0] = 1.25
    X[:, :, :, 2] = 8.0
    X[:, 1, :, 0] = 2.25  # "crack": border +1
    X[:, 2, :, 2] = 11.0  # "tight": sanctions +3
    z = rng.normal(0, 0.2, (S, 1, H))
    mu = np.exp(7.5 + np.einsum("snhk,sk->snh", X, beta) + z)
    u = rng.uniform(size=(S, 1, H))
    from scipy import stats

    y = stats.poisson.ppf(np.broadcast_to(u, mu.shape), mu)
    dims = (C.CHAIN, C.DRAW, C.SCENARIO, C.YEAR_FUTURE)
    ext = np.zeros((3, H, 3), dtype=bool)
    ext[1, :, 0] = True
    fc = xr.Dataset(
        {
            C.OBSERVED: (dims, y.reshape(chains, draws, 3, H)),
            C.MU: (dims, mu.reshape(chains, draws, 3, H)),
            C.DRIVER_VALUES: ((*dims, C.DRIVER), X.reshape(chains, draws, 3, H, 3)),
            "extrapolated": ((C.SCENARIO, C.YEAR_FUTURE, C.DRIVER), ext),
        },
        coords={
            C.SCENARIO: ["status_quo", "crack", "tight"],
            C.YEAR_FUTURE: YEARS,
            C.DRIVER: list(C.DRIVERS),
        },
    )
    return fc, beta
