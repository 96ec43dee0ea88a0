"""What leaves the explorer: the page's JSON, the comparison table as CSV, a saved scenario YAML.

Every output says what made it: the CSV's first lines and the YAML's header comment hold the
package and code version, the fit id, the data hash, the forecast seed and horizon, and the
command that reproduces the numbers from the command line.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from nkdefections import constants as C
from nkdefections.errors import ScenarioError
from nkdefections.explore.compute import Evaluation, Explorer
from nkdefections.explore.figure import figure
from nkdefections.provenance import provenance
from nkdefections.scenarios import read_scenario_file


def _num(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        return f if np.isfinite(f) else None
    return v


def provenance_info(explorer: Explorer) -> dict[str, Any]:
    """The fit, data, code and forecast settings behind the explorer's numbers."""
    m, s = explorer.model, explorer.settings
    prov = provenance()
    conv = m.convergence.summary_row() if m.convergence is not None else {}
    post = m.require_fit().posterior
    return {
        "fit_id": str(m.attrs.get("fit_id", "")),
        "fit_source": s.source,
        "data_hash": m.data_hash,
        "window": f"{m.data.attrs['first_year']}-{m.data.attrs['last_year']}",
        "draws": f"{post.sizes[C.CHAIN]} chains x {post.sizes[C.DRAW]} draws",
        "gate_passed": bool(conv.get("passed")) if conv else None,
        "horizon": f"{s.horizon.start}-{s.horizon.end}",
        "seed": s.seed,
        "code_version": prov["code_version"],
        "nkdefections": prov["packages"].get("nkdefections", ""),
    }


def reproduce_command(explorer: Explorer, names: list[str]) -> str:
    """The CLI command whose forecast equals the explorer's for ``names`` (saved scenario, baseline).

    The user's config folders go in as ``--config-dir`` (one) or ``hydra.searchpath`` (several);
    a save folder named ``scenario/`` joins them through its parent, any other save folder is
    named by the saved file's path.
    """
    save_dir = explorer.settings.save_dir.resolve()
    dirs = [Path(p).resolve() for p in explorer.settings.search_path]
    items = list(names)
    if save_dir.name == "scenario":
        if save_dir.parent not in dirs:
            dirs.insert(0, save_dir.parent)
    else:
        items[0] = str(save_dir / f"{names[0]}.yaml")
    head = ["nkdefections"]
    if len(dirs) == 1:
        head += ["--config-dir", str(dirs[0])]
    elif dirs:
        head.append("hydra.searchpath=[" + ",".join(f"file://{d}" for d in dirs) + "]")
    words = [*head, f"scenarios=[{','.join(items)}]", *explorer.settings.overrides]
    return " ".join(shlex.quote(w) for w in words)


def note(info: dict[str, Any]) -> str:
    """One provenance line for the chart (shown in the page and in an exported image)."""
    return (
        f"nkdefections {info['nkdefections']} ({info['code_version']}) · fit {info['fit_id']} "
        f"({info['draws']}, {info['window']}) · data {info['data_hash']} · forecast seed {info['seed']}"
    )


def result(explorer: Explorer, ev: Evaluation, info: dict[str, Any]) -> dict[str, Any]:
    """The page's JSON for one evaluated form: tables, flags, attribution, the figure."""
    rows = [{k: _num(v) for k, v in r.items()} for r in explorer.comparison(ev)]
    exc = ev.exceedance.set_index(C.SCENARIO)
    a, b = ev.scenario.name, ev.baseline.name
    return {
        "ok": True,
        "scenario": a,
        "baseline": b,
        "rows": rows,
        "exceedance": {
            "year": str(exc["year"].iloc[0]),
            "threshold": float(ev.threshold[1]),
            "scenario": float(exc.loc[a, "prob_exceed"]),
            "baseline": float(exc.loc[b, "prob_exceed"]),
        },
        "attribution": [{k: _num(v) for k, v in r.items()} for r in explorer.attribution_rows(ev)],
        "extrapolation": explorer.extrapolation(ev),
        "figure": figure(rows, ev.forecast, explorer.model.data, note(info)),
        "compute_ms": round(1000 * ev.seconds, 1),
        "compute_cpu_ms": round(1000 * ev.cpu_seconds, 1),
        "reproduce": reproduce_command(explorer, [a, b]),
    }


def comparison_csv(explorer: Explorer, ev: Evaluation, info: dict[str, Any]) -> str:
    """The comparison table as CSV, after ``#`` lines saying what made it (read with ``comment='#'``)."""
    table = pd.DataFrame(explorer.comparison(ev))
    buf = io.StringIO()
    buf.write(f"# nkdefections-explore: scenario {ev.scenario.name} against {ev.baseline.name}\n")
    buf.write(f"# {json.dumps(info, sort_keys=True)}\n")
    buf.write(f"# scenario: {json.dumps(ev.scenario.to_dict(), sort_keys=True)}\n")
    buf.write(f"# reproduce: {reproduce_command(explorer, [ev.scenario.name, ev.baseline.name])}\n")
    table.to_csv(buf, index=False)
    return buf.getvalue()


@dataclass(frozen=True)
class Saved:
    """What "Save scenario" did: the file, or why not (``exists``: it needs a confirmed overwrite)."""

    ok: bool
    path: Path
    message: str
    exists: bool = False
    command: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "path": str(self.path),
            "message": self.message,
            "exists": self.exists,
            "command": self.command,
        }


def scenario_yaml(explorer: Explorer, ev: Evaluation, info: dict[str, Any]) -> str:
    """The scenario file's text: a provenance header (comments) and the scenario's keys."""
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    header = [
        f"# Written by nkdefections-explore on {now}: nkdefections {info['nkdefections']} ({info['code_version']}),",
        f"# fit {info['fit_id']} ({info['draws']}, data {info['data_hash']}), forecast seed {info['seed']},",
        f"# horizon {info['horizon']}. The same numbers from the command line:",
        f"#   {reproduce_command(explorer, [ev.scenario.name, ev.baseline.name])}",
    ]
    body = yaml.safe_dump(ev.scenario.to_dict(), sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header) + "\n" + body


def _place_new(tmp: str, path: Path, text: str) -> None:
    """Put the written file at ``path`` only if nothing is there (FileExistsError otherwise)."""
    try:
        os.link(tmp, path)  # atomic, and fails if the file appeared meanwhile
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: create exclusively instead
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(text)


def save_scenario(explorer: Explorer, ev: Evaluation, info: dict[str, Any], *, overwrite: bool = False) -> Saved:
    """Write the evaluated scenario to ``<save_dir>/<name>.yaml``; never replace a file unless ``overwrite``.

    The file is written to a temporary name and renamed into place, then read back with the
    scenario loader, which must give the same scenario (else it is removed again).
    """
    folder = explorer.settings.save_dir
    path = folder / f"{ev.scenario.name}.yaml"
    if path.exists() and not overwrite:
        return Saved(
            False,
            path,
            f"{path} exists; earlier scenarios are never replaced silently. Confirm to overwrite it, "
            "or give the scenario another name.",
            exists=True,
        )
    folder.mkdir(parents=True, exist_ok=True)
    text = scenario_yaml(explorer, ev, info)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{ev.scenario.name}.", suffix=".yaml.partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if overwrite:
            os.replace(tmp, path)
        else:
            _place_new(tmp, path, text)
    except FileExistsError:
        return Saved(False, path, f"{path} exists; confirm to overwrite it.", exists=True)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    back = read_scenario_file(path)
    if back.to_dict() != ev.scenario.to_dict():  # pragma: no cover - a loader/dumper mismatch
        path.unlink()
        raise ScenarioError(f"{path}: the written scenario does not read back the same; nothing was saved.")
    command = reproduce_command(explorer, [ev.scenario.name, ev.baseline.name])
    return Saved(True, path, f"saved {path}", command=command)
