"""One process-local memo per data provider: the values a provider's data gives at a key
(a chain's marks at a session, a ticker's closes over a span) kept while the provider lives.

Entries are held per provider object, weakly (a provider's entries go with it), in LRU order
(at most ``per_provider`` per provider), optionally for at most ``ttl_s`` seconds (files may be
replaced under a provider). Thread-safe: Serve replicas answer requests on several threads.
A provider that cannot be weakly referenced is not memoized (every ``get`` misses)."""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from typing import Any, Callable, Hashable

_MISSING = object()


class ProviderMemo:
    def __init__(self, per_provider: int, ttl_s: float | None = None):
        if per_provider < 1:
            raise ValueError("per_provider must be at least 1")
        self.per_provider = int(per_provider)
        self.ttl_s = ttl_s
        self._memos: "weakref.WeakKeyDictionary[object, OrderedDict]" = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _memo(self, provider, create: bool):
        try:
            memo = self._memos.get(provider)
            if memo is None and create:
                memo = self._memos[provider] = OrderedDict()
            return memo
        except TypeError:  # not weakly referenceable
            return None

    def get(self, provider, key: Hashable, default: Any = None) -> Any:
        """The value at ``key`` for ``provider``, or ``default`` when absent or expired."""
        with self._lock:
            memo = self._memo(provider, create=False)
            if memo is None or key not in memo:
                return default
            expires, value = memo[key]
            if expires is not None and expires <= time.monotonic():
                del memo[key]
                return default
            memo.move_to_end(key)
            return value

    def put(self, provider, key: Hashable, value: Any) -> None:
        expires = time.monotonic() + self.ttl_s if self.ttl_s is not None else None
        with self._lock:
            memo = self._memo(provider, create=True)
            if memo is None:
                return
            memo[key] = (expires, value)
            memo.move_to_end(key)
            while len(memo) > self.per_provider:
                memo.popitem(last=False)

    def get_or_build(self, provider, key: Hashable, build: Callable[[], Any]) -> Any:
        """The memoized value, or ``build()`` stored and returned (built outside the lock:
        two threads missing together both build, and the last one stored wins)."""
        value = self.get(provider, key, _MISSING)
        if value is _MISSING:
            value = build()
            self.put(provider, key, value)
        return value
