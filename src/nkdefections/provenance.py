"""What made an output: package versions and code version."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
from collections.abc import Sequence
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
    """Installed versions of ``names`` (default: the packages that shape the numbers)."""
    out = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def code_version() -> str:
    """``git describe`` of the source tree (``-dirty`` when uncommitted), else the package version."""
    root = Path(__file__).resolve().parents[2]
    try:
        res = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return f"git:{res.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        return f"nkdefections=={package_versions()['nkdefections']}"


def provenance() -> dict[str, Any]:
    return {"packages": package_versions(), "code_version": code_version()}
