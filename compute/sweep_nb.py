"""Numba kernel evaluating a whole grid of backtest configurations in one call.

The bars (open, close, score, segment, session code) are shared and read-only; each
configuration carries its own cut-off table, allowed-session mask and costs. Configurations
run in parallel (``prange`` over blocks of neighbouring configurations) through
``compute.backtest_nb.simulate_nb`` without recording, so a configuration costs one pass over
the bars and keeps only its metric vector: memory is O(configs x metrics + blocks x bars),
never configs x bars. Within a block each configuration passes its expected-shortfall cut-off
on as the next one's hint: neighbours in a grid differ in one parameter, so their loss tails
are alike and the selection at the end of a run sees a few hundred returns, not every loss.
"""

import numpy as np
from numba import njit, prange

from compute.backtest_nb import FILL_DTYPE, N_METRICS, SimConfig, Trace, simulate_nb

#: Blocks of neighbouring configurations per thread (more blocks balance uneven work).
BLOCKS_PER_THREAD = 4
#: The tail hint sits this fraction of the previous configuration's cut-off (a return < 0):
#: a little above it, so the next tail is still inside.
HINT_MARGIN = 0.85


@njit(cache=True, parallel=True)
def sweep_nb(
    open_,
    close,
    score,
    segment,
    session,
    cutoffs,
    mask_id,
    masks,
    fee_rate,
    slip_rate,
    initial_capital,
    periods_per_year,
    es_level,
    n_threads,
    borrow_rate,
    max_hold,
):
    """Metrics of every configuration: float64 (n_configs, N_METRICS).

    cutoffs: (n_configs, n_segments, 4) [long_entry, short_entry, long_exit, short_exit];
    mask_id: int64 (n_configs,) row of ``masks`` (bool, (n_masks, n_session_codes));
    fee_rate, slip_rate: (n_configs,) one-way fractions; n_threads: numba's thread count
    (``numba.get_num_threads()``; only sizes the blocks); borrow_rate: a short's yearly borrow
    fee, a fraction of its notional. Other inputs as ``simulate_nb``.
    """
    n_configs = cutoffs.shape[0]
    n = close.shape[0]
    out = np.empty((n_configs, N_METRICS))
    no_trace = Trace(np.empty(0), np.empty(0, dtype=np.int64), np.empty(0, dtype=FILL_DTYPE))
    n_blocks = max(1, min(n_configs, BLOCKS_PER_THREAD * n_threads))
    for b in prange(n_blocks):
        tail = np.empty(2 * n)
        hint = 0.0
        for c in range(b * n_configs // n_blocks, (b + 1) * n_configs // n_blocks):
            cfg = SimConfig(fee_rate[c], slip_rate[c], initial_capital, periods_per_year, es_level, borrow_rate,
                            max_hold[c])
            _, cutoff, _ = simulate_nb(open_, close, score, segment, session, cutoffs[c], masks[mask_id[c]],
                                    cfg, tail, hint, out[c], False, no_trace)
            hint = HINT_MARGIN * cutoff if cutoff < 0.0 else 0.0
    return out
