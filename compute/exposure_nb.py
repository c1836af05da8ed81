"""Numba kernel: long/short sums of notional and delta-adjusted exposure in one pass.

Every output bucket ("slot") is one row of an accumulator: slot 0 is the whole portfolio, then
each single-valued grouping (type, strategy, sector, ...) owns a contiguous block of slots, then
the tags (many-to-many, CSR) own the last block. Per row the kernel keeps only the sum of
positives and the sum of negatives; gross (= long - short) and net (= long + short) follow
from those two, so one pass over the positions is enough.
"""

import numpy as np
from numba import njit, prange

NOTIONAL_LONG = 0
NOTIONAL_SHORT = 1
DELTA_LONG = 2
DELTA_SHORT = 3
COUNT = 4
N_ACCUMULATORS = 5


@njit(cache=True, inline="always")
def _add(acc, slot, mv, mv_col, de, de_col):
    acc[slot, mv_col] += mv
    acc[slot, de_col] += de
    acc[slot, COUNT] += 1.0


@njit(cache=True, parallel=True)
def exposure_sums_nb(
    market_value, delta_exposure, group_codes, group_offsets, group_sizes,
    n_groupings, tag_indptr, tag_indices, tag_offset, n_tags, n_slots, n_chunks,
):
    """Accumulate exposures of n positions into ``n_slots`` buckets.

    market_value, delta_exposure: float64 (n,), signed. NaN values add nothing (but count).
    group_codes: tuple of int arrays (n,), one per grouping, all of one dtype (a tuple, not a
        2-D array, so callers' code arrays are used without copying); code c of grouping g lands
        in slot group_offsets[g] + c; a negative code means "in no group of this grouping".
        Only the first n_groupings entries are read (pass a dummy 1-tuple for none).
    tag_indptr (n + 1,), tag_indices (nnz,): CSR position -> tag codes; tag t lands in slot
        tag_offset + t. With n_tags = 0 they are not read (pass empty arrays).
    n_chunks: independent partial accumulators (a few per thread, for load balance).
    Returns (sums (n_slots, 5) with columns NOTIONAL_LONG, NOTIONAL_SHORT, DELTA_LONG,
    DELTA_SHORT, COUNT, number of out-of-range codes that were skipped).
    """
    n = market_value.shape[0]
    n_chunks = max(min(n_chunks, n), 1)
    partial = np.zeros((n_chunks, n_slots, N_ACCUMULATORS))
    invalid = np.zeros(n_chunks, dtype=np.int64)
    for chunk in prange(n_chunks):
        start = chunk * n // n_chunks
        stop = (chunk + 1) * n // n_chunks
        acc = partial[chunk]
        bad = 0
        total_mv_long = 0.0
        total_mv_short = 0.0
        total_de_long = 0.0
        total_de_short = 0.0
        for i in range(start, stop):
            mv = market_value[i]
            de = delta_exposure[i]
            # NaN adds nothing; a value lands in its long or its short column, so each bucket
            # costs one add per measure instead of two
            if mv != mv:
                mv = 0.0
            if de != de:
                de = 0.0
            mv_col = NOTIONAL_SHORT if mv < 0.0 else NOTIONAL_LONG
            de_col = DELTA_SHORT if de < 0.0 else DELTA_LONG
            # the whole-book bucket is hit by every position: keep it in registers rather than
            # in memory, where each add would wait for the previous store
            total_mv_long += max(mv, 0.0)
            total_mv_short += min(mv, 0.0)
            total_de_long += max(de, 0.0)
            total_de_short += min(de, 0.0)
            for g in range(n_groupings):
                code = group_codes[g][i]
                if code < 0:
                    continue
                if code >= group_sizes[g]:
                    bad += 1
                    continue
                _add(acc, group_offsets[g] + code, mv, mv_col, de, de_col)
            if n_tags > 0:
                for j in range(tag_indptr[i], tag_indptr[i + 1]):
                    tag = tag_indices[j]
                    if tag < 0 or tag >= n_tags:
                        bad += 1
                        continue
                    _add(acc, tag_offset + tag, mv, mv_col, de, de_col)
        acc[0, NOTIONAL_LONG] += total_mv_long
        acc[0, NOTIONAL_SHORT] += total_mv_short
        acc[0, DELTA_LONG] += total_de_long
        acc[0, DELTA_SHORT] += total_de_short
        acc[0, COUNT] += stop - start
        invalid[chunk] = bad
    sums = np.zeros((n_slots, N_ACCUMULATORS))
    for chunk in range(n_chunks):
        sums += partial[chunk]
    return sums, invalid.sum()
