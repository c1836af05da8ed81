"""UI sync (spec 10): the events ``POST /ui/navigate|highlight|apply-filter`` publish to a
user's UI session, kept in the catalog so every ingress replica streams the same ones.

The autoincrement ``id`` is the Server-Sent Events id: a client that reconnects with
``Last-Event-ID`` is sent every later event of its session, on whichever replica it lands.
A dashboard logout is a ``logout`` row (session ``*``, the token's fingerprint in ``token_fp``):
streams of that token close, and the dashboard refuses the token from then on.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cluster.catalog.models import Base, utcnow


class UIEvent(Base):
    __tablename__ = "ui_events"
    __table_args__ = (Index("ix_ui_events_user_session_id", "user_id", "session_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # navigate | highlight | filter | logout
    payload: Mapped[dict] = mapped_column(default=dict)
    token_fp: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
