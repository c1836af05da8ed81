"""Portfolio exposures: long, short, gross and net, notional and delta-adjusted, grouped.

Definitions (docs/spec/design.md domain rules), for signed per-position values x:
  long  = sum of positive x,   short = sum of negative x (reported negative),
  gross = sum of |x| = long - short,   net = sum of x = long + short.
Two measures are aggregated side by side:
  notional (market value): quantity x price x multiplier (options: premium value);
  delta-adjusted: stocks quantity x price, options delta x contracts x 100 x underlying spot.

``aggregate_exposures`` computes the whole portfolio and every group of several groupings
(type, strategy, sector, ... and many-to-many tags) in one numba pass
(``compute.exposure_nb``). ``visual_indicator`` renders the spec 3.6 indicator block.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from compute.threads import threads_for
from compute.exposure_nb import (
    COUNT,
    DELTA_LONG,
    DELTA_SHORT,
    NOTIONAL_LONG,
    NOTIONAL_SHORT,
    exposure_sums_nb,
)

MEASURES = ("notional", "delta")
STATS = ("long", "short", "gross", "net")
COLUMNS = tuple(f"{measure}_{stat}" for measure in MEASURES for stat in STATS) + ("count",)

DEFAULT_GROSS_LIMIT = 1.5
DEFAULT_NET_TARGET_RANGE = (0.4, 0.6)
WARNING_FRACTION_OF_LIMIT = 0.9
WARNING_BAND_OUTSIDE_TARGET = 0.1
STATUS_COLORS = {
    "success": "#4CAF50",
    "warning": "#FF9800",
    "danger": "#F44336",
    "info": "#2196F3",
}


def notional_exposure(quantity, price, multiplier=1):
    """Signed notional (market value): quantity x price x multiplier, in dollars."""
    return np.asarray(quantity, dtype=np.float64) * np.asarray(price, dtype=np.float64) * multiplier


def delta_adjusted_exposure(quantity, spot, delta=1.0, multiplier=1):
    """Signed delta-adjusted notional: delta x quantity x multiplier x underlying spot, in dollars.

    Stocks: delta 1, multiplier 1 (= quantity x price). Options: per-share BSM delta,
    quantity in contracts, multiplier 100.
    """
    return (
        np.asarray(delta, dtype=np.float64)
        * np.asarray(quantity, dtype=np.float64)
        * multiplier
        * np.asarray(spot, dtype=np.float64)
    )


@dataclass(frozen=True)
class Grouping:
    """A single-valued grouping: integer code per position (-1 = no group) and code labels."""

    codes: np.ndarray
    labels: Sequence

    @classmethod
    def from_values(cls, values) -> "Grouping":
        """Factorise one label per position (None/NaN -> no group); labels sorted."""
        codes, labels = pd.factorize(pd.Series(values, copy=False), sort=True)
        return cls(codes=codes, labels=list(labels))


@dataclass(frozen=True)
class TagMembership:
    """Many-to-many position -> tag mapping in CSR form.

    Tags of position i are ``labels[indices[indptr[i]:indptr[i + 1]]]``.
    """

    indptr: np.ndarray
    indices: np.ndarray
    labels: Sequence

    @classmethod
    def from_lists(cls, tag_lists: Sequence[Sequence]) -> "TagMembership":
        """Build from one list of tag labels per position (labels sorted; duplicates kept once)."""
        labels = sorted({tag for tags in tag_lists for tag in tags})
        code_of = {tag: code for code, tag in enumerate(labels)}
        indptr = np.zeros(len(tag_lists) + 1, dtype=np.int64)
        indices = []
        for i, tags in enumerate(tag_lists):
            codes = sorted({code_of[tag] for tag in tags})
            indices.extend(codes)
            indptr[i + 1] = indptr[i] + len(codes)
        return cls(indptr=indptr, indices=np.asarray(indices, dtype=np.int64), labels=labels)


@dataclass(frozen=True)
class ExposureReport:
    """Aggregated exposures: ``total`` for the portfolio, ``groups[name]`` a DataFrame per grouping.

    DataFrames are indexed by group label with columns ``COLUMNS`` (notional_long, ...,
    delta_net, count); groups without positions are included with zeros.
    """

    total: dict
    groups: dict

    def group_dict(self, name: str) -> dict:
        """``{label: {"notional": {...}, "delta": {...}, "count": n}}`` for one grouping."""
        frame = self.groups[name]
        return {label: _row_dict(row) for label, row in zip(frame.index, frame.to_numpy())}


def _row_dict(row) -> dict:
    values = dict(zip(COLUMNS, (float(v) for v in row)))
    out = {
        measure: {stat: values[f"{measure}_{stat}"] for stat in STATS} for measure in MEASURES
    }
    out["count"] = int(values["count"])
    return out


def _integer_codes(codes, n, name):
    arr = np.asarray(codes)
    if arr.shape != (n,):
        raise ValueError(f"grouping {name!r}: expected {n} codes, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"grouping {name!r}: codes must be integers, got {arr.dtype}")
    return arr


def aggregate_exposures(
    market_value,
    delta_exposure,
    groupings: Mapping[str, Grouping] | None = None,
    tags: TagMembership | None = None,
    tag_grouping_name: str = "tag",
) -> ExposureReport:
    """Long/short/gross/net of notional and delta-adjusted exposure, overall and per group.

    market_value, delta_exposure: signed dollars per position (see module docstring). NaN
    values contribute nothing. ``groupings`` maps a name (e.g. "type", "strategy", "sector") to
    a ``Grouping``; ``tags`` adds a many-to-many grouping reported under ``tag_grouping_name``.
    """
    mv = np.ascontiguousarray(market_value, dtype=np.float64).reshape(-1)
    de = np.ascontiguousarray(delta_exposure, dtype=np.float64).reshape(-1)
    n = mv.shape[0]
    if de.shape[0] != n:
        raise ValueError(f"market_value has {n} positions but delta_exposure has {de.shape[0]}")
    groupings = dict(groupings or {})
    names = list(groupings)
    sizes = np.array([len(groupings[name].labels) for name in names], dtype=np.int64)
    offsets = 1 + np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64) if names else sizes
    code_arrays = [_integer_codes(groupings[name].codes, n, name) for name in names]
    if code_arrays:
        common = np.result_type(*code_arrays)
        if common.kind not in "iu":  # e.g. int8 with uint64 promotes to float
            common = np.dtype(np.int64)
        codes = tuple(np.ascontiguousarray(c, dtype=common) for c in code_arrays)
    else:
        codes = (np.zeros(0, dtype=np.int64),)
    tag_offset = 1 + int(sizes.sum())
    if tags is not None:
        indptr = np.asarray(tags.indptr)
        indices = np.asarray(tags.indices)
        if indptr.shape != (n + 1,):
            raise ValueError(f"tags.indptr must have {n + 1} entries, got shape {indptr.shape}")
        if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
            raise ValueError("tags.indptr and tags.indices must be integer arrays")
        n_tags = len(tags.labels)
    else:
        indptr = np.zeros(1, dtype=np.int64)
        indices = np.zeros(0, dtype=np.int64)
        n_tags = 0
    n_slots = tag_offset + n_tags
    with threads_for(len(mv)):  # a book of a few dozen positions: the calling thread alone
        sums, invalid = exposure_sums_nb(
            mv, de, codes, offsets, sizes, len(names), indptr, indices, tag_offset, n_tags, n_slots,
            4 * numba.get_num_threads(),
        )
    if invalid:
        raise ValueError(f"{invalid} group or tag codes are out of range for their labels")
    table = _stats_table(sums)
    total = _row_dict(table[0])
    frames = {}
    for name, offset, size in zip(names, offsets, sizes):
        frames[name] = _frame(table[offset : offset + size], groupings[name].labels)
    if tags is not None:
        frames[tag_grouping_name] = _frame(table[tag_offset:], tags.labels)
    return ExposureReport(total=total, groups=frames)


def _stats_table(sums: np.ndarray) -> np.ndarray:
    table = np.empty((sums.shape[0], len(COLUMNS)))
    for block, (long_col, short_col) in enumerate(((NOTIONAL_LONG, NOTIONAL_SHORT), (DELTA_LONG, DELTA_SHORT))):
        long_ = sums[:, long_col]
        short = sums[:, short_col]
        table[:, 4 * block + 0] = long_
        table[:, 4 * block + 1] = short
        table[:, 4 * block + 2] = long_ - short
        table[:, 4 * block + 3] = long_ + short
    table[:, 8] = sums[:, COUNT]
    return table


def _frame(rows: np.ndarray, labels) -> pd.DataFrame:
    frame = pd.DataFrame(rows, index=pd.Index(list(labels)), columns=list(COLUMNS))
    frame["count"] = frame["count"].astype(np.int64)
    return frame


def visual_indicator(
    value: float,
    *,
    equity: float,
    limit: float | None = None,
    target_range: tuple[float, float] | None = None,
    warning_fraction: float = WARNING_FRACTION_OF_LIMIT,
    warning_band: float = WARNING_BAND_OUTSIDE_TARGET,
) -> dict:
    """Spec 3.6 visual indicator block for a dollar ``value`` measured against ``equity``.

    value (output) = value / equity, a decimal ratio; display = that ratio as "45%";
    percentage = round(|ratio| x 100) (spec 4.1: gross 1.667M on 1.2M equity -> 139).
    ``limit`` and ``target_range`` are decimals of equity, compared with |ratio|:
      limit: |ratio| > limit -> danger, >= warning_fraction x limit -> warning, else success;
      target_range (lo, hi): inside -> success, within warning_band outside -> warning, else danger;
      both: over the limit is danger, otherwise the target-range status; neither: info.
    Non-positive or non-finite equity gives value/display/percentage None and status info.
    """
    block = {
        "value": None,
        "display": None,
        "percentage": None,
        "status": "info",
        "color": STATUS_COLORS["info"],
        "target_range": list(target_range) if target_range is not None else None,
        "limit": limit,
    }
    if not (equity is not None and math.isfinite(equity) and equity > 0 and math.isfinite(value)):
        return block
    ratio = value / equity
    magnitude = abs(ratio)
    status = "info"
    if target_range is not None:
        low, high = target_range
        if low <= magnitude <= high:
            status = "success"
        elif low - warning_band <= magnitude <= high + warning_band:
            status = "warning"
        else:
            status = "danger"
    if limit is not None:
        if magnitude > limit:
            status = "danger"
        elif target_range is None:
            status = "warning" if magnitude >= warning_fraction * limit else "success"
    block.update(
        value=round(ratio, 6),
        display=f"{ratio * 100:.0f}%",
        percentage=int(round(magnitude * 100)),
        status=status,
        color=STATUS_COLORS[status],
    )
    return block


def exposure_visuals(
    total: Mapping[str, float],
    *,
    equity: float,
    gross_limit: float = DEFAULT_GROSS_LIMIT,
    net_target_range: tuple[float, float] = DEFAULT_NET_TARGET_RANGE,
) -> dict:
    """Indicators for one measure's {long, short, gross, net}: gross against ``gross_limit``,
    net against ``net_target_range``; long and short also against ``gross_limit`` (neither side
    can exceed gross, so a side over the limit is already a breach)."""
    return {
        "long": visual_indicator(total["long"], equity=equity, limit=gross_limit),
        "short": visual_indicator(total["short"], equity=equity, limit=gross_limit),
        "gross": visual_indicator(total["gross"], equity=equity, limit=gross_limit),
        "net": visual_indicator(total["net"], equity=equity, target_range=net_target_range),
    }
