"""Scenarios: named future paths of the drivers (plain data, numpy only)."""

from __future__ import annotations

from nkdefections.scenarios.paths import last_observed, observed_range, scenario_paths  # noqa: F401
from nkdefections.scenarios.scenario import (  # noqa: F401
    DEFAULT_SCENARIOS,
    SPEC_TYPES,
    Scenario,
    available_scenarios,
    load_scenario,
    read_scenario_file,
    scenario_dir,
    scenario_dirs,
    scenario_from_dict,
)
