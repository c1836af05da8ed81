"""Exposure aggregation: 10,000,000 positions, long/short/gross/net of notional and delta-adjusted
exposure, overall and by type (6), strategy (20), sector (11) and 50 many-to-many tags (0-3 per
position, CSR), in one numba pass. Peer measured in the same run: pandas groupby sums of the same
quantities (tags through a pre-exploded position x tag frame, built outside the timing).
Prints one JSON object per line.
"""


import numpy as np
import pandas as pd

from compute.exposure import Grouping, TagMembership, aggregate_exposures
from _common import best_of, emit as _emit  # noqa: E402


def emit(metric, value, unit, n, **extra):
    _emit("exposure", metric, value, unit, n, **extra)

N_POSITIONS = 10_000_000
N_TAGS = 50


def make_book(n, seed=0):
    rng = np.random.default_rng(seed)
    market_value = rng.normal(0.0, 10_000.0, n)
    delta = market_value * rng.uniform(-1.5, 1.5, n)
    groupings = {
        "type": Grouping(rng.integers(0, 6, n).astype(np.int32), ["LONG", "SHORT", "LC", "LP", "SC", "SP"]),
        "strategy": Grouping(rng.integers(-1, 20, n).astype(np.int32), [f"strategy{i}" for i in range(20)]),
        "sector": Grouping(rng.integers(0, 11, n).astype(np.int32), [f"sector{i}" for i in range(11)]),
    }
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(rng.integers(0, 4, n), out=indptr[1:])
    indices = rng.integers(0, N_TAGS, indptr[-1]).astype(np.int32)
    tags = TagMembership(indptr, indices, [f"tag{i:02d}" for i in range(N_TAGS)])
    return market_value, delta, groupings, tags


def pandas_exposures(frame, exploded, keys):
    """Long/short sums per group with pandas; gross and net follow from them."""
    results = {}
    split = pd.DataFrame(
        {
            "mv_long": frame["mv"].clip(lower=0), "mv_short": frame["mv"].clip(upper=0),
            "de_long": frame["de"].clip(lower=0), "de_short": frame["de"].clip(upper=0),
        }
    )
    results["total"] = split.sum()
    for key in keys:
        results[key] = split.groupby(frame[key]).sum()
    exploded_split = pd.DataFrame(
        {
            "mv_long": exploded["mv"].clip(lower=0), "mv_short": exploded["mv"].clip(upper=0),
            "de_long": exploded["de"].clip(lower=0), "de_short": exploded["de"].clip(upper=0),
        }
    )
    results["tag"] = exploded_split.groupby(exploded["tag"]).sum()
    return results


def main():
    mv, de, groupings, tags = make_book(N_POSITIONS)
    aggregate_exposures(mv[:1000], de[:1000], {k: Grouping(g.codes[:1000], g.labels) for k, g in groupings.items()},
                        TagMembership(tags.indptr[:1001], tags.indices, tags.labels))  # JIT warm-up
    ours = best_of(lambda: aggregate_exposures(mv, de, groupings, tags), 5)
    report = aggregate_exposures(mv, de, groupings, tags)
    emit("numba_exposure_seconds", round(ours, 4), "s", N_POSITIONS, n_tags=N_TAGS,
         tag_links=int(tags.indptr[-1]), target_seconds=0.1)
    emit("numba_exposure_throughput", round(N_POSITIONS / ours), "positions/s", N_POSITIONS)

    frame = pd.DataFrame({"mv": mv, "de": de, **{k: g.codes for k, g in groupings.items()}})
    owner = np.repeat(np.arange(N_POSITIONS), np.diff(tags.indptr))
    exploded = pd.DataFrame({"mv": mv[owner], "de": de[owner], "tag": tags.indices})
    del owner
    keys = list(groupings)
    pandas_time = best_of(lambda: pandas_exposures(frame, exploded, keys), 2)
    expected = pandas_exposures(frame, exploded, keys)
    tag_gross = expected["tag"]["mv_long"] - expected["tag"]["mv_short"]
    ours_gross = report.groups["tag"]["notional_gross"].to_numpy()
    agree = bool(np.allclose(ours_gross, tag_gross.to_numpy(), rtol=1e-9))
    emit("pandas_groupby_seconds", round(pandas_time, 4), "s", N_POSITIONS, results_agree=agree)
    emit("speedup_vs_pandas_groupby", round(pandas_time / ours, 2), "x", N_POSITIONS, target=5)


if __name__ == "__main__":
    main()
