"""Names are API: lock dimension, variable and file names (the pymc-forecast habit)."""

from __future__ import annotations

import pytest

from nkdefections import constants as C
from nkdefections.config import ModelConfig
from nkdefections.data.load import load_data

pytestmark = pytest.mark.pure


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
    from nkdefections.model.defection import DefectionModel

    m = DefectionModel(config=ModelConfig()).model
    free = {rv.name for rv in m.free_RVs}
    assert free == {  # the default parameterization, log_mu; the signed border effect makes beta per driver
        "level",
        "beta_border",
        "beta_economy",
        "beta_sanctions",
        "gdp_mean",
        "gdp_sd",
        "gdp_pinned_offset",
        "gdp_innovation",
        "sigma_latent",
        "rho",
        "log_mu_offset",
    }
    assert {rv.name for rv in m.observed_RVs} == {"arrivals", "gdp_observed"}
    dets = {d.name for d in m.deterministics}
    assert {"mu", "log_mu", "latent", "effect_pct", "driver_values", "intercept", "gdp_true"} <= dets
    innovation = DefectionModel(config=ModelConfig(parameterization="noncentered")).model
    assert {rv.name for rv in innovation.free_RVs} == {
        "level",
        "beta_border",
        "beta_economy",
        "beta_sanctions",
        "gdp_mean",
        "gdp_sd",
        "gdp_true",
        "sigma_latent",
        "rho",
        "latent_innovation",
    }
    dims = m.named_vars_to_dims
    assert dims["beta"] == ("driver",)
    assert dims["mu"] == ("year",)
    assert dims["latent"] == ("year",)
    assert dims["driver_values"] == ("year", "driver")
    assert dims["gdp_true"] == ("gdp_year",)
    assert list(m.coords["driver"]) == ["border", "economy", "sanctions"]
    assert list(m.coords["year"]) == list(range(1999, 2017))
    assert list(m.coords["gdp_year"]) == list(range(1998, 2017))


def test_code_version_is_dirty_only_when_code_changes(tmp_path):
    """Results and READMEs written after a commit do not mark the code version dirty."""
    import subprocess

    from nkdefections.provenance import code_version

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("old\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    clean = code_version(tmp_path)
    assert clean.startswith("git:") and not clean.endswith("-dirty")
    (tmp_path / "README.md").write_text("new results\n")
    assert code_version(tmp_path) == clean
    (tmp_path / "src" / "m.py").write_text("x = 2\n")
    assert code_version(tmp_path) == clean + "-dirty"


X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse4_2 avx avx2 fma avx512f
processor\t: 1
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse4_2 avx avx2 fma avx512f
"""


def test_machine_record_tells_cpus_with_other_vector_units_apart():
    """Outputs record the CPU: draws are exact per machine, and the flag hash says which machine."""
    from nkdefections.provenance import describe_cpu, machine, provenance

    a = describe_cpu(X86)
    assert a["cpu"] == "Intel(R) Xeon(R) Processor"
    assert a["isa"] == ["sse4_2", "avx", "avx2", "fma", "avx512f"]
    reordered = describe_cpu(X86.replace("fpu sse4_2 avx avx2 fma avx512f", "avx512f fma avx2 avx sse4_2 fpu"))
    assert reordered["cpu_flags_sha256"] == a["cpu_flags_sha256"]  # the set of flags, not their order
    no_avx512 = describe_cpu(X86.replace(" avx512f", ""))
    assert no_avx512["cpu_flags_sha256"] != a["cpu_flags_sha256"]
    assert no_avx512["isa"] == ["sse4_2", "avx", "avx2", "fma"]
    arm = describe_cpu("processor\t: 0\nFeatures\t: fp asimd sve\nCPU implementer\t: 0x41\n")
    assert arm["isa"] == ["asimd", "sve"] and arm["cpu_flags_sha256"]
    bare = describe_cpu("")  # no /proc/cpuinfo (macOS, Windows)
    assert bare["isa"] == [] and bare["cpu_flags_sha256"] == ""
    assert provenance()["machine"] == machine() and set(machine()) == set(a)
    machine()["isa"].append("changed by a caller")
    assert "changed by a caller" not in machine()["isa"]  # the cached record is not shared
