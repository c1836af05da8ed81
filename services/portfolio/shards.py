"""Scale-out: a book too large for one process, sharded over Ray actors.

Each ``BookShard`` actor holds its slice of the priced positions as plain arrays (market
value, delta exposure, position Greeks, group labels, tags) and answers with partial
aggregates: per group the sums of positive and negative exposure and the count, and the
Greek totals. Those partials are additive, so the driver merges them by label and derives
gross (= long - short) and net (= long + short) once at the end; the merge equals
``aggregate_book`` run on the whole book in one process.

    sharded = ShardedBook.from_frame(priced_frame, n_shards=8)   # actors SPREAD over nodes
    result = sharded.aggregate()
    sharded.shutdown()
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import ray

from compute.exposure import Grouping, TagMembership, aggregate_exposures

GROUPINGS = ("type", "strategy", "sector")
GREEK_COLUMNS = ("position_delta", "position_gamma", "position_theta", "position_vega", "position_rho", "dollar_delta")
_PARTIAL_FIELDS = ("notional_long", "notional_short", "delta_long", "delta_short", "count")


@dataclass
class BookArrays:
    """The columns a shard needs, as arrays (what crosses the wire to an actor)."""

    market_value: np.ndarray
    delta_exposure: np.ndarray
    greeks: dict
    labels: dict
    tags: list

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, groupings=GROUPINGS) -> "BookArrays":
        labels = {}
        for name in groupings:
            column = "strategy_resolved" if name == "strategy" and "strategy_resolved" in frame else name
            labels[name] = [v if isinstance(v, str) and v else None for v in frame[column]]
        return cls(
            market_value=frame["market_value"].to_numpy(np.float64).copy(),
            delta_exposure=frame["delta_exposure"].to_numpy(np.float64).copy(),
            greeks={c: frame[c].to_numpy(np.float64).copy() for c in GREEK_COLUMNS},
            labels=labels,
            tags=[list(t or []) for t in frame["tags"]],
        )

    def __len__(self) -> int:
        return int(self.market_value.shape[0])

    def slice(self, lo: int, hi: int) -> "BookArrays":
        return BookArrays(self.market_value[lo:hi].copy(), self.delta_exposure[lo:hi].copy(),
                          {k: v[lo:hi].copy() for k, v in self.greeks.items()},
                          {k: v[lo:hi] for k, v in self.labels.items()}, self.tags[lo:hi])


def partial_aggregates(arrays: BookArrays) -> dict:
    """Additive partials of one slice: {"total": [...], "groups": {name: {label: [...]}}, "greeks": {...}}.

    Each list is (notional_long, notional_short, delta_long, delta_short, count).
    """
    groupings = {name: Grouping.from_values(values) for name, values in arrays.labels.items()}
    report = aggregate_exposures(arrays.market_value, arrays.delta_exposure, groupings=groupings,
                                 tags=TagMembership.from_lists(arrays.tags) if arrays.tags is not None else None)

    def row(d):
        return [d["notional"]["long"], d["notional"]["short"], d["delta"]["long"], d["delta"]["short"], float(d["count"])]

    groups = {name: {label: row(values) for label, values in report.group_dict(name).items()} for name in report.groups}
    greeks = {c: float(np.nansum(v)) for c, v in arrays.greeks.items()}
    greeks["unpriced"] = int(np.isnan(arrays.greeks["position_delta"]).sum())
    return {"total": row(report.total), "groups": groups, "greeks": greeks, "n": len(arrays)}


def merge_partials(partials: list[dict]) -> dict:
    """Sum partials by label and finish: long, short, gross, net per measure, and counts."""
    total = np.zeros(len(_PARTIAL_FIELDS))
    groups: dict[str, dict] = {}
    greeks: dict[str, float] = {}
    n = 0
    for part in partials:
        total += np.asarray(part["total"])
        n += part["n"]
        for name, by_label in part["groups"].items():
            bucket = groups.setdefault(name, {})
            for label, values in by_label.items():
                bucket[label] = bucket.get(label, np.zeros(len(_PARTIAL_FIELDS))) + np.asarray(values)
        for key, value in part["greeks"].items():
            greeks[key] = greeks.get(key, 0.0) + value
    return {
        "positions": n,
        "total": _finish(total),
        "groups": {name: {label: _finish(v) for label, v in sorted(by_label.items(), key=lambda kv: str(kv[0]))}
                   for name, by_label in groups.items()},
        "greeks": greeks,
    }


def _finish(values) -> dict:
    nl, ns, dl, ds, count = (float(v) for v in values)
    return {"notional": {"long": nl, "short": ns, "gross": nl - ns, "net": nl + ns},
            "delta": {"long": dl, "short": ds, "gross": dl - ds, "net": dl + ds},
            "count": int(round(count))}


def aggregate_book(frame_or_arrays) -> dict:
    """The single-process result the sharded merge must equal."""
    arrays = frame_or_arrays if isinstance(frame_or_arrays, BookArrays) else BookArrays.from_frame(frame_or_arrays)
    return merge_partials([partial_aggregates(arrays)])


@ray.remote(num_cpus=0.1)
class BookShard:
    """One slice of a book, kept in the actor's memory between calls."""

    def __init__(self, arrays: BookArrays):
        self.arrays = arrays

    def size(self) -> int:
        return len(self.arrays)

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def partials(self) -> dict:
        return partial_aggregates(self.arrays)

    def reprice(self, scale_by_position: np.ndarray) -> None:
        """Scale market values and exposures of the slice (e.g. a uniform market move on stocks)."""
        s = np.asarray(scale_by_position, dtype=np.float64)
        self.arrays.market_value = self.arrays.market_value * s
        self.arrays.delta_exposure = self.arrays.delta_exposure * s


class ShardedBook:
    """Driver-side handle on the shards of one book."""

    def __init__(self, shards: list, bounds: list[tuple[int, int]]):
        self.shards = shards
        self.bounds = bounds

    @classmethod
    def from_frame(cls, frame, n_shards: int, *, spread: bool = True) -> "ShardedBook":
        arrays = frame if isinstance(frame, BookArrays) else BookArrays.from_frame(frame)
        n = len(arrays)
        n_shards = max(1, min(int(n_shards), max(n, 1)))
        edges = [round(i * n / n_shards) for i in range(n_shards + 1)]
        options = {"scheduling_strategy": "SPREAD"} if spread else {}
        shards, bounds = [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            shards.append(BookShard.options(**options).remote(arrays.slice(lo, hi)))
            bounds.append((lo, hi))
        return cls(shards, bounds)

    def aggregate(self) -> dict:
        return merge_partials(ray.get([s.partials.remote() for s in self.shards]))

    def nodes(self) -> list[str]:
        return ray.get([s.node_id.remote() for s in self.shards])

    def reprice(self, scale_by_position: np.ndarray) -> None:
        scale = np.asarray(scale_by_position, dtype=np.float64)
        ray.get([s.reprice.remote(scale[lo:hi]) for s, (lo, hi) in zip(self.shards, self.bounds)])

    def shutdown(self) -> None:
        for shard in self.shards:
            ray.kill(shard, no_restart=True)
        self.shards = []


def shard_count(n_positions: int, positions_per_shard: int = 2_000_000) -> int:
    """How many shards a book of ``n_positions`` needs (one per ``positions_per_shard``)."""
    return max(1, math.ceil(n_positions / positions_per_shard))
