"""The disk cache of nutpie's numba callbacks (nkdefections.model.program_cache).

Pure tests of the key and of the child-process step; the cross-process reproducibility claim
(a cold and a warm process draw the same posterior) is a ``slow`` test, since a cold compile
takes about a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from nkdefections.model import program_cache as pc
from tests.helpers import REPO


def _closure(value):
    def f(x):
        return x + value

    return f


@pytest.mark.pure
def test_description_names_keys_by_order_not_by_value():
    a = _closure("0123456789abcdef0123456789abcdef")
    b = _closure("fedcba9876543210fedcba9876543210")
    # per-process uuid4 hex keys are replaced by their order of appearance, so two processes agree
    a.__module__ = b.__module__ = pc._NUTPIE_MODULE
    assert pc.description(a, "f8(f8)") == pc.description(b, "f8(f8)")
    c = _closure(np.arange(3.0))
    d = _closure(np.arange(3.0) + 1)
    c.__module__ = d.__module__ = pc._NUTPIE_MODULE
    assert pc.description(c, "f8(f8)") != pc.description(d, "f8(f8)")  # the values of shared arrays count


@pytest.mark.pure
def test_a_closure_it_cannot_describe_is_not_cached():
    f = _closure(object())
    f.__module__ = pc._NUTPIE_MODULE
    assert pc.description(f, "f8(f8)") is None and pc.callback_key(f, "f8(f8)") is None


def test_a_failed_child_leaves_no_marker(tmp_path, caplog):
    marker = tmp_path / "program.done"
    pc.fill_in_child(marker, "nkdefections.no_such_module.f")
    assert not marker.exists()
    assert "compiling in a child process failed" in caplog.text
    pc.fill_in_child(marker, "os.getcwd")  # a target that succeeds writes the marker
    assert marker.exists()


_FIT = """
import sys, numpy as np
from nkdefections import DefectionModel, GateConfig, SamplerConfig
m = DefectionModel()
m.fit(SamplerConfig(draws=200, tune=300, chains=2, cores=2, seed=5, progressbar=False), GateConfig(enforce=False))
np.save(sys.argv[1], m.idata.posterior["level"].values)
"""


@pytest.mark.slow
def test_a_cold_and_a_warm_process_draw_the_same_posterior(tmp_path):
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "NKDEFECTIONS_CACHE_DIR": str(cache),
        "PYTENSOR_FLAGS": f"base_compiledir={cache / 'pytensor'}",
        "PYTHONPATH": str(REPO / "src"),
    }
    for name in ("cold", "warm"):
        subprocess.run([sys.executable, "-c", _FIT, str(tmp_path / f"{name}.npy")], env=env, check=True, cwd=tmp_path)
    assert list((cache / "nutpie").glob("program-*.done"))
    np.testing.assert_array_equal(np.load(tmp_path / "cold.npy"), np.load(tmp_path / "warm.npy"))
