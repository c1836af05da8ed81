"""compute.memo.ProviderMemo: per-provider LRU with expiry, gone with its provider."""

from __future__ import annotations

import gc
import threading
import time

from compute.memo import ProviderMemo


class Provider:
    pass


def test_lru_per_provider_and_isolation():
    memo = ProviderMemo(2)
    a, b = Provider(), Provider()
    memo.put(a, "x", 1)
    memo.put(a, "y", 2)
    assert memo.get(a, "x") == 1  # x is now the most recent
    memo.put(a, "z", 3)  # evicts y, the least recently used
    assert memo.get(a, "y") is None and memo.get(a, "x") == 1 and memo.get(a, "z") == 3
    assert memo.get(b, "x", "missing") == "missing"  # another provider's entries are its own
    built = []
    assert memo.get_or_build(b, "x", lambda: built.append(1) or 10) == 10
    assert memo.get_or_build(b, "x", lambda: built.append(1) or 11) == 10
    assert built == [1]


def test_entries_expire_and_go_with_their_provider():
    memo = ProviderMemo(8, ttl_s=0.05)
    p = Provider()
    memo.put(p, "k", "v")
    assert memo.get(p, "k") == "v"
    time.sleep(0.08)
    assert memo.get(p, "k") is None
    memo.put(p, "k", "v")
    del p
    gc.collect()
    assert len(memo._memos) == 0  # weakly held: nothing kept for a provider that is gone


def test_unreferenceable_provider_is_not_memoized_and_threads_are_safe():
    memo = ProviderMemo(4)
    memo.put(1, "k", "v")  # an int cannot be weakly referenced
    assert memo.get(1, "k") is None
    p = Provider()
    errors = []

    def work(i):
        try:
            for j in range(500):
                memo.put(p, (i, j % 7), j)
                memo.get(p, (i, (j + 3) % 7))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len(memo._memos[p]) <= 4
