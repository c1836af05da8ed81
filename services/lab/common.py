"""What every Lab module shares: the input error, JSON cleaning, the code version, dates, limits."""

from __future__ import annotations

import datetime as dt
import logging

from cluster.errors import InputError
from compute.lineage import LAB_MODULES, source_digest


log = logging.getLogger("sigma.lab")

#: Request limits: a matrix spans at most this many calendar days per cadence.
MAX_SPAN_DAYS = {"daily": 366 * 30, "hourly": 366 * 5}
DEFAULT_SPLITS = 5
ANNUAL_SESSIONS = 252.0
#: Configurations in one sweep (and rows in one leaderboard CSV) at the most.
MAX_CONFIGS = 200_000


class LabInputError(InputError):
    """Bad input to a Lab operation (models, matrices, training, backtests, sweeps, signals)."""


# ----------------------------------------------------------------- helpers



def code_version() -> str:
    """The digest of the compute modules behind matrices, trainers and backtests: recorded in
    every lineage so a result names the code that produced it."""
    return source_digest(LAB_MODULES)


def parse_date(value, field_name: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise LabInputError(field_name, "must be a date in YYYY-MM-DD format") from None
