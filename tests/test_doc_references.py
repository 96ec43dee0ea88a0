"""Dotted names in the docs and docstrings resolve: a module moved by a re-layout leaves no stale path behind."""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"nkdefections(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _documents() -> list[Path]:
    """Tracked markdown, notebooks, configs and package sources (tests name made-up modules on purpose)."""
    out = subprocess.run(
        ["git", "ls-files", "*.md", "*.ipynb", "*.yaml", "src/*.py", "benchmarks/*.py", "scripts/*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / p for p in out]


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_resolver_tells_a_moved_module_from_a_present_one():
    assert _resolves("nkdefections.model.refit.Refitter")
    assert not _resolves("nkdefections.refit.Refitter")  # the pre-layout path the README still gave
    assert not _resolves("nkdefections.model.refit.NoSuchThing")


def test_every_dotted_nkdefections_name_in_the_docs_resolves():
    docs = _documents()
    assert any(p.name == "README.md" for p in docs)
    names: dict[str, str] = {}
    for path in docs:
        for m in NAME.finditer(path.read_text(encoding="utf-8")):
            names.setdefault(m.group(0).rstrip("."), str(path.relative_to(ROOT)))
    assert len(names) > 50  # the pattern finds the references
    stale = {n: where for n, where in sorted(names.items()) if not _resolves(n)}
    assert not stale, f"names that no longer exist (first file naming each): {stale}"
