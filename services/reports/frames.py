"""Tables over the API: a pandas frame as column-oriented JSON or as Parquet bytes."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from compute.jsonsafe import json_safe

FORMATS = {"json": "application/json", "parquet": "application/vnd.apache.parquet"}


def to_parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False, compression="zstd")
    return buf.getvalue()


def from_parquet(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data))


def to_columns(frame: pd.DataFrame) -> dict[str, list]:
    """``{column: [values...]}``; timestamps as ISO 8601 UTC strings, NaN as null."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_datetime64_any_dtype(col):
            stamps = pd.DatetimeIndex(col)
            stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
            out[str(name)] = [s.strftime("%Y-%m-%dT%H:%M:%SZ") for s in stamps]
        elif pd.api.types.is_float_dtype(col):
            out[str(name)] = [None if not np.isfinite(v) else float(v) for v in col.to_numpy(dtype=np.float64)]
        else:
            out[str(name)] = json_safe(col.tolist())
    return out
