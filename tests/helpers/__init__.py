"""What the tests share besides fixtures: the fit settings, fakes, synthetic data, the PyMC twin, the tier rule.

Imported as ``tests.helpers....`` (tests/ is a package; pyproject.toml puts the repository root on
``sys.path`` for pytest), never as a bare module name, so two test files may share a basename.
"""

from __future__ import annotations

from pathlib import Path

#: The repository root.
REPO = Path(__file__).resolve().parents[2]
