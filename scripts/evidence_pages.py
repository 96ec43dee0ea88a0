"""Copy the evidence tables written by the evidence commands into the docs' evidence pages and the experiments' READMEs.

    .venv/bin/python scripts/evidence_pages.py

Replaces the text between ``<!-- evidence:NAME:start -->`` and ``<!-- evidence:NAME:end -->``
in ``docs/evidence/<page>.md`` with ``experiments/<folder>/results/readme.md`` and a line
naming the command, code version and run time from that folder's ``meta.json``: no number
on those pages is typed by hand.  A missing results folder is an error (run its command first).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = {
    "backtest": ("experiments/backtest/results", "nkdefections-evidence backtest"),
    "compare": ("experiments/model_comparison/results", "nkdefections-evidence compare"),
    "sensitivity": ("experiments/prior_sensitivity/results", "nkdefections-evidence sensitivity"),
    "structures": ("experiments/model_structures/results", "nkdefections-evidence structures"),
}
#: The docs page that carries each fragment.
PAGES = {
    "backtest": "docs/evidence/backtest.md",
    "compare": "docs/evidence/comparison.md",
    "sensitivity": "docs/evidence/sensitivity.md",
    "structures": "docs/evidence/structures.md",
    "sbc": "docs/evidence/sbc.md",
    "nowcast": "docs/evidence/nowcast.md",
}


def fragment(name: str) -> str:
    folder, command = SOURCES[name]
    path = REPO / folder
    if not (path / "readme.md").is_file():
        raise SystemExit(f"{path / 'readme.md'}: missing; run `.venv/bin/{command}` first.")
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    head = (
        f"*Written by `.venv/bin/{command}` (code `{meta['code_version']}`, data `{meta['data_hash']}`, "
        f"{meta['seconds']:.0f} s); files in `{folder}/`.*"
    )
    return head + "\n\n" + (path / "readme.md").read_text(encoding="utf-8").strip()


SBC = ("experiments/sbc/results", "nkdefections-evidence sbc --sims 100")
SBC_KEEP = ("SBC:", "By parameter group", "Refit convergence", "Negative control", "Recovery")


def _results_text(folder: str, command: str) -> str:
    """An experiment's ``results.md`` without its title line; an error naming the command when it is missing."""
    path = REPO / folder / "results.md"
    if not path.is_file():
        raise SystemExit(f"{path}: missing; run `{command}` first.")
    return path.read_text(encoding="utf-8").split("\n", 1)[1]


def _sections(text: str, keep: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(title, body)`` of each ``#`` section of ``text`` whose title starts with one of ``keep``."""
    out = []
    for block in text.split("\n#")[1:]:
        heading, _, body = block.partition("\n")
        title = heading.lstrip("# ").strip()
        if title.startswith(keep):
            out.append((title, body.strip()))
    return out


def sbc_fragment() -> str:
    """Selected sections of the SBC experiment's results.md (per-quantity tables stay in the experiment)."""
    folder, command = SBC
    text = _results_text(folder, command)
    info = json.loads((REPO / folder / "run_info.json").read_text(encoding="utf-8"))
    code = info.get("provenance", {}).get("code_version", "?")
    secs = info.get("total_seconds", 0)
    out = [f"*Written by `{command}` (code `{code}`, {secs:.0f} s); files in `{folder}/`.*", ""]
    for title, body in _sections(text, SBC_KEEP):
        if title.startswith("Negative control"):
            body = body.split("\n\n")[0].replace(" The 10 smallest p-values:", "")  # the verdict, not the table
        body = body.replace("](", f"](../{folder}/")  # the site carries the experiments' figures
        out += [f"**{title}**", "", body, ""]
    return "\n".join(out).strip()


NOWCAST = ("experiments/nowcast/results", "nkdefections-evidence nowcast")
NOWCAST_KEEP = ("Summary by method", "Next year's count")


def nowcast_fragment() -> str:
    """The nowcast validation's summary tables (the per-figure table stays in the experiment)."""
    folder, command = NOWCAST
    text = _results_text(folder, command)
    meta = json.loads((REPO / folder / "meta.json").read_text(encoding="utf-8"))
    code = meta.get("code_version", "?")
    out = [f"*Written by `{command}` (code `{code}`); files in `{folder}/`.*", ""]
    out += [text.split("\n## ", 1)[0].strip(), ""]  # the share curve's line
    for title, body in _sections(text, NOWCAST_KEEP):
        out += [f"**{title}**", "", body, ""]
    return "\n".join(out).strip()


def main() -> int:
    from nkdefections.report.blocks import splice

    fragments = {name: fragment(name) for name in SOURCES}
    fragments["sbc"] = sbc_fragment()
    fragments["nowcast"] = nowcast_fragment()
    for name, body in fragments.items():
        page = REPO / PAGES[name]
        page.write_text(splice(page.read_text(encoding="utf-8"), f"evidence:{name}", body), encoding="utf-8")
    for name, (folder, _) in SOURCES.items():  # each experiment's own README gets its tables too
        exp_readme = REPO / folder / ".." / "README.md"
        exp_text = exp_readme.read_text(encoding="utf-8")
        body = fragments[name].replace(f"`{folder}/`", "`results/`")
        exp_readme.write_text(splice(exp_text, "results", body), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
