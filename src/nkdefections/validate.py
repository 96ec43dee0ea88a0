"""Value checks shared by every config, scenario and input parser.

One definition of "a number", "a whole number", "a seed", "one of these options" and
"only these keys", so every module rejects the same values with the same kind of message:
``<key>: <value> <what is wrong>`` and, where the caller gives one, the fix.  ``True`` and
``False`` are never numbers here (``bool`` is a subclass of ``int`` in Python, which is why
the guards exist).  Each check raises the exception class the caller passes (the package's
own, from :mod:`nkdefections.errors`; :class:`ConfigError` by default).

Imports only :mod:`nkdefections.errors` and :mod:`nkdefections.constants`: it sits below every other module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from nkdefections.constants import CUMULATIVE
from nkdefections.errors import ConfigError, ScenarioError

__all__ = [
    "check_keys",
    "choice",
    "is_real",
    "is_whole",
    "number",
    "parse_thresholds",
    "seed",
    "whole",
    "whole_number",
    "whole_valued",
    "year_key",
]


def is_whole(value: Any) -> bool:
    """True for a Python or numpy integer that is not a bool."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def is_real(value: Any, *, finite: bool = False) -> bool:
    """True for a Python or numpy real number that is not a bool (and finite, when asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return not finite or math.isfinite(float(value))


def number(
    value: Any, key: str, *, error: type[Exception] = ConfigError, finite: bool = True, what: str | None = None
) -> float:
    """``value`` as a float, else ``error("<key>: <value> is not a number.")``.

    ``finite`` also rejects NaN and infinities; ``what`` replaces the "is not a number" text.
    """
    if not is_real(value):
        raise error(f"{key}: {value!r} {what or 'is not a number'}.")
    if finite and not math.isfinite(float(value)):
        raise error(f"{key}: {value!r} {what or 'is not finite'}.")
    return float(value)


def whole(
    value: Any,
    key: str,
    *,
    minimum: int | None = None,
    error: type[Exception] = ConfigError,
    what: str = "is not a whole number",
) -> int:
    """``value`` as an int (a Python or numpy integer, not a bool), at least ``minimum`` when given."""
    if not is_whole(value):
        raise error(f"{key}: {value!r} {what}.")
    if minimum is not None and value < minimum:
        raise error(f"{key}: {value} must be >= {minimum}.")
    return int(value)


def whole_valued(values: Any) -> np.ndarray:
    """Element-wise: finite and a whole number, whatever the dtype (``3.0`` is whole; ``3.5``,
    NaN and infinities are not).  The rule for arrays of counts read from files or tables,
    where a float dtype is normal; scalar config values use :func:`is_whole` (an integer type)."""
    a = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(a) & (a == np.round(a))


def whole_number(value: Any, key: str, *, what: str = "a whole number", error: type[Exception] = ConfigError) -> int:
    """``value`` as an int when it holds a whole number: an integer, a whole float (``2010.0``) or its
    text (``"2010"``); never a bool, NaN or infinity.  Else ``error("<key>: <value> is not <what> (a
    whole number).")``.  For values computed or read as floats; config values use :func:`whole`."""
    try:
        if isinstance(value, (bool, np.bool_)):
            raise ValueError(value)
        f = float(value)
    except (TypeError, ValueError):
        raise error(f"{key}: {value!r} is not {what} (a whole number).") from None
    if not math.isfinite(f) or f != int(f):
        raise error(f"{key}: {value!r} is not {what} (a whole number).")
    return int(f)


def year_key(value: Any, key: str, *, error: type[Exception] = ConfigError) -> int:
    """A mapping key that names a year: an integer, its text (``"2020"``, as YAML and JSON keys
    arrive) or a whole float (``2020.0``); never a bool."""
    try:
        if isinstance(value, (bool, np.bool_)) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value)
    except (TypeError, ValueError):
        raise error(f"{key}: {value!r} is not a year.") from None


def seed(value: Any, key: str, *, error: type[Exception] = ConfigError) -> int:
    """A random seed: a whole number >= 0."""
    if not is_whole(value) or value < 0:
        raise error(f"{key}: {value!r} must be a whole number >= 0.")
    return int(value)


def choice(value: Any, options: Iterable[str], key: str, *, error: type[Exception] = ConfigError) -> str:
    """``value`` if it is one of ``options``, else an error listing them."""
    options = tuple(options)
    if value not in options:
        raise error(f"{key}: unknown option {value!r}; choose one of {list(options)}.")
    return str(value)


def check_keys(
    given: Mapping[str, Any], allowed: Iterable[str], prefix: str, *, error: type[Exception] = ConfigError
) -> None:
    """Fail on any key of ``given`` outside ``allowed``, naming the unknown and the allowed keys."""
    allowed = set(allowed)
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise error(f"{prefix}: unknown key(s) {unknown}; allowed keys are {sorted(allowed)}.")


def parse_thresholds(spec: Any) -> list[tuple[int | str, float]]:
    """Validate thresholds ``[{year: 2020, arrivals: 2000}, ...]`` (year may be ``cumulative``)."""
    if spec is None:
        return []
    if not isinstance(spec, Sequence) or isinstance(spec, str):
        raise ScenarioError(f"compare.thresholds: expected a list of {{year, arrivals}} mappings, got {spec!r}.")
    out: list[tuple[int | str, float]] = []
    for i, item in enumerate(spec):
        key = f"compare.thresholds[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"year", "arrivals"}:
            raise ScenarioError(f"{key}: expected a mapping with keys 'year' and 'arrivals', got {item!r}.")
        value = item["arrivals"]
        if not is_real(value, finite=True):
            raise ScenarioError(f"{key}.arrivals: {value!r} is not a number; write e.g. arrivals: 2000.")
        year = item["year"]
        if year != CUMULATIVE and not is_whole(year):
            raise ScenarioError(f"{key}.year: {year!r} must be a forecast year or 'cumulative'.")
        out.append((year, float(value)))
    return out
