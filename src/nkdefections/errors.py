"""The package's own exceptions.

Every message says what was wrong, where (file and row, or config key) and how
to fix it.  All derive from :class:`NKDefectionsError` so callers can catch one
type.
"""

from __future__ import annotations


class NKDefectionsError(Exception):
    """Base class of every error nkdefections raises on purpose."""


class DataValidationError(NKDefectionsError, ValueError):
    """A data file is malformed, incomplete or does not match its manifest."""


class ConfigError(NKDefectionsError, ValueError):
    """A configuration value is invalid (unknown option, bad prior, bad window...)."""


class ConvergenceError(NKDefectionsError, RuntimeError):
    """The sampler's output failed the convergence gate."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class PosteriorFileError(NKDefectionsError, ValueError):
    """A saved posterior file is missing, corrupt or belongs to another model."""


class OutputExistsError(NKDefectionsError, FileExistsError):
    """Refusing to overwrite earlier results."""


class ScenarioError(ConfigError):
    """A scenario file or path spec is invalid (unknown name, driver, year, bad spec...)."""
