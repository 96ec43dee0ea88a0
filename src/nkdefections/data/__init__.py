"""Data: files with provenance -> a validated ``xarray.Dataset`` (dim ``year``)."""

from __future__ import annotations

from nkdefections.data.load import (  # noqa: F401
    cumulative_event_index,
    data_hash,
    load_data,
    year_exposure,
)
from nkdefections.data.tables import (  # noqa: F401
    FILE_ROLES,
    LAST_OBSERVED_YEAR,
    MANIFEST_NAME,
    ColumnSpec,
    FileSpec,
    default_data_dir,
    read_manifest,
    read_table,
    sha256_file,
    update_manifest,
)
