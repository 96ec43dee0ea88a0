"""Shared fixtures.

Tiers (see README "Tests"): pure tests need no fixture here; fake-posterior tests use
``fake_idata``; everything that needs a real posterior uses the one small real fit
``small_fit``, sampled once per test session and cached in ``fit_cache_dir`` so the
CLI test reuses it instead of sampling again.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

# Keep compiled code inside a per-session cache so tests never depend on (or pollute)
# the user's caches; set before PyMC/JAX are imported.
_SESSION_CACHE = Path(os.environ.setdefault("NKDEFECTIONS_TEST_CACHE", "/tmp/nkdefections-test-cache"))
os.environ.setdefault("NKDEFECTIONS_CACHE_DIR", str(_SESSION_CACHE))

REPO = Path(__file__).resolve().parents[1]

#: The real fit shared by the session: the production size, 4 chains x 1000 draws. With the log_mu
#: parameterisation a draw costs ~15 leapfrog steps, so it takes a few seconds once compiled; at
#: 4 x 500 draws the max R-hat over 20 seeds reached 1.015, too close to a 1.02 gate.
SMALL_SAMPLER = dict(
    name="nutpie", draws=1000, tune=1000, chains=4, cores=2, target_accept=0.95, seed=1234, progressbar=False
)
#: Its gate, with margin: over 20 seeds (tests/test_model.py::test_shared_fit_passes_its_gate_across_seeds,
#: slow) this fit of the default (border effect <= 0, log1p sanctions) gave max R-hat 1.0064, min bulk/tail
#: ESS 1426/954 and no divergence.
SMALL_GATE = dict(rhat_max=1.02, ess_bulk_min=400, ess_tail_min=400, max_divergences=0, enforce=True)


@pytest.fixture(scope="session")
def fit_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fitcache")


@pytest.fixture(scope="session")
def small_fit(fit_cache_dir: Path):
    """The one real fit of the default model, shared by the whole test run."""
    from nkdefections import DefectionModel, GateConfig, SamplerConfig

    model = DefectionModel()
    model.fit(SamplerConfig(**SMALL_SAMPLER), GateConfig(**SMALL_GATE), cache_dir=fit_cache_dir)
    return model


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


@pytest.fixture
def fake_idata():
    return make_fake_idata
