"""Signal backtests: typed wrappers over ``compute.backtest_nb`` (equities) and the options
P&L of 0DTE packs priced with ``compute.greeks``.

Rules are in ``compute.backtest_nb``'s docstring: next-bar fills at the open, positions
change only on tradable bars, fees and slippage in bps per side, entries sized so that the
notional and its fee spend exactly the cash (never levered), a short's borrow fee per bar,
mark-to-close equity, a position still open at the end marked at the last close and reported
as the open trade (outside the closed-trade count and win rate). ``BacktestConfig`` describes one configuration; ``signal_cutoffs``
turns it into score cut-offs (``top_pct`` cut-offs come from *training* scores only);
``run_backtest`` runs it and returns per-bar equity, the fills and the metrics of
``compute.backtest_nb.METRIC_NAMES``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Sequence, Union

import numpy as np
import pandas as pd

from compute import backtest_nb
from compute.backtest_nb import METRIC_NAMES, N_METRICS

KINDS = ("thresholds", "top_pct")
FILL_COLUMNS = ("timestamp", "action", "price", "quantity", "pnl", "cumulative_pnl")
N_SESSION_CODES = 24  # session codes are bar-start hours 0..23


@dataclass(frozen=True)
class BacktestConfig:
    """One backtest configuration.

    - ``kind="thresholds"``: ``value`` v is the entry threshold: long when score >= v, short
      when score <= 1 - v. ``exit_value`` x <= v (default v) keeps a long while score >= x and
      a short while score <= 1 - x.
    - ``kind="top_pct"``: ``value`` p is a fraction (0.10; 10 is read as 10 %): long when the
      score is in the top p of the *training* score distribution, short in the bottom p;
      ``exit_value`` q >= p (default p) widens the band a position is kept in.
    - ``top_pct`` (thresholds kind only, optional): also require the score to be in the top
      (bottom) ``top_pct`` of the training scores to go long (short); this is how a grid of
      thresholds x top_pct (the spec's 4 x 3 x 3 sweep) combines both filters.
    - ``long_only``: never short. ``allowed_hours``: bar-start hours (0-23) in which fills may
      happen; None allows every bar. Costs are one-way, in basis points of traded notional.
    - ``periods_per_year`` annualises Sharpe, Sortino, returns and trades per year (252 for
      daily bars, 7 x 252 = 1764 for 09:30-16:00 hourly bars).
    - ``borrow_bps``: a short's borrow fee, basis points of its notional per year, charged
      at every close it is held through (1 / ``periods_per_year`` of it per bar).
    """

    kind: str = "thresholds"
    value: float = 0.55
    exit_value: Optional[float] = None
    top_pct: Optional[float] = None
    long_only: bool = False
    allowed_hours: Optional[tuple[int, ...]] = None
    fees_bps: float = 1.0
    slippage_bps: float = 2.0
    periods_per_year: float = 252.0
    initial_capital: float = 100_000.0
    es_level: float = 0.95
    borrow_bps: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "top_pct":
            object.__setattr__(self, "value", _as_fraction(self.value))
            if self.exit_value is not None:
                object.__setattr__(self, "exit_value", _as_fraction(self.exit_value))
            if not 0.0 < self.value <= 0.5:
                raise ValueError(f"top_pct must be in (0, 0.5], got {self.value}")
            if self.exit_value is not None and not self.value <= self.exit_value <= 0.5:
                raise ValueError("top_pct exit_value must be in [value, 0.5]")
        else:
            if not 0.0 <= self.value <= 1.0:
                raise ValueError(f"threshold must be in [0, 1], got {self.value}")
            if self.exit_value is not None and not 0.0 <= self.exit_value <= self.value:
                raise ValueError("exit threshold must be in [0, value]")
            if self.top_pct is not None:
                object.__setattr__(self, "top_pct", _as_fraction(self.top_pct))
                if not 0.0 < self.top_pct <= 0.5:
                    raise ValueError(f"top_pct must be in (0, 0.5], got {self.top_pct}")
        if self.allowed_hours is not None:
            hours = tuple(sorted({int(h) for h in self.allowed_hours}))
            if any(h < 0 or h >= N_SESSION_CODES for h in hours):
                raise ValueError("allowed_hours must be within 0..23")
            object.__setattr__(self, "allowed_hours", hours)
        if self.fees_bps < 0 or self.slippage_bps < 0 or self.borrow_bps < 0:
            raise ValueError("fees_bps, slippage_bps and borrow_bps must be >= 0")
        if self.periods_per_year <= 0 or self.initial_capital <= 0:
            raise ValueError("periods_per_year and initial_capital must be > 0")

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["allowed_hours"] is not None:
            d["allowed_hours"] = list(d["allowed_hours"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BacktestConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if known.get("allowed_hours") is not None:
            known["allowed_hours"] = tuple(known["allowed_hours"])
        return cls(**known)


def _as_fraction(p: float) -> float:
    # the spec's sweep example writes top_pct as percent (5, 10, 15)
    p = float(p)
    return p / 100.0 if p > 1.0 else p


def signal_cutoffs(config: BacktestConfig, train_scores: Optional[np.ndarray] = None) -> np.ndarray:
    """Score cut-offs ``[long_entry, short_entry, long_exit, short_exit]`` of a configuration.

    ``thresholds``: (v, 1 - v, x, 1 - x), entries tightened to max(v, q(1 - p)) and
    min(1 - v, q(p)) when the config also has a ``top_pct`` p. ``top_pct``: the (1 - p) and p quantiles of
    ``train_scores`` (linear interpolation, NaNs ignored) for entry and the (1 - q) and q
    quantiles for exit; the training scores must come from the training fold only.
    Long-only configurations get -inf short cut-offs (a short never triggers).
    """
    if config.kind == "thresholds":
        v = config.value
        x = v if config.exit_value is None else config.exit_value
        cuts = np.array([v, 1.0 - v, x, 1.0 - x])
        if config.top_pct is not None:
            lo, hi = _training_quantiles(train_scores, [config.top_pct, 1.0 - config.top_pct])
            cuts[0] = max(v, hi)
            cuts[1] = min(1.0 - v, lo)
    else:
        p = config.value
        q = p if config.exit_value is None else config.exit_value
        lo_entry, hi_entry, lo_exit, hi_exit = _training_quantiles(train_scores, [p, 1.0 - p, q, 1.0 - q])
        cuts = np.array([hi_entry, lo_entry, hi_exit, lo_exit])
    if config.long_only:
        cuts[backtest_nb.CUT_SHORT_ENTRY] = -np.inf
        cuts[backtest_nb.CUT_SHORT_EXIT] = -np.inf
    return cuts


def _training_quantiles(train_scores, probs) -> np.ndarray:
    if train_scores is None:
        raise ValueError("top_pct cut-offs need the training fold's scores")
    s = np.asarray(train_scores, dtype=np.float64)
    s = s[~np.isnan(s)]
    if s.size == 0:
        raise ValueError("no finite training scores to fit top_pct cut-offs on")
    return np.quantile(s, probs)


def hours_mask(allowed_hours: Optional[Sequence[int]]) -> np.ndarray:
    """Boolean mask over session codes 0..23 (all True when ``allowed_hours`` is None)."""
    mask = np.zeros(N_SESSION_CODES, dtype=np.bool_)
    if allowed_hours is None:
        mask[:] = True
    else:
        mask[np.asarray(list(allowed_hours), dtype=np.int64)] = True
    return mask


def bar_hours(index: Optional[pd.Index], n: int) -> np.ndarray:
    """Bar-start hour of each bar (America/New_York if the index is tz-aware), int64.

    Without a DatetimeIndex every bar gets hour 0, which the all-hours mask allows.
    """
    if isinstance(index, pd.DatetimeIndex):
        idx = index.tz_convert("America/New_York") if index.tz is not None else index
        return np.asarray(idx.hour, dtype=np.int64)
    return np.zeros(n, dtype=np.int64)


@dataclass
class BacktestResult:
    """Outcome of one backtest.

    ``metrics``: dict over ``METRIC_NAMES`` (annualised sharpe/sortino/annual_return/
    annual_volatility; cum_return; max_drawdown negative; win_rate per closed trade; trades
    = closed round trips; trades_per_year; es_95 per bar (negative); turnover = traded
    notional (both sides) / average equity, per year; exposure = fraction of bars holding
    a position; skew and non-excess kurtosis of bar returns, for the deflated Sharpe).
    ``equity``/``returns``/``position`` are per bar; ``fills`` has ``FILL_COLUMNS``.
    ``open_trade``: the position still open after the last bar (None when flat), marked at
    the last close without exit costs: ``side`` ("long"/"short"), ``entry_timestamp``,
    ``entry_price`` (with slippage), ``quantity``, ``mark_price``, ``entry_fee``,
    ``borrow_fees`` and ``unrealised_pnl`` (net of the entry fee and borrow fees).
    """

    metrics: dict
    equity: pd.Series
    returns: pd.Series
    position: pd.Series
    fills: pd.DataFrame
    config: BacktestConfig
    extras: dict = field(default_factory=dict)
    open_trade: Optional[dict] = None


def _float_array(x, name: str, n: Optional[int] = None) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} bars, expected {n}")
    return arr


def run_backtest(
    open_,
    close,
    score,
    config: BacktestConfig,
    *,
    index: Optional[pd.Index] = None,
    hours: Optional[np.ndarray] = None,
    tradable: Optional[np.ndarray] = None,
    train_scores: Optional[np.ndarray] = None,
    segments: Optional[np.ndarray] = None,
    segment_cutoffs: Optional[np.ndarray] = None,
    max_hold: int = 0,
) -> BacktestResult:
    """Backtest one configuration on one instrument's bars.

    ``open_``, ``close``, ``score``: per-bar arrays (or Series; ``index`` defaults to theirs).
    Which bars may fill: ``tradable`` (explicit boolean mask) if given, else the bar-start
    ``hours`` (default from a DatetimeIndex) against ``config.allowed_hours``.
    Cut-offs: ``segment_cutoffs`` (n_segments, 4) with per-bar ``segments`` (walk-forward
    folds, see ``compute.walkforward``), else one set from ``signal_cutoffs(config,
    train_scores)``. ``max_hold``: holding limit in bars (0 = none; the rule is in
    ``compute.backtest_nb``).
    """
    if index is None:
        for candidate in (score, close, open_):
            if isinstance(candidate, pd.Series):
                index = candidate.index
                break
    open_a = _float_array(open_, "open")
    n = open_a.shape[0]
    close_a = _float_array(close, "close", n)
    score_a = _float_array(score, "score", n)
    if index is None:
        index = pd.RangeIndex(n)
    session, allowed = _session_codes(config, index, n, hours, tradable)
    segments_a, cuts = _segments_and_cutoffs(config, n, train_scores, segments, segment_cutoffs)

    metrics = np.empty(N_METRICS)
    trace = backtest_nb.new_trace(n)
    cfg = backtest_nb.sim_config(config.fees_bps, config.slippage_bps, config.initial_capital,
                                 config.periods_per_year, config.es_level, config.borrow_bps,
                                 _max_hold(max_hold))
    n_fills, _, borrow_open = backtest_nb.simulate_nb(open_a, close_a, score_a, segments_a, session, cuts,
                                                      allowed, cfg, np.empty(2 * n), 0.0, metrics, True, trace)
    equity, position = trace.equity, trace.position
    f = trace.fills[:n_fills]
    fills = fills_frame(index, f["bar"], f["side"], f["price"], f["qty"], f["pnl"])
    equity_s = pd.Series(equity, index=index, name="equity")
    returns_s = pd.Series(trace.returns, index=index, name="returns")
    return BacktestResult(
        metrics=metrics_dict(metrics),
        equity=equity_s,
        returns=returns_s,
        position=pd.Series(position, index=index, name="position"),
        fills=fills,
        config=config,
        open_trade=_open_trade(index, position, f, close_a, config, borrow_open),
    )


def _max_hold(value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"max_hold must be a whole number of bars >= 0, got {value!r}")
    return int(value)


def _open_trade(index, position, fills, close, config, borrow_fees) -> Optional[dict]:
    """The position held after the last bar, marked at the last close (no exit costs); its
    opening fill is the last fill."""
    if position.shape[0] == 0 or position[-1] == 0:
        return None
    entry = fills[-1]
    side = int(position[-1])
    qty = float(entry["qty"])
    price = float(entry["price"])
    mark = float(close[-1])
    entry_fee = qty * price * config.fees_bps * 1e-4
    return {
        "side": "long" if side > 0 else "short",
        "entry_timestamp": pd.Index(index)[int(entry["bar"])],
        "entry_price": price,
        "quantity": qty,
        "mark_price": mark,
        "entry_fee": entry_fee,
        "borrow_fees": float(borrow_fees),
        "unrealised_pnl": side * qty * (mark - price) - entry_fee - float(borrow_fees),
    }


def metrics_dict(values: np.ndarray) -> dict:
    """Metric vector -> {name: float}; trades and n_bars as int."""
    out = {name: float(values[i]) for i, name in enumerate(METRIC_NAMES)}
    out["trades"] = int(out["trades"])
    out["n_bars"] = int(out["n_bars"])
    return out


def fills_frame(index, bars, sides, prices, quantities, pnls) -> pd.DataFrame:
    """Fill log in the export format: timestamp, action (BUY/SELL), price, quantity, pnl,
    cumulative_pnl. ``pnl`` is realised on closing fills (net of both fills' fees and a
    short's borrow fees), 0 on opening fills, so ``cumulative_pnl`` ends at final equity
    minus initial capital less the open trade's unrealised P&L."""
    index = pd.Index(index)
    pnls = np.asarray(pnls, dtype=np.float64)
    return pd.DataFrame({
        "timestamp": index[np.asarray(bars, dtype=np.int64)],
        "action": np.where(np.asarray(sides) > 0, "BUY", "SELL"),
        "price": np.asarray(prices, dtype=np.float64),
        "quantity": np.asarray(quantities, dtype=np.float64),
        "pnl": pnls,
        "cumulative_pnl": np.cumsum(pnls),
    }, columns=list(FILL_COLUMNS))


def _session_codes(config, index, n, hours, tradable):
    if tradable is not None:
        mask = np.asarray(tradable, dtype=np.bool_)
        if mask.shape != (n,):
            raise ValueError("tradable must have one entry per bar")
        return mask.astype(np.int64), np.array([False, True])
    if hours is None:
        hours = bar_hours(index, n)
    hours = np.ascontiguousarray(np.asarray(hours, dtype=np.int64))
    if hours.shape != (n,):
        raise ValueError("hours must have one entry per bar")
    if hours.size and (hours.min() < 0 or hours.max() >= N_SESSION_CODES):
        raise ValueError("hours must be within 0..23")
    return hours, hours_mask(config.allowed_hours)


def _segments_and_cutoffs(config, n, train_scores, segments, segment_cutoffs):
    if segment_cutoffs is not None:
        cuts = np.ascontiguousarray(np.asarray(segment_cutoffs, dtype=np.float64))
        if cuts.ndim != 2 or cuts.shape[1] != 4:
            raise ValueError("segment_cutoffs must have shape (n_segments, 4)")
        if segments is None:
            if cuts.shape[0] != 1:
                raise ValueError("segments are required with several cut-off rows")
            segments = np.zeros(n, dtype=np.int64)
        seg = np.ascontiguousarray(np.asarray(segments, dtype=np.int64))
        if seg.shape != (n,) or (n and (seg.min() < 0 or seg.max() >= cuts.shape[0])):
            raise ValueError("segments must index rows of segment_cutoffs, one per bar")
        return seg, cuts
    return np.zeros(n, dtype=np.int64), signal_cutoffs(config, train_scores)[None, :]


# --------------------------------------------------------------------------------------
# Options P&L (0DTE packs)

OPTION_MULTIPLIER = 100
ET = "America/New_York"
PREMIUM_FRACTION = 0.05  # of cash spent on premium per 0DTE entry: a lost premium costs 5 % of equity


def select_contract(abs_deltas: np.ndarray, implied_vols: np.ndarray, target_delta: float = 0.35) -> int:
    """Position of the contract whose |delta| is nearest ``target_delta``; ties go to the
    lower implied volatility (docs/spec/reference.md "Options overlay")."""
    dist = np.abs(np.asarray(abs_deltas, dtype=np.float64) - target_delta)
    dist = np.where(np.isnan(dist), np.inf, dist)
    best = dist.min()
    if not np.isfinite(best):
        raise ValueError("no contract with a finite delta")
    tied = np.flatnonzero(dist <= best + 1e-12)
    return int(tied[np.argmin(np.asarray(implied_vols)[tied])])


def _session_times(index: pd.DatetimeIndex, bar_minutes: float):
    """(years to the session close at each bar's open and close, last-bar-of-session flags)."""
    from compute.marketdata import calendar

    local = index.tz_convert(ET) if index.tz is not None else index.tz_localize(ET)
    days = local.normalize()
    unique_days = days.unique()
    closes = {}
    for day in unique_days:
        try:
            closes[day] = calendar.session_close(day.date()).tz_convert(ET)
        except Exception:  # not an exchange session (synthetic test data): regular 16:00 close
            closes[day] = day + pd.Timedelta(hours=16)
    close_at = pd.DatetimeIndex([closes[d] for d in days])
    bar_end = local + pd.Timedelta(minutes=bar_minutes)
    from compute.instruments import expiry_year_fraction

    t_open = expiry_year_fraction(np.asarray((close_at - local).total_seconds(), dtype=np.float64))
    t_close = expiry_year_fraction(np.asarray((close_at - bar_end).total_seconds(), dtype=np.float64))
    day_codes = np.asarray(days.asi8)
    last_of_session = np.ones(len(index), dtype=bool)
    last_of_session[:-1] = day_codes[1:] != day_codes[:-1]
    return np.maximum(t_open, 0.0), np.maximum(t_close, 0.0), last_of_session, local


def run_options_backtest(
    open_,
    close,
    score,
    config: BacktestConfig,
    *,
    index: pd.DatetimeIndex,
    implied_vol,
    iv_surface: Optional[Callable[[np.ndarray, float, float, float], np.ndarray]] = None,
    target_delta: float = 0.35,
    rate: Optional[float] = None,
    dividend_yield: float = 0.0,
    premium_fraction: float = PREMIUM_FRACTION,
    strike_step: Union[float, Callable[[float], float]] = 1.0,
    strike_span: float = 0.05,
    bar_minutes: float = 60.0,
    hours: Optional[np.ndarray] = None,
    train_scores: Optional[np.ndarray] = None,
    segments: Optional[np.ndarray] = None,
    segment_cutoffs: Optional[np.ndarray] = None,
) -> BacktestResult:
    """Backtest a direction signal traded with same-day-expiry (0DTE) options.

    Decisions are exactly the equity engine's (``compute.backtest_nb``): the score of bar t
    sets the desired direction, taken at bar t + 1's open only if that bar is tradable
    (``config.allowed_hours`` against ``hours``, default the index's New York hours), with the
    same cut-offs (``segment_cutoffs`` per walk-forward fold, as ``run_walk_forward`` returns
    them, else ``signal_cutoffs(config, train_scores)``) and the same hysteresis state, which
    an expiring contract does not reset. Execution:

    - +1 holds a call, -1 a put. On a tradable bar where the decision is long/short and no
      contract is held, the same-day expiry contract whose |delta| is nearest ``target_delta``
      (ties: lower IV) among strikes on a ``strike_step`` grid (a number, or a function of
      spot such as the listed grid of ``compute.marketdata.options.strike_step``) within
      ``strike_span`` of spot is bought at the bar's open with T = time left to the session
      close on the trading clock (``compute.instruments.expiry_year_fraction``).
    - Size: ``premium_fraction`` of cash (default ``PREMIUM_FRACTION``, 5 %) spent on premium,
      whole contracts (x100); no entry when not one is affordable or the bar's IV is not a
      positive number (retried on the next tradable bar).
    - Priced along the real path with ``compute.greeks.bsm_price`` at every close, IV fixed at
      entry (sticky strike); sold at the open when the decision changes; settled at intrinsic
      value at the session's last close (a still-long/short decision buys a fresh contract at
      the next tradable bar); sold at the last bar's close if still held there.
    - Costs on premium notional: buys at price x (1 + slippage), sales at price x (1 -
      slippage), fees on every fill's notional including the settlement (no slippage there).

    ``implied_vol``: at-the-money IV per bar (or a scalar), decimal, known at the bar's open;
    ``iv_surface(strikes, spot, years, atm_iv) -> iv`` adds a smile (default flat). ``rate``
    defaults to ``compute.marketdata.options.RISK_FREE_RATE``. ``index`` must be a
    DatetimeIndex of bar starts (tz-aware, or naive America/New_York). ``position`` is the
    side held at each bar's close (0 on the bar whose close settles the contract), while the
    ``exposure`` metric counts every bar a contract is held through, as the equity engine's
    does; ``extras["contracts"]`` lists every contract bought.
    """
    from compute.greeks import bsm_greeks, bsm_price
    from compute.marketdata.options import RISK_FREE_RATE

    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError("options backtests need a DatetimeIndex of bar starts")
    if not 0.0 < premium_fraction <= 1.0:
        raise ValueError("premium_fraction must be in (0, 1]")
    rate = RISK_FREE_RATE if rate is None else float(rate)
    step_of = strike_step if callable(strike_step) else (lambda spot: float(strike_step))
    open_a = _float_array(open_, "open")
    n = open_a.shape[0]
    close_a = _float_array(close, "close", n)
    score_a = _float_array(score, "score", n)
    atm_iv = np.broadcast_to(np.asarray(implied_vol, dtype=np.float64), (n,))
    t_open, t_close, last_of_session, _ = _session_times(index, bar_minutes)
    session, allowed = _session_codes(config, index, n, hours, None)
    seg, cuts = _segments_and_cutoffs(config, n, train_scores, segments, segment_cutoffs)
    fee_rate, slip_rate = config.fees_bps * 1e-4, config.slippage_bps * 1e-4

    cash = float(config.initial_capital)
    decision = 0  # the equity engine's position: what the signal holds
    position = 0  # the contract held: +1 long call, -1 long put
    contracts = 0
    strike = sigma = entry_price = entry_fee = 0.0
    desired = 0
    held_bar, held_strike, held_sigma, held_call, held_contracts = [], [], [], [], []
    cash_path = np.empty(n)
    position_path = np.zeros(n, dtype=np.int64)
    fills = {k: [] for k in ("bar", "side", "price", "qty", "pnl")}
    contract_log = []
    trades = wins = bars_in_market = 0
    traded_notional = 0.0

    def close_position(t, price):
        nonlocal cash, position, contracts, trades, wins, traded_notional
        notional = contracts * OPTION_MULTIPLIER * price
        fee = notional * fee_rate
        cash += notional - fee
        pnl = contracts * OPTION_MULTIPLIER * (price - entry_price) - entry_fee - fee
        trades += 1
        wins += pnl > 0.0
        traded_notional += notional
        for key, val in zip(("bar", "side", "price", "qty", "pnl"), (t, -1, price, contracts, pnl)):
            fills[key].append(val)
        position, contracts = 0, 0

    for t in range(n):
        tradable = t > 0 and allowed[session[t]]
        if tradable and desired != decision:
            decision = desired
            if position != 0:
                value = float(bsm_price(open_a[t], strike, t_open[t], rate, dividend_yield, sigma, position > 0))
                close_position(t, value * (1.0 - slip_rate))
        if tradable and decision != 0 and position == 0 and t_open[t] > 0.0 and atm_iv[t] > 0.0:
            spot = open_a[t]
            step = float(step_of(spot))
            centre = np.round(spot / step) * step
            half = max(1, int(np.ceil(spot * strike_span / step)))
            strikes = centre + step * np.arange(-half, half + 1)
            strikes = strikes[strikes > 0.0]
            ivs = (np.full(strikes.shape, atm_iv[t]) if iv_surface is None
                   else np.asarray(iv_surface(strikes, spot, t_open[t], atm_iv[t]), dtype=np.float64))
            greeks = bsm_greeks(spot, strikes, t_open[t], rate, dividend_yield, ivs, decision > 0)
            pick = select_contract(np.abs(greeks.delta), ivs, target_delta)
            price = float(greeks.price[pick]) * (1.0 + slip_rate)
            count = int(cash * premium_fraction // (price * OPTION_MULTIPLIER)) if price > 0 else 0
            if count >= 1:
                notional = count * OPTION_MULTIPLIER * price
                fee = notional * fee_rate
                cash -= notional + fee
                traded_notional += notional
                position, contracts = decision, count
                strike, sigma, entry_price, entry_fee = float(strikes[pick]), float(ivs[pick]), price, fee
                for key, val in zip(("bar", "side", "price", "qty", "pnl"), (t, 1, price, count, 0.0)):
                    fills[key].append(val)
                contract_log.append({"timestamp": index[t], "right": "C" if decision > 0 else "P",
                                     "strike": strike, "implied_vol": sigma,
                                     "delta": float(greeks.delta[pick]), "premium": price,
                                     "contracts": count})
        bars_in_market += position != 0  # held through this bar, even if its close settles it
        if position != 0 and (last_of_session[t] or t == n - 1):
            # 0DTE: settles at intrinsic at the session close (or is sold at the final bar)
            value = float(bsm_price(close_a[t], strike, t_close[t], rate, dividend_yield, sigma, position > 0))
            settle = value if last_of_session[t] else value * (1.0 - slip_rate)
            close_position(t, settle)
        if position != 0:
            held_bar.append(t)
            held_strike.append(strike)
            held_sigma.append(sigma)
            held_call.append(position > 0)
            held_contracts.append(contracts)
        cash_path[t] = cash
        position_path[t] = position
        c = cuts[seg[t]]
        desired = int(backtest_nb.target_position_nb(score_a[t], decision, c[0], c[1], c[2], c[3]))

    equity = cash_path.copy()
    if held_bar:
        bars = np.asarray(held_bar)
        marks = bsm_price(close_a[bars], np.asarray(held_strike), t_close[bars], rate, dividend_yield,
                          np.asarray(held_sigma), np.asarray(held_call))
        equity[bars] += np.asarray(held_contracts) * OPTION_MULTIPLIER * marks
    metrics = _path_metrics(equity, config, trades, wins, traded_notional, bars_in_market)
    prev = np.concatenate(([config.initial_capital], equity[:-1]))
    fills_df = fills_frame(index, fills["bar"], fills["side"], fills["price"], fills["qty"], fills["pnl"])
    return BacktestResult(
        metrics=metrics,
        equity=pd.Series(equity, index=index, name="equity"),
        returns=pd.Series(equity / prev - 1.0, index=index, name="returns"),
        position=pd.Series(position_path, index=index, name="position"),
        fills=fills_df,
        config=config,
        extras={"contracts": pd.DataFrame(contract_log)},
    )


def _path_metrics(equity, config, trades, wins, traded_notional, bars_in_market) -> dict:
    """The ``METRIC_NAMES`` figures of an equity path, through ``compute.stats``."""
    from compute import stats

    n = equity.shape[0]
    ppy = config.periods_per_year
    r = equity / np.concatenate(([config.initial_capital], equity[:-1])) - 1.0
    years = n / ppy
    skew, kurt = stats.skew_kurtosis(r)
    return {
        "sharpe": stats.sharpe(r, ppy),
        "sortino": stats.sortino(r, ppy),
        "cum_return": stats.cum_return(r),
        "annual_return": stats.annual_return(r, ppy),
        "annual_volatility": stats.annual_volatility(r, ppy),
        "max_drawdown": stats.max_drawdown(r),
        "calmar": stats.calmar(r, ppy),
        "win_rate": wins / trades if trades else float("nan"),
        "trades": int(trades),
        "trades_per_year": trades / years,
        "es_95": stats.expected_shortfall(r, config.es_level),
        "turnover": traded_notional / float(np.mean(equity)) / years,
        "exposure": bars_in_market / n,
        "final_equity": float(equity[-1]),
        "n_bars": int(n),
        "skew": skew,
        "kurtosis": kurt,
    }
