"""Console scripts: the Hydra app and the other commands. The only package that sees a DictConfig."""

from __future__ import annotations

from nkdefections.cli.app import GatherSweep, configs_from_dict, gather_sweep, main  # noqa: F401
