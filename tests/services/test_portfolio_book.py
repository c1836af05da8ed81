"""compute.book.price_positions and the portfolio service's input rules, against independent
references: the provider's own bars and chains, mibian, and hand-worked sums."""

from __future__ import annotations

import datetime as dt
import math

import mibian
import numpy as np
import pandas as pd
import pytest

from compute.book import dividend_yield, price_positions
from compute.instruments import format_occ, next_monthly_expiry
from compute.marketdata import calendar, make_provider

AS_OF = dt.date(2025, 3, 14)  # a Friday session
SESSION_CLOSE = calendar.session_close(pd.Timestamp(AS_OF))


@pytest.fixture(scope="module")
def provider():
    return make_provider("synthetic", seed=3)


def _row(pid, symbol, underlying, type_, qty, entry, strike=None, expiry=None, right=None, tags=()):
    return {"position_id": pid, "symbol": symbol, "underlying": underlying, "type": type_, "quantity": qty,
            "entry_price": entry, "strike": strike, "expiry": expiry, "option_right": right,
            "multiplier": 100 if right else 1, "strategy": None, "tags": list(tags)}


def _years(expiry):
    return (calendar.session_close(calendar.session_on_or_before(pd.Timestamp(expiry))) - SESSION_CLOSE).total_seconds() / (365 * 86400)


@pytest.fixture(scope="module")
def book(provider):
    expiry = next_monthly_expiry(AS_OF, 2)
    chain = provider.option_chain("AAPL", as_of=AS_OF, expiries=[expiry])
    spot = float(chain["underlying_price"].iloc[0])
    calls = chain[chain["right"] == "C"]
    listed = calls.iloc[(calls["strike"] - spot).abs().argmin()]
    off_grid = float(listed["strike"]) + 0.37  # not a listed strike: priced at realised vol
    rows = [
        _row("s1", "AAPL", "AAPL", "LONG", 100, 150.0, tags=["tech", "core"]),
        _row("s2", "XOM", "XOM", "SHORT", -250, 90.0, tags=["energy"]),
        _row("o1", listed["symbol"], "AAPL", "LC", 3, 4.0, float(listed["strike"]), expiry, "C", tags=["tech"]),
        _row("o2", format_occ("AAPL", expiry, "P", off_grid), "AAPL", "SP", -2, 3.0, off_grid, expiry, "P"),
        _row("o3", format_occ("AAPL", dt.date(2024, 6, 21), "C", 150.0), "AAPL", "LC", 1, 10.0, 150.0, dt.date(2024, 6, 21), "C"),
    ]
    frame = price_positions(pd.DataFrame(rows), provider, as_of=AS_OF)
    return frame.set_index("position_id"), chain, listed


def test_stocks_marked_at_the_session_close(book, provider):
    frame, _, _ = book
    for pid, ticker in (("s1", "AAPL"), ("s2", "XOM")):
        bars = provider.daily_bars(ticker, AS_OF - dt.timedelta(days=10), AS_OF)
        close, prev = bars["close"].iloc[-1], bars["close"].iloc[-2]
        row = frame.loc[pid]
        assert row["price"] == pytest.approx(close) and row["underlying_price"] == pytest.approx(close)
        assert row["market_value"] == pytest.approx(row["quantity"] * close)
        assert row["cost_basis"] == pytest.approx(row["quantity"] * row["entry_price"])
        assert row["pnl"] == pytest.approx(row["quantity"] * (close - row["entry_price"]))
        assert row["daily_change"] == pytest.approx(row["quantity"] * (close - prev))
        assert row["delta"] == 1.0 and row["position_delta"] == row["quantity"]
        assert math.isnan(row["gamma"]) and row["position_gamma"] == 0.0
        assert row["delta_exposure"] == pytest.approx(row["market_value"]) == row["notional_exposure"]


def test_listed_option_uses_chain_mid_and_iv_and_matches_mibian(book, provider):
    frame, _, listed = book
    row = frame.loc["o1"]
    assert row["vol_source"] == "chain_iv"
    assert row["price"] == pytest.approx(float(listed["mid"]))
    assert row["iv"] == pytest.approx(float(listed["iv"]))
    assert row["time_to_expiry"] == pytest.approx(_years(row["expiry"]))
    S, K, q = row["underlying_price"], row["strike"], dividend_yield(provider, "AAPL")
    m = mibian.Me([S, K, 4.5, q * S, row["time_to_expiry"] * 365], volatility=row["iv"] * 100)
    for name, ref in (("delta", m.callDelta), ("gamma", m.gamma), ("theta", m.callTheta), ("vega", m.vega), ("rho", m.callRho)):
        assert row[name] == pytest.approx(ref, rel=1e-7, abs=1e-10), name
        assert row[f"position_{name}"] == pytest.approx(ref * 3 * 100, rel=1e-7, abs=1e-8)
    assert row["market_value"] == pytest.approx(3 * 100 * float(listed["mid"]))
    assert row["notional_exposure"] == pytest.approx(3 * 100 * S)
    assert row["delta_exposure"] == pytest.approx(m.callDelta * 3 * 100 * S, rel=1e-7)


def test_unlisted_option_uses_realised_vol(book, provider):
    frame, _, _ = book
    row = frame.loc["o2"]
    bars = provider.daily_bars("AAPL", AS_OF - dt.timedelta(days=120), AS_OF)
    returns = np.diff(np.log(bars["close"].to_numpy()[-31:]))
    realised = returns.std(ddof=1) * math.sqrt(252)
    assert row["vol_source"] == "realised" and row["iv"] == pytest.approx(realised)
    S, K, q = row["underlying_price"], row["strike"], dividend_yield(provider, "AAPL")
    m = mibian.Me([S, K, 4.5, q * S, row["time_to_expiry"] * 365], volatility=realised * 100)
    assert row["price"] == pytest.approx(m.putPrice, rel=1e-8)
    assert row["delta"] == pytest.approx(m.putDelta, rel=1e-7)
    assert row["position_delta"] == pytest.approx(m.putDelta * -2 * 100, rel=1e-7)
    assert row["position_delta"] > 0  # short put: long delta


def test_expired_option_is_intrinsic_at_expiry_with_zero_greeks(book, provider):
    frame, _, _ = book
    row = frame.loc["o3"]
    settle = provider.daily_bars("AAPL", "2024-06-14", "2024-06-21")["close"].iloc[-1]
    assert row["expired"] and row["time_to_expiry"] < 0
    assert row["price"] == pytest.approx(max(settle - 150.0, 0.0))
    for name in ("delta", "gamma", "theta", "vega", "rho"):
        assert row[name] == 0.0 and row[f"position_{name}"] == 0.0
    assert row["notional_exposure"] == 0.0 and row["delta_exposure"] == 0.0


def test_exposures_hand_worked(book):
    from compute.exposure import aggregate_exposures

    frame, _, _ = book
    mv = frame["market_value"].to_numpy()
    report = aggregate_exposures(mv, frame["delta_exposure"].to_numpy())
    assert report.total["notional"]["long"] == pytest.approx(mv[mv > 0].sum())
    assert report.total["notional"]["short"] == pytest.approx(mv[mv < 0].sum())
    assert report.total["notional"]["gross"] == pytest.approx(np.abs(mv).sum())
    assert report.total["notional"]["net"] == pytest.approx(mv.sum())


def test_missing_volatility_gives_nan_not_numbers():
    # A realised-vol window longer than the history the provider has (it starts in 1990; OCC
    # symbols start in 2000), and an off-grid strike: no volatility, so no numbers.
    provider = make_provider("synthetic", seed=3)
    as_of = dt.date(2000, 1, 7)
    expiry = next_monthly_expiry(as_of, 1)
    row = _row("x", format_occ("MSFT", expiry, "C", 123.37), "MSFT", "LC", 1, 1.0, 123.37, expiry, "C")
    out = price_positions(pd.DataFrame([row]), provider, as_of=as_of, realised_window=8000).iloc[0]
    assert out["vol_source"] is None
    assert math.isnan(out["price"]) and math.isnan(out["delta"]) and math.isnan(out["market_value"])


def test_resolve_position_rules():
    from services.portfolio.service import PortfolioInputError, resolve_position

    spec = resolve_position("spy", 3, "LC", 460, "2026-09-18", 5.0)
    assert spec.symbol == "SPY260918C00460000" and spec.type == "LC" and spec.multiplier == 100
    assert resolve_position("SPY260918P00460000", -2, price=1).type == "SP"
    assert resolve_position("brk.b", -5, price=1).symbol == "BRK-B"
    for args, field in (
        (("AAPL", 10, "SHORT", None, None, 1.0), "quantity"),
        (("AAPL", 0, "LONG", None, None, 1.0), "quantity"),
        (("AAPL", 10, "LC", None, "2026-09-18", 1.0), "strike"),
        (("SPY260918C00460000", 1, "LP", None, None, 1.0), "type"),
        (("SPY260918C00460000", 1, "SC", None, None, 1.0), "quantity"),
        (("AAPL", 10, "LONG", None, None, -1.0), "price"),
        (("AAPL", 10, "BOGUS", None, None, 1.0), "type"),
        (("$$$", 10, None, None, None, 1.0), "ticker"),
    ):
        with pytest.raises(PortfolioInputError) as err:
            resolve_position(*args)
        assert err.value.field == field, args


def test_csv_parse_lists_every_bad_row():
    from services.portfolio.upload import UploadRejected, parse_csv

    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    text = ("Ticker,QUANTITY,Entry_Price,entry_date,tags,notes\n"
            "AAPL,100,150.5,2024-01-02,\"#tech, core\",ignored\n"
            "SPY250919C00460000,-2,4.1,2024-01-02,,\n"
            "MSFT,abc,300,2024-01-02,,\n"
            "NVDA,10,-1,2024-01-02,,\n"
            f"AMD,5,100,{future},,\n"
            "AAPL,5,100,2024-01-02,,\n"
            "SPY250919X00460000,1,1,2024-01-02,,\n")
    with pytest.raises(UploadRejected) as err:
        parse_csv(text.encode())
    by_line = {(e["line"], e["field"]) for e in err.value.errors}
    assert by_line == {(4, "quantity"), (5, "entry_price"), (6, "entry_date"), (7, "ticker"), (8, "ticker")}
    good, has_tags = parse_csv("\n".join(text.splitlines()[:3]).encode())
    assert has_tags and [r["spec"].symbol for r in good] == ["AAPL", "SPY250919C00460000"]
    assert good[0]["tags"] == ["#tech", "core"] and good[1]["spec"].type == "SC"
    with pytest.raises(UploadRejected) as err:
        parse_csv(b"symbol,qty\nAAPL,1\n")
    assert {e["field"] for e in err.value.errors} == {"ticker", "quantity", "entry_price"}
