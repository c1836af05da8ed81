"""Sharded books on a local 2-node Ray cluster give the single-process numbers.

The cluster check runs in a subprocess: this pytest process may already hold a Ray session
(the ``ray_session`` fixture), and ``ray.cluster_utils.Cluster`` needs its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def random_book(n: int, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    types = rng.choice(["LONG", "SHORT", "LC", "LP", "SC", "SP"], n)
    sign = np.where(np.isin(types, ["LONG", "LC", "LP"]), 1.0, -1.0)
    mv = sign * rng.lognormal(9, 1.2, n)
    delta = np.where(np.isin(types, ["LONG", "SHORT"]), mv, sign * rng.lognormal(10, 1.0, n) * rng.choice([1, -1], n))
    tag_pool = [f"tag{i}" for i in range(12)]
    frame = pd.DataFrame({
        "type": types,
        "strategy": rng.choice(["pairs", "momentum", "", None], n),
        "sector": rng.choice(["Technology", "Energy", "Health Care", "Financials"], n),
        "market_value": mv,
        "delta_exposure": delta,
        "tags": [list(rng.choice(tag_pool, rng.integers(0, 4), replace=False)) for _ in range(n)],
    })
    for c in ("position_delta", "position_gamma", "position_theta", "position_vega", "position_rho", "dollar_delta"):
        frame[c] = rng.normal(0, 100, n)
    frame.loc[rng.integers(0, n, 5), "position_delta"] = np.nan  # unpriced contracts
    return frame


def _assert_same(merged: dict, single: dict) -> None:
    assert merged["positions"] == single["positions"]
    for measure in ("notional", "delta"):
        for stat in ("long", "short", "gross", "net"):
            assert merged["total"][measure][stat] == pytest.approx(single["total"][measure][stat], rel=1e-10)
    assert merged["groups"].keys() == single["groups"].keys()
    for name in single["groups"]:
        assert merged["groups"][name].keys() == single["groups"][name].keys()
        for label, values in single["groups"][name].items():
            assert merged["groups"][name][label]["count"] == values["count"]
            for measure in ("notional", "delta"):
                for stat in ("long", "short", "gross", "net"):
                    assert merged["groups"][name][label][measure][stat] == pytest.approx(values[measure][stat], rel=1e-10, abs=1e-6)
    for key, value in single["greeks"].items():
        assert merged["greeks"][key] == pytest.approx(value, rel=1e-9, abs=1e-6)


def test_partials_merge_equals_single_process_without_ray():
    from services.portfolio.shards import BookArrays, aggregate_book, merge_partials, partial_aggregates

    frame = random_book(20_000)
    arrays = BookArrays.from_frame(frame)
    single = aggregate_book(arrays)
    parts = [partial_aggregates(arrays.slice(lo, hi)) for lo, hi in ((0, 7000), (7000, 7001), (7001, 20_000))]
    _assert_same(merge_partials(parts), single)
    # hand check of the totals
    mv = frame["market_value"].to_numpy()
    assert single["total"]["notional"]["gross"] == pytest.approx(np.abs(mv).sum())
    assert single["groups"]["tag"]["tag3"]["count"] == sum("tag3" in t for t in frame["tags"])
    assert single["greeks"]["unpriced"] == frame["position_delta"].isna().sum()


CLUSTER_SCRIPT = r"""
import json, sys
import ray
from ray.cluster_utils import Cluster
sys.path.insert(0, {root!r})
from tests.services.test_portfolio_shards import random_book
from services.portfolio.shards import ShardedBook, aggregate_book

cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1, "include_dashboard": False}})
cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
try:
    ray.init(address=cluster.address, log_to_driver=False, runtime_env={{"env_vars": {{"PYTHONPATH": {root!r}}}}})
    frame = random_book(200_000)
    single = aggregate_book(frame)
    sharded = ShardedBook.from_frame(frame, n_shards=4)
    nodes = sharded.nodes()
    merged = sharded.aggregate()
    sharded.reprice([1.1] * len(frame))
    moved = sharded.aggregate()
    sharded.shutdown()
    print("RESULT " + json.dumps({{"nodes": len(set(nodes)), "alive": len([n for n in ray.nodes() if n["Alive"]]),
                                  "single": single, "merged": merged, "moved": moved}}, default=str))
finally:
    ray.shutdown()
    cluster.shutdown()
"""


def test_sharded_book_on_two_node_cluster():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_DEDUP_LOGS": "0"}
    proc = subprocess.run([sys.executable, "-c", CLUSTER_SCRIPT.format(root=str(ROOT))], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=420)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["alive"] == 2 and result["nodes"] == 2  # the shards really sit on both nodes
    single = result["single"]
    _assert_same(result["merged"], single)
    # state lives in the actors: a 10 % move scales every exposure sum by 1.1
    assert result["moved"]["total"]["notional"]["gross"] == pytest.approx(1.1 * single["total"]["notional"]["gross"], rel=1e-10)
