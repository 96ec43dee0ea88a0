"""The report's first screen, checked as a reader sees it: headless Chromium at 1280 x 800 px.

``scripts/screenshot_report.py`` (the command that makes the README's screenshot) opens the
report, reads ``getBoundingClientRect()`` of the headline table, the overlay chart and the
caveats, and saves the screen as a PNG.  Needs Debian's ``chromium`` package (``.ci/run``
installs it); without it these tests skip and say so.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

from nkdefections import constants as C
from nkdefections.data import load_data
from nkdefections.data.load import drivers_frame
from nkdefections.forecast.compare import contrasts, summary_table
from nkdefections.report.blocks import header_blocks, render_html
from nkdefections.report.headline import headline_blocks, headline_numbers
from nkdefections.report.plots import scenario_overlay
from nkdefections.scenarios.scenario import DEFAULT_SCENARIOS
from tests.helpers.fit import SMALL_GATE, SMALL_SAMPLER

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("screenshot_report", REPO / "scripts" / "screenshot_report.py")
shot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shot)

needs_chromium = pytest.mark.skipif(
    shot.chromium() is None,
    reason="no Chromium: the first-screen check needs Debian's `chromium` package (apt-get install -y chromium; "
    ".ci/run installs it)",
)


def _assert_first_screen(where: dict, png: Path) -> None:
    parts, height = where["parts"], where["viewport"]["height"]
    for name in ("table", "chart"):
        box = parts[name]
        assert box is not None, f"the report has no headline {name}"
        assert box["bottom"] <= height, f"headline {name} ends at {box['bottom']:.0f} px, below the first screen"
        assert box["right"] <= where["viewport"]["width"]
    assert parts["chart"]["loaded"], "the overlay chart did not load"
    assert parts["table"]["bottom"] <= parts["chart"]["top"] + 1  # the numbers first, then the picture
    assert parts["caveats"] is not None and parts["caveats"]["top"] < height
    with Image.open(png) as im:
        assert im.size == (where["viewport"]["width"], height)


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report with the shipped seven scenarios over 2017-2030 from constructed draws (no sampling)."""
    tmp = tmp_path_factory.mktemp("fake_run")
    rng = np.random.default_rng(3)
    names, years = list(DEFAULT_SCENARIOS), np.arange(2017, 2031)
    S, H, N = 1000, len(years), len(names)
    z = np.cumsum(rng.normal(0, 0.12, (S, 1, H)), axis=-1)
    mu = np.exp(7.3 + np.linspace(-0.6, 0.8, N)[None, :, None] + z)
    y = rng.poisson(mu)
    ext = np.zeros((N, H, len(C.DRIVERS)), dtype=bool)
    ext[1, :, 0] = ext[6, :, :] = True
    dims = (C.CHAIN, C.DRAW, C.SCENARIO, C.YEAR_FUTURE)
    fc = xr.Dataset(
        {
            C.OBSERVED: (dims, y.reshape(2, S // 2, N, H)),
            C.MU: (dims, mu.reshape(2, S // 2, N, H)),
            "extrapolated": ((C.SCENARIO, C.YEAR_FUTURE, C.DRIVER), ext),
        },
        coords={C.SCENARIO: names, C.YEAR_FUTURE: years, C.DRIVER: list(C.DRIVERS)},
    )
    data = load_data()
    drivers = drivers_frame(data.sel({C.YEAR: slice(1999, 2016)}))
    obs = drivers[C.ARRIVALS].to_numpy(dtype=float)
    draws = {n: fc[C.OBSERVED].sel(scenario=n).stack(s=(C.CHAIN, C.DRAW)).T.values.astype(float) for n in names}
    flags = {n: ", ".join(d for d in C.DRIVERS if ext[i, :, C.DRIVERS.index(d)].any()) for i, n in enumerate(names)}
    fig = scenario_overlay(
        drivers[C.YEAR].values, obs, years, draws, tmp / C.SCENARIOS_PLOT, baseline=names[0], extrapolated=flags
    )
    meta = {
        "window": [1999, 2016],
        "horizon": "2017-2030",
        "convergence": {"passed": True, "max_rhat": 1.004, "divergences": 0, "chains": 4, "draws": 1000},
        "model_config": {
            "name": "default",
            "likelihood": "poisson",
            "latent": "ar1",
            "parameterization": "log_mu",
            "lags": {},
        },
        "sampler_config": {"name": "numpyro", "chains": 4, "draws": 1000, "tune": 1000, "seed": 1},
        "fit_id": "fake",
        "cache_hit": True,
        "data_hash": "fake",
        "code_version": "test",
    }
    numbers = headline_numbers(summary_table(fc), contrasts(fc, baseline=names[0]))
    blocks = headline_blocks(numbers, meta, drivers, fig, baseline=names[0]) + header_blocks(meta, 18, title=False)
    blocks += [("p", "filler " * 400)] * 5  # the rest of a report: below the fold
    (tmp / "report.html").write_text(render_html(blocks, "nkdefections run report"), encoding="utf-8")
    return tmp


@needs_chromium
def test_first_screen_holds_the_table_and_the_chart(fake_run, tmp_path):
    """A constructed report with the shipped seven scenarios: fast, no sampling."""
    png = tmp_path / "first-screen.png"
    where = shot.first_screen(fake_run / "report.html", png)
    _assert_first_screen(where, png)


@needs_chromium
def test_screenshot_command_refuses_to_overwrite_and_reports_a_missing_chart(fake_run, tmp_path, capsys):
    png = tmp_path / "shot.png"
    assert shot.main([str(fake_run), str(png)]) == 0
    assert json.loads(capsys.readouterr().out)["parts"]["chart"]["in_first_screen"] is True
    before = png.read_bytes()
    assert shot.main([str(fake_run), str(png)]) == 2 and "--overwrite" in capsys.readouterr().err
    assert png.read_bytes() == before
    # a report whose headline sits below the first screen fails the check
    page = (fake_run / "report.html").read_text(encoding="utf-8")
    pushed = tmp_path / "pushed.html"
    pushed.write_text(page.replace('<div class="headline">', '<div style="height:900px"></div><div class="headline">'))
    assert shot.main([str(pushed), str(png), "--overwrite"]) == 1
    assert "not in the first 1280 x 800 px screen: table, chart" in capsys.readouterr().err


@pytest.mark.fit
@needs_chromium
@pytest.mark.filterwarnings("ignore:scenario .* outside the:UserWarning")
def test_real_report_first_screen(small_fit, fit_cache_dir, tmp_path):
    """The report the pipeline writes from the shared real fit (cached; no second sampling)."""
    from nkdefections import DataConfig, GateConfig, ModelConfig, SamplerConfig
    from nkdefections.forecast.config import ForecastConfig
    from nkdefections.pipeline import RunConfig, run
    from nkdefections.scenarios.scenario import load_scenario

    fcfg = ForecastConfig(scenarios=[load_scenario(n) for n in DEFAULT_SCENARIOS])
    out = run(
        DataConfig(),
        ModelConfig(),
        SamplerConfig(**SMALL_SAMPLER),
        GateConfig(**SMALL_GATE),
        RunConfig(output_dir=tmp_path / "run", cache_dir=fit_cache_dir, forecast=fcfg),
    )
    assert json.loads((out / "run.json").read_text())["cache_hit"] is True
    png = tmp_path / "report-first-screen.png"
    _assert_first_screen(shot.first_screen(out / "report.html", png), png)
    # the headline table of the page holds the run's own CSV numbers
    summary = pd.read_csv(out / "forecast_summary.csv", dtype={"year": str}, keep_default_na=False)
    for col in ("median", "lower_80", "upper_80"):
        summary[col] = summary[col].astype(float)
    numbers = headline_numbers(summary, pd.read_csv(out / "contrasts.csv", dtype={"year": str}))
    page = (out / "report.html").read_text(encoding="utf-8")
    head = page[page.index('<div class="headline">') : page.index("</table>")]
    for r in numbers.itertuples():
        assert f"<td>{r.scenario}</td>" in head
        assert f"{r.cumulative_lower_80:,.0f}–{r.cumulative_upper_80:,.0f}" in head
    assert (
        page.index('<div class="headline">')
        < page.index("<h2>Driver effects</h2>")
        < page.index("<h2>Convergence gate</h2>")
    )
    md = (out / "report.md").read_text(encoding="utf-8")
    assert f"![every scenario: median and 80% interval, over the observed series]({C.SCENARIOS_PLOT})" in md
    assert (out / C.SCENARIOS_PLOT).is_file()
