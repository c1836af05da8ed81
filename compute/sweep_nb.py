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
return for every fee level except at the fill bars. The fee levels are then booked side by side
in one walk over the fills (cash, quantities, fees and each trade's P&L as ``simulate_nb``
books them), with, per stretch between fills, a constant-time drawdown update (a short search
when the stretch makes a new high) and, at the end, each level's k smallest returns merged from
the shared tail and its own. Figures equal ``simulate_nb`` on each configuration to a relative
1e-12 (absolute for figures near zero: sums taken in another order); a group whose reference
or fee level leaves the conditions above (an account wiped out, an entry without cash) runs
that configuration alone through ``simulate_nb``. A configuration with no fee sibling runs
alone too.

Single runs: within a block each configuration passes its expected-shortfall cut-off on as the
next one's hint: neighbours in a grid differ in one parameter, so their loss tails are alike
and the selection at the end of a run sees a few hundred returns, not every loss.
"""


import numpy as np
from numba import njit, prange

from compute.backtest_nb import (
    SUM_NAMES,
    FILL_DTYPE,
    N_METRICS,
    SimConfig,
    Trace,
    _finalise_metrics_nb,
    add_return_nb,
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
    has_nan = np.isnan(key).any(axis=1)
    key = np.column_stack([np.nan_to_num(key, nan=0.0, posinf=np.inf, neginf=-np.inf),
                           np.where(has_nan, np.arange(n_cfg), -1).astype(np.float64)])
    # rows sorted by every column (a stable sort: members stay in grid order), groups where a row
    # differs from the one before
    order = np.lexsort(key.T[::-1]).astype(np.int64)
    ranked = key[order]
    new_group = np.ones(n_cfg, dtype=bool)
    new_group[1:] = np.any(ranked[1:] != ranked[:-1], axis=1)
    starts = np.append(np.flatnonzero(new_group), n_cfg).astype(np.int64)
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
    no_trace = Trace(np.empty(0), np.empty(0, dtype=np.int64), np.empty(0, dtype=FILL_DTYPE), np.empty(0),
                     np.empty(0))
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
                cutoff = _fee_group_nb(open_, close, score, segment, session, cutoffs[c0], masks[mask_id[c0]],
                                       slip_rate[c0], max_hold[c0], members, fee_rate, initial_capital,
                                       periods_per_year, es_level, borrow_rate, close_cumsum, out, scratch, tail,
                                       hint, no_trace)
                hint = HINT_MARGIN * cutoff if cutoff < 0.0 else 0.0
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
    trace = Trace(np.empty(n), np.empty(n, dtype=np.int64), np.empty(2 * n + 1, dtype=FILL_DTYPE), np.empty(n),
                  np.empty(len(SUM_NAMES)))
    floats = np.empty((11, n + 1))
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
_F_INV_EQUITY = 9  # per fill bar: 1 / the reference equity at its close
_F_INV_ENTRY = 10  # per fill bar: 1 / the opening fill's price
_I_FILL_BAR = 0    # per fill bar: its index
_I_OLD = 1         # per fill bar: the position before its fills
_I_NEW = 2         # per fill bar: the position after them


@njit(cache=True, nogil=True)
def _fee_group_nb(open_, close, score, segment, session, cutoffs, allowed, slip, max_hold, members, fee_rate,
                  initial_capital, periods_per_year, es_level, borrow_rate, close_cumsum, out, scratch, tail,
                  tail_hint, no_trace):
    """Every fee level of one group (see the module docstring); returns the reference run's
    expected-shortfall cut-off (the hint for the next group). ``no_trace``: the empty trace of
    the runs that record nothing (built once per call, not per group)."""
    trace, f, ints, ref_metrics = scratch
    equity, position, fills, returns, sums = trace
    n = close.shape[0]
    ref_cfg = SimConfig(0.0, slip, initial_capital, periods_per_year, es_level, borrow_rate, max_hold)
    n_fills, ref_cutoff, _ = simulate_nb(open_, close, score, segment, session, cutoffs, allowed, ref_cfg, tail,
                                         tail_hint, ref_metrics, True, trace)

    # --- the fill bars, and the reference's sums without them
    sum_r, sum_r2, sum_r3, sum_r4, sum_down2 = sums[0], sums[1], sums[2], sums[3], sums[4]
    n_pos = int(sums[5])
    bars_in_market = int(sums[6])
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
            f[_F_INV_ENTRY, n_fb] = 1.0 / fills[j]["price"]
            j += 1
        f[_F_INV_EQUITY, n_fb] = 1.0 / equity[bar]
        r = returns[bar]
        r2 = r * r
        down = min(r, 0.0)
        sum_r -= r
        sum_r2 -= r2
        sum_r3 -= r2 * r
        sum_r4 -= r2 * r2
        sum_down2 -= down * down
        n_pos -= r > 0.0
        n_fb += 1

    # --- per stretch between fills (bars [a, b]): the running max and min of the reference
    # equity, its sum, and backwards the lowest equity / running max from each bar on; the
    # no-fill returns below a hint (a little above the reference's own tail cut-off: the k
    # smallest no-fill returns are at or above it)
    keep_below = HINT_MARGIN * ref_cutoff if ref_cutoff < 0.0 else np.inf
    usable = True
    n_kept = 0
    a = 0
    for s in range(n_fb + 1):
        b = ints[_I_FILL_BAR, s] - 1 if s < n_fb else n - 1
        e = equity[a]
        usable &= (e > 0.0) & (e < np.inf)
        run_max = e
        run_min = e
        stretch_sum = e
        f[_F_RUNMAX, a] = e
        f[_F_PREFMIN, a] = e
        if s == 0:  # bar 0 is not a fill bar
            r = returns[0]
            tail[n_kept] = r
            n_kept += r < keep_below
        for t in range(a + 1, b + 1):
            e = equity[t]
            usable &= (e > 0.0) & (e < np.inf)
            run_max = max(run_max, e)
            run_min = min(run_min, e)
            stretch_sum += e
            f[_F_RUNMAX, t] = run_max
            f[_F_PREFMIN, t] = run_min
            r = returns[t]
            tail[n_kept] = r
            n_kept += r < keep_below
        f[_F_STRETCH_SUM, s] = stretch_sum
        ratio_min = np.inf
        for t in range(b, a - 1, -1):
            # divide only when the ratio can be a new minimum
            if equity[t] < ratio_min * f[_F_RUNMAX, t]:
                ratio_min = equity[t] / f[_F_RUNMAX, t]
            f[_F_SUFRATIO, t] = ratio_min
        a = b + 1
    if not usable:
        for i in range(members.shape[0]):
            c = members[i]
            cfg = SimConfig(fee_rate[c], slip, initial_capital, periods_per_year, es_level, borrow_rate, max_hold)
            simulate_nb(open_, close, score, segment, session, cutoffs, allowed, cfg, tail, 0.0, out[c], False,
                        no_trace)
        return ref_cutoff
    # the k smallest no-fill returns, ascending
    k_tail = expected_shortfall_tail_size_nb(n, es_level)
    if n_kept < k_tail and keep_below < np.inf:
        # the hint kept too few: every no-fill return
        n_kept = 0
        a = 0
        for s in range(n_fb + 1):
            b = ints[_I_FILL_BAR, s] - 1 if s < n_fb else n - 1
            for t in range(a if s == 0 else a + 1, b + 1):
                tail[n_kept] = returns[t]
                n_kept += 1
            a = b + 1
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

    ok = _fee_levels_nb(close, equity, f, ints, n_fb, members, fee_rate, initial_capital, periods_per_year,
                        borrow_rate / periods_per_year, close_cumsum, k_tail, n_shared_tail, sum_r, sum_r2, sum_r3,
                        sum_r4, sum_down2, n_pos, bars_in_market, out)
    for i in range(members.shape[0]):
        if not ok[i]:
            c = members[i]
            cfg = SimConfig(fee_rate[c], slip, initial_capital, periods_per_year, es_level, borrow_rate, max_hold)
            simulate_nb(open_, close, score, segment, session, cutoffs, allowed, cfg, tail, 0.0, out[c], False,
                        no_trace)
    return ref_cutoff


@njit(cache=True, nogil=True, inline="always")
def _stretch_drawdown(f, a, b, k, peak, worst):
    """Drawdown over the stretch of bars [a, b] whose equity is k x the reference's, given the
    peak before it: (new peak, new worst drawdown). No division unless the stretch makes a new
    high or a new worst."""
    top = k * f[_F_RUNMAX, b]
    if peak >= top:
        # no new high: the stretch's lowest equity against the old peak
        low = k * f[_F_PREFMIN, b]
        if low < peak * (1.0 + worst):
            worst = low / peak - 1.0
        return peak, worst
    # the first bar whose running max exceeds the old peak: usually one of the stretch's first
    # (a fee level starts it a little below the reference's peak), so a galloping search
    p = peak / k
    lo = a
    step = 1
    while lo + step <= b and f[_F_RUNMAX, lo + step] <= p:
        lo += step
        step <<= 1
    hi = min(lo + step, b)
    if f[_F_RUNMAX, lo] <= p:
        lo = min(lo + 1, b)  # the first exceeding bar is in (lo, hi] (b itself at a rounding edge)
    while lo < hi:
        mid = (lo + hi) >> 1
        if f[_F_RUNMAX, mid] > p:
            hi = mid
        else:
            lo = mid + 1
    ratio = f[_F_SUFRATIO, lo]
    if lo > a:
        ratio = min(ratio, f[_F_PREFMIN, lo - 1] / p)
    dd = ratio - 1.0
    if dd < worst:
        worst = dd
    return top, worst


@njit(cache=True, nogil=True)
def _fee_levels_nb(close, equity, f, ints, n_fb, members, fee_rate, initial_capital, periods_per_year,
                   borrow_per_bar, close_cumsum, k_tail, n_shared_tail, sum_r0, sum_r20, sum_r30, sum_r40,
                   sum_down20, n_pos0, bars_in_market, out):
    """Every fee level of a group in one walk over the fill bars: each level's cash is booked as
    ``simulate_nb`` books it, the levels side by side (independent chains the CPU overlaps),
    combined with the shared no-fill figures. Returns, per member, whether it stayed on the
    shared path (an entry without cash or an equity at or below zero leaves it: it must run
    alone)."""
    n = close.shape[0]
    m_count = members.shape[0]
    fee = np.empty(m_count)
    inv_one_plus_fee = np.empty(m_count)
    for i in range(m_count):
        fee[i] = fee_rate[members[i]]
        inv_one_plus_fee[i] = 1.0 / (1.0 + fee[i])
    ok = np.ones(m_count, dtype=np.bool_)
    cash = np.full(m_count, initial_capital)
    qty = np.zeros(m_count)
    entry_fee = np.zeros(m_count)
    borrow_paid = np.zeros(m_count)
    k = np.ones(m_count)  # each level's equity / the reference's over the current stretch
    peak = np.full(m_count, initial_capital)
    worst = np.zeros(m_count)
    sum_equity = np.zeros(m_count)
    traded_notional = np.zeros(m_count)
    wins = np.zeros(m_count, dtype=np.int64)
    sum_r = np.full(m_count, sum_r0)
    sum_r2 = np.full(m_count, sum_r20)
    sum_r3 = np.full(m_count, sum_r30)
    sum_r4 = np.full(m_count, sum_r40)
    sum_down2 = np.full(m_count, sum_down20)
    n_pos = np.full(m_count, n_pos0, dtype=np.int64)
    fill_returns = np.empty((m_count, max(n_fb, 1)))
    shared_tail_sum = 0.0
    for j in range(min(n_shared_tail, k_tail)):
        shared_tail_sum += f[_F_TAIL, j]
    entry_price = 0.0
    trades = 0
    a = 0  # the current stretch's first bar
    held = 0  # the side held over the current stretch (the same for every level)
    for s in range(n_fb + 1):
        t = ints[_I_FILL_BAR, s] if s < n_fb else n
        b = t - 1
        stretch_sum = f[_F_STRETCH_SUM, s]
        for i in range(m_count):
            peak[i], worst[i] = _stretch_drawdown(f, a, b, k[i], peak[i], worst[i])
            sum_equity[i] += k[i] * stretch_sum
        if held < 0 and borrow_per_bar > 0.0:
            closes = close_cumsum[b] - (close_cumsum[a - 1] if a > 0 else 0.0)
            for i in range(m_count):
                borrow = -qty[i] * borrow_per_bar * closes
                cash[i] -= borrow
                borrow_paid[i] += borrow
        if s == n_fb:
            break
        old = ints[_I_OLD, s]
        new = ints[_I_NEW, s]
        eq_before = equity[b]
        if old != 0:
            exit_px = f[_F_EXIT_PX, s]
            trades += 1
            for i in range(m_count):
                cash[i], notional, pnl = book_exit_nb(cash[i], qty[i], exit_px, fee[i], entry_price, entry_fee[i],
                                                      borrow_paid[i])
                wins[i] += pnl > 0.0
                traded_notional[i] += notional
                qty[i] = 0.0
        if new != 0:
            # book_entry_nb with the divisions taken once: by 1 + fee per level, by the price
            # per fill bar (equal within rounding)
            entry_price = f[_F_ENTRY_PX, s]
            inv_entry = f[_F_INV_ENTRY, s]
            for i in range(m_count):
                ok[i] &= cash[i] > 0.0
                notional = cash[i] * inv_one_plus_fee[i]
                q = new * notional * inv_entry
                entry_fee[i] = notional * fee[i]
                c = cash[i] - (q * entry_price + entry_fee[i])
                cash[i] = max(c, 0.0) if new > 0 else c
                qty[i] = q
                traded_notional[i] += notional
                borrow_paid[i] = 0.0
        held = new
        close_t = close[t]
        inv_eq = f[_F_INV_EQUITY, s]
        for i in range(m_count):
            e = cash[i] + qty[i] * close_t
            e -= max(-qty[i], 0.0) * close_t * borrow_per_bar
            ok[i] &= (e > 0.0) & (e < np.inf)
            r = e / (k[i] * eq_before) - 1.0
            k[i] = e * inv_eq
            fill_returns[i, s] = r
            sum_r[i], sum_r2[i], sum_r3[i], sum_r4[i], sum_down2[i], n_pos[i] = add_return_nb(
                r, sum_r[i], sum_r2[i], sum_r3[i], sum_r4[i], sum_down2[i], n_pos[i])
        a = t

    for i in range(m_count):
        if not ok[i]:
            continue
        # expected shortfall: the k smallest of the shared no-fill returns and this level's own
        expected_shortfall = np.nan
        if k_tail > 0:
            bound = f[_F_TAIL, n_shared_tail - 1] if n_shared_tail >= k_tail else np.inf
            m = 0
            for j in range(n_fb):
                v = fill_returns[i, j]
                if v < bound:
                    # insertion into the sorted run f[_F_SORT, :m]
                    jj = m
                    while jj > 0 and f[_F_SORT, jj - 1] > v:
                        f[_F_SORT, jj] = f[_F_SORT, jj - 1]
                        jj -= 1
                    f[_F_SORT, jj] = v
                    m += 1
            total = 0.0
            ia = 0
            ib = 0
            if m == 0 and n_shared_tail >= k_tail:
                ia = k_tail  # none of its own below the shared tail: the shared tail's sum
                total = shared_tail_sum
            for _ in range(k_tail - ia):
                if ib < m and (ia >= n_shared_tail or f[_F_SORT, ib] < f[_F_TAIL, ia]):
                    total += f[_F_SORT, ib]
                    ib += 1
                else:
                    total += f[_F_TAIL, ia]
                    ia += 1
            expected_shortfall = total / k_tail
        _finalise_metrics_nb(
            out[members[i]], n, sum_r[i], sum_r2[i], sum_r3[i], sum_r4[i], sum_down2[i], k[i] * equity[n - 1],
            initial_capital, worst[i], trades, wins[i], traded_notional[i] / (sum_equity[i] / n), bars_in_market,
            expected_shortfall, periods_per_year,
        )
    return ok
