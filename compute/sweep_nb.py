"""Numba kernel evaluating a whole grid of backtest configurations in one call.

The bars (open, close, score, segment, session code) are shared and read-only; each
configuration carries its own cut-off table, allowed-session mask and costs. Configurations
run in parallel (``prange``) through ``compute.backtest_nb.simulate_nb`` without recording,
so a configuration costs one pass over the bars and keeps only its metric vector: memory is
O(configs x metrics + threads x bars), never configs x bars.
"""

import numpy as np
from numba import njit, prange

from compute.backtest_nb import N_METRICS, simulate_nb


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
):
    """Metrics of every configuration: float64 (n_configs, N_METRICS).

    cutoffs: (n_configs, n_segments, 4) [long_entry, short_entry, long_exit, short_exit];
    mask_id: int64 (n_configs,) row of ``masks`` (bool, (n_masks, n_session_codes));
    fee_rate, slip_rate: (n_configs,) one-way fractions. Other inputs as ``simulate_nb``.
    """
    n_configs = cutoffs.shape[0]
    n = close.shape[0]
    out = np.empty((n_configs, N_METRICS))
    no_float = np.empty(0)
    no_int = np.empty(0, dtype=np.int64)
    for c in prange(n_configs):
        tail = np.empty(2 * n)
        simulate_nb(
            open_, close, score, segment, session, cutoffs[c], masks[mask_id[c]],
            fee_rate[c], slip_rate[c], initial_capital, periods_per_year, es_level,
            tail, out[c], False, no_float, no_int, no_int, no_int, no_float, no_float, no_float,
        )
    return out
