"""The backtest's variance decomposition and spread-error ratio (issue 21): pure and fake-posterior tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nkdefections import constants as C
from nkdefections.errors import ConfigError
from nkdefections.evaluate import variance as V

pytestmark = pytest.mark.pure


def _post(z: np.ndarray, rho: np.ndarray, years: list[int]) -> xr.Dataset:
    S = z.shape[0]
    return xr.Dataset(
        {C.LATENT: ((C.CHAIN, C.DRAW, C.YEAR), z[None]), C.RHO: ((C.CHAIN, C.DRAW), rho.reshape(1, S))},
        coords={C.YEAR: years},
    )


@pytest.mark.parametrize("latent", ["ar1", "random_walk"])
def test_latent_innovation_is_what_the_state_at_the_origin_does_not_predict(latent):
    rng = np.random.default_rng(1)
    S, years, origin = 500, list(range(2000, 2010)), 2005
    rho = rng.uniform(0.3, 0.9, S)
    z = rng.normal(size=(S, len(years)))
    z_o = z[:, years.index(origin)]
    shocks = rng.normal(0, 0.2, (S, 3))
    decay = rho[:, None] ** np.arange(1, 4) if latent == "ar1" else np.ones((S, 3))
    z[:, years.index(origin) + 1 : years.index(origin) + 4] = decay * z_o[:, None] + shocks
    got = V.latent_innovation(_post(z, rho, years), years, origin, [2006, 2007, 2008], latent)
    np.testing.assert_allclose(got, shocks, atol=1e-12)


def test_no_latent_has_no_innovation_and_an_unknown_latent_is_refused():
    years = [2000, 2001, 2002]
    post = _post(np.zeros((4, 3)), np.zeros(4), years)
    assert not V.latent_innovation(post, years, 2001, [2002], "none").any()
    with pytest.raises(ConfigError, match="latent 'spline'"):
        V.latent_innovation(post, years, 2001, [2002], "spline")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shares_recover_independent_sources_of_known_variance(seed):
    rng = np.random.default_rng(seed)
    S = 40_000
    params = 7.0 + rng.normal(0, 0.2, (S, 2))  # variance 0.04
    innov = rng.normal(0, 0.3, (S, 2))  # 0.09
    gdp = rng.normal(0, 0.1, (S, 2))  # 0.01
    log_mu = params + innov + gdp
    counts = rng.poisson(np.exp(log_mu))
    t = V.decompose(log_mu, log_mu - gdp, innov, counts, observed=[1100, 1100])
    expected = np.array([0.09, 0.04, 0.01]) / 0.14
    got = t[["share_latent_innovation", "share_parameters", "share_gdp_draws"]].to_numpy()
    np.testing.assert_allclose(got, np.broadcast_to(expected, got.shape), atol=0.02)
    assert (t["share_covariance"].abs() < 0.03).all()
    # Poisson noise at mu ~ 1,100 with a 0.37 log-s.d.: E[mu] / Var(Y), small but not zero
    assert ((t["count_noise"] > 0.0) & (t["count_noise"] < 0.02)).all()


def test_negative_binomial_noise_adds_the_quadratic_term():
    rng = np.random.default_rng(3)
    S = 20_000
    log_mu = np.full((S, 1), np.log(1000.0))
    od = np.full(S, 0.5)  # phi = 4: Var(Y | mu) = mu + mu^2 / 4
    counts = rng.negative_binomial(4.0, 4.0 / (4.0 + 1000.0), (S, 1))
    t = V.decompose(log_mu, log_mu, np.zeros((S, 1)), counts, [1000], od)
    assert t["count_noise"].iloc[0] == pytest.approx(1.0, abs=0.05)  # all of the variance is count noise


def _forecasts(rng, n: int, width: float) -> pd.DataFrame:
    """n forecasts whose predictive s.d. is ``width`` times the s.d. of their realised errors (0.2)."""
    return pd.DataFrame(
        {
            "mode": "conditional",
            "horizon": 1,
            "sd_total": np.full(n, 0.2 * width),
            "log_error": rng.normal(0, 0.2, n),
            **{f"share_{k}": 0.25 for k in V.SHARES},
            "count_noise": 0.01,
        }
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_spread_error_is_near_one_when_calibrated_and_below_one_when_too_wide(seed):
    rng = np.random.default_rng(seed)
    calibrated = V.spread_error(_forecasts(rng, 400, 1.0))["error_over_spread"].iloc[0]
    wide = V.spread_error(_forecasts(rng, 400, 2.0))["error_over_spread"].iloc[0]
    assert calibrated == pytest.approx(1.0, abs=0.15)
    assert wide == pytest.approx(0.5, abs=0.08)


def test_spread_error_refuses_an_empty_table():
    with pytest.raises(ConfigError, match="empty"):
        V.spread_error(pd.DataFrame())


def _pit_scores(pit: np.ndarray, horizon: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "method": "m",
            "mode": "conditional",
            "horizon": horizon,
            "pit": pit,
            "covered_80": np.abs(pit - 0.5) < 0.4,
        }
    )


def test_pit_dispersion_rejects_at_its_nominal_rate_for_calibrated_forecasts():
    # 2,000 groups of 8 uniform PITs: each tail test flags about 5% at 0.05 (binomial s.e. 0.5 pp)
    rng = np.random.default_rng(7)
    rows = [V.pit_dispersion(_pit_scores(rng.uniform(size=8))).iloc[0] for _ in range(2000)]
    t = pd.DataFrame(rows)
    assert 0.035 < (t["p_too_wide"] < 0.05).mean() < 0.065
    assert 0.035 < (t["p_too_narrow"] < 0.05).mean() < 0.065
    assert abs(t["coverage_80"].mean() - 0.8) < 0.01
    assert t["independent"].all()


def test_pit_dispersion_finds_a_forecast_twice_as_wide_as_its_errors():
    # errors N(0, 1) scored against a N(0, 2) forecast: PIT = Phi(e / 2), 40 forecasts
    from scipy import stats

    rng = np.random.default_rng(3)
    pit = stats.norm.cdf(rng.normal(size=40) / 2.0)
    row = V.pit_dispersion(_pit_scores(pit, horizon=2)).iloc[0]
    assert row["p_too_wide"] < 0.01 < row["p_too_narrow"]
    assert row["coverage_80"] > 0.9 and not row["independent"]


def test_pit_dispersion_names_a_missing_column_and_a_missing_pit():
    with pytest.raises(ConfigError, match=r"lack column\(s\) \['pit'\]"):
        V.pit_dispersion(pd.DataFrame({"method": ["m"], "mode": ["c"], "horizon": [1], "covered_80": [True]}))
    with pytest.raises(ConfigError, match="a PIT in group"):
        V.pit_dispersion(_pit_scores(np.array([0.2, np.nan])))
    with pytest.raises(ConfigError, match="empty"):
        V.pit_dispersion(_pit_scores(np.array([])))
