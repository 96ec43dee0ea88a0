"""Every ``nkdefections ...`` command in README.md, data/README.md and docs/ code blocks composes and validates.

Each command is composed in-process with Hydra's compose API (``--config-dir X`` becomes
``hydra.searchpath=[file://X]``) and turned into plain objects by ``configs_from_dict``;
sweeps (``-m``) are validated for every job of the sweep.  The other console scripts
(``nkdefections-nowcast``, ``nkdefections-explore`` ...) run or are parsed by their own argparse
parsers.  Nothing samples, so the documentation cannot drift from what the commands accept.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from nkdefections.cli.app import configs_from_dict, user_config_dirs
from nkdefections.resources import config_dir

pytestmark = pytest.mark.pure

REPO = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "data/README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").rglob("*.md")))


def _blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S)


def doc_commands() -> list[str]:
    out = []
    for doc in DOCS:
        for lang, body in _blocks((REPO / doc).read_text(encoding="utf-8")):
            if lang not in ("bash", "sh", ""):
                continue
            pending = ""
            for raw in body.splitlines():
                line = raw.split(" #", 1)[0].strip()
                if line.endswith("\\"):  # a command continued on the next line
                    pending += line[:-1].strip() + " "
                    continue
                line, pending = (pending + line).strip(), ""
                if re.match(r"^nkdefections(-\w+)?(\s|$)", line):
                    out.append(line)
    return out


def _user_dir(tmp_path: Path) -> Path:
    """``~/my_configs`` of the scenario guide: its own my_thaw.yaml and a model variant."""
    d = tmp_path / "my_configs"
    (d / "scenario").mkdir(parents=True)
    (d / "model").mkdir()
    guide = (REPO / "docs" / "how-to" / "scenarios.md").read_text(encoding="utf-8")
    (thaw,) = [b for lang, b in _blocks(guide) if lang == "yaml" and "my_thaw.yaml" in b.splitlines()[0]]
    (d / "scenario" / "my_thaw.yaml").write_text(thaw)
    (d / "model" / "my_variant.yaml").write_text("defaults:\n  - default\n  - _self_\nname: my_variant\n")
    return d


def _jobs(overrides: list[str]) -> list[list[str]]:
    """The overrides of every job of a ``-m`` sweep (Hydra's own sweep parser)."""
    jobs: list[list[str]] = [[]]
    for o in OverridesParser.create().parse_overrides(overrides):
        values = [o.get_value_element_as_str()] if not o.is_sweep_override() else list(o.sweep_string_iterator())
        jobs = [[*j, f"{o.get_key_element()}={v}"] for j in jobs for v in values]
    return jobs


def _validate(overrides: list[str], tmp_path: Path) -> None:
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        cfg = compose("config", overrides=[*overrides, f"output_dir={tmp_path / 'out'}"], return_hydra_config=True)
    search = user_config_dirs(OmegaConf.to_container(cfg.hydra.runtime.config_sources))
    with open_dict(cfg):
        del cfg["hydra"]
    configs_from_dict(OmegaConf.to_container(cfg, resolve=True), search_path=search)


def test_docs_have_commands():
    cmds = doc_commands()
    assert any(c.startswith("nkdefections --config-dir") for c in cmds)
    assert any(c.startswith("nkdefections-nowcast") for c in cmds)
    assert any(c.startswith("nkdefections-explore") for c in cmds)


@pytest.mark.parametrize("command", doc_commands())
def test_documented_command_is_valid(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    words = shlex.split(command.replace("~/my_configs", str(_user_dir(tmp_path))))
    prog, args = words[0], words[1:]
    if prog == "nkdefections-nowcast":
        from nkdefections.cli.nowcast import main

        assert main(args) == 0
        return
    if prog == "nkdefections-score":  # its inputs are the reader's files: the arguments must parse
        from nkdefections.cli.score import build_parser

        ns = build_parser().parse_args(args)
        assert ns.out is not None and ns.observed.suffix == ".csv"
        return
    if prog == "nkdefections-explore":  # its arguments, and its Hydra overrides composed as the CLI would
        from nkdefections.cli.explore import compose, parser

        ns = parser().parse_args(args)
        compose(ns.config_dir, list(ns.overrides))
        return
    if prog != "nkdefections":
        pytest.fail(f"no check for documented command {prog!r}; add one here")
    args = [a for a in args if "<" not in a]  # placeholders such as hydra.launcher.partition=<p>
    multirun = "-m" in args
    args = [a for a in args if a != "-m"]
    if "--config-dir" in args:
        i = args.index("--config-dir")
        args[i : i + 2] = [f"hydra.searchpath=[file://{Path(args[i + 1]).expanduser().resolve()}]"]
    if "data.files.border_events=/path/to/my_border_coding.csv" in args:  # a real file of the same schema
        monkeypatch.chdir(tmp_path)
        args = [
            a.replace("/path/to/my_border_coding.csv", str(config_dir().parent / "_data/raw/border_events.csv"))
            for a in args
        ]
    for job in _jobs(args) if multirun else [args]:
        _validate(job, tmp_path)
