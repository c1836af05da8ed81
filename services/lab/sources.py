"""Backtests of a user's own signal series or a built-in indicator strategy (issue 16).

``POST /backtest`` with ``strategy`` (a name and parameters, ``compute.strategies``) or
``signal`` (a score series in [0, 1], or entry/exit booleans, keyed by date) instead of the
model's walk-forward scores. The model still names the ticker, the pack (cadence, gate,
ranking) and the risk profile (fees, slippage); the bars are its feature matrix's (the same
rows a model backtest trades). The engine, metrics, gate, leaderboard row, fills export and
series are the model backtest's. Strategies have no fitted parameters, so there is no
walk-forward: the whole range is out of sample (one fold).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd

from compute.strategies import (BOOLEAN_CUTOFFS, STRATEGIES, StrategyError, align_signal, booleans_to_scores,
                                make_strategy, strategy_inputs)
from services.lab.common import LabInputError, parse_date

SIGNAL_KINDS = ("scores", "entries")
MAX_SIGNAL_ROWS = 100_000


def _input_error(exc: StrategyError) -> LabInputError:
    return LabInputError(exc.field, exc.reason)


def validate_strategy(strategy: Mapping[str, Any]) -> dict:
    """``{"name", "params"}`` with defaults filled in, or a 400 naming the field."""
    if not isinstance(strategy, Mapping):
        raise LabInputError("strategy", "must be an object {name, params}")
    unknown = set(strategy) - {"name", "params"}
    if unknown:
        raise LabInputError(f"strategy.{sorted(unknown)[0]}", "unknown field; expected name and params")
    params = strategy.get("params") or {}
    if not isinstance(params, Mapping):
        raise LabInputError("strategy.params", "must be an object {parameter: value}")
    try:
        s = make_strategy(str(strategy.get("name")), params)
    except StrategyError as exc:
        raise _input_error(exc) from None
    return {"name": s.name, "params": dict(s.params)}


#: A file's columns -> the JSON form's names.
FILE_COLUMNS = {"score": "scores", "scores": "scores", "entry": "entries", "entries": "entries", "exit": "exits",
                "exits": "exits", "short_entry": "short_entries", "short_entries": "short_entries",
                "short_exit": "short_exits", "short_exits": "short_exits"}
MAX_FILE_BYTES = 20_000_000


def signal_from_file(signal: Mapping[str, Any]) -> dict:
    """``{"csv": "<text>"}`` or ``{"parquet_base64": "<base64>"}``: a table keyed by date
    (``date``/``Date``/``timestamp``/..., or a Parquet index) with a ``score`` column, or
    ``entry``/``exit`` (and ``short_entry``/``short_exit``) columns of booleans (true/false,
    1/0), turned into the JSON form. Errors name the file row (1-based, header excluded)."""
    import base64
    import io

    from compute.marketdata.files import DATE_COLUMNS, normalise_column

    unknown = set(signal) - {"csv", "parquet_base64"}
    if unknown or len(signal) != 1:
        raise LabInputError("signal", "give csv or parquet_base64 alone, or the JSON form {dates, ...}")
    key = next(iter(signal))
    field = f"signal.{key}"
    raw = signal[key]
    if not isinstance(raw, str) or not raw or len(raw) > MAX_FILE_BYTES:
        raise LabInputError(field, f"must be a non-empty string of at most {MAX_FILE_BYTES} characters")
    try:
        if key == "csv":
            frame = pd.read_csv(io.StringIO(raw), dtype=str, keep_default_na=False, na_values=[""])
        else:
            frame = pd.read_parquet(io.BytesIO(base64.b64decode(raw, validate=True)))
            if not any(normalise_column(c) in DATE_COLUMNS for c in frame.columns):
                frame = frame.reset_index()
    except Exception as exc:  # noqa: BLE001 - the user's file: named, never a 500
        raise LabInputError(field, f"unreadable file ({type(exc).__name__}: {str(exc)[:200]})") from None
    frame.columns = [normalise_column(c) for c in frame.columns]
    date_col = next((c for c in DATE_COLUMNS if c in frame.columns), None)
    if date_col is None:
        raise LabInputError(field, "missing column(s) a date column (date/timestamp/datetime/time)")
    out: dict[str, Any] = {"dates": [str(v)[:10] if len(str(v)) >= 10 and str(v)[10:].strip() in ("", "00:00:00")
                                      else str(v) for v in frame[date_col]]}
    for col, name in FILE_COLUMNS.items():
        if col not in frame.columns or name in out:
            continue
        values = []
        for i, v in enumerate(frame[col].tolist()):
            text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip().lower()
            if name == "scores":
                try:
                    values.append(None if text in ("", "nan") else float(text))
                except ValueError:
                    raise LabInputError(field, f"row {i + 1}: column {col}: {v!r} is not a number") from None
            elif text in ("true", "1", "1.0", "yes"):
                values.append(True)
            elif text in ("false", "0", "0.0", "no", ""):
                values.append(False)
            else:
                raise LabInputError(field, f"row {i + 1}: column {col}: {v!r} is not true/false") from None
        out[name] = values
    if "scores" not in out and "entries" not in out:
        raise LabInputError(field, "missing column(s) score, or entry and exit")
    return out


def validate_signal(signal: Mapping[str, Any]) -> dict:
    """A signal body: ``{"dates": [...], "scores": [...]}`` (floats in [0, 1], null = no
    view) or ``{"dates": [...], "entries": [...], "exits": [...]}`` (booleans; optional
    ``short_entries``/``short_exits``). Dates are ISO dates (daily) or timestamps of bar
    starts. An uploaded file (``{"csv": ...}`` or ``{"parquet_base64": ...}``,
    ``signal_from_file``) becomes that form first. Returns the normalised dict; 400 naming
    the field and row otherwise."""
    if not isinstance(signal, Mapping):
        raise LabInputError("signal", "must be an object with dates and scores, or dates, entries and exits")
    if "csv" in signal or "parquet_base64" in signal:
        signal = signal_from_file(signal)
    allowed = {"dates", "scores", "entries", "exits", "short_entries", "short_exits"}
    unknown = set(signal) - allowed
    if unknown:
        raise LabInputError(f"signal.{sorted(unknown)[0]}", f"unknown field; expected {sorted(allowed)}")
    dates = signal.get("dates")
    if not isinstance(dates, list) or not dates:
        raise LabInputError("signal.dates", "must be a non-empty list of dates")
    if len(dates) > MAX_SIGNAL_ROWS:
        raise LabInputError("signal.dates", f"at most {MAX_SIGNAL_ROWS} rows")
    try:
        parsed = pd.to_datetime(pd.Series([str(d) for d in dates]), errors="coerce", format="mixed", utc=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise LabInputError("signal.dates", f"unparseable dates ({str(exc)[:200]})") from None
    if parsed.isna().any():
        row = int(np.argmax(parsed.isna().to_numpy()))
        raise LabInputError(f"signal.dates[{row}]", f"unparseable date {dates[row]!r}")
    has_scores = "scores" in signal
    has_bools = "entries" in signal or "exits" in signal
    if has_scores == has_bools:
        raise LabInputError("signal", "give either scores, or entries and exits")
    out = {"dates": [str(d) for d in dates]}
    columns = ["scores"] if has_scores else [c for c in ("entries", "exits", "short_entries", "short_exits")
                                              if c in signal]
    if has_bools and not {"entries", "exits"} <= set(columns):
        raise LabInputError("signal.exits" if "entries" in signal else "signal.entries",
                            "entries and exits come together")
    for col in columns:
        values = signal[col]
        if not isinstance(values, list) or len(values) != len(dates):
            raise LabInputError(f"signal.{col}", f"must be a list of {len(dates)} values, one per date")
        for i, v in enumerate(values):
            if has_scores:
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                      or not math.isfinite(v) or not 0.0 <= v <= 1.0):
                    raise LabInputError(f"signal.scores[{i}]", "must be a number in [0, 1] or null")
            elif not isinstance(v, bool):
                raise LabInputError(f"signal.{col}[{i}]", "must be true or false")
        out[col] = list(values)
    if has_bools:
        both = [i for i, (e, x) in enumerate(zip(signal["entries"], signal["exits"])) if e and x]
        if both:
            raise LabInputError(f"signal.exits[{both[0]}]", "an entry and an exit on the same date")
    return out


def _signal_keys(dates: list) -> pd.DatetimeIndex:
    """A signal's dates as keys: naive dates stay naive (sessions); stamps with a zone become
    UTC instants (bar starts)."""
    text = pd.Series([str(d) for d in dates])
    zoned = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
    if zoned.any() and not zoned.all():
        i = int(np.argmax(zoned.to_numpy() != bool(zoned.iloc[0])))
        raise LabInputError(f"signal.dates[{i}]", "mixed time zones: all dates with a zone, or none")
    if zoned.all():
        return pd.DatetimeIndex(pd.to_datetime(text, format="mixed", utc=True))
    return pd.DatetimeIndex(pd.to_datetime(text, format="mixed"))


def _bars(frame: pd.DataFrame, cfg: Mapping[str, Any]) -> pd.DataFrame:
    rows = frame
    if cfg.get("start_date") or cfg.get("end_date"):
        dates = pd.to_datetime(frame["session_date"])
        keep = np.ones(len(frame), dtype=bool)
        if cfg.get("start_date"):
            keep &= (dates >= pd.Timestamp(parse_date(cfg["start_date"], "start_date"))).to_numpy()
        if cfg.get("end_date"):
            keep &= (dates <= pd.Timestamp(parse_date(cfg["end_date"], "end_date"))).to_numpy()
        rows = frame[keep]
    if len(rows) < 2:
        raise LabInputError("start_date", "fewer than 2 bars in the range")
    return rows.reset_index(drop=True)


def source_scores(frame: pd.DataFrame, cfg: Mapping[str, Any], cadence: str) -> tuple[np.ndarray, np.ndarray]:
    """(score per bar, cut-offs) of the strategy or signal in ``cfg`` on the matrix rows."""
    index = pd.DatetimeIndex(frame["timestamp"])
    try:
        if cfg.get("strategy"):
            s = make_strategy(cfg["strategy"]["name"], cfg["strategy"]["params"])
            return strategy_inputs(s, frame["close"].to_numpy(np.float64), frame["high"].to_numpy(np.float64),
                                   frame["low"].to_numpy(np.float64), bool(cfg.get("long_only")))
        signal = cfg["signal"]
        keys = _signal_keys(signal["dates"])
        daily = cadence == "daily"
        if "scores" in signal:
            values = pd.Series([np.nan if v is None else float(v) for v in signal["scores"]], index=keys)
            score = align_signal(values, index, "signal.dates", daily=daily)
            v = float(cfg.get("value", 0.55))
            x = v if cfg.get("exit_value") is None else float(cfg["exit_value"])
            cuts = np.array([v, 1.0 - v, x, 1.0 - x])
        else:
            cols = {c: align_signal(pd.Series([float(b) for b in signal[c]], index=keys), index,
                                    "signal.dates", daily=daily)
                    for c in ("entries", "exits", "short_entries", "short_exits") if c in signal}
            score = booleans_to_scores(cols["entries"], cols["exits"], cols.get("short_entries"),
                                       cols.get("short_exits"))
            cuts = BOOLEAN_CUTOFFS.copy()
    except StrategyError as exc:
        raise _input_error(exc) from None
    if cfg.get("long_only"):
        cuts[1] = cuts[3] = -np.inf
    return np.ascontiguousarray(score, dtype=np.float64), cuts


def run_source_backtest(frame: pd.DataFrame, cfg: Mapping[str, Any], pack, fees_bps: float, slippage_bps: float,
                        periods_per_year: float):
    """The engine run of a strategy/signal backtest: (BacktestResult, bars used)."""
    from compute.backtest import BacktestConfig, run_backtest

    bars = _bars(frame, cfg)
    score, cuts = source_scores(bars, cfg, pack.cadence)
    hours = cfg.get("allowed_hours")
    config = BacktestConfig(long_only=bool(cfg.get("long_only")),
                            allowed_hours=None if hours is None else tuple(hours),
                            fees_bps=fees_bps, slippage_bps=slippage_bps, periods_per_year=periods_per_year,
                            borrow_bps=float(cfg.get("borrow_bps") or 0.0))
    index = pd.DatetimeIndex(bars["timestamp"])
    max_hold = int((cfg.get("strategy") or {}).get("params", {}).get("max_hold", 0))
    result = run_backtest(bars["open"].to_numpy(np.float64), bars["close"].to_numpy(np.float64), score, config,
                          index=index, hours=bars["hour"].to_numpy(np.int64), segment_cutoffs=cuts[None, :],
                          max_hold=max_hold)
    return result, bars


def source_series(bars: pd.DataFrame, result) -> pd.DataFrame:
    """The per-bar series of a strategy/signal backtest (one fold, 0)."""
    from compute.series import drawdown

    close = bars["close"].to_numpy(np.float64)
    equity = result.equity.to_numpy(np.float64)
    stamps = pd.DatetimeIndex(result.equity.index)
    stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
    return pd.DataFrame({
        "timestamp": stamps, "equity": equity, "returns": result.returns.to_numpy(np.float64),
        "drawdown": drawdown(equity), "position": result.position.to_numpy(np.int64),
        "benchmark_return": np.concatenate(([np.nan], close[1:] / close[:-1] - 1.0)),
        "fold": np.zeros(len(bars), dtype=np.int64)})


def strategy_names() -> list[str]:
    return sorted(STRATEGIES)
