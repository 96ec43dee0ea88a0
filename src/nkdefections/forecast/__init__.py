"""Forecasts: one posterior, every scenario, at draw level; contrasts; nowcasts."""

from __future__ import annotations

from nkdefections.forecast.compare import (  # noqa: F401
    SUMMARY_PROBS,
    attribution,
    contrasts,
    default_pairs,
    exceedance,
    summary_by_sex,
    summary_table,
    with_cumulative,
)
from nkdefections.forecast.fit_view import FitSource, FitView, as_fit_view, posterior_arrays  # noqa: F401
from nkdefections.forecast.kernel import (  # noqa: F401
    MAX_LOG_MU,
    aligned_extrapolation,
    check_horizon,
    count_ppf,
    driver_draws,
    forecast,
    history_values,
    poisson_ppf,
)
