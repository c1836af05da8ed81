"""The documented bounds (compute/limits.py): hand-worked edges, and the largest book they allow
stays finite in double precision."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compute import limits
from compute.instruments import format_occ
from compute.scenarios import validate_shocks


@pytest.mark.parametrize("value, ok", [(1, True), (-1, True), (1e9, True), (-1e9, True), (0.5, True),
                                       (0, False), (1e9 + 1, False), (-1.000001e9, False), (1e308, False),
                                       (float("inf"), False), (float("nan"), False), ("x", False), (None, False)])
def test_quantity(value, ok):
    assert (limits.quantity_problem(value) is None) is ok


@pytest.mark.parametrize("value, ok", [(0.0001, True), (1e7, True), (0, False), (-1, False), (1e7 * (1 + 1e-12), False),
                                       (1e308, False), (float("nan"), False)])
def test_price(value, ok):
    assert (limits.price_problem(value) is None) is ok


def test_strike_is_what_an_occ_symbol_can_hold():
    assert limits.strike_problem(99_999.999) is None and limits.strike_problem(100_000) is not None
    assert format_occ("SPY", __import__("datetime").date(2030, 1, 18), "C", limits.MAX_STRIKE).endswith("C99999999")
    with pytest.raises(ValueError):
        format_occ("SPY", __import__("datetime").date(2030, 1, 18), "C", 100_000)


def test_notional():
    assert limits.notional_problem(1e6, 1e7, 100) is None  # 1e15 exactly
    assert limits.notional_problem(-1e9, 1e7, 1) is not None  # 1e16
    assert limits.notional_problem(1e7, 1e7, 100) is not None


def test_the_largest_allowed_book_stays_finite():
    # 100,000 positions (the most a hypothetical request holds) at the notional bound, all one way:
    # sums, squares (variances) and products with a 100x shock stay finite.
    values = np.full(100_000, limits.MAX_NOTIONAL)
    total = values.sum()
    assert math.isfinite(total) and math.isfinite(total ** 2) and math.isfinite(total * limits.MAX_ABS_SHOCK)
    assert math.isfinite(float(np.var(np.concatenate([values, -values]))))


def test_scenario_shocks_are_bounded():
    assert validate_shocks({"spy_change": 100}) == {"Market": 100.0}
    for bad in (100.5, 1e308, -1e308):
        with pytest.raises(ValueError, match="spy_change"):
            validate_shocks({"spy_change": bad})
