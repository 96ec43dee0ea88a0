"""The evidence behind the model: backtest, comparison, SBC, sensitivity, nowcast validation, the model card."""

from __future__ import annotations

from nkdefections.evidence.runner import STEPS, build_card, run_step  # noqa: F401
