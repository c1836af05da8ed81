"""Series, tables and charts behind the pictures (issue 14): column-oriented JSON tables and
the binary answers (Parquet, PNG, SVG)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from serve_app.schemas.common import error_responses


class BacktestSeries(BaseModel):
    """A backtest's out-of-sample bars, column-oriented (``bars.timestamp[i]`` goes with
    ``bars.equity[i]``), its trade list and its walk-forward folds."""

    backtest_id: str
    model_id: str
    n_bars: int
    columns: list[str]
    bars: dict[str, list[Any]] = Field(description="timestamp, equity, returns, drawdown, position, "
                                                   "benchmark_return, fold: one list per column")
    trades: dict[str, list[Any]] = Field(description="the fills: timestamp, action, price, quantity, pnl, cumulative_pnl")
    folds: list[dict[str, Any]] = Field(description="each fold's out-of-sample segment (bounds and figures)")


class SweepGrid(BaseModel):
    """A sweep's configurations: grid axes x metrics, one list per column."""

    sweep_id: str
    n_configs: int
    axes: list[str]
    metrics: list[str]
    columns: dict[str, list[Any]]


def binary_responses(media_types: dict[str, str], description: str, *codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a binary answer (with ``response_class=Response``; errors stay JSON)."""
    content = {m: {"schema": {"type": "string", "format": "binary"}} for m in media_types.values()}
    return {200: {"description": description, "content": content}, **error_responses(*codes)}
