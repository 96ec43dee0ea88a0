"""``nkdefections-explore``: a local web page to explore scenarios live from one fitted posterior.

:class:`Explorer` (``compute``) evaluates the page's form with the library's public
functions; ``form`` translates the form to and from a :class:`~nkdefections.Scenario`;
``figure`` builds the chart; ``output`` the JSON, CSV and saved YAML; ``server`` the
Starlette app.  The command itself (``nkdefections.cli.explore``) finds the fit.
"""

from __future__ import annotations

from nkdefections.explore.compute import Evaluation, Explorer, FormError, Settings  # noqa: F401
from nkdefections.explore.form import form_to_scenario, locate_error, scenario_to_form  # noqa: F401
from nkdefections.explore.output import comparison_csv, result, save_scenario  # noqa: F401
