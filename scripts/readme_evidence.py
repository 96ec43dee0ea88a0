"""Copy the evidence tables written by the evidence commands into README.md.

    .venv/bin/python scripts/readme_evidence.py

Replaces the text between ``<!-- evidence:NAME:start -->`` and ``<!-- evidence:NAME:end -->``
with ``experiments/<folder>/results/readme.md`` and a line naming the command, code
version and date from that folder's ``meta.json``: no number in those README sections
is typed by hand.  A missing results folder is an error (run its command first).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = {
    "backtest": ("experiments/backtest/results", "python -m nkdefections.evidence backtest"),
    "compare": ("experiments/model_comparison/results", "python -m nkdefections.evidence compare"),
    "sensitivity": ("experiments/prior_sensitivity/results", "python -m nkdefections.evidence sensitivity"),
}


def fragment(name: str) -> str:
    folder, command = SOURCES[name]
    path = REPO / folder
    if not (path / "readme.md").is_file():
        raise SystemExit(f"{path / 'readme.md'}: missing; run `.venv/bin/{command}` first.")
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    head = (
        f"*Written by `.venv/bin/{command}` (code `{meta['code_version']}`, data `{meta['data_hash']}`, "
        f"{meta['seconds']:.0f} s); files in [`{folder}/`]({folder}/).*"
    )
    return head + "\n\n" + (path / "readme.md").read_text(encoding="utf-8").strip()


def main() -> int:
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    for name in SOURCES:
        start, end = f"<!-- evidence:{name}:start -->", f"<!-- evidence:{name}:end -->"
        if start not in text:
            continue
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1]
        text = f"{head}{start}\n{fragment(name)}\n{end}{tail}"
    readme.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
