"""Single-configuration backtest speed (issue 6): 10 years of hourly bars (about 17,000),
metrics included, target under 5 ms after JIT warm-up.

Prints one JSON object per line: the full ``run_backtest`` call (per-bar equity, fills
DataFrame, metrics), the kernel alone, a bare numba loop over the same bars (the floor) and,
when importable, vectorbt's from_signals + stats on the same single configuration.
Run: .venv/bin/python benchmarks/backtest.py
"""

import time

import numpy as np
import pandas as pd
from numba import njit

from compute import backtest_nb
from compute.backtest import BacktestConfig, run_backtest, signal_cutoffs
from _common import emit as _emit  # noqa: E402


def emit(metric, value, unit, n, **extra):
    _emit("backtest", metric, value, unit, n, **extra)

N_DAYS = 2520
BARS_PER_DAY = 7  # 09:30 .. 15:30 bar starts


def hourly_market(seed=0):
    days = pd.bdate_range("2015-01-02", periods=N_DAYS)
    starts = (np.asarray(days, dtype="datetime64[ns]")[:, None]
              + (np.timedelta64(9 * 60 + 30, "m") + np.arange(BARS_PER_DAY) * np.timedelta64(60, "m")))
    index = pd.DatetimeIndex(starts.reshape(-1))
    n = len(index)
    rng = np.random.default_rng(seed)
    close = 200 * np.exp(np.cumsum(rng.normal(0.00005, 0.004, n)))
    open_ = np.concatenate(([200.0], close[:-1])) * np.exp(rng.normal(0, 0.0008, n))
    z = np.zeros(n)
    shocks = rng.standard_normal(n)
    for t in range(1, n):
        z[t] = 0.9 * z[t - 1] + np.sqrt(1 - 0.81) * shocks[t]
    score = 1.0 / (1.0 + np.exp(-0.4 * z))
    return index, open_, close, score


def timed(fn, repeats):
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    samples = np.array(samples)
    return float(np.median(samples)), float(samples.min())


@njit(cache=True)
def bare_loop_nb(close, score, threshold):
    equity = 1.0
    pos = 0.0
    for t in range(1, close.shape[0]):
        equity *= 1.0 + pos * (close[t] / close[t - 1] - 1.0)
        pos = 1.0 if score[t] >= threshold else 0.0
    return equity


def main():
    index, open_, close, score = hourly_market()
    n = len(index)
    cfg = BacktestConfig(value=0.55, exit_value=0.52, allowed_hours=tuple(range(9, 16)),
                         fees_bps=1, slippage_bps=2, periods_per_year=252 * BARS_PER_DAY)

    t0 = time.perf_counter()
    result = run_backtest(open_, close, score, cfg, index=index)
    first_call = time.perf_counter() - t0
    emit("first_call_including_jit_or_cache_load", first_call * 1e3, "ms", n)

    median, best = timed(lambda: run_backtest(open_, close, score, cfg, index=index), 50)
    emit("run_backtest_full", median * 1e3, "ms", n, best_ms=round(best * 1e3, 4),
         trades=result.metrics["trades"], fills=len(result.fills), target_ms=5.0)

    # the kernel alone, metrics only (what a sweep pays per configuration)
    hours = np.asarray(index.hour, dtype=np.int64)
    mask = np.zeros(24, dtype=np.bool_)
    mask[list(cfg.allowed_hours)] = True
    cuts = signal_cutoffs(cfg)[None, :]
    seg = np.zeros(n, dtype=np.int64)
    metrics = np.empty(backtest_nb.N_METRICS)
    tail = np.empty(2 * n)
    sim = backtest_nb.sim_config(1.0, 2.0, 1e5, cfg.periods_per_year, 0.95)

    def kernel():
        backtest_nb.simulate_nb(open_, close, score, seg, hours, cuts, mask, sim, tail, 0.0, metrics, False,
                                backtest_nb.NO_TRACE)

    median_k, best_k = timed(kernel, 200)
    emit("kernel_metrics_only", median_k * 1e3, "ms", n, best_ms=round(best_k * 1e3, 4))

    median_b, best_b = timed(lambda: bare_loop_nb(close, score, 0.55), 200)
    emit("bare_numba_loop_no_metrics", median_b * 1e3, "ms", n, best_ms=round(best_b * 1e3, 4))

    try:
        import vectorbt as vbt
    except Exception as exc:
        emit("vectorbt_from_signals_stats", float("nan"), "ms", n,
             skipped=f"vectorbt not importable: {type(exc).__name__}")
        return
    s = pd.Series(score, index=index)
    entries = (s >= 0.55).shift(1, fill_value=False)
    exits = (s < 0.52).shift(1, fill_value=False)
    close_s, open_s = pd.Series(close, index=index), pd.Series(open_, index=index)

    def vbt_run():
        pf = vbt.Portfolio.from_signals(close_s, entries, exits, price=open_s, fees=1e-4,
                                        slippage=2e-4, freq="1h")
        return pf.stats(silence_warnings=True)

    median_v, best_v = timed(vbt_run, 5)
    emit("vectorbt_from_signals_stats", median_v * 1e3, "ms", n, best_ms=round(best_v * 1e3, 4),
         vectorbt=vbt.__version__, sigma_speedup=round(median_v / median, 1))


if __name__ == "__main__":
    main()
