"""0DTE options P&L for options packs (zerosigma): the walk-forward decisions of the equity
engine, executed with same-day-expiry contracts priced along the real price path by the
Black-Scholes-Merton engine (``compute.greeks``).

Rules (documented so they can be argued with):

- Decisions are exactly the equity walk-forward's (``compute.walkforward``): the position
  held during each out-of-sample bar (+1 / -1 / 0), next-bar fills, allowed hours,
  per-fold cut-offs fitted on training scores only.
- +1 holds a call, -1 a put, expiring at that session's close. At each entry the contract is
  the one nearest |delta| 0.35 on the underlying's strike grid (ties: the strike nearer the
  money), priced at the bar's open with the time left to the close.
- Volatility: the implied vol known at the bar (``f_VOL<w> - f_RVIV<w>`` of the matrix,
  i.e. the chain's ATM implied vol sampled at the previous close), else the realised vol
  (``compute.greeks.select_volatility``); rate ``RISK_FREE_RATE``, no dividend yield.
- Size: ``PREMIUM_BUDGET`` of current equity spent on premium per entry, whole contracts of
  100 shares (no entry when not even one is affordable).
- Fills: buy at premium x (1 + slippage), sell at premium x (1 - slippage), fees on premium
  notional, both in the risk profile's bps. A contract still held at its session's close
  expires and is cash-settled at intrinsic value without costs; if the decision is still
  long/short, a fresh contract is bought at the next allowed bar's open.
- Equity is cash plus contracts marked at each bar's close (time left = session close minus
  bar end); metrics, per-fold figures, PSR and deflated Sharpe are computed on these returns
  with ``compute.stats``, so the gate judges the options P&L, not the underlying's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from compute import stats
from compute.backtest import FILL_COLUMNS, hours_mask
from compute.greeks import bsm_greeks, bsm_price, select_volatility
from compute.instruments import expiry_year_fraction
from compute.marketdata.options import RISK_FREE_RATE, strike_step

TARGET_DELTA = 0.35
PREMIUM_BUDGET = 0.05
MULTIPLIER = 100
MAX_BAR_MINUTES = 60.0


@dataclass
class OptionsBacktest:
    fills: pd.DataFrame
    equity: pd.Series
    returns: pd.Series
    position: pd.Series
    contracts: list = field(default_factory=list)


@dataclass
class OptionsWalkForwardResult:
    """Same shape as ``compute.walkforward.WalkForwardResult`` (metrics, folds, backtest)."""

    metrics: dict
    folds: list
    backtest: OptionsBacktest
    underlying: object  # the equity walk-forward result the decisions came from


def _volatility(frame: pd.DataFrame, periods_per_year: float) -> tuple[np.ndarray, np.ndarray]:
    close = frame["close"].to_numpy(np.float64)
    rviv = [c for c in frame.columns if c.startswith("f_RVIV")]
    window = int(rviv[0][len("f_RVIV"):]) if rviv else 20
    vol_col = f"f_VOL{window}"
    if vol_col in frame.columns:
        realised = frame[vol_col].to_numpy(np.float64)
    else:
        logret = np.diff(np.log(close), prepend=np.nan)
        realised = (pd.Series(logret).rolling(window).std(ddof=1) * math.sqrt(periods_per_year)).to_numpy()
    implied = realised - frame[rviv[0]].to_numpy(np.float64) if rviv else np.full(len(frame), np.nan)
    sigma, source = select_volatility(implied, realised)
    return sigma, source


def _pick_contract(spot: float, years: float, sigma: float, is_call: bool, underlying: str) -> tuple[float, float]:
    """Strike nearest |delta| TARGET_DELTA on the listed grid and its delta."""
    step = strike_step(underlying, spot)
    centre = round(spot / step) * step
    strikes = centre + step * np.arange(-40, 41)
    strikes = strikes[strikes > 0]
    g = bsm_greeks(np.full(len(strikes), spot), strikes, max(years, 1e-9), RISK_FREE_RATE, 0.0, sigma, is_call)
    gap = np.abs(np.abs(g.delta) - TARGET_DELTA)
    order = np.lexsort((np.abs(strikes - spot), gap))
    best = order[0]
    return float(strikes[best]), float(g.delta[best])


def _session_close_times(stamps: pd.DatetimeIndex, sessions: np.ndarray) -> np.ndarray:
    """Per bar: the end of its session's last bar, capped at 16:00 New York (ns UTC)."""
    bar_ns = int(MAX_BAR_MINUTES * 60e9)
    ends = pd.Series(stamps.asi8 + bar_ns).groupby(sessions).transform("max").to_numpy()
    local = pd.DatetimeIndex(sessions).as_unit("ns").tz_localize("America/New_York") + pd.Timedelta(hours=16)
    cap = local.tz_convert("UTC").as_unit("ns").asi8
    return np.minimum(ends, cap)


def simulate_options(oos: pd.DataFrame, position: np.ndarray, *, underlying: str, fees_bps: float,
                     slippage_bps: float, allowed_hours, periods_per_year: float,
                     initial_capital: float = 100_000.0, sigma: np.ndarray | None = None) -> OptionsBacktest:
    """Run the 0DTE rules (module docstring) over out-of-sample bars and their positions."""
    n = len(oos)
    stamps = pd.DatetimeIndex(oos["timestamp"])
    if stamps.tz is None:
        stamps = stamps.tz_localize("UTC")
    stamps = stamps.as_unit("ns")
    sessions = pd.to_datetime(oos["session_date"]).to_numpy(dtype="datetime64[D]")
    close_ns = _session_close_times(stamps, sessions)
    start_ns = stamps.asi8
    bar_ns = int(MAX_BAR_MINUTES * 60e9)
    open_ = oos["open"].to_numpy(np.float64)
    close = oos["close"].to_numpy(np.float64)
    hours = oos["hour"].to_numpy(np.int64)
    allowed = hours_mask(allowed_hours)
    fee, slip = fees_bps * 1e-4, slippage_bps * 1e-4
    if sigma is None:
        sigma = np.full(n, 0.2)

    cash = float(initial_capital)
    contracts = 0
    strike = 0.0
    is_call = True
    side = 0
    cost_basis = 0.0
    held_session = None
    equity = np.empty(n)
    held = np.zeros(n, dtype=np.int64)
    fills: list[tuple] = []
    picked: list[dict] = []

    def years(at_ns, i):
        return expiry_year_fraction(max(close_ns[i] - at_ns, 0) / 1e9)

    def close_out(i, premium, at_ns, settle=False):
        nonlocal cash, contracts, side, cost_basis
        price = premium if settle else premium * (1.0 - slip)
        proceeds = contracts * MULTIPLIER * price
        cost = 0.0 if settle else fee * proceeds
        cash += proceeds - cost
        pnl = proceeds - cost - cost_basis
        fills.append((at_ns, "SELL", price, contracts, pnl))
        contracts, side, cost_basis = 0, 0, 0.0

    for i in range(n):
        want = int(position[i])
        if contracts and (want != side or held_session != sessions[i]):
            # a decision change at this bar's open (the previous session's contract already expired)
            premium = float(bsm_price(open_[i], strike, years(start_ns[i], i), RISK_FREE_RATE, 0.0, sigma[i], is_call))
            close_out(i, premium, start_ns[i])
        if want != 0 and not contracts and allowed[hours[i]] and math.isfinite(sigma[i]) and sigma[i] > 0:
            t_open = years(start_ns[i], i)
            if t_open > 0:
                is_call = want > 0
                strike, delta = _pick_contract(open_[i], t_open, sigma[i], is_call, underlying)
                premium = float(bsm_price(open_[i], strike, t_open, RISK_FREE_RATE, 0.0, sigma[i], is_call))
                buy = premium * (1.0 + slip)
                equity_now = cash
                qty = int(math.floor(PREMIUM_BUDGET * equity_now / (buy * MULTIPLIER))) if buy > 0 else 0
                if qty >= 1:
                    notional = qty * MULTIPLIER * buy
                    cash -= notional + fee * notional
                    contracts, side, held_session = qty, want, sessions[i]
                    cost_basis = notional + fee * notional
                    fills.append((start_ns[i], "BUY", buy, qty, 0.0))
                    picked.append({"timestamp": int(start_ns[i]), "strike": strike, "right": "C" if is_call else "P",
                                   "delta": delta, "sigma": float(sigma[i]), "premium": premium})
        end_ns = min(start_ns[i] + bar_ns, close_ns[i])
        t_close = years(end_ns, i)
        mark = 0.0
        if contracts:
            mark = float(bsm_price(close[i], strike, t_close, RISK_FREE_RATE, 0.0, sigma[i], is_call))
            held[i] = side
            if t_close <= 0.0:
                close_out(i, mark, end_ns, settle=True)  # expiry: cash-settled at intrinsic
                mark = 0.0
            elif i == n - 1:
                close_out(i, mark, end_ns)
                mark = 0.0
        equity[i] = cash + contracts * MULTIPLIER * mark
    index = stamps
    if fills:
        arr = list(zip(*fills))
        pnl = np.asarray(arr[4], dtype=np.float64)
        fills_df = pd.DataFrame({
            "timestamp": pd.to_datetime(np.asarray(arr[0], dtype=np.int64), utc=True),
            "action": list(arr[1]), "price": np.asarray(arr[2], dtype=np.float64),
            "quantity": np.asarray(arr[3], dtype=np.float64), "pnl": pnl, "cumulative_pnl": np.cumsum(pnl),
        }, columns=list(FILL_COLUMNS))
    else:
        fills_df = pd.DataFrame({c: [] for c in FILL_COLUMNS})
    prev = np.concatenate(([initial_capital], equity[:-1]))
    return OptionsBacktest(fills=fills_df, equity=pd.Series(equity, index=index, name="equity"),
                           returns=pd.Series(equity / prev - 1.0, index=index, name="returns"),
                           position=pd.Series(held, index=index, name="position"), contracts=picked)


def options_metrics(bt: OptionsBacktest, periods_per_year: float, initial_capital: float = 100_000.0) -> dict:
    """The equity engine's metric names, computed on the options equity curve."""
    r = bt.returns.to_numpy()
    n = len(r)
    base = stats.risk_stats(r, periods_per_year) if n else {}
    closing = bt.fills[bt.fills["action"] == "SELL"]
    trades = int(len(closing))
    years = n / periods_per_year if n else float("nan")
    traded = float((bt.fills["price"] * bt.fills["quantity"] * MULTIPLIER).sum()) if len(bt.fills) else 0.0
    avg_equity = float(np.mean(bt.equity.to_numpy())) if n else float("nan")
    skew, kurt = stats.skew_kurtosis(r) if n > 2 else (float("nan"), float("nan"))
    return {
        "sharpe": base.get("sharpe", float("nan")),
        "sortino": base.get("sortino", float("nan")),
        "cum_return": base.get("cum_return", float("nan")),
        "annual_return": base.get("annual_return", float("nan")),
        "annual_volatility": base.get("annual_volatility", float("nan")),
        "max_drawdown": base.get("max_drawdown", float("nan")),
        "calmar": base.get("calmar", float("nan")),
        "win_rate": float((closing["pnl"] > 0).mean()) if trades else float("nan"),
        "trades": trades,
        "trades_per_year": trades / years if years else float("nan"),
        "es_95": base.get("es_95", float("nan")),
        "turnover": traded / avg_equity / years if years and avg_equity else float("nan"),
        "exposure": float(np.mean(bt.position.to_numpy() != 0)) if n else float("nan"),
        "final_equity": float(bt.equity.iloc[-1]) if n else initial_capital,
        "n_bars": n,
        "skew": float(skew),
        "kurtosis": float(kurt),
    }


def options_walk_forward(frame: pd.DataFrame, fit_predict, wf, inputs) -> OptionsWalkForwardResult:
    """Walk-forward decisions of the equity engine, executed with 0DTE options."""
    from compute.walkforward import run_walk_forward

    under = run_walk_forward(frame, fit_predict, wf)
    ppy = wf.backtest.periods_per_year
    oos = frame.iloc[inputs.first:]
    sigma, _source = _volatility(frame, ppy)
    bt = simulate_options(oos.reset_index(drop=True), under.backtest.position.to_numpy(),
                          underlying=str(oos["ticker"].iloc[0]) if len(oos) else "SPY",
                          fees_bps=wf.backtest.fees_bps, slippage_bps=wf.backtest.slippage_bps,
                          allowed_hours=wf.backtest.allowed_hours, periods_per_year=ppy,
                          initial_capital=wf.backtest.initial_capital, sigma=sigma[inputs.first:])
    metrics = options_metrics(bt, ppy, wf.backtest.initial_capital)
    returns = bt.returns.to_numpy()
    sell_pos = pd.DatetimeIndex(bt.fills["timestamp"]).as_unit("ns").asi8 if len(bt.fills) else np.array([], np.int64)
    is_sell = (bt.fills["action"] == "SELL").to_numpy() if len(bt.fills) else np.array([], bool)
    stamps = pd.DatetimeIndex(oos["timestamp"]).as_unit("ns").asi8
    folds = []
    for row in under.folds:
        lo, hi = row["test_start"] - inputs.first, row["test_end"] - inputs.first
        r = returns[lo:hi]
        t_lo = stamps[lo]
        t_hi = stamps[hi] if hi < len(stamps) else np.iinfo(np.int64).max
        folds.append({**row, "sharpe": stats.sharpe(r, ppy), "sortino": stats.sortino(r, ppy),
                      "cum_return": stats.cum_return(r), "max_drawdown": stats.max_drawdown(r),
                      "trades": int(np.count_nonzero(is_sell & (sell_pos >= t_lo) & (sell_pos < t_hi)))})
    sharpes = np.array([f["sharpe"] for f in folds], dtype=np.float64)
    finite = sharpes[np.isfinite(sharpes)]
    metrics["fold_sharpe_mean"] = float(finite.mean()) if finite.size else float("nan")
    metrics["fold_sharpe_std"] = float(finite.std(ddof=1)) if finite.size >= 2 else float("nan")
    metrics["n_folds"] = len(folds)
    metrics["psr"] = float(stats.probabilistic_sharpe_ratio(metrics["sharpe"], 0.0, metrics["n_bars"],
                                                            metrics["skew"], metrics["kurtosis"], ppy))
    metrics["deflated_sharpe"] = float(stats.deflated_sharpe_ratio(metrics["sharpe"], wf.n_trials, metrics["n_bars"],
                                                                   metrics["skew"], metrics["kurtosis"],
                                                                   wf.sharpe_variance_across_trials, ppy))
    metrics["underlying_sharpe"] = under.metrics.get("sharpe")
    metrics["vol_source"] = "implied" if np.any(_source == "implied") else "realised"
    return OptionsWalkForwardResult(metrics=metrics, folds=folds, backtest=bt, underlying=under)
