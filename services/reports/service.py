"""Reports (portfolio spec 8): validate a request, record it, build it in a job, store it.

A report is made of the same service calls the API answers with (``views.portfolio_exposures``,
``risk.portfolio_var``, the stored backtest series, the sweep's grid...), so every number it
prints is the API's number for the same as-of time. The file goes to the artifact store first
(write-once, by content SHA-256); only then does one transaction mark the report
``completed`` with its SHA and path: a half-written report is never listed or downloadable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from sqlalchemy import select

from cluster.artifacts import ArtifactStore
from cluster.catalog import Catalog, Report, ReportTemplate, owned_row
from cluster.catalog.models import utcnow
from cluster.errors import InputError
from services.reports import charts, document as d
from services.reports import portfolio_charts as pc

log = logging.getLogger("sigma.reports")


class ReportInputError(InputError):
    """Bad input to a report request or a report template."""


#: type -> its sections, in print order (all of them when ``sections`` is omitted).
TYPES: dict[str, tuple[str, ...]] = {
    "risk_summary": ("exposure", "greeks", "factors", "scenarios", "var", "alerts"),
    "portfolio_overview": ("summary", "exposure", "performance", "positions"),
    "backtest_tearsheet": ("metrics", "equity", "monthly", "rolling", "distribution", "folds", "trades"),
    "sweep_report": ("summary", "heatmap", "top", "leaderboard"),
    "modeling_session": ("impact", "exposure", "sectors", "greeks", "risk", "trades"),
}
#: The subject each type needs: (request field, the type it belongs to).
SUBJECTS = {"backtest_id": "backtest_tearsheet", "sweep_id": "sweep_report", "session_id": "modeling_session"}
PERIODS = ("daily", "weekly", "monthly", "annual")
FORMATS = tuple(d.FORMATS)
MAX_TRADES_PRINTED = 40


# --- requests ---------------------------------------------------------------------------------

def validate_request(body: Mapping[str, Any]) -> dict:
    """The normalised request ``{type, format, sections, period, backtest_id, sweep_id,
    session_id, portfolio_id}``; ``ReportInputError`` naming the field otherwise."""
    if not isinstance(body, Mapping):
        raise ReportInputError("body", "must be a JSON object")
    kind = body.get("type")
    if kind not in TYPES:
        raise ReportInputError("type", f"use one of {', '.join(TYPES)}")
    fmt = body.get("format", "pdf")
    if fmt not in FORMATS:
        raise ReportInputError("format", f"use one of {', '.join(FORMATS)}")
    sections = body.get("sections")
    if sections is None:
        sections = list(TYPES[kind])
    if not isinstance(sections, list) or not sections:
        raise ReportInputError("sections", f"must be a non-empty list drawn from {list(TYPES[kind])}")
    for i, name in enumerate(sections):
        if name not in TYPES[kind]:
            raise ReportInputError(f"sections[{i}]", f"unknown section {name!r} for {kind}; use {list(TYPES[kind])}")
    sections = [s for s in TYPES[kind] if s in sections]  # print order, no duplicates
    period = body.get("period", "daily")
    if period not in PERIODS:
        raise ReportInputError("period", f"use one of {', '.join(PERIODS)}")
    out = {"type": kind, "format": fmt, "sections": sections, "period": period}
    for key, owner in SUBJECTS.items():
        value, needed = body.get(key), kind == owner
        if needed and (not isinstance(value, str) or not value):
            raise ReportInputError(key, f"required for a {kind} report")
        if value is not None and not needed:
            raise ReportInputError(key, f"only for a {owner} report")
        if needed:
            out[key] = value
    pid = body.get("portfolio_id")
    if pid is not None:
        if kind not in ("risk_summary", "portfolio_overview") or not isinstance(pid, str):
            raise ReportInputError("portfolio_id", "a portfolio id, for risk_summary and portfolio_overview reports")
        out["portfolio_id"] = pid
    return out


def check_subject(catalog: Catalog, user_id: int, request: Mapping[str, Any]) -> None:
    """``LookupError`` when the backtest, sweep or portfolio is not the caller's (a 404)."""
    if request.get("backtest_id"):
        from services.lab.backtests import get_backtest

        bt, _ = get_backtest(catalog, user_id, request["backtest_id"])
        if bt.status != "completed" or not bt.series_path:
            raise ReportInputError("backtest_id", f"backtest {bt.id} is {bt.status} or has no stored series")
    if request.get("sweep_id"):
        from services.lab.sweeps import get_sweep

        get_sweep(catalog, user_id, request["sweep_id"])
    if request.get("session_id"):
        from services.proforma.sessions import load_session

        load_session(catalog, user_id, request["session_id"])
    if request["type"] in ("risk_summary", "portfolio_overview"):
        from services.risk.service import default_portfolio_id

        default_portfolio_id(catalog, user_id, request.get("portfolio_id"))


def create_report(catalog: Catalog, user_id: int, request: Mapping[str, Any]) -> Report:
    with catalog.session() as s:
        row = Report(user_id=user_id, type=request["type"], format=request["format"], params=dict(request), status="queued")
        s.add(row)
        s.flush()
        return row


def attach_job(catalog: Catalog, report_id: str, job_id: str) -> None:
    with catalog.session() as s:
        s.get(Report, report_id).job_id = job_id


def report_view(row: Report) -> dict:
    return {
        "report_id": row.id, "type": row.type, "format": row.format, "status": row.status,
        "sections": list((row.params or {}).get("sections") or []), "period": (row.params or {}).get("period"),
        "backtest_id": (row.params or {}).get("backtest_id"), "sweep_id": (row.params or {}).get("sweep_id"),
        "session_id": (row.params or {}).get("session_id"),
        "job_id": row.job_id, "sha256": row.sha, "size": row.size, "pages": row.pages, "error": row.error,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "download_url": f"/api/v1/reports/{row.id}/download" if row.status == "completed" else None,
    }


def list_reports(catalog: Catalog, user_id: int, *, limit: int = 50, offset: int = 0) -> list[dict]:
    with catalog.session() as s:
        rows = s.scalars(select(Report).where(Report.user_id == user_id).order_by(Report.created_at.desc(), Report.id)
                         .limit(limit).offset(offset)).all()
        return [report_view(r) for r in rows]


def get_report(catalog: Catalog, user_id: int, report_id: str) -> Report:
    with catalog.session() as s:
        return owned_row(s, Report, report_id, user_id, "report")


def report_file(store: ArtifactStore, row: Report) -> tuple[bytes, str, str]:
    """(bytes verified against the SHA-256, media type, file name) of a completed report."""
    data = store.get(row.path, sha=row.sha)
    return data, d.FORMATS[row.format], f"{row.type}_{row.id}.{row.format}"


# --- building ---------------------------------------------------------------------------------

@dataclass
class Context:
    catalog: Catalog
    store: ArtifactStore
    provider: Any
    user_id: int
    request: dict
    cache: dict = field(default_factory=dict)

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = build()
        return self.cache[key]

    @property
    def portfolio_id(self) -> str | None:
        return self.request.get("portfolio_id")

    def book(self):
        from services.portfolio.service import priced_book

        return self.memo("book", lambda: priced_book(self.catalog, self.provider, self.user_id, self.portfolio_id))


# risk and portfolio sections ------------------------------------------------------------------

def _exposure(ctx: Context) -> list:
    from services.portfolio import views

    data = ctx.memo("exposures", lambda: views.portfolio_exposures(ctx.book()))
    totals = data["totals"]
    rows = [("Equity", d.money(data["equity"]))]
    for measure, label in (("notional", "Notional"), ("delta", "Delta-adjusted")):
        for stat in ("long", "short", "gross", "net"):
            rows.append((f"{label} {stat} exposure", d.money(totals[measure][f"{stat}_exposure"])))
    blocks = [d.Heading("Exposure"), d.KeyValues(rows, "Totals (GET /portfolio/exposures)")]
    blocks.append(d.Chart(pc.exposure(totals), "Long, short, gross and net exposure"))
    table = [[str(g["group"]), str(g["count"]), d.money(g["notional"]["net"]), d.money(g["notional"]["gross"]),
              d.money(g["delta"]["net"])] for g in data["by_sector"]]
    blocks.append(d.Table(["Sector", "Positions", "Net notional", "Gross notional", "Net delta"], table, "By sector"))
    blocks.append(d.Chart(pc.groups(data["by_sector"], "sector"), "Net notional exposure by sector"))
    if data["by_tag"]:
        blocks.append(d.Chart(pc.groups(data["by_tag"], "tag"), "Net notional exposure by tag"))
    return blocks


GREEKS = ("delta", "gamma", "theta", "vega", "rho")


def _greeks(ctx: Context) -> list:
    from services.portfolio import views

    data = ctx.memo("greeks", lambda: views.risk_greeks(ctx.book(), "portfolio", True))
    now, after = data["current"], data.get("after_expiry")
    header = ["Greek", "Now"] + ([f"After {after['expiry']} expiry"] if after else [])
    rows = [[g, d.number(now.get(g), 4)] + ([d.number(after.get(g), 4)] if after else []) for g in GREEKS]
    blocks = [d.Heading("Greeks"), d.Table(header, rows, "Portfolio Greeks (GET /risk/greeks)")]
    blocks.append(d.Chart(pc.greeks(now, after), "Greeks now and after the nearest expiry"))
    return blocks


def _factors(ctx: Context) -> list:
    from services.risk import service as risk

    report, _ = ctx.memo("factors", lambda: risk.portfolio_factors(ctx.catalog, ctx.provider, ctx.user_id, ctx.portfolio_id))
    rows = [[f["factor_name"], d.money(f.get("exposure_dollars")), d.percent(f.get("exposure"), 2)] for f in report["portfolio"]]
    blocks = [d.Heading("Factor exposures"), d.Table(["Factor", "Exposure ($)", "Exposure (% equity)"], rows,
                                                      "Portfolio factor exposures (GET /risk/factors)")]
    blocks.append(d.Chart(pc.factors(report["portfolio"]), "Factor exposures"))
    return blocks


def _scenarios(ctx: Context) -> list:
    from services.risk import service as risk

    ids = [t["id"] for t in risk.scenario_template_list()]
    data, _ = ctx.memo("scenarios", lambda: risk.portfolio_scenarios(ctx.catalog, ctx.provider, ctx.user_id,
                                                                      ctx.portfolio_id, scenario_ids=ids))
    rows = [[s["name"], d.money(s["pnl"]), d.percent(s["pnl_percent"], 2, fraction=False)] for s in data["scenarios"]]
    blocks = [d.Heading("Stress scenarios"), d.Table(["Scenario", "P&L ($)", "P&L (% equity)"], rows,
                                                      "Scenario P&L (POST /risk/scenarios, every template)")]
    blocks.append(d.Chart(pc.scenarios(data["scenarios"]), "Stress-scenario P&L"))
    return blocks


def _var(ctx: Context) -> list:
    from services.risk import service as risk

    data, _ = ctx.memo("var", lambda: risk.portfolio_var(ctx.catalog, ctx.provider, ctx.user_id, ctx.portfolio_id))
    rows = [[r["method"], f"{100 * r['level']:g}%", str(r["horizon_days"]), d.money(r.get("dollars")), d.percent(r.get("return"), 2)]
            for r in data["var"]]
    rows += [[f"ES {r['method']}", f"{100 * r['level']:g}%", str(r["horizon_days"]), d.money(r.get("dollars")),
              d.percent(r.get("return"), 2)] for r in data["expected_shortfall"]]
    blocks = [d.Heading("Value at risk"), d.Table(["Method", "Level", "Days", "Loss ($)", "Loss (% equity)"], rows,
                                                   f"VaR and ES (GET /risk/var), {data['history_observations']} daily observations")]
    mc = data.get("monte_carlo")
    if mc:
        mrows = [[str(r["horizon_days"]), f"{100 * v['level']:g}%", d.money(v["dollars"])] for r in mc["results"] for v in r["var"]]
        blocks.append(d.Table(["Days", "Level", "Monte Carlo VaR ($)"], mrows, "Monte Carlo VaR"))
    return blocks


def _alerts(ctx: Context) -> list:
    from services.portfolio.alerts import evaluate_alerts

    alerts = ctx.memo("alerts", lambda: evaluate_alerts(ctx.catalog, ctx.user_id, ctx.book()))
    blocks = [d.Heading("Alerts")]
    if not alerts:
        return blocks + [d.Paragraph("No active alerts.")]
    return blocks + [d.Table(["Priority", "Alert", "Message"], [[a["priority"], a["title"], a["message"]] for a in alerts[:30]],
                             f"{len(alerts)} active alert(s) (GET /alerts)")]


def _summary(ctx: Context) -> list:
    from services.portfolio import views

    data = ctx.memo("summary", lambda: views.portfolio_summary(ctx.book(), 10))
    rows = [("Total value", d.money(data["total_value"])), ("Cash", d.money(data["cash"])),
            ("Total P&L", d.money(data["total_pl"])), ("Total P&L %", d.percent(data["total_pl_percent"], 2, fraction=False)),
            ("Positions", str(data["position_count"]))]
    top = [[p["ticker"], p["type"], d.money(p["value"]), d.money(p["pnl"]), d.percent(p["pnl_percent"], 2, fraction=False)]
           for p in data["top_positions"]]
    return [d.Heading("Summary"), d.KeyValues(rows, "Portfolio (GET /portfolio/summary)"),
            d.Table(["Ticker", "Type", "Value", "P&L", "P&L %"], top, "Largest positions by market value")]


def _performance(ctx: Context) -> list:
    from services.portfolio import views

    data = ctx.memo("performance", lambda: views.portfolio_performance(ctx.book(), ctx.provider))
    rows = [("Total value", d.money(data["total_value"])), ("Cost basis", d.money(data["cost_basis"])),
            ("Daily change", d.money(data["daily_change"]))]
    for name, r in (data.get("returns") or {}).items():
        value = r.get("return_percent") if isinstance(r, Mapping) else r
        rows.append((f"Return {name}", d.percent(value, 4, fraction=False)))
    return [d.Heading("Performance"), d.KeyValues(rows, "Constant-holdings performance (GET /portfolio/performance)")]


def _positions(ctx: Context) -> list:
    from services.portfolio import views

    data, _ = views.list_positions(ctx.book(), page=1, limit=50)
    rows = [[p.get("ticker"), p.get("type"), d.number(p.get("quantity"), 2), d.money(p.get("value")), d.money(p.get("pnl"))]
            for p in data["positions"]]
    return [d.Heading("Positions"), d.Table(["Ticker", "Type", "Quantity", "Value", "P&L"], rows, "Positions (first 50)")]


# backtest sections --------------------------------------------------------------------------

def _backtest(ctx: Context):
    from services.lab import backtests

    def load():
        bt, model_id = backtests.get_backtest(ctx.catalog, ctx.user_id, ctx.request["backtest_id"])
        return bt, model_id, backtests.load_series(ctx.store, bt)
    return ctx.memo("backtest", load)


METRIC_ROWS = (("Sharpe", "sharpe", "n"), ("Sortino", "sortino", "n"), ("Deflated Sharpe", "deflated_sharpe", "n"),
               ("Cumulative return", "cum_ret", "p"), ("Annual return", "annual_return", "p"),
               ("Annual volatility", "annual_volatility", "p"), ("Max drawdown", "max_drawdown", "p"),
               ("Calmar", "calmar", "n"), ("Win rate", "win_rate", "p"), ("Trades", "trades", "i"),
               ("ES 95% (per bar)", "es_95", "p"), ("Final equity", "final_equity", "$"))


def _fmt_metric(value, kind: str) -> str:
    return {"n": lambda v: d.number(v, 4), "p": lambda v: d.percent(v, 2), "i": lambda v: d.number(v, 0),
            "$": d.money}[kind](value)


def _metrics(ctx: Context) -> list:
    bt, model_id, _ = _backtest(ctx)
    m = bt.metrics or {}
    rows = [(label, _fmt_metric(m.get(key), kind)) for label, key, kind in METRIC_ROWS]
    gate = bt.gate or {}
    rows.append(("Gate", "pass" if gate.get("pass") else "fail"))
    blocks = [d.Heading("Metrics"), d.KeyValues(rows, f"Backtest {bt.id} (GET /backtest/{{id}})")]
    if gate.get("reasons"):
        blocks.append(d.Paragraph("Gate: " + "; ".join(gate["reasons"])))
    return blocks


def _bt_chart(name: str, caption: str) -> Callable[[Context], list]:
    def build(ctx: Context) -> list:
        from services.reports.lab import backtest_chart_bytes

        bt, model_id, _ = _backtest(ctx)
        png = backtest_chart_bytes(bt.series_sha, name, lambda: _backtest(ctx)[2], "png", title=model_id, opaque=True,
                                   store=ctx.store)
        return [d.Chart(None, caption, _png=png)]
    return build


def _folds(ctx: Context) -> list:
    bt, _, _ = _backtest(ctx)
    rows = [[str(f.get("fold")), str(f.get("test_start_label", ""))[:10], str(f.get("test_end_label", ""))[:10],
             d.number(f.get("sharpe"), 4), d.percent(f.get("cum_return"), 2), d.percent(f.get("max_drawdown"), 2),
             d.number(f.get("trades"), 0)] for f in bt.folds or []]
    return [d.Heading("Walk-forward folds"), d.Table(["Fold", "Test start", "Test end", "Sharpe", "Return", "Max DD", "Trades"],
                                                      rows, "Out-of-sample segments")]


def _trades(ctx: Context) -> list:
    from services.lab.backtests import load_trades

    bt, _, _ = _backtest(ctx)
    trades = load_trades(ctx.store, bt)
    rows = [[t.timestamp.strftime("%Y-%m-%d %H:%M"), t.action, d.money(t.price), d.number(t.quantity, 4), d.money(t.pnl),
             d.money(t.cumulative_pnl)] for t in trades.tail(MAX_TRADES_PRINTED).itertuples()]
    title = f"Last {min(len(trades), MAX_TRADES_PRINTED)} of {len(trades)} fills (GET /export/backtest/{{id}})"
    return [d.Heading("Trades"), d.Table(["Time (UTC)", "Side", "Price", "Quantity", "P&L", "Cumulative P&L"], rows, title)]


# sweep sections -----------------------------------------------------------------------------

def _grid(ctx: Context) -> pd.DataFrame:
    from services.lab.sweeps import sweep_grid

    return ctx.memo("grid", lambda: sweep_grid(ctx.catalog, ctx.user_id, ctx.request["sweep_id"]))


def _sweep_summary(ctx: Context) -> list:
    from services.lab.sweeps import get_sweep

    sweep, model_id = get_sweep(ctx.catalog, ctx.user_id, ctx.request["sweep_id"])
    grid = _grid(ctx)
    best = grid.loc[grid["sharpe"].idxmax()] if len(grid) and grid["sharpe"].notna().any() else None
    rows = [("Model", model_id), ("Status", sweep.status), ("Configurations", str(len(grid))),
            ("Passing the gate", str(int(grid["gate_pass"].fillna(False).astype(bool).sum()) if len(grid) else 0))]
    if best is not None:
        rows += [("Best Sharpe", d.number(best["sharpe"], 4)), ("Best configuration", f"#{int(best['config_index'])}")]
    return [d.Heading("Sweep"), d.KeyValues(rows, f"Sweep {sweep.id} (GET /backtest_sweep/{{id}}/grid)")]


def _axes(grid: pd.DataFrame) -> tuple[str, str] | None:
    """The heatmap's two axes (``services.lab.sweeps.heatmap_axes``); None for one configuration."""
    from services.lab.sweeps import heatmap_axes

    return heatmap_axes(grid) if len(grid) > 1 else None


def _heatmap(ctx: Context) -> list:
    grid = _grid(ctx)
    axes = _axes(grid)
    if axes is None:
        return [d.Heading("Heatmap"), d.Paragraph("The grid has a single configuration.")]
    return [d.Heading("Heatmap"), d.Chart(charts.grid_heatmap(grid, axes[0], axes[1], "sharpe"),
                                          f"Sharpe by {axes[0]} and {axes[1]}")]


def _top(ctx: Context) -> list:
    grid = _grid(ctx).sort_values("sharpe", ascending=False, na_position="last").head(15)
    rows = [[str(int(r.config_index)), str(r.kind), d.number(r.value, 4), d.number(r.fees_bps, 2), d.number(r.sharpe, 4),
             d.number(r.deflated_sharpe, 4), d.percent(r.cum_ret, 2), d.percent(r.max_drawdown, 2)]
            for r in grid.itertuples()]
    return [d.Heading("Top configurations"), d.Table(["#", "Kind", "Value", "Fees bps", "Sharpe", "DSR", "Return", "Max DD"],
                                                      rows, "By Sharpe")]


def _leaderboard(ctx: Context) -> list:
    grid = _grid(ctx)
    return [d.Heading("Sharpe vs deflated Sharpe"),
            d.Chart(charts.sharpe_vs_deflated(grid["sharpe"].to_numpy(np.float64), grid["deflated_sharpe"].to_numpy(np.float64)),
                    "Each configuration's Sharpe against its deflated Sharpe")]


# modeling-session sections (ProForma, portfolio spec 7) -----------------------------------------

def _session(ctx: Context) -> dict:
    """``GET /modeling/sessions/{id}`` (without the position lists) and the session's orders."""
    def load():
        from services.proforma import exports
        from services.proforma import service as proforma
        from services.proforma.sessions import load_session

        row = load_session(ctx.catalog, ctx.user_id, ctx.request["session_id"])
        view = proforma.describe(row, ctx.provider, with_positions=False)
        return {**view, "orders": [o.as_dict() for o in exports.session_orders(row, ctx.provider)]}
    return ctx.memo("session", load)


def _triples(rows: list[tuple[str, dict]], fmt: Callable[[Any], str]) -> list[list[str]]:
    return [[label, fmt(t["before"]), fmt(t["after"]), fmt(t["change"])] for label, t in rows]


BEFORE_AFTER = ["", "Before", "After", "Change"]


def _impact(ctx: Context) -> list:
    data = _session(ctx)
    imp = data["impact"]
    rows = [("Session", data["name"]), ("Changes", str(len(data["changes"]))),
            ("Total value before", d.money(imp["total_value"]["before"])), ("Total value after", d.money(imp["total_value"]["after"])),
            ("Cash required", d.money(imp.get("cash_required"))),
            ("Net exposure change", d.percent(imp.get("net_exposure_change"), 2)),
            ("Technology exposure change", d.percent(imp.get("tech_exposure_change"), 2))]
    blocks = [d.Heading("Impact"), d.KeyValues(rows, f"Modeling session {data['session_id']} (GET /modeling/sessions/{{id}})")]
    if imp.get("warnings"):
        blocks.append(d.Paragraph("Warnings: " + "; ".join(imp["warnings"])))
    return blocks


def _session_exposure(ctx: Context) -> list:
    imp = _session(ctx)["impact"]["exposures"]
    rows = [(f"{label} {stat}", imp[m][stat]) for m, label in (("notional", "Notional"), ("delta", "Delta-adjusted"))
            for stat in pc.STATS]
    chart = charts.grouped_bars(list(pc.STATS), {"before": [imp["notional"][s]["before"] or 0.0 for s in pc.STATS],
                                                 "after": [imp["notional"][s]["after"] or 0.0 for s in pc.STATS]},
                                title="Notional exposure before and after", ylabel="$")
    return [d.Heading("Exposure before and after"), d.Table(BEFORE_AFTER, _triples(rows, d.money), "Exposure ($)"),
            d.Chart(chart, "Long, short, gross and net notional exposure, before and after")]


def _session_sectors(ctx: Context) -> list:
    groups = _session(ctx)["impact"]["by_sector"]
    rows = sorted(groups.items(), key=lambda kv: -abs(kv[1]["net"]["after"] or kv[1]["net"]["before"] or 0.0))
    table = _triples([(k, v["net"]) for k, v in rows], d.money)
    labels = [k for k, _ in rows[:pc.MAX_BARS]]
    chart = charts.grouped_bars(labels, {"before": [groups[k]["net"]["before"] or 0.0 for k in labels],
                                         "after": [groups[k]["net"]["after"] or 0.0 for k in labels]},
                                title="Net notional exposure by sector, before and after", ylabel="$")
    return [d.Heading("Sectors before and after"), d.Table(["Sector", "Before", "After", "Change"], table, "Net notional ($)"),
            d.Chart(chart, "Net notional exposure by sector, before and after")]


def _session_greeks(ctx: Context) -> list:
    g = _session(ctx)["impact"]["greeks"]
    return [d.Heading("Greeks before and after"),
            d.Table(["Greek", "Before", "After", "Change"], _triples([(k, g[k]) for k in GREEKS], lambda v: d.number(v, 4)),
                    "Position Greeks")]


def _session_risk(ctx: Context) -> list:
    imp = _session(ctx)["impact"]
    blocks = [d.Heading("Risk before and after")]
    for key, title in (("var", "1-day value at risk ($)"), ("factors", "Factor exposure ($)"), ("stress", "Stress scenario P&L ($)")):
        if imp.get(key):
            blocks.append(d.Table(BEFORE_AFTER, _triples(list(imp[key].items()), d.money), title))
        else:
            blocks.append(d.Paragraph(f"{title}: not available."))
    return blocks


def _session_trades(ctx: Context) -> list:
    orders = _session(ctx)["orders"]
    blocks = [d.Heading("Trade list")]
    if not orders:
        return blocks + [d.Paragraph("No trades: the session has no changes.")]
    rows = [[o["action"], o["symbol"], d.number(o["quantity"], 0), o["security_type"], o["order_type"], o["time_in_force"]]
            for o in orders]
    return blocks + [d.Table(["Action", "Symbol", "Quantity", "Type", "Order", "TIF"], rows,
                             f"{len(orders)} order(s) (GET /modeling/sessions/{{id}}/export)")]


SECTIONS: dict[tuple[str, str], Callable[[Context], list]] = {
    **{("risk_summary", k): f for k, f in (("exposure", _exposure), ("greeks", _greeks), ("factors", _factors),
                                           ("scenarios", _scenarios), ("var", _var), ("alerts", _alerts))},
    **{("portfolio_overview", k): f for k, f in (("summary", _summary), ("exposure", _exposure),
                                                 ("performance", _performance), ("positions", _positions))},
    **{("backtest_tearsheet", k): f for k, f in (
        ("metrics", _metrics), ("equity", _bt_chart("equity", "Equity against buy and hold, and drawdown")),
        ("monthly", _bt_chart("monthly", "Monthly returns")),
        ("rolling", _bt_chart("rolling", "Rolling Sharpe and volatility (63 bars)")),
        ("distribution", _bt_chart("distribution", "Bar returns with historical VaR and ES at 95%")),
        ("folds", _folds), ("trades", _trades))},
    **{("sweep_report", k): f for k, f in (("summary", _sweep_summary), ("heatmap", _heatmap), ("top", _top),
                                           ("leaderboard", _leaderboard))},
    **{("modeling_session", k): f for k, f in (("impact", _impact), ("exposure", _session_exposure),
                                               ("sectors", _session_sectors), ("greeks", _session_greeks),
                                               ("risk", _session_risk), ("trades", _session_trades))},
}

TITLES = {"risk_summary": "Risk summary", "portfolio_overview": "Portfolio overview",
          "backtest_tearsheet": "Backtest tearsheet", "sweep_report": "Sweep report", "modeling_session": "Modeling session"}


def build_document(ctx: Context, progress: Callable | None = None) -> d.Document:
    req = ctx.request
    subject = (req.get("backtest_id") or req.get("sweep_id") or req.get("session_id") or req.get("portfolio_id")
               or "default portfolio")
    doc = d.Document(TITLES[req["type"]], "")
    for i, section in enumerate(req["sections"]):
        if progress:
            progress(0.1 + 0.7 * i / len(req["sections"]), f"section {section}")
        doc.add(*SECTIONS[(req["type"], section)](ctx))
    as_of = None
    if "book" in ctx.cache:
        as_of = pd.Timestamp(ctx.cache["book"].as_of).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")
    doc.subtitle = f"{subject} - period {req['period']}" + (f" - as of {as_of}" if as_of else "")
    return doc


def run_report_job(catalog: Catalog, store: ArtifactStore, provider, report_id: str, progress: Callable | None = None,
                   emit: Callable[[int, str, dict], Any] | None = None) -> dict:
    """The ``reports.generate`` job body: build, store by SHA-256, then mark completed."""
    with catalog.session() as s:
        row = s.get(Report, report_id)
        if row is None:
            raise LookupError(f"report {report_id} not found")
        row.status = "running"
        user_id, request = row.user_id, dict(row.params)
    try:
        ctx = Context(catalog, store, provider, user_id, request)
        doc = build_document(ctx, progress)
        if progress:
            progress(0.85, f"rendering {request['format']}")
        data, pages = d.render(doc, request["format"])
        ref = store.put(data, prefix="reports", ext=request["format"])
    except BaseException as exc:
        fail_report(catalog, report_id, f"{type(exc).__name__}: {exc}")
        raise
    with catalog.session() as s:
        row = s.get(Report, report_id)
        row.sha, row.path, row.size, row.pages = ref.sha, ref.path, ref.size, pages
        row.status, row.finished_at, row.error = "completed", utcnow(), None
        s.flush()
        view = report_view(row)
    if emit:
        emit(user_id, "report.ready", view)
    return view


def fail_report(catalog: Catalog, report_id: str, message: str) -> None:
    with catalog.session() as s:
        row = s.get(Report, report_id)
        if row is not None and row.status != "completed":
            row.status, row.error, row.finished_at = "failed", message[:2000], utcnow()


# --- templates (spec 8.2) ----------------------------------------------------------------------

BUILTIN_TEMPLATES = {
    "daily_risk": {"name": "Daily risk", "type": "risk_summary", "format": "pdf", "period": "daily",
                   "sections": list(TYPES["risk_summary"])},
    "weekly_risk": {"name": "Weekly risk", "type": "risk_summary", "format": "pdf", "period": "weekly",
                    "sections": ["exposure", "factors", "scenarios", "var"]},
    "backtest_tearsheet": {"name": "Backtest tearsheet", "type": "backtest_tearsheet", "format": "pdf", "period": "daily",
                           "sections": list(TYPES["backtest_tearsheet"])},
    "sweep_summary": {"name": "Sweep summary", "type": "sweep_report", "format": "pdf", "period": "daily",
                      "sections": list(TYPES["sweep_report"])},
}


def template_view(template_id: str, t: Mapping[str, Any], builtin: bool) -> dict:
    return {"template_id": template_id, "name": t["name"], "type": t["type"], "format": t["format"],
            "period": t["period"], "sections": list(t["sections"]), "builtin": builtin}


def list_templates(catalog: Catalog, user_id: int) -> list[dict]:
    out = [template_view(k, v, True) for k, v in BUILTIN_TEMPLATES.items()]
    with catalog.session() as s:
        rows = s.scalars(select(ReportTemplate).where(ReportTemplate.user_id == user_id).order_by(ReportTemplate.created_at)).all()
        out += [template_view(r.id, {"name": r.name, "type": r.type, "format": r.format, "period": r.period,
                                     "sections": r.sections}, False) for r in rows]
    return out


def create_template(catalog: Catalog, user_id: int, body: Mapping[str, Any]) -> dict:
    if not isinstance(body, Mapping):
        raise ReportInputError("body", "must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        raise ReportInputError("name", "a name of 1 to 120 characters")
    req = validate_request({k: body.get(k) for k in ("type", "format", "sections", "period") if body.get(k) is not None})
    with catalog.session() as s:
        row = ReportTemplate(user_id=user_id, name=name.strip(), type=req["type"], format=req["format"],
                             sections=req["sections"], period=req["period"], params={})
        s.add(row)
        s.flush()
        return template_view(row.id, {"name": row.name, "type": row.type, "format": row.format, "period": row.period,
                                      "sections": row.sections}, False)


def get_template(catalog: Catalog, user_id: int, template_id: str) -> dict:
    if template_id in BUILTIN_TEMPLATES:
        return template_view(template_id, BUILTIN_TEMPLATES[template_id], True)
    with catalog.session() as s:
        row = owned_row(s, ReportTemplate, template_id, user_id, "template")
        return template_view(row.id, {"name": row.name, "type": row.type, "format": row.format, "period": row.period,
                                      "sections": row.sections}, False)
