"""Nowcasting from partial-year counts: pure kernels, a fake posterior, and one real fit."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from nkdefections import constants as C
from nkdefections.cli.nowcast import _main
from nkdefections.config import ModelConfig
from nkdefections.errors import ConfigError, DataValidationError
from nkdefections.forecast import FitView
from nkdefections.forecast.nowcast.nowcast import _count_logpmf, _inverse_cdf, model_prior, nowcast, nowcast_summary
from nkdefections.forecast.nowcast.share import (
    N_FULL,
    ShareFit,
    betabinom_logpmf,
    fit_share_curve,
    naive_estimate,
    partial_loglik,
    partial_loglik_grid,
    pmf_crps,
    pmf_pit,
    pmf_quantile,
    share_curve,
    share_pairs,
    year_fraction,
)


def fixed_share(a: float = 0.0, b: float = 1.0, kappa: float | None = 80.0, n: int = 200) -> ShareFit:
    """A share curve with no parameter uncertainty (no fitting)."""
    return ShareFit(
        a=np.full(n, a),
        b=np.full(n, b),
        kappa=None if kappa is None else np.full(n, kappa),
        excluded_years=(),
        years=(2000,),
        n_pairs=1,
        ess=float(n),
    )


# ---------------------------------------------------------------- pure kernels


@pytest.mark.pure
def test_year_fraction_counts_days():
    assert year_fraction(2015, 6) == pytest.approx(181 / 365)
    assert year_fraction(2016, 6) == pytest.approx(182 / 366)  # leap year
    assert year_fraction(2005, 9, 15) == pytest.approx(258 / 365)  # "Jan-Sep15"
    assert year_fraction(2014, 12) == 1.0
    with pytest.raises(DataValidationError, match="day: 31 is after the last day"):
        year_fraction(2015, 4, 31)


@pytest.mark.pure
def test_share_curve_shape():
    f = np.linspace(0.01, 0.99, 50)
    np.testing.assert_allclose(share_curve(f, 0.0, 1.0), f, rtol=1e-9)  # even arrivals
    s = share_curve(f, 0.3, 1.4)
    assert np.all(np.diff(s) > 0)
    assert share_curve(1e-9, 0.3, 1.4) < 1e-6 and share_curve(1 - 1e-9, 0.3, 1.4) > 1 - 1e-6
    assert share_curve(0.5, 0.3, 1.4) == pytest.approx(1 / (1 + np.exp(-0.3)))


@pytest.mark.pure
def test_betabinom_matches_scipy_and_binomial_limit():
    n = np.arange(0, 60)
    ours = betabinom_logpmf(17, n, 3.5, 6.0)
    ref = stats.betabinom.logpmf(17, n, 3.5, 6.0)
    np.testing.assert_allclose(ours[n >= 17], ref[n >= 17], rtol=1e-10)
    assert np.all(np.isneginf(ours[n < 17]))
    n2 = np.arange(400, 900)
    bb = partial_loglik(300, n2, 0.5, 0.0, 1.0, 1e9)
    bi = partial_loglik(300, n2, 0.5, 0.0, 1.0, None)
    np.testing.assert_allclose(bb, bi, atol=1e-4)
    np.testing.assert_allclose(bi, stats.binom.logpmf(300, n2, 0.5), rtol=1e-10)


@pytest.mark.pure
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("overdispersed", [True, False])
def test_grid_loglik_is_the_broadcast_loglik(seed, overdispersed):
    """The separated-terms kernel the nowcast runs equals partial_loglik broadcast over (draws, grid)."""
    rng = np.random.default_rng(seed)
    S, x = 40, int(rng.integers(50, 900))
    a, b = rng.normal(0.0, 0.5, S), rng.uniform(0.6, 1.6, S)
    kappa = rng.uniform(5, 400, S) if overdispersed else None
    grid = np.arange(max(x - 30, 0), x * 6)
    frac = float(rng.uniform(0.1, 0.9))
    fast = partial_loglik_grid(x, grid, frac, a, b, kappa)
    ref = partial_loglik(x, grid[None, :], frac, a[:, None], b[:, None], None if kappa is None else kappa[:, None])
    assert fast.shape == (S, len(grid))
    np.testing.assert_array_equal(np.isneginf(fast), np.isneginf(ref))
    ok = np.isfinite(ref)
    np.testing.assert_allclose(fast[ok], ref[ok], rtol=1e-9, atol=1e-8)


@pytest.mark.pure
def test_poisson_count_logpmf_matches_scipy():
    n = np.arange(0, 3000)
    mu = np.array([[0.5], [40.0], [1234.5]])
    np.testing.assert_allclose(_count_logpmf(n, mu, None), stats.poisson.logpmf(n, mu), rtol=1e-10, atol=1e-10)


@pytest.mark.pure
@pytest.mark.parametrize("seed", [0, 1])
def test_inverse_cdf_is_the_comparison_count(seed):
    """One sorted search gives the index (cdf < u).sum() per row, zero-probability points included."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(30), size=50)
    p[:, ::4] = 0.0  # flat steps in the cdf
    p /= p.sum(axis=1, keepdims=True)
    u = rng.uniform(size=(50, 8))
    cdf = np.cumsum(p, axis=1)
    ref = np.stack([(cdf < u[:, [j]]).sum(axis=1) for j in range(8)], axis=1)
    np.testing.assert_array_equal(_inverse_cdf(p, u), np.minimum(ref, 29))
    assert np.all(p[np.arange(50)[:, None], _inverse_cdf(p, u)] > 0)


@pytest.mark.pure
def test_pmf_helpers_agree_with_brute_force():
    grid = np.arange(0, 40)
    pmf = stats.poisson.pmf(grid, 12.0)
    pmf /= pmf.sum()
    assert pmf_quantile(grid, pmf, 0.5)[0] == stats.poisson.ppf(0.5, 12.0)
    y = 15
    assert pmf_pit(grid, pmf, y) == pytest.approx(pmf[grid < y].sum() + 0.5 * pmf[y])
    e_abs = np.sum(pmf * np.abs(grid - y))
    e_pair = np.sum(pmf[:, None] * pmf[None, :] * np.abs(grid[:, None] - grid[None, :]))
    assert pmf_crps(grid, pmf, y) == pytest.approx(e_abs - 0.5 * e_pair, rel=1e-9)
    assert pmf_crps(grid, pmf, 45) == pytest.approx(np.sum(pmf * np.abs(grid - 45)) - 0.5 * e_pair, rel=1e-9)


@pytest.mark.pure
def test_share_fit_recovers_a_known_curve():
    rng = np.random.default_rng(3)
    a, b, kappa = 0.3, 1.3, 150.0
    years = np.repeat(np.arange(1960, 2000), 2)
    f = np.tile([0.25, 0.5], 40)
    final = rng.integers(1000, 3000, size=len(years))
    s = share_curve(f, a, b)
    x = rng.binomial(final, rng.beta(kappa * s, kappa * (1 - s)))
    import pandas as pd

    pairs = pd.DataFrame({"year": years, "fraction": f, "partial": x, "final": final})
    fit = fit_share_curve(pairs, n_draws=2000, seed=1)
    assert np.quantile(fit.a, 0.01) < a < np.quantile(fit.a, 0.99)
    assert np.quantile(fit.b, 0.01) < b < np.quantile(fit.b, 0.99)
    assert np.quantile(fit.kappa, 0.01) < kappa < np.quantile(fit.kappa, 0.99)
    assert np.std(fit.b) < 0.2  # informative, not the prior
    left = fit_share_curve(pairs, exclude_years=[1960, 1961], n_draws=500, seed=1)
    assert left.excluded_years == (1960, 1961) and 1960 not in left.years and left.n_pairs == len(pairs) - 4


@pytest.mark.pure
def test_share_pairs_from_the_data_files():
    pairs = share_pairs()
    years = sorted(set(pairs["year"]))
    assert years == [2002, 2003, 2004, 2005, 2006, 2007, 2008, 2009, 2011, 2012, 2013, 2014, 2015, 2016]
    mid = pairs[pairs["day"].notna()].set_index("year")
    assert mid.loc[2005, "day"] == 15 and mid.loc[2011, "day"] == 17
    h1 = pairs[(pairs["year"] == 2016) & (pairs["month_end"] == 6)].iloc[0]
    assert (h1["partial"], h1["final"]) == (749, 1418)


# ---------------------------------------------------------------- the nowcast without a model


@pytest.mark.pure
def test_loguniform_nowcast_is_x_over_share():
    """With p(N) ~ 1/N and a binomial-free share (large kappa) the nowcast centres on x / s."""
    res = nowcast(500, 2015, 6, share=fixed_share(kappa=1e7))
    s = year_fraction(2015, 6)
    row = nowcast_summary(res).set_index("quantity").loc["full_year"]
    # the posterior is then negative binomial: trials to the x-th success, mean x / s
    assert row["mean"] == pytest.approx(500 / s, rel=0.002)
    assert row["lower_95"] == pytest.approx(stats.nbinom.ppf(0.025, 500, s) + 500, abs=2)
    assert row["upper_95"] == pytest.approx(stats.nbinom.ppf(0.975, 500, s) + 500, abs=2)
    assert res.attrs["naive_estimate"] == pytest.approx(naive_estimate(500, s))
    assert res[N_FULL].values.min() >= 500
    assert res["full_year_pmf"].sum() == pytest.approx(1.0)
    assert "next_year_pmf" not in res  # no model, no next-year forecast


@pytest.mark.pure
def test_block_size_changes_no_result(monkeypatch):
    """Draws are processed in blocks bounded by the grid's length; the blocking leaves every output as it was."""
    import importlib

    nc = importlib.import_module("nkdefections.forecast.nowcast.nowcast")  # the module, not the function

    rng = np.random.default_rng(3)
    share = ShareFit(
        a=rng.normal(0, 0.1, 300), b=rng.uniform(0.9, 1.1, 300), kappa=rng.uniform(40, 90, 300),
        excluded_years=(), years=(2000,), n_pairs=1, ess=300.0,
    )
    whole = nowcast(400, 2015, 6, share=share, chunk=500)
    monkeypatch.setattr(nc, "BLOCK_CELLS", 10_000)  # blocks of a few draws on this grid
    assert nc._rows_per_block(500, whole.sizes[N_FULL]) < 10
    blocked = nowcast(400, 2015, 6, share=share, chunk=500)
    np.testing.assert_allclose(blocked["full_year_pmf"], whole["full_year_pmf"], rtol=1e-10, atol=1e-15)
    np.testing.assert_array_equal(blocked["full_year"], whole["full_year"])


@pytest.mark.pure
def test_overdispersion_widens_the_interval():
    narrow = nowcast_summary(nowcast(500, 2015, 6, share=fixed_share(kappa=None))).iloc[0]
    wide = nowcast_summary(nowcast(500, 2015, 6, share=fixed_share(kappa=50.0))).iloc[0]
    assert (wide["upper_80"] - wide["lower_80"]) > 2 * (narrow["upper_80"] - narrow["lower_80"])
    late = nowcast_summary(nowcast(900, 2015, 11, share=fixed_share(kappa=50.0))).iloc[0]
    assert (late["upper_80"] - late["lower_80"]) / late["median"] < (wide["upper_80"] - wide["lower_80"]) / wide[
        "median"
    ]


@pytest.mark.pure
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(partial_count=-5, year=2016, month_end=6), DataValidationError, "partial_count: -5 is negative"),
        (dict(partial_count=7.5, year=2016, month_end=6), DataValidationError, "partial_count: 7.5"),
        (dict(partial_count=True, year=2016, month_end=6), DataValidationError, "partial_count"),
        (dict(partial_count=749, year=2016, month_end=13), DataValidationError, "month_end: 13 is not in 1..12"),
        (dict(partial_count=749, year=2016, month_end=0), DataValidationError, "month_end: 0"),
        (dict(partial_count=749, year=2016, month_end=6, day=40), DataValidationError, "day: 40"),
        (dict(partial_count=749, year=2017, month_end=6), ConfigError, "year: 2017 is after 2016"),
        (dict(partial_count=749, year=1990, month_end=6), ConfigError, "year: 1990"),
        (dict(partial_count=749, year=2016, month_end=6, prior="model"), ConfigError, "needs a fitted model"),
        (dict(partial_count=749, year=2016, month_end=6, prior="flat"), ConfigError, "prior: unknown option 'flat'"),
    ],
)
def test_bad_input_raises_the_package_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        nowcast(**kwargs)


@pytest.mark.pure
def test_cli_reports_bad_input(capsys):
    assert _main(["--year", "2016", "--month-end", "6", "--count", "-1"]) == 2
    assert "partial_count: -1 is negative" in capsys.readouterr().err


# ---------------------------------------------------------------- a fake posterior


def fake_model(rho: float, sigma: float) -> FitView:
    """A fit as data with a fake posterior (latent / log_mu, AR(1)): no model, no sampling."""
    years = np.arange(2000, 2006)
    S = 400
    rng = np.random.default_rng(0)
    latent = rng.normal(0, 0.3, size=(1, S, len(years)))
    fixed = np.log(np.linspace(500, 1000, len(years)))[None, None, :] + np.zeros((1, S, 1))
    post = xr.Dataset(
        {
            C.LATENT: ((C.CHAIN, C.DRAW, C.YEAR), latent),
            C.LOG_MU: ((C.CHAIN, C.DRAW, C.YEAR), fixed + latent),
            C.INTERCEPT: ((C.CHAIN, C.DRAW), np.zeros((1, S))),
            C.RHO: ((C.CHAIN, C.DRAW), np.full((1, S), rho)),
            C.SIGMA_LATENT: ((C.CHAIN, C.DRAW), np.full((1, S), sigma)),
        },
        coords={C.CHAIN: [0], C.DRAW: np.arange(S), C.YEAR: years},
    )
    return FitView.from_posterior(
        post,
        config=ModelConfig(latent="ar1"),
        data=xr.Dataset(attrs={"first_year": 2000, "last_year": 2005}),
        years=years,
        arrivals=np.linspace(500, 1000, len(years)).round(),
        attrs={},
        data_hash="fake",
    )


@pytest.mark.pure
def test_model_prior_carries_the_latent_state_one_step():
    m = fake_model(rho=0.5, sigma=0.0)
    pr = model_prior(m, 2003)
    lat = m.arrays["latent"]
    fixed = np.log(np.linspace(500, 1000, 6))
    np.testing.assert_allclose(pr["mu"], np.exp(fixed[3] + 0.5 * lat[:, 2]))  # year t from t-1, not from t
    np.testing.assert_allclose(pr["mu_next"], np.exp(fixed[4] + 0.25 * lat[:, 2]))
    assert pr["overdispersion"] is None
    with pytest.raises(ConfigError, match="not after the first fitted year"):
        model_prior(m, 2000)


@pytest.mark.pure
def test_nowcast_with_fake_model_updates_both_years():
    m = fake_model(rho=0.9, sigma=0.1)
    low = nowcast(300, 2003, 6, model=m, share=fixed_share(), seed=1)
    high = nowcast(500, 2003, 6, model=m, share=fixed_share(), seed=1)
    sl, sh = nowcast_summary(low).set_index("quantity"), nowcast_summary(high).set_index("quantity")
    assert sl.loc["full_year", "median"] < sl.loc["full_year_prior", "median"] < sh.loc["full_year", "median"]
    assert sl.loc["next_year", "median"] < sh.loc["next_year", "median"]  # persistence carries the surprise
    assert sl.loc["full_year_prior", "median"] == sh.loc["full_year_prior", "median"]
    assert (high["full_year"].values >= 500).all()
    assert low.attrs["effective_draws"] > 100 and high.attrs["effective_draws"] > 100
    with pytest.warns(UserWarning, match="effective draws"):
        nowcast(3000, 2003, 6, model=m, share=fixed_share(), seed=1)  # far outside the prior


# ---------------------------------------------------------------- the real fit


@pytest.mark.fit
def test_nowcast_2016_first_half_on_the_real_fit(small_fit):
    res = nowcast(749, 2016, 6, model=small_fit, seed=2)
    s = nowcast_summary(res).set_index("quantity")
    assert list(s.index) == ["full_year", "full_year_prior", "next_year", "next_year_prior"]
    assert list(s["year"]) == [2016, 2016, 2017, 2017]
    w = lambda q: s.loc[q, "upper_80"] - s.loc[q, "lower_80"]  # noqa: E731
    assert w("full_year") < 0.7 * w("full_year_prior")  # the partial count is informative
    assert s.loc["full_year", "lower_95"] <= 1418 <= s.loc["full_year", "upper_95"]  # the final count
    draws = res["full_year"].values
    assert np.median(draws) == pytest.approx(s.loc["full_year", "median"], rel=0.03)
    assert res.attrs["share_excluded_years"] == "2016" and res.attrs["effective_draws"] > 200
    future = nowcast(600, 2017, 6, model=small_fit, seed=2)  # carried through the status-quo forecast
    assert nowcast_summary(future).set_index("quantity").loc["next_year", "year"] == 2018
