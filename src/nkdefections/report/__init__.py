"""Reports: blocks -> markdown / HTML, the first screen (headline), plots, the model card."""

from __future__ import annotations

from nkdefections.report.blocks import (  # noqa: F401
    Block,
    effects_markdown,
    effects_table,
    fit_blocks,
    forecast_blocks,
    header_blocks,
    markdown_table,
    render_html,
    render_markdown,
    splice,
    write_reports,
)
from nkdefections.report.headline import headline_blocks, headline_caveats, headline_numbers, headline_table  # noqa: F401
