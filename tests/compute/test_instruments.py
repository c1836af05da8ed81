"""OCC symbols, position types, multipliers and monthly expiry dates."""

import datetime as dt

import numpy as np
import pytest

from compute.instruments import (
    OptionSymbol,
    PositionType,
    add_months,
    contract_multiplier,
    easter_sunday,
    format_occ,
    is_occ_symbol,
    monthly_expiry,
    next_monthly_expiry,
    parse_occ,
    position_type,
    third_friday,
    year_fraction,
)


def test_parse_documented_example():
    option = parse_occ("SPY250919C00460000")
    assert option == OptionSymbol(root="SPY", expiry=dt.date(2025, 9, 19), right="C", strike=460.0)
    assert option.is_call
    assert option.occ == "SPY250919C00460000"


@pytest.mark.parametrize(
    "symbol, root, expiry, right, strike",
    [
        ("AAPL  251219P00197500", "AAPL", dt.date(2025, 12, 19), "P", 197.5),  # padded 21-char form
        ("BRK.B260116C00500000", "BRK.B", dt.date(2026, 1, 16), "C", 500.0),
        ("BRK-B260116P00487500", "BRK-B", dt.date(2026, 1, 16), "P", 487.5),
        ("spxw250103c05900000", "SPXW", dt.date(2025, 1, 3), "C", 5900.0),
        ("F250117C00000500", "F", dt.date(2025, 1, 17), "C", 0.5),
        ("SPY1250919C00460000", "SPY1", dt.date(2025, 9, 19), "C", 460.0),
    ],
)
def test_parse_variants(symbol, root, expiry, right, strike):
    option = parse_occ(symbol)
    assert (option.root, option.expiry, option.right, option.strike) == (root, expiry, right, strike)


def test_random_round_trips():
    rng = np.random.default_rng(1)
    alphabet = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    for _ in range(2_000):
        root = "".join(rng.choice(alphabet, rng.integers(1, 7)))
        expiry = dt.date(2000, 1, 1) + dt.timedelta(days=int(rng.integers(0, 36_500)))
        right = "C" if rng.random() < 0.5 else "P"
        strike = int(rng.integers(1, 99_999_999)) / 1000.0
        symbol = format_occ(root, expiry, right, strike)
        assert len(symbol) == len(root) + 15
        parsed = parse_occ(symbol)
        assert (parsed.root, parsed.expiry, parsed.right, parsed.strike) == (root, expiry, right, strike)
        assert parsed.occ == symbol


@pytest.mark.parametrize(
    "symbol, problem",
    [
        ("SPY251319C00460000", "not a date"),  # month 13
        ("SPY250931C00460000", "not a date"),  # 31 September
        ("SPY250919X00460000", "expected root"),  # right is not C/P
        ("SPY250919C0046000", "expected root"),  # 7-digit strike
        ("TOOLONG250919C00460000", "root"),  # 7-char root
        ("SP Y250919C00460000", "root"),  # space inside the root
        ("SPY250919C00000000", "strike is zero"),
        ("250919C00460000", "too short"),
        ("SPY", "too short"),
    ],
)
def test_bad_symbols_raise_value_error(symbol, problem):
    with pytest.raises(ValueError, match=problem):
        parse_occ(symbol)
    assert not is_occ_symbol(symbol)


def test_format_rejects_bad_fields():
    with pytest.raises(ValueError, match="strike"):
        format_occ("SPY", dt.date(2025, 9, 19), "C", 460.0001)
    with pytest.raises(ValueError, match="strike"):
        format_occ("SPY", dt.date(2025, 9, 19), "C", 100_000.0)
    with pytest.raises(ValueError, match="right"):
        format_occ("SPY", dt.date(2025, 9, 19), "X", 460.0)
    with pytest.raises(ValueError, match="root"):
        format_occ("SPY$", dt.date(2025, 9, 19), "C", 460.0)
    assert format_occ("spy", dt.date(2025, 9, 19), "put", 460.5) == "SPY250919P00460500"


@pytest.mark.parametrize(
    "symbol, quantity, expected",
    [
        ("AAPL", 100, PositionType.LONG),
        ("AAPL", -50, PositionType.SHORT),
        ("BRK.B", 3, PositionType.LONG),
        ("SPY250919C00460000", 2, PositionType.LC),
        ("SPY250919C00460000", -2, PositionType.SC),
        ("SPY250919P00460000", 1, PositionType.LP),
        ("SPY250919P00460000", -1, PositionType.SP),
    ],
)
def test_position_type(symbol, quantity, expected):
    kind = position_type(symbol, quantity)
    assert kind is expected
    assert kind.is_option == (expected not in (PositionType.LONG, PositionType.SHORT))
    assert kind.multiplier == (100 if kind.is_option else 1)
    assert kind.direction == (1 if quantity > 0 else -1)
    assert contract_multiplier(symbol) == kind.multiplier


def test_position_type_errors():
    with pytest.raises(ValueError, match="non-zero"):
        position_type("AAPL", 0)
    with pytest.raises(ValueError, match="not a date"):
        position_type("SPY251319C00460000", 1)
    with pytest.raises(ValueError, match="neither a stock ticker"):
        position_type("not a ticker!", 1)
    with pytest.raises(ValueError, match="quantity"):
        position_type("AAPL", "lots")


def test_position_type_enum_round_trip():
    assert [t.value for t in PositionType] == ["LONG", "SHORT", "LC", "LP", "SC", "SP"]
    assert PositionType("SC").is_call is True
    assert PositionType("LP").is_call is False
    assert PositionType("LONG").is_call is None


def test_third_friday_and_holiday_expiries():
    assert third_friday(2025, 9) == dt.date(2025, 9, 19)
    assert third_friday(2024, 3) == dt.date(2024, 3, 15)
    assert third_friday(2026, 1) == dt.date(2026, 1, 16)
    # Good Friday 2025 is the third Friday of April: the monthly expiry moved to Thursday
    assert easter_sunday(2025) == dt.date(2025, 4, 20)
    assert monthly_expiry(2025, 4) == dt.date(2025, 4, 17)
    # Juneteenth 2026 falls on the third Friday of June
    assert monthly_expiry(2026, 6) == dt.date(2026, 6, 18)
    assert monthly_expiry(2025, 6) == dt.date(2025, 6, 20)


def test_easter_known_dates():
    known = {2000: (4, 23), 2019: (4, 21), 2024: (3, 31), 2026: (4, 5), 2038: (4, 25)}
    for year, (month, day) in known.items():
        assert easter_sunday(year) == dt.date(year, month, day)


def test_next_monthly_expiry():
    assert next_monthly_expiry(dt.date(2025, 9, 1)) == dt.date(2025, 9, 19)
    assert next_monthly_expiry(dt.date(2025, 9, 19)) == dt.date(2025, 9, 19)
    assert next_monthly_expiry(dt.date(2025, 9, 20)) == dt.date(2025, 10, 17)
    assert next_monthly_expiry(dt.date(2025, 1, 10), months=1) == dt.date(2025, 2, 21)
    assert next_monthly_expiry(dt.date(2025, 1, 31), months=1) == dt.date(2025, 3, 21)  # Feb 28 + later
    assert next_monthly_expiry(dt.date(2025, 11, 25), months=2) == dt.date(2026, 2, 20)
    assert next_monthly_expiry(dt.date(2025, 3, 20), months=1) == dt.date(2025, 5, 16)  # past Apr 17
    with pytest.raises(ValueError, match="months"):
        next_monthly_expiry(dt.date(2025, 1, 1), months=-1)


def test_add_months_and_year_fraction():
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert add_months(dt.date(2025, 12, 15), 1) == dt.date(2026, 1, 15)
    assert add_months(dt.date(2025, 12, 15), 25) == dt.date(2028, 1, 15)
    assert year_fraction(dt.date(2025, 1, 1), dt.date(2026, 1, 1)) == 1.0
    assert year_fraction(dt.date(2025, 1, 2), dt.date(2025, 1, 1)) == -1.0 / 365.0
