"""Z-score strategy sweep (issue 16): 10,000 mean-reversion strategies (window 5-100 x entry
x exit) over 2,520 daily bars, features included (each window's z-score computed once, every
threshold pair on it in one numba call), next-bar fills, fees, full metrics per strategy.

Peer in the same run: vectorbt's from_signals + stats on a sub-grid of the same strategies
(signals built from the same z-scores, long/short, the same fills and costs), scaled to
bar-configurations per second. Targets: >= 100 M bar-configs/s on 2 cores, >= 50x vectorbt.
Run: .venv/bin/python benchmarks/strategy_sweep.py
"""

import numpy as np

from _common import best_of, emit, timings  # noqa: E402
from compute.backtest import BacktestConfig
from compute.strategies import strategy_grid, strategy_score, strategy_sweep

N_BARS = 2520
WINDOWS = list(range(5, 101))            # 96 windows
ENTRIES = list(np.linspace(0.5, 3.0, 13))
EXITS = list(np.linspace(0.0, 1.0, 9))   # exits above their entry are left out: 10,464 strategies


def market(n, seed=0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 0.002, n))
    return open_, close


def main():
    open_, close = market(N_BARS)
    strategies = strategy_grid("zscore", {"window": WINDOWS, "entry": ENTRIES, "exit": EXITS})
    cfg = BacktestConfig(fees_bps=1, slippage_bps=2)
    strategy_sweep(open_, close, strategies[:50], cfg)  # JIT warm
    times, table = timings(lambda: strategy_sweep(open_, close, strategies, cfg), repeats=3)
    best = min(times)
    rate = len(strategies) * N_BARS / best
    emit("strategy_sweep.zscore", "sigma_features_included", rate / 1e6, "M bar-configs/s",
         len(strategies) * N_BARS, configs=len(strategies), seconds=round(best, 4), target=">= 100",
         mean_trades=round(float(table["trades"].mean()), 1))
    vectorbt_peer(open_, close, strategies, rate)


def vectorbt_peer(open_, close, strategies, sigma_rate):
    try:
        import pandas as pd
        import vectorbt as vbt
    except Exception as exc:  # not installed: say so instead of inventing a number
        emit("strategy_sweep.zscore", "vectorbt_from_signals_stats", float("nan"), "M bar-configs/s", 0,
             skipped=f"vectorbt not importable: {type(exc).__name__}")
        return
    sub = strategies[:: max(1, len(strategies) // 100)][:100]
    idx = pd.date_range("2010-01-01", periods=N_BARS, freq="D")
    close_s, open_s = pd.Series(close, idx), pd.Series(open_, idx)

    def run():
        cols = {}
        for i, s in enumerate(sub):
            z = -strategy_score("zscore", {"window": s.params["window"]}, close)  # features included
            e, x = s.params["entry"], s.params["exit"]
            cols[i] = (z <= -e, z > -x, z >= e, z < x)
        frame = lambda k: pd.DataFrame({i: np.roll(v[k], 1) for i, v in cols.items()}, index=idx)  # noqa: E731
        pf = vbt.Portfolio.from_signals(close_s, frame(0), frame(1), short_entries=frame(2), short_exits=frame(3),
                                        price=open_s, fees=1e-4, slippage=2e-4, freq="1D", size=np.inf,
                                        upon_opposite_entry="reverse")
        return pf.stats(agg_func=None, silence_warnings=True)

    run()  # warm vectorbt's own numba kernels
    best = best_of(run, repeats=2)
    rate = len(sub) * N_BARS / best
    emit("strategy_sweep.zscore", "vectorbt_from_signals_stats", rate / 1e6, "M bar-configs/s",
         len(sub) * N_BARS, configs=len(sub), seconds=round(best, 4), vectorbt=vbt.__version__,
         sigma_vs_vectorbt_ratio=round(sigma_rate / rate, 1), target_ratio=">= 50")


if __name__ == "__main__":
    main()
