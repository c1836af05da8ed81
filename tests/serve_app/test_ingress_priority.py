"""The API replica runs below the job workers' CPU priority (``Settings.ingress_nice``), so a
sweep keeps its pace while users load the API (issue 18)."""

from __future__ import annotations

import os
import time

import psutil

from cluster.config import Settings


def test_api_replica_runs_below_the_job_workers(api):
    api.http.get("/api/v1/healthz")
    replicas = [p for p in psutil.process_iter(["cmdline"])
                if any("SigmaIngress" in part for part in (p.info["cmdline"] or []))]
    jobs = [p for p in psutil.process_iter(["cmdline"])
            if any(part.startswith(("ray::JobManager", "ray::RateLimiter")) for part in (p.info["cmdline"] or []))]
    assert replicas and jobs
    want = Settings().ingress_nice
    assert want == 19 and {p.nice() for p in jobs} == {15}  # Ray's own worker niceness
    deadline = time.monotonic() + 10
    while True:  # every thread of the replica (Linux keeps a niceness per thread)
        nices = {os.getpriority(os.PRIO_PROCESS, t.id) for p in replicas for t in p.threads()}
        if nices == {want} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert nices == {want}
