"""A replica's background warm-up loads what the first requests need (in a fresh process)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = """
import json
from numba.core.registry import CPUDispatcher
import compute.indicators_nb as ind
from compute.marketdata import calendar
from serve_app import warmup

def loaded():
    return sorted(n for n, f in vars(ind).items() if isinstance(f, CPUDispatcher) and f.signatures)

before = {"kernels": loaded(), "calendar": calendar._session_table.cache_info().currsize}
thread = warmup.start()
thread.join(120)
after = {"kernels": loaded(), "calendar": calendar._session_table.cache_info().currsize}
print(json.dumps({"before": before, "after": after, "alive": thread.is_alive()}))
"""


def test_warm_up_loads_calendar_and_indicator_kernels():
    out = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["before"] == {"kernels": [], "calendar": 0}
    assert not got["alive"] and got["after"]["calendar"] == 1
    # RSI, MACD (EMA), Bollinger and ATR kernels are loaded and ready to call
    assert len(got["after"]["kernels"]) >= 3, got
