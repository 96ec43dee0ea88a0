"""The documentation site's API pages cover every module of the package, and its nav names only pages that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.pure

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "nkdefections"


def _modules() -> set[str]:
    out = set()
    for p in SRC.rglob("*.py"):
        rel = p.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if any(part.startswith("_") and part != "__init__" for part in parts) or parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.add(".".join(parts))
    return out


def test_every_module_has_an_api_entry():
    pages = (ROOT / "docs" / "reference" / "api").glob("*.md")
    documented = {m for page in pages for m in re.findall(r"^::: ([\w.]+)", page.read_text(encoding="utf-8"), re.M)}
    modules = _modules()
    assert len(modules) > 50
    assert not modules - documented, f"modules without an API entry: {sorted(modules - documented)}"
    assert not documented - modules, f"API entries for modules that do not exist: {sorted(documented - modules)}"


def test_nav_names_existing_pages():
    cfg = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(nav):
        for item in nav:
            for v in item.values():
                yield from (pages(v) if isinstance(v, list) else [v])

    listed = list(pages(cfg["nav"]))
    notebook = "tutorials/tutorial.ipynb"  # mounted from experiments/ by docs/_hooks/site.py
    missing = [p for p in listed if p != notebook and not (ROOT / "docs" / p).is_file()]
    assert not missing
    assert notebook in listed and (ROOT / "experiments" / "tutorial.ipynb").is_file()
