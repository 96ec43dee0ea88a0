"""A disk cache for the two C callbacks nutpie compiles around a PyTensor function.

``nutpie.compile_pymc_model(backend="numba")`` wraps the model's logp+gradient and its
expansion (PyTensor functions, which PyTensor caches on disk itself) in two
``numba.cfunc`` callbacks.  Those are compiled again in every process: nutpie does not ask
for a cache, and numba's own (``cache=True``) can never hit for them, because numba keys a
closure by pickling its cells, and those hold numba dispatchers and intrinsics (pickled
with a fresh UUID per process) and nutpie's shared-variable keys (``uuid4``).  Measured on
the default model: ~15 s of every warm process, ~50 s of a cold one.

:func:`cached_callbacks` gives each callback an explicit cache key instead: a hash of
what its machine code depends on (the callback's bytecode and closure, PyTensor's own
cache key of the wrapped function, the shapes, dtypes and values of the shared arrays,
the versions of nutpie, numba, llvmlite and PyTensor); numba adds the CPU model and
features to the index key itself.  A closure holding anything it cannot describe is
compiled as before, uncached.  Entries go to ``<cache>/nutpie`` (``NKDEFECTIONS_CACHE_DIR``).

Draws: every process that *loads* the callbacks and PyTensor's functions gets the same
draws for a seed (measured: bit-identical posteriors), and the same draws as before this
cache existed in a warm process.  A process that *compiles* PyTensor's function itself
computes a gradient that differs in the last bits (measured; the callback reloaded from the
cache in that process does too), so its chains drift apart from the loaders'.  That is why
:func:`fill_in_child` compiles a cold program in a child process: the fitting process then
always loads, and a cold run draws what every later run draws.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import re
import subprocess
import sys
import tempfile
import types as pytypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: the module whose closures are described in full (nutpie's compile step); functions of
#: other modules are named only (their code is pinned by the package versions in the key)
_NUTPIE_MODULE = "nutpie.compile_pymc"
_UUID = re.compile(r"\b[0-9a-f]{32}\b")
#: set in the child of :func:`fill_in_child` (which must not start another)
_CHILD = "NKDEFECTIONS_COMPILE_CHILD"

log = logging.getLogger(__name__)


class _Unkeyable(Exception):
    """A closure holds something whose effect on the machine code cannot be described."""


def _code_digest(code: pytypes.CodeType) -> str:
    """A hash of a code object's content (``marshal.dumps`` is not stable: it depends on refcounts)."""

    def parts(c: pytypes.CodeType) -> Any:
        consts = tuple(
            parts(k) if isinstance(k, pytypes.CodeType) else (type(k).__name__, repr(k)) for k in c.co_consts
        )
        return (c.co_qualname, c.co_code, consts, c.co_names, c.co_varnames, c.co_freevars, c.co_cellvars)

    return hashlib.sha256(repr(parts(code)).encode()).hexdigest()


def _describe(obj: Any, seen: set[int]) -> Any:
    import numba.core.registry  # noqa: F401
    from numba.core.dispatcher import Dispatcher
    from numba.core.extending import _Intrinsic
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    if obj is None or isinstance(obj, bool | int | float | str | bytes):
        return repr(obj)
    if isinstance(obj, np.generic):
        return ("scalar", obj.dtype.str, repr(obj.item()))
    if isinstance(obj, tuple | list):
        return (type(obj).__name__, tuple(_describe(x, seen) for x in obj))
    if isinstance(obj, set | frozenset):  # sorted: a set's order changes with the process's hash seed
        return ("set", tuple(sorted(repr(_describe(x, seen)) for x in obj)))
    if isinstance(obj, dict):
        return ("dict", tuple(sorted((repr(_describe(k, seen)), repr(_describe(v, seen))) for k, v in obj.items())))
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return (
            "ndarray",
            obj.dtype.str,
            obj.shape,
            obj.flags.c_contiguous,
            obj.flags.writeable,
            hashlib.sha256(a.tobytes()).hexdigest(),
        )
    if isinstance(obj, np.dtype):
        return ("dtype", str(obj.descr))
    if isinstance(obj, pytypes.ModuleType):
        return ("module", obj.__name__)
    if isinstance(obj, Dispatcher):
        key = CACHED_SRC_FUNCTIONS.get(obj.py_func)
        if key is not None:  # a PyTensor function: PyTensor's own cache key names its code
            return ("pytensor", key, _describe(dict(obj.targetoptions), seen))
        return ("dispatcher", _describe(obj.py_func, seen), _describe(dict(obj.targetoptions), seen))
    if isinstance(obj, _Intrinsic):
        return ("intrinsic", _describe(obj._defn, seen))
    if isinstance(obj, pytypes.FunctionType):
        name = (obj.__module__, obj.__qualname__)
        if obj.__module__ != _NUTPIE_MODULE:
            return ("function", name)
        if id(obj) in seen:
            return ("function", name, "seen")
        seen.add(id(obj))
        cells = tuple(
            (n, _describe(c.cell_contents, seen))
            for n, c in zip(obj.__code__.co_freevars, obj.__closure__ or (), strict=True)
        )
        return ("function", name, _code_digest(obj.__code__), cells)
    raise _Unkeyable(type(obj).__qualname__)


def description(py_func: Any, sig: Any) -> str | None:
    """What :func:`callback_key` hashes (nutpie's per-process key names replaced by their order)."""
    try:
        desc = repr((_describe(py_func, set()), str(sig)))
    except _Unkeyable:
        return None
    order: dict[str, str] = {}  # nutpie's per-process uuid4 keys, by order of appearance
    return _UUID.sub(lambda m: order.setdefault(m.group(0), f"k{len(order)}"), desc)


def callback_key(py_func: Any, sig: Any) -> str | None:
    """The cache key of one nutpie callback, or None when it cannot be described."""
    import llvmlite
    import numba
    import nutpie
    import pytensor

    desc = description(py_func, sig)
    if desc is None:
        return None
    versions = (nutpie.__version__, numba.__version__, llvmlite.__version__, pytensor.__version__, sys.version)
    return hashlib.sha256(repr((versions, desc)).encode()).hexdigest()


def _keyed_cache(py_func: Any, key: str, path: Path) -> Any:
    """A numba FunctionCache in ``path`` whose index key is ``key`` (not the pickled closure)."""
    from numba.core.caching import (
        CompileResultCacheImpl,
        FunctionCache,
        IndexDataCacheFile,
        _CacheLocator,
    )

    class Locator(_CacheLocator):
        def __init__(self) -> None:
            self._py_file = py_func.__code__.co_filename

        def ensure_cache_path(self) -> None:
            path.mkdir(parents=True, exist_ok=True)

        def get_cache_path(self) -> str:
            return str(path)

        def get_source_stamp(self) -> str:
            return key

        def get_disambiguator(self) -> str:
            return key[:16]

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> None:
            return None

    class Impl(CompileResultCacheImpl):
        def __init__(self) -> None:  # noqa: D107 - CacheImpl's locator search skipped
            self._lineno = py_func.__code__.co_firstlineno
            self._locator = Locator()
            self._filename_base = self.get_filename_base(f"nutpie.{py_func.__name__}", getattr(sys, "abiflags", ""))

    class Cache(FunctionCache):
        def __init__(self) -> None:  # noqa: D107
            self._name = repr(py_func)
            self._py_func = py_func
            self._impl = Impl()
            self._cache_path = str(path)
            self._cache_file = IndexDataCacheFile(
                cache_path=self._cache_path, filename_base=self._impl.filename_base, source_stamp=key
            )
            self.enable()

        def _index_key(self, sig: Any, codegen: Any) -> Any:
            return (sig, codegen.magic_tuple(), key)

    return Cache()


@contextlib.contextmanager
def cached_callbacks(path: str | os.PathLike[str]) -> Iterator[None]:
    """While active, ``numba.cfunc`` (as nutpie calls it) loads and saves through a keyed disk cache."""
    import numba
    from numba.core import sigutils
    from numba.core.ccallback import CFunc

    original = numba.cfunc
    folder = Path(path)

    def cfunc(sig: Any, **kwargs: Any) -> Any:
        def decorate(func: Any) -> Any:
            key = None if kwargs else callback_key(func, sig)
            if key is None:
                return original(sig, **kwargs)(func)
            try:  # numba's cache classes are internal: if they changed, compile as before
                res = CFunc(func, sigutils.normalize_signature(sig), locals={}, options={})
                res._cache = _keyed_cache(func, key, folder)
            except Exception as exc:  # noqa: BLE001
                log.warning("nutpie callback cache unavailable (%s); compiling uncached", exc)
                return original(sig, **kwargs)(func)
            res.compile()
            return res

        return decorate

    numba.cfunc = cfunc
    try:
        yield
    finally:
        numba.cfunc = original


def environment_key() -> str:
    """What the compiled code on disk depends on besides the model: packages, CPU, PyTensor's cache folder."""
    import importlib.metadata as md

    import pytensor

    from nkdefections.provenance import machine

    versions = [md.version(p) for p in ("nutpie", "numba", "llvmlite", "pytensor", "pymc")]
    cpu = machine()
    parts = (versions, sys.version, cpu.get("cpu_flags_sha256"), cpu.get("arch"), str(pytensor.config.base_compiledir))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def fill_in_child(marker: Path, target: str, *args: Any) -> None:
    """Call ``target(*args)`` (``"module.function"``) in a fresh interpreter, once per ``marker``.

    The child compiles and fills the disk caches; the caller then loads the compiled code as
    every later process does.  A failed child is logged and ignored: the caller compiles
    itself (slower and, for numba, other last bits; never wrong).
    """
    if marker.exists() or os.environ.get(_CHILD):
        return
    code = (
        "import sys, json; sys.path[:0] = json.loads(sys.argv[2]); import importlib, pickle; "
        "t, a = pickle.load(open(sys.argv[1], 'rb')); m, f = t.rsplit('.', 1); "
        "getattr(importlib.import_module(m), f)(*a)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        payload = Path(tmp) / "call.pkl"
        with payload.open("wb") as fh:
            pickle.dump((target, args), fh)
        paths = json.dumps([p for p in sys.path if p])
        proc = subprocess.run(
            [sys.executable, "-c", code, str(payload), paths],
            env={**os.environ, _CHILD: "1"},
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        log.warning("compiling in a child process failed (%s); compiling here", proc.stderr.strip()[-500:])
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
