"""Classical baselines (pure: numpy/scipy/statsmodels, no PyMC)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from nkdefections.errors import ConfigError, DataValidationError
from nkdefections.evaluate import baselines as B

pytestmark = pytest.mark.pure

# Arrivals 1999-2016 (data/raw/arrivals_annual.csv); the first 10 are the shortest backtest window.
YEARS = np.arange(1999, 2017)
ARRIVALS = np.array(
    [148, 312, 583, 1142, 1285, 1898, 1384, 2028, 2554, 2803, 2914, 2402, 2706, 1502, 1514, 1397, 1275, 1418]
)


def _fit(name: str, n: int = 10, horizon: int = 3) -> B.BaselineForecast:
    return B.fit_baseline(name, YEARS[:n], ARRIVALS[:n], horizon)


def test_rw_drift_recovers_drift_and_textbook_variance():
    n, a, b, eps = 11, 5.0, 0.12, 0.01
    t = np.arange(n)
    z = a + b * t + eps * (-1.0) ** t  # log changes b -+ 2 eps alternate; 10 of them average to b exactly
    f = B.fit_baseline("rw_drift", 2003 + t, np.exp(z), 3)  # after the start-up: every change counts
    h = np.arange(1, 4)
    np.testing.assert_allclose(f.loc, z[-1] + h * b, rtol=0, atol=1e-12)
    s = np.sqrt(10 * (2 * eps) ** 2 / 9)  # sample sd of the 10 log changes
    np.testing.assert_allclose(f.scale, s * np.sqrt(h + h**2 / 10), rtol=1e-10)
    assert np.isinf(f.df)  # Normal on the log scale: finite CRPS
    np.testing.assert_array_equal(f.target_years, [2014, 2015, 2016])


def test_no_change_median_is_last_value_and_spread_grows_like_sqrt_h():
    f = _fit("no_change")
    assert [f.median(h) for h in (1, 2, 3)] == [2803] * 3
    np.testing.assert_allclose(f.scale / f.scale[0], np.sqrt([1, 2, 3]))
    d = np.diff(np.log(ARRIVALS[:10]))[3:]  # the changes into 2003..2008: the start-up (to 2002) is left out
    assert f.scale[0] == pytest.approx(np.sqrt(np.mean(d**2)))  # spread of the one-year log changes, mean 0
    assert np.isinf(f.df)


def test_random_walks_take_their_spread_after_the_start_up():
    # the figures: s from all changes ~0.40-0.46, from 2003 on ~0.24-0.30 on the backtest windows
    for n in range(10, 18):  # origins 2008..2015
        s_fair = _fit("no_change", n=n).scale[0]
        d = np.diff(np.log(ARRIVALS[:n]))
        assert s_fair == pytest.approx(np.sqrt(np.mean(d[3:] ** 2)))
        assert 0.2 < s_fair < 0.32 < np.sqrt(np.mean(d**2))
    # too few post-start-up changes: all are used, and the forecast says so
    f = _fit("no_change", n=5)  # 1999..2003: one change after 2002
    assert f.scale[0] == pytest.approx(np.sqrt(np.mean(np.diff(np.log(ARRIVALS[:5])) ** 2)))
    assert any("start-up" in w for w in f.warnings)


@pytest.mark.parametrize("name", ["no_change", "rw_drift", "ets", "arima"])
def test_pmf_sums_to_one(name):
    f = _fit(name)
    ys = np.arange(0, 200_000)
    dist = B._dist(f.df)
    for h in (1, 2, 3):
        p = np.exp(f.log_pmf(h, ys))
        # the masses telescope to F(log(N + 0.5)) exactly, and that is ~1
        expected = dist.cdf((np.log(ys[-1] + 0.5) - f.loc[h - 1]) / f.scale[h - 1])
        assert p.sum() == pytest.approx(expected, abs=1e-9)
        assert p.sum() == pytest.approx(1.0, abs=1e-3)  # F(log 2e5) >= 0.999 here


def test_count_log_pmf_edges_and_far_tail():
    loc, scale = np.log(1000.0), 0.2
    assert float(B.count_log_pmf(0, loc, scale, np.inf)) == pytest.approx(
        stats.norm.logcdf((np.log(0.5) - loc) / scale)
    )
    assert float(B.count_log_pmf(-3, loc, scale, np.inf)) == -np.inf
    # 12 sd above the centre a CDF difference would round to 0; the log-sf route stays finite and right
    y = int(np.exp(loc + 12 * scale))
    lp = float(B.count_log_pmf(y, loc, scale, np.inf))
    approx = stats.norm.logpdf((np.log(y) - loc) / scale) - np.log(scale * y)  # density x width 1
    assert np.isfinite(lp) and lp == pytest.approx(approx, abs=0.01)
    with pytest.raises(DataValidationError, match="integers"):
        B.count_log_pmf(2.5, loc, scale, np.inf)


@pytest.mark.parametrize("name", ["no_change", "rw_drift", "ets"])
def test_draws_match_the_pmf(name):
    f = _fit(name)
    n = 20_000
    draws = f.samples(np.random.default_rng(123), n)
    assert draws.shape == (3, n) and draws.dtype == np.int64 and draws.min() >= 0
    for h in (1, 3):
        # 10 bins with roughly equal predictive mass, edges at predictive quantiles
        edges = np.unique(
            np.floor(np.exp(f.loc[h - 1] + f.scale[h - 1] * B._dist(f.df).ppf(np.linspace(0, 1, 11)[1:-1])))
        )
        bins = np.concatenate([[0], edges, [np.inf]])
        obs = np.histogram(draws[h - 1], bins=bins)[0]
        ys = np.arange(0, int(edges[-1]))
        p = np.exp(f.log_pmf(h, ys))
        exp_inner = np.array([p[int(lo) : int(hi)].sum() for lo, hi in zip(bins[:-2], bins[1:-1], strict=True)])
        expected = n * np.append(exp_inner, 1 - exp_inner.sum())
        assert stats.chisquare(obs, expected).pvalue > 1e-3


def test_draws_are_seeded():
    f = _fit("rw_drift")
    np.testing.assert_array_equal(f.samples(np.random.default_rng(1), 50), f.samples(np.random.default_rng(1), 50))


def test_ets_runs_on_ten_points_and_records_boundary_fits():
    f = _fit("ets")
    assert f.method == "ets"
    assert np.all(np.isfinite(f.loc)) and np.all(f.scale > 0) and np.isinf(f.df)
    np.testing.assert_array_equal(f.target_years, [2009, 2010, 2011])
    # on this window the optimum sits at smoothing_level ~ 0: it must be reported, not hidden
    assert any("smoothing_level" in w for w in f.warnings)


def test_ets_falls_back_to_arima_explicitly(monkeypatch, caplog):
    def broken(z, horizon):
        raise np.linalg.LinAlgError("singular matrix")

    monkeypatch.setattr(B, "_ets_fit", broken)
    with caplog.at_level(logging.WARNING, logger="nkdefections.evaluate.baselines"):
        f = _fit("ets")
    assert f.name == "ets" and f.method == "arima (fallback from ets)"
    assert "LinAlgError" in f.warnings[0] and "fell back" in f.warnings[0]
    assert "fell back" in caplog.text
    np.testing.assert_allclose(f.loc, _fit("arima").loc)


def test_statsmodels_warnings_are_recorded_and_logged(monkeypatch, caplog):
    real = B._ets_fit

    def warns(z, horizon):
        warnings.warn("Maximum Likelihood optimization failed to converge.", ConvergenceWarning, stacklevel=1)
        return real(z, horizon)

    monkeypatch.setattr(B, "_ets_fit", warns)
    with caplog.at_level(logging.WARNING, logger="nkdefections.evaluate.baselines"):
        f = _fit("ets")
    assert f.method == "ets"
    assert any(w.startswith("ets: ConvergenceWarning") for w in f.warnings)
    assert "ConvergenceWarning" in caplog.text


def test_arima_runs_on_ten_points():
    f = _fit("arima")
    assert f.method == "arima" and np.all(np.isfinite(f.loc))
    assert np.all(np.diff(f.scale) > 0)  # an integrated model: uncertainty grows with h


def test_unknown_baseline_names_the_options():
    with pytest.raises(ConfigError, match="no_change, rw_drift, ets, arima"):
        _fit("prophet")


@pytest.mark.parametrize(
    ("years", "counts", "match"),
    [
        (YEARS[:4], ARRIVALS[:4], "at least 5"),
        (YEARS[:6], [148, 312, np.nan, 1142, 1285, 1898], "count in 2001 is nan"),
        (YEARS[:6], [148, 312, 0, 1142, 1285, 1898], "count in 2001 is 0"),
        (YEARS[:6], [148, 312, -5, 1142, 1285, 1898], "count in 2001 is -5"),
        ([1999, 2000, 2002, 2003, 2004, 2005], ARRIVALS[:6], "2000 is followed by 2002"),
        (YEARS[:6], ARRIVALS[:5], "equal length"),
    ],
)
def test_bad_input_is_rejected_with_the_value(years, counts, match):
    with pytest.raises(DataValidationError, match=match):
        B.fit_baseline("rw_drift", years, counts, 3)


def test_bad_horizon_and_degenerate_series():
    with pytest.raises(ConfigError, match="horizon"):
        _fit("no_change", horizon=0)
    with pytest.raises(DataValidationError, match="zero spread"):
        B.fit_baseline("no_change", YEARS[:6], np.full(6, 1000), 3)
    f = _fit("no_change")
    with pytest.raises(ConfigError, match="outside 1..3"):
        f.log_pmf(4, 1000)
