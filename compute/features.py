"""Feature matrices and labels for Lab models.

``build_matrix`` turns OHLCV bars (one DataFrame per ticker, indexed by tz-aware UTC bar-start
timestamps) into one row per bar with feature columns, the pack's label and the prices the
backtester needs. It is a pure function of its inputs; ``canonical_matrix_description`` lists
those inputs and ``matrix_sha`` hashes them, so storage can be content-addressed.

Feature names (``feature_registry``) are what users send: ``close``, ``volume``, ``RSI``,
``RSI14``, ``EMA10``, ``MACD`` (= ``MACD12_26_9``), ``BB`` (= ``BB20_2``), ``ATR14`` ...:
an indicator key followed by its integer parameters joined with ``_``; missing parameters
take the defaults. Feature columns are prefixed ``f_``. Price-level indicators are expressed
relative to the close so that one model can read any ticker and any decade:
SMA/EMA/VWAP as close / x - 1, ATR as ATR / close, MACD parts divided by close; OBV as its
``window``-bar change divided by the volume traded in that window (in [-1, 1]), because the
OBV level depends on where the bar history happens to start.

Matrix columns, one row per (timestamp, ticker), sorted by timestamp then ticker:
``timestamp`` (UTC bar start), ``ticker``, ``session_date`` (America/New_York trading date),
``hour`` and ``weekday`` (America/New_York; daily bars use the session open hour 9),
``open, high, low, close, volume``, the ``f_*`` features, ``fwd_ret`` (the forward return the
label is cut from: close[t+h] / close[t] - 1, or open[t+1] / close[t] - 1 for close-to-open)
and ``label`` (1 UP, -1 DOWN, 0 FLAT; NaN when the horizon runs past ``end`` or, for 0DTE,
past the session). Rows outside the pack's session, rows before ``start`` and warm-up rows
(any feature NaN) are dropped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from compute import indicators as ind
from compute import indicators_nb as nb
from compute.packs import LabelDef, Pack, get_pack
from compute.train import FEATURE_PREFIX
from compute.lineage import FEATURE_MODULES, source_digest

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
MATRIX_SCHEMA = "sigma.matrix/1"
TRADING_DAYS_PER_YEAR = 252.0
HOURLY_BARS_PER_DAY = 6.5  # 09:30-16:00; annualises hourly volatility
DAILY_BAR_HOUR = 9  # a daily bar starts at the 09:30 ET open


@dataclass
class BarContext:
    """Arrays of one ticker's session bars handed to feature functions."""

    index: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    cadence: str
    sessions: np.ndarray
    implied_vol: np.ndarray | None = None

    @property
    def periods_per_year(self) -> float:
        per_day = HOURLY_BARS_PER_DAY if self.cadence == "hourly" else 1.0
        return TRADING_DAYS_PER_YEAR * per_day


@dataclass(frozen=True)
class FeatureDef:
    """One registry entry: parameter names/defaults, output column suffixes and the function."""

    key: str
    params: tuple[tuple[str, float], ...]
    outputs: tuple[str, ...]
    compute: Callable[..., dict[str, np.ndarray]]
    description: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolvedFeature:
    """A feature name resolved to its indicator, parameters and output columns."""

    name: str  # canonical, e.g. "RSI14", "MACD12_26_9", "close"
    key: str
    params: dict[str, Any] = field(hash=False)
    columns: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "indicator": self.key, "params": dict(self.params),
                "columns": list(self.columns)}


def _rel(close: np.ndarray, level: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return close / level - 1.0


def _bar(col: str):
    def compute(ctx: BarContext) -> dict[str, np.ndarray]:
        return {"": getattr(ctx, col).astype(np.float64)}
    return compute


def _ret(ctx, window):
    return {"": nb.simple_returns_nb(ctx.close, window)}


def _logret(ctx, window):
    return {"": nb.log_returns_nb(ctx.close, window)}


def _sma(ctx, window):
    return {"": _rel(ctx.close, nb.rolling_mean_nb(ctx.close, window))}


def _ema(ctx, window):
    return {"": _rel(ctx.close, nb.ema_nb(ctx.close, window))}


def _rsi(ctx, window):
    return {"": nb.rsi_nb(ctx.close, window)}


def _macd(ctx, fast, slow, signal):
    m = ind.macd(ctx.close, fast, slow, signal)
    return {k: m[k].to_numpy() / ctx.close for k in ("macd", "signal", "hist")}


def _bb(ctx, window, k):
    b = ind.bollinger(ctx.close, window, k)
    return {"pct_b": b["pct_b"].to_numpy(), "width": b["width"].to_numpy()}


def _atr(ctx, window):
    return {"": nb.atr_nb(ctx.high, ctx.low, ctx.close, window) / ctx.close}


def _adx(ctx, window):
    a, p, m = nb.adx_nb(ctx.high, ctx.low, ctx.close, window)
    return {"adx": a, "plus_di": p, "minus_di": m}


def _obv(ctx, window):
    o = nb.obv_nb(ctx.close, ctx.volume)
    flow = np.full_like(o, np.nan)
    flow[window:] = o[window:] - o[:-window]
    vol = nb.rolling_sum_nb(ctx.volume, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"": np.where(vol > 0, flow / vol, np.nan)}


def _cmf(ctx, window):
    return {"": nb.cmf_nb(ctx.high, ctx.low, ctx.close, ctx.volume, window)}


def _vwap(ctx, window):
    if ctx.cadence == "hourly":
        level = nb.vwap_session_nb(ctx.high, ctx.low, ctx.close, ctx.volume, ctx.sessions)
    else:
        level = nb.vwap_rolling_nb(ctx.high, ctx.low, ctx.close, ctx.volume, window)
    return {"": _rel(ctx.close, level)}


def _keltner(ctx, window, k, atr_window):
    kc = ind.keltner(ctx.high, ctx.low, ctx.close, window, k, atr_window)
    return {"pct_k": kc["pct_k"].to_numpy(),
            "width": ((kc["upper"] - kc["lower"]) / kc["mid"]).to_numpy()}


def _vol(ctx, window):
    return {"": np.asarray(ind.rolling_volatility(ctx.close, window, ctx.periods_per_year))}


def _momscore(ctx, z_window, rsi_window):
    return {"": np.asarray(ind.momentum_score(ctx.close, z_window, rsi_window))}


def _hour(ctx):
    if ctx.cadence == "daily":
        return {"": np.full(len(ctx.close), float(DAILY_BAR_HOUR))}
    return {"": ind.hour_of_day(ctx.index).astype(np.float64)}


def _weekday(ctx):
    return {"": _weekdays(ctx.index, ctx.cadence).astype(np.float64)}


def _rviv(ctx, window):
    if ctx.implied_vol is None:
        raise ValueError("feature RVIV needs implied_vol (an implied volatility series per ticker)")
    return {"": np.asarray(ind.realised_implied_spread(ctx.close, ctx.implied_vol, window,
                                                       ctx.periods_per_year))}


def _gap(ctx):
    gap = np.full(len(ctx.close), np.nan)
    gap[1:] = ctx.open[1:] / ctx.close[:-1] - 1.0
    return {"": gap}


def _def(key, params, outputs, fn, description, aliases=()):
    return FeatureDef(key, tuple(params), tuple(outputs), fn, description, tuple(aliases))


feature_registry: dict[str, FeatureDef] = {d.key: d for d in (
    _def("close", (), ("",), _bar("close"), "close price (raw)"),
    _def("open", (), ("",), _bar("open"), "open price (raw)"),
    _def("high", (), ("",), _bar("high"), "high price (raw)"),
    _def("low", (), ("",), _bar("low"), "low price (raw)"),
    _def("volume", (), ("",), _bar("volume"), "volume in shares (raw)"),
    _def("RET", (("window", 1),), ("",), _ret, "simple return over window bars"),
    _def("LOGRET", (("window", 1),), ("",), _logret, "log return over window bars"),
    _def("SMA", (("window", 20),), ("",), _sma, "close / SMA(window) - 1"),
    _def("EMA", (("window", 20),), ("",), _ema, "close / EMA(window) - 1"),
    _def("RSI", (("window", 14),), ("",), _rsi, "Wilder RSI in [0, 100]"),
    _def("MACD", (("fast", 12), ("slow", 26), ("signal", 9)), ("macd", "signal", "hist"),
         _macd, "MACD line, signal and histogram divided by close"),
    _def("BB", (("window", 20), ("k", 2)), ("pct_b", "width"), _bb,
         "Bollinger %b and band width (upper - lower) / mid", ("BOLLINGER",)),
    _def("ATR", (("window", 14),), ("",), _atr, "Wilder ATR / close"),
    _def("ADX", (("window", 14),), ("adx", "plus_di", "minus_di"), _adx,
         "Wilder ADX, +DI and -DI in [0, 100]"),
    _def("OBV", (("window", 20),), ("",), _obv,
         "(OBV_t - OBV_{t-window}) / volume over the window, in [-1, 1]"),
    _def("CMF", (("window", 20),), ("",), _cmf, "Chaikin money flow in [-1, 1]"),
    _def("VWAP", (("window", 20),), ("",), _vwap,
         "close / VWAP - 1; session VWAP for hourly bars, rolling window VWAP for daily bars"),
    _def("KC", (("window", 20), ("k", 2), ("atr_window", 10)), ("pct_k", "width"), _keltner,
         "Keltner position (close - lower) / (upper - lower) and width / mid", ("KELTNER",)),
    _def("VOL", (("window", 20),), ("",), _vol,
         "annualised std of 1-bar log returns over window bars"),
    _def("MOMSCORE", (("z_window", 20), ("rsi_window", 14)), ("",), _momscore,
         "0.7 x mean z(1- and 3-bar momentum) + 0.3 x (RSI - 50) / 50", ("MOMENTUM",)),
    _def("hour", (), ("",), _hour, "America/New_York bar-start hour (daily bars: 9)"),
    _def("weekday", (), ("",), _weekday, "America/New_York weekday, Monday = 0"),
    _def("RVIV", (("window", 20),), ("",), _rviv,
         "annualised realised vol(window) minus implied vol", ("RVIVSPREAD",)),
    _def("GAP", (), ("",), _gap, "open / previous close - 1"),
)}

_ALIASES: dict[str, str] = {}
for _d in feature_registry.values():
    _ALIASES[_d.key.upper()] = _d.key
    for _a in _d.aliases:
        _ALIASES[_a.upper()] = _d.key

_NAME_RE = re.compile(r"^([A-Za-z]+)((?:\d+(?:\.\d+)?)(?:_\d+(?:\.\d+)?)*)?$")


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def resolve_feature(name: str) -> ResolvedFeature:
    """Resolve a user feature name (``RSI``, ``RSI14``, ``BB20_2``, ``close``) or ValueError."""
    if not isinstance(name, str):
        raise ValueError(f"feature name must be a string, got {name!r}")
    m = _NAME_RE.match(name.strip())
    key = _ALIASES.get(m.group(1).upper()) if m else None
    if key is None:
        raise ValueError(f"unknown feature {name!r}; known: {sorted(feature_registry)} "
                         "(optionally followed by parameters, e.g. RSI14, MACD12_26_9, BB20_2)")
    fdef = feature_registry[key]
    given = [_number(t) for t in m.group(2).split("_")] if m.group(2) else []
    if len(given) > len(fdef.params):
        raise ValueError(f"feature {name!r} takes at most {len(fdef.params)} parameter(s) "
                         f"({', '.join(p for p, _ in fdef.params) or 'none'})")
    params: dict[str, Any] = {}
    for i, (pname, default) in enumerate(fdef.params):
        value = given[i] if i < len(given) else default
        if pname != "k":
            if value != int(value) or not 1 <= value <= 1000:
                raise ValueError(f"feature {name!r}: {pname} must be an integer in [1, 1000]")
            value = int(value)
        elif not 0 < value <= 10:
            raise ValueError(f"feature {name!r}: k must be in (0, 10]")
        params[pname] = value
    if key == "MACD" and params["fast"] >= params["slow"]:
        raise ValueError(f"feature {name!r}: fast must be shorter than slow")
    canonical = key + "_".join(_fmt(v) for v in params.values())
    cols = tuple(FEATURE_PREFIX + canonical + (f"_{o}" if o else "") for o in fdef.outputs)
    return ResolvedFeature(canonical, key, params, cols)


def _fmt(v: int | float) -> str:
    return str(int(v)) if float(v) == int(v) else repr(float(v))


_PROBE_BARS = 400


def _probe_context(seed: int = 0, **overrides) -> BarContext:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, _PROBE_BARS)))
    cols = {"open": close * np.exp(rng.normal(0, 0.003, _PROBE_BARS)),
            "high": close * (1 + rng.uniform(0.001, 0.02, _PROBE_BARS)),
            "low": close * (1 - rng.uniform(0.001, 0.02, _PROBE_BARS)),
            "close": close, "volume": rng.uniform(1e5, 1e6, _PROBE_BARS)}
    cols["high"] = np.maximum(cols["high"], np.maximum(cols["open"], close))
    cols["low"] = np.minimum(cols["low"], np.minimum(cols["open"], close))
    cols.update(overrides)
    index = pd.date_range("2020-01-02 14:30", periods=_PROBE_BARS, freq="D", tz="UTC")
    sessions = index.tz_localize(None).normalize().to_numpy(dtype="datetime64[D]").astype(np.int64)
    return BarContext(index=index, sessions=sessions, cadence="daily",
                      implied_vol=np.full(_PROBE_BARS, 0.2), **cols)


_INPUTS_CACHE: dict[tuple, tuple[str, ...]] = {}


def feature_bar_inputs(feature: ResolvedFeature) -> tuple[str, ...]:
    """Which of open/high/low/volume a feature reads, found by computing it on probe bars
    and again with each column replaced (an output that moves reads that column). Used to
    refuse, by name, features a close-only series cannot feed."""
    key = (feature.key, tuple(sorted(feature.params.items())))
    if key not in _INPUTS_CACHE:
        compute = feature_registry[feature.key].compute
        base = compute(_probe_context(), **feature.params)
        used = []
        for col in ("open", "high", "low", "volume"):
            other = getattr(_probe_context(seed=1), col)
            moved = compute(_probe_context(**{col: other}), **feature.params)
            if any(not np.array_equal(np.asarray(base[k]), np.asarray(moved[k]), equal_nan=True) for k in base):
                used.append(col)
        _INPUTS_CACHE[key] = tuple(used)
    return _INPUTS_CACHE[key]


def resolve_features(names) -> list[ResolvedFeature]:
    """Resolve a list of names, dropping duplicates that resolve to the same canonical name."""
    out: list[ResolvedFeature] = []
    seen: set[str] = set()
    for n in names:
        r = resolve_feature(n)
        if r.name not in seen:
            seen.add(r.name)
            out.append(r)
    if not out:
        raise ValueError("features must name at least one feature")
    return out


def warmup_bars(features) -> int:
    """Bars of history the features need before their first valid value (EMA-type ones get
    three times their span so the SMA seed has mostly washed out)."""
    need = 1
    for f in resolve_features(features):
        p = f.params
        if f.key in ("EMA", "KC", "MACD"):
            span = p.get("slow", p.get("window", 1)) + p.get("signal", 0)
            need = max(need, 3 * span)
        elif f.key in ("RSI", "ATR", "ADX"):
            need = max(need, 3 * p["window"] * (2 if f.key == "ADX" else 1))
        elif f.key == "MOMSCORE":
            need = max(need, 3 * p["rsi_window"], p["z_window"] + 3)
        else:
            need = max(need, max([int(v) for k, v in p.items() if k != "k"], default=0) + 1)
    return need


def _session_dates(index: pd.DatetimeIndex, cadence: str) -> pd.DatetimeIndex:
    """America/New_York trading date of each bar; daily bars stamped at midnight UTC keep their
    UTC date (converting them would land on the previous evening in New York)."""
    utc = index.tz_convert("UTC")
    if cadence == "daily" and bool((utc == utc.normalize()).all()):
        return utc.normalize().tz_localize(None)
    return index.tz_convert(ind.MARKET_TZ).normalize().tz_localize(None)


def _weekdays(index: pd.DatetimeIndex, cadence: str) -> np.ndarray:
    return _session_dates(index, cadence).day_of_week.to_numpy(dtype=np.int64)


def _clock_minutes(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def _session_mask(index: pd.DatetimeIndex, pack: Pack) -> np.ndarray:
    """Bars that overlap the pack's session (bar start < close and bar end > open)."""
    if pack.cadence == "daily":
        return np.ones(len(index), dtype=bool)
    local = index.tz_convert(pack.session.timezone)
    start_min = local.hour.to_numpy() * 60 + local.minute.to_numpy()
    if len(index) > 1:
        steps = np.diff(index.asi8) / 60e9
        bar_minutes = float(np.min(steps[steps > 0])) if np.any(steps > 0) else 60.0
    else:
        bar_minutes = 60.0
    bar_minutes = min(bar_minutes, 60.0)
    return ((start_min < _clock_minutes(pack.session.close))
            & (start_min + bar_minutes > _clock_minutes(pack.session.open)))


def _check_bars(ticker: str, bars: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(bars, pd.DataFrame):
        raise ValueError(f"bars for {ticker} must be a DataFrame")
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars for {ticker} lack columns {missing}")
    idx = bars.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
        raise ValueError(f"bars for {ticker} must be indexed by tz-aware timestamps")
    if not idx.is_monotonic_increasing or idx.has_duplicates:
        raise ValueError(f"bars for {ticker} must have increasing, unique timestamps")
    out = bars.loc[:, list(BAR_COLUMNS)].astype(np.float64)
    out.index = idx.tz_convert("UTC")
    return out


def _label(label: LabelDef, o: np.ndarray, c: np.ndarray, sessions: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """(fwd_ret, label) arrays; NaN where the horizon is not inside the given bars."""
    n = len(c)
    h = label.horizon_bars
    fwd = np.full(n, np.nan)
    if label.kind == "close_to_open_sign":
        fwd[:-1] = o[1:] / c[:-1] - 1.0
        h = 1
    elif label.kind in ("next_bar_direction", "forward_return_sign"):
        if n > h:
            fwd[:-h] = c[h:] / c[:-h] - 1.0
    else:
        raise ValueError(f"unknown label kind {label.kind!r}")
    if label.within_session and n > h:
        crosses = np.zeros(n, dtype=bool)
        crosses[:-h] = sessions[h:] != sessions[:-h]
        fwd[crosses] = np.nan
    if label.band_units == "sd":
        band = label.band * nb.rolling_std_nb(nb.simple_returns_nb(c, 1), label.band_window, 1)
    else:
        band = np.full(n, label.band)
    lab = np.where(fwd > band, 1.0, np.where(fwd < -band, -1.0, 0.0))
    lab[np.isnan(fwd) | np.isnan(band)] = np.nan
    return fwd, lab


def _align_implied_vol(iv, index: pd.DatetimeIndex, ticker: str) -> np.ndarray:
    """Implied vol known at each bar start (last observation at or before it; no look-ahead)."""
    if isinstance(iv, Mapping):
        if ticker not in iv:
            raise ValueError(f"implied_vol has no series for {ticker}")
        iv = iv[ticker]
    if not isinstance(iv, pd.Series) or not isinstance(iv.index, pd.DatetimeIndex) \
            or iv.index.tz is None:
        raise ValueError("implied_vol must be a Series (or dict of Series per ticker) indexed by "
                         "tz-aware timestamps")
    s = iv.astype(np.float64).sort_index()
    s.index = s.index.tz_convert("UTC")
    s = s[~s.index.duplicated(keep="last")]
    pos = s.index.searchsorted(index, side="right") - 1
    vals = s.to_numpy()
    out = np.where(pos >= 0, vals[np.clip(pos, 0, None)], np.nan)
    return out


def _to_date(value, name: str) -> dt.date:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ValueError(f"{name} must be a date (YYYY-MM-DD), got {value!r}") from None
    if ts is pd.NaT:
        raise ValueError(f"{name} must be a date (YYYY-MM-DD), got {value!r}")
    return ts.date()


def _ticker_matrix(ticker: str, bars: pd.DataFrame, pack: Pack, feats: list[ResolvedFeature],
                   start: dt.date, end: dt.date, implied_vol) -> pd.DataFrame:
    bars = _check_bars(ticker, bars)
    bars = bars[_session_mask(bars.index, pack)]
    dates = _session_dates(bars.index, pack.cadence)
    keep = dates <= pd.Timestamp(end)  # labels may only look as far as `end`
    bars, dates = bars[keep], dates[keep]
    index = bars.index
    sessions = dates.to_numpy(dtype="datetime64[D]").astype(np.int64)
    ctx = BarContext(index=index, sessions=np.ascontiguousarray(sessions), cadence=pack.cadence,
                     **{c: np.ascontiguousarray(bars[c].to_numpy()) for c in BAR_COLUMNS})
    if any(f.key == "RVIV" for f in feats):
        if implied_vol is None:
            raise ValueError("feature RVIV needs implied_vol (an implied volatility series "
                             "per ticker)")
        ctx.implied_vol = _align_implied_vol(implied_vol, index, ticker)
    cols: dict[str, Any] = {
        "timestamp": index, "ticker": ticker, "session_date": dates,
        "hour": (np.full(len(index), DAILY_BAR_HOUR) if pack.cadence == "daily"
                 else ind.hour_of_day(index)),
        "weekday": _weekdays(index, pack.cadence),
    }
    for c in BAR_COLUMNS:
        cols[c] = getattr(ctx, c)
    feature_cols: list[str] = []
    for f in feats:
        values = feature_registry[f.key].compute(ctx, **f.params)
        for col, suffix in zip(f.columns, feature_registry[f.key].outputs):
            cols[col] = np.asarray(values[suffix], dtype=np.float64)
            feature_cols.append(col)
    fwd, lab = _label(pack.label, ctx.open, ctx.close, sessions)
    cols["fwd_ret"] = fwd
    cols["label"] = lab
    frame = pd.DataFrame(cols)
    frame = frame[frame["session_date"] >= pd.Timestamp(start)]
    warm = frame[feature_cols].isna().any(axis=1) | np.isinf(frame[feature_cols]).any(axis=1)
    return frame[~warm.to_numpy()]


def build_matrix(bars: dict[str, pd.DataFrame] | pd.DataFrame, pack: str | Pack,
                 features=None, start=None, end=None, implied_vol=None,
                 ticker: str | None = None) -> pd.DataFrame:
    """Feature/label matrix of the pack for bars of one or more tickers (see module docstring).

    ``bars``: ``{ticker: DataFrame}`` or one DataFrame (``ticker`` names it; default "X"),
    indexed by tz-aware bar-start timestamps with open, high, low, close, volume. Bars before
    ``start`` serve as warm-up; bars after ``end`` are ignored (so tail labels are NaN).
    ``features``: names for ``resolve_feature`` (default: the pack's set). ``start``/``end``:
    inclusive trading dates (default: all bars). ``implied_vol``: Series or ``{ticker: Series}``
    of annualised implied vol, required by RVIV features.
    """
    p = get_pack(pack)
    feats = resolve_features(p.default_features if features is None else features)
    if isinstance(bars, pd.DataFrame):
        bars = {ticker or "X": bars}
    if not bars:
        raise ValueError("bars must hold at least one ticker")
    start_d = _to_date(start, "start") if start is not None else dt.date.min
    end_d = _to_date(end, "end") if end is not None else dt.date.max
    if start_d > end_d:
        raise ValueError(f"start {start_d} is after end {end_d}")
    frames = [_ticker_matrix(t, bars[t], p, feats, start_d, end_d, implied_vol)
              for t in sorted(bars)]
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["timestamp", "ticker"], kind="mergesort").reset_index(drop=True)
    out["hour"] = out["hour"].astype(np.int64)
    out["weekday"] = out["weekday"].astype(np.int64)
    return out


def series_sha(series: pd.Series) -> str:
    """SHA-256 of a time series' timestamps (ns UTC) and float64 values."""
    s = series.astype(np.float64)
    idx = pd.DatetimeIndex(s.index)
    idx = idx.tz_convert("UTC") if idx.tz is not None else idx
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(idx.asi8).tobytes())
    h.update(np.ascontiguousarray(s.to_numpy()).tobytes())
    return h.hexdigest()


def canonical_matrix_description(pack: str | Pack, tickers, start, end, features=None, *,
                                 data_source: str, data_version: str, implied_vol=None,
                                 warmup: int | None = None) -> dict[str, Any]:
    """Everything that determines a matrix, as plain JSON-ready data.

    Data source and version, sorted tickers, ISO start/end dates, cadence and session, the
    resolved features (canonical names, parameters, columns, in request order), the label
    definition, the warm-up history length, a digest of any implied-vol input and the code
    version of the feature modules.
    """
    p = get_pack(pack)
    feats = resolve_features(p.default_features if features is None else features)
    if isinstance(tickers, str):
        tickers = [tickers]
    tickers = sorted(set(tickers))
    if not tickers:
        raise ValueError("tickers must name at least one ticker")
    iv_digest: Any = None
    if implied_vol is not None:
        if isinstance(implied_vol, Mapping):
            iv_digest = {t: series_sha(implied_vol[t]) for t in sorted(implied_vol)}
        else:
            iv_digest = series_sha(implied_vol)
    return {
        "schema": MATRIX_SCHEMA,
        "pack_id": p.pack_id,
        "instrument": p.instrument,
        "cadence": p.cadence,
        "session": {"open": p.session.open, "close": p.session.close,
                    "timezone": p.session.timezone},
        "tickers": tickers,
        "start": _to_date(start, "start").isoformat(),
        "end": _to_date(end, "end").isoformat(),
        "features": [f.describe() for f in feats],
        "label": p.label.to_dict(),
        "data": {"source": str(data_source), "version": str(data_version)},
        "implied_vol": iv_digest,
        "warmup_bars": int(warmup if warmup is not None else warmup_bars([f.name for f in feats])),
        "code_version": source_digest(FEATURE_MODULES),
    }


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        if not math.isfinite(float(obj)):
            raise ValueError("matrix description must not contain NaN or infinity")
        return float(obj)
    if isinstance(obj, (dt.date, pd.Timestamp)):
        return obj.isoformat()
    return obj


def canonical_json(description: Mapping[str, Any]) -> str:
    """Canonical JSON text: sorted keys, no whitespace, ASCII only."""
    return json.dumps(_jsonable(description), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False)


def matrix_sha(description: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a matrix description."""
    return hashlib.sha256(canonical_json(description).encode("ascii")).hexdigest()


def history_start(start, cadence: str, warmup: int) -> dt.date:
    """A calendar date early enough to hold ``warmup`` bars of history before ``start``."""
    per_day = HOURLY_BARS_PER_DAY if cadence == "hourly" else 1.0
    sessions_needed = math.ceil(warmup / per_day)
    # 252 sessions per 365 calendar days, plus a week for holidays clustering
    days = math.ceil(sessions_needed * 365.0 / 252.0) + 7
    return _to_date(start, "start") - dt.timedelta(days=days)


def implied_vol_from_provider(provider, ticker: str, start, end) -> pd.Series:
    """At-the-money implied vol of the nearest expiry at each session close in [start, end].

    Stamped at the session close (16:00 New York), so ``build_matrix`` aligns each bar to the
    previous close's value: an intraday bar never sees the implied vol of its own session's
    close. One option-chain call per session.
    """
    days = provider.daily_bars(ticker, start, end)
    stamps, values = [], []
    for session in _session_dates(days.index, "daily"):
        chain = provider.option_chain(ticker, as_of=session.date(), strikes=3)
        if len(chain) == 0:
            continue
        nearest = chain[chain["expiry"] == chain["expiry"].min()]
        atm = nearest.iloc[(nearest["strike"] - nearest["underlying_price"]).abs().argsort()[:2]]
        stamps.append(pd.Timestamp(session.date().isoformat() + " 16:00",
                                   tz=ind.MARKET_TZ).tz_convert("UTC"))
        values.append(float(atm["iv"].mean()))
    return pd.Series(values, index=pd.DatetimeIndex(stamps, name="timestamp"), name="iv")


def build_matrix_from_provider(provider, pack: str | Pack, tickers, start, end, features=None,
                               implied_vol=None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fetch bars (with warm-up history) from a market-data provider and build the matrix.

    Returns ``(matrix, description)``; ``matrix_sha(description)`` names the result.
    Hourly packs request ``intraday_bars(..., freq="1h")``, daily packs ``daily_bars``.
    RVIV features without ``implied_vol`` sample it with ``implied_vol_from_provider`` (its
    digest enters the description, so a changed chain model changes the sha).
    """
    p = get_pack(pack)
    names = list(p.default_features if features is None else features)
    feats = resolve_features(names)
    if isinstance(tickers, str):
        tickers = [tickers]
    warmup = warmup_bars([f.name for f in feats])
    fetch_start = history_start(start, p.cadence, warmup)
    end_d = _to_date(end, "end")
    if implied_vol is None and any(f.key == "RVIV" for f in feats):
        iv_start = history_start(start, "daily", 5)
        implied_vol = {t: implied_vol_from_provider(provider, t, iv_start, end_d)
                       for t in sorted(set(tickers))}
    bars = {}
    for t in sorted(set(tickers)):
        if p.cadence == "hourly":
            bars[t] = provider.intraday_bars(t, fetch_start, end_d, freq="1h")
        else:
            bars[t] = provider.daily_bars(t, fetch_start, end_d)
    description = canonical_matrix_description(
        p, tickers, start, end, [f.name for f in feats],
        data_source=getattr(provider, "name", type(provider).__name__),
        data_version=provider.data_version, implied_vol=implied_vol, warmup=warmup)
    matrix = build_matrix(bars, p, [f.name for f in feats], start, end, implied_vol)
    return matrix, description
