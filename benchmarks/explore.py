"""The explorer's update latency in a real browser: ``python benchmarks/explore.py``.

Runs ``tests/explore/test_explore_browser.py`` (Playwright + Debian chromium over the shared test fit,
4 chains x 1000 draws, the production size) with ``NKDEFECTIONS_EXPLORE_LATENCY_JSON`` set, so
the test's measurement (the in-page time from a control change to the updated numbers and to
the redrawn chart, over 8 changes, with the machine's load average) is written to
``benchmarks/results/explore-latest.json``.  Target: 300 ms; reported, not asserted (the test
only gates at 3 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "explore-latest.json"

if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "NKDEFECTIONS_EXPLORE_LATENCY_JSON": str(OUT)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", str(REPO / "tests" / "test_explore_browser.py")]
    res = subprocess.run(cmd, cwd=REPO, env=env)
    if res.returncode:
        sys.exit(res.returncode)
    rec = json.loads(OUT.read_text())
    print(
        f"explorer: numbers {rec['numbers_ms_median']:.0f} ms median (max {rec['numbers_ms_max']:.0f}), chart "
        f"{rec['chart_ms_median']:.0f} ms, server {rec['server_compute_ms_median']:.0f} ms; "
        f"target {rec['target_ms']} ms; "
        f"load average {rec['load_average_1_5_15_min']} -> {OUT.relative_to(REPO)}"
    )
