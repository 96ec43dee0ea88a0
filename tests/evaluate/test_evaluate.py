"""Proper scores and backtest tables (no sampling, no PyMC).

The package computes its scores in NumPy; the two tests that check them against ``scoringrules``
(the reference implementation) are not marked pure, because scoringrules compiles numba kernels
when it is imported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import gammaln

from nkdefections.errors import ConfigError, DataValidationError
from nkdefections.evaluate import scores as E

# ------------------------------------------------------------------------------------ CRPS


@pytest.mark.parametrize("shape", [(7,), (3, 40), (2, 5, 400)])
def test_crps_matches_scoringrules(shape):
    import scoringrules as sr

    rng = np.random.default_rng(sum(shape))
    x = rng.negative_binomial(5, 0.004, size=shape).astype(float)
    y = rng.integers(0, 3000, size=shape[:-1]).astype(float)
    fair = sr.crps_ensemble(y, x, estimator="pwm", backend="numpy")
    np.testing.assert_allclose(E.crps_samples(x, y), fair, rtol=1e-10)
    np.testing.assert_allclose(
        E.crps_samples(x, y, fair=False), sr.crps_ensemble(y, x, estimator="nrg", backend="numpy"), rtol=1e-10
    )


def test_log_score_matches_scoringrules():
    import scoringrules as sr

    from nkdefections.evaluate.prospective import kde_bandwidth, log_score_kde

    rng = np.random.default_rng(5)
    x = rng.negative_binomial(8, 0.005, size=(4, 3, 500)).astype(float)
    y = rng.integers(500, 2500, size=(4, 3)).astype(float)
    ref = sr.logs_ensemble(y, x, m_axis=-1, bw=kde_bandwidth(x), backend="numpy")
    np.testing.assert_allclose(log_score_kde(x, y), ref, rtol=1e-10)


@pytest.mark.pure
@pytest.mark.parametrize("fair", [True, False])
def test_crps_of_point_mass_is_absolute_error(fair):
    assert float(E.crps_samples(np.full(50, 1200), 1000, fair=fair)) == pytest.approx(200.0)
    assert float(E.crps_samples(np.full(50, 1200), 1200, fair=fair)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.pure
def test_crps_estimators_match_brute_force():
    x = np.array([3.0, 7.0, 7.0, 12.0, 20.0, 1.0, 9.0])
    y, m = 8.0, x.size
    e1 = np.abs(x - y).mean()
    pair_sum = np.abs(x[:, None] - x[None, :]).sum()
    assert float(E.crps_samples(x, y)) == pytest.approx(e1 - pair_sum / (2 * m * (m - 1)), rel=1e-12)
    assert float(E.crps_samples(x, y, fair=False)) == pytest.approx(e1 - pair_sum / (2 * m**2), rel=1e-12)


@pytest.mark.pure
def test_crps_matches_normal_closed_form():
    rng = np.random.default_rng(11)
    mu, sigma, y = 1000.0, 150.0, 1230.0
    z = (y - mu) / sigma
    exact = sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    est = float(E.crps_samples(rng.normal(mu, sigma, 200_000), y))
    assert est == pytest.approx(exact, rel=0.01)


@pytest.mark.pure
def test_crps_of_poisson_draws_matches_exact_discrete_crps():
    # for an integer-valued forecast CRPS = sum_k (F(k) - 1{y <= k})^2
    rng = np.random.default_rng(5)
    lam, y = 30.0, 38
    k = np.arange(0, 400)
    exact = np.sum((stats.poisson.cdf(k, lam) - (k >= y)) ** 2)
    est = float(E.crps_samples(rng.poisson(lam, 200_000), y))
    assert est == pytest.approx(exact, rel=0.01)


@pytest.mark.pure
def test_crps_is_vectorised_over_leading_axes():
    rng = np.random.default_rng(0)
    s = rng.poisson(100, size=(2, 3, 400))
    y = rng.poisson(100, size=(2, 3))
    out = E.crps_samples(s, y)
    assert out.shape == (2, 3)
    loop = np.array([[float(E.crps_samples(s[i, j], y[i, j])) for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(out, loop)
    # one observation against many forecasts broadcasts too
    assert E.crps_samples(s, 100).shape == (2, 3)


@pytest.mark.pure
def test_crps_rejects_bad_input():
    with pytest.raises(DataValidationError, match="non-finite"):
        E.crps_samples(np.array([1.0, np.nan, 3.0]), 2)
    with pytest.raises(DataValidationError, match="at least 2 draws"):
        E.crps_samples(np.array([1.0]), 2)
    with pytest.raises(DataValidationError, match="not finite"):
        E.crps_samples(np.array([1.0, 2.0]), np.nan)


# ------------------------------------------------------------------------------ log score


@pytest.mark.pure
def test_poisson_mixture_log_pmf_matches_direct_average():
    mu = np.array([900.0, 1000.0, 1100.0, 1500.0])
    for y in (950, 1000, 1400, 2000):
        direct = np.log(np.mean(stats.poisson.pmf(y, mu)))
        assert float(E.log_pmf_poisson_mixture(y, mu)) == pytest.approx(direct, rel=1e-10)
    # far tail, where averaging probabilities underflows: p(0) = mean(exp(-mu)) ~ exp(-900) / 4
    assert float(E.log_pmf_poisson_mixture(0, mu)) == pytest.approx(-900 - np.log(4), rel=1e-12)
    assert float(E.log_score_poisson_mixture(1000, mu)) == pytest.approx(-float(E.log_pmf_poisson_mixture(1000, mu)))


@pytest.mark.pure
def test_single_draw_mixture_is_the_distribution_itself():
    assert float(E.log_pmf_poisson_mixture(7, [5.0])) == pytest.approx(stats.poisson.logpmf(7, 5.0))


@pytest.mark.pure
def test_negbin_mixture_matches_pymc_parametrisation_by_hand():
    mu = np.array([800.0, 1200.0, 1500.0])
    alpha = np.array([5.0, 20.0, 50.0])  # variance mu + mu^2 / alpha
    y = 1100

    def nb_logpmf(y, mu, a):
        return gammaln(y + a) - gammaln(a) - gammaln(y + 1) + a * np.log(a / (a + mu)) + y * np.log(mu / (a + mu))

    direct = np.log(np.mean(np.exp(nb_logpmf(y, mu, alpha))))
    assert float(E.log_pmf_negbin_mixture(y, mu, alpha)) == pytest.approx(direct, rel=1e-10)
    assert float(E.log_score_negbin_mixture(y, mu, alpha)) == pytest.approx(-direct, rel=1e-10)
    # huge alpha: the negative binomial tends to the Poisson
    assert float(E.log_pmf_negbin_mixture(y, mu, 1e9)) == pytest.approx(
        float(E.log_pmf_poisson_mixture(y, mu)), abs=1e-4
    )


@pytest.mark.pure
def test_mixture_log_pmf_vectorised_with_shared_alpha():
    rng = np.random.default_rng(2)
    mu = rng.gamma(50, 20, size=(3, 200))  # 3 years x 200 draws
    alpha = rng.gamma(20, 1, size=200)  # one dispersion per draw
    y = np.array([900, 1000, 1200])
    out = E.log_pmf_negbin_mixture(y, mu, alpha)
    assert out.shape == (3,)
    for t in range(3):
        assert out[t] == pytest.approx(float(E.log_pmf_negbin_mixture(y[t], mu[t], alpha)))


@pytest.mark.pure
def test_log_score_rejects_bad_input():
    with pytest.raises(DataValidationError, match="non-negative integers"):
        E.log_pmf_poisson_mixture(2.5, [3.0])
    with pytest.raises(DataValidationError, match="non-negative integers"):
        E.log_pmf_poisson_mixture(-1, [3.0])
    with pytest.raises(DataValidationError, match="mu_draws"):
        E.log_pmf_poisson_mixture(2, [3.0, 0.0])
    with pytest.raises(DataValidationError, match="alpha_draws"):
        E.log_pmf_negbin_mixture(2, [3.0], [np.nan])


# -------------------------------------------------------------------------------- intervals


@pytest.mark.pure
def test_interval_metrics_on_known_draws():
    s = np.arange(0, 101)  # quantile q is exactly 100 q
    iv = E.interval_metrics(s, 20)
    assert iv["width_50"] == pytest.approx(50.0)
    assert iv["width_80"] == pytest.approx(80.0)
    assert iv["width_95"] == pytest.approx(95.0)
    assert not iv["covered_50"] and iv["covered_80"] and iv["covered_95"]
    assert E.interval_metrics(s, 75)["covered_50"]  # bounds included
    assert not E.interval_metrics(s, 100)["covered_95"]
    assert set(E.interval_metrics(s, 5, levels=(0.9,))) == {"covered_90", "width_90"}
    with pytest.raises(ConfigError, match="between 0 and 1"):
        E.interval_metrics(s, 5, levels=(95,))


def test_sharp_correct_forecast_beats_vague_one_and_calibrates():
    rng = np.random.default_rng(3)
    truth_mu, n_obs = 1500.0, 300
    y = rng.poisson(truth_mu, n_obs)
    sharp_mu = np.full(1000, truth_mu)  # posterior concentrated on the truth
    vague_mu = truth_mu * np.exp(rng.normal(0, 0.3, 1000))  # right centre, far too wide
    sharp = rng.poisson(sharp_mu)
    vague = rng.poisson(vague_mu)
    crps_sharp, crps_vague = E.crps_samples(sharp, y).mean(), E.crps_samples(vague, y).mean()
    ls_sharp = E.log_score_poisson_mixture(y, np.broadcast_to(sharp_mu, (n_obs, 1000))).mean()
    ls_vague = E.log_score_poisson_mixture(y, np.broadcast_to(vague_mu, (n_obs, 1000))).mean()
    assert crps_sharp < 0.5 * crps_vague
    assert ls_sharp < ls_vague - 1.0
    cov = E.interval_metrics(np.broadcast_to(sharp, (n_obs, 1000)), y)
    assert abs(cov["covered_80"].mean() - 0.80) < 0.07
    assert cov["covered_95"].mean() > 0.90
    assert E.interval_metrics(np.broadcast_to(vague, (n_obs, 1000)), y)["covered_50"].mean() > 0.9


# ------------------------------------------------------------------------------------ rows


def test_score_forecast_row():
    rng = np.random.default_rng(4)
    s = rng.poisson(1400, 2000)
    row = E.score_forecast("rw_drift", E.NO_MODE, 2012, 2014, 1397, s, -7.5)
    assert tuple(row) == E.SCORE_COLUMNS
    assert row["horizon"] == 2
    assert row["log_score"] == 7.5
    assert row["crps"] == pytest.approx(float(E.crps_samples(s, 1397)))
    assert row["median"] == np.median(s)
    assert isinstance(row["covered_50"], bool)
    with pytest.raises(ConfigError, match="after origin"):
        E.score_forecast("m", "conditional", 2012, 2012, 1397, s, -7.5)
    with pytest.raises(DataValidationError, match="log probability"):
        E.score_forecast("m", "conditional", 2012, 2013, 1397, s, 0.3)
    with pytest.raises(DataValidationError, match="1-D"):
        E.score_forecast("m", "conditional", 2012, 2013, 1397, s.reshape(2, -1), -1.0)


def _fake_scores(ratio: float = 0.5, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Model scores = ratio x baseline scores over 8 origins x 3 horizons (targets <= 2016)."""
    rng = np.random.default_rng(seed)
    rows = []
    for origin in range(2008, 2016):
        for h in (1, 2, 3):
            t = origin + h
            if t > 2016:
                continue
            base = 100.0 * h + rng.gamma(5, 20)
            model = ratio * base * np.exp(noise * rng.normal())
            common = dict(origin=origin, target_year=t, horizon=h, observed=1000.0, median=1000.0, pit=0.5)
            cov = dict(covered_50=h == 1, covered_80=True, covered_95=True, width_50=1.0, width_80=2.0, width_95=3.0)
            rows.append(
                dict(
                    method="model", mode="conditional", crps=model, crps_log=model / 1e3, log_score=7.0, **common, **cov
                )
            )
            rows.append(
                dict(method="rw_drift", mode=E.NO_MODE, crps=base, crps_log=base / 1e3, log_score=7.4, **common, **cov)
            )
    return E.scores_frame(rows)


@pytest.mark.pure
def test_scores_frame_orders_columns_and_rejects_duplicates():
    df = _fake_scores()
    assert tuple(df.columns) == E.SCORE_COLUMNS
    with pytest.raises(DataValidationError, match="duplicated"):
        E.scores_frame(pd.concat([df, df.iloc[:1]]).to_dict("records"))


def test_score_forecast_adds_log_scale_crps_and_mid_pit():
    rng = np.random.default_rng(3)
    draws = rng.poisson(1000, 4000)
    row = E.score_forecast("m", "-", 2010, 2011, 1000, draws, -7.0)
    assert row["crps_log"] == pytest.approx(float(E.crps_samples(np.log1p(draws), np.log1p(1000))))
    assert row["pit"] == pytest.approx(np.mean(draws < 1000) + 0.5 * np.mean(draws == 1000))
    # far above every draw: PIT 1; far below: PIT 0
    assert E.score_forecast("m", "-", 2010, 2011, 5000, draws, -50.0)["pit"] == 1.0
    assert E.score_forecast("m", "-", 2010, 2011, 10, draws, -50.0)["pit"] == 0.0


@pytest.mark.pure
def test_mid_pit_is_uniform_for_a_calibrated_count_forecast():
    # the observation drawn from the forecast itself: mid-PIT mean 1/2, about uniform (Czado et al. 2009)
    rng = np.random.default_rng(11)
    draws = rng.poisson(2000, 20_000)  # counts in the thousands, as here: atoms ~1% each
    pits = np.array([E.mid_pit(draws, y) for y in rng.poisson(2000, 2000)])
    assert abs(pits.mean() - 0.5) < 0.02
    hist = np.histogram(pits, bins=5, range=(0, 1))[0] / len(pits)
    assert np.all(np.abs(hist - 0.2) < 0.04)


@pytest.mark.pure
def test_summary_by_horizon():
    df = _fake_scores()
    s = E.summary_by_horizon(df)
    assert list(s.columns[:6]) == ["method", "mode", "horizon", "n", "mean_crps", "mean_log_score"]
    assert {"coverage_50", "coverage_80", "coverage_95", "mean_width_95"} <= set(s.columns)
    m1 = s[(s.method == "model") & (s.horizon == 1)].iloc[0]
    assert m1["n"] == 8 and m1["coverage_50"] == 1.0
    m3 = s[(s.method == "model") & (s.horizon == 3)].iloc[0]
    assert m3["n"] == 6 and m3["coverage_50"] == 0.0
    sel = (df.method == "rw_drift") & (df.horizon == 2)
    r2 = s[(s.method == "rw_drift") & (s.horizon == 2)].iloc[0]
    assert r2["mean_crps"] == pytest.approx(df.loc[sel, "crps"].mean())


@pytest.mark.pure
def test_relative_skill_exact_ratio_and_pairing():
    df = _fake_scores(ratio=0.5)
    # an extra baseline forecast with no model partner must not enter the comparison
    extra = df[(df.method == "rw_drift") & (df.origin == 2008) & (df.horizon == 1)].assign(
        origin=2007, target_year=2008, crps=1e6
    )
    df = pd.concat([df, extra], ignore_index=True)
    r = E.relative_skill(df, "model", "conditional")
    assert list(r.horizon) == [1, 2, 3] and set(r.method) == {"rw_drift"}
    assert list(r.n_pairs) == [8, 7, 6]
    np.testing.assert_allclose(r.crps_ratio, 0.5)
    np.testing.assert_allclose(r.crps_ratio_lower, 0.5)  # constant ratio: every resample gives 0.5
    np.testing.assert_allclose(r.crps_ratio_upper, 0.5)
    np.testing.assert_allclose(r.log_score_diff, -0.4)
    assert (r.share_reference_better_crps == 1.0).all() and (r.share_reference_better_log_score == 1.0).all()
    # swapping roles inverts the ratio
    back = E.relative_skill(df, "rw_drift", E.NO_MODE)
    np.testing.assert_allclose(back.crps_ratio, 2.0)


@pytest.mark.pure
def test_relative_skill_bootstrap_is_seeded_and_brackets_the_ratio():
    df = _fake_scores(ratio=0.8, noise=0.4, seed=7)
    a = E.relative_skill(df, "model", "conditional", seed=1)
    b = E.relative_skill(df, "model", "conditional", seed=1)
    c = E.relative_skill(df, "model", "conditional", seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.crps_ratio_lower, c.crps_ratio_lower)
    assert (a.crps_ratio_lower < a.crps_ratio).all() and (a.crps_ratio < a.crps_ratio_upper).all()
    assert ((a.share_reference_better_crps > 0) & (a.share_reference_better_crps < 1)).any()


@pytest.mark.pure
def test_relative_skill_unknown_reference():
    with pytest.raises(ConfigError, match="no forecasts for reference"):
        E.relative_skill(_fake_scores(), "model", "status_quo")
