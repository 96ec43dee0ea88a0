"""The explorer's form -> Scenario translation and its error messages (pure: no browser, no fit).

The form must build scenarios with the YAML loader's own constructor, so a bad value gets
the loader's message word for word (only the source, a file path there, reads "explorer
form" here), and the message must land next to the control it is about.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nkdefections.errors import ScenarioError
from nkdefections.explore.form import (
    SOURCE,
    TYPE_FIELDS,
    form_to_scenario,
    locate_error,
    parse_text,
    scenario_to_form,
    threshold_from_form,
)
from nkdefections.scenarios import (
    DEFAULT_SCENARIOS,
    SPEC_TYPES,
    Scenario,
    load_scenario,
    read_scenario_file,
    scenario_from_dict,
)
from nkdefections.validate import parse_thresholds

pytestmark = pytest.mark.pure


def form(drivers: dict, name: str = "mine", **kw) -> dict:
    return {"name": name, "drivers": drivers, **kw}


@pytest.mark.parametrize(
    "text, value",
    [("0.5", 0.5), ("2018", 2018), (" -2.3 ", -2.3), ("1e3", 1000.0), ("", None), ("  ", None), ("abc", "abc")],
)
def test_text_is_read_as_yaml_would_read_it(text, value):
    got = parse_text(text)
    assert got == value and type(got) is type(value)


def test_every_path_type_has_controls_and_the_loader_accepts_every_field():
    assert set(TYPE_FIELDS) == set(SPEC_TYPES), "a path type without controls on the page (or a stale one)"
    sample = {"year": "2018", "until": "2025", "value": "0.5", "start": "2018", "end": "2020", "to_value": "1"}
    sample |= {"from_value": "0.2", "change": "-0.5", "values": {"2017": "1", "2018": "2"}}
    for kind, fields in TYPE_FIELDS.items():
        spec = {"type": kind, **{f: sample[f] for f in fields}, "sd": "0.1", "correlated": True}
        sc = form_to_scenario(form({"border": [spec]}))
        assert sc.drivers["border"][0]["type"] == kind


def test_the_form_builds_the_same_scenario_as_the_yaml_file(tmp_path: Path):
    text = """name: my_thaw
description: Sanctions eased by 2019.
drivers:
  sanctions: {type: ramp, start: 2017, end: 2019, to_value: 5.5}
  border: {type: step, year: 2018, value: 0.5}
  economy: {type: step, value: 1.0, sd: 1.0}
"""
    path = tmp_path / "my_thaw.yaml"
    path.write_text(text)
    from_file = read_scenario_file(path)
    typed = form(
        {
            "sanctions": [{"type": "ramp", "start": "2017", "end": "2019", "to_value": "5.5", "from_value": ""}],
            "border": [{"type": "step", "year": "2018", "value": "0.5", "until": "", "sd": ""}],
            "economy": [{"type": "step", "value": "1.0", "sd": "1.0", "correlated": False}],
        },
        name="my_thaw",
        description="Sanctions eased by 2019.",
    )
    assert form_to_scenario(typed).to_dict() == from_file.to_dict()


@pytest.mark.parametrize("name", DEFAULT_SCENARIOS)
def test_every_shipped_scenario_round_trips_through_the_form(name):
    sc = load_scenario(name)
    back = form_to_scenario(scenario_to_form(sc))
    assert back.to_dict() == sc.to_dict()


def test_a_driver_without_specs_is_left_out_and_holds_its_last_value():
    sc = form_to_scenario(form({"border": [], "economy": [{"type": "step", "value": "1"}]}))
    assert set(sc.drivers) == {"economy"}


BAD = [
    # (spec typed into the form, the same spec in YAML, the control the message belongs to)
    (
        {"type": "ramp", "start": "2020", "end": "2018", "to_value": "1"},
        "{type: ramp, start: 2020, end: 2018, to_value: 1}",
        "border.0.end",
    ),
    ({"type": "step", "value": "abc"}, "{type: step, value: abc}", "border.0.value"),
    ({"type": "step", "value": ""}, "{type: step}", "border.0.value"),
    ({"type": "step", "value": "1", "year": "2018.5"}, "{type: step, value: 1, year: 2018.5}", "border.0.year"),
    ({"type": "step", "value": "1", "sd": "-1"}, "{type: step, value: 1, sd: -1}", "border.0.sd"),
    ({"type": "values", "values": {"2018": "x"}}, "{type: values, values: {2018: x}}", "border.0.values.2018"),
    ({"type": "decay", "value": "1"}, "{type: decay, value: 1}", "border.0.type"),
]


@pytest.mark.parametrize("spec, yaml_spec, field", BAD)
def test_bad_input_gets_the_loaders_message_next_to_its_control(spec, yaml_spec, field, tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text(f"name: mine\ndrivers:\n  border: {yaml_spec}\n")
    with pytest.raises(ScenarioError) as from_file:
        read_scenario_file(path)
    with pytest.raises(ScenarioError) as from_form:
        form_to_scenario(form({"border": [spec]}))
    assert str(from_form.value) == str(from_file.value).replace(str(path), SOURCE)
    (place,) = locate_error(str(from_form.value))
    assert place.field == field
    assert place.message == str(from_form.value)


def test_a_bad_name_is_placed_at_the_name():
    with pytest.raises(ScenarioError, match="name must be an identifier") as err:
        form_to_scenario(form({}, name="my scenario"))
    assert [p.field for p in locate_error(str(err.value))] == ["name"]


def test_a_path_outside_the_horizon_is_placed_at_its_spec():
    sc = form_to_scenario(form({"border": [{"type": "step", "value": "1", "year": "2040"}]}))
    from nkdefections.data import load_data
    from nkdefections.scenarios import scenario_paths

    with pytest.raises(ScenarioError, match="outside the horizon") as err:
        scenario_paths([sc], load_data(history=1))
    assert [p.field for p in locate_error(str(err.value))] == ["border.0.year"]


def test_a_message_naming_no_driver_goes_next_to_the_extrapolating_ones():
    msg = "scenario(s) ['mine']: the paths imply more than 2e+07 expected arrivals a year in some draws; check ..."
    assert [p.field for p in locate_error(msg, ["border", "sanctions"])] == ["border", "sanctions"]
    assert [p.field for p in locate_error(msg)] == ["scenario"]


@pytest.mark.parametrize(
    "typed, cli, field",
    [
        ({"year": "2020", "arrivals": "abc"}, {"year": 2020, "arrivals": "abc"}, "threshold.arrivals"),
        ({"year": "2020", "arrivals": ""}, {"year": 2020, "arrivals": None}, "threshold.arrivals"),
        ({"year": "soon", "arrivals": "2000"}, {"year": "soon", "arrivals": 2000}, "threshold.year"),
    ],
)
def test_a_bad_threshold_gets_the_cli_message(typed, cli, field):
    with pytest.raises(ScenarioError) as from_cli:
        parse_thresholds([cli])
    with pytest.raises(ScenarioError) as from_form:
        threshold_from_form({"threshold": typed})
    assert str(from_form.value) == str(from_cli.value)
    assert [p.field for p in locate_error(str(from_form.value))] == [field]


def test_thresholds_parse_years_and_cumulative():
    assert threshold_from_form({"threshold": {"year": "2020", "arrivals": "2000"}}) == (2020, 2000.0)
    assert threshold_from_form({"threshold": {"year": "cumulative", "arrivals": "2e4"}}) == ("cumulative", 20000.0)


def test_a_saved_scenario_yaml_is_a_valid_scenario_file(tmp_path: Path):
    sc = form_to_scenario(
        form({"economy": [{"type": "values", "values": {"2017": "-1.5", "2018": "0.25"}, "sd": "0.5"}]}, reasoning="x")
    )
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(sc.to_dict(), sort_keys=False))
    assert read_scenario_file(path).to_dict() == sc.to_dict() == scenario_from_dict(sc.to_dict()).to_dict()
    assert isinstance(sc, Scenario)
