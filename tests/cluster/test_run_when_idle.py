"""Start-up warm-ups run on CPU nobody else wants (``cluster.runtime.run_when_idle``)."""

from __future__ import annotations

import os
import threading

import pytest

from cluster.runtime import run_when_idle

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policy")


def test_the_work_runs_under_sched_idle_on_its_own_thread_and_the_caller_keeps_its_policy():
    before = os.sched_getscheduler(0)
    seen = run_when_idle(lambda x: (os.sched_getscheduler(0), threading.get_ident(), x), 7)
    assert seen[0] == os.SCHED_IDLE and seen[1] != threading.get_ident() and seen[2] == 7
    assert os.sched_getscheduler(0) == before == os.SCHED_OTHER


def test_what_the_work_raises_reaches_the_caller():
    def fails():
        raise LookupError("no such area")

    with pytest.raises(LookupError, match="no such area"):
        run_when_idle(fails)
