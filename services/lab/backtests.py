"""Single walk-forward backtests: config, the job's work, stored results and their views."""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from sqlalchemy import select

from cluster.artifacts import ArtifactStore
from cluster.catalog import Backtest, Catalog, LabModel, LeaderboardEntry
from cluster.catalog.models import utcnow
from compute import packs as packs_mod
from services.lab.common import DEFAULT_SPLITS, LabInputError, parse_date
from compute.jsonsafe import finite_or_none, json_safe
from services.lab.events import emit_event
from services.lab.inputs import LabInputs, model_inputs
from services.lab.matrices import get_matrix, load_matrix
from services.lab.models import get_model
from services.lab.training import check_allowed_hours

from services.lab.export import fills_csv
from services.reports.frames import from_parquet, to_parquet
from services.lab.options import options_walk_forward

log = logging.getLogger("sigma.lab")

BACKTEST_KEYS = ("kind", "value", "exit_value", "top_pct", "long_only", "allowed_hours", "splits", "embargo",
                 "borrow_bps")


def backtest_config(pack_id: str, config: Mapping[str, Any] | None) -> dict:
    """Validate the spec's backtest ``config`` body; returns the normalised dict."""
    from compute.backtest import BacktestConfig

    config = dict(config or {})
    for key in config:
        if key not in BACKTEST_KEYS:
            raise LabInputError(f"config.{key}", f"unknown setting; expected one of {list(BACKTEST_KEYS)}")
    kind = config.get("kind", "thresholds")
    if kind not in ("thresholds", "top_pct"):
        raise LabInputError("config.kind", "must be thresholds or top_pct")
    default_value = 0.55 if kind == "thresholds" else 0.10
    value = config.get("value", default_value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LabInputError("config.value", "must be a number")
    hours = check_allowed_hours(pack_id, config.get("allowed_hours"), "config.allowed_hours")
    splits = config.get("splits", DEFAULT_SPLITS)
    if isinstance(splits, bool) or not isinstance(splits, int) or not 1 <= splits <= 20:
        raise LabInputError("config.splits", "must be an integer between 1 and 20")
    embargo = config.get("embargo")
    if embargo is not None and (isinstance(embargo, bool) or not isinstance(embargo, int) or not 0 <= embargo <= 500):
        raise LabInputError("config.embargo", "must be an integer between 0 and 500")
    long_only = config.get("long_only", False)
    if not isinstance(long_only, bool):
        raise LabInputError("config.long_only", "must be true or false")
    out = {"kind": kind, "value": float(value), "exit_value": config.get("exit_value"),
           "top_pct": config.get("top_pct"), "long_only": long_only, "allowed_hours": hours,
           "splits": splits, "embargo": embargo}
    borrow = config.get("borrow_bps")
    if borrow is not None:
        if isinstance(borrow, bool) or not isinstance(borrow, (int, float)) or not 0 <= borrow <= 10_000:
            raise LabInputError("config.borrow_bps", "must be a number of basis points a year in [0, 10000]")
        out["borrow_bps"] = float(borrow)
    try:
        BacktestConfig(kind=kind, value=float(value), exit_value=out["exit_value"], top_pct=out["top_pct"],
                       long_only=long_only, allowed_hours=None if hours is None else tuple(hours))
    except (ValueError, TypeError) as exc:
        text = str(exc)
        name = "config.exit_value" if "exit" in text else "config.top_pct" if "top_pct" in text and kind == "thresholds" else "config.value"
        raise LabInputError(name, text) from None
    return out


def create_backtest(catalog: Catalog, user_id: int, model_id: str, config: Mapping[str, Any] | None,
                    matrix_sha: str | None, start_date=None, end_date=None,
                    risk_profile: str | None = None, *, strategy: Mapping[str, Any] | None = None,
                    signal: Mapping[str, Any] | None = None, store: ArtifactStore | None = None,
                    ) -> tuple[Backtest, LabModel]:
    """Validate a backtest request and record it (status queued).

    ``strategy`` (a built-in indicator strategy) or ``signal`` (the user's own series) replace
    the model's walk-forward scores (``services.lab.sources``); a signal is lined up with the
    matrix's bars here (``store`` needed), so a series that does not fit is a 400 now."""
    from services.lab import sources

    model = get_model(catalog, user_id, model_id)
    cfg = backtest_config(model.pack_id, config)
    if strategy is not None and signal is not None:
        raise LabInputError("strategy", "give a strategy or a signal, not both")
    if strategy is not None:
        cfg["strategy"] = sources.validate_strategy(strategy)
    if signal is not None:
        cfg["signal"] = sources.validate_signal(signal)
    try:
        matrix = get_matrix(catalog, model.id, matrix_sha)
    except LookupError as exc:
        raise LabInputError("matrix_sha", str(exc)) from None
    start = parse_date(start_date, "start_date") if start_date else None
    end = parse_date(end_date, "end_date") if end_date else None
    if start and end and start > end:
        raise LabInputError("end_date", "must not be before start_date")
    profile = risk_profile or model.risk_profile
    if profile not in packs_mod.RISK_PROFILES:
        raise LabInputError("risk_profile", f"must be one of {list(packs_mod.RISK_PROFILES)}")
    cfg["start_date"] = start.isoformat() if start else None
    cfg["end_date"] = end.isoformat() if end else None
    if (strategy is not None or signal is not None) and store is not None:
        frame = load_matrix(store, matrix)
        sources.source_scores(sources._bars(frame, cfg), cfg, packs_mod.get_pack(model.pack_id).cadence)
    with catalog.session() as s:
        bt = Backtest(user_id=user_id, model_pk=model.id, matrix_sha=matrix.matrix_sha, config=cfg,
                      risk_profile=profile, status="queued")
        s.add(bt)
        s.flush()
        return bt, model


def walk_forward_from_inputs(inputs: LabInputs, bt: Mapping[str, Any]):
    """The walk-forward backtest of one configuration on precomputed inputs
    (``compute.walkforward.run_walk_forward`` replaying the fold scores), plus, for options
    packs, the 0DTE contract P&L along the same decisions."""
    from compute.backtest import BacktestConfig
    from compute.walkforward import WalkForwardConfig, run_walk_forward

    config = BacktestConfig(
        kind=bt.get("kind", "thresholds"), value=float(bt.get("value", 0.55)), exit_value=bt.get("exit_value"),
        top_pct=bt.get("top_pct"), long_only=bool(bt.get("long_only", False)),
        allowed_hours=None if bt.get("allowed_hours") is None else tuple(bt["allowed_hours"]),
        fees_bps=inputs.fees_bps, slippage_bps=inputs.slippage_bps, periods_per_year=inputs.periods_per_year,
        borrow_bps=float(bt.get("borrow_bps") or 0.0))
    wf = WalkForwardConfig(backtest=config, n_splits=inputs.n_splits, label_horizon=inputs.label_horizon,
                           embargo=inputs.embargo)
    replay = iter(zip(inputs.train_scores, inputs.extras["test_scores"]))

    def fit_predict(train_df, test_df):
        return next(replay)

    frame = inputs.matrix.set_index(pd.DatetimeIndex(inputs.matrix["timestamp"]))
    if inputs.is_options:

        return options_walk_forward(frame, fit_predict, wf, inputs)
    return run_walk_forward(frame, fit_predict, wf)


#: Columns of a backtest's per-bar series (``GET /backtest/{id}/series``), after ``timestamp``.
SERIES_COLUMNS = ("equity", "returns", "drawdown", "position", "benchmark_return", "fold")


def series_frame(inputs: LabInputs, result) -> pd.DataFrame:
    """The out-of-sample bars of a walk-forward run: equity, bar returns, drawdown (under
    water), position (-1/0/+1), the instrument's own close-to-close return on the same bars
    (the buy-and-hold benchmark) and the walk-forward fold each bar belongs to."""
    from compute.series import drawdown

    bt = result.backtest
    close = inputs.matrix["close"].to_numpy(dtype="float64")
    prev = close[inputs.first - 1:-1] if inputs.first > 0 else close[:-1]
    bench = close[inputs.first:] / prev - 1.0 if inputs.first > 0 else np.concatenate(([np.nan], close[1:] / prev - 1.0))
    equity = bt.equity.to_numpy(dtype="float64")
    stamps = pd.DatetimeIndex(bt.equity.index)
    stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
    return pd.DataFrame({
        "timestamp": stamps, "equity": equity, "returns": bt.returns.to_numpy(dtype="float64"),
        "drawdown": drawdown(equity), "position": bt.position.to_numpy(dtype="int64"),
        "benchmark_return": bench, "fold": np.asarray(result.segments, dtype="int64")})


def load_series(store: ArtifactStore, bt: Backtest) -> pd.DataFrame:
    """A completed backtest's series frame (verified against its SHA-256); ``LookupError`` for a
    backtest recorded without one (run before series were kept)."""
    if not bt.series_path:
        raise LookupError(f"backtest {bt.id} has no stored series; run it again to get one")
    return from_parquet(store.get(bt.series_path, sha=bt.series_sha))


def load_trades(store: ArtifactStore, bt: Backtest) -> pd.DataFrame:
    """A completed backtest's fills (the export CSV) as a frame with UTC timestamps."""
    import io

    if not bt.fills_path:
        return pd.DataFrame(columns=["timestamp", "action", "price", "quantity", "pnl", "cumulative_pnl"])
    frame = pd.read_csv(io.BytesIO(store.get(bt.fills_path, sha=bt.fills_sha)))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def open_trade_view(open_trade: Mapping[str, Any] | None) -> dict | None:
    """``BacktestResult.open_trade`` for JSON: the entry time as ISO 8601 UTC."""
    if open_trade is None:
        return None
    out = dict(open_trade)
    stamp = out.get("entry_timestamp")
    if isinstance(stamp, pd.Timestamp):
        stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
        out["entry_timestamp"] = stamp.isoformat()
    return out


def metrics_view(metrics: Mapping[str, Any]) -> dict:
    """Backtest metrics under the Lab spec's names (``cum_ret``) plus every engine figure."""
    out = json_safe(dict(metrics))
    out["cum_ret"] = out.get("cum_return")
    out["es95"] = out.get("es_95")
    return out


def run_backtest_job(catalog: Catalog, store: ArtifactStore, backtest_id: str, progress: Callable | None = None,
                     allowed_modules=None) -> dict:
    """The ``lab.backtest`` job body: inputs, walk-forward run, gate, fills, result rows."""
    with catalog.session() as s:
        bt = s.get(Backtest, backtest_id)
        if bt is None:
            raise LookupError(f"backtest {backtest_id} not found")
        bt.status = "running"
        model = s.get(LabModel, bt.model_pk)
        cfg, matrix_sha, profile, user_id = dict(bt.config), bt.matrix_sha, bt.risk_profile, bt.user_id
    if cfg.get("strategy") or cfg.get("signal"):
        return _run_source_backtest_job(catalog, store, backtest_id, model, cfg, matrix_sha, profile, user_id)
    try:
        inputs = model_inputs(catalog, store, user_id, model.model_id, matrix_sha, start_date=cfg.get("start_date"),
                              end_date=cfg.get("end_date"), n_splits=cfg.get("splits") or DEFAULT_SPLITS,
                              embargo=cfg.get("embargo"), risk_profile=profile,
                              progress=(lambda f, m: progress(0.8 * f, m)) if progress else None,
                              allowed_modules=allowed_modules)
        result = walk_forward_from_inputs(inputs, cfg)
    except (LabInputError, LookupError) as exc:
        fail_backtest(catalog, backtest_id, str(exc))
        raise
    return _record_run(catalog, store, backtest_id=backtest_id, user_id=user_id, model=model, pack=inputs.pack,
                       profile=profile, config=cfg, engine_metrics=result.metrics, open_trade=result.backtest.open_trade,
                       fills=result.backtest.fills, series=series_frame(inputs, result), folds=json_safe(result.folds),
                       matrix_sha=inputs.matrix_sha)


def _run_source_backtest_job(catalog: Catalog, store: ArtifactStore, backtest_id: str, model: LabModel,
                             cfg: dict, matrix_sha: str, profile: str, user_id: int) -> dict:
    """A strategy/signal backtest (``services.lab.sources``): the same engine, metrics, gate,
    leaderboard row, fills export and series as a model backtest; the model's own latest
    metrics are left alone."""
    from services.lab import sources
    from services.lab.inputs import bars_per_year

    pack = packs_mod.get_pack(model.pack_id)
    try:
        matrix_row = get_matrix(catalog, model.id, matrix_sha)
        frame = load_matrix(store, matrix_row)
        policy = pack.policy(profile)
        result, bars = sources.run_source_backtest(frame, cfg, pack, policy.fees_bps, policy.slippage_bps,
                                                   bars_per_year(frame, pack.cadence))
    except (LabInputError, LookupError) as exc:
        fail_backtest(catalog, backtest_id, str(exc))
        raise
    summary = dict(cfg)
    if cfg.get("signal"):  # the leaderboard keeps what the signal was, not every value
        sig = cfg["signal"]
        summary["signal"] = {"kind": "scores" if "scores" in sig else "entries/exits", "rows": len(sig["dates"]),
                             "first": sig["dates"][0], "last": sig["dates"][-1]}
    return _record_run(catalog, store, backtest_id=backtest_id, user_id=user_id, model=model, pack=pack,
                       profile=profile, config=summary, engine_metrics=result.metrics, open_trade=result.open_trade,
                       fills=result.fills, series=sources.source_series(bars, result), folds=[],
                       matrix_sha=matrix_row.matrix_sha, update_model=False, gate_config=cfg)


def _record_run(catalog: Catalog, store: ArtifactStore, *, backtest_id: str, user_id: int, model: LabModel, pack,
                profile: str, config: dict, engine_metrics: Mapping[str, Any], open_trade, fills: pd.DataFrame,
                series: pd.DataFrame, folds: list, matrix_sha: str, update_model: bool = True,
                gate_config: Mapping[str, Any] | None = None) -> dict:
    """A finished backtest's common tail: metrics (the position still open after the last bar
    marked at the last close, not a closed trade), gate, score, fills and series stored by SHA,
    the result rows written; the job's result."""
    from compute.gates import evaluate_gate, ranking_score

    metrics = metrics_view(engine_metrics)
    metrics["open_trade"] = json_safe(open_trade_view(open_trade))
    gate = evaluate_gate(pack, profile, engine_metrics, config if gate_config is None else gate_config)
    score = ranking_score(pack, engine_metrics)
    ref = store.put(fills_csv(fills).encode(), prefix="fills", ext="csv")
    series_parquet = to_parquet(series)
    series_ref = store.put(series_parquet, prefix="series", ext="parquet")
    from services.reports.lab import prerender_backtest_charts

    # the charts before the backtest shows as completed: a first view reads them (drawn from
    # the stored Parquet bytes, as the chart route reads the series, so the bytes are the route's)
    prerender_backtest_charts(store, series_ref.sha, lambda: from_parquet(series_parquet), model.model_id)
    record_backtest_result(
        catalog, user_id=user_id, model_pk=model.id, model_id=model.model_id, pack_id=model.pack_id,
        risk_profile=profile, config=config, metrics=metrics, gate=gate, score=score, folds=folds,
        matrix_sha=matrix_sha, backtest_id=backtest_id, fills_sha=ref.sha, fills_path=ref.path,
        series_sha=series_ref.sha, series_path=series_ref.path, update_model=update_model)
    return {"backtest_id": backtest_id, "model_id": model.model_id, "status": "completed", "metrics": metrics,
            "gate": gate, "score": finite_or_none(score), "fills": int(len(fills))}


def record_backtest_result(catalog: Catalog, *, user_id: int, model_pk: int, model_id: str, pack_id: str,
                           risk_profile: str, config: Mapping[str, Any], metrics: Mapping[str, Any],
                           gate: Mapping[str, Any], score: float | None = None, folds: list | None = None,
                           matrix_sha: str | None = None, backtest_id: str | None = None, job_id: str | None = None,
                           fills_sha: str | None = None, fills_path: str | None = None,
                           series_sha: str | None = None, series_path: str | None = None,
                           sweep_id: str | None = None, config_index: int | None = None, tag: str | None = None,
                           update_model: bool = True, emit: bool = True) -> tuple[str, str]:
    """Write (or complete) a ``Backtest`` row and its ``LeaderboardEntry``; returns their ids.

    ``metrics`` use engine names plus ``cum_ret``; the leaderboard's headline columns (sharpe,
    cum_ret, max_drawdown, win_rate, trades, deflated_sharpe, score, gate_pass, gate_reasons)
    are filled from them. The model's latest metrics are updated and ``backtest.completed``
    is emitted (webhooks) after the commit.
    """
    metrics = json_safe(dict(metrics))
    metrics.setdefault("cum_ret", metrics.get("cum_return"))
    gate = {"pass": bool(gate.get("pass")), "reasons": list(gate.get("reasons") or [])}
    now = utcnow()
    with catalog.session() as s:
        bt = s.get(Backtest, backtest_id) if backtest_id else None
        if bt is None:
            bt = Backtest(user_id=user_id, model_pk=model_pk, config=json_safe(dict(config)), risk_profile=risk_profile)
            if backtest_id:
                bt.id = backtest_id
            s.add(bt)
        bt.job_id = job_id or bt.job_id
        bt.matrix_sha = matrix_sha or bt.matrix_sha
        bt.status, bt.metrics, bt.folds, bt.gate = "completed", metrics, json_safe(folds or []), gate
        bt.fills_sha, bt.fills_path, bt.finished_at, bt.error = fills_sha, fills_path, now, None
        bt.series_sha, bt.series_path = series_sha, series_path
        s.flush()
        entry = LeaderboardEntry(
            user_id=user_id, model_pk=model_pk, model_id=model_id, pack_id=pack_id, backtest_id=bt.id,
            sweep_id=sweep_id, config_index=config_index, tag=tag, risk_profile=risk_profile,
            config=json_safe(dict(config)), metrics=metrics, gate_pass=gate["pass"], gate_reasons=gate["reasons"],
            score=finite_or_none(score), sharpe=finite_or_none(metrics.get("sharpe")),
            deflated_sharpe=finite_or_none(metrics.get("deflated_sharpe")), cum_ret=finite_or_none(metrics.get("cum_ret")),
            max_drawdown=finite_or_none(metrics.get("max_drawdown")), win_rate=finite_or_none(metrics.get("win_rate")),
            trades=int(metrics["trades"]) if metrics.get("trades") is not None else None)
        s.add(entry)
        if update_model:
            m = s.get(LabModel, model_pk)
            if m is not None:
                m.metrics = {**metrics, "backtest_id": bt.id, "gate": gate}
                m.updated_at = now
        s.flush()
        ids = (bt.id, entry.id)
    if emit:
        emit_event(catalog, user_id, "backtest.completed",
                   {"backtest_id": ids[0], "model_id": model_id, "status": "success", "metrics": metrics})
    return ids


def fail_backtest(catalog: Catalog, backtest_id: str, message: str) -> None:
    with catalog.session() as s:
        bt = s.get(Backtest, backtest_id)
        if bt is not None and bt.status not in ("completed",):
            bt.status, bt.error, bt.finished_at = "failed", message, utcnow()


def get_backtest(catalog: Catalog, user_id: int, backtest_id: str) -> tuple[Backtest, str]:
    """The user's backtest and its model id; ``LookupError`` otherwise."""
    with catalog.session() as s:
        row = s.execute(select(Backtest, LabModel.model_id).join(LabModel, LabModel.id == Backtest.model_pk)
                        .where(Backtest.id == backtest_id, Backtest.user_id == user_id)).first()
        if row is None:
            raise LookupError(f"backtest {backtest_id} not found")
        return row[0], row[1]


def backtest_view(bt: Backtest, model_id: str, estimated_completion: str | None = None) -> dict:
    return {
        "backtest_id": bt.id,
        "model_id": model_id,
        "status": bt.status,
        "risk_profile": bt.risk_profile,
        "matrix_sha": bt.matrix_sha,
        "config": bt.config,
        "metrics": bt.metrics,
        "folds": bt.folds,
        "gate": bt.gate,
        "error": bt.error,
        "created_at": bt.created_at.isoformat() if bt.created_at else None,
        "finished_at": bt.finished_at.isoformat() if bt.finished_at else None,
        "estimated_completion": estimated_completion,
        "export_url": f"/api/v1/export/backtest/{bt.id}?format=csv" if bt.fills_path else None,
        "series_url": f"/api/v1/backtest/{bt.id}/series" if bt.series_path else None,
    }
