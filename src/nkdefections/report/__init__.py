"""Reports: blocks -> markdown / HTML, plots, the model card."""

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
