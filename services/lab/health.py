"""Pack and model health: latest matrix, training, backtest and live signals."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from cluster.catalog import Backtest, Catalog, LabModel
from compute import packs as packs_mod
from services.lab.common import LabInputError
from services.lab.models import get_model

from services.lab.signals import active_signals

log = logging.getLogger("sigma.lab")


def pack_health(catalog: Catalog, user_id: int, pack_id: str) -> dict:
    try:
        pack = packs_mod.get_pack(pack_id)
    except ValueError as exc:
        raise LabInputError("pack_id", str(exc)) from None
    with catalog.session() as s:
        count = s.scalar(select(func.count()).select_from(LabModel)
                         .where(LabModel.user_id == user_id, LabModel.pack_id == pack.pack_id)) or 0

    return {"status": "healthy", "models_count": int(count), "active_signals": active_signals(catalog, user_id, pack.pack_id)}


def model_health(catalog: Catalog, user_id: int, model_id: str) -> dict:
    """``{status, last_backtest, performance}``: performance is meeting_target when the latest
    completed backtest passed its gate, below_target when it failed it, untested without one."""
    model = get_model(catalog, user_id, model_id)
    with catalog.session() as s:
        last = s.scalar(select(Backtest).where(Backtest.model_pk == model.id, Backtest.status == "completed")
                        .order_by(Backtest.finished_at.desc()).limit(1))
        last_any = s.scalar(select(Backtest).where(Backtest.model_pk == model.id)
                            .order_by(Backtest.created_at.desc()).limit(1))
    if last is None:
        performance = "untested"
    else:
        performance = "meeting_target" if (last.gate or {}).get("pass") else "below_target"
    status = "healthy"
    if last_any is not None and last_any.status == "failed":
        status = "degraded"
    if not (model.lineage or {}).get("matrix_sha"):
        status = "untrained" if last is None else status
    return {"status": status, "last_backtest": last.finished_at.isoformat() if last and last.finished_at else None,
            "performance": performance, "gate": last.gate if last else None}
