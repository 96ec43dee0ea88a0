"""The ``pure`` tier stays pure: its rule (tests/helpers/tiers.py) catches a mismarked test, and is wired in.

All pure but the two that import PyTensor and numba (a few seconds the pure tier need not spend).
"""

from __future__ import annotations

import re
import sys
import tomllib
from types import SimpleNamespace

import pytest

from tests.helpers import REPO, tiers


@pytest.mark.pure
@pytest.mark.parametrize(
    "markers, fixtures, expect",
    [
        ({"pure"}, {"tmp_path", "monkeypatch"}, []),
        ({"fit"}, {"small_fit"}, []),  # the rule is about pure tests only
        ({"pure"}, {"small_fit", "fit_cache_dir"}, ["requests fit_cache_dir, small_fit"]),
        ({"pure"}, {"fake_idata"}, ["requests fake_idata"]),
        ({"pure", "slow"}, set(), ["marked pure and slow"]),
        ({"pure", "fit", "parametrize"}, {"small_fit"}, ["marked pure and fit", "requests small_fit"]),
    ],
)
def test_the_collection_rule_names_what_is_wrong(markers, fixtures, expect):
    errors = tiers.collection_errors("tests/x/test_y.py::test_z", markers, fixtures)
    assert len(errors) == len(expect)
    for line, part in zip(errors, expect, strict=True):
        assert line.startswith("tests/x/test_y.py::test_z: ") and part in line


def _fake_item(markers: list[str], fixtures: list[str]) -> SimpleNamespace:
    marks = [getattr(pytest.mark, name).mark for name in markers]
    return SimpleNamespace(
        nodeid="tests/x/test_y.py::test_z",
        fixturenames=fixtures,
        iter_markers=lambda: iter(marks),
        get_closest_marker=lambda name: next((m for m in marks if m.name == name), None),
    )


@pytest.mark.pure
def test_conftest_stops_the_collection_of_a_pure_test_that_asks_for_the_fit(request):
    conftest = next(
        p
        for p in request.config.pluginmanager.get_plugins()
        if getattr(p, "__file__", None) == str(REPO / "tests" / "conftest.py")
    )
    conftest.pytest_collection_modifyitems(request.config, [_fake_item(["fit"], ["small_fit"])])  # fine
    with pytest.raises(pytest.UsageError, match=r"test_z: marked pure but requests small_fit"):
        conftest.pytest_collection_modifyitems(request.config, [_fake_item(["pure"], ["small_fit"])])


@pytest.mark.pure
def test_the_session_guard_wraps_pytensor_and_numba_now_or_on_import():
    assert tiers.GUARD.installed
    for name, (cls, method, _) in tiers.CompileGuard.ENTRY_POINTS.items():
        if name in sys.modules:
            assert hasattr(getattr(getattr(sys.modules[name], cls), method), "__wrapped__"), name
        else:
            assert any(isinstance(f, tiers.AfterImport) and name in f.patches for f in sys.meta_path), name


@pytest.mark.pure
def test_a_compile_inside_a_pure_test_fails_it(tmp_path, monkeypatch, request):
    """A stand-in compiler imported after the guard: allowed outside a pure test, a failure inside one."""
    (tmp_path / "stand_in_compiler.py").write_text("class Maker:\n    def __init__(self):\n        self.built = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    guard = tiers.CompileGuard()
    guard.ENTRY_POINTS = {"stand_in_compiler": ("Maker", "__init__", "built a program")}
    guard.install()
    try:
        import stand_in_compiler

        assert stand_in_compiler.Maker().built
        with guard.watching(request.node):  # this test is marked pure
            with pytest.raises(pytest.fail.Exception, match="fails_it is marked pure but built a program"):
                stand_in_compiler.Maker()
        assert stand_in_compiler.Maker().built  # and allowed again after it
    finally:
        sys.modules.pop("stand_in_compiler", None)
        stale = [f for f in sys.meta_path if isinstance(f, tiers.AfterImport) and "stand_in_compiler" in f.patches]
        for finder in stale:  # only when the import failed: the finder removes itself once it is used
            sys.meta_path.remove(finder)


@pytest.mark.pure
def test_make_test_pure_runs_the_marked_tests_and_the_marker_is_registered():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^test-pure:.*\n\t(.+)$", makefile, flags=re.M)
    assert recipe and "-m pure" in recipe.group(1)
    ini = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert any(m.startswith("pure:") for m in ini["markers"])


def test_a_real_pytensor_function_fails_a_pure_test_before_it_is_compiled():
    import pytensor
    import pytensor.tensor as pt

    x = pt.dscalar("x")
    with tiers.GUARD.watching(_fake_item(["pure"], [])):
        with pytest.raises(pytest.fail.Exception, match="test_z is marked pure but built a PyTensor function"):
            pytensor.function([x], x + 1)


def test_a_real_numba_function_fails_a_pure_test_before_it_is_compiled():
    import numba

    add_one = numba.njit(lambda v: v + 1)
    with tiers.GUARD.watching(_fake_item(["pure"], [])):
        with pytest.raises(pytest.fail.Exception, match="test_z is marked pure but compiled a numba function"):
            add_one(1)
    assert add_one(1) == 2  # outside a pure test it compiles
