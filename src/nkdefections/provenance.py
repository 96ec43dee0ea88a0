"""What made an output: package versions and code version."""

from __future__ import annotations

import functools
import importlib.metadata as md
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


def provenance() -> dict[str, Any]:
    return {"packages": package_versions(), "code_version": code_version()}
