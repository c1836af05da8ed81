"""What every Lab module shares: the input error, JSON cleaning, the code version, dates, limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import Path

from cluster.errors import InputError


log = logging.getLogger("sigma.lab")

#: Request limits: a matrix spans at most this many calendar days per cadence.
MAX_SPAN_DAYS = {"daily": 366 * 30, "hourly": 366 * 5}
DEFAULT_SPLITS = 5
ANNUAL_SESSIONS = 252.0
#: Configurations in one sweep (and rows in one leaderboard CSV) at the most.
MAX_CONFIGS = 200_000
_CODE_FILES = ("features.py", "indicators.py", "indicators_nb.py", "train.py", "train_nb.py",
               "backtest.py", "backtest_nb.py", "walkforward.py", "gates.py", "stats.py", "stats_nb.py")


class LabInputError(InputError):
    """Bad input to a Lab operation (models, matrices, training, backtests, sweeps, signals)."""


# ----------------------------------------------------------------- helpers



_code_version: str | None = None


def code_version() -> str:
    """First 16 hex digits of the SHA-256 of the compute modules behind matrices, trainers and
    backtests: recorded in every lineage so a result names the code that produced it."""
    global _code_version
    if _code_version is None:
        import compute

        here = Path(compute.__file__).resolve().parent
        h = hashlib.sha256()
        for name in _CODE_FILES:
            path = here / name
            h.update(name.encode())
            if path.exists():
                h.update(path.read_bytes())
        _code_version = h.hexdigest()[:16]
    return _code_version


def parse_date(value, field_name: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise LabInputError(field_name, "must be a date in YYYY-MM-DD format") from None
