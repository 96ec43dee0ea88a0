"""The shared value checks: bools are never numbers, messages name the key, the caller picks the error class."""

import math

import numpy as np
import pytest

from nkdefections.errors import ConfigError, ScenarioError
from nkdefections.validate import check_keys, choice, is_real, is_whole, number, seed, whole

pytestmark = pytest.mark.pure


@pytest.mark.parametrize("v", [True, False, np.bool_(True)])
def test_bools_are_not_numbers(v):
    assert not is_whole(v)
    assert not is_real(v)
    with pytest.raises(ConfigError, match="k: .* is not a whole number"):
        whole(v, "k")
    with pytest.raises(ConfigError, match="is not a number"):
        number(v, "k")


def test_whole_accepts_numpy_ints_and_checks_minimum():
    assert whole(np.int64(3), "k", minimum=0) == 3
    assert type(whole(np.int64(3), "k")) is int
    with pytest.raises(ConfigError, match="k: -1 must be >= 0"):
        whole(-1, "k", minimum=0)
    with pytest.raises(ConfigError, match="k: 2.0 is not a whole number"):
        whole(2.0, "k")


def test_number_finite_and_custom_text_and_error_class():
    assert number(np.float32(0.5), "k") == 0.5
    with pytest.raises(ConfigError, match="is not finite"):
        number(math.inf, "k")
    assert number(math.inf, "k", finite=False) == math.inf
    with pytest.raises(ScenarioError, match="where, key 'x': 'a' is not a finite number"):
        number("a", "where, key 'x'", error=ScenarioError, what="is not a finite number")
    assert is_real(1.0, finite=True) and not is_real(math.nan, finite=True)


def test_seed_choice_keys():
    assert seed(0, "s") == 0
    for bad in (-1, True, 1.5):
        with pytest.raises(ConfigError, match="s: .* must be a whole number >= 0"):
            seed(bad, "s")
    assert choice("a", ("a", "b"), "c") == "a"
    with pytest.raises(ConfigError, match=r"c: unknown option 'z'; choose one of \['a', 'b'\]"):
        choice("z", ("a", "b"), "c")
    check_keys({"a": 1}, {"a", "b"}, "p")
    with pytest.raises(ConfigError, match=r"p: unknown key\(s\) \['q'\]; allowed keys are \['a', 'b'\]"):
        check_keys({"q": 1}, {"a", "b"}, "p")


def test_no_hand_written_bool_guards_left_in_owned_layers():
    """Every ``isinstance(x, bool)`` number guard outside cli/ goes through validate.py."""
    import pathlib

    src = pathlib.Path(__file__).resolve().parents[1] / "src" / "nkdefections"
    offenders = []
    for path in src.rglob("*.py"):
        rel = path.relative_to(src).as_posix()
        if rel in ("validate.py",) or rel.startswith("cli/"):
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if "isinstance(" in line and ", bool)" in line and "(int" in line:
                offenders.append(f"{rel}:{i}: {line.strip()}")
    assert not offenders, "use nkdefections.validate (is_whole/is_real/whole/number):\n" + "\n".join(offenders)


def test_whole_valued_is_the_rule_for_arrays_of_counts():
    from nkdefections.validate import whole_valued

    got = whole_valued([0, 3.0, 3.5, np.nan, np.inf, -2.0, 1e6])
    assert got.tolist() == [True, True, False, False, False, True, True]
    assert whole_valued(np.array([1, 2], dtype=np.int64)).all()


@pytest.mark.parametrize("key, year", [(2020, 2020), ("2020", 2020), (2020.0, 2020), (np.int64(2019), 2019)])
def test_year_key_accepts_the_forms_yaml_and_json_give(key, year):
    from nkdefections.validate import year_key

    assert year_key(key, "values") == year


@pytest.mark.parametrize("key", [True, 2020.5, "twenty", None])
def test_year_key_refuses_anything_else_naming_the_key(key):
    from nkdefections.errors import ScenarioError
    from nkdefections.validate import year_key

    with pytest.raises(ScenarioError, match=r"scenario x, key 'values': .* is not a year"):
        year_key(key, "scenario x, key 'values'", error=ScenarioError)
