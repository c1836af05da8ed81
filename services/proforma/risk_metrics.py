"""Per-position risk (spec 5.1 ``risk_metrics``): beta vs SPY and Euler risk contribution.

Over the last ``LOOKBACK`` sessions with a return, ending at the book's as-of session (daily simple returns
of each position's underlying, a missing return counted as 0 as in the portfolio's own
historical simulation):

- ``beta`` = cov(r_underlying, r_SPY) / var(r_SPY) (``compute.risk.beta``); an option has its
  underlying's beta (its exposure is its delta-adjusted dollars).
- ``risk_contribution`` = w_i (Sigma w)_i / w' Sigma w (``compute.risk.euler_risk_contributions``)
  with w the positions' delta-adjusted dollar exposures and Sigma the sample covariance of
  their underlyings' returns: each position's share of portfolio variance, summing to 1 over
  the live positions (expired options 0; a hedge is negative).

No history (or a book with no variance) gives nulls and a warning, never an invented number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from compute.jsonsafe import finite_or_none
from compute.marketdata import MarketDataError
from compute.risk import beta, euler_risk_contributions
from services.portfolio import views
from services.risk import service as risk

LOOKBACK = 252


def position_risk_metrics(book, provider) -> tuple[dict[str, dict], list[str]]:
    """{position_id: {beta, risk_contribution}} for every position of the book, and warnings."""
    return views.memoized(book, ("risk_metrics",), lambda: _compute(book, provider))


def _compute(book, provider) -> tuple[dict[str, dict], list[str]]:
    frame = book.positions
    empty = {str(pid): {"beta": None, "risk_contribution": None} for pid in frame["position_id"]} if len(frame) else {}
    if not len(frame):
        return empty, []
    live = risk.live_positions(book)
    if not len(live):
        return {pid: {"beta": None, "risk_contribution": 0.0} for pid in empty}, []
    underlyings = list(dict.fromkeys(live["underlying"].astype(str)))
    try:
        history = risk.market_history(provider, underlyings, risk.book_as_of(book), LOOKBACK + 5)
    except (MarketDataError, ValueError) as exc:
        return empty, [f"risk_metrics unavailable: {exc}"]
    # sessions with a return (today's, before its close, has none yet), the last LOOKBACK of them
    has_data = history.underlying_returns.notna().any(axis=1) | history.benchmark_returns.notna()
    returns = history.underlying_returns[has_data].iloc[-LOOKBACK:]
    bench = history.benchmark_returns[has_data].iloc[-LOOKBACK:]
    betas = {u: finite_or_none(beta(returns[u], bench)) for u in underlyings}
    exposure = pd.to_numeric(live["delta_exposure"], errors="coerce").fillna(0.0).to_numpy(np.float64)
    matrix = returns[live["underlying"].astype(str).tolist()].fillna(0.0).to_numpy(np.float64)
    cov = np.atleast_2d(np.cov(matrix, rowvar=False)) if matrix.shape[0] > 1 else np.zeros((len(live), len(live)))
    shares = euler_risk_contributions(exposure, cov)
    out = {pid: {"beta": None, "risk_contribution": 0.0} for pid in empty}
    for pid, u, share in zip(live["position_id"].astype(str), live["underlying"].astype(str), shares):
        out[pid] = {"beta": None if betas[u] is None else round(betas[u], 6),
                    "risk_contribution": None if finite_or_none(share) is None else round(float(share), 8)}
    warnings = [f"no price history for {t}: {reason}" for t, reason in history.failed.items()]
    return out, warnings


def add_risk_metrics(book, provider, positions: list[dict]) -> list[str]:
    """Set ``risk_metrics`` on position records (in place); returns warnings."""
    metrics, warnings = position_risk_metrics(book, provider)
    for rec in positions:
        rec["risk_metrics"] = metrics.get(str(rec["id"]), {"beta": None, "risk_contribution": None})
    return warnings
