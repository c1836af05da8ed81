"""vectorbt as the oracle of our fill convention, shared by the backtest tests.

Our decision of bar t (its close) is executed at bar t + 1's open, so vectorbt gets the
decisions shifted one bar, ``price=open`` (fills at the open), ``size=inf`` (all the cash,
fees included) and ``upon_opposite_entry="reverse"`` (a long turns short in one fill)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd


def vectorbt_portfolio(open_, close, decided, idx, fees, slippage, capital):
    """vectorbt's ``Portfolio.from_signals`` for the target positions ``decided`` (1 long,
    0 flat, -1 short) decided at each bar's close."""
    import vectorbt as vbt

    target = np.concatenate(([0], decided[:-1]))  # decided at t's close, filled at t + 1's open
    prev = np.concatenate(([0], target[:-1]))
    s = lambda a: pd.Series(a, idx)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vbt.Portfolio.from_signals(
            s(close), price=s(open_),
            entries=s((target == 1) & (prev != 1)), exits=s((target == 0) & (prev == 1)),
            short_entries=s((target == -1) & (prev != -1)), short_exits=s((target == 0) & (prev == -1)),
            fees=fees, slippage=slippage, init_cash=capital, size=np.inf,
            upon_opposite_entry="reverse", freq="1D",
        )
