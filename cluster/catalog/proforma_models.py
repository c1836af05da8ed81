"""ProForma tables: modeling sessions (spec 7.1-7.4).

A session holds two position lists as JSON (the base book when the session was opened, and the
modified one), each row in the ``compute.book.price_positions`` input shape with dates as ISO
text, so the session survives a restart and is priced by the same engine as the real book.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cluster.catalog.models import Base, new_id, utcnow


class ModelingSession(Base):
    __tablename__ = "modeling_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("session"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    portfolio_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="active")
    original: Mapped[list] = mapped_column(default=list)
    modified: Mapped[list] = mapped_column(default=list)
    cash: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
