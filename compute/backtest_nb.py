"""Numba kernel of the signal backtest: one configuration over one bar series.

Trading rules (docs/spec/design.md "Backtests"):

- The score of bar t (a model probability in [0, 1], known at bar t's close) sets the
  desired position; it is executed at bar t + 1's open (next-bar fills), and only if bar
  t + 1 is tradable (its session code is allowed, e.g. an allowed hour). Otherwise the
  position is held and the decision is re-taken on the next bar's score.
- Cut-offs per segment (walk-forward fold): enter long when score >= long_entry (and
  > short_entry), enter short when score <= short_entry (and < long_entry); a long is
  kept while score >= long_exit, a short while score <= short_exit (exit cut-offs give
  hysteresis; equal to the entry cut-offs they make the position a pure function of the
  score). Long-only configurations use short cut-offs of -inf; a NaN score means flat.
- Fully invested, fractional quantities, never levered: fill prices carry slippage against
  the trader (buy at open * (1 + slip), sell at open * (1 - slip)) and fees are fee_rate *
  traded notional per side, paid in cash. An entry trades the notional N = cash / (1 + fee)
  so that N plus its fee is exactly the cash there is: a long buys N / fill units and
  leaves cash at 0 (never below), a short sells N / fill units (proceeds held as
  collateral, gross exposure 1x equity: the margin rule). A reversal is two fills (close,
  then open the other side with the cash the close left).
- Shorts pay a borrow fee: ``borrow_rate`` (a yearly fraction of the short's notional) /
  periods_per_year at every close the short is held through, on that close's notional;
  it is part of the trade's P&L.
- Holding limit (``max_hold`` H > 0 bars; 0 = none): a position entered at bar e's open is
  closed at bar e + H's open at the latest (decided at bar e + H - 1's close, after it was
  held through H closes), whatever the score. After such an exit the same side is entered
  again only on a *fresh* entry signal: its entry condition must have been false at some
  decision since (at the exit decision itself or later); the other side may be entered at
  once. A reversal due at the limit happens as usual.
- A position still open after the last bar is not sold: it is marked at the last close
  with no exit fee or slippage (the open trade, with its unrealised P&L), and it is not in
  the closed-trade count or the win rate.
- Equity is marked at every close along the real price path; bar returns are
  equity_t / equity_{t-1} - 1 with equity_{-1} = initial capital.

All metrics are accumulated in one pass over the bars (plus one selection for the expected
shortfall over a per-call scratch buffer of 2 x n returns, narrowed by a hint from a similar
configuration so that it sees a few times k values, not every loss), so the sweep kernel can call
the very same function for thousands of configurations with memory that does not grow with
the grid; the single backtest (and a fee group's reference run in the sweep) additionally
records per-bar equity, return and position, the fills and the running sums.
The hot loop avoids data-dependent branches where it can (noisy scores make them
unpredictable): that is what keeps a configuration within a few times a bare loop.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from compute.stats_nb import expected_shortfall_tail_size_nb

# Layout of the metric vector returned per configuration.
METRIC_NAMES = (
    "sharpe",
    "sortino",
    "cum_return",
    "annual_return",
    "annual_volatility",
    "max_drawdown",
    "calmar",
    "win_rate",
    "trades",
    "trades_per_year",
    "es_95",
    "turnover",
    "exposure",
    "final_equity",
    "n_bars",
    "skew",
    "kurtosis",
)
N_METRICS = len(METRIC_NAMES)
M_SHARPE = 0
M_SORTINO = 1
M_CUM_RETURN = 2
M_ANNUAL_RETURN = 3
M_ANNUAL_VOL = 4
M_MAX_DRAWDOWN = 5
M_CALMAR = 6
M_WIN_RATE = 7
M_TRADES = 8
M_TRADES_PER_YEAR = 9
M_ES = 10
M_TURNOVER = 11
M_EXPOSURE = 12
M_FINAL_EQUITY = 13
M_N_BARS = 14
M_SKEW = 15
M_KURTOSIS = 16

# Columns of the per-segment cut-off table.
CUT_LONG_ENTRY = 0
CUT_SHORT_ENTRY = 1
CUT_LONG_EXIT = 2
CUT_SHORT_EXIT = 3

FILL_BUY = 1
FILL_SELL = -1


@njit(cache=True, nogil=True, inline="always")
def target_position_nb(score, position, long_entry, short_entry, long_exit, short_exit):
    """Desired position (-1, 0, +1) after seeing ``score`` while holding ``position``.

    Written with bitwise ops on booleans instead of an if-chain: scores are noisy, so
    branches on them would be mispredicted on a large share of bars.
    """
    go_long = (score >= long_entry) & (score > short_entry)
    go_short = (score <= short_entry) & (score < long_entry)
    keep_long = (position == 1) & (score >= long_exit)
    keep_short = (position == -1) & (score <= short_exit)
    entry = np.int64(go_long) - np.int64(go_short)
    keep = np.int64(keep_long) - np.int64(keep_short)
    no_entry = 1 - np.int64(go_long) - np.int64(go_short)
    return entry + no_entry * keep


@njit(cache=True, nogil=True, inline="always")
def hold_limit_nb(score, position, desired, held, max_hold, blocked, long_entry, short_entry):
    """(desired position, blocked side) under a holding limit (see the module docstring).

    ``held``: closes the current position has been held through (this bar's included);
    ``blocked``: the side (+1/-1) closed by the limit and not re-armed yet, else 0.
    """
    go_long = (score >= long_entry) & (score > short_entry)
    go_short = (score <= short_entry) & (score < long_entry)
    if (blocked == 1 and not go_long) or (blocked == -1 and not go_short):
        blocked = 0  # the entry signal lapsed: the next one is fresh
    if position != 0 and desired == position and held >= max_hold:
        desired = 0
        still = go_long if position == 1 else go_short
        blocked = position if still else 0
    if desired != 0 and desired == blocked:
        desired = 0
    return desired, blocked


@njit(cache=True, nogil=True, inline="always")
def _swap_nb(a, i, j):
    tmp = a[i]
    a[i] = a[j]
    a[j] = tmp


@njit(cache=True, nogil=True)
def select_nb(a, lo, count, k):
    """The k-th smallest (1-based) of a[lo:lo + count], reordering that range in place
    (quickselect with a median-of-three pivot; no NaN in the range)."""
    kk = lo + k - 1
    left = lo
    right = lo + count - 1
    while True:
        if right <= left + 1:
            if right == left + 1 and a[right] < a[left]:
                _swap_nb(a, left, right)
            return a[kk]
        _swap_nb(a, (left + right) >> 1, left + 1)
        if a[left] > a[right]:
            _swap_nb(a, left, right)
        if a[left + 1] > a[right]:
            _swap_nb(a, left + 1, right)
        if a[left] > a[left + 1]:
            _swap_nb(a, left, left + 1)
        i = left + 1
        j = right
        pivot = a[left + 1]
        while True:
            i += 1
            while a[i] < pivot:
                i += 1
            j -= 1
            while a[j] > pivot:
                j -= 1
            if j < i:
                break
            _swap_nb(a, i, j)
        a[left + 1] = a[j]
        a[j] = pivot
        if j >= kk:
            right = j - 1
        if j <= kk:
            left = i


#: Values sampled to choose a pre-filter pivot before selecting in a long tail buffer.
TAIL_SAMPLE = 64


@njit(cache=True, nogil=True)
def _kth_smallest_nb(buffer, n, count, k):
    """k-th smallest of buffer[:count] (left untouched, in time order), with buffer[n:2n] as
    scratch. A long buffer is first cut down to the values at or below a pivot sampled well
    above the k/count quantile (one branch-free pass), so the selection sees ~2k values."""
    if count >= 4 * TAIL_SAMPLE and 4 * k <= count:
        step = count // TAIL_SAMPLE
        for i in range(TAIL_SAMPLE):
            buffer[n + i] = buffer[i * step]
        p = k / count
        expected = TAIL_SAMPLE * p
        rank = int(expected + 2.5 * math.sqrt(expected * (1.0 - p))) + 2
        if rank < TAIL_SAMPLE:
            pivot = select_nb(buffer, n, TAIL_SAMPLE, rank)
            m = 0
            for i in range(count):
                v = buffer[i]
                buffer[n + m] = v
                m += v <= pivot
            if m >= k:
                return select_nb(buffer, n, m, k)
    for i in range(count):
        buffer[n + i] = buffer[i]
    return select_nb(buffer, n, count, k)


@njit(cache=True, nogil=True)
def _tail_total_nb(buffer, count, cutoff, k):
    """Sum of the k smallest values given the k-th smallest (``cutoff``): the values below it
    in buffer order (time order, so the sum does not depend on how they were found), plus
    ``cutoff`` for each tie."""
    total = 0.0
    below = 0
    for i in range(count):
        v = buffer[i]
        is_below = v < cutoff
        total += v if is_below else 0.0
        below += is_below
    return total + (k - below) * cutoff


@njit(cache=True, nogil=True, inline="always")
def add_return_nb(r, sum_r, sum_r2, sum_r3, sum_r4, sum_down2, n_pos):
    """The running sums of a return series with one more return ``r``: r, r^2, r^3, r^4, the
    downside square and the count of gains (Sharpe, Sortino, skew, kurtosis)."""
    r2 = r * r
    down = min(r, 0.0)
    return (sum_r + r, sum_r2 + r2, sum_r3 + r2 * r, sum_r4 + r2 * r2, sum_down2 + down * down,
            n_pos + (r > 0.0))


@njit(cache=True, nogil=True, inline="always")
def book_exit_nb(cash, qty, fill, fee_rate, entry_price, entry_fee, borrow_paid):
    """Close ``qty`` (signed) at ``fill``: (cash after, traded notional, the trade's P&L net of
    both sides' fees and the borrow paid)."""
    notional = abs(qty) * fill
    fee = notional * fee_rate
    cash += qty * fill - fee
    pnl = qty * (fill - entry_price) - entry_fee - fee - borrow_paid
    return cash, notional, pnl


@njit(cache=True, nogil=True, inline="always")
def book_entry_nb(cash, side, fill, fee_rate):
    """Open ``side`` (+1/-1) at ``fill`` with all the cash: (cash after, signed quantity,
    traded notional, fee). The notional and its fee spend exactly the cash there is: no
    leverage."""
    notional = cash / (1.0 + fee_rate)
    qty = side * notional / fill
    fee = notional * fee_rate
    cash -= qty * fill + fee
    if side > 0:
        cash = 0.0 if cash < 0.0 else cash  # rounding never leaves -1e-12
    return cash, qty, notional, fee


class SimConfig(NamedTuple):
    """One configuration's costs and conventions (every field a float: one numba type)."""

    fee_rate: float          # fee per side, a fraction of traded notional (bps / 1e4)
    slip_rate: float         # slippage per side, a fraction of the price (bps / 1e4)
    initial_capital: float
    periods_per_year: float
    es_level: float          # expected shortfall level, e.g. 0.95
    borrow_rate: float = 0.0  # yearly borrow fee of a short, a fraction of its notional (bps / 1e4)
    max_hold: float = 0.0     # holding limit in bars (a whole number; 0 = none)


def sim_config(fees_bps: float, slippage_bps: float, initial_capital: float,
               periods_per_year: float, es_level: float, borrow_bps: float = 0.0,
               max_hold: int = 0) -> SimConfig:
    """A ``SimConfig`` from basis points, with every field a float."""
    return SimConfig(float(fees_bps) * 1e-4, float(slippage_bps) * 1e-4, float(initial_capital),
                     float(periods_per_year), float(es_level), float(borrow_bps) * 1e-4, float(max_hold))


#: One fill of a recorded run.
FILL_DTYPE = np.dtype([("bar", np.int64), ("side", np.int64), ("price", np.float64),
                       ("qty", np.float64), ("pnl", np.float64)])


class Trace(NamedTuple):
    """What a recorded run writes: equity, return and position per bar, its fills, and the
    running sums its metrics came from (``SUM_NAMES``)."""

    equity: np.ndarray       # float64 (n,)
    position: np.ndarray     # int64 (n,)
    fills: np.ndarray        # FILL_DTYPE (2 n + 1,)
    returns: np.ndarray      # float64 (n,)
    sums: np.ndarray         # float64 (len(SUM_NAMES),)


#: The sums a recorded run leaves in ``Trace.sums``: of the returns, their powers, the downside
#: squares, the count of gains, and the bars in the market.
SUM_NAMES = ("r", "r2", "r3", "r4", "down2", "n_pos", "bars_in_market")


def new_trace(n: int) -> Trace:
    """Output arrays for a recorded run over ``n`` bars."""
    return Trace(np.empty(n), np.empty(n, dtype=np.int64), np.empty(2 * n + 1, dtype=FILL_DTYPE), np.empty(n),
                 np.empty(len(SUM_NAMES)))


#: The trace argument of a run that records nothing (the sweep's).
NO_TRACE = Trace(np.empty(0), np.empty(0, dtype=np.int64), np.empty(0, dtype=FILL_DTYPE), np.empty(0), np.empty(0))


@njit(cache=True, nogil=True, inline="always")
def _record_fill(fills, k, bar, side, price, qty, pnl):
    fills[k]["bar"] = bar
    fills[k]["side"] = side
    fills[k]["price"] = price
    fills[k]["qty"] = qty
    fills[k]["pnl"] = pnl


@njit(cache=True, nogil=True)
def simulate_nb(open_, close, score, segment, session, cutoffs, allowed, cfg, tail_buffer, tail_hint,
                metrics_out, record, trace):
    """Run one configuration; write ``N_METRICS`` figures to ``metrics_out``.

    open_, close, score: float64 (n,); segment: int64 (n,) row of ``cutoffs`` per bar;
    session: int64 (n,) index into ``allowed`` (bool), e.g. the hour of the bar;
    cutoffs: float64 (n_segments, 4) [long_entry, short_entry, long_exit, short_exit];
    cfg: a ``SimConfig`` (fee and slippage rates per side as fractions, initial capital,
    periods per year, expected-shortfall level); tail_buffer: float64 scratch of 2 * n
    entries (the returns that the expected shortfall is selected from).
    tail_hint: a return at or above this run's expected-shortfall cut-off (the k-th smallest
    return), e.g. a little above a similar configuration's; only returns below it are kept
    for the selection. 0.0 keeps every negative return. A hint that proves too low costs a
    second pass over the bars; it never changes the result.
    When ``record`` is true, per-bar equity, return and position, the fills (``FILL_DTYPE``: bar
    index, +1 buy / -1 sell, price, positive quantity, realised P&L) and the sums are written to
    ``trace`` (``new_trace(n)``); otherwise ``trace`` may be ``NO_TRACE``. Returns (number of
    fills, the tail cut-off found, the borrow fees paid by the position still open at the
    end) -- the cut-off is the hint for the next, similar configuration.
    """
    fee_rate, slip_rate, initial_capital, periods_per_year, es_level, borrow_rate, max_hold = cfg
    borrow_per_bar = borrow_rate / periods_per_year
    equity_out, position_out, fills, returns_out, sums_out = trace
    n = close.shape[0]
    k_tail = expected_shortfall_tail_size_nb(n, es_level)
    hint = tail_hint if tail_hint < 0.0 else 0.0  # (NaN too)
    while True:
        n_kept = 0
        n_pos = 0

        cash = initial_capital
        qty = 0.0
        position = 0
        entry_price = 0.0
        entry_fee = 0.0
        borrow_paid = 0.0
        desired = 0
        entry_bar = 0
        blocked = 0
        prev_equity = initial_capital
        peak = initial_capital
        worst_dd = 0.0
        dd_floor = 1.0
        sum_r = 0.0
        sum_r2 = 0.0
        sum_down2 = 0.0
        sum_r3 = 0.0
        sum_r4 = 0.0
        trades = 0
        wins = 0
        traded_notional = 0.0
        sum_equity = 0.0
        bars_in_market = 0
        n_fills = 0

        for t in range(n):
            if t > 0 and desired != position and allowed[session[t]]:
                px = open_[t]
                if position != 0:
                    fill = px * (1.0 - slip_rate * position)
                    cash, notional, pnl = book_exit_nb(cash, qty, fill, fee_rate, entry_price, entry_fee, borrow_paid)
                    trades += 1
                    wins += pnl > 0.0
                    traded_notional += notional
                    if record:
                        _record_fill(fills, n_fills, t, -position, fill, abs(qty), pnl)
                        n_fills += 1
                    qty = 0.0
                    position = 0
                if desired != 0 and cash > 0.0:
                    fill = px * (1.0 + slip_rate * desired)
                    cash, qty, notional, fee = book_entry_nb(cash, desired, fill, fee_rate)
                    traded_notional += notional
                    position = desired
                    entry_bar = t
                    entry_price = fill
                    entry_fee = fee
                    borrow_paid = 0.0
                    if record:
                        _record_fill(fills, n_fills, t, desired, fill, abs(qty), 0.0)
                        n_fills += 1

            # a short pays its borrow fee on this close's notional (qty < 0 only)
            borrow = max(-qty, 0.0) * close[t] * borrow_per_bar
            cash -= borrow
            borrow_paid += borrow
            bars_in_market += abs(position)
            equity = cash + qty * close[t]
            r = equity / prev_equity - 1.0
            prev_equity = equity
            sum_equity += equity
            sum_r, sum_r2, sum_r3, sum_r4, sum_down2, n_pos = add_return_nb(r, sum_r, sum_r2, sum_r3, sum_r4,
                                                                            sum_down2, n_pos)
            peak = max(peak, equity)
            # drawdown = equity / peak - 1; only divide when a new worst is possible
            if equity < peak * dd_floor:
                dd = equity / peak - 1.0
                if dd < worst_dd:
                    worst_dd = dd
                    dd_floor = 1.0 + worst_dd
            # keep the returns below the hint (a branch-free store) so the expected shortfall
            # is one selection at the end instead of work per bar
            tail_buffer[n_kept] = r
            n_kept += r < hint
            if record:
                equity_out[t] = equity
                returns_out[t] = r
                position_out[t] = position

            seg = segment[t]
            desired = target_position_nb(
                score[t],
                position,
                cutoffs[seg, CUT_LONG_ENTRY],
                cutoffs[seg, CUT_SHORT_ENTRY],
                cutoffs[seg, CUT_LONG_EXIT],
                cutoffs[seg, CUT_SHORT_EXIT],
            )
            if max_hold > 0.0:  # loop-invariant: predicted, free without a limit
                desired, blocked = hold_limit_nb(score[t], position, desired, t - entry_bar + 1, max_hold,
                                                 blocked, cutoffs[seg, CUT_LONG_ENTRY], cutoffs[seg, CUT_SHORT_ENTRY])

        # the k smallest returns: below the hint, or every negative and then zeros, or
        # (a return series with under k non-positive bars) from every return
        if k_tail <= 0:
            cutoff = np.nan
            expected_shortfall = np.nan
            break
        if n_kept >= k_tail:
            cutoff = _kth_smallest_nb(tail_buffer, n, n_kept, k_tail)
            expected_shortfall = _tail_total_nb(tail_buffer, n_kept, cutoff, k_tail) / k_tail
            break
        if hint == 0.0 and n - n_pos >= k_tail:
            cutoff = 0.0
            expected_shortfall = _tail_total_nb(tail_buffer, n_kept, cutoff, k_tail) / k_tail
            break
        if hint > 0.0:
            # every return kept and still under k: NaN returns (a wiped-out account) are
            # missing observations
            cutoff = np.nan
            expected_shortfall = _tail_total_nb(tail_buffer, n_kept, np.inf, n_kept) / n_kept if n_kept else np.nan
            break
        hint = 0.0 if hint < 0.0 else np.inf

    if record:
        sums_out[0] = sum_r
        sums_out[1] = sum_r2
        sums_out[2] = sum_r3
        sums_out[3] = sum_r4
        sums_out[4] = sum_down2
        sums_out[5] = n_pos
        sums_out[6] = bars_in_market
    _finalise_metrics_nb(
        metrics_out, n, sum_r, sum_r2, sum_r3, sum_r4, sum_down2, prev_equity, initial_capital, worst_dd,
        trades, wins, traded_notional / (sum_equity / n) if n > 0 else np.nan, bars_in_market,
        expected_shortfall, periods_per_year,
    )
    return n_fills, cutoff, borrow_paid


@njit(cache=True, nogil=True)
def _finalise_metrics_nb(
    out, n, sum_r, sum_r2, sum_r3, sum_r4, sum_down2, final_equity, initial_capital, worst_dd,
    trades, wins, turnover, bars_in_market, expected_shortfall, periods_per_year,
):
    years = n / periods_per_year if n > 0 else np.nan
    growth = final_equity / initial_capital
    out[M_CUM_RETURN] = growth - 1.0
    if n == 0:
        out[M_ANNUAL_RETURN] = np.nan
    elif growth <= 0.0:
        out[M_ANNUAL_RETURN] = -1.0
    else:
        out[M_ANNUAL_RETURN] = growth ** (periods_per_year / n) - 1.0
    sqrt_ppy = math.sqrt(periods_per_year)
    if n >= 2:
        mean = sum_r / n
        var = (sum_r2 - sum_r * mean) / (n - 1)
        sd = math.sqrt(var) if var > 0.0 else 0.0
        out[M_ANNUAL_VOL] = sd * sqrt_ppy
        out[M_SHARPE] = mean / sd * sqrt_ppy if sd > 0.0 else np.nan
        down = math.sqrt(sum_down2 / n) * sqrt_ppy
        annual_mean = mean * periods_per_year
        if down > 0.0:
            out[M_SORTINO] = annual_mean / down
        elif annual_mean > 0.0:
            out[M_SORTINO] = np.inf
        else:
            out[M_SORTINO] = np.nan
    else:
        out[M_ANNUAL_VOL] = np.nan
        out[M_SHARPE] = np.nan
        out[M_SORTINO] = np.nan
    out[M_MAX_DRAWDOWN] = worst_dd
    out[M_CALMAR] = out[M_ANNUAL_RETURN] / -worst_dd if worst_dd < 0.0 else np.nan
    out[M_WIN_RATE] = wins / trades if trades > 0 else np.nan
    out[M_TRADES] = trades
    out[M_TRADES_PER_YEAR] = trades / years
    out[M_ES] = expected_shortfall
    out[M_TURNOVER] = turnover / years
    out[M_EXPOSURE] = bars_in_market / n if n > 0 else np.nan
    out[M_FINAL_EQUITY] = final_equity
    out[M_N_BARS] = n
    # population skewness and (non-excess) kurtosis from raw power sums, for the
    # probabilistic / deflated Sharpe ratio
    out[M_SKEW] = np.nan
    out[M_KURTOSIS] = np.nan
    if n >= 2:
        mu = sum_r / n
        e2 = sum_r2 / n
        e3 = sum_r3 / n
        e4 = sum_r4 / n
        m2 = e2 - mu * mu
        if m2 > 0.0:
            m3 = e3 - 3.0 * mu * e2 + 2.0 * mu * mu * mu
            m4 = e4 - 4.0 * mu * e3 + 6.0 * mu * mu * e2 - 3.0 * mu * mu * mu * mu
            out[M_SKEW] = m3 / m2 ** 1.5
            out[M_KURTOSIS] = m4 / (m2 * m2)
