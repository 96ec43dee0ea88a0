"""What the explorer computes for one state of the form, with the library's public functions.

:class:`Explorer` holds one fitted posterior and the settings of the run it stands for
(horizon, forecast seed, cumulative window).  For a form it builds the scenario and the
baseline, forecasts both with :func:`nkdefections.forecast.forecast` (one call, so they share
the common random numbers) and reads every number off :func:`summary_table`,
:func:`contrasts`, :func:`exceedance` and :func:`attribution`.  The numbers are therefore the
ones ``forecast()`` gives for the same paths and seed, and the ones a CLI run of the saved
scenario writes.  No web framework here: the server only passes JSON in and out.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from nkdefections import constants as C
from nkdefections.config import Horizon
from nkdefections.errors import ScenarioError
from nkdefections.explore.form import (
    ErrorPlace,
    form_to_scenario,
    locate_error,
    scenario_to_form,
    threshold_from_form,
)
from nkdefections.forecast import attribution, contrasts, exceedance, forecast, summary_by_sex, summary_table
from nkdefections.scenarios import (
    Scenario,
    available_scenarios,
    last_observed,
    load_scenario,
    observed_range,
    scenario_paths,
)

if TYPE_CHECKING:  # pragma: no cover
    from nkdefections.model.defection import DefectionModel


class FormError(Exception):
    """The form cannot be forecast: the loader's (or forecast's) messages and the controls they belong to."""

    def __init__(self, places: Sequence[ErrorPlace]) -> None:
        super().__init__("; ".join(p.message for p in places))
        self.places = list(places)


@dataclass(frozen=True)
class Settings:
    """What the explorer's numbers depend on besides the form: the run it reproduces.

    ``search_path``: the user's config folders (``--config-dir``), whose ``scenario/`` is
    searched before the shipped scenarios; ``save_dir``: where "Save scenario" writes;
    ``overrides``: the Hydra overrides of the run (repeated in the reproduction command).
    """

    horizon: Horizon = Horizon()
    seed: int = 0
    baseline: str = "status_quo"
    threshold: tuple[int | str, float] = (2020, 2000.0)
    window: tuple[int, int] | None = None
    search_path: tuple[Path, ...] = ()
    save_dir: Path = Path("nkdefections-configs/scenario")
    overrides: tuple[str, ...] = ()
    source: str = "given in Python"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evaluation:
    """One form, forecast: the scenario, the baseline and the library's tables."""

    scenario: Scenario
    baseline: Scenario
    threshold: tuple[int | str, float]
    forecast: xr.Dataset
    summary: pd.DataFrame
    contrasts: pd.DataFrame
    exceedance: pd.DataFrame
    attribution: pd.DataFrame
    seconds: float
    cpu_seconds: float = 0.0  # CPU time of this thread: what the update costs on an idle machine


class Explorer:
    """One posterior, many what-ifs: evaluates the explorer's form.

    Parameters
    ----------
    model
        A fitted :class:`~nkdefections.model.DefectionModel` (cached default fit, ``--fit``
        file or a run folder's ``posterior.nc``).
    settings
        Horizon, forecast seed, baseline, threshold and folders (:class:`Settings`).
    """

    def __init__(self, model: DefectionModel, settings: Settings) -> None:
        self.model = model
        self.settings = settings
        self.fit = model.fit_view()  # flattened once; every what-if forecasts from it
        self.beta = self.fit.arrays["beta"]
        self.last = last_observed(model.data)
        self.range = observed_range(model.data)
        self.memo: dict[tuple, tuple[pd.DataFrame, pd.DataFrame]] = {}
        self.recent: tuple[str, tuple[xr.Dataset, pd.DataFrame, pd.DataFrame, pd.DataFrame]] | None = None

    # ------------------------------------------------------------ scenarios
    def scenario_names(self) -> list[str]:
        """Shipped scenarios, the user's (``--config-dir``) and the ones saved here."""
        names = set(available_scenarios(search_path=self.settings.search_path))
        if self.settings.save_dir.is_dir():
            names |= {p.stem for p in self.settings.save_dir.glob("*.yaml")}
        return sorted(names)

    def load(self, name: str) -> Scenario:
        """A scenario by name: the save folder first, then the user's folders, then the shipped ones."""
        if not str(name).isidentifier():  # names only: the page never reads a file by its path
            known = self.scenario_names()
            raise ScenarioError(f"unknown scenario {name!r}: give the name of one of {known}.")
        saved = self.settings.save_dir / f"{name}.yaml"
        if saved.is_file():
            return load_scenario(saved)
        return load_scenario(name, search_path=self.settings.search_path)

    def start_form(self, name: str) -> dict[str, Any]:
        """A loaded scenario as a starting point; renamed ``<name>_edit`` if it is the baseline."""
        form = scenario_to_form(self.load(name))
        if form["name"] == self.settings.baseline:
            form["name"] = f"{form['name']}_edit"
        return form

    # ------------------------------------------------------------ evaluation
    def extrapolating(self, scenario: Scenario) -> list[str]:
        """Drivers whose path leaves the observed range somewhere (for placing unit errors)."""
        try:
            paths = scenario_paths([scenario], self.model.data, self.settings.horizon)
        except ScenarioError:
            return []
        flags = paths["extrapolated"].values[0].any(axis=0)
        return [d for d, f in zip(C.DRIVERS, flags, strict=True) if f]

    def evaluate(self, form: Mapping[str, Any]) -> Evaluation:
        """Forecast the form's scenario and its baseline together; every table from the library.

        Raises
        ------
        FormError
            With the loader's or the forecast's message and the control(s) it belongs to.
        """
        places: list[ErrorPlace] = []  # every independent part is checked, so each control shows its message
        scenario = baseline = threshold = None
        try:
            scenario = form_to_scenario(form.get("scenario") or {})
        except ScenarioError as exc:
            places += locate_error(str(exc))
        try:
            baseline = self.load(str(form.get("baseline") or self.settings.baseline))
        except ScenarioError as exc:
            places.append(ErrorPlace("baseline", str(exc)))
        try:
            threshold = threshold_from_form(form)
        except ScenarioError as exc:
            places += locate_error(str(exc))
        if places or scenario is None or baseline is None or threshold is None:
            raise FormError(places)
        t0, c0 = time.perf_counter(), time.thread_time()
        # typing a description, or changing only the threshold, leaves the forecast as it was
        key = json.dumps([[x.name, x.drivers] for x in (scenario, baseline)], sort_keys=True, default=str)
        if self.recent is not None and self.recent[0] == key:
            fc, summary, contr, attr = self.recent[1]
            exc = self.per_scenario(fc, scenario.name, baseline.name, threshold)[1]
        else:
            s = self.settings
            try:
                fc = forecast(self.fit, [scenario, baseline], s.horizon, seed=s.seed)
                pair = [(scenario.name, baseline.name)]
                summary, exc = self.per_scenario(fc, scenario.name, baseline.name, threshold)
                contr = contrasts(fc, pair, window=s.window)
                attr = attribution(fc, self.beta, pair, window=s.window)
            except ScenarioError as err:
                msg = str(err)
                if "selected twice" in msg:
                    raise FormError([ErrorPlace("name", msg)]) from err
                raise FormError(locate_error(msg, self.extrapolating(scenario))) from err
            self.recent = (key, (fc, summary, contr, attr))
        times = (time.perf_counter() - t0, time.thread_time() - c0)
        return Evaluation(scenario, baseline, threshold, fc, summary, contr, exc, attr, *times)

    def per_scenario(
        self, fc: xr.Dataset, name: str, baseline: str, threshold: tuple[int | str, float]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """:func:`summary_table` and :func:`exceedance` of both scenarios, the baseline's from a memo.

        Both functions treat each scenario on its own, so the baseline's rows depend only on
        its own draws and flags: while those are unchanged (the usual case: the analyst moves
        the scenario's controls), its rows are reused instead of recomputed.  The memo is keyed
        by a hash of those draws, so it can never serve rows of other numbers.
        """
        w = self.settings.window
        sub = fc.sel({C.SCENARIO: [baseline]})
        digest = hashlib.blake2b(digest_size=16)
        for var in (C.OBSERVED, "extrapolated"):
            digest.update(np.ascontiguousarray(sub[var].values).tobytes())
        key = (digest.hexdigest(), w, threshold)
        if key not in self.memo:
            self.memo.clear()  # one baseline at a time
            self.memo[key] = (summary_table(sub, w), exceedance(sub, [threshold], window=w))
        base_summary, base_exc = self.memo[key]
        own = fc.sel({C.SCENARIO: [name]})
        summary = pd.concat([summary_table(own, w), base_summary], ignore_index=True)
        exc = pd.concat([exceedance(own, [threshold], window=w), base_exc], ignore_index=True)
        return summary, exc

    # ------------------------------------------------------------ tables
    def comparison(self, ev: Evaluation) -> list[dict[str, Any]]:
        """Per year and cumulative: the scenario's and the baseline's forecast and their difference.

        Plain rows (the page redraws them on every change; pandas indexing would cost more
        than the numbers): the library's ``summary_table`` and ``contrasts`` rows, side by side.
        """
        a, b = ev.scenario.name, ev.baseline.name
        recs = ev.summary.to_dict("records")
        sa = {r["year"]: r for r in recs if r[C.SCENARIO] == a}
        sb = {r["year"]: r for r in recs if r[C.SCENARIO] == b}
        ct = {r["year"]: r for r in ev.contrasts.to_dict("records")}
        sex = self.by_sex(ev)
        rows = []
        for year, ra in sa.items():
            rb, rc = sb[year], ct[year]
            rows.append(
                {
                    "year": year,
                    "scenario": a,
                    **{k: float(ra[k]) for k in ("median", "lower_50", "upper_50", "lower_80", "upper_80")},
                    **{k: float(ra[k]) for k in ("lower_95", "upper_95")},
                    "baseline": b,
                    "baseline_median": float(rb["median"]),
                    "baseline_lower_80": float(rb["lower_80"]),
                    "baseline_upper_80": float(rb["upper_80"]),
                    "median_difference": float(rc["median_difference"]),
                    "difference_lower_90": float(rc["lower_90"]),
                    "difference_upper_90": float(rc["upper_90"]),
                    "prob_greater": float(rc["prob_greater"]),
                    "extrapolated": bool(ra["extrapolated"]),
                    "extrapolated_drivers": str(ra["extrapolated_drivers"]),
                    **sex.get(year, {}),
                }
            )
        return rows

    def by_sex(self, ev: Evaluation) -> dict[str, dict[str, float]]:
        """Per year label: the scenario's women and men (median, 80%) and female share, for a by-sex fit; {} else."""
        if C.FEMALE not in ev.forecast:
            return {}
        t = summary_by_sex(ev.forecast.sel({C.SCENARIO: [ev.scenario.name]}), self.settings.window)
        out: dict[str, dict[str, float]] = {}
        for r in t.to_dict("records"):
            row = out.setdefault(r["year"], {"female_share_median": float(r["female_share_median"])})
            for k in ("median", "lower_80", "upper_80"):
                row[f"{r['sex']}_{k}"] = float(r[k])
        return out

    def extrapolation(self, ev: Evaluation) -> list[dict[str, Any]]:
        """Per driver that leaves its observed range: the path years and the arrival years it reaches."""
        fc = ev.forecast
        i = [str(n) for n in fc[C.SCENARIO].values].index(ev.scenario.name)
        years = fc[C.YEAR_FUTURE].values
        path_flags = fc["path_extrapolated"].values[i]  # (year, driver), calendar years of the path
        flags = fc["extrapolated"].values[i]  # as the drivers enter arrivals (lagged)
        means = fc["path_mean"].values[i]
        out = []
        for k, d in enumerate(C.DRIVERS):
            if not (path_flags[:, k].any() or flags[:, k].any()):
                continue
            lo, hi = self.range[d]
            out.append(
                {
                    "driver": d,
                    "path_years": [int(y) for y in years[path_flags[:, k]]],
                    "arrival_years": [int(y) for y in years[flags[:, k]]],
                    "observed_min": lo,
                    "observed_max": hi,
                    "path_min": float(np.min(means[:, k])),
                    "path_max": float(np.max(means[:, k])),
                }
            )
        return out

    def attribution_rows(self, ev: Evaluation) -> list[dict[str, Any]]:
        """Each driver's part of the cumulative gap to the baseline (expected arrivals)."""
        return [
            {
                "driver": r["driver"],
                "year": r["year"],
                "median": float(r["median_contribution"]),
                "mean": float(r["mean_contribution"]),
                "lower_90": float(r["lower_90"]),
                "upper_90": float(r["upper_90"]),
            }
            for r in ev.attribution.to_dict("records")
            if str(r["year"]).startswith(C.CUMULATIVE)
        ]
