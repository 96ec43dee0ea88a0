"""The ``pure`` tier's rule, enforced by tests/conftest.py in every run.

A test marked ``pure`` samples nothing and compiles nothing, so ``make test-pure`` stays under a
minute.  Two checks keep the mark honest:

* at collection, a pure test may not also be ``slow`` or ``fit`` nor request a fixture that brings
  a posterior (:data:`POSTERIOR_FIXTURES`): the run stops with the test named;
* while a pure test runs (its fixtures included), building a PyTensor function or compiling a
  numba dispatcher fails it.  The two entry points are wrapped when their modules are first
  imported, so a pure test cannot dodge the check by importing PyMC itself.

Sampling goes through a compiled program, so it trips the second check too.  A program an
earlier test compiled in the same process is not compiled again (numba and scoringrules keep
theirs), so the second check is exact in ``make test-pure``, where only pure tests run, and can
miss a mismarked test in a full run.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType

import pytest

#: The fixtures of tests/conftest.py behind a real or a fake posterior: a pure test requests none.
POSTERIOR_FIXTURES = frozenset({"small_fit", "fit_cache_dir", "fake_idata"})
#: Markers a pure test cannot carry as well.
EXCLUSIVE_MARKERS = ("slow", "fit")


def collection_errors(nodeid: str, markers: Iterable[str], fixtures: Iterable[str]) -> list[str]:
    """What is wrong with a test's ``pure`` mark, one line each (empty when it is not pure or fine)."""
    markers = set(markers)
    if "pure" not in markers:
        return []
    errors = [f"{nodeid}: marked pure and {m}" for m in EXCLUSIVE_MARKERS if m in markers]
    used = sorted(POSTERIOR_FIXTURES & set(fixtures))
    if used:
        errors.append(f"{nodeid}: marked pure but requests {', '.join(used)}")
    return errors


def item_errors(item: pytest.Item) -> list[str]:
    """:func:`collection_errors` of a collected test."""
    return collection_errors(
        item.nodeid, {m.name for m in item.iter_markers()}, getattr(item, "fixturenames", ())
    )


class CompileGuard:
    """Fails the running pure test (``running``) when it builds a PyTensor function or compiles numba."""

    #: module -> (class, method, what the test did), wrapped once the module is imported
    ENTRY_POINTS = {
        "pytensor.compile.maker": ("FunctionMaker", "__init__", "built a PyTensor function"),
        "numba.core.dispatcher": ("Dispatcher", "compile", "compiled a numba function"),
    }

    def __init__(self) -> None:
        self.running: str | None = None
        self.installed = False

    @contextlib.contextmanager
    def watching(self, item: pytest.Item) -> Iterator[None]:
        """Within the block, a compile fails ``item`` when it is marked pure (and does nothing otherwise)."""
        if item.get_closest_marker("pure") is None:
            yield
            return
        self.running = item.nodeid
        try:
            yield
        finally:
            self.running = None

    def violation(self, what: str, where: str) -> None:
        pytest.fail(
            f"{self.running} is marked pure but {what} ({where}); pure tests sample and compile nothing: "
            "drop the mark",
            pytrace=True,
        )

    def install(self) -> None:
        """Wrap the entry points now if their modules are imported, else right after they are."""
        if self.installed:
            return
        self.installed = True
        pending = {}
        for name, entry in self.ENTRY_POINTS.items():
            if name in sys.modules:
                self._wrap(sys.modules[name], *entry)
            else:
                pending[name] = functools.partial(self._wrap_module, entry=entry)
        if pending:
            sys.meta_path.insert(0, AfterImport(pending))

    def _wrap_module(self, module: ModuleType, entry: tuple[str, str, str]) -> None:
        self._wrap(module, *entry)

    def _wrap(self, module: ModuleType, cls_name: str, method: str, what: str) -> None:
        cls = getattr(module, cls_name)
        original = getattr(cls, method)
        guard = self

        @functools.wraps(original)
        def checked(*args, **kwargs):
            if guard.running is not None:
                guard.violation(what, f"{module.__name__}.{cls_name}.{method}")
            return original(*args, **kwargs)

        setattr(cls, method, checked)


class AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``patches[name](module)`` right after the module ``name`` is first executed."""

    def __init__(self, patches: dict[str, Callable[[ModuleType], None]]) -> None:
        self.patches = patches

    def find_spec(self, fullname, path, target=None):
        patch = self.patches.pop(fullname, None)
        if patch is None:
            return None
        if not self.patches:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


#: The guard of the test session (tests/conftest.py installs it and sets ``running``).
GUARD = CompileGuard()
