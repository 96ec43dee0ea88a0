"""The convergence gate on fake posteriors (no sampling)."""

from __future__ import annotations

import numpy as np
import pytest

from nkdefections.config import GateConfig
from nkdefections.model.diagnostics import check_convergence


def test_gate_passes_well_mixed_chains(fake_idata):
    rng = np.random.default_rng(6)
    idata = fake_idata({"a": rng.standard_normal((4, 1000)), "b": rng.standard_normal((4, 1000, 3))})
    rep = check_convergence(idata, ["a", "b"], GateConfig())
    assert rep.passed, rep.message()
    assert set(rep.table["parameter"]) == {"a", "b[0]", "b[1]", "b[2]"}


def test_gate_fails_on_rhat_ess_and_divergences(fake_idata):
    rng = np.random.default_rng(7)
    stuck = rng.standard_normal((4, 1000)) + np.array([0, 0, 0, 3.0])[:, None]
    sticky = np.cumsum(rng.standard_normal((4, 1000)) * 0.05, axis=1)
    div = np.zeros((4, 1000), dtype=bool)
    div[0, :3] = True
    idata = fake_idata({"stuck": stuck, "sticky": sticky}, diverging=div)
    rep = check_convergence(idata, ["stuck", "sticky"], GateConfig())
    msg = rep.message()
    assert not rep.passed
    assert "R-hat > 1.01" in msg and "stuck" in msg
    assert "ess bulk < 400" in msg and "sticky" in msg
    assert "3 divergent transition(s)" in msg
    assert "target_accept" in msg  # says what to try
    import re

    from nkdefections.config import PARAMETERIZATIONS

    suggested = [v.strip() for m in re.findall(r"model\.parameterization=([\w /]+)", msg) for v in m.split("/")]
    assert suggested and set(suggested) <= set(PARAMETERIZATIONS)  # only forms the config accepts
    relaxed = check_convergence(
        idata, ["stuck", "sticky"], GateConfig(rhat_max=10, ess_bulk_min=0, ess_tail_min=0, max_divergences=5)
    )
    assert relaxed.passed


def test_gate_treats_nan_diagnostics_as_failure(fake_idata):
    const = np.ones((4, 500))
    rep = check_convergence(fake_idata({"c": const}), ["c"], GateConfig())
    assert not rep.passed


@pytest.mark.pure
@pytest.mark.parametrize("bad", [{"rhat_max": 0.9}, {"ess_bulk_min": -1}, {"max_divergences": -1}])
def test_gate_config_validation(bad):
    from nkdefections.errors import ConfigError

    with pytest.raises(ConfigError, match="gate."):
        GateConfig(**bad)
