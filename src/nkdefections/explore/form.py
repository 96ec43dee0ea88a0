"""The explorer's form as plain data, and its translation to and from a :class:`Scenario`.

The browser sends what the analyst typed, as text: per driver a list of path specs
(``{"type": "step", "value": "0.5", "year": "2018"}``), the scenario's name, description
and reasoning, the baseline and one threshold.  :func:`form_to_scenario` turns the text
into numbers the way a YAML file would be read (``"0.5"`` -> 0.5, ``"2018"`` -> 2018, an
empty field -> the key left out, anything else kept as text) and builds the scenario with
:func:`nkdefections.scenarios.scenario_from_dict`, the constructor the YAML loader uses.
So a bad value gets exactly the loader's message; :func:`locate_error` finds the control
it names, so the page can show it next to that control.

Pure functions, no web framework: ``tests/explore/test_explore_form.py`` runs them without a browser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nkdefections import constants as C
from nkdefections.scenarios import Scenario, scenario_from_dict
from nkdefections.validate import parse_thresholds

#: The ``source`` the explorer's scenarios carry in messages (a file path for a YAML file).
SOURCE = "explorer form"

#: The fields the page offers for each path type (besides ``sd`` and ``correlated``), in display order.
#: They are the keys of the YAML specs; a test checks that every type of ``SPEC_TYPES`` is here and
#: that the loader accepts every field.
TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "hold": ("year", "until"),
    "step": ("value", "year", "until"),
    "ramp": ("start", "end", "to_value", "from_value"),
    "values": ("values",),
    "relative": ("change", "year", "until"),
}
COMMON_FIELDS = ("sd", "correlated")

#: What each field means, shown as the control's label.
FIELD_LABELS = {
    "year": "from year",
    "until": "until year",
    "value": "value",
    "start": "start year",
    "end": "end year",
    "to_value": "to value",
    "from_value": "from value (blank: the value before)",
    "change": "change from the value in force",
    "values": "value per year",
    "sd": "uncertainty s.d.",
    "correlated": "one draw for all years",
}

_INT = re.compile(r"^[-+]?\d+$")


def parse_text(value: Any) -> Any:
    """A typed value as YAML would read it: a number if it is one, ``None`` if blank, else the text.

    ``"0.5"`` -> 0.5, ``"2018"`` -> 2018, ``"1e3"`` -> 1000.0, ``"nan"`` -> nan (which the
    validators refuse as not finite), ``" "`` -> None, ``"abc"`` -> ``"abc"`` (which the
    validators refuse as not a number).  Non-text values pass through.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    if _INT.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _clean_spec(spec: Any) -> Any:
    if not isinstance(spec, Mapping):
        return spec  # the constructor says what is wrong with it
    out: dict[str, Any] = {}
    for key, raw in spec.items():
        if key == "type":
            out[key] = raw
        elif key == "correlated":
            if raw not in (None, False, "", "false"):
                out[key] = True if raw in (True, "true", "on") else raw
        elif key == "values":
            if isinstance(raw, Mapping):
                vals = {y: parse_text(v) for y, v in raw.items()}
                out[key] = {y: v for y, v in vals.items() if v is not None}
            else:
                out[key] = raw
        else:
            v = parse_text(raw)
            if v is not None:
                out[key] = v
    return out


def scenario_dict(form: Mapping[str, Any]) -> dict[str, Any]:
    """The scenario part of the form as the mapping a YAML scenario file holds."""
    drivers: dict[str, Any] = {}
    for d, specs in (form.get("drivers") or {}).items():
        if isinstance(specs, Sequence) and not isinstance(specs, str):
            cleaned = [_clean_spec(s) for s in specs]
            if cleaned:  # no spec: the driver holds its last observed value
                drivers[d] = cleaned
        else:
            drivers[d] = specs
    out: dict[str, Any] = {"name": str(form.get("name") or "").strip(), "drivers": drivers}
    for key in ("description", "reasoning"):
        text = str(form.get(key) or "").strip()
        if text:
            out[key] = text
    if form.get("version") not in (None, ""):
        out["version"] = form["version"]  # the loader checks it (a whole number >= 1)
    return out


def form_to_scenario(form: Mapping[str, Any]) -> Scenario:
    """Build the form's :class:`Scenario` with the YAML loader's constructor (same checks, same messages).

    Raises
    ------
    ScenarioError
        With the loader's message (``scenario 'x' (explorer form), key 'drivers.border[0]',
        key 'end': ...``).
    """
    return scenario_from_dict(scenario_dict(form), source=SOURCE)


def scenario_to_form(scenario: Scenario) -> dict[str, Any]:
    """A scenario as the form shows it: every value as text, every driver with its list of specs."""

    def text(v: Any) -> Any:
        if isinstance(v, bool):
            return v
        if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
            return repr(v)  # 1.0 stays "1.0": a value, not a year
        return str(v)

    drivers = {}
    # the closure lever rides along when the scenario sets it (the page has no control for it yet)
    for d in (*C.DRIVERS, *([C.BORDER_OPEN] if C.BORDER_OPEN in scenario.drivers else [])):
        specs = []
        for s in scenario.drivers.get(d, ()):
            spec: dict[str, Any] = {}
            for k, v in s.items():
                if k == "type":
                    spec[k] = v
                elif k == "values":
                    spec[k] = {str(y): text(x) for y, x in v.items()}
                else:
                    spec[k] = text(v)
            specs.append(spec)
        drivers[d] = specs
    return {
        "name": scenario.name,
        "description": scenario.description,
        "reasoning": scenario.reasoning,
        "version": scenario.version,
        "drivers": drivers,
    }


def threshold_from_form(form: Mapping[str, Any]) -> tuple[int | str, float]:
    """The form's threshold ``{"year": "2020", "arrivals": "2000"}``, checked as ``compare.thresholds`` is."""
    raw = form.get("threshold") or {}
    year = parse_text(raw.get("year"))
    arrivals = parse_text(raw.get("arrivals"))
    ((y, v),) = parse_thresholds([{"year": year, "arrivals": arrivals}])
    return (int(y) if y != C.CUMULATIVE else y), v


@dataclass(frozen=True)
class ErrorPlace:
    """Where on the page a message belongs: a field id like ``border.0.end``, or a section."""

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


_DRIVER_KEY = re.compile(r"key 'drivers\.(\w+)(?:\[(\d+)\])?'(?:\[(\d+)\])?(?:, key '([\w.]+)')?")
#: Spec-level messages of the loader that are about one key of the spec (the control to mark).
_SPEC_MESSAGES = (("ramp end", "end"), ("until ", "until"), ("starts in", "year"))
_THRESHOLD_KEY = re.compile(r"compare\.thresholds(?:\[\d+\])?(?:\.(year|arrivals))?")


def locate_error(message: str, extrapolating: Sequence[str] = ()) -> list[ErrorPlace]:
    """The controls a loader/forecast message is about, from the key it names.

    ``drivers.border[0]`` with key ``end`` -> ``border.0.end``; ``drivers.border`` -> the
    ``border`` section; the scenario's name -> ``name``; a threshold -> ``threshold.year`` /
    ``threshold.arrivals``.  A message that names no driver (the forecast's "more than
    2e+07 expected arrivals" for a value in the wrong units) goes next to the drivers in
    ``extrapolating`` (those whose path leaves the observed range), else to ``scenario``.
    """
    m = _DRIVER_KEY.search(message)
    if m:
        driver, i1, i2, key = m.groups()
        index = i1 if i1 is not None else i2
        if key is None and index is not None:  # a spec-level message about one of its keys
            key = next((k for pat, k in _SPEC_MESSAGES if pat in message), None)
        parts = [driver] + ([index] if index is not None else []) + ([key] if key and index is not None else [])
        return [ErrorPlace(".".join(parts), message)]
    t = _THRESHOLD_KEY.search(message)
    if t:
        key = t.group(1) or ("year" if " year " in message else "arrivals")
        return [ErrorPlace(f"threshold.{key}", message)]
    if "name must be an identifier" in message or "key 'name'" in message:
        return [ErrorPlace("name", message)]
    if extrapolating:
        return [ErrorPlace(d, message) for d in extrapolating]
    return [ErrorPlace("scenario", message)]
