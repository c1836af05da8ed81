"""Tags (portfolio spec 2.7) and a position's tags (2.7.5)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from serve_app.schemas.common import ServiceBody, Timestamp

MAX_TAG_NAME = 80  # services.portfolio.service.MAX_TAG_NAME


class TagCreate(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_TAG_NAME, description="unique per user; surrounding blanks are dropped")
    color: str | None = Field(None, max_length=16, description="e.g. #4CAF50")
    description: str | None = Field(None, max_length=2000)


class TagUpdate(BaseModel):
    """Any of the fields; at least one."""

    name: str = Field(None, min_length=1, max_length=MAX_TAG_NAME, json_schema_extra=lambda s: s.pop("default", None))
    color: str | None = Field(None, max_length=16)
    description: str | None = Field(None, max_length=2000)


class Tag(BaseModel):
    id: str
    name: str
    color: str | None = None
    description: str | None = None
    position_count: int
    created_at: Timestamp | None = None


class TagList(BaseModel):
    tags: list[Tag]


class PositionTagsUpdate(BaseModel):
    """The position's new tags: ``tag_ids`` (the caller's tags) and/or ``tags`` (names, created
    when new); at least one of the two."""

    tag_ids: list[str] | None = None
    tags: list[str] | str | None = Field(None, description="tag names")


class PositionTags(BaseModel):
    position_id: str
    tags: list[Tag]


TagCreateBody = ServiceBody(TagCreate, examples=[{"name": "#momentum", "color": "#4CAF50"}])
TagUpdateBody = ServiceBody(TagUpdate, examples=[{"name": "#momentum-2024"}])
PositionTagsBody = ServiceBody(PositionTagsUpdate, examples=[{"tag_ids": ["tag_..."], "tags": ["#momentum"]}])
