"""Simulation-based calibration (nkdefections.evaluate.sbc).

Fast tier: the rank and uniformity-test kernels (no sampling), the simulator's shapes and
seeding, and the check that the refit inputs give exactly the simulating model's density.
Slow tier (``-m slow``): 100 simulations from the prior refitted with the refit engine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nkdefections import constants as C
from nkdefections.errors import ConfigError
from nkdefections.evaluate import sbc
from nkdefections.report import sbc_plots

L = 99


# ----------------------------------------------------------------------------
# Pure kernels
# ----------------------------------------------------------------------------


@pytest.mark.pure
def test_rank_counts_draws_below_and_splits_ties():
    rng = np.random.default_rng(0)
    draws = np.arange(10.0)
    assert sbc.sbc_rank(-1.0, draws, rng) == 0
    assert sbc.sbc_rank(4.5, draws, rng) == 5
    assert sbc.sbc_rank(99.0, draws, rng) == 10
    tied = [sbc.sbc_rank(1.0, np.array([0.0, 1.0, 1.0, 2.0]), rng) for _ in range(300)]
    assert set(tied) == {1, 2, 3}  # one below, two ties: ranks 1..3 at random


@pytest.mark.pure
def test_rank_is_uniform_when_truth_is_a_draw_from_the_same_distribution():
    rng = np.random.default_rng(1)
    ranks = [sbc.sbc_rank(rng.normal(), rng.normal(size=L), rng) for _ in range(2000)]
    counts = np.bincount(np.asarray(ranks) // 10, minlength=10)
    assert stats.chisquare(counts).pvalue > 0.001


@pytest.mark.pure
def test_thinning_uses_a_fixed_stride_over_the_pooled_chains():
    idx = sbc.thin_indices(2000, 99)
    assert len(idx) == 99 and np.all(np.diff(idx) == 20) and idx[-1] < 2000
    with pytest.raises(ConfigError, match="cannot keep"):
        sbc.thin_indices(50, 99)


@pytest.mark.pure
def test_element_labels_follow_the_coordinates():
    import xarray as xr

    post = xr.Dataset(
        {
            "level": (("chain", "draw"), np.zeros((2, 3))),
            "beta": (("chain", "draw", "driver"), np.arange(18.0).reshape(2, 3, 3)),
        },
        coords={"driver": ["border", "economy", "sanctions"]},
    )
    thinned = sbc.thin_posterior(post, 6)
    out = sbc.element_values(thinned, ["level", "beta"], sbc.SAMPLE)
    assert list(out) == ["level", "beta[border]", "beta[economy]", "beta[sanctions]"]
    np.testing.assert_array_equal(out["beta[economy]"], np.arange(1.0, 18.0, 3))


def _uniform_ranks(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, L + 1, size=n)


@pytest.mark.pure
def test_ecdf_test_accepts_uniform_and_rejects_clearly_non_uniform_ranks():
    rng = np.random.default_rng(2)
    uniform = _uniform_ranks(100, 3)
    assert sbc.ecdf_uniformity_test(uniform, L) > 0.05
    # posteriors too narrow (U shape), too wide (hump), biased (truths mostly low)
    u_shape = np.concatenate([rng.integers(0, 10, 50), rng.integers(90, 100, 50)])
    hump = rng.binomial(L, 0.5, size=100)
    biased = rng.binomial(L, 0.35, size=100)
    for bad in (u_shape, hump, biased):
        assert sbc.ecdf_uniformity_test(bad, L) < 0.001
        assert sbc.chisq_uniformity_test(bad, L) < 0.001
        assert sbc.pot_c_uniformity_test(bad, L) < 0.001
    assert sbc.chisq_uniformity_test(uniform, L) > 0.05


@pytest.mark.pure
def test_ecdf_test_has_its_nominal_false_alarm_rate():
    """Under uniformity p-values are (conservatively) uniform: about 5% below 0.05."""
    p = np.array([sbc.ecdf_uniformity_test(_uniform_ranks(100, 100 + s), L, n_null=4000) for s in range(400)])
    assert 0.015 <= (p < 0.05).mean() <= 0.09
    assert 0.06 <= (p < 0.2).mean() <= 0.28


@pytest.mark.pure
def test_ecdf_band_is_the_tests_acceptance_region_and_agrees_with_arviz():
    from arviz_stats.ecdf_utils import get_pointwise_confidence_band, simulate_confidence_bands

    n = 100
    z, lo, hi = sbc.ecdf_band(n, L, 0.95)
    assert np.all(lo <= z) and np.all(z <= hi)
    # ArviZ's Säilynoja band at the same points: the same construction, another random stream
    prob = simulate_confidence_bands(n, 1, z, 0.95, 2000, np.random.default_rng(0))
    a_lo, a_hi = get_pointwise_confidence_band(prob, n, z)
    assert np.abs(a_lo - lo).max() <= 2 / n and np.abs(a_hi - hi).max() <= 2 / n
    # ranks that stay inside the band are not rejected at 5%, and vice versa
    null = sbc.null_gamma(n, L, 10_000, 0)
    for s in range(60):
        r = _uniform_ranks(n, 1000 + s)
        k = sbc.rank_counts(r, L) / n
        inside = bool(np.all((k >= lo - 1e-12) & (k <= hi + 1e-12)))
        assert inside == (sbc.ecdf_gamma(r, L) >= np.quantile(null, 0.05, method="lower"))


@pytest.mark.pure
def test_rank_summary_flags_and_bonferroni():
    rng = np.random.default_rng(4)
    ranks = pd.DataFrame({f"x[{k}]": _uniform_ranks(100, 10 + k) for k in range(9)})
    ranks["bad"] = rng.binomial(L, 0.3, size=100)
    s = sbc.rank_summary(ranks, L, free=["x"])
    assert list(s["kind"]) == ["free"] * 9 + ["derived"]
    bad = s.set_index("quantity").loc["bad"]
    assert bad["flag"] and bad["flag_bonferroni"] and bad["mean_rank"] < 0.4
    assert (s["p_ecdf"] < 0.05 / 10).sum() == s["flag_bonferroni"].sum()
    g = sbc.group_summary(s)
    assert g.set_index("group").loc["x", "elements"] == 9


@pytest.mark.pure
def test_plots_write_pngs(tmp_path):
    ranks = pd.DataFrame({f"q{k}": _uniform_ranks(100, k) for k in range(3)})
    s = sbc.rank_summary(ranks, L)
    assert sbc_plots.plot_ecdf(ranks, L, tmp_path / "e.png", summary=s).stat().st_size > 0
    assert sbc_plots.plot_rank_hist(ranks, L, tmp_path / "h.png").stat().st_size > 0


@pytest.mark.pure
def test_recovery_summary_counts_coverage_and_power():
    rows = []
    for i, (lo, hi) in enumerate([(-1.0, -0.2), (-0.5, 0.1), (-0.9, -0.7)]):
        rows.append(
            {
                sbc.SIMULATION: i,
                "quantity": "beta[border]",
                "truth": -0.6,
                "mean": (lo + hi) / 2,
                "sd": 0.1,
                "q05": lo,
                "q25": lo + 0.3 * (hi - lo),
                "q75": hi - 0.3 * (hi - lo),
                "q95": hi,
            }
        )
    res = sbc.RecoveryResult(table=pd.DataFrame(rows), fits=pd.DataFrame(), truth={}, settings={})
    row = res.summary().iloc[0]
    assert row["coverage_90"] == pytest.approx(1 / 3)  # only (-1, -0.2) contains -0.6
    assert row["excludes_zero_90"] == pytest.approx(2 / 3)
    assert row["bias"] == pytest.approx(np.mean([-0.6, -0.2, -0.8]) + 0.6)


# ----------------------------------------------------------------------------
# The simulator and the refit inputs (PyMC, no sampling)
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def refitter():
    from nkdefections.model.refit import Refitter

    return Refitter(sampler=sbc.SBC_SAMPLER)


@pytest.fixture(scope="module")
def sims(refitter):
    return sbc.simulate_prior(6, seed=11, data=refitter.data)


def test_simulator_shapes_and_seeding(refitter, sims):
    d = refitter.design
    assert sims.sizes[sbc.SIMULATION] == 6
    assert sims[C.ARRIVALS].dims == (sbc.SIMULATION, C.YEAR) and (sims[C.ARRIVALS] >= 0).all()
    np.testing.assert_array_equal(sims[C.YEAR], d.years)
    # GDP figures exactly where the real data have one
    np.testing.assert_array_equal(~np.isnan(sims[C.GDP_GROWTH].values), np.broadcast_to(~np.isnan(d.gdp_all), (6, 19)))
    for name in refitter.ranked_parameters:  # the truths of everything SBC ranks
        assert name in sims
    # simulation i depends only on (seed, i)
    again = sbc.simulate_prior(3, seed=11, data=refitter.data)
    np.testing.assert_array_equal(again[C.ARRIVALS].values, sims[C.ARRIVALS].values[:3])
    np.testing.assert_array_equal(again[C.LEVEL].values, sims[C.LEVEL].values[:3])


def test_refit_inputs_give_the_simulators_density(refitter, sims):
    """The evaluation graph with :func:`sbc.sbc_inputs` is the default graph with the simulated data.

    Log density of the free parameters and both likelihoods (the known-sign Potential off)
    at random points; with the refit engine's own centring (on the simulated GDP mean) it
    is a different model, which is why ``sbc_inputs`` pins the centre.
    """
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import clone_replace

    from nkdefections.model.graph import build_model

    d = refitter.design
    # the innovation form, where both graphs have the same free variables (the log_mu form's
    # evaluation graph adds only standard-normal spare innovations: tests/model/test_parameterization.py)
    config = dataclasses.replace(refitter.config, parameterization="noncentered")
    m0 = build_model(refitter.data, config)
    m1 = build_model(refitter.data, config, evaluation=True)
    assert [v.name for v in m0.value_vars] == [v.name for v in m1.value_vars]

    def compile_(model, logp, replace):
        return pytensor.function(
            model.value_vars, clone_replace(logp, replace), mode="FAST_COMPILE", on_unused_input="ignore"
        )

    rng = np.random.default_rng(0)
    for i in range(2):
        sim = sims.isel({sbc.SIMULATION: i})
        default = compile_(
            m0,
            m0.logp(vars=m0.free_RVs + m0.observed_RVs),
            {
                m0.rvs_to_values[m0["gdp_observed"]]: pt.constant(sim[C.GDP_GROWTH].values[d.gdp_obs_idx]),
                m0["arrivals_data"]: pt.constant(sim[C.ARRIVALS].values.astype("int32")),
            },
        )

        def evaluation(x):
            return compile_(m1, m1.logp(), {m1[n]: pt.constant(np.asarray(v, dtype=m1[n].dtype)) for n, v in x.items()})

        pinned = evaluation(sbc.sbc_inputs(refitter, sim))
        recentred = evaluation(
            refitter.inputs(arrivals=sim[C.ARRIVALS].values, gdp=sim[C.GDP_GROWTH].values, sign_constraint=False)
        )
        ip = m0.initial_point()
        for _ in range(3):
            args = [ip[v.name] + 0.5 * rng.normal(size=np.shape(ip[v.name])) for v in m0.value_vars]
            assert pinned(*args) == pytest.approx(default(*args), rel=1e-9)
            assert recentred(*args) != pytest.approx(default(*args), rel=1e-6)


def test_recovery_series_are_seeded_per_series(refitter):
    truth = sbc.RecoveryTruth()
    y, z = sbc.simulate_series(refitter.design, truth, 4, seed=3)
    y2, _ = sbc.simulate_series(refitter.design, truth, 2, seed=3)
    assert y.shape == (4, 18) and (z[:, 0] == truth.latent_start).all()
    np.testing.assert_array_equal(y[:2], y2)
    values = truth.values(refitter.design)
    assert values["beta[border]"] == -0.6
    assert values[C.LEVEL] == pytest.approx(7.3 + refitter.design.center @ np.array([-0.6, -0.03, 0.06]))


# ----------------------------------------------------------------------------
# Slow: SBC of the default model
# ----------------------------------------------------------------------------

#: Quantities whose calibration the slow test asserts.
CHECKED = ("level", "beta[border]", "beta[economy]", "beta[sanctions]", sbc.LOGLIK)
#: Family-wise false-alarm rate of the slow test for a calibrated procedure.
FAMILY_ALPHA = 0.01


@pytest.fixture(scope="module")
def sbc_run(refitter):
    return sbc.run_sbc(100, seed=sbc.SEED, refitter=refitter)


@pytest.mark.slow
def test_sbc_driver_effects_and_level_are_calibrated(sbc_run):
    """Ranks of the level, the three effects and the log-likelihood are uniform (100 simulations).

    Each of the 5 quantities is tested with the ECDF test at level 0.01 / 5 (Bonferroni), so a
    calibrated procedure fails this test with probability at most 1% (for a fixed seed the
    result is deterministic: a failure is a finding to investigate, not noise to re-roll).
    Failed refits stay in the ranks (dropping them would bias the ranks); the test only
    requires that they are recorded.
    """
    res = sbc_run
    assert res.L == 99 and len(res.ranks) == 100 and len(res.fits) == 100
    assert {"passed", "divergences", "max_rhat", "min_ess_bulk"} <= set(res.fits.columns)
    s = res.summary().set_index("quantity")
    assert set(CHECKED) <= set(s.index)
    # every free element has a rank
    assert (s["kind"] == "free").sum() == 1 + 3 + 1 + 1 + 19 + 1 + 1 + 18
    bad = {q: float(s.loc[q, "p_ecdf"]) for q in CHECKED if s.loc[q, "p_ecdf"] < FAMILY_ALPHA / len(CHECKED)}
    assert not bad, f"SBC rejects uniformity for {bad}"


@pytest.mark.slow
def test_sbc_same_seed_same_ranks(sbc_run, refitter):
    again = sbc.run_sbc(2, seed=sbc.SEED, refitter=refitter)
    pd.testing.assert_frame_equal(again.ranks, sbc_run.ranks.iloc[:2])


@pytest.mark.fit
def test_sbc_on_two_worker_processes_gives_the_ranks_of_one_process(refitter, monkeypatch):
    """The simulations run on worker processes by default; the pool must not change a single number.

    nutpie seeds each chain on its own, so one sampling thread per worker gives the draws that two
    threads in one process give.  The numba code behind the program gives other draws when it is
    compiled cold than when it is loaded from the disk cache (PLATFORM-NOTES), so the one-process
    run happens in a fresh process too, after this process has compiled the graph and written the
    cache: both runs then load the same compiled code.
    """
    import concurrent.futures
    import multiprocessing

    from nkdefections.config import SamplerConfig
    from nkdefections.evaluate.workers import WORKERS_ENV

    small = SamplerConfig(draws=200, tune=200, chains=2, cores=2, progressbar=False)
    refitter.program()  # compiled (and cached on disk) before any child starts
    kwargs = dict(config=refitter.config, data=refitter.data, sampler=small, thin_to=99)
    monkeypatch.setenv(WORKERS_ENV, "1")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        one = pool.submit(sbc.run_sbc, 3, 5, **kwargs).result()
    monkeypatch.setenv(WORKERS_ENV, "2")
    two = sbc.run_sbc(3, 5, **kwargs)
    assert one.settings["workers"] == 1 and two.settings["workers"] == 2
    pd.testing.assert_frame_equal(one.ranks, two.ranks)
    pd.testing.assert_frame_equal(one.posterior, two.posterior)
    cols = [c for c in one.fits.columns if c != "seconds"]
    pd.testing.assert_frame_equal(one.fits[cols], two.fits[cols])
