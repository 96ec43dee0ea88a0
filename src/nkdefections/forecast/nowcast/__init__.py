"""Nowcasting a year's arrivals from its year-to-date count."""

from __future__ import annotations

from nkdefections.forecast.nowcast.nowcast import (  # noqa: F401
    model_prior,
    nowcast,
    nowcast_summary,
)
from nkdefections.forecast.nowcast.share import (  # noqa: F401
    INTERVALS,
    MONTHS,
    N_FULL,
    N_NEXT,
    PRIORS,
    SAMPLE,
    SHARE_PRIORS,
    ShareFit,
    betabinom_logpmf,
    binom_logpmf,
    check_month_day,
    ess,
    fit_share_curve,
    naive_estimate,
    partial_loglik,
    pmf_crps,
    pmf_pit,
    pmf_quantile,
    share_curve,
    share_pairs,
    systematic_resample,
    year_fraction,
)
