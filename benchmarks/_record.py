"""The provenance record every benchmark script writes beside its rows (``results/<name>-<time>.json``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"


def write_record(name: str, rows: Any, *, quick: bool, **extra: Any) -> dict[str, Any]:
    """Write ``results/<name>-<time>.json`` and, unless ``quick``, ``results/<name>-latest.json``."""
    from importlib.metadata import version

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    code = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    record = {
        "date": stamp,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        **extra,
        "code_version": code.stdout.strip() or "unknown",
        "packages": {p: version(p) for p in ("nkdefections", "nutpie", "pymc", "pytensor", "numba")},
        "command": " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "quick": quick,
        "rows": rows,
    }
    OUT.mkdir(exist_ok=True)
    text = json.dumps(record, indent=2) + "\n"
    (OUT / f"{name}-{stamp}.json").write_text(text, encoding="utf-8")
    if not quick:
        (OUT / f"{name}-latest.json").write_text(text, encoding="utf-8")
    return record
