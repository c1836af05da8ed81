"""The dashboard's routes (``/app``): log-in, the five pages, their panels, the UI-sync stream,
and a same-origin pass-through to the API for downloads, charts and actions.

Every figure on a page comes from the API answering in-process (``ApiCall``): the page asks
``/api/v1/...`` with the user's own token, so the dashboard shows exactly what the API says
and has no second way of computing anything. The token lives in an HttpOnly, SameSite=Strict
cookie scoped to ``/app`` (never in a URL, never readable by page scripts); requests that
change something also carry a CSRF token derived from it. Jinja2 autoescapes every value.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services import ui_sync
from serve_app.deps import _load_caller, get_state
from serve_app.errors import ApiError
from serve_app.middleware import DASHBOARD_COOKIE, INTERNAL_KEY
from serve_app.ui_stream import event_stream, notify, sse_response, start_after

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
router = APIRouter(prefix="/app", include_in_schema=False)
templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)
SESSION_COOKIE = "sigma_ui_session"
NAV = (("portfolio", "Portfolio"), ("risk", "Risk"), ("modeling", "Modeling"), ("lab", "Lab"), ("reports", "Reports"))


# -- formatting helpers the templates use ------------------------------------------------------

def money(v: Any, digits: int = 0) -> str:
    if v is None:
        return "—"
    return f"{'-' if v < 0 else ''}${abs(v):,.{digits}f}"


def num(v: Any, digits: int = 2) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def pct(v: Any, digits: int = 2, scale: float = 1.0) -> str:
    return "—" if v is None else f"{v * scale:,.{digits}f}%"


templates.filters.update(money=money, num=num, pct=pct)
templates.globals.update(NAV=NAV)


def bars(items: list[tuple[str, float | None, float | None]], width: int = 420) -> dict:
    """Geometry of a paired horizontal bar chart (label, first, second) for the SVG macro."""
    top = max([abs(v) for _, a, b in items for v in (a, b) if v is not None] or [1.0]) or 1.0
    half = (width - 140) / 2
    rows = []
    for i, (label, a, b) in enumerate(items):
        rows.append({"label": label, "y": 8 + i * 34, "a": a, "b": b,
                     "aw": abs(a or 0) / top * half, "bw": abs(b or 0) / top * half,
                     "ax": 140 + half - (abs(a or 0) / top * half if (a or 0) < 0 else 0),
                     "bx": 140 + half - (abs(b or 0) / top * half if (b or 0) < 0 else 0)})
    return {"rows": rows, "width": width, "height": 16 + len(items) * 34, "mid": 140 + half}


templates.globals.update(bars=bars)


# -- auth ------------------------------------------------------------------------------------

class DashboardUser:
    def __init__(self, caller, token: str, claims: dict):
        self.caller, self.token, self.claims = caller, token, claims
        self.id, self.username = caller.id, caller.username


def csrf_token(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), b"csrf:" + token.encode(), hashlib.sha256).hexdigest()[:32]


def _session_token(request: Request) -> str | None:
    return request.cookies.get(DASHBOARD_COOKIE)


def dashboard_user(request: Request) -> DashboardUser | None:
    """The logged-in user of this request (cookie), or None: no cookie, an expired, revoked or
    logged-out token, or a deactivated user."""
    token = _session_token(request)
    claims = getattr(request.state, "claims", None)
    if not token or not claims:
        return None
    state = get_state(request)
    if ui_sync.is_logged_out(state.catalog, token):
        return None
    caller = _load_caller(state, int(claims["sub"]), int(claims.get("ver", 0)))
    return DashboardUser(caller, token, claims) if caller else None


def _login_redirect(request: Request) -> Response:
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": "/app/login"})
    return RedirectResponse("/app/login", status_code=303)


def _check_csrf(request: Request, user: DashboardUser, form_value: str | None = None) -> None:
    sent = request.headers.get("x-csrf-token") or form_value or ""
    if not hmac.compare_digest(sent, csrf_token(get_state(request).jwt_secret, user.token)):
        raise ApiError(403, "FORBIDDEN", "missing or wrong CSRF token")


def ui_session(request: Request) -> str:
    raw = request.query_params.get("session") or request.cookies.get(SESSION_COOKIE)
    try:
        return ui_sync.session_id(raw)
    except ui_sync.UIInputError:
        return ui_sync.DEFAULT_SESSION


# -- the API, in-process -------------------------------------------------------------------

class ApiCall:
    """The API answering in this process with the user's token (same routes, same figures)."""

    def __init__(self, request: Request, user: DashboardUser):
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=request.app), base_url="http://sigma.internal",
                                        headers={"Authorization": f"Bearer {user.token}", "X-Sigma-Internal": INTERNAL_KEY},
                                        timeout=120)

    async def raw(self, method: str, path: str, **kw) -> httpx.Response:
        return await self.client.request(method, f"/api/v1{path}", **kw)

    async def json(self, method: str, path: str, **kw) -> dict:
        resp = await self.raw(method, path, **kw)
        try:
            body = resp.json()
        except ValueError:
            body = {"success": False, "error": {"message": resp.text[:200]}}
        if not isinstance(body, dict):
            body = {"data": body}
        # the Lab answers are not enveloped: their success is the HTTP status
        body.setdefault("success", resp.status_code < 300)
        body["_http"] = resp.status_code
        return body

    async def get(self, path: str, **params) -> dict:
        return await self.json("GET", path, params={k: v for k, v in params.items() if v is not None})

    async def close(self):
        await self.client.aclose()


async def gather(request: Request, user: DashboardUser, calls: dict[str, tuple]) -> dict[str, dict]:
    api = ApiCall(request, user)
    try:
        results = await asyncio.gather(*(api.json(*c[:2], **(c[2] if len(c) > 2 else {})) for c in calls.values()))
    finally:
        await api.close()
    return dict(zip(calls, results))


def render(name: str, request: Request, user: DashboardUser | None, status: int = 200, **ctx) -> HTMLResponse:
    state = get_state(request)
    ctx.update(user=user, request=request, session_id=ui_session(request),
               csrf=csrf_token(state.jwt_secret, user.token) if user else "")
    resp = HTMLResponse(templates.get_template(name).render(**ctx), status_code=status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    return resp


# -- log in and out --------------------------------------------------------------------------

@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home():
    return RedirectResponse("/app/portfolio", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request):
    return render("login.html", request, None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request):
    from serve_app.routes.auth import authenticate

    form = await request.form()
    username, password = str(form.get("username") or ""), str(form.get("password") or "")
    state = get_state(request)
    try:
        issued = await asyncio.to_thread(authenticate, state, username[:64], password[:256])
    except ApiError:
        return render("login.html", request, None, status=401, error="Invalid username or password", username=username)
    resp = RedirectResponse("/app/portfolio", status_code=303)
    secure = request.url.scheme == "https"
    resp.set_cookie(DASHBOARD_COOKIE, issued.access_token, max_age=issued.expires_in, path="/app", httponly=True,
                    samesite="strict", secure=secure)
    return resp


@router.post("/logout")
async def logout(request: Request):
    user = await asyncio.to_thread(dashboard_user, request)
    resp = RedirectResponse("/app/login", status_code=303)
    if user is not None:
        form = await request.form()
        _check_csrf(request, user, str(form.get("csrf") or ""))
        await asyncio.to_thread(ui_sync.record_logout, get_state(request).catalog, user.id, user.token)
        notify(user.id, "*")
    resp.delete_cookie(DASHBOARD_COOKIE, path="/app")
    return resp


# -- pages -----------------------------------------------------------------------------------

def _table_args(request: Request) -> dict:
    q = request.query_params
    preset = q.get("preset") or "all"
    sort = q.get("sort") or None
    order = q.get("order") or "desc"
    group_by = q.get("group_by") or None
    tag = q.get("tag") or None
    return {"preset": preset, "sort": sort, "order": order if order in ("asc", "desc") else "desc",
            "group_by": group_by if group_by in ("type", "strategy", "tag", "sector") else None, "tag": tag}


@router.get("/portfolio", response_class=HTMLResponse)
async def portfolio_page(request: Request):
    user = await asyncio.to_thread(dashboard_user, request)
    if user is None:
        return _login_redirect(request)
    data = await gather(request, user, {"overview": ("GET", "/portfolio"), "greeks": ("GET", "/risk/greeks")})
    return render("portfolio.html", request, user, page="portfolio", table=_table_args(request), **data)


# -- panels (htmx fragments) ---------------------------------------------------------------------

#: The stress scenarios the portfolio page runs (ids of GET /risk/scenarios/templates).
SCENARIOS = ("market_up_10", "market_down_10", "market_crash_35", "rates_up_100bp", "vix_spike_150", "hist_covid_2020")


def _panel_calls(name: str, q) -> dict[str, tuple] | None:
    sid = q.get("id")
    return {
        "alerts": {"alerts": ("GET", "/alerts")},
        "exposures": {"exposures": ("GET", "/portfolio/exposures")},
        "factors": {"factors": ("GET", "/risk/factors")},
        "scenarios": {"scenarios": ("POST", "/risk/scenarios", {"json": {"scenario_ids": list(SCENARIOS)}})},
        "var": {"var": ("GET", "/risk/var")},
        "factor_betas": {"betas": ("GET", "/risk/factors/positions")},
        "sessions": {"sessions": ("GET", "/modeling/sessions")},
        "session": {"session": ("GET", f"/modeling/sessions/{sid}")} if sid else None,
        "models": {"models": ("GET", "/models")},
        "leaderboard": {"leaderboard": ("GET", "/leaderboard")},
        "sweeps": {"sweeps": ("GET", "/backtest_sweep")},
        "sweep": {"sweep": ("GET", f"/backtest_sweep/{sid}")} if sid else None,
        "backtests": {"models": ("GET", "/models")},
        "backtest": {"backtest": ("GET", f"/backtest/{sid}")} if sid else None,
        "job": {"job": ("GET", f"/jobs/{sid}"), "outcome": ("GET", f"/jobs/{sid}/result")} if sid else None,
        "reports": {"reports": ("GET", "/reports")},
    }.get(name)


@router.get("/panel/positions", response_class=HTMLResponse)
async def positions_panel(request: Request):
    user = await asyncio.to_thread(dashboard_user, request)
    if user is None:
        return _login_redirect(request)
    t = _table_args(request)
    calls = {"positions": ("GET", "/positions", {"params": {"limit": 1000, **({"tags": t["tag"]} if t["tag"] else {})}}),
             "tags": ("GET", "/tags")}
    if t["group_by"]:
        calls["grouped"] = ("GET", "/positions/grouped", {"params": {"by": t["group_by"], **({"tags": t["tag"]} if t["tag"] else {})}})
    data = await gather(request, user, calls)
    rows, error = [], None
    if data["positions"].get("success"):
        today = _book_date(data["positions"])
        try:
            preset = ui_sync.check_preset(t["preset"], [x["name"] for x in data["tags"].get("data", {}).get("tags", [])], "preset")
            sort = ui_sync.parse_sort({"field": t["sort"], "order": t["order"]}, "sort") if t["sort"] else None
            rows = ui_sync.filter_positions(data["positions"]["data"]["positions"], preset, sort, today)
        except ui_sync.UIInputError as exc:
            error = f"{exc.field}: {exc.reason}"
    return render("panels/positions.html", request, user, table=t, rows=rows, error=error, presets=ui_sync.PRESETS,
                  sort_fields=ui_sync.SORT_FIELDS, **data)


def _book_date(positions: dict) -> dt.date:
    """'Today' for expiring_today: the date in New York (option expiries are exchange dates)."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("America/New_York")).date()


@router.get("/panel/{name}", response_class=HTMLResponse)
async def panel(name: str, request: Request):
    user = await asyncio.to_thread(dashboard_user, request)
    if user is None:
        return _login_redirect(request)
    calls = _panel_calls(name, request.query_params)
    if calls is None:
        return HTMLResponse("Unknown panel", status_code=404)
    data = await gather(request, user, calls)
    return render(f"panels/{name}.html", request, user, q=request.query_params, **data)


# -- actions (CSRF-checked) ----------------------------------------------------------------------

@router.post("/action/{name}", response_class=HTMLResponse)
async def action(name: str, request: Request):
    """Form posts of the pages: each calls one API route, then re-renders the panel it changed."""
    user = await asyncio.to_thread(dashboard_user, request)
    if user is None:
        return _login_redirect(request)
    form = await request.form()
    _check_csrf(request, user, str(form.get("csrf") or ""))
    f = {k: str(v) for k, v in form.items() if k != "csrf"}
    api = ApiCall(request, user)
    try:
        if name == "quantity":
            sid = f.get("session_id", "")
            body = {"modifications": [{"position_id": f.get("position_id"), "new_quantity": _float(f.get("quantity"))}]}
            result = await api.json("PUT", f"/modeling/sessions/{sid}/positions", json=body)
            session = await api.json("GET", f"/modeling/sessions/{sid}")
            return render("panels/session.html", request, user, q={"id": sid}, session=session, result=result)
        if name == "export":
            sid = f.get("session_id", "")
            fmt = f.get("format") if f.get("format") in ("csv", "fix", "json") else "csv"
            result = await api.json("GET", f"/modeling/sessions/{sid}/export", params={"format": fmt})
            return render("panels/export.html", request, user, q={"id": sid}, result=result)
        if name == "hedge":
            sid = f.get("session_id", "")
            instruments = {"etfs": ["etfs"], "options": ["options"]}.get(f.get("instruments", ""), ["options", "etfs"])
            body = {"risk_to_hedge": f.get("risk_to_hedge") or "market_beta", "budget": _float(f.get("budget") or "5000"),
                    "constraints": {"allowed_instruments": instruments}}
            result = await api.json("POST", "/proforma/hedge", json=body)
            job = await api.json("GET", f"/jobs/{result['job_id']}") if result.get("job_id") else None
            return render("panels/job.html", request, user, q={"id": result.get("job_id"), "session_id": sid}, job=job,
                          result=result)
        if name == "apply_hedge":
            sid = f.get("session_id", "")
            result = await api.json("POST", f"/modeling/sessions/{sid}/apply-hedge",
                                    json={"job_id": f.get("job_id"), "rank": int(_float(f.get("rank") or "1"))})
            session = await api.json("GET", f"/modeling/sessions/{sid}")
            return render("panels/session.html", request, user, q={"id": sid}, session=session, result=result)
        if name == "new_session":
            result = await api.json("POST", "/modeling/sessions", json={"name": f.get("name") or "What-if"})
            sessions = await api.json("GET", "/modeling/sessions")
            return render("panels/sessions.html", request, user, q={}, sessions=sessions, result=result)
        if name == "sweep":
            try:
                grid = orjson.loads(f.get("grid") or "{}")
            except orjson.JSONDecodeError:
                raise ValueError("the grid must be JSON, e.g. {\"thresholds\": [0.5, 0.6]}") from None
            body = {"model_id": f.get("model_id", ""), "sweep": grid, **({"tag": f["tag"]} if f.get("tag") else {})}
            result = await api.json("POST", "/backtest_sweep", json=body)
            sid = result.get("sweep_id")
            sweep = await api.json("GET", f"/backtest_sweep/{sid}") if result["_http"] < 300 else None
            return render("panels/sweep.html", request, user, q={"id": sid}, sweep=sweep, result=result)
        if name == "backtest":
            result = await api.json("POST", "/backtest", json={"model_id": f.get("model_id", "")})
            bid = result.get("backtest_id")
            backtest = await api.json("GET", f"/backtest/{bid}") if bid else result
            return render("panels/backtest.html", request, user, q={"id": bid}, backtest=backtest)
        if name == "report":
            result = await api.json("POST", "/reports/generate", json={"type": f.get("type") or "risk_summary",
                                                                       "format": f.get("format") or "pdf"})
            reports = await api.json("GET", "/reports")
            return render("panels/reports.html", request, user, q={}, reports=reports, result=result)
        return HTMLResponse("Unknown action", status_code=404)
    except (ValueError, KeyError) as exc:
        return HTMLResponse(f"<p class='error'>{_escape(str(exc))}</p>", status_code=400)
    finally:
        await api.close()


def _float(raw: str | None) -> float:
    try:
        return float(raw or "")
    except ValueError:
        raise ValueError("quantity must be a number") from None


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


# -- the API passed through (downloads, charts, JS) ---------------------------------------------

PASS_THROUGH_PREFIXES = ("modeling/sessions/", "reports/", "backtest/", "backtest_sweep/", "leaderboard/chart/",
                         "export/", "jobs/", "ui/")


@router.api_route("/api/{path:path}", methods=["GET", "POST"])
async def pass_through(path: str, request: Request):
    """Same-origin GETs of the API for the page (downloads, PNG charts) and CSRF-checked POSTs,
    with the cookie's token; only the prefixes the pages use."""
    user = await asyncio.to_thread(dashboard_user, request)
    if user is None:
        return Response(status_code=401)
    if not path.startswith(PASS_THROUGH_PREFIXES):
        return Response(status_code=404)
    if request.method != "GET":
        _check_csrf(request, user)
    api = ApiCall(request, user)
    try:
        body = await request.body()
        headers = {"Content-Type": request.headers.get("content-type", "application/json")} if body else {}
        if request.headers.get("x-session-id"):
            headers["X-Session-ID"] = request.headers["x-session-id"]
        resp = await api.raw(request.method, f"/{path}", params=dict(request.query_params), content=body or None,
                             headers=headers)
    finally:
        await api.close()
    keep = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type", "content-disposition")}
    return Response(resp.content, status_code=resp.status_code, headers=keep)


# -- the UI-sync stream --------------------------------------------------------------------------

@router.get("/events")
async def events(request: Request):
    user = await asyncio.to_thread(dashboard_user, request)
    if user is None:
        return Response(status_code=401)
    state = get_state(request)
    session = ui_session(request)
    after = await asyncio.to_thread(start_after, request, state.catalog, user.id, session)
    return sse_response(event_stream(request, state, user.id, session, after, user.token, user.claims))


@router.get("/static/{name}")
def static(name: str):
    path = (STATIC / name).resolve()
    if path.parent != STATIC or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


# Last: every fixed path above wins over a page name.
@router.get("/{page}", response_class=HTMLResponse)
async def other_page(page: str, request: Request):
    if page not in ("risk", "modeling", "lab", "reports"):
        return HTMLResponse("Not found", status_code=404)
    user = await asyncio.to_thread(dashboard_user, request)
    if user is None:
        return _login_redirect(request)
    return render(f"{page}.html", request, user, page=page, q=request.query_params)
