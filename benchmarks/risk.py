"""Risk statistics batch vs an empyrical loop; Monte Carlo VaR of the hedge-fund demo book.

1. Sharpe, max drawdown, annual volatility and historical VaR/ES for 10,000 daily return
   series of 252 days: ``compute.risk.risk_stats_frame`` (one parallel numba pass) against
   empyrical's functions in a Python loop over a subsample, extrapolated (target >= 10x).
2. Monte Carlo VaR with 100,000 paths over the hedge-fund-style demo portfolio (22 stocks,
   8 options fully repriced with Black-Scholes), betas and covariances estimated from the
   synthetic market data (target < 2 s).
Prints one JSON object per line.
"""

import time
import warnings

import numpy as np
import pandas as pd

from compute.risk import risk_stats_frame
from _common import best_of, emit  # noqa: E402


N_SERIES = 10_000
N_DAYS = 252
EMPYRICAL_SAMPLE = 300
MC_PATHS = 100_000

# docs/spec/reference.md hedge-fund-style demo: stocks (signed shares) and options (contracts).
HEDGE_FUND_STOCKS = {
    "NVDA": 800, "MSFT": 1000, "AAPL": 1500, "GOOGL": 1800, "META": 1000, "AMZN": 1400,
    "TSLA": 800, "AMD": 1200, "BRK-B": 600, "JPM": 1000, "JNJ": 800, "UNH": 200, "V": 350,
    "NFLX": -600, "SHOP": -1000, "ZM": -2000, "PTON": -3000, "ROKU": -1800, "XOM": -2000,
    "F": -10000, "GE": -800, "C": -2000,
}
HEDGE_FUND_OPTIONS = [  # underlying, type, strike, contracts
    ("SPY", "LC", 460.0, 200), ("QQQ", "LC", 420.0, 150), ("VIX", "LC", 25.0, 300),
    ("NVDA", "LC", 800.0, 50), ("AAPL", "SP", 200.0, -100), ("MSFT", "SP", 380.0, -80),
    ("META", "SP", 450.0, -50), ("TSLA", "SC", 300.0, -60),
]


def bench_risk_stats():
    rng = np.random.default_rng(0)
    returns = rng.standard_t(4, size=(N_DAYS, N_SERIES)) * 0.01 + 0.0003
    risk_stats_frame(returns[:, :10])  # JIT warm-up
    batched = best_of(lambda: risk_stats_frame(returns, 252, 0.95, 0.95), 5)
    emit("risk_stats", "batched_seconds", round(batched, 5), "s", N_SERIES, n_days=N_DAYS,
         stats="annual_volatility,sharpe,max_drawdown,var_95,es_95")
    try:
        import empyrical
    except ImportError:
        emit("risk_stats", "empyrical_seconds", None, "s", N_SERIES, note="empyrical not installed")
        return

    def empyrical_loop():
        for i in range(EMPYRICAL_SAMPLE):
            r = returns[:, i]
            empyrical.sharpe_ratio(r)
            empyrical.max_drawdown(r)
            empyrical.annual_volatility(r)
            empyrical.value_at_risk(r, 0.05)
            empyrical.conditional_value_at_risk(r, 0.05)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sample = best_of(empyrical_loop, 2)
    full = sample / EMPYRICAL_SAMPLE * N_SERIES
    emit("risk_stats", "empyrical_seconds_extrapolated", round(full, 3), "s", N_SERIES, measured_on=EMPYRICAL_SAMPLE)
    emit("risk_stats", "speedup_vs_empyrical", round(full / batched, 1), "x", N_SERIES, target=10)


def hedge_fund_inputs():
    """Positions, betas, residual vols and factor covariance from synthetic market data."""
    from compute.factors import FACTOR_ETFS, factor_returns_from_etfs, regress_factor_betas, simple_returns
    from compute.marketdata import make_provider

    provider = make_provider("synthetic")
    underlyings = sorted(set(HEDGE_FUND_STOCKS) | {u for u, *_ in HEDGE_FUND_OPTIONS})
    tickers = underlyings + [t for t in FACTOR_ETFS.values() if t not in underlyings]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        closes = pd.DataFrame({t: provider.daily_bars(t, "2024-01-01", "2024-12-31")["close"] for t in tickers})
    returns = simple_returns(closes).iloc[1:]
    factors = factor_returns_from_etfs(returns[list(FACTOR_ETFS.values())])
    regression = regress_factor_betas(returns[underlyings], factors, window=150)
    covariance = factors.iloc[-150:].cov()
    spot = closes.iloc[-1]
    rows = [
        {"position_id": f"stk_{t}", "underlying": t, "position_type": "LONG" if q > 0 else "SHORT",
         "quantity": float(q), "underlying_price": spot[t]}
        for t, q in HEDGE_FUND_STOCKS.items()
    ]
    for underlying, kind, strike, contracts in HEDGE_FUND_OPTIONS:
        s = spot[underlying]
        if not 0.7 * s <= strike <= 1.3 * s:  # keep the demo strikes near the synthetic money
            strike = float(round(s))
        rows.append({"position_id": f"opt_{underlying}_{kind}", "underlying": underlying, "position_type": kind,
                     "quantity": float(contracts), "underlying_price": s, "strike": strike,
                     "time_to_expiry": 60 / 365, "volatility": 0.35, "risk_free_rate": 0.04})
    return pd.DataFrame(rows), regression, covariance


def bench_monte_carlo():
    from compute.var import monte_carlo_var

    positions, regression, covariance = hedge_fund_inputs()
    args = (positions, regression.betas, regression.residual_vol, covariance)
    monte_carlo_var(*args, n_paths=2_000, seed=0)  # JIT warm-up
    for horizon in (1, 10):
        start = time.perf_counter()
        result = monte_carlo_var(*args, horizon_days=horizon, n_paths=MC_PATHS, seed=0)
        elapsed = time.perf_counter() - start
        emit("monte_carlo_var", f"seconds_{horizon}d", round(elapsed, 4), "s", MC_PATHS,
             positions=len(positions), options=int(positions["position_type"].isin(["LC", "LP", "SC", "SP"]).sum()),
             var_99_dollars=round(result["var"][0.99], 2), target_seconds=2.0)


def main():
    bench_risk_stats()
    bench_monte_carlo()


if __name__ == "__main__":
    main()
