"""Bounds on what a book may hold: the one place they are written down.

Every route that takes positions or trades (POST/PATCH /positions, POST /risk/greeks/calculate,
the CSV upload) enforces them, through the request schemas (``serve_app/schemas``) and the
portfolio service (``services.portfolio.service.resolve_position``), so that no accepted input
can turn a figure of the book into null, infinity or NaN: with every figure inside these
bounds, a position's value is at most 1e9 x 1e7 x 100 = 1e18 dollars and sums, squares and
products of a book's figures stay far inside double precision (about 1.8e308).

The bounds (docs/portfolio.md, "Bounds"):

- quantity: non-zero, ``|quantity| <= 1e9`` shares or contracts;
- price (entry price per share, also an option's per-share premium): ``0 < price <= 1e7``;
- strike: ``0 < strike <= 99,999.999``, the largest strike an OCC symbol can encode (8 digits
  of thousandths);
- notional (``|quantity| x price x multiplier`` of one position at its entry price):
  ``<= 1e15`` dollars;
- a stress scenario's factor shock (``POST /risk/scenarios`` custom parameters):
  ``|shock| <= 100`` (10,000 %; returns, rate and volatility changes alike).
"""

from __future__ import annotations

import math

#: Largest |quantity| of one position, in shares or contracts.
MAX_ABS_QUANTITY = 1e9
#: Largest price per share (entry price; an option's per-share premium), in dollars.
MAX_PRICE = 1e7
#: Largest strike: an OCC symbol holds the strike x 1000 in 8 digits.
MAX_STRIKE = 99_999.999
#: Largest notional of one position at its entry price (|quantity| x price x multiplier).
MAX_NOTIONAL = 1e15
#: Largest |shock| of a custom stress scenario's factor (a return of +10,000 %).
MAX_ABS_SHOCK = 100.0


def _finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def quantity_problem(value) -> str | None:
    """Why ``value`` is not an acceptable quantity, or None."""
    number = _finite(value)
    if number is None:
        return "must be a finite number"
    if number == 0:
        return "must be non-zero (its sign is the direction)"
    if abs(number) > MAX_ABS_QUANTITY:
        return f"must be between -{MAX_ABS_QUANTITY:.0e} and {MAX_ABS_QUANTITY:.0e} (shares or contracts)"
    return None


def price_problem(value) -> str | None:
    """Why ``value`` is not an acceptable price per share, or None."""
    number = _finite(value)
    if number is None:
        return "must be a finite number"
    if not 0 < number <= MAX_PRICE:
        return f"must be > 0 and <= {MAX_PRICE:.0e}"
    return None


def strike_problem(value) -> str | None:
    """Why ``value`` is not an acceptable strike, or None."""
    number = _finite(value)
    if number is None:
        return "must be a finite number"
    if not 0 < number <= MAX_STRIKE:
        return f"must be > 0 and <= {MAX_STRIKE:,}"
    return None


def notional_problem(quantity: float, price: float, multiplier: float) -> str | None:
    """Why a position of ``quantity`` x ``multiplier`` at ``price`` is too large, or None."""
    notional = abs(float(quantity)) * float(price) * float(multiplier)
    if not notional <= MAX_NOTIONAL:
        return (f"the position's notional |quantity| x price x multiplier = {notional:.3g} "
                f"exceeds {MAX_NOTIONAL:.0e}")
    return None
