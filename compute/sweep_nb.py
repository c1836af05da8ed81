"""Numba kernels evaluating a whole grid of backtest configurations in one call.

The bars (open, close, score, segment, session code) are shared and read-only; each
configuration carries its own cut-off table, allowed-session mask and costs. ``evaluate_configs``
is the entry point; configurations run in parallel (``prange`` over blocks of neighbouring
groups) and each keeps only its metric vector: memory is O(configs x metrics + blocks x bars),
never configs x bars.

Fee levels share one pass over the bars. Configurations that differ only in their fee rate
trade at the same bars at the same prices (the position path depends on the score, the
cut-offs, the tradable sessions, the slippage and the holding limit, never on the fee), and
between two fills every one of them holds a position whose equity is a fixed multiple of the
others': a long is qty x close with no cash, a short N x (2 - close / fill) with its borrow
fee proportional to N, flat is cash. So one reference run (fee 0, recorded) gives every bar's
return for every fee level except at the fill bars, and a fee level costs a walk over its
fills (cash, quantities, fees and each trade's P&L exactly as ``simulate_nb`` books them) plus,
per stretch between fills, a constant-time drawdown update and one binary search when the
stretch makes a new high. Figures equal ``simulate_nb`` on each configuration within 1e-12
(sums taken in another order); a group whose reference or fee level leaves the conditions
above (an account wiped out, an entry without cash) runs that configuration alone through
``simulate_nb``. A configuration with no fee sibling runs alone too.

Single runs: within a block each configuration passes its expected-shortfall cut-off on as the
next one's hint: neighbours in a grid differ in one parameter, so their loss tails are alike
and the selection at the end of a run sees a few hundred returns, not every loss.
"""

import math

import numpy as np
from numba import njit, prange

from compute.backtest_nb import (
    FILL_DTYPE,
    N_METRICS,
    SimConfig,
    Trace,
    _finalise_metrics_nb,
    add_return_nb,
    book_entry_nb,
    book_exit_nb,
    _kth_smallest_nb,
    simulate_nb,
)
from compute.stats_nb import expected_shortfall_tail_size_nb

#: Blocks of neighbouring groups per thread (more blocks balance uneven work).
BLOCKS_PER_THREAD = 4
#: The tail hint sits this fraction of the previous configuration's cut-off (a return < 0):
#: a little above it, so the next tail is still inside.
HINT_MARGIN = 0.85


def fee_groups(cutoffs, mask_id, slip_rate, max_hold):
    """(order, starts): configuration indices sorted into groups that share everything but the
    fee rate (cut-off table, session mask, slippage, holding limit); group g is
    ``order[starts[g]:starts[g + 1]]``, its members in grid order."""
    n_cfg = cutoffs.shape[0]
    if n_cfg == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64)
    key = np.column_stack([cutoffs.reshape(n_cfg, -1), mask_id.astype(np.float64),
                           np.asarray(slip_rate, dtype=np.float64), np.asarray(max_hold, dtype=np.float64)])
    # NaN never equals NaN: a key holding one is its own group (runs alone), as it should
    key = np.where(np.isnan(key), np.arange(n_cfg, dtype=np.float64)[:, None] + 0.5, key)
    _, group_of = np.unique(key, axis=0, return_inverse=True)
    group_of = group_of.reshape(-1)
    order = np.argsort(group_of, kind="stable").astype(np.int64)
    counts = np.bincount(group_of)
    starts = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    return order, starts


def evaluate_configs(open_, close, score, segment, session, cutoffs, mask_id, masks, fee_rate, slip_rate,
                     initial_capital, periods_per_year, es_level, n_threads, borrow_rate, max_hold):
    """Metrics of every configuration: float64 (n_configs, N_METRICS).

    cutoffs: (n_configs, n_segments, 4) [long_entry, short_entry, long_exit, short_exit];
    mask_id: int64 (n_configs,) row of ``masks`` (bool, (n_masks, n_session_codes));
    fee_rate, slip_rate: (n_configs,) one-way fractions; n_threads: numba's thread count
    (``numba.get_num_threads()``; only sizes the blocks); borrow_rate: a short's yearly borrow
    fee, a fraction of its notional; max_hold: (n_configs,) holding limits in bars (0 = none).
    Other inputs as ``simulate_nb``.
    """
    fee_rate = np.ascontiguousarray(fee_rate, dtype=np.float64)
    slip_rate = np.ascontiguousarray(slip_rate, dtype=np.float64)
    max_hold = np.ascontiguousarray(max_hold, dtype=np.float64)
    mask_id = np.ascontiguousarray(mask_id, dtype=np.int64)
    order, starts = fee_groups(cutoffs, mask_id, slip_rate, max_hold)
    close_cumsum = np.cumsum(close)
    return sweep_groups_nb(open_, close, score, segment, session, cutoffs, mask_id, masks, fee_rate, slip_rate,
                           float(initial_capital), float(periods_per_year), float(es_level), int(n_threads),
                           float(borrow_rate), max_hold, order, starts, close_cumsum)


@njit(cache=True, parallel=True)
def sweep_groups_nb(open_, close, score, segment, session, cutoffs, mask_id, masks, fee_rate, slip_rate,
                    initial_capital, periods_per_year, es_level, n_threads, borrow_rate, max_hold, order,
                    starts, close_cumsum):
    """``evaluate_configs`` with the groups given (``fee_groups``) and the running sum of the
    closes (the borrow fee of a short held over a stretch of bars)."""
    n_configs = cutoffs.shape[0]
    n = close.shape[0]
    n_groups = starts.shape[0] - 1
    out = np.empty((n_configs, N_METRICS))
    no_trace = Trace(np.empty(0), np.empty(0, dtype=np.int64), np.empty(0, dtype=FILL_DTYPE))
    n_blocks = max(1, min(n_groups, BLOCKS_PER_THREAD * n_threads))
    for b in prange(n_blocks):
        tail = np.empty(2 * n)
        scratch = _group_scratch(n)
        hint = 0.0
        for g in range(b * n_groups // n_blocks, (b + 1) * n_groups // n_blocks):
            lo = starts[g]
            hi = starts[g + 1]
            c0 = order[lo]
            if hi - lo >= 2 and n >= 2:
                members = order[lo:hi]
                _fee_group_nb(open_, close, score, segment, session, cutoffs[c0], masks[mask_id[c0]],
                              slip_rate[c0], max_hold[c0], members, fee_rate, initial_capital, periods_per_year,
                              es_level, borrow_rate, close_cumsum, out, scratch, tail)
                continue
            for i in range(lo, hi):
                c = order[i]
                cfg = SimConfig(fee_rate[c], slip_rate[c], initial_capital, periods_per_year, es_level,
                                borrow_rate, max_hold[c])
                _, cutoff, _ = simulate_nb(open_, close, score, segment, session, cutoffs[c], masks[mask_id[c]],
                                        cfg, tail, hint, out[c], False, no_trace)
                hint = HINT_MARGIN * cutoff if cutoff < 0.0 else 0.0
    return out


@njit(cache=True, nogil=True)
def _group_scratch(n):
    """Per-block work arrays of a fee group over ``n`` bars (allocated once per block)."""
    trace = Trace(np.empty(n), np.empty(n, dtype=np.int64), np.empty(2 * n + 1, dtype=FILL_DTYPE))
    floats = np.empty((9, n + 1))
    ints = np.empty((3, n + 1), dtype=np.int64)
    return trace, floats, ints, np.empty(N_METRICS)


# rows of the scratch arrays
_F_RUNMAX = 0      # per bar: the running maximum of the reference equity within its stretch
_F_PREFMIN = 1     # per bar: the running minimum of the reference equity within its stretch
_F_SUFRATIO = 2    # per bar: min over the rest of the stretch of equity / running maximum
_F_STRETCH_SUM = 3  # per stretch: the sum of the reference equity over its bars
_F_EXIT_PX = 4     # per fill bar: the closing fill's price (0 when none)
_F_ENTRY_PX = 5    # per fill bar: the opening fill's price (0 when none)
_F_TAIL = 6        # the k smallest returns of the bars without fills, ascending
_F_VAR_R = 7       # a fee level's returns at the fill bars
_F_SORT = 8        # a fee level's fill returns below the shared tail, sorted
_I_FILL_BAR = 0    # per fill bar: its index
_I_OLD = 1         # per fill bar: the position before its fills
_I_NEW = 2         # per fill bar: the position after them


@njit(cache=True, nogil=True)
def _fee_group_nb(open_, close, score, segment, session, cutoffs, allowed, slip, max_hold, members, fee_rate,
                  initial_capital, periods_per_year, es_level, borrow_rate, close_cumsum, out, scratch, tail):
    trace, f, ints, ref_metrics = scratch
    equity, position, fills = trace
    n = close.shape[0]
    ref_cfg = SimConfig(0.0, slip, initial_capital, periods_per_year, es_level, borrow_rate, max_hold)
    n_fills, _, _ = simulate_nb(open_, close, score, segment, session, cutoffs, allowed, ref_cfg, tail, 0.0,
                                ref_metrics, True, trace)
    no_trace = Trace(np.empty(0), np.empty(0, dtype=np.int64), np.empty(0, dtype=FILL_DTYPE))

    # --- the shared pass over the reference run
    usable = True
    n_fb = 0
    j = 0
    while j < n_fills:
        bar = fills[j]["bar"]
        old = position[bar - 1]
        ints[_I_FILL_BAR, n_fb] = bar
        ints[_I_OLD, n_fb] = old
        ints[_I_NEW, n_fb] = position[bar]
        f[_F_EXIT_PX, n_fb] = 0.0
        f[_F_ENTRY_PX, n_fb] = 0.0
        if old != 0:
            f[_F_EXIT_PX, n_fb] = fills[j]["price"]
            j += 1
        if j < n_fills and fills[j]["bar"] == bar:
            f[_F_ENTRY_PX, n_fb] = fills[j]["price"]
            j += 1
        n_fb += 1
    sum_r = 0.0
    sum_r2 = 0.0
    sum_r3 = 0.0
    sum_r4 = 0.0
    sum_down2 = 0.0
    n_pos = 0
    n_kept = 0
    bars_in_market = 0
    prev = initial_capital
    next_fb = 0
    stretch = 0
    run_max = 0.0
    run_min = 0.0
    stretch_sum = 0.0
    for t in range(n):
        e = equity[t]
        if not (e > 0.0) or not math.isfinite(e):
            usable = False
            break
        bars_in_market += abs(position[t])
        if next_fb < n_fb and ints[_I_FILL_BAR, next_fb] == t:
            # a new stretch starts at this fill bar
            f[_F_STRETCH_SUM, stretch] = stretch_sum
            stretch += 1
            next_fb += 1
            run_max = e
            run_min = e
            stretch_sum = e
        else:
            if t == 0:
                run_max = e
                run_min = e
                stretch_sum = e
            else:
                run_max = max(run_max, e)
                run_min = min(run_min, e)
                stretch_sum += e
            r = e / prev - 1.0
            sum_r, sum_r2, sum_r3, sum_r4, sum_down2, n_pos = add_return_nb(r, sum_r, sum_r2, sum_r3, sum_r4,
                                                                            sum_down2, n_pos)
            tail[n_kept] = r
            n_kept += 1
        f[_F_RUNMAX, t] = run_max
        f[_F_PREFMIN, t] = run_min
        prev = e
    if not usable:
        for i in range(members.shape[0]):
            c = members[i]
            cfg = SimConfig(fee_rate[c], slip, initial_capital, periods_per_year, es_level, borrow_rate, max_hold)
            simulate_nb(open_, close, score, segment, session, cutoffs, allowed, cfg, tail, 0.0, out[c], False,
                        no_trace)
        return
    f[_F_STRETCH_SUM, stretch] = stretch_sum
    n_stretches = stretch + 1
    # suffix minimum of equity / running max within each stretch (backwards)
    ratio_min = np.inf
    next_start = n
    s_idx = n_fb  # stretch index of bar t, counted down
    for t in range(n - 1, -1, -1):
        if t + 1 == next_start:
            ratio_min = np.inf
        ratio_min = min(ratio_min, equity[t] / f[_F_RUNMAX, t])
        f[_F_SUFRATIO, t] = ratio_min
        if s_idx > 0 and ints[_I_FILL_BAR, s_idx - 1] == t:
            next_start = t
            s_idx -= 1
    # the k smallest no-fill returns, ascending
    k_tail = expected_shortfall_tail_size_nb(n, es_level)
    n_shared_tail = 0
    shared_cut = np.inf
    if k_tail > 0:
        if n_kept > k_tail:
            shared_cut = _kth_smallest_nb(tail, n, n_kept, k_tail)
            for i in range(n_kept):
                v = tail[i]
                if v < shared_cut:
                    f[_F_TAIL, n_shared_tail] = v
                    n_shared_tail += 1
            while n_shared_tail < k_tail:
                f[_F_TAIL, n_shared_tail] = shared_cut
                n_shared_tail += 1
        else:
            for i in range(n_kept):
                f[_F_TAIL, i] = tail[i]
            n_shared_tail = n_kept
        f[_F_TAIL, :n_shared_tail].sort()

    borrow_per_bar = borrow_rate / periods_per_year
    for i in range(members.shape[0]):
        c = members[i]
        fee = fee_rate[c]
        ok = _fee_level_nb(close, equity, f, ints, n_fb, n_stretches, fee, initial_capital, periods_per_year,
                           borrow_per_bar, close_cumsum, k_tail, n_shared_tail, sum_r, sum_r2, sum_r3, sum_r4,
                           sum_down2, n_pos, bars_in_market, out[c])
        if not ok:
            cfg = SimConfig(fee, slip, initial_capital, periods_per_year, es_level, borrow_rate, max_hold)
            simulate_nb(open_, close, score, segment, session, cutoffs, allowed, cfg, tail, 0.0, out[c], False,
                        no_trace)


@njit(cache=True, nogil=True, inline="always")
def _stretch_drawdown(f, a, b, k, peak, worst):
    """Drawdown over the stretch of bars [a, b] whose equity is k x the reference's, given the
    peak before it: (new peak, new worst drawdown)."""
    p = peak / k
    top = f[_F_RUNMAX, b]
    if p >= top:
        ratio = f[_F_PREFMIN, b] / p
    else:
        # the first bar whose running max exceeds the old peak
        lo = a
        hi = b
        while lo < hi:
            mid = (lo + hi) >> 1
            if f[_F_RUNMAX, mid] > p:
                hi = mid
            else:
                lo = mid + 1
        ratio = f[_F_SUFRATIO, lo]
        if lo > a:
            ratio = min(ratio, f[_F_PREFMIN, lo - 1] / p)
        peak = k * top
    dd = ratio - 1.0
    if dd < worst:
        worst = dd
    return peak, worst


@njit(cache=True, nogil=True)
def _fee_level_nb(close, equity, f, ints, n_fb, n_stretches, fee_rate, initial_capital, periods_per_year,
                  borrow_per_bar, close_cumsum, k_tail, n_shared_tail, sum_r, sum_r2, sum_r3, sum_r4, sum_down2,
                  n_pos, bars_in_market, metrics_out):
    """One fee level of a group: walk its fills, book its cash as ``simulate_nb`` does, and
    combine with the shared no-fill figures. False when it leaves the shared path (an entry
    without cash, an equity at or below zero): then it must run alone."""
    n = close.shape[0]
    cash = initial_capital
    qty = 0.0
    entry_price = 0.0
    entry_fee = 0.0
    borrow_paid = 0.0
    k = 1.0  # this level's equity / the reference's over the current stretch
    a = 0    # the current stretch's first bar
    peak = initial_capital
    worst = 0.0
    sum_equity = 0.0
    traded_notional = 0.0
    trades = 0
    wins = 0
    n_var = 0
    for s in range(n_fb):
        t = ints[_I_FILL_BAR, s]
        b = t - 1
        peak, worst = _stretch_drawdown(f, a, b, k, peak, worst)
        sum_equity += k * f[_F_STRETCH_SUM, s]
        if qty < 0.0:
            borrow = -qty * borrow_per_bar * (close_cumsum[b] - (close_cumsum[a - 1] if a > 0 else 0.0))
            cash -= borrow
            borrow_paid += borrow
        prev_equity = k * equity[b]
        old = ints[_I_OLD, s]
        new = ints[_I_NEW, s]
        if old != 0:
            cash, notional, pnl = book_exit_nb(cash, qty, f[_F_EXIT_PX, s], fee_rate, entry_price, entry_fee,
                                               borrow_paid)
            trades += 1
            wins += pnl > 0.0
            traded_notional += notional
            qty = 0.0
        if new != 0:
            if not (cash > 0.0):
                return False
            fill = f[_F_ENTRY_PX, s]
            cash, qty, notional, fee = book_entry_nb(cash, new, fill, fee_rate)
            traded_notional += notional
            entry_price = fill
            entry_fee = fee
            borrow_paid = 0.0
        e = cash + qty * close[t]
        if qty < 0.0:
            e -= -qty * close[t] * borrow_per_bar
        if not (e > 0.0) or not math.isfinite(e):
            return False
        k = e / equity[t]
        r = e / prev_equity - 1.0
        f[_F_VAR_R, n_var] = r
        n_var += 1
        sum_r, sum_r2, sum_r3, sum_r4, sum_down2, n_pos = add_return_nb(r, sum_r, sum_r2, sum_r3, sum_r4, sum_down2,
                                                                        n_pos)
        a = t
    b = n - 1
    peak, worst = _stretch_drawdown(f, a, b, k, peak, worst)
    sum_equity += k * f[_F_STRETCH_SUM, n_stretches - 1]
    if qty < 0.0:
        borrow = -qty * borrow_per_bar * (close_cumsum[b] - (close_cumsum[a - 1] if a > 0 else 0.0))
        cash -= borrow
        borrow_paid += borrow
    final_equity = k * equity[n - 1]

    # expected shortfall: the k smallest of the shared no-fill returns and this level's own
    expected_shortfall = np.nan
    if k_tail > 0:
        bound = f[_F_TAIL, n_shared_tail - 1] if n_shared_tail >= k_tail else np.inf
        m = 0
        for i in range(n_var):
            v = f[_F_VAR_R, i]
            if v < bound:
                # insertion into the sorted run f[_F_SORT, :m]
                j = m
                while j > 0 and f[_F_SORT, j - 1] > v:
                    f[_F_SORT, j] = f[_F_SORT, j - 1]
                    j -= 1
                f[_F_SORT, j] = v
                m += 1
        total = 0.0
        ia = 0
        ib = 0
        for _ in range(k_tail):
            if ib < m and (ia >= n_shared_tail or f[_F_SORT, ib] < f[_F_TAIL, ia]):
                total += f[_F_SORT, ib]
                ib += 1
            else:
                total += f[_F_TAIL, ia]
                ia += 1
        expected_shortfall = total / k_tail
    _finalise_metrics_nb(
        metrics_out, n, sum_r, sum_r2, sum_r3, sum_r4, sum_down2, final_equity, initial_capital, worst,
        trades, wins, traded_notional / (sum_equity / n), bars_in_market, expected_shortfall, periods_per_year,
    )
    return True
