"""Feature matrices: built from market data, stored by content SHA-256, found again by request."""

from __future__ import annotations

import datetime as dt
import io
import logging
from typing import Sequence

import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cluster.artifacts import ArtifactStore
from cluster.catalog import Catalog, LabModel, Matrix
from cluster.catalog.models import utcnow
from compute import packs as packs_mod
from compute.features import (
    build_matrix_from_provider,
    canonical_matrix_description,
    matrix_sha as description_sha,
    resolve_features,
)
from services.lab.common import LabInputError, MAX_SPAN_DAYS, parse_date
from compute.jsonsafe import json_safe
from services.lab.models import get_model

log = logging.getLogger("sigma.lab")


def _model_ticker(model: LabModel) -> str:
    return (model.config or {}).get("ticker") or packs_mod.get_pack(model.pack_id).default_ticker


def matrix_path(model_id: str, sha: str) -> str:
    return f"matrices/{model_id}_{sha[:8]}.parquet"


def matrix_response(row: Matrix) -> dict:
    return {
        "matrix_sha": row.matrix_sha,
        "rows": row.rows,
        "columns": row.columns,
        "size_mb": round(row.size_bytes / 1e6, 4),
        "status": "completed",
        "path": row.path,
        "content_sha": row.content_sha,
        "start_date": row.description.get("start"),
        "end_date": row.description.get("end"),
        "features": [f["name"] for f in row.description.get("features", [])],
    }


def _frame_to_parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False, engine="pyarrow", compression="zstd")
    return buf.getvalue()


def check_close_only(provider, ticker: str, resolved) -> None:
    """A 4xx naming the columns when ``ticker``'s data is a close-only series (files
    provider) and a feature needs open, high, low or volume."""
    missing_of = getattr(provider, "missing_columns", None)
    if missing_of is None:
        return
    try:
        missing = set(missing_of(ticker))
    except Exception:  # noqa: BLE001 - a missing file is reported when the bars are read
        return
    if not missing:
        return
    from compute.features import feature_bar_inputs

    needs = {f.name: [c for c in feature_bar_inputs(f) if c in missing] for f in resolved}
    needs = {name: cols for name, cols in needs.items() if cols}
    if needs:
        detail = "; ".join(f"{name} needs {', '.join(cols)}" for name, cols in needs.items())
        raise LabInputError("features", f"{ticker} is a close-only series (its files have no "
                            f"{', '.join(sorted(missing))}): {detail}; choose close-based features")


def build_matrix(catalog: Catalog, store: ArtifactStore, provider, user_id: int, model_id: str,
                 start_date, end_date, features: Sequence[str] | None = None) -> tuple[dict, bool]:
    """Build (or find) the model's feature matrix; returns ``(response, created)``.

    ``features`` default to the model's indicators. Rows are the pack's session bars of the
    model's ticker between the dates; the pack's label and the prices the backtester needs are
    columns (``compute.features``). The same request returns the stored matrix without
    fetching a bar.
    """
    model = get_model(catalog, user_id, model_id)
    pack = packs_mod.get_pack(model.pack_id)
    start = parse_date(start_date, "start_date")
    end = parse_date(end_date, "end_date")
    if start > end:
        raise LabInputError("end_date", "must not be before start_date")
    if end > dt.date.today():
        raise LabInputError("end_date", "must not be in the future")
    if (end - start).days > MAX_SPAN_DAYS[pack.cadence]:
        raise LabInputError("start_date", f"{pack.cadence} matrices span at most "
                            f"{MAX_SPAN_DAYS[pack.cadence] // 366} years")
    names = list(features) if features else list((model.config or {}).get("indicators") or pack.default_features)
    try:
        resolved = resolve_features(names)
    except ValueError as exc:
        raise LabInputError("features", str(exc)) from None
    feature_names = [f.name for f in resolved]
    ticker = _model_ticker(model)
    check_close_only(provider, ticker, resolved)
    request_desc = canonical_matrix_description(
        pack, [ticker], start, end, feature_names,
        data_source=getattr(provider, "name", type(provider).__name__),
        data_version=provider.data_version)
    request_sha = description_sha(request_desc)
    with catalog.session() as s:
        for row in s.scalars(select(Matrix).where(Matrix.model_pk == model.id)):
            if (row.description or {}).get("request_sha") == request_sha:
                return matrix_response(row), False
    try:
        frame, description = build_matrix_from_provider(provider, pack, [ticker], start, end, feature_names)
    except ValueError as exc:
        raise LabInputError("features", str(exc)) from None
    if len(frame) == 0:
        raise LabInputError("start_date", f"no {pack.cadence} bars with complete features between "
                            f"{start} and {end}; widen the date range")
    sha = description_sha(description)
    data = _frame_to_parquet(frame)
    path = matrix_path(model.model_id, sha)
    ref = store.put(data, path=path)
    stored_desc = dict(description, request_sha=request_sha)
    try:
        with catalog.session() as s:
            row = Matrix(model_pk=model.id, matrix_sha=sha, content_sha=ref.sha, path=path, rows=int(len(frame)),
                         columns=int(frame.shape[1]), size_bytes=ref.size, description=json_safe(stored_desc))
            s.add(row)
            m = s.get(LabModel, model.id)
            m.lineage = {**(m.lineage or {}), "matrix_sha": sha}
            m.updated_at = utcnow()
            s.flush()
            return matrix_response(row), True
    except IntegrityError:
        # The same request raced us: the other writer stored the same matrix.
        with catalog.session() as s:
            row = s.scalar(select(Matrix).where(Matrix.model_pk == model.id, Matrix.matrix_sha == sha))
            return matrix_response(row), False


def get_matrix(catalog: Catalog, model_pk: int, matrix_sha: str | None) -> Matrix:
    """The model's matrix with this sha (a unique prefix of 8+ hex digits is accepted), or its
    latest; ``LookupError`` if there is none."""
    with catalog.session() as s:
        if matrix_sha is None:
            row = latest_matrix(catalog, model_pk)
            if row is None:
                raise LookupError("this model has no matrix yet; POST /build_matrix first")
            return row
        sha = str(matrix_sha).lower()
        rows = s.scalars(select(Matrix).where(Matrix.model_pk == model_pk)).all()
        hits = [r for r in rows if r.matrix_sha == sha or (len(sha) >= 8 and r.matrix_sha.startswith(sha))]
        if len(hits) != 1:
            raise LookupError(f"matrix {matrix_sha} not found for this model")
        return hits[0]


def latest_matrix(catalog: Catalog, model_pk: int) -> Matrix | None:
    with catalog.session() as s:
        return s.scalar(select(Matrix).where(Matrix.model_pk == model_pk)
                        .order_by(Matrix.created_at.desc(), Matrix.id.desc()).limit(1))


def load_matrix(store: ArtifactStore, matrix_row: Matrix) -> pd.DataFrame:
    """The stored matrix, its bytes verified against the recorded content SHA-256."""
    data = store.get(matrix_row.path, sha=matrix_row.content_sha)
    return pd.read_parquet(io.BytesIO(data), engine="pyarrow")
