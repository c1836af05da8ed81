"""Backtest fill logs as CSV (Lab spec "Export backtest results").

One line per fill: ``timestamp,action,price,quantity,pnl,cumulative_pnl``; timestamps in UTC
ISO 8601 with a ``Z``; ``pnl`` is realised on closing fills (net of both fills' fees and
slippage) and 0 on opening fills, so ``cumulative_pnl`` ends at the strategy's final equity
minus its initial capital. Prices and P&L are rounded to the cent, quantities to 6 decimals
(the equity engine trades fractional shares; options quantities are whole contracts).
"""

from __future__ import annotations

import csv
import io

import pandas as pd

from cluster.artifacts import ArtifactStore

COLUMNS = ("timestamp", "action", "price", "quantity", "pnl", "cumulative_pnl")


def _stamp(value) -> str:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: float, digits: int) -> str:
    text = f"{float(value):.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fills_csv(fills: pd.DataFrame) -> str:
    """The export CSV text of a ``compute.backtest.fills_frame``-shaped frame."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in fills.itertuples(index=False):
        writer.writerow([_stamp(row.timestamp), row.action, _num(row.price, 2), _num(row.quantity, 6),
                         _num(row.pnl, 2), _num(row.cumulative_pnl, 2)])
    return buf.getvalue()


def backtest_csv(store: ArtifactStore, fills_path: str, fills_sha: str | None) -> bytes:
    """The stored CSV of a backtest, verified against its SHA-256."""
    return store.get(fills_path, sha=fills_sha)
