"""The model: the design, the PyMC graph, DefectionModel (fit / gate / save / load) and the refit engine."""

from __future__ import annotations

from nkdefections.model.defection import (  # noqa: F401
    FORMAT_VERSION,
    DefectionModel,
    model_code_hash,
    quantile_label,
    sample_kwargs,
)
from nkdefections.model.diagnostics import (  # noqa: F401
    ConvergenceReport,
    check_convergence,
    diagnostics_table,
)
from nkdefections.model.graph import (  # noqa: F401
    EVAL_DATA,
    Design,
    build_model,
    design,
    parameter_names,
)
