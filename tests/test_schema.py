"""Names are API: lock dimension, variable and file names (the pymc-forecast habit)."""

from __future__ import annotations

from nkdefections import constants as C
from nkdefections.config import ModelConfig
from nkdefections.data import load_data


def test_constant_values_locked():
    assert (C.YEAR, C.DRIVER, C.GDP_YEAR, C.CHAIN, C.DRAW) == ("year", "driver", "gdp_year", "chain", "draw")
    assert C.DRIVERS == ("border", "economy", "sanctions")
    assert (C.OBSERVED, C.MU, C.BETA, C.EFFECT_PCT, C.LATENT) == (
        "arrivals",
        "mu",
        "beta",
        "effect_pct",
        "latent",
    )
    assert (C.POSTERIOR_FILE, C.SUMMARY_FILE, C.DIAGNOSTICS_FILE, C.REPORT_FILE) == (
        "posterior.nc",
        "parameter_summary.csv",
        "convergence.csv",
        "report.md",
    )


def test_dataset_schema_locked():
    ds = load_data()
    assert set(ds.dims) == {"year", "partial"}
    assert {
        "arrivals",
        "border_index",
        "sanctions_index",
        "gdp_growth",
        "gdp_vintage",
        "gdp_known_sign",
        "grain_production",
        "china_trade",
    } <= set(ds.data_vars)
    for v in ("arrivals", "border_index", "sanctions_index", "gdp_growth"):
        assert ds[v].dims == ("year",)


def test_model_variables_and_dims_locked():
    from nkdefections.model import DefectionModel

    m = DefectionModel(config=ModelConfig()).model
    free = {rv.name for rv in m.free_RVs}
    assert free == {
        "level",
        "beta",
        "gdp_mean",
        "gdp_sd",
        "gdp_true",
        "sigma_latent",
        "rho",
        "latent_innovation",
    }
    assert {rv.name for rv in m.observed_RVs} == {"arrivals", "gdp_observed"}
    dets = {d.name for d in m.deterministics}
    assert {"mu", "log_mu", "latent", "effect_pct", "driver_values", "intercept"} <= dets
    dims = m.named_vars_to_dims
    assert dims["beta"] == ("driver",)
    assert dims["mu"] == ("year",)
    assert dims["latent"] == ("year",)
    assert dims["driver_values"] == ("year", "driver")
    assert dims["gdp_true"] == ("gdp_year",)
    assert list(m.coords["driver"]) == ["border", "economy", "sanctions"]
    assert list(m.coords["year"]) == list(range(1999, 2017))
    assert list(m.coords["gdp_year"]) == list(range(1998, 2017))
