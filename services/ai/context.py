"""Saved AI agent contexts (portfolio spec 9.4): one JSON object per user, agent
(``X-AI-Agent-ID``), agent session (``X-Session-ID``) and context type; saving again replaces it."""

from __future__ import annotations

import orjson
from sqlalchemy import select

from cluster.catalog import AIContext, Catalog
from cluster.catalog.models import utcnow
from cluster.errors import InputError

MAX_BYTES = 64 * 1024


class ContextInputError(InputError):
    pass


def view(row: AIContext) -> dict:
    return {"agent_id": row.agent_id, "session_id": row.session_id, "context_type": row.context_type, "data": row.data,
            "updated_at": row.updated_at.isoformat()}


def save(catalog: Catalog, user_id: int, agent_id: str, session_id: str, context_type: str, data: dict) -> dict:
    if len(orjson.dumps(data)) > MAX_BYTES:
        raise ContextInputError("data", f"at most {MAX_BYTES // 1024} KB of JSON")
    with catalog.session() as s:
        row = s.scalar(select(AIContext).where(AIContext.user_id == user_id, AIContext.agent_id == agent_id,
                                               AIContext.session_id == session_id, AIContext.context_type == context_type))
        if row is None:
            row = AIContext(user_id=user_id, agent_id=agent_id, session_id=session_id, context_type=context_type)
            s.add(row)
        row.data, row.updated_at = data, utcnow()
        s.flush()
        return view(row)


def load(catalog: Catalog, user_id: int, agent_id: str, session_id: str, context_type: str | None = None) -> list[dict]:
    where = [AIContext.user_id == user_id, AIContext.agent_id == agent_id, AIContext.session_id == session_id]
    if context_type is not None:
        where.append(AIContext.context_type == context_type)
    with catalog.session() as s:
        return [view(r) for r in s.scalars(select(AIContext).where(*where).order_by(AIContext.context_type)).all()]
