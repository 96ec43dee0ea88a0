"""The explorer's web app: a small Starlette app on 127.0.0.1, served by uvicorn.

Routes (JSON in, JSON out; the page is static HTML/JS shipped in ``explore/static/``):

``GET /``                 the page
``GET /static/<file>``    its script and style; ``plotly.min.js`` from the installed ``plotly``
                          package (no CDN: the page works offline)
``GET /api/init``         drivers, path types and their fields, horizon, scenarios, the start form
``GET /api/scenario``     ``?name=`` a shipped or user scenario as a form (a starting point)
``POST /api/update``      a form -> the numbers, flags and figure (:func:`output.result`)
``POST /api/export.csv``  a form -> the comparison table as CSV
``POST /api/save``        a form (and ``overwrite``) -> writes ``<save dir>/<name>.yaml``

Bad input answers ``{"ok": false, "errors": [{"field", "message"}]}`` with the loader's
message; nothing is saved then.  Only requests to ``127.0.0.1``/``localhost`` are served, and
forms only as JSON (which another site's page cannot post without the browser asking first),
so no web page but the explorer's own can save or overwrite a scenario.
"""

from __future__ import annotations

import socket
import sys
import threading
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nkdefections import constants as C
from nkdefections.errors import ScenarioError
from nkdefections.explore.compute import Explorer, FormError
from nkdefections.explore.form import COMMON_FIELDS, FIELD_LABELS, TYPE_FIELDS
from nkdefections.explore.output import comparison_csv, provenance_info, result, save_scenario
from nkdefections.scenarios import SPEC_TYPES

STATIC = {"explorer.js": "text/javascript", "explorer.css": "text/css", "index.html": "text/html"}
UNITS = {
    C.BORDER: "index units (1 = the 2011-12 tightening)",
    C.ECONOMY: "real GDP growth, percent",
    C.SANCTIONS: "index units (1 = one binding UNSC resolution)",
}


def static_text(name: str) -> str:
    """A file of the page, read from the package (``importlib.resources``, so it works from a wheel)."""
    return resources.files("nkdefections.explore").joinpath("static", name).read_text(encoding="utf-8")


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


async def _form(request: Request) -> dict[str, Any] | None:
    """The posted form; None unless sent as JSON (a cross-site page cannot send JSON without asking first)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return None
    body = await request.json()
    return body if isinstance(body, dict) else None


_NOT_JSON = JSONResponse({"ok": False, "errors": [{"field": "scenario", "message": "expected a JSON form"}]}, 415)


def _errors(exc: FormError) -> JSONResponse:
    return JSONResponse({"ok": False, "errors": [p.to_dict() for p in exc.places]})


def init_payload(explorer: Explorer, start: str) -> dict[str, Any]:
    """What the page needs to draw its controls and its first state."""
    s = explorer.settings
    years = [int(y) for y in s.horizon.years]
    return {
        "drivers": list(C.DRIVERS),
        "units": UNITS,
        "last_observed": explorer.last,
        "observed_range": {d: list(v) for d, v in explorer.range.items()},
        "spec_types": list(SPEC_TYPES),
        "type_fields": {t: list(TYPE_FIELDS.get(t, ())) for t in SPEC_TYPES},
        "common_fields": list(COMMON_FIELDS),
        "labels": FIELD_LABELS,
        "years": years,
        "threshold_years": [*[str(y) for y in years], C.CUMULATIVE],
        "scenarios": explorer.scenario_names(),
        "start": explorer.start_form(start),
        "baseline": s.baseline,
        "threshold": {"year": str(s.threshold[0]), "arrivals": f"{s.threshold[1]:g}"},
        "save_dir": str(s.save_dir),
        "info": provenance_info(explorer),
    }


_JS_CACHE: dict[str, str] = {}


async def static(request: Request) -> Response:
    """The page's static files; Plotly's bundle from the installed ``plotly`` package (no CDN)."""
    name = request.path_params["name"]
    if name == "plotly.min.js":
        if name not in _JS_CACHE:
            _JS_CACHE[name] = _plotly_js()
        return Response(_JS_CACHE[name], media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})
    if name not in STATIC:
        return Response("not found", status_code=404)
    return Response(static_text(name), media_type=STATIC[name])


async def no_icon(request: Request) -> Response:
    return Response(status_code=204)


def build_app(explorer: Explorer, *, start: str = "status_quo") -> Starlette:
    """The Starlette app over one :class:`Explorer` (one posterior, one set of settings)."""
    lock = threading.Lock()  # one computation at a time: the machine has two cores
    info = provenance_info(explorer)

    def evaluate(form: dict[str, Any]) -> Any:
        with lock:
            return explorer.evaluate(form)

    async def page(request: Request) -> Response:
        return Response(static_text("index.html"), media_type="text/html")

    async def init(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(init_payload, explorer, start))

    async def scenario(request: Request) -> JSONResponse:
        name = request.query_params.get("name", "")
        try:
            return JSONResponse({"ok": True, "form": await run_in_threadpool(explorer.start_form, name)})
        except ScenarioError as exc:
            return JSONResponse({"ok": False, "errors": [{"field": "start", "message": str(exc)}]})

    async def evaluated(request: Request) -> tuple[dict[str, Any], Any] | JSONResponse:
        """The request's form and its evaluation, or the error response (nothing invalid goes further)."""
        form = await _form(request)
        if form is None:
            return _NOT_JSON
        try:
            return form, await run_in_threadpool(evaluate, form)
        except FormError as exc:
            return _errors(exc)

    async def update(request: Request) -> JSONResponse:
        got = await evaluated(request)
        if isinstance(got, Response):
            return got
        form, ev = got
        return JSONResponse({**result(explorer, ev, info), "seq": form.get("seq")})

    async def export_csv(request: Request) -> Response:
        got = await evaluated(request)
        if isinstance(got, Response):
            return got
        _, ev = got
        name = f"{ev.scenario.name}-vs-{ev.baseline.name}.csv"
        return Response(
            comparison_csv(explorer, ev, info),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def save(request: Request) -> JSONResponse:
        got = await evaluated(request)  # nothing invalid is ever saved
        if isinstance(got, Response):
            return got
        form, ev = got
        saved = await run_in_threadpool(save_scenario, explorer, ev, info, overwrite=form.get("overwrite") is True)
        return JSONResponse(saved.to_dict())

    routes = [
        Route("/", page),
        Route("/favicon.ico", no_icon),
        Route("/static/{name}", static),
        Route("/api/init", init),
        Route("/api/scenario", scenario),
        Route("/api/update", update, methods=["POST"]),
        Route("/api/export.csv", export_csv, methods=["POST"]),
        Route("/api/save", save, methods=["POST"]),
    ]
    # only this machine's own names: a page elsewhere that rebinds its domain to 127.0.0.1 is refused
    hosts = Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])
    return Starlette(routes=routes, middleware=[hosts])


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (``port`` 0: a free one, chosen by the system)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


def serve(explorer: Explorer, *, port: int = 8050, start: str = "status_quo", stream: Any = None) -> None:
    """Serve the explorer on ``127.0.0.1:port`` until Ctrl-C; prints the URL first (one line)."""
    import uvicorn

    app = build_app(explorer, start=start)
    sock = bind(port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    print(f"nkdefections-explore: serving {url} (Ctrl-C to stop)", file=stream or sys.stdout, flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
