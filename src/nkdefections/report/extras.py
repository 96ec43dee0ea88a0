"""The report's parts that depend on the window and the model: the pre-registration note, the
closure elasticity's line and the by-sex section."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from nkdefections import constants as C
from nkdefections.report.blocks import Block


def window_note(window: tuple[int, int]) -> str:
    """Whether the forecasts are the pre-registered ones (a window ending by 2016) or a live fit's."""
    from nkdefections.data.tables import LAST_OBSERVED_YEAR

    first, last = int(window[0]), int(window[1])
    if last <= LAST_OBSERVED_YEAR:
        return (
            f"Forecasts for {LAST_OBSERVED_YEAR + 1} onward are pre-registered: no observation after "
            f"{LAST_OBSERVED_YEAR} entered the fit."
        )
    return (
        f"Live fit on {first}-{last}: the years after {LAST_OBSERVED_YEAR} come from the user's own files "
        f"(data.files), so these forecasts from {last + 1} are not the project's pre-registered ones (those are "
        f"fitted to 1999-{LAST_OBSERVED_YEAR} on the shipped data)."
    )


def sex_blocks(by_sex: pd.DataFrame, share_effects: pd.DataFrame | None = None) -> list[Block]:
    """The by-sex section: each scenario's first year and cumulative total for women and men, the
    share, and the drivers' effects on the share (``share_effects``, if given)."""
    first = by_sex["year"].iloc[0]
    rows = by_sex[(by_sex["year"] == first) | by_sex["year"].str.startswith(C.CUMULATIVE)]
    cols = ["scenario", "year", "sex", "median", "lower_80", "upper_80", "female_share_median"]
    cols += ["female_share_lower_80", "female_share_upper_80"]
    return [
        ("h3", "Arrivals by sex"),
        (
            "p",
            "Women and men from the model's female share (a logit AR(1) with its own driver effects, fitted to "
            "the published counts by sex): median and 80% interval of each count, and the female share of the "
            "year (of the period, for the cumulative rows). Per year: `forecast_by_sex.csv`.",
        ),
        ("table", (rows[cols], "{:.3g}")),
    ] + _share_effect_blocks(share_effects)


def _share_effect_blocks(share_effects: pd.DataFrame | None) -> list[Block]:
    if share_effects is None or not len(share_effects):
        return []
    return [
        (
            "p",
            "The drivers' effects on the female share (logit per unit, and as percentage points of the share at "
            "the fitted years' mean; median and 90% interval; `share_effects.csv`). With 15 years of counts by "
            "sex, read the intervals, not the medians.",
        ),
        ("table", (share_effects, "{:.3g}")),
    ]


def closure_note(source: str, draws: Any = None) -> str | None:
    """The report's line on the closure elasticity: estimated (with its posterior), assumed, or none."""
    from nkdefections.priors import CLOSURE_ELASTICITY as c

    prior = f"prior N({c['mean']:g}, {c['sd']:g}) truncated to [{c['lower']:g}, {c['upper']:g}]"
    if source == "estimated" and draws is not None:
        q = np.quantile(np.asarray(draws, dtype=float), [0.05, 0.5, 0.95])
        return (
            "The closure elasticity (arrivals scale as open fraction^e) is estimated from the fitted years' "
            f"observed open-border fraction (data.files.border_open): e = {q[1]:.2f} (90% interval "
            f"{q[0]:.2f} to {q[2]:.2f}; {prior})."
        )
    if source == "assumed":
        return (
            "The closure elasticity (arrivals scale as open fraction^e) is an assumption, not an estimate: no "
            f"fitted year had a closed border, so e is drawn from its {prior}."
        )
    return None
