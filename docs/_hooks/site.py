"""MkDocs hooks: the site carries the evidence figures and the tutorial from where they live, and the CLI help.

- ``experiments/**/*.png`` and ``experiments/tutorial.ipynb`` join the site's files
  (``experiments/...`` and ``tutorials/tutorial.ipynb``): the evidence pages show the figures
  the evidence commands wrote, and the notebook is rendered from its one copy.
- ``<!-- help: COMMAND -->`` in a page becomes the output of ``COMMAND --help`` run from
  the environment that builds the site (the installed package), so the CLI reference
  cannot drift from the parsers.
- ``<!-- file: PATH -->`` becomes the file's text in a code block (the shipped configs).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
HELP = re.compile(r"<!-- help: ([\w-]+)((?: [\w=-]+)*) -->")
FILE = re.compile(r"<!-- file: ([\w./-]+) -->")


@event_priority(100)  # before mkdocs-jupyter claims the notebooks
def on_files(files, config):
    for png in sorted((ROOT / "experiments").rglob("*.png")):
        rel = png.relative_to(ROOT).as_posix()
        files.append(File(rel, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    nb = File.generated(config, "tutorials/tutorial.ipynb", abs_src_path=str(ROOT / "experiments" / "tutorial.ipynb"))
    files.append(nb)
    return files


def _help(command: str, args: str) -> str:
    exe = shutil.which(command, path=str(Path(sys.executable).parent)) or shutil.which(command)
    if exe is None:
        raise RuntimeError(f"docs: `{command}` is not installed in this environment; install the package first.")
    argv = [exe, *args.split(), "--help"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return "```text\n$ " + " ".join([command, *args.split(), "--help"]) + "\n" + out.rstrip() + "\n```"


def _file(path: str) -> str:
    p = ROOT / path
    if not p.is_file():
        raise RuntimeError(f"docs: {path} named in a page does not exist.")
    lang = {"yaml": "yaml", "py": "python", "json": "json"}.get(p.suffix.lstrip("."), "text")
    return f"```{lang}\n# {path}\n" + p.read_text(encoding="utf-8").rstrip() + "\n```"


def on_page_markdown(markdown, page, config, files):
    markdown = HELP.sub(lambda m: _help(m.group(1), m.group(2)), markdown)
    return FILE.sub(lambda m: _file(m.group(1)), markdown)
