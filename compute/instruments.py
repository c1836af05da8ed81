"""Instruments: position types, OCC option symbols, contract multipliers and expiry dates.

OCC option symbol (OSI): root + YYMMDD expiry + C/P + strike x 1000 as 8 digits, e.g.
``SPY250919C00460000`` = SPY call expiring 2025-09-19 with strike 460. The official 21-character
form pads the root with spaces to 6 characters (``SPY   250919C00460000``); both are accepted,
the compact form is produced. Every malformed input raises ``ValueError`` naming the problem.
"""

import datetime as dt
import enum
import re
from dataclasses import dataclass

from compute.errors import InvalidTicker
from compute.limits import MAX_STRIKE as _MAX_STRIKE

OPTION_MULTIPLIER = 100
STOCK_MULTIPLIER = 1
DAYS_PER_YEAR = 365.0

_ROOT_RE = re.compile(r"[A-Z0-9.\-]{1,6}")
#: A stock or ETF ticker once normalised: 1-10 letters, digits or '-', starting with a letter
#: or digit (share classes written with '-': BRK-B).
TICKER_RE = re.compile(r"[A-Z0-9][A-Z0-9\-]{0,9}")
_OCC_TAIL_RE = re.compile(r"(\d{2})(\d{2})(\d{2})([CP])(\d{8})")
_OCC_TAIL_LEN = 15


def normalize_ticker(raw) -> str:
    """The one ticker rule: blanks stripped, upper-case, a share class's '.' written '-'
    (``brk.b`` -> ``BRK-B``); then 1-10 letters, digits or '-', starting with a letter or
    digit.  ``InvalidTicker`` (a ``ValueError`` and a ``MarketDataError``) otherwise."""
    text = str(raw if raw is not None else "").strip().upper().replace(".", "-")
    if not TICKER_RE.fullmatch(text):
        raise InvalidTicker(f"invalid ticker {raw!r}: 1-10 letters, digits, '.' or '-', "
                            "starting with a letter or digit (e.g. AAPL, BRK.B)")
    return text


class PositionType(str, enum.Enum):
    """Position types of spec 3.7: equity long/short and long/short calls and puts."""

    LONG = "LONG"
    SHORT = "SHORT"
    LC = "LC"
    LP = "LP"
    SC = "SC"
    SP = "SP"

    @property
    def is_option(self) -> bool:
        return self in (PositionType.LC, PositionType.LP, PositionType.SC, PositionType.SP)

    @property
    def is_long(self) -> bool:
        return self in (PositionType.LONG, PositionType.LC, PositionType.LP)

    @property
    def direction(self) -> int:
        """+1 for long positions, -1 for short ones."""
        return 1 if self.is_long else -1

    @property
    def is_call(self) -> bool | None:
        """True for calls, False for puts, None for stock positions."""
        if not self.is_option:
            return None
        return self in (PositionType.LC, PositionType.SC)

    @property
    def multiplier(self) -> int:
        return OPTION_MULTIPLIER if self.is_option else STOCK_MULTIPLIER


@dataclass(frozen=True)
class OptionSymbol:
    """A parsed OCC option symbol; ``strike`` in dollars, ``right`` is "C" or "P"."""

    root: str
    expiry: dt.date
    right: str
    strike: float

    @property
    def is_call(self) -> bool:
        return self.right == "C"

    @property
    def occ(self) -> str:
        return format_occ(self.root, self.expiry, self.right, self.strike)

    def __str__(self) -> str:
        return self.occ


def _normalise_root(root: str) -> str:
    cleaned = str(root).strip().upper()
    if not _ROOT_RE.fullmatch(cleaned):
        raise ValueError(
            f"invalid option root {root!r}: expected 1-6 characters of letters, digits, '.' or '-'"
        )
    return cleaned


def format_occ(root: str, expiry: dt.date, right: str, strike: float) -> str:
    """Compact OCC symbol: root + YYMMDD + C/P + round(strike x 1000) as 8 digits."""
    root_part = _normalise_root(root)
    if not isinstance(expiry, dt.date):
        raise ValueError(f"invalid expiry {expiry!r}: expected a datetime.date")
    if not 2000 <= expiry.year <= 2099:
        raise ValueError(f"invalid expiry {expiry.isoformat()}: OCC symbols encode years 2000-2099")
    right_part = str(right).strip().upper()
    if right_part in ("CALL", "PUT"):
        right_part = right_part[0]
    if right_part not in ("C", "P"):
        raise ValueError(f"invalid option right {right!r}: expected 'C' or 'P'")
    strike_value = float(strike)
    if not (0.0 < strike_value <= _MAX_STRIKE):
        raise ValueError(f"invalid strike {strike!r}: expected 0 < strike <= {_MAX_STRIKE}")
    strike_milli = round(strike_value * 1000.0)
    if abs(strike_milli - strike_value * 1000.0) > 1e-6 * max(1.0, strike_value):
        raise ValueError(f"invalid strike {strike!r}: OCC strikes have at most 3 decimals")
    return f"{root_part}{expiry:%y%m%d}{right_part}{strike_milli:08d}"


def _looks_like_occ(text: str) -> bool:
    return len(text) > _OCC_TAIL_LEN and _OCC_TAIL_RE.fullmatch(text[-_OCC_TAIL_LEN:]) is not None


def parse_occ(symbol: str) -> OptionSymbol:
    """Parse an OCC option symbol (compact or space-padded) into an ``OptionSymbol``."""
    if not isinstance(symbol, str):
        raise ValueError(f"invalid OCC symbol {symbol!r}: expected a string")
    text = symbol.strip().upper()
    if len(text) <= _OCC_TAIL_LEN:
        raise ValueError(
            f"invalid OCC symbol {symbol!r}: too short, expected root + YYMMDD + C/P + 8-digit strike"
        )
    tail = _OCC_TAIL_RE.fullmatch(text[-_OCC_TAIL_LEN:])
    if tail is None:
        raise ValueError(
            f"invalid OCC symbol {symbol!r}: expected root + YYMMDD + C/P + 8-digit strike "
            "(e.g. SPY250919C00460000)"
        )
    root = text[:-_OCC_TAIL_LEN].rstrip()
    if not _ROOT_RE.fullmatch(root):
        raise ValueError(
            f"invalid OCC symbol {symbol!r}: root {root!r} must be 1-6 letters, digits, '.' or '-'"
        )
    yy, mm, dd, right, strike_digits = tail.groups()
    try:
        expiry = dt.date(2000 + int(yy), int(mm), int(dd))
    except ValueError as exc:
        raise ValueError(f"invalid OCC symbol {symbol!r}: expiry {yy}{mm}{dd} is not a date ({exc})") from None
    strike_milli = int(strike_digits)
    if strike_milli == 0:
        raise ValueError(f"invalid OCC symbol {symbol!r}: strike is zero")
    return OptionSymbol(root=root, expiry=expiry, right=right, strike=strike_milli / 1000.0)


def is_occ_symbol(text: str) -> bool:
    """True when ``text`` parses as an OCC option symbol."""
    try:
        parse_occ(text)
    except ValueError:
        return False
    return True


def position_type(ticker_or_occ: str, quantity: float) -> PositionType:
    """Position type from a stock ticker or OCC symbol and a signed quantity (sign = direction).

    Stock: LONG / SHORT. Option: LC / SC for calls, LP / SP for puts. Quantity 0 or NaN and
    strings that are neither a ticker nor a well-formed OCC symbol raise ``ValueError``.
    """
    if not isinstance(ticker_or_occ, str):
        raise ValueError(f"invalid symbol {ticker_or_occ!r}: expected a string")
    try:
        qty = float(quantity)
    except (TypeError, ValueError):
        raise ValueError(f"invalid quantity {quantity!r}: expected a number") from None
    if not qty or qty != qty:
        raise ValueError(f"invalid quantity {quantity!r} for {ticker_or_occ!r}: must be non-zero")
    text = ticker_or_occ.strip().upper()
    if _looks_like_occ(text):
        option = parse_occ(text)
        if option.is_call:
            return PositionType.LC if qty > 0 else PositionType.SC
        return PositionType.LP if qty > 0 else PositionType.SP
    if TICKER_RE.fullmatch(text.replace(".", "-")):
        return PositionType.LONG if qty > 0 else PositionType.SHORT
    raise ValueError(
        f"invalid symbol {ticker_or_occ!r}: neither a stock ticker (1-10 letters, digits, '.', '-') "
        "nor an OCC option symbol (e.g. SPY250919C00460000)"
    )


def contract_multiplier(ticker_or_occ: str) -> int:
    """100 for OCC option symbols, 1 for stock tickers."""
    return OPTION_MULTIPLIER if _looks_like_occ(str(ticker_or_occ).strip().upper()) else STOCK_MULTIPLIER


def days_to_expiry(as_of: dt.date, expiry: dt.date) -> int:
    """Calendar days from ``as_of`` to ``expiry`` (0 on expiry day, negative after)."""
    return (expiry - as_of).days


def year_fraction(as_of: dt.date, expiry: dt.date) -> float:
    """Time to expiry in years as mibian counts it: calendar days / 365."""
    return days_to_expiry(as_of, expiry) / DAYS_PER_YEAR


#: Annual volatilities are measured over 252 sessions of 390 minutes.
TRADING_SECONDS_PER_YEAR = 252 * 390 * 60.0
CALENDAR_SECONDS_PER_YEAR = DAYS_PER_YEAR * 86400.0


def expiry_year_fraction(seconds_to_expiry):
    """Black-Scholes time for an option ``seconds_to_expiry`` (scalar or array) from expiring.

    Under a day to go (a same-day, 0DTE contract) the clock is the one the volatility is
    measured on, trading time: remaining seconds / (252 x 390 minutes). Counting those hours
    on the calendar clock (/ 365 days) would price a 0DTE at about 1/2.3 of its volatility
    and make buying same-day options a money machine. Beyond a day, calendar days / 365 as
    mibian counts them (overnight and weekend variance is spread over the calendar). After
    expiry the (negative) calendar fraction, so callers can tell how long ago it expired.
    """
    import numpy as np

    seconds = np.asarray(seconds_to_expiry, dtype=np.float64)
    intraday = (seconds >= 0.0) & (seconds < 86400.0)
    out = np.where(intraday, seconds / TRADING_SECONDS_PER_YEAR, seconds / CALENDAR_SECONDS_PER_YEAR)
    return float(out) if out.ndim == 0 else out


def easter_sunday(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian / Meeus-Jones-Butcher algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 (the algorithm's own name)
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def third_friday(year: int, month: int) -> dt.date:
    """The third Friday of a month (standard monthly equity option expiry)."""
    first = dt.date(year, month, 1)
    offset = (4 - first.weekday()) % 7  # Friday is weekday 4
    return first + dt.timedelta(days=offset + 14)


def _is_friday_exchange_holiday(day: dt.date) -> bool:
    # Only two NYSE holidays can fall on a third Friday: Good Friday and Juneteenth (since 2022);
    # the others are fixed Mondays or dates outside the 15th-21st window.
    if day == easter_sunday(day.year) - dt.timedelta(days=2):
        return True
    return day.year >= 2022 and day.month == 6 and day.day == 19


def monthly_expiry(year: int, month: int) -> dt.date:
    """Monthly option expiry: the third Friday, or the Thursday before when it is a holiday."""
    friday = third_friday(year, month)
    if _is_friday_exchange_holiday(friday):
        return friday - dt.timedelta(days=1)
    return friday


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` shifted by whole calendar months, clamped to the end of shorter months."""
    index = day.year * 12 + (day.month - 1) + int(months)
    year, month0 = divmod(index, 12)
    next_month_first = dt.date(year + (month0 + 1) // 12, (month0 + 1) % 12 + 1, 1)
    last_day = (next_month_first - dt.timedelta(days=1)).day
    return dt.date(year, month0 + 1, min(day.day, last_day))


def next_monthly_expiry(after: dt.date, months: int = 0) -> dt.date:
    """First monthly expiry on or after ``after`` + ``months`` calendar months."""
    if months < 0:
        raise ValueError(f"invalid months {months!r}: must be >= 0")
    earliest = add_months(after, months)
    candidate = monthly_expiry(earliest.year, earliest.month)
    if candidate < earliest:
        shifted = add_months(dt.date(earliest.year, earliest.month, 1), 1)
        candidate = monthly_expiry(shifted.year, shifted.month)
    return candidate
