"""Simulation-based calibration and parameter recovery."""

from __future__ import annotations

from nkdefections.evaluate.sbc.calibration import (  # noqa: F401
    SBCResult,
    derive_seed,
    fit_row,
    run_sbc,
)
from nkdefections.evaluate.sbc.ranks import (  # noqa: F401
    LOGLIK,
    SAMPLE,
    SBC_GATE,
    SBC_SAMPLER,
    SEED,
    SIMULATION,
    THIN_TO,
    TRUE_BETA,
    chisq_uniformity_test,
    ecdf_band,
    ecdf_gamma,
    ecdf_uniformity_test,
    element_values,
    null_gamma,
    pot_c_uniformity_test,
    randomized_pit,
    rank_counts,
    sbc_rank,
    thin_indices,
    thin_posterior,
)
from nkdefections.evaluate.sbc.recovery import (  # noqa: F401
    RecoveryResult,
    RecoveryTruth,
    run_recovery,
    simulate_series,
)
from nkdefections.evaluate.sbc.simulate import (  # noqa: F401
    group_of,
    group_summary,
    log_likelihood,
    quantities,
    rank_summary,
    sbc_inputs,
    simulate_prior,
)
