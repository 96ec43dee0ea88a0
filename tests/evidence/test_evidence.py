"""The evidence commands (atomic steps with provenance), the model card and the README fragments from their tables.

Split from tests/evaluate/test_backtest.py; no sampling (the steps are replaced by stand-ins).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nkdefections.errors import OutputExistsError

pytestmark = pytest.mark.pure


def test_existing_results_are_refused_before_any_work(tmp_path, monkeypatch):
    from nkdefections import evidence
    from nkdefections.cli import evidence as evidence_cli

    called = []
    monkeypatch.setitem(evidence.STEPS, "backtest", lambda out, quick=False: called.append(out) or {})
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "summary.csv").write_text("keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        evidence.run_step("backtest", tmp_path / "old")
    assert not called
    assert (tmp_path / "old" / "summary.csv").read_text() == "keep me"
    assert evidence_cli.main(["backtest", "--out", str(tmp_path / "old")]) == 2


def test_a_failing_step_leaves_nothing_behind(tmp_path, monkeypatch):
    from nkdefections import evidence

    def boom(out: Path, quick: bool = False) -> dict:
        (out / "half.csv").write_text("partial")
        raise RuntimeError("sampler exploded")

    monkeypatch.setitem(evidence.STEPS, "backtest", boom)
    with pytest.raises(RuntimeError):
        evidence.run_step("backtest", tmp_path / "new")
    assert list(tmp_path.iterdir()) == []


def test_a_step_writes_atomically_with_provenance(tmp_path, monkeypatch):
    from nkdefections import evidence

    def fine(out: Path, quick: bool = False) -> dict:
        (out / "table.csv").write_text("a\n1\n")
        return {"settings": {"origins": [2012]}}

    monkeypatch.setitem(evidence.STEPS, "backtest", fine)
    evidence.run_step("backtest", tmp_path / "new")
    meta = json.loads((tmp_path / "new" / "meta.json").read_text())
    assert meta["settings"]["origins"] == [2012]
    assert {"data_hash", "package_versions", "code_version", "machine", "seconds"} <= set(meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


def test_card_numbers_come_from_the_results():
    from nkdefections.report.card import render_card

    summary = pd.DataFrame(
        {
            "method": ["default"] * 2,
            "mode": ["conditional", "status_quo"],
            "horizon": [1, 1],
            "n": [8, 8],
            "mean_crps": [123.4, 111.1],
            "mean_log_score": [7.1, 7.0],
            "coverage_50": [0.5, 0.5],
            "coverage_80": [0.875, 0.75],
            "coverage_95": [1.0, 1.0],
        }
    )
    skill = pd.DataFrame(
        {
            "method": ["no_change"] * 2,
            "model_mode": ["conditional", "status_quo"],
            "horizon": [1, 1],
            "crps_ratio": [0.83, 1.21],
            "crps_ratio_lower": [0.70, 0.95],
            "crps_ratio_upper": [0.95, 1.40],
        }
    )
    cmp_table = pd.DataFrame(
        {
            "variant": ["economy lag 2", "default (Poisson, AR(1))", "Poisson, random walk"],
            "elpd_lfo": [-50.0, -51.5, -56.5],
            "elpd_lfo_diff": [1.5, 0.0, -5.0],
            "se_diff": [0.7, 0.0, 0.6],
        }
    )
    sens = pd.DataFrame(
        {
            "driver": ["border"],
            "factor": [1.0],
            "prior_sd": [0.5],
            "median_pct": [-40.0],
            "q05_pct": [-60.0],
            "q95_pct": [-10.0],
            "prob_negative": [0.99],
            "shift_sd": [0.0],
            "width_ratio": [1.0],
            "contraction": [0.8],
            "passed": [True],
            "verdict": ["data-dominated, sign robust"],
        }
    )
    parts = {
        "run": {
            "meta": {
                "convergence": {
                    "passed": True,
                    "max_rhat": 1.004,
                    "min_ess_bulk": 1314,
                    "min_ess_tail": 1500,
                    "divergences": 0,
                    "chains": 4,
                    "draws": 1000,
                },
                "data_files": {"a": 1},
                "model_config": {
                    "likelihood": "poisson",
                    "latent": "ar1",
                    "drivers": ["border"],
                    "lags": {"border": 0},
                },
            }
        },
        "backtest": {"summary": summary, "skill": skill},
        "compare": {"table": cmp_table},
        "sbc": {},
        "sensitivity": {"table": sens},
        "nowcast": {},
    }
    meta = {
        "code_version": "git:abc",
        "data_hash": "h123",
        "settings": {"quick": False},
        "seconds": 10.0,
        "package_versions": {"pymc": "6.4.0"},
    }
    text = render_card(parts, meta)
    assert "h=1: 0.83 [0.70, 0.95], better" in text
    assert "h=1: 1.21 [0.95, 1.40], not distinguishable" in text
    assert "Best ELPD-LFO: **economy lag 2** (+1.5 ± 0.7 against default (Poisson, AR(1)))" in text
    assert "(ELPD-LFO lower by more than 4): Poisson, random walk." in text
    assert "not distinguishable with these 8 forecasts): economy lag 2." in text
    assert "the default stands under the rule" in text
    assert "data-dominated, sign robust" in text
    for heading in ("## Intended use", "## Data", "## Model and assumptions", "## Evidence", "## Known limits"):
        assert heading in text


def test_readme_fragments_are_built_from_the_tables():
    from nkdefections.evidence.steps import compare_fragment, sensitivity_fragment

    sens = pd.DataFrame(
        {
            "driver": ["border"] * 3,
            "factor": [1.0, 0.5, 2.0],
            "median_pct": [-46.7, -30.9, -52.2],
            "q05_pct": [-62.8, -49.6, -67.9],
            "q95_pct": [-19.2, -1.0, -27.3],
            "contraction": [0.78, 0.34, 0.94],
            "shift_sd": [0.0, 1.10, -0.47],
            "verdict": ["magnitude prior-sensitive, sign robust"] * 3,
            "passed": [True, False, True],
            "divergences": [0, 1, 0],
        }
    )
    text = sensitivity_fragment(sens)
    assert "FAILED (1 div.) / passed / passed" in text
    assert "-30.9% [-49.6, -1.0]" in text and "| 1.10 |" in text and "sign robust" in text
    table = pd.DataFrame(
        {
            "variant": ["a", "b"],
            "elpd_lfo": [-56.9, -59.2],
            "elpd_lfo_diff": [0.0, -2.3],
            "se_diff": [0.0, 0.68],
            "crps_h1": [215.0, 290.0],
            "crps_h2": [397.0, 454.0],
            "crps_h3": [661.0, 689.0],
            "elpd_loo": [-102.0, -102.5],
            "se_loo": [2.0, 1.9],
            "n_k_over_0.7": [17, 16],
            "elpd_loo_exact": [-104.0, -105.0],
            "se_loo_exact": [2.5, 2.4],
            "loo_exact_diff": [1.0, 0.0],
            "loo_exact_se_diff": [0.9, 0.0],
            "full_fit_passed": [True, False],
            "lfo_refits_failing_gate": [5, 1],
            "loo_refits_failing_gate": [2, 0],
            "max_divergences": [1, 2],
        }
    )
    text = compare_fragment(table)
    assert "-59.2 (-2.3 ± 0.7)" in text and "215 / 397 / 661" in text
    assert "-105.0 (+0.0 ± 0.0)" in text and "-104.0 (+1.0 ± 0.9)" in text
    assert "| passed / 5 / 2 (1) |" in text and "| FAILED / 1 / 0 (2) |" in text


def test_evidence_refuses_to_replace_the_working_folder(tmp_path, monkeypatch):
    from nkdefections import evidence

    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="would delete"):
        evidence.run_step("backtest", Path("."), overwrite=True)
    assert (tmp_path / "keep.txt").exists()
