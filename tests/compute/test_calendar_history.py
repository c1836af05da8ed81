"""NYSE calendar horizon: real sessions back to 1990 (known closures of the 1990s as the
reference), and the range shown in Settings."""

import datetime as dt

import pandas as pd
import pytest

from cluster.config import Settings
from compute.marketdata import calendar


def test_calendar_starts_with_the_first_session_of_1990():
    assert calendar.all_sessions().index[0] == pd.Timestamp("1990-01-02")
    assert calendar.is_session("1990-01-02")  # the "not an NYSE session"
    settings = Settings()
    assert settings.calendar_start == dt.date(1990, 1, 2)
    assert settings.calendar_end == calendar.CALENDAR_END.date()


@pytest.mark.parametrize("day, open_", [
    ("1990-01-01", False),   # New Year's Day
    ("1990-04-13", False),   # Good Friday
    ("1994-04-27", False),   # national day of mourning, President Nixon
    ("1985-09-27", None),    # before the horizon: refused below
    ("2001-09-11", False),   # closed 11-14 September 2001
    ("2001-09-17", True),    # reopened
    ("1998-12-31", True),
])
def test_closures_of_the_1990s_and_2001(day, open_):
    if open_ is None:
        with pytest.raises(ValueError, match="outside the calendar range 1990-01-02"):
            calendar.sessions(day, "1990-01-05")
        return
    assert calendar.is_session(day) is open_


def test_sessions_per_year_of_the_1990s():
    # 252-254 sessions a year; 1990 had 253
    counts = calendar.sessions("1990-01-02", "1999-12-31").index.year.value_counts()
    assert counts[1990] == 253
    assert counts.between(250, 254).all() and len(counts) == 10
