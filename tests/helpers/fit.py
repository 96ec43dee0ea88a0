"""The settings of the one real fit the test session shares (the ``small_fit`` fixture of tests/conftest.py)."""

from __future__ import annotations

#: The real fit shared by the session: the production size, 4 chains x 1000 draws. With the log_mu
#: parameterisation a draw costs ~15 leapfrog steps, so it takes a few seconds once compiled; at
#: 4 x 500 draws the max R-hat over 20 seeds reached 1.015, too close to a 1.02 gate.
SMALL_SAMPLER = dict(
    name="nutpie", draws=1000, tune=1000, chains=4, cores=2, target_accept=0.95, seed=1234, progressbar=False
)
#: Its gate, with margin: over 20 seeds (tests/model/test_model.py::test_shared_fit_passes_its_gate_across_seeds,
#: slow) this fit of the default (border effect <= 0, log1p sanctions) gave max R-hat 1.0064, min bulk/tail
#: ESS 1426/954 and no divergence.
SMALL_GATE = dict(rhat_max=1.02, ess_bulk_min=400, ess_tail_min=400, max_divergences=0, enforce=True)

#: The same settings as Hydra overrides, so a command-line run reuses the cached fit.
SMALL_OVERRIDES = [f"sampler.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in SMALL_SAMPLER.items()] + [
    f"gate.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in SMALL_GATE.items()
]
