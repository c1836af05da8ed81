"""The leaderboard: ranked result rows (single backtests and sweep configurations), filters, CSV."""

from __future__ import annotations

import logging
from typing import Mapping, Optional

from sqlalchemy import func, select

from cluster.catalog import Catalog, LeaderboardEntry
from compute.backtest_nb import METRIC_NAMES

from services.lab.common import MAX_CONFIGS, LabInputError

log = logging.getLogger("sigma.sweep")


def ranked(query):
    """Leaderboard order: passing gates first, then the pack's post-gate ranking score, then
    Sharpe (undefined values last), then id for a stable order."""
    return query.order_by(LeaderboardEntry.gate_pass.desc(), LeaderboardEntry.score.desc().nulls_last(),
                          LeaderboardEntry.sharpe.desc().nulls_last(), LeaderboardEntry.id)


def entry_summary(row: LeaderboardEntry) -> dict:
    return entry_summary_of({c: getattr(row, c) for c in ("id", "config_index", "config", "metrics", "deflated_sharpe",
                                                          "gate_pass", "gate_reasons", "score")})


def rank_key(entry: Mapping) -> tuple:
    """The leaderboard's order (``leaderboard.ranked``) as a sort key of a row dict or of a
    stored summary (``entry_summary``): gates passed first, then score, then Sharpe (undefined
    last), then id."""
    if "result_id" in entry:  # a summary
        passed, score = entry["gate"]["pass"], entry.get("score")
        sharpe, ident = (entry.get("metrics") or {}).get("sharpe"), entry["result_id"]
    else:
        passed, score, sharpe, ident = entry["gate_pass"], entry.get("score"), entry.get("sharpe"), entry["id"]
    return (not passed, score is None, -(score or 0.0), sharpe is None, -(sharpe or 0.0), ident)


def entry_summary_of(row: Mapping) -> dict:
    """The summary a sweep keeps as its best, of a row's columns (a dict)."""
    metrics = dict(row.get("metrics") or {})
    metrics["deflated_sharpe"] = row.get("deflated_sharpe")
    return {"result_id": row["id"], "config_index": row.get("config_index"), "config": row.get("config"),
            "metrics": metrics, "gate": {"pass": row["gate_pass"], "reasons": row.get("gate_reasons")},
            "score": row.get("score")}


def best_entry(s, sweep_id: str) -> Optional[dict]:
    row = s.scalars(ranked(select(LeaderboardEntry).where(LeaderboardEntry.sweep_id == sweep_id)).limit(1)).first()
    return entry_summary(row) if row is not None else None


#: Sortable metrics stored as columns (sorted in SQL on an index-friendly column).
COLUMN_METRICS = {"sharpe": "sharpe", "deflated_sharpe": "deflated_sharpe", "cum_ret": "cum_ret",
                  "cum_return": "cum_ret", "max_drawdown": "max_drawdown", "win_rate": "win_rate",
                  "trades": "trades", "score": "score"}

#: Every other metric a result carries (sorted in SQL through the JSON column).
JSON_METRICS = tuple(m for m in METRIC_NAMES if m not in COLUMN_METRICS) + (
    "es95", "fold_sharpe_std", "fold_sharpe_mean", "psr", "n_folds")

SORTABLE = tuple(COLUMN_METRICS) + JSON_METRICS

CSV_METRICS = ("sharpe", "deflated_sharpe", "sortino", "calmar", "cum_ret", "annual_return", "annual_volatility",
               "max_drawdown", "win_rate", "trades", "trades_per_year", "es_95", "turnover", "exposure",
               "fold_sharpe_std", "n_bars")

CSV_CONFIG = ("kind", "value", "exit_value", "top_pct", "long_only", "allowed_hours", "fees_bps", "slippage_bps",
              "splits")


def leaderboard_query(user_id: int, *, model_id=None, pack_id=None, tag=None, risk_profile=None, pass_gate=None,
                      sweep_id=None, sort_by: Optional[str] = None, order: str = "desc"):
    """The user's results filtered and ordered (``ranked`` when ``sort_by`` is None).

    ``LabInputError("sort_by", ...)`` for a metric results do not carry.
    """
    query = select(LeaderboardEntry).where(LeaderboardEntry.user_id == user_id)
    for column, value in ((LeaderboardEntry.model_id, model_id), (LeaderboardEntry.pack_id, pack_id),
                          (LeaderboardEntry.tag, tag), (LeaderboardEntry.risk_profile, risk_profile),
                          (LeaderboardEntry.sweep_id, sweep_id)):
        if value is not None:
            query = query.where(column == value)
    if pass_gate is not None:
        query = query.where(LeaderboardEntry.gate_pass.is_(bool(pass_gate)))
    if sort_by is None:
        return ranked(query)
    if order not in ("asc", "desc"):
        raise LabInputError("order", "must be asc or desc")
    if sort_by in COLUMN_METRICS:
        key = getattr(LeaderboardEntry, COLUMN_METRICS[sort_by])
    elif sort_by in JSON_METRICS:
        key = LeaderboardEntry.metrics[sort_by].as_float()
    else:
        raise LabInputError("sort_by", f"unknown metric {sort_by!r}; sortable: {', '.join(SORTABLE)}")
    key = key.desc() if order == "desc" else key.asc()
    return query.order_by(key.nulls_last(), LeaderboardEntry.gate_pass.desc(),
                          LeaderboardEntry.score.desc().nulls_last(), LeaderboardEntry.id)


def leaderboard_item(row: LeaderboardEntry, rank: int) -> dict:
    metrics = dict(row.metrics or {})
    metrics["deflated_sharpe"] = row.deflated_sharpe
    metrics.setdefault("cum_ret", row.cum_ret)
    return {
        "rank": rank, "result_id": row.id, "backtest_id": row.backtest_id, "sweep_id": row.sweep_id,
        "config_index": row.config_index, "model_id": row.model_id, "pack_id": row.pack_id, "tag": row.tag,
        "risk_profile": row.risk_profile, "metrics": metrics,
        "gate": {"pass": row.gate_pass, "reasons": list(row.gate_reasons or [])}, "score": row.score,
        "config": row.config, "created_at": row.created_at.isoformat() if row.created_at else None,
    }


def leaderboard(catalog: Catalog, user_id: int, *, limit: int = 100, offset: int = 0, **filters) -> dict:
    """``{"items": [...ranked...], "total", "limit", "offset"}``; ranks count from the first
    row of the filtered order, so page 2 continues page 1's numbering."""
    query = leaderboard_query(user_id, **filters)
    with catalog.session() as s:
        total = int(s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)
        rows = s.scalars(query.limit(limit).offset(offset)).all()
    return {"items": [leaderboard_item(r, offset + i + 1) for i, r in enumerate(rows)], "total": total,
            "limit": limit, "offset": offset}


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 10))
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def leaderboard_csv(catalog: Catalog, user_id: int, *, limit: int = MAX_CONFIGS, **filters) -> str:
    """The filtered, ranked leaderboard as CSV: one row per result, config and metric columns."""
    import csv
    import io

    query = leaderboard_query(user_id, **filters).limit(limit)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "result_id", "model_id", "pack_id", "risk_profile", "tag", "sweep_id", "config_index",
                     "backtest_id", "gate_pass", "gate_reasons", "score", *CSV_CONFIG, *CSV_METRICS])
    with catalog.session() as s:
        for i, row in enumerate(s.scalars(query).yield_per(2000), start=1):
            metrics = dict(row.metrics or {})
            metrics["deflated_sharpe"] = row.deflated_sharpe
            config = row.config or {}
            cells = [i, row.id, row.model_id, row.pack_id, row.risk_profile, row.tag, row.sweep_id, row.config_index,
                     row.backtest_id, row.gate_pass, "; ".join(row.gate_reasons or []), row.score,
                     *(config.get(k) for k in CSV_CONFIG), *(metrics.get(k) for k in CSV_METRICS)]
            writer.writerow([_csv_cell(c) for c in cells])
    return out.getvalue().replace("\r", "")
