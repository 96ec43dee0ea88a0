"""Which scenarios to forecast and how to compare them (:class:`ForecastConfig`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nkdefections.config import Horizon
from nkdefections.constants import CUMULATIVE
from nkdefections.errors import ConfigError, ScenarioError
from nkdefections.scenarios.scenario import Scenario
from nkdefections.validate import check_keys, is_whole, parse_thresholds, seed


@dataclass(frozen=True)
class ForecastConfig:
    """Which scenarios to forecast and how to compare them."""

    scenarios: Sequence[Scenario]
    horizon: Horizon = Horizon()
    seed: int = 0
    baseline: str = "status_quo"
    pairs: Sequence[tuple[str, str]] | None = None
    thresholds: Sequence[tuple[int | str, float]] = ()
    cumulative_window: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not self.scenarios:
            raise ScenarioError("scenarios: none selected; name at least one, e.g. scenarios=[status_quo].")
        names = [s.name for s in self.scenarios]
        for pair in self.pairs or ():
            for name in pair:
                if name not in names:
                    raise ScenarioError(
                        f"compare.pairs: scenario {name!r} is not among the selected scenarios {names}."
                    )
        for year, _ in self.thresholds:
            if year != CUMULATIVE and not self.horizon.start <= int(year) <= self.horizon.end:
                raise ScenarioError(
                    f"compare.thresholds: year {year} is outside the horizon {self.horizon.start}-{self.horizon.end}."
                )
        w = self.cumulative_window
        if w is not None and not (self.horizon.start <= w[0] <= w[1] <= self.horizon.end):
            raise ScenarioError(
                f"compare.cumulative_window: {list(w)} must lie inside the horizon "
                f"{self.horizon.start}-{self.horizon.end}."
            )
        if self.pairs is None and self.baseline not in names and len(names) > 1:
            raise ScenarioError(
                f"compare.baseline: {self.baseline!r} is not among the selected scenarios {names}; "
                "add it to scenarios or set compare.baseline to one of them."
            )

    @classmethod
    def from_dict(
        cls,
        scenarios: Sequence[Scenario],
        forecast: Mapping[str, Any],
        compare: Mapping[str, Any] | None = None,
        *,
        last_year: int | None = None,
    ) -> ForecastConfig:
        """From the ``forecast`` section (``horizon``, ``seed``) and the ``compare`` section
        (``baseline``, ``pairs``, ``thresholds``, ``cumulative_window``) of a config, with the
        already loaded ``scenarios``.  Keys left out take the defaults above; with ``last_year``
        (the fit window's) the horizon starts the year after it unless ``horizon.start`` is given.
        """
        fc = {k: v for k, v in forecast.items() if k != "enabled"}
        check_keys(fc, {"horizon", "seed"}, "forecast")
        cmp = dict(compare or {})
        check_keys(cmp, {"baseline", "pairs", "thresholds", "cumulative_window"}, "compare")
        kw: dict[str, Any] = {"horizon": Horizon.from_dict(dict(fc.get("horizon") or {}), last_year=last_year)}
        if "seed" in fc:
            kw["seed"] = seed(fc["seed"], "forecast.seed")
        if cmp.get("baseline") is not None:
            kw["baseline"] = str(cmp["baseline"])
        pairs = cmp.get("pairs")
        if pairs is not None:
            if not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
                raise ConfigError(f"compare.pairs: {pairs!r} must be a list of [scenario, baseline] pairs.")
            kw["pairs"] = [(str(a), str(b)) for a, b in pairs]
        kw["thresholds"] = parse_thresholds(cmp.get("thresholds"))
        window = cmp.get("cumulative_window")
        if window is not None:
            if not (isinstance(window, (list, tuple)) and len(window) == 2 and all(is_whole(w) for w in window)):
                raise ConfigError(f"compare.cumulative_window: {window!r} must be [first_year, last_year].")
            kw["cumulative_window"] = (int(window[0]), int(window[1]))  # __post_init__ checks it against the horizon
        return cls(scenarios=list(scenarios), **kw)
