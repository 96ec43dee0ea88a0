"""Copy the evidence tables written by the evidence commands into README.md and the experiments' READMEs.

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
    "backtest": ("experiments/backtest/results", "nkdefections-evidence backtest"),
    "compare": ("experiments/model_comparison/results", "nkdefections-evidence compare"),
    "sensitivity": ("experiments/prior_sensitivity/results", "nkdefections-evidence sensitivity"),
    "structures": ("experiments/model_structures/results", "nkdefections-evidence structures"),
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


SBC = ("experiments/sbc/results", "nkdefections-evidence sbc --sims 100")
SBC_KEEP = ("SBC:", "By parameter group", "Refit convergence", "Negative control", "Recovery")


def sbc_fragment() -> str:
    """Selected sections of the SBC experiment's results.md (per-quantity tables stay in the experiment)."""
    folder, command = SBC
    path = REPO / folder / "results.md"
    if not path.is_file():
        raise SystemExit(f"{path}: missing; run `{command}` first.")
    info = json.loads((REPO / folder / "run_info.json").read_text(encoding="utf-8"))
    text = path.read_text(encoding="utf-8").split("\n", 1)[1]
    code = info.get("provenance", {}).get("code_version", "?")
    secs = info.get("total_seconds", 0)
    out = [f"*Written by `{command}` (code `{code}`, {secs:.0f} s); files in [`{folder}/`]({folder}/).*", ""]
    for block in text.split("\n#")[1:]:
        heading, _, body = block.partition("\n")
        title = heading.lstrip("# ").strip()
        if not title.startswith(SBC_KEEP):
            continue
        body = body.strip()
        if title.startswith("Negative control"):
            body = body.split("\n\n")[0].replace(" The 10 smallest p-values:", "")  # the verdict, not the table
        body = body.replace("](", f"]({folder}/")
        out += [f"**{title}**", "", body, ""]
    return "\n".join(out).strip()


def main() -> int:
    from nkdefections.report.blocks import splice

    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    for name in SOURCES:
        text = splice(text, f"evidence:{name}", fragment(name))
    text = splice(text, "evidence:sbc", sbc_fragment())
    readme.write_text(text, encoding="utf-8")
    for name, (folder, _) in SOURCES.items():  # each experiment's own README gets its tables too
        exp_readme = REPO / folder / ".." / "README.md"
        exp_text = exp_readme.read_text(encoding="utf-8")
        exp_readme.write_text(
            splice(exp_text, "results", fragment(name).replace(f"]({folder}/", "](results/")), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
