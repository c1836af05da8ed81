"""Trade lists: hand-worked order legs, CSV, and FIX 4.4 messages read back by simplefix's
parser with BodyLength and CheckSum recomputed by hand."""

import csv
import datetime as dt
import io

import numpy as np
import pytest
import simplefix

from compute.tradelist import CSV_COLUMNS, order_legs, orders_csv, orders_fix

OCC = "SPY250117P00420000"


@pytest.mark.parametrize("before, after, legs", [
    (100, 60, [("SELL", 40)]),
    (100, 0, [("SELL", 100)]),
    (100, 150, [("BUY", 50)]),
    (0, 10, [("BUY", 10)]),
    (100, -50, [("SELL", 100), ("SELL_SHORT", 50)]),
    (-50, -80, [("SELL_SHORT", 30)]),
    (-50, 0, [("BUY_TO_COVER", 50)]),
    (-50, 20, [("BUY_TO_COVER", 50), ("BUY", 20)]),
    (25, 25, []),
])
def test_equity_legs(before, after, legs):
    orders = order_legs("aapl", before, after)
    assert [(o.action, o.quantity) for o in orders] == legs
    assert all(o.symbol == "AAPL" and o.order_type == "MARKET" and o.time_in_force == "DAY" for o in orders)


@pytest.mark.parametrize("before, after, legs", [
    (0, 5, [("BUY_TO_OPEN", 5)]),
    (5, 2, [("SELL_TO_CLOSE", 3)]),
    (5, -3, [("SELL_TO_CLOSE", 5), ("SELL_TO_OPEN", 3)]),
    (-3, 0, [("BUY_TO_CLOSE", 3)]),
    (-3, 4, [("BUY_TO_CLOSE", 3), ("BUY_TO_OPEN", 4)]),
])
def test_option_legs_are_limit_orders_at_the_mid(before, after, legs):
    orders = order_legs(OCC, before, after, mid=5.499)
    assert [(o.action, o.quantity) for o in orders] == legs
    for o in orders:
        assert (o.order_type, o.limit_price, o.security_type) == ("LIMIT", 5.5, "OPTION")
        assert (o.underlying, o.put_call, o.strike, o.expiry) == ("SPY", "PUT", 420.0, "2025-01-17")
    with pytest.raises(ValueError, match="mid"):
        order_legs(OCC, 0, 1)


def test_legs_conserve_the_change():
    sign = {"BUY": 1, "BUY_TO_COVER": 1, "BUY_TO_OPEN": 1, "BUY_TO_CLOSE": 1,
            "SELL": -1, "SELL_SHORT": -1, "SELL_TO_CLOSE": -1, "SELL_TO_OPEN": -1}
    rng = np.random.default_rng(7)
    for before, after in rng.integers(-500, 500, size=(500, 2)):
        for symbol in ("MSFT", OCC):
            orders = order_legs(symbol, int(before), int(after), mid=1.0)
            assert sum(sign[o.action] * o.quantity for o in orders) == after - before
            assert len(orders) <= 2 and all(o.quantity > 0 for o in orders)


def test_csv_basket():
    orders = order_legs("AAPL", 300, 100) + order_legs(OCC, 0, 10, mid=5.5)
    rows = list(csv.DictReader(io.StringIO(orders_csv(orders))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0] == {"action": "SELL", "symbol": "AAPL", "quantity": "200", "order_type": "MARKET", "limit_price": "",
                       "time_in_force": "DAY", "security_type": "EQUITY", "underlying": "", "put_call": "", "strike": "",
                       "expiry": ""}
    assert rows[1]["action"] == "BUY_TO_OPEN" and rows[1]["symbol"] == OCC and rows[1]["limit_price"] == "5.5"


def _fields(raw: bytes) -> list[tuple[str, str]]:
    return [tuple(f.split(b"=", 1)) for f in raw.rstrip(b"\x01").split(b"\x01")]


def test_fix_new_order_single_read_back_by_a_fix_parser():
    when = dt.datetime(2026, 12, 3, 15, 4, 5, 123000, tzinfo=dt.timezone.utc)
    orders = order_legs("AAPL", 100, -50) + order_legs(OCC, 0, 10, mid=5.5)
    messages = orders_fix(orders, sender="SIGMA", target="BRKR", transact_time=when)
    assert len(messages) == 3
    parser = simplefix.FixParser()
    for raw in messages:
        parser.append_buffer(raw)
    parsed = [parser.get_message() for _ in messages]
    # BodyLength and CheckSum, by hand: bytes after "9=n|" up to "10=", and their sum mod 256
    for raw in messages:
        fields = _fields(raw)
        assert fields[0] == (b"8", b"FIX.4.4") and fields[1][0] == b"9" and fields[2] == (b"35", b"D")
        start = raw.index(b"\x01", raw.index(b"9=")) + 1
        end = raw.rindex(b"10=")
        assert int(fields[1][1]) == end - start
        assert fields[-1] == (b"10", f"{sum(raw[:end]) % 256:03d}".encode())
    sell, short, option = parsed
    assert (sell.get(55), sell.get(54), sell.get(38), sell.get(40), sell.get(59), sell.get(77)) == (
        b"AAPL", b"2", b"100", b"1", b"0", b"C")
    assert sell.get(44) is None and sell.get(60) == b"20261203-15:04:05.123"
    assert (short.get(54), short.get(38), short.get(77)) == (b"5", b"50", b"O")
    assert (option.get(55), option.get(54), option.get(40), option.get(44), option.get(167), option.get(201),
            option.get(202), option.get(541), option.get(311), option.get(77)) == (
        b"SPY", b"1", b"2", b"5.50", b"OPT", b"0", b"420", b"20250117", b"SPY", b"O")
    assert len({m.get(11) for m in parsed}) == 3 and [m.get(34) for m in parsed] == [b"1", b"2", b"3"]
