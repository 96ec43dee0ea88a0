"""``experiments/tutorial.ipynb`` runs top to bottom in a fresh kernel, so it cannot rot.

The notebook reads its sampler and gate settings and its fit cache from environment variables;
here they point at the session's shared real fit, so the notebook's ``fit(..., cache_dir=...)``
is a cache hit and the test samples nothing of its own.  The notebook is committed without
outputs (the numbers would go stale with every model change and the figures bloat the diff);
a test keeps it so.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import nbformat
import pytest

from tests.helpers import REPO
from tests.helpers.fit import SMALL_GATE, SMALL_SAMPLER

NOTEBOOK = REPO / "experiments" / "tutorial.ipynb"


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _text(cell) -> str:
    out = []
    for o in cell.outputs:
        if o.output_type == "stream":
            out.append(o.text)
        elif "data" in o:
            out.append(o.data.get("text/plain", ""))
    return "\n".join(out)


@pytest.mark.pure
def test_tutorial_is_valid_and_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    cells = _code_cells(nb)
    assert cells
    assert all(c.outputs == [] and c.execution_count is None for c in cells), (
        "commit experiments/tutorial.ipynb without outputs (Kernel > Restart & Clear Output)"
    )
    source = "\n".join(c.source for c in cells)
    for step in ("load_data(", ".fit(", "Scenario(", ".forecast(", "contrasts(", "attribution(", "plt.show()"):
        assert step in source, f"the tutorial no longer shows {step}"


@pytest.mark.fit
def test_tutorial_runs_top_to_bottom(small_fit, fit_cache_dir, tmp_path: Path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("NKDEFECTIONS_TUTORIAL_SAMPLER", json.dumps(SMALL_SAMPLER))
    monkeypatch.setenv("NKDEFECTIONS_TUTORIAL_GATE", json.dumps(SMALL_GATE))
    monkeypatch.setenv("NKDEFECTIONS_TUTORIAL_FIT_CACHE", str(fit_cache_dir))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    t0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    # any error in a cell raises CellExecutionError with the cell and its traceback
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel, once it has exited
    kernel_cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    cells = _code_cells(nb)
    fit = next(_text(c) for c in cells if ".fit(" in c.source)
    assert f"fit {small_fit.fit_id()} | from the cache: True" in fit  # the shared fit, not a second sampling
    by_hand = next(_text(c) for c in cells if "by hand" in c.source)
    assert by_hand.startswith("P(total thaw > total status_quo) = ")
    assert any("image/png" in o.get("data", {}) for o in cells[-1].outputs), "the tutorial ends without its plot"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # it writes nothing into its working folder
    print(f"tutorial executed in {seconds:.1f} s wall, kernel CPU {kernel_cpu:.1f} s (kernel start included)")
