"""Indicator speed on 17,000 hourly bars (10 years) and 1,000,000 bars, versus pandas.

Peers are the equivalent pandas expressions (rolling / ewm) measured in the same run; a full
``build_matrix`` of the zerosigma default feature set is timed too. Kernels are warmed up
before timing. Prints one JSON object per line.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from compute import features as F
from compute import indicators as ind
from _common import best_of, emit  # noqa: E402


def pandas_rsi(close: pd.Series, n: int = 14) -> pd.Series:
    d = close.diff()
    gain = d.clip(lower=0).ewm(alpha=1 / n, adjust=False).mean()
    loss = (-d.clip(upper=0)).ewm(alpha=1 / n, adjust=False).mean()
    return 100 - 100 / (1 + gain / loss)


def pandas_atr(h, lo, c, n=14):
    tr = pd.concat([h - lo, (h - c.shift()).abs(), (lo - c.shift()).abs()], axis=1).max(axis=1)
    return tr.ewm(alpha=1 / n, adjust=False).mean()


def synthetic_bars(n, seed=0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(rng.normal(0, 0.003, n).cumsum())
    high = close * (1 + rng.uniform(0, 0.003, n))
    low = close * (1 - rng.uniform(0, 0.003, n))
    idx = pd.date_range("2015-01-02 14:30", periods=n, freq="h", tz="UTC")
    return pd.DataFrame({"open": close, "high": high, "low": low, "close": close,
                         "volume": rng.uniform(1e5, 1e6, n)}, index=idx)


def main():
    warm = synthetic_bars(500)
    ours = {
        "sma20": lambda b: ind.sma(b["close"].to_numpy(), 20),
        "ema20": lambda b: ind.ema(b["close"].to_numpy(), 20),
        "rsi14": lambda b: ind.rsi(b["close"].to_numpy(), 14),
        "atr14": lambda b: ind.atr(b["high"].to_numpy(), b["low"].to_numpy(),
                                   b["close"].to_numpy(), 14),
        "bollinger20": lambda b: ind.bollinger(b["close"].to_numpy(), 20),
        "adx14": lambda b: ind.adx(b["high"].to_numpy(), b["low"].to_numpy(),
                                   b["close"].to_numpy(), 14),
    }
    peers = {
        "sma20": lambda b: b["close"].rolling(20).mean(),
        "ema20": lambda b: b["close"].ewm(span=20, adjust=False).mean(),
        "rsi14": lambda b: pandas_rsi(b["close"]),
        "atr14": lambda b: pandas_atr(b["high"], b["low"], b["close"]),
        "bollinger20": lambda b: (b["close"].rolling(20).mean(), b["close"].rolling(20).std(ddof=0)),
    }
    for fn in ours.values():
        fn(warm)
    iv = pd.Series(0.2, index=warm.index)
    F.build_matrix(warm, "zerosigma", implied_vol=iv)

    for n in (17_000, 1_000_000):
        bars = synthetic_bars(n)
        repeats = 5 if n < 100_000 else 2
        for name, fn in ours.items():
            secs = best_of(lambda: fn(bars), repeats)
            extra = {}
            if name in peers:
                peer_secs = best_of(lambda: peers[name](bars), repeats)
                extra = {"pandas_ms": round(peer_secs * 1e3, 3),
                         "speedup_vs_pandas": round(peer_secs / secs, 2)}
            emit("indicators", f"{name}_ms", round(secs * 1e3, 3), "ms", n, **extra)

    bars = synthetic_bars(17_000)
    iv = pd.Series(0.2, index=bars.index)
    secs = best_of(lambda: F.build_matrix(bars, "zerosigma", implied_vol=iv), 3)
    emit("indicators", "build_matrix_zerosigma_default_ms", round(secs * 1e3, 2), "ms", 17_000,
         features=len(F.resolve_features(F.get_pack("zerosigma").default_features)))


if __name__ == "__main__":
    main()
