"""The model: the design, the PyMC graph, DefectionModel (fit / gate / save / load) and the refit engine."""

from __future__ import annotations

from nkdefections.model.defection import FORMAT_VERSION, DefectionModel  # noqa: F401
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
from nkdefections.model.sampling import (  # noqa: F401
    FitProgress,
    configure_jax,
    model_code_hash,
    sample_kwargs,
)
