"""The model's arithmetic, shared by the forecast kernel, the backtest, the nowcast, the checks and SBC.

Pure numpy: no PyMC, no xarray beyond reading ``.values``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def flatten_draws(da: Any) -> np.ndarray:
    """Values of a DataArray with leading (chain, draw) dims as (sample, ...)."""
    v = np.asarray(da.values)
    return v.reshape((-1,) + v.shape[2:])
