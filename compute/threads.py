"""How many of numba's threads a batch gets.

A ``prange`` region wakes the whole thread pool, which costs from tens of microseconds on a quiet
machine to several milliseconds on a loaded one (a woken thread waits for a core). A small batch
(a book's few options under twenty stress scenarios, a 30-position exposure sum) is done sooner
on the calling thread alone; a large one (a sweep chunk, millions of contracts) keeps every
thread. numba's thread count and chunk size are per calling thread, so concurrent requests do
not see each other's setting.
"""

from __future__ import annotations

from contextlib import contextmanager

import numba

#: Batches smaller than this run on the calling thread only (measured: 10 BSM prices cost
#: ~50 us on one thread and ~500 us through the two-thread pool at load 3).
SERIAL_BELOW = 4096


@contextmanager
def threads_for(n: int, block: int | None = None):
    """Run the numba calls in the block with one thread when ``n`` (the batch's element count)
    is below ``SERIAL_BELOW``; ``block``: hand prange iterations out in blocks of that size."""
    threads = numba.get_num_threads()
    previous_chunk = numba.set_parallel_chunksize(block) if block else None
    if n < SERIAL_BELOW:
        numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)
        if block:
            numba.set_parallel_chunksize(previous_chunk)
