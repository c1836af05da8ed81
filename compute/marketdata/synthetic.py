"""The ``synthetic`` provider: offline, deterministic bars from a multi-factor model.

Each ticker's whole daily history (every NYSE session from ``factors.EPOCH``, 1990-01-02, to
``factors.HORIZON_END``) is generated once per process from PCG64 streams seeded by SHA-256 of
(model version, seed, ticker), then sliced, so a bar never depends on the requested range and
two processes or machines produce identical numbers.  The history was first generated from
2000-01-03 (``factors.FORWARD_EPOCH``); the 1990-1999 sessions are a backfill on independent
streams, compounded backwards from the first 2000 bar, so no bar from 2000 on changed.  Daily returns follow the factor model of
:mod:`compute.marketdata.factors` with the ticker's loadings from
:mod:`compute.marketdata.reference`; prices are scaled so the close on 2024-01-02 equals the
ticker's reference price level.  Mutual funds publish one NAV a day (open = high = low = close,
no volume); VIX-like indices mean-revert in log level and load negatively on the market.

1-minute bars are drawn per (seed, ticker, session) as Brownian bridges through the session's
open, high, low and close, with a U-shaped volume profile in whole shares, so they aggregate
exactly to the daily bar (and 5m/15m/1h bars aggregate exactly too).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from functools import lru_cache
from typing import Callable

import numpy as np
import pandas as pd

from compute.marketdata import calendar
from compute.marketdata import factors as fm
from compute.marketdata.base import (
    MarketDataError,
    MarketDataProvider,
    bars_frame,
    check_freq,
    clip_to_times,
    empty_bars,
    resample_minutes,
)
from compute.marketdata.options import build_option_chain
from compute.instruments import normalize_ticker
from compute.marketdata.reference import PRICE_ANCHOR_SESSION, profile
from compute.marketdata.synthetic_nb import (
    backward_closes_nb,
    compound_closes_nb,
    daily_ohlcv_nb,
    idiosyncratic_returns_nb,
    mean_reverting_log_levels_nb,
    minute_bars_nb,
)

VOLATILITY_RISK_PREMIUM = 1.1     # implied vol runs ~10 % above realised
OVERNIGHT_SHARE = 0.25            # fraction of the close-to-close move made overnight
VIX_MEAN_LEVEL = 18.0
VIX_REVERSION = 0.03              # per session: half-life about 23 sessions
VIX_FLOOR = 9.0
MINUTE_CACHE_SESSIONS = 64


def _rng(*parts) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(fm.seed_words(*parts))))


def _student_t(rng: np.random.Generator, n: int) -> np.ndarray:
    dof = fm.STUDENT_T_DOF
    return rng.standard_t(dof, n) * np.sqrt((dof - 2.0) / dof)


class DailyHistory:
    """A ticker's full synthetic daily history (arrays aligned with factors.model_sessions())."""

    __slots__ = ("open", "high", "low", "close", "volume", "daily_vol", "typical_daily_vol")

    def __init__(self, o, h, l, c, v, daily_vol, typical_daily_vol):
        self.open, self.high, self.low, self.close, self.volume = o, h, l, c, v
        self.daily_vol = daily_vol
        self.typical_daily_vol = typical_daily_vol
        for arr in (o, h, l, c, v, daily_vol):
            arr.setflags(write=False)


# ~0.5 MB per ticker: 128 covers a large portfolio plus the factor ETFs.
@lru_cache(maxsize=128)
def daily_history(seed: int, ticker: str) -> DailyHistory:
    """Generate (and memoise) the full daily history of ``ticker`` for ``seed``: the 1990-1999
    backfill followed by the forward history from ``factors.FORWARD_EPOCH`` (2000-01-03)."""
    prof = profile(ticker)
    n_back = fm.backfill_sessions()
    factor_ret = fm.factor_returns_array(seed)
    g = fm.variance_multiplier(seed)
    # a fresh copy: the forward segment's arithmetic sees the same array layout as when it was
    # the whole history (BLAS results can depend on alignment)
    forward = _forward_segment(seed, prof, factor_ret[n_back:].copy(), g[n_back:].copy())
    back = _backfill_segment(seed, prof, factor_ret[:n_back], g[:n_back], forward)
    parts = [np.concatenate([b, f]) for b, f in zip(back[:6], forward[:6])]
    return DailyHistory(*parts, forward[6])


def _draws(rng: np.random.Generator, n: int):
    """(idiosyncratic shock, gap, high, low, volume noise): the fixed draw order of a segment."""
    return (_student_t(rng, n), rng.standard_normal(n), rng.standard_normal(n),
            rng.standard_normal(n), rng.standard_normal(n))


def _ohlcv(prof, closes, daily_vol, draws):
    n = closes.shape[0]
    if prof.model == "nav":
        return closes.copy(), closes.copy(), closes.copy(), np.zeros(n)
    _, gap_noise, high_draw, low_draw, volume_noise = draws
    return daily_ohlcv_nb(closes, daily_vol, gap_noise, high_draw, low_draw, volume_noise, prof.adv,
                          OVERNIGHT_SHARE)


def _forward_segment(seed: int, prof, factor_ret: np.ndarray, g: np.ndarray):
    """The history from FORWARD_EPOCH on, exactly as first generated: (open, high, low, close,
    volume, daily_vol, typical daily vol, returns)."""
    n = factor_ret.shape[0]
    rng = _rng(seed, "daily", prof.ticker)
    # Fixed draw order over the fixed horizon: the stream, hence every bar, is range-independent.
    draws = _draws(rng, n)
    idio_shock = draws[0]
    beta = prof.loading_vector()
    systematic_var = float(beta @ fm.factor_covariance() @ beta)
    typical = float(np.sqrt(systematic_var + prof.idio_vol**2))
    a, c, b = fm.IDIO_GARCH
    returns = None
    if prof.model == "volatility_index":
        market_surprise = np.ascontiguousarray(factor_ret[:, 0] - fm.DAILY_MEAN[0])
        closes = mean_reverting_log_levels_nb(prof.idio_vol * idio_shock, market_surprise,
                                              prof.loadings.get("market", 0.0), VIX_REVERSION,
                                              np.log(VIX_MEAN_LEVEL), VIX_MEAN_LEVEL)
        closes = np.maximum(closes, VIX_FLOOR)
        daily_vol = np.full(n, typical)
    else:
        idio = idiosyncratic_returns_nb(idio_shock, prof.idio_vol, a, c, b)
        returns = prof.alpha + factor_ret @ beta + idio
        table = fm.model_sessions()
        anchor = int(table.index.get_loc(pd.Timestamp(PRICE_ANCHOR_SESSION))) - fm.backfill_sessions()
        closes = compound_closes_nb(returns, anchor, prof.price)
        idio_var = (idio / np.where(idio_shock == 0.0, 1.0, idio_shock)) ** 2
        daily_vol = np.sqrt(systematic_var * g + idio_var)
    opens, highs, lows, volumes = _ohlcv(prof, closes, daily_vol, draws)
    return opens, highs, lows, closes, volumes, daily_vol, typical, returns


def _backfill_segment(seed: int, prof, factor_ret: np.ndarray, g: np.ndarray, forward):
    """The 1990-1999 sessions: the same model on independent streams (returns drawn forward in
    time), prices compounded backwards from the forward segment's first bar so the series
    joins with an ordinary daily move: the close before 2000-01-03 is the one the forward
    segment's first return started from (its compounding base; 18 for a VIX-like index)."""
    n = factor_ret.shape[0]
    rng = _rng(seed, "daily", prof.ticker, fm.BACKFILL)
    draws = _draws(rng, n)
    idio_shock = draws[0]
    beta = prof.loading_vector()
    systematic_var = float(beta @ fm.factor_covariance() @ beta)
    typical = forward[6]
    a, c, b = fm.IDIO_GARCH
    if n == 0:
        empty = np.empty(0)
        return empty, empty, empty, empty, empty, empty
    if prof.model == "volatility_index":
        # Reverse-time mean reversion from the level the forward path started at: the
        # log level steps back towards its mean with this segment's shocks, the market term
        # sign-flipped so that, read forwards, the index still falls when the market rises.
        shocks = prof.idio_vol * idio_shock
        market_surprise = factor_ret[:, 0] - fm.DAILY_MEAN[0]
        back_steps = mean_reverting_log_levels_nb(
            np.ascontiguousarray(shocks[n - 1:0:-1]), np.ascontiguousarray(-market_surprise[n - 1:0:-1]),
            prof.loadings.get("market", 0.0), VIX_REVERSION, np.log(VIX_MEAN_LEVEL), VIX_MEAN_LEVEL)
        closes = np.maximum(np.concatenate([back_steps[::-1], [VIX_MEAN_LEVEL]]), VIX_FLOOR)
        daily_vol = np.full(n, typical)
    else:
        idio = idiosyncratic_returns_nb(idio_shock, prof.idio_vol, a, c, b)
        returns = prof.alpha + factor_ret @ beta + idio
        # the close before the forward segment's first bar: its compounding base
        first_return = max(float(forward[7][0]), -0.95)
        closes = backward_closes_nb(returns, float(forward[3][0]) / (1.0 + first_return))
        idio_var = (idio / np.where(idio_shock == 0.0, 1.0, idio_shock)) ** 2
        daily_vol = np.sqrt(systematic_var * g + idio_var)
    opens, highs, lows, volumes = _ohlcv(prof, closes, daily_vol, draws)
    return opens, highs, lows, closes, volumes, daily_vol


class SyntheticProvider(MarketDataProvider):
    """Offline, deterministic market data (see module docstring).

    ``seed`` selects an independent universe; ``clock`` (epoch seconds, default time.time)
    defines "now" for quotes and option chains without an ``as_of``.
    """

    source = "synthetic"
    chain_pricing = "model"

    def __init__(self, seed: int = 0, clock: Callable[[], float] | None = None):
        self.seed = int(seed)
        self.clock = clock or time.time
        self.last_cache_status = None
        self._minute_cache: OrderedDict[tuple[str, pd.Timestamp], pd.DataFrame] = OrderedDict()

    @property
    def data_version(self) -> str:
        return f"synthetic:{fm.MODEL_VERSION}:seed={self.seed}"

    # -- model access ----------------------------------------------------------------------
    def true_loadings(self, ticker: str) -> dict[str, float]:
        """The configured factor loadings of ``ticker`` (keys: factors.FACTORS).

        Equity factors and oil: return per unit factor return; rates: return per unit
        (decimal) change of the 10-year yield.  For a volatility index the market loading is
        on the log level rather than the simple return.
        """
        prof = profile(ticker)
        return {f: float(prof.loadings.get(f, 0.0)) for f in fm.FACTORS}

    def factor_returns(self, start, end) -> pd.DataFrame:
        """Daily factor returns (columns factors.FACTORS, index session open UTC)."""
        self._positions(start, end)
        return fm.factor_returns(start, end, self.seed)

    def _positions(self, start, end) -> tuple[int, int]:
        """Row range of model_sessions() for [start, end]; dates outside the model horizon
        (factors.EPOCH .. factors.HORIZON_END) simply have no bars."""
        lo_day, hi_day = calendar.to_session_date(start), calendar.to_session_date(end)
        if lo_day > hi_day:
            raise MarketDataError(f"start {lo_day.date()} is after end {hi_day.date()}")
        index = fm.model_sessions().index
        return (int(index.searchsorted(lo_day, side="left")),
                int(index.searchsorted(hi_day, side="right")))

    # -- bars ------------------------------------------------------------------------------
    def _daily_bars(self, ticker: str, start, end) -> pd.DataFrame:
        symbol = normalize_ticker(ticker)
        lo, hi = self._positions(start, end)
        if hi <= lo:
            return empty_bars()
        hist = daily_history(self.seed, symbol)
        opens = calendar.utc_ns(fm.model_sessions()["open"].iloc[lo:hi])
        return bars_frame(opens, hist.open[lo:hi], hist.high[lo:hi], hist.low[lo:hi],
                          hist.close[lo:hi], hist.volume[lo:hi])

    def _minute_bars(self, symbol: str, lo: int, hi: int) -> pd.DataFrame:
        table = fm.model_sessions().iloc[lo:hi]
        if len(table) == 0:
            return empty_bars()
        hist = daily_history(self.seed, symbol)
        minutes = table["minutes"].to_numpy(np.int64)
        total = int(minutes.sum())
        z = np.empty(total)
        wick = np.empty(total)
        vol_noise = np.empty(total)
        offset = 0
        for k, (session, count) in enumerate(zip(table.index, minutes)):
            # One stream per (seed, ticker, session): a day's minutes never depend on the range.
            rng = _rng(self.seed, "minute", symbol, session.date())
            draws = rng.standard_normal(3 * count)
            z[offset:offset + count] = draws[:count]
            wick[offset:offset + count] = np.abs(draws[count:2 * count])
            vol_noise[offset:offset + count] = draws[2 * count:3 * count]
            offset += count
        o, h, l, c, v = minute_bars_nb(hist.open[lo:hi], hist.high[lo:hi], hist.low[lo:hi],
                                       hist.close[lo:hi], hist.volume[lo:hi], minutes, z, wick,
                                       vol_noise)
        stamps = calendar.utc_ns(calendar.minute_starts(table))
        return bars_frame(stamps, o, h, l, c, v)

    def _intraday_bars(self, ticker: str, start, end, freq: str = "1min") -> pd.DataFrame:
        check_freq(freq)
        symbol = normalize_ticker(ticker)
        lo, hi = self._positions(start, end)
        bars = resample_minutes(self._minute_bars(symbol, lo, hi), freq)
        return clip_to_times(bars, start, end)

    # -- quotes and chains ----------------------------------------------------------------
    def _session_minutes_cached(self, symbol: str, session: pd.Timestamp) -> pd.DataFrame:
        key = (symbol, session)
        if key not in self._minute_cache:
            pos = int(fm.model_sessions().index.get_loc(session))
            self._minute_cache[key] = self._minute_bars(symbol, pos, pos + 1)
            while len(self._minute_cache) > MINUTE_CACHE_SESSIONS:
                self._minute_cache.popitem(last=False)
        return self._minute_cache[key]

    def price_at(self, ticker: str, when) -> dict:
        """Last price, session volume so far and previous close at ``when`` (UTC or naive NY).

        Inside a session the last price is the close of the latest 1-minute bar that ended at
        or before ``when`` (the open in the session's first minute); outside, the last
        session's close.
        """
        symbol = normalize_ticker(ticker)
        when = pd.Timestamp(when)
        when = (when.tz_localize(calendar.NEW_YORK) if when.tzinfo is None else when).tz_convert("UTC")
        table = fm.model_sessions()
        session = calendar.session_on_or_before(when)
        if when < table.at[session, "open"]:
            session = calendar.previous_session(session)
        pos = int(table.index.get_loc(session))
        if pos < 1:
            raise MarketDataError(f"no synthetic data before {fm.EPOCH.date()}")
        hist = daily_history(self.seed, symbol)
        prev_close = float(hist.close[pos - 1])
        if when >= table.at[session, "close"]:
            return {"last": float(hist.close[pos]), "volume": float(hist.volume[pos]),
                    "prev_close": prev_close, "timestamp": table.at[session, "close"],
                    "session": session, "session_pos": pos}
        minutes = self._session_minutes_cached(symbol, session)
        # Only minutes that have ended: a bar's close is known at its end, not its start.
        upto = minutes[minutes.index + pd.Timedelta(minutes=1) <= when]
        if len(upto) == 0:          # inside the first minute: the opening print
            return {"last": float(hist.open[pos]), "volume": 0.0, "prev_close": prev_close,
                    "timestamp": table.at[session, "open"], "session": session,
                    "session_pos": pos}
        return {"last": float(upto["close"].iloc[-1]), "volume": float(upto["volume"].sum()),
                "prev_close": prev_close, "timestamp": upto.index[-1] + pd.Timedelta(minutes=1),
                "session": session, "session_pos": pos}

    def latest_quote(self, tickers: list[str]) -> dict[str, dict]:
        """Quotes at the clock's "now": last, bid/ask around it (spread by liquidity),
        session volume, change and change_percent (percent) versus the previous close."""
        now = self.now()
        quotes = {}
        for ticker in tickers:
            symbol = normalize_ticker(ticker)
            prof = profile(symbol)
            snap = self.price_at(symbol, now)
            last = snap["last"]
            if prof.model in ("nav", "volatility_index"):
                bid = ask = round(last, 4)
            else:
                half = max(0.005, last * (0.5e-4 if prof.adv >= 2e7 else 2e-4))
                bid = np.floor((last - half) * 100.0) / 100.0
                ask = np.ceil((last + half) * 100.0) / 100.0
            change = last - snap["prev_close"]
            quotes[symbol] = {
                "bid": float(bid), "ask": float(ask), "last": round(last, 4),
                "volume": snap["volume"],
                "timestamp": snap["timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "change": round(change, 4),
                "change_percent": round(100.0 * change / snap["prev_close"], 4),
            }
        return quotes

    def option_chain(self, ticker: str, as_of=None, expiries=None,
                     strikes: int | None = None) -> pd.DataFrame:
        """BSM chain on the synthetic smile; ``as_of`` None = now, a date = that session's close,
        a timestamp = that instant (see :mod:`compute.marketdata.options`)."""
        symbol = normalize_ticker(ticker)
        prof = profile(symbol)
        if prof.model == "nav":
            raise MarketDataError(f"{symbol} is a mutual fund: it has no listed options")
        when = self.as_of_instant(as_of)
        snap = self.price_at(symbol, when)
        hist = daily_history(self.seed, symbol)
        annual = np.sqrt(252.0) * VOLATILITY_RISK_PREMIUM
        now_vol = float(hist.daily_vol[snap["session_pos"]]) * annual
        long_run_vol = hist.typical_daily_vol * annual
        skew = 0.10 if prof.model == "volatility_index" else -0.08
        activity = max(prof.adv, 2e5) / 1000.0
        return build_option_chain(symbol, snap["last"], when, now_vol, long_run_vol,
                                  prof.dividend_yield, activity, expiries, strikes, skew,
                                  self.seed)

    def reference(self, ticker: str) -> dict:
        return profile(ticker).reference_dict()

