"""Dotted names and repo paths in the docs resolve: a module moved by a re-layout leaves no stale name behind."""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.pure

ROOT = Path(__file__).resolve().parents[2]
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


PATH_REF = re.compile(
    r"(?<![\w./-])(?:src|tests|experiments|benchmarks|scripts|configs|data|docs)/[\w./-]+"
    r"\.(?:py|md|yaml|csv|json|nc|sh|png|html|ipynb|toml)"
)


def _tracked() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return set(out)


def _path_exists(ref: str, doc: Path, tracked: set[str]) -> bool:
    """A path named in ``doc`` is tracked (from the root, the doc's folder or the package) or is git-ignored output."""
    here = doc.parent.relative_to(ROOT)
    for base in (Path(), here, Path("src/nkdefections")):
        if (base / ref).as_posix() in tracked:
            return True
    ignored = subprocess.run(["git", "check-ignore", "-q", ref], cwd=ROOT, check=False)
    return ignored.returncode == 0  # written by a command, not shipped (results/raw/..., outputs/...)


def test_path_checker_tells_a_moved_file_from_a_present_one():
    tracked = _tracked()
    readme = ROOT / "README.md"
    assert _path_exists("src/nkdefections/model/refit.py", readme, tracked)
    assert _path_exists("data/load.py", ROOT / "ARCHITECTURE.md", tracked)  # package-relative
    assert not _path_exists("src/nkdefections/sbc.py", readme, tracked)  # the pre-layout path a README gave


def test_every_repo_path_in_the_markdown_exists():
    tracked = _tracked()
    docs = [ROOT / p for p in tracked if p.endswith(".md")]
    missing: dict[str, str] = {}
    seen = 0
    for doc in docs:
        for m in PATH_REF.finditer(doc.read_text(encoding="utf-8")):
            ref = m.group(0).rstrip(".")
            seen += 1
            if Path(ref).name.startswith("my_"):  # a file the reader is told to create
                continue
            if not _path_exists(ref, doc, tracked):
                missing.setdefault(ref, str(doc.relative_to(ROOT)))
    assert seen > 100  # the pattern finds the references
    assert not missing, f"paths in the docs that do not exist (first file naming each): {missing}"
