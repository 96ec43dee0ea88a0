"""What made an output: package versions, code version and the machine."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata as md
import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

PACKAGES = (
    "nkdefections",
    "pymc",
    "pytensor",
    "arviz",
    "arviz-base",
    "arviz-stats",
    "numpy",
    "scipy",
    "xarray",
    "pandas",
    "hydra-core",
    "omegaconf",
    "numpyro",
    "jax",
    "nutpie",
    "h5netcdf",
)


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (default: the packages that shape the numbers).

    Read once per process and name list (``importlib.metadata`` scans every folder on
    ``sys.path``, ~20 ms for the default list, and every forecast records them): the
    modules a process has imported do not change version while it runs.
    """
    return dict(_versions(tuple(names)))


@functools.lru_cache(maxsize=8)
def _versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for name in names:
        try:
            out.append((name, md.version(name)))
        except md.PackageNotFoundError:
            out.append((name, "not installed"))
    return tuple(out)


#: What "the code" is for provenance: a change here marks the version ``-dirty``.
#: Results, READMEs and experiment write-ups are outputs, not code.
CODE_PATHS = ("src", "configs", "data", "scripts", "experiments/*/*.py", "pyproject.toml", "requirements.lock")


def source_checkout(package_dir: Path | None = None) -> Path | None:
    """The git checkout this package runs from, or None (an installed wheel, or another project's repo).

    ``package_dir``: where the ``nkdefections`` package lives (default: the imported one).
    """
    src = Path(package_dir or str(resources.files("nkdefections"))).resolve()
    try:
        cmd = ["git", "-C", str(src), "rev-parse", "--show-toplevel"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    root = Path(res.stdout.strip())
    # a wheel installed into a venv that sits inside some other repository is not this checkout
    try:
        in_tree = src.relative_to(root).parts[:2] == ("src", "nkdefections")
    except ValueError:
        return None
    return root if in_tree and (root / "pyproject.toml").is_file() else None


def code_version(root: Path | None = None) -> str:
    """``git describe`` of the source tree, ``-dirty`` when code, configs or data differ from it.

    Outside a git checkout of nkdefections (an installed wheel) it is the package version,
    never the commit of whatever repository the current folder belongs to.  ``root``: the
    checkout (default: the one this package runs from, if any).
    """
    root = root or source_checkout()
    if root is None:
        return f"nkdefections=={package_versions()['nkdefections']}"

    def git(*args: str) -> str:
        res = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True)
        return res.stdout.strip()

    try:
        version = git("describe", "--always", "--abbrev=12")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
        return f"git:{version}{'-dirty' if changed else ''}"
    except (OSError, subprocess.SubprocessError):
        return f"nkdefections=={package_versions()['nkdefections']}"


#: CPU features that change which instructions XLA and numba emit, hence the floating-point path.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512vl", "avx512bw", "amx_tile")
ISA_FLAGS_ARM = ("asimd", "sve", "sve2")


def machine() -> dict[str, Any]:
    """The processor an output was computed on: where MCMC draws can differ, this says so.

    The same seed gives the same draws on one machine; on a CPU with other instruction-set
    extensions XLA compiles other code and the chains differ within Monte Carlo error.
    ``cpu_flags_sha256`` hashes the full flag list (``/proc/cpuinfo``), so two outputs with
    equal hashes came from processors with the same features; ``isa`` lists the few flags
    that matter most for vector code.  Read once per process; each call returns a fresh copy.
    """
    record = _machine()
    return {**record, "isa": list(record["isa"])}


@functools.cache
def _machine() -> dict[str, Any]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: the platform module's name, no flags
        text = ""
    return describe_cpu(text)


def describe_cpu(cpuinfo: str) -> dict[str, Any]:
    """:func:`machine`'s record from the text of ``/proc/cpuinfo`` (empty: name from :mod:`platform` only)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first processor's entry
    have = set((fields.get("flags") or fields.get("Features") or "").split())
    return {
        "system": platform.system(),
        "arch": platform.machine(),
        "cpu": fields.get("model name") or fields.get("Model") or platform.processor(),
        "cpus": os.cpu_count(),
        "isa": [f for f in (*ISA_FLAGS, *ISA_FLAGS_ARM) if f in have],
        "cpu_flags_sha256": hashlib.sha256(" ".join(sorted(have)).encode()).hexdigest()[:16] if have else "",
    }


def provenance() -> dict[str, Any]:
    """Package versions, code version and machine of the running process (see :func:`machine`)."""
    return {"packages": package_versions(), "code_version": code_version(), "machine": machine()}
