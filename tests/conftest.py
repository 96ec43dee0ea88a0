"""Shared fixtures, and the ``pure`` tier's rule.

Tiers (see docs/development.md): ``pure`` tests (marked, ``make test-pure``) need no fixture here,
sample nothing and compile nothing; fake-posterior tests use ``fake_idata``; everything that needs
a real posterior uses the one small real fit ``small_fit``, sampled once per test session and
cached in ``fit_cache_dir`` so the CLI test reuses it instead of sampling again.  The settings of
that fit and the fakes live in tests/helpers/, which test files import as ``tests.helpers...``.
"""

from __future__ import annotations

import os
from pathlib import Path

# Keep compiled code inside a per-session cache so tests never depend on (or pollute)
# the user's caches; set before PyMC/JAX are imported.
_SESSION_CACHE = Path(os.environ.setdefault("NKDEFECTIONS_TEST_CACHE", "/tmp/nkdefections-test-cache"))
os.environ.setdefault("NKDEFECTIONS_CACHE_DIR", str(_SESSION_CACHE))

import pytest  # noqa: E402

from tests.helpers import tiers  # noqa: E402
from tests.helpers.fakes import make_fake_idata  # noqa: E402
from tests.helpers.fit import SMALL_GATE, SMALL_SAMPLER  # noqa: E402


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


@pytest.fixture
def fake_idata():
    return make_fake_idata


# ----------------------------------------------------------------------------
# The pure tier (tests/helpers/tiers.py): checked at collection and while each pure test runs
# ----------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    tiers.GUARD.install()


@pytest.hookimpl(tryfirst=True)  # before -m deselects: a slow test marked pure is caught by every run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    errors = [line for item in items for line in tiers.item_errors(item)]
    if errors:
        raise pytest.UsageError("the pure tier's rule (tests/helpers/tiers.py):\n  " + "\n  ".join(errors))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with tiers.GUARD.watching(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with tiers.GUARD.watching(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    with tiers.GUARD.watching(item):
        return (yield)
