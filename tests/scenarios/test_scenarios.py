"""Scenario path specs (pure: no PyMC, no sampling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nkdefections import constants as C
from nkdefections.config import Horizon
from nkdefections.data.load import load_data
from nkdefections.errors import ScenarioError
from nkdefections.scenarios import (
    Scenario,
    available_scenarios,
    last_observed,
    load_scenario,
    observed_range,
    scenario_from_dict,
    scenario_paths,
)

pytestmark = pytest.mark.pure

LAST = {"border": 1.25, "economy": 3.9, "sanctions": 8.0}
H = Horizon(2017, 2024)
B, E, S = (C.DRIVERS.index(d) for d in ("border", "economy", "sanctions"))


def path(drivers, horizon=H):
    mean, sd, shared = Scenario("t", drivers=drivers).path(LAST, horizon)
    return mean, sd, shared


def test_unnamed_drivers_hold_last_observed():
    mean, sd, _ = path({})
    assert mean.shape == (8, 3)
    np.testing.assert_array_equal(mean[:, B], 1.25)
    np.testing.assert_array_equal(mean[:, S], 8.0)
    assert (sd == 0).all()


def test_step_relative_hold_and_values():
    mean, _, _ = path(
        {
            "border": {"type": "step", "year": 2019, "value": 0.0},
            "sanctions": {"type": "relative", "change": -2.5},
            "economy": {"type": "values", "values": {2017: -1.0, 2018: -2.0}},
        }
    )
    np.testing.assert_array_equal(mean[:, B], [1.25, 1.25, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(mean[:, S], 5.5)
    # explicit values, then the last value carries forward
    np.testing.assert_array_equal(mean[:, E], [-1.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0])


def test_ramp_is_linear_from_the_value_before_and_holds_its_end():
    mean, _, _ = path({"sanctions": {"type": "ramp", "start": 2017, "end": 2020, "to_value": 12.0}})
    np.testing.assert_allclose(mean[:, S], [9.0, 10.0, 11.0, 12.0, 12, 12, 12, 12])
    mean, _, _ = path({"border": {"type": "ramp", "start": 2018, "end": 2019, "from_value": 0.0, "to_value": 1.0}})
    np.testing.assert_allclose(mean[:, B], [1.25, 0.5, 1.0, 1.0, 1, 1, 1, 1])


def test_sequence_of_specs_and_until():
    mean, sd, _ = path(
        {
            "economy": [
                {"type": "step", "year": 2017, "until": 2018, "value": -3.0, "sd": 1.0},
                {"type": "ramp", "start": 2019, "end": 2020, "to_value": 1.0},
            ]
        }
    )
    np.testing.assert_allclose(mean[:, E], [-3, -3, -1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(sd[:, E], [1, 1, 0, 0, 0, 0, 0, 0])


def test_correlated_uncertainty_gets_a_shared_group():
    _, sd, shared = path({"economy": {"type": "step", "value": -2.0, "sd": 0.5, "correlated": True}})
    assert (sd[:, E] == 0.5).all() and len(set(shared[:, E])) == 1 and shared[0, E] > 0


@pytest.mark.parametrize(
    "drivers, message",
    [
        ({"borders": {"type": "hold"}}, "unknown driver(s) ['borders']"),
        ({"border": {"type": "jump"}}, "unknown path type 'jump'"),
        ({"border": {"type": "step"}}, "key 'value': missing"),
        ({"border": {"type": "step", "value": None}}, "key 'value': missing"),
        ({"border": {"type": "step", "value": "high"}}, "key 'value': 'high' is not a finite number"),
        ({"border": {"type": "ramp", "start": 2020, "end": 2018, "to_value": 1}}, "ramp end 2018 must come after"),
        ({"border": {"type": "step", "value": 1, "colour": "red"}}, "unknown key(s) ['colour']"),
        ({"border": {"type": "step", "value": 1, "sd": -1}}, "key 'sd': -1.0 must be >= 0"),
        ({"border": {"type": "step", "year": 2018.5, "value": 1}}, "key 'year': 2018.5 is not a year"),
        ({"border": {"type": "values", "values": {}}}, "non-empty mapping"),
    ],
)
def test_bad_specs_name_the_key(drivers, message):
    with pytest.raises(ScenarioError) as err:
        Scenario("bad", drivers=drivers, source="configs/scenario/bad.yaml")
    assert message in str(err.value)
    assert "configs/scenario/bad.yaml" in str(err.value)


@pytest.mark.parametrize(
    "drivers, message",
    [
        ({"border": {"type": "step", "year": 2040, "value": 1}}, "outside the horizon 2017-2024"),
        ({"border": {"type": "values", "values": {2016: 1.0}}}, "outside the horizon"),
        (
            {"border": [{"type": "step", "year": 2018, "value": 1}, {"type": "step", "year": 2018, "value": 2}]},
            "already set by another spec",
        ),
        (
            {"border": [{"type": "step", "year": 2017, "until": 2020, "value": 1}, {"type": "hold", "year": 2019}]},
            "already set by another spec",
        ),
    ],
)
def test_path_level_errors(drivers, message):
    with pytest.raises(ScenarioError, match="drivers.border") as err:
        path(drivers)
    assert message in str(err.value)


def test_shipped_scenarios_load_and_have_reasoning():
    names = available_scenarios()
    assert {
        "status_quo",
        "border_crackdown",
        "border_reopening",
        "sanctions_tightened",
        "sanctions_relief",
        "economic_crisis",
        "combined_stress",
    } <= set(names)
    ds = load_data(history=1)
    scs = [load_scenario(n) for n in names]
    for s in scs:
        assert s.description and len(s.reasoning) > 80, s.name
    paths = scenario_paths(scs, ds)
    assert paths["path_mean"].dims == (C.SCENARIO, C.YEAR_FUTURE, C.DRIVER)
    crack = paths["path_mean"].sel(scenario="border_crackdown", driver="border")
    assert np.allclose(crack, 2.25)  # "as large again as 2012's": +1 unit on 2016's 1.25
    assert np.allclose(paths["path_mean"].sel(scenario="border_reopening", driver="border"), 0.0)
    ext = paths["extrapolated"]
    assert bool(ext.sel(scenario="border_crackdown", driver="border").all())
    # status quo holds what is in force at the end of 2016: sanctions 9.5, above every yearly index
    # 1999-2016 (max 8.14, which pro-rates the March and November 2016 measures): an extrapolation
    sq = paths["path_mean"].sel(scenario="status_quo")
    assert np.allclose(sq.sel(driver="sanctions"), 9.5) and np.allclose(sq.sel(driver="border"), 1.25)
    assert bool(ext.sel(scenario="status_quo", driver="sanctions").all())
    assert not bool(ext.sel(scenario=["status_quo", "border_reopening"], driver=["border", "economy"]).any())


def test_unknown_scenario_lists_the_known_ones():
    with pytest.raises(ScenarioError) as err:
        load_scenario("no_such_scenario")
    msg = str(err.value)
    assert "unknown scenario 'no_such_scenario'" in msg and "status_quo" in msg and "border_crackdown" in msg


def test_scenario_file_errors_name_the_file(tmp_path: Path):
    (tmp_path / "typo.yaml").write_text("name: typo\ndrivers:\n  border: {type: step, year: 2018}\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario("typo", tmp_path)
    assert str(tmp_path / "typo.yaml") in str(err.value) and "key 'value': missing" in str(err.value)
    (tmp_path / "extra.yaml").write_text("name: extra\nfoo: 1\n")
    with pytest.raises(ScenarioError, match=r"unknown key\(s\) \['foo'\]"):
        load_scenario("extra", tmp_path)


def test_duplicate_scenarios_refused():
    ds = load_data(history=1)
    with pytest.raises(ScenarioError, match="selected twice"):
        scenario_paths([Scenario("a"), Scenario("a")], ds)


def test_round_trip_and_reference_values():
    s = load_scenario("economic_crisis")
    again = scenario_from_dict(s.to_dict())
    assert again.to_dict() == s.to_dict()
    ds = load_data(history=1)
    last = last_observed(ds)
    # in force at the end of 2016 (hold), and the pro-rated 2016 index (hold with reading: prorated)
    assert last == {
        "border": 1.25,
        "sanctions": 9.5,
        "economy": 3.9,
        "border_prorated": 1.25,
        "sanctions_prorated": pytest.approx(8.1448, abs=1e-3),
        "economy_prorated": 3.9,
    }
    h = Horizon(2017, 2019)
    held = Scenario("h", drivers={"sanctions": {"type": "hold"}}).path(last, h)[0][:, 2]
    prorated = Scenario("p", drivers={"sanctions": {"type": "hold", "reading": "prorated"}}).path(last, h)[0][:, 2]
    relative = Scenario("r", drivers={"sanctions": {"type": "relative", "change": 1.0}}).path(last, h)[0][:, 2]
    assert np.allclose(held, 9.5) and np.allclose(prorated, 8.1448, atol=1e-3) and np.allclose(relative, 10.5)
    with pytest.raises(ScenarioError, match=r"key 'reading': 'latest' is not one of \['in_force', 'prorated'\]"):
        Scenario("bad", drivers={"sanctions": {"type": "hold", "reading": "latest"}})
    rng = observed_range(ds)
    assert rng["economy"] == (-2.3, 6.1) and rng["border"] == (0.0, 1.25)


def test_forecast_config_checks_pairs_and_threshold_years_before_any_fit():
    from nkdefections.forecast.config import ForecastConfig

    sq, other = Scenario("status_quo"), Scenario("other")
    with pytest.raises(ScenarioError, match="compare.pairs: scenario 'nosuch'"):
        ForecastConfig(scenarios=[sq, other], pairs=[("nosuch", "status_quo")])
    with pytest.raises(ScenarioError, match="compare.thresholds: year 2040 is outside the horizon 2017-2030"):
        ForecastConfig(scenarios=[sq, other], thresholds=[(2040, 1.0)])
    with pytest.raises(ScenarioError, match=r"compare.cumulative_window: \[2016, 2020\] must lie inside"):
        ForecastConfig(scenarios=[sq, other], cumulative_window=(2016, 2020))
    ForecastConfig(scenarios=[sq, other], thresholds=[("cumulative", 1.0), (2030, 5.0)], cumulative_window=(2017, 2020))


def test_values_keys_must_be_whole_years():
    with pytest.raises(ScenarioError, match="2017.7 is not a year"):
        Scenario("v", drivers={"border": {"type": "values", "values": {2017.7: 1.0}}})


def test_the_closure_lever_is_a_fraction_of_the_border_left_open():
    h = Horizon(2017, 2020)
    s = Scenario("c", drivers={"border_open": {"type": "step", "year": 2018, "value": 0.1, "sd": 0.05}})
    values, sd = s.open_border(h)
    np.testing.assert_allclose(values, [1.0, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(sd, [0.0, 0.05, 0.05, 0.05])
    np.testing.assert_allclose(Scenario("none").open_border(h)[0], 1.0)
    with pytest.raises(ScenarioError, match=r"drivers.border_open.: 1.5 in 2017 is not an open-border fraction"):
        Scenario("bad", drivers={"border_open": {"type": "step", "value": 1.5}}).open_border(h)
    with pytest.raises(ScenarioError, match="lever 'border_open'"):
        Scenario("typo", drivers={"border_opened": {"type": "hold"}})
    ds = load_data(history=1)
    paths = scenario_paths([s, Scenario("sq")], ds, h)
    ext = paths["extrapolated"].sel(driver="border")
    assert ext.sel(scenario="c").values.tolist() == [False, True, True, True]  # a closure was never observed
    assert not ext.sel(scenario="sq").any()
