"""What names the code behind a result: a digest of compute modules' source, recorded in
every lineage (matrices, trainings, walk-forward inputs) so a result is reproducible."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent

#: The modules behind a feature matrix.
FEATURE_MODULES = ("features.py", "indicators.py", "indicators_nb.py")
#: The modules behind matrices, trainers and backtests (a Lab result's lineage).
LAB_MODULES = FEATURE_MODULES + ("train.py", "train_nb.py", "backtest.py", "backtest_nb.py",
                                 "walkforward.py", "gates.py", "stats.py", "stats_nb.py")


@lru_cache(maxsize=8)
def source_digest(modules: tuple[str, ...]) -> str:
    """First 16 hex digits of the SHA-256 over each module's name and source, in order."""
    h = hashlib.sha256()
    for name in modules:
        path = _HERE / name
        h.update(name.encode())
        if path.exists():
            h.update(path.read_bytes())
    return h.hexdigest()[:16]
