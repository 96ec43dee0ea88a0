"""Contrasts, exceedance and attribution on a constructed forecast (no sampling)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from nkdefections import constants as C
from nkdefections.constants import CUMULATIVE
from nkdefections.errors import ScenarioError
from nkdefections.forecast.compare import (
    attribution,
    contrasts,
    exceedance,
    summary_table,
    with_cumulative,
)
from nkdefections.validate import parse_thresholds
from tests.helpers.fakes import YEARS, fake_forecast

pytestmark = pytest.mark.pure


def test_summary_table_has_every_year_and_the_cumulative_total():
    fc, _ = fake_forecast()
    t = summary_table(fc)
    assert len(t) == 3 * (len(YEARS) + 1)
    cum = t[(t.scenario == "status_quo") & t.year.str.startswith("cumulative")].iloc[0]
    total = fc[C.OBSERVED].sel(scenario="status_quo").sum(C.YEAR_FUTURE)
    assert cum["median"] == pytest.approx(float(total.median()))
    assert cum["lower_95"] < cum["lower_80"] < cum["lower_50"] < cum["median"] < cum["upper_50"] < cum["upper_95"]
    assert t[t.scenario == "crack"]["extrapolated"].all()
    assert not t[t.scenario == "status_quo"]["extrapolated"].any()
    t2 = summary_table(fc, window=(2017, 2018))
    assert "cumulative 2017-2018" in set(t2.year)


def test_contrasts_probabilities_and_crn():
    fc, _ = fake_forecast()
    c = contrasts(fc).set_index(["scenario", "year"])
    assert set(c.index.get_level_values(0)) == {"crack", "tight"}
    crack = c.loc[("crack", "cumulative 2017-2020")]
    assert crack["prob_greater"] < 0.01 and crack["upper_90"] < 0
    assert c.loc[("tight", "2018"), "prob_greater"] > 0.9
    # a scenario against itself differs by exactly zero draw by draw (common random numbers)
    same = contrasts(fc, [("status_quo", "status_quo")])
    assert (same["mean_difference"] == 0).all() and (same["prob_greater"] == 0).all()
    with pytest.raises(ScenarioError, match="'nope' is not in this forecast"):
        contrasts(fc, [("nope", "status_quo")])


def test_exceedance_matches_direct_count():
    fc, _ = fake_forecast()
    thr = parse_thresholds([{"year": 2019, "arrivals": 1500}, {"year": "cumulative", "arrivals": 5000}])
    e = exceedance(fc, thr).set_index(["scenario", "year"])
    direct = float((fc[C.OBSERVED].sel(scenario="tight", year_future=2019) > 1500).mean())
    assert e.loc[("tight", "2019"), "prob_exceed"] == pytest.approx(direct)
    with pytest.raises(ScenarioError, match="outside the horizon"):
        exceedance(fc, [(2035, 10.0)])


@pytest.mark.parametrize(
    "spec, message",
    [
        ([{"year": 2020, "arrivals": "many"}], "compare.thresholds[0].arrivals: 'many' is not a number"),
        ([{"year": 2020, "arrivals": True}], "is not a number"),
        ([{"year": 2020}], "keys 'year' and 'arrivals'"),
        ([{"year": "2020x", "arrivals": 3}], "compare.thresholds[0].year"),
        ("2000", "expected a list"),
    ],
)
def test_bad_thresholds(spec, message):
    with pytest.raises(ScenarioError) as err:
        parse_thresholds(spec)
    assert message in str(err.value)


def test_attribution_adds_up_and_isolates_the_changed_driver():
    fc, beta = fake_forecast()
    a = attribution(fc, beta)
    cum = a[a.year.str.startswith("cumulative")].set_index(["scenario", "driver"])
    gap = (fc[C.MU].sel(scenario="crack") - fc[C.MU].sel(scenario="status_quo")).sum(C.YEAR_FUTURE).mean()
    assert cum.loc[("crack", "border"), "mean_contribution"] == pytest.approx(float(gap), rel=1e-9)
    assert cum.loc[("crack", "sanctions"), "mean_contribution"] == 0
    assert cum.loc[("tight", "sanctions"), "mean_contribution"] > 0
    assert cum.loc[("tight", "border"), "mean_contribution"] == 0


def test_attribution_splits_a_two_driver_gap_exactly():
    fc, beta = fake_forecast()
    both = fc.copy(deep=True)
    both[C.DRIVER_VALUES].loc[{C.SCENARIO: "tight", C.DRIVER: "border"}] = 2.25
    x = both[C.DRIVER_VALUES].stack(sample=(C.CHAIN, C.DRAW)).transpose("sample", ...)
    lm = 7.5 + np.einsum("snhk,sk->snh", x.values, beta)
    both[C.MU].values[:] = np.exp(lm).reshape(both[C.MU].shape)  # z = 0: a clean log-linear gap
    a = attribution(both, beta, [("tight", "status_quo")])
    per_year = a[~a.year.str.startswith("cumulative")]
    total = per_year.groupby("year")["mean_contribution"].sum()
    gap = (both[C.MU].sel(scenario="tight") - both[C.MU].sel(scenario="status_quo")).mean((C.CHAIN, C.DRAW))
    np.testing.assert_allclose(total.values, gap.values, rtol=1e-9)
    cum = a[a.year.str.startswith("cumulative")].set_index("driver")
    assert cum.loc["border", "mean_contribution"] < 0 < cum.loc["sanctions", "mean_contribution"]


def test_report_blocks_for_a_single_scenario_have_no_contrasts():
    import pandas as pd

    from nkdefections.report.blocks import forecast_blocks, render_html, render_markdown
    from nkdefections.scenarios.scenario import Scenario

    fc, _ = fake_forecast()
    one = fc.sel(scenario=["status_quo"])
    blocks = forecast_blocks(
        scenarios=[Scenario("status_quo", description="reference")],
        summary=summary_table(one),
        contrasts=pd.DataFrame(),
        exceedance=pd.DataFrame(),
        attribution=pd.DataFrame(),
        extrapolation=pd.DataFrame(),
        figures={},
        horizon="2017-2020",
    )
    md = render_markdown(blocks)
    assert "One scenario only" in md and "Cumulative arrivals" in md and "Contrasts" not in md
    assert "<table>" in render_html(blocks, "t")


def test_with_cumulative_equals_the_concat_of_the_years_and_their_sum():
    fc, _ = fake_forecast()
    years = fc[C.YEAR_FUTURE].values
    for da in (fc[C.OBSERVED].astype(float), fc[C.MU], fc[C.MU].isel({C.SCENARIO: [0]})):
        for window in ((int(years[0]), int(years[-1])), (int(years[1]), int(years[2]))):
            cum = da.sel({C.YEAR_FUTURE: slice(*window)}).sum(C.YEAR_FUTURE).expand_dims({C.YEAR_FUTURE: [CUMULATIVE]})
            base = da.assign_coords({C.YEAR_FUTURE: da[C.YEAR_FUTURE].values.astype(object)})
            xr.testing.assert_identical(with_cumulative(da, window), xr.concat([base, cum], dim=C.YEAR_FUTURE))
