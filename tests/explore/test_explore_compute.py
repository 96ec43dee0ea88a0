"""The explorer's numbers, saving and export on a fake posterior (no sampling, no browser).

The model is a real :class:`DefectionModel` on the real data whose posterior is a constructed
DataTree, so every number can be checked against the library's own functions on
``forecast()`` of the same paths and seed.
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nkdefections import constants as C
from nkdefections.explore import Explorer, FormError, Settings, form_to_scenario, scenario_to_form
from nkdefections.explore.output import comparison_csv, provenance_info, result, save_scenario
from nkdefections.forecast import attribution, contrasts, exceedance, forecast, posterior_arrays, summary_table
from nkdefections.scenarios import load_scenario

pytestmark = pytest.mark.pure


def fake_model():
    """The default model on the real data, with a constructed posterior (1 chain x 300 draws)."""
    from nkdefections.model.defection import DefectionModel

    model = DefectionModel()
    S, rng = 300, np.random.default_rng(7)
    years = model.design.years
    gdp_years = model.design.gdp_years
    gdp = np.nan_to_num(model.design.gdp_all, nan=1.0)
    post = xr.Dataset(
        {
            C.INTERCEPT: ((C.CHAIN, C.DRAW), rng.normal(7.2, 0.05, (1, S))),
            C.BETA: ((C.CHAIN, C.DRAW, C.DRIVER), rng.normal([-0.6, 0.0, 0.05], [0.15, 0.02, 0.04], (1, S, 3))),
            C.LATENT: ((C.CHAIN, C.DRAW, C.YEAR), rng.normal(0, 0.1, (1, S, len(years)))),
            C.RHO: ((C.CHAIN, C.DRAW), rng.uniform(0.5, 0.8, (1, S))),
            C.SIGMA_LATENT: ((C.CHAIN, C.DRAW), rng.uniform(0.1, 0.2, (1, S))),
            C.GDP_TRUE: ((C.CHAIN, C.DRAW, C.GDP_YEAR), gdp + rng.normal(0, 0.3, (1, S, len(gdp_years)))),
        },
        coords={C.CHAIN: [0], C.DRAW: np.arange(S), C.DRIVER: list(C.DRIVERS), C.YEAR: years, C.GDP_YEAR: gdp_years},
    )
    model.idata = xr.DataTree.from_dict({"posterior": post})
    model.attrs = {"fit_id": "fakefit"}
    return model


@pytest.fixture(scope="module")
def model():
    return fake_model()


@pytest.fixture
def explorer(model, tmp_path: Path) -> Explorer:
    return Explorer(model, Settings(seed=3, save_dir=tmp_path / "cfg" / "scenario", overrides=("forecast.seed=3",)))


def state(drivers: dict, name: str = "mine", baseline: str = "status_quo", year: str = "2020", arrivals="2000"):
    return {
        "scenario": {"name": name, "description": "a test", "drivers": drivers},
        "baseline": baseline,
        "threshold": {"year": year, "arrivals": arrivals},
    }


BORDER_STEP = {"border": [{"type": "step", "year": "2018", "value": "0.5"}]}


def test_numbers_equal_the_librarys_for_the_same_paths_and_seed(explorer, model):
    ev = explorer.evaluate(state(BORDER_STEP, year="cumulative", arrivals="20000"))
    mine = form_to_scenario(state(BORDER_STEP)["scenario"])
    fc = forecast(model, [mine, load_scenario("status_quo")], seed=3)
    pair = [("mine", "status_quo")]
    xr.testing.assert_identical(ev.forecast[C.OBSERVED], fc[C.OBSERVED])
    pd.testing.assert_frame_equal(ev.summary, summary_table(fc))
    pd.testing.assert_frame_equal(ev.contrasts, contrasts(fc, pair))
    pd.testing.assert_frame_equal(ev.exceedance, exceedance(fc, [("cumulative", 20000.0)]))
    pd.testing.assert_frame_equal(ev.attribution, attribution(fc, posterior_arrays(model)["beta"], pair))
    rows = explorer.comparison(ev)
    cum = rows[-1]
    direct = summary_table(fc).query("scenario == 'mine'").iloc[-1]
    assert cum["year"] == direct["year"] and cum["median"] == direct["median"]
    assert cum["prob_greater"] == contrasts(fc, pair).iloc[-1]["prob_greater"]


def test_the_baseline_memo_never_serves_other_numbers(explorer, model):
    first = explorer.evaluate(state(BORDER_STEP))
    again = explorer.evaluate(state({"sanctions": [{"type": "step", "value": "3"}]}))  # memo hit for status_quo
    fresh = summary_table(forecast(model, [again.scenario, again.baseline], seed=3))
    pd.testing.assert_frame_equal(again.summary, fresh)
    other = explorer.evaluate(state(BORDER_STEP, baseline="border_crackdown"))
    assert other.summary.query("scenario == 'border_crackdown'").shape[0] == 15
    assert not first.summary.equals(other.summary)


def test_page_json_has_the_tables_flags_and_figure(explorer):
    ev = explorer.evaluate(state({"border": [{"type": "step", "value": "2.5"}]}))
    out = result(explorer, ev, provenance_info(explorer))
    json.dumps(out)  # plain JSON
    assert [r["year"] for r in out["rows"]][-1] == "cumulative 2017-2030"
    # border 2.5 is beyond 1.25; sanctions held at the 9.5 in force is beyond the 8.14 seen
    assert out["rows"][0]["extrapolated"] and out["rows"][0]["extrapolated_drivers"] == "border,sanctions"
    assert out["extrapolation"][0]["driver"] == "border" and out["extrapolation"][0]["path_years"][0] == 2017
    assert {a["driver"] for a in out["attribution"]} == set(C.DRIVERS)
    parts = sum(a["mean"] for a in out["attribution"])
    gap = (ev.forecast[C.MU].sel(scenario="mine") - ev.forecast[C.MU].sel(scenario="status_quo")).sum("year_future")
    assert parts == pytest.approx(float(gap.mean()), rel=1e-9)  # the parts add up to the gap
    names = [t.get("name", "") for t in out["figure"]["data"]]
    assert "observed" in names and "extrapolation (a driver outside its observed range)" in names
    assert "border outside its observed range" in names
    assert "forecast.seed=3" in out["reproduce"] and "scenarios=[mine,status_quo]" in out["reproduce"]


def test_a_value_absurd_for_its_unit_gets_the_forecasts_message_at_its_driver(explorer, model):
    bad = state({"economy": [{"type": "step", "value": "400"}]})  # growth typed in basis points?
    with pytest.raises(FormError) as err:
        explorer.evaluate(bad)
    with pytest.raises(Exception) as direct:
        forecast(model, [form_to_scenario(bad["scenario"]), load_scenario("status_quo")], seed=3)
    # the message goes to every driver that leaves its range (sanctions held at the 9.5 in force does too)
    assert "economy" in [p.field for p in err.value.places]
    assert all(p.message == str(direct.value) for p in err.value.places)


@pytest.mark.parametrize(
    "drivers, field",
    [
        ({"border": [{"type": "ramp", "start": "2021", "end": "2019", "to_value": "1"}]}, "border.0.end"),
        ({"economy": [{"type": "step", "value": "two"}]}, "economy.0.value"),
        ({"border": [{"type": "step", "value": "1", "year": "2035"}]}, "border.0.year"),
    ],
)
def test_bad_input_is_placed_and_nothing_is_saved(explorer, drivers, field):
    with pytest.raises(FormError) as err:
        explorer.evaluate(state(drivers))
    assert [p.field for p in err.value.places] == [field]
    assert not explorer.settings.save_dir.exists()


def test_the_scenario_may_not_share_the_baselines_name(explorer):
    with pytest.raises(FormError, match="selected twice") as err:
        explorer.evaluate(state(BORDER_STEP, name="status_quo"))
    assert err.value.places[0].field == "name"


def test_save_writes_a_loadable_file_and_never_overwrites_silently(explorer):
    info = provenance_info(explorer)
    ev = explorer.evaluate(state(BORDER_STEP, name="my_reopening"))
    saved = save_scenario(explorer, ev, info)
    assert saved.ok and saved.path == explorer.settings.save_dir / "my_reopening.yaml"
    text = saved.path.read_text()
    assert text.startswith("# Written by nkdefections-explore") and "fit fakefit" in text
    assert "scenarios=[my_reopening,status_quo]" in saved.command and "forecast.seed=3" in saved.command
    back = load_scenario("my_reopening", search_path=[explorer.settings.save_dir.parent])
    assert back.to_dict() == ev.scenario.to_dict()
    assert "my_reopening" in explorer.scenario_names()
    assert scenario_to_form(explorer.load("my_reopening"))["drivers"]["border"][0]["value"] == "0.5"

    changed = explorer.evaluate(state({"border": [{"type": "step", "value": "0.25"}]}, name="my_reopening"))
    refused = save_scenario(explorer, changed, info)
    assert not refused.ok and refused.exists and "never replaced silently" in refused.message
    assert saved.path.read_text() == text  # untouched
    done = save_scenario(explorer, changed, info, overwrite=True)
    assert done.ok and load_scenario(done.path).drivers["border"][0]["value"] == 0.25
    assert not list(explorer.settings.save_dir.glob(".*partial"))


def test_csv_export_says_what_made_it_and_reads_back(explorer):
    ev = explorer.evaluate(state(BORDER_STEP))
    text = comparison_csv(explorer, ev, provenance_info(explorer))
    head = [line for line in text.splitlines() if line.startswith("#")]
    assert any('"fit_id": "fakefit"' in line for line in head) and any("reproduce: nkdefections" in h for h in head)
    table = pd.read_csv(io.StringIO(text), comment="#")
    assert list(table["year"])[-1] == "cumulative 2017-2030"
    np.testing.assert_array_equal(table["median"].values, [r["median"] for r in explorer.comparison(ev)])


def test_the_server_answers_offline_with_no_outside_url(explorer):
    """The app in-process on a free port: the page, its scripts (plotly from the package), the API."""
    import uvicorn

    from nkdefections.explore.server import bind, build_app, static_text

    for name in ("index.html", "explorer.js"):
        assert "http://" not in static_text(name) and "https://" not in static_text(name), name
    sock = bind(0)
    server = uvicorn.Server(uvicorn.Config(build_app(explorer), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)

        def get(path: str, body: dict | None = None) -> bytes:
            data = None if body is None else json.dumps(body).encode()
            req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.read()

        assert b"plotly.min.js" in get("/")
        assert len(get("/static/plotly.min.js")) > 1_000_000
        init = json.loads(get("/api/init"))
        assert init["start"]["name"] == "status_quo_edit" and "status_quo" in init["scenarios"]
        assert init["last_observed"]["border"] == 1.25 and init["observed_range"]["border"] == [0.0, 1.25]
        ok = json.loads(get("/api/update", state(BORDER_STEP)))
        assert ok["ok"] and ok["rows"][0]["year"] == "2017"
        bad = json.loads(get("/api/update", state({"border": [{"type": "step", "value": "x"}]})))
        assert not bad["ok"] and bad["errors"][0]["field"] == "border.0.value"
        refused = json.loads(get("/api/save", state({"border": [{"type": "step", "value": "x"}]})))
        assert refused["errors"] and not explorer.settings.save_dir.exists()
        # another site's page can post text/plain without asking the browser first: refused
        plain = urllib.request.Request(
            url + "/api/save", data=json.dumps(state(BORDER_STEP)).encode(), headers={"Content-Type": "text/plain"}
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(plain, timeout=30)
        assert err.value.code == 415 and not explorer.settings.save_dir.exists()
        rebound = urllib.request.Request(url + "/api/init", headers={"Host": "attacker.example"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(rebound, timeout=30)
        assert err.value.code == 400
        by_path = json.loads(get("/api/scenario?name=/etc/passwd.yaml"))
        assert not by_path["ok"] and "unknown scenario" in by_path["errors"][0]["message"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_package_versions_are_read_once_per_process_and_handed_out_as_copies():
    """Every forecast records them; the explorer forecasts on every change (provenance.package_versions)."""
    from nkdefections.provenance import package_versions

    first = package_versions()
    first["numpy"] = "tampered"
    again = package_versions()
    assert again["numpy"] == np.__version__ and again is not first
    t0 = time.perf_counter()
    for _ in range(50):
        package_versions()
    assert time.perf_counter() - t0 < 0.5  # 50 uncached reads take ~1 s here


def test_a_new_threshold_or_description_reuses_the_forecast_and_stays_exact(explorer, model):
    first = explorer.evaluate(state(BORDER_STEP))
    other = state(BORDER_STEP, year="cumulative", arrivals="15000")
    other["scenario"]["description"] = "typed later"
    again = explorer.evaluate(other)
    assert again.forecast is first.forecast and again.scenario.description == "typed later"
    fc = forecast(model, [again.scenario, again.baseline], seed=3)
    pd.testing.assert_frame_equal(again.exceedance, exceedance(fc, [("cumulative", 15000.0)]))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--run", "RUN"], "no posterior.nc there"),
        (["model=nope"], "Could not find 'model/nope'"),
        (["sampler.draws=0"], "sampler.draws: 0 must be >= 1"),
        (["--fit", "RUN/missing.nc"], "no such posterior file"),
    ],
)
def test_the_command_refuses_bad_input_with_one_message_and_status_2(args, message, tmp_path, capsys):
    from nkdefections.cli.explore import main

    args = [a.replace("RUN", str(tmp_path)) for a in args]
    assert main(["--port", "0", *args, f"cache_dir={tmp_path / 'cache'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nkdefections-explore: error: ") and message in err
    assert not (tmp_path / "cache").exists()  # nothing sampled, nothing written


def test_a_run_folder_gives_its_forecast_seed_and_horizon(tmp_path):
    import argparse

    from nkdefections.cli.explore import compose, settings

    (tmp_path / "run.json").write_text(json.dumps({"horizon": "2017-2025", "forecast_seed": 9, "extra": {}}))
    ns = argparse.Namespace(run=tmp_path, fit=None, config_dir=None, save_dir=tmp_path / "s", overrides=[])
    st = settings(ns, compose(None, []), json.loads((tmp_path / "run.json").read_text()), "read from x")
    assert (st.horizon.start, st.horizon.end, st.seed) == (2017, 2025, 9)
    assert st.threshold == (2020, 2000.0) and st.baseline == "status_quo" and st.save_dir == (tmp_path / "s").resolve()
