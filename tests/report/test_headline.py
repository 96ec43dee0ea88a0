"""The report's first screen on a constructed forecast (no sampling): its numbers are the
forecast layer's, its caveats come from the run, its chart follows the fitted window."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from nkdefections import constants as C
from nkdefections.data import load_data
from nkdefections.data.load import drivers_frame
from nkdefections.forecast.compare import contrasts, summary_table
from nkdefections.report.blocks import render_html, render_markdown
from nkdefections.report.headline import (
    count,
    headline_blocks,
    headline_caveats,
    headline_numbers,
    headline_table,
    probability,
)
from nkdefections.report.plots import scenario_overlay_figure
from tests.helpers.fakes import YEARS, fake_forecast

pytestmark = pytest.mark.pure

META = {
    "window": [1999, 2016],
    "horizon": "2017-2020",
    "convergence": {"passed": True, "max_rhat": 1.0041, "divergences": 0, "chains": 2, "draws": 500},
}


@pytest.fixture(scope="module")
def drivers() -> pd.DataFrame:
    data = load_data()
    return drivers_frame(data.sel({C.YEAR: slice(1999, 2016)}))


class _Tables(HTMLParser):
    """The cells of every <table> in a page, as lists of rows of text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _first_table(page: str) -> pd.DataFrame:
    parser = _Tables()
    parser.feed(page)
    head, *rows = parser.tables[0]
    return pd.DataFrame(rows, columns=head)


def test_headline_numbers_are_the_forecast_tables_numbers():
    fc, _ = fake_forecast()
    summary, contr = summary_table(fc), contrasts(fc, baseline="status_quo")
    n = headline_numbers(summary, contr).set_index("scenario")
    assert list(n.index) == ["status_quo", "crack", "tight"]
    first, cum = str(YEARS[0]), f"cumulative {YEARS[0]}-{YEARS[-1]}"
    for name in n.index:
        y = fc[C.OBSERVED].sel(scenario=name).stack(s=(C.CHAIN, C.DRAW))
        # straight from the draws, not from the tables the headline reads
        assert n.loc[name, "first_median"] == pytest.approx(float(y.sel(year_future=YEARS[0]).median()))
        total = y.sum(C.YEAR_FUTURE).values
        assert n.loc[name, "cumulative_median"] == pytest.approx(float(np.median(total)))
        assert n.loc[name, "cumulative_lower_80"] == pytest.approx(float(np.quantile(total, 0.10)))
        assert n.loc[name, "cumulative_upper_80"] == pytest.approx(float(np.quantile(total, 0.90)))
        row = summary[(summary.scenario == name) & (summary.year == first)].iloc[0]
        assert (n.loc[name, "first_lower_80"], n.loc[name, "first_upper_80"]) == (row["lower_80"], row["upper_80"])
        assert n.loc[name, "cumulative"] == cum
    for name in ("crack", "tight"):
        c = contr[(contr.scenario == name) & (contr.year == cum)].iloc[0]
        assert n.loc[name, "prob_greater"] == c["prob_greater"] and n.loc[name, "baseline"] == "status_quo"
        total = fc[C.OBSERVED].sel(scenario=name).sum(C.YEAR_FUTURE) - fc[C.OBSERVED].sel(scenario="status_quo").sum(
            C.YEAR_FUTURE
        )
        assert n.loc[name, "prob_greater"] == pytest.approx(float((total > 0).mean()))
    assert n.loc["status_quo", "baseline"] == "status_quo" and np.isnan(n.loc["status_quo", "prob_greater"])
    # the fake flags the border in every year of "crack" only
    assert dict(n["extrapolated_drivers"]) == {"status_quo": "", "crack": "border", "tight": ""}


def test_the_html_table_shows_those_numbers(drivers):
    fc, _ = fake_forecast()
    numbers = headline_numbers(summary_table(fc), contrasts(fc))
    page = render_html(headline_blocks(numbers, META, drivers, None, baseline="status_quo"), "t")
    shown = _first_table(page).set_index("scenario")
    first, window = str(YEARS[0]), f"{YEARS[0]}-{YEARS[-1]}"
    assert list(shown.columns) == [
        f"{first} median",
        f"{first} 80%",
        f"total {window}",
        "total 80%",
        "P(total > status_quo)",
        "extrapolated",
    ]
    for r in numbers.itertuples():
        s = shown.loc[r.scenario]
        assert s[f"{first} median"] == count(r.first_median)
        assert s[f"{first} 80%"] == f"{count(r.first_lower_80)}–{count(r.first_upper_80)}"
        assert s[f"total {window}"] == count(r.cumulative_median)
        assert s["total 80%"] == f"{count(r.cumulative_lower_80)}–{count(r.cumulative_upper_80)}"
    assert shown.loc["status_quo", "P(total > status_quo)"] == "baseline"
    assert shown.loc["tight", "P(total > status_quo)"] == probability(
        numbers.set_index("scenario").loc["tight", "prob_greater"]
    )
    assert shown.loc["crack", "extrapolated"] == "border" and shown.loc["tight", "extrapolated"] == "—"
    assert '<td class="flag">border</td>' in page  # the flag is styled
    # the markdown report leads with the same table
    md = render_markdown(headline_blocks(numbers, META, drivers, None, baseline="status_quo"))
    assert md.index("| scenario |") < md.index("Read with care")


def test_probabilities_at_the_ends_are_not_rounded_to_certainty():
    assert probability(0.995) == "> 0.99" and probability(0.004) == "< 0.01" and probability(0.5) == "0.50"
    assert probability(0.99) == "0.99" and probability(0.01) == "0.01"


def test_the_window_and_the_pairs_set_the_labels():
    fc, _ = fake_forecast()
    t = headline_table(headline_numbers(summary_table(fc, (2017, 2018)), contrasts(fc, window=(2017, 2018))))
    assert "total 2017-2018" in t.columns
    # two baselines: the column says so, each cell names its own
    pairs = [("crack", "status_quo"), ("tight", "crack")]
    t = headline_table(headline_numbers(summary_table(fc), contrasts(fc, pairs))).set_index("scenario")
    assert "P(total > its baseline)" in t.columns
    assert t.loc["tight", "P(total > its baseline)"].endswith("vs crack")
    # one scenario: nothing to compare
    one = fc.sel(scenario=["status_quo"])
    t = headline_table(headline_numbers(summary_table(one), pd.DataFrame()))
    assert list(t["P(total > its baseline)"]) == ["—"]


def test_caveats_come_from_the_run(drivers):
    fc, _ = fake_forecast()
    numbers = headline_numbers(summary_table(fc), contrasts(fc))
    size, ext, fit = headline_caveats(numbers, META, drivers, baseline="status_quo")
    base = numbers.set_index("scenario").loc["status_quo"]
    assert size.startswith("18 yearly observations (1999-2016)")
    assert f"{count(base.cumulative_lower_80)} to {count(base.cumulative_upper_80)}" in size
    assert ext.startswith("1 of 3 scenarios take a driver outside its 1999-2016 range")
    border = drivers[drivers[C.BORDER_INDEX] != drivers[C.BORDER_INDEX].iloc[0]][C.YEAR].min()
    r = np.corrcoef(drivers[C.YEAR], drivers[C.SANCTIONS_INDEX])[0, 1]
    assert "passed its convergence gate (max R-hat 1.004, 0 divergences)" in fit
    assert f"moves only from {border}" in fit and f"r = {r:.2f}" in fit
    # another window, a failed gate, no extrapolation: other words, and the failure first
    other = {**META, "window": [2001, 2014], "convergence": {**META["convergence"], "passed": False}}
    plain = numbers.assign(extrapolated_drivers="")
    first, size2, ext2 = headline_caveats(plain, other, drivers, baseline="status_quo")
    assert "FAILED its convergence gate" in first and "do not rely on these numbers" in first
    assert size2.startswith("14 yearly observations (2001-2014)")
    assert ext2 == "No scenario takes a driver outside its 2001-2014 range."


def test_overlay_chart_has_every_scenario_and_follows_the_window():
    fc, _ = fake_forecast()
    draws = {str(s): fc[C.OBSERVED].sel(scenario=s).stack(s_=(C.CHAIN, C.DRAW)).T.values for s in fc.scenario.values}
    years_obs = np.arange(2001, 2017)
    fig = scenario_overlay_figure(
        years_obs,
        np.linspace(300, 1500, len(years_obs)),
        YEARS,
        draws,
        baseline="status_quo",
        extrapolated={"crack": "border", "tight": "", "status_quo": ""},
    )
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "observed 2001-2016",
        "status_quo (baseline)",
        "crack",
        "tight",
    ]
    assert legend.get_title().get_text() == "dashed: a driver outside its 2001-2016 range"
    styles = {line.get_label(): line.get_linestyle() for line in ax.get_lines() if line.get_label() in draws}
    assert styles == {"crack": "--", "tight": "-"}
    assert "Forecast 2017-2020" in ax.get_title()
    # one 80% band per scenario, and the medians are the draws' medians
    assert len(ax.collections) == len(draws)
    med = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    np.testing.assert_allclose(med["tight"], np.median(draws["tight"], axis=0))
    assert fig.get_size_inches()[0] * fig.dpi == 720
