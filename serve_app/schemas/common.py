"""What every route shares: the success envelope, the async answer, the error body, and the
helpers routes declare their bodies and error responses with.

These models document the API (``/api/v1/openapi.json``); handlers build their answers with
``serve_app.envelope`` and return a response object, which FastAPI sends as is (a
``response_model`` never filters or re-validates it).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Generic, Literal

from fastapi import Body
from pydantic import BaseModel, BeforeValidator, Field, WrapValidator
from typing_extensions import TypeVar

# -- success ---------------------------------------------------------------------------------

Timestamp = Annotated[str, Field(description="ISO 8601 timestamp")]

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _iso_text(value: Any) -> Any:
    """Dates and times as the schema says, ISO 8601 text: not the Unix timestamps pydantic would
    also read (``0.5`` is not a date)."""
    if isinstance(value, (dt.date, dt.datetime)) or (isinstance(value, str) and not _NUMBER.fullmatch(value.strip())):
        return value
    raise ValueError("use an ISO 8601 date (YYYY-MM-DD) or date and time")


#: A date parameter or field: ``YYYY-MM-DD``.
IsoDate = Annotated[dt.date, BeforeValidator(_iso_text)]
#: A date-and-time parameter or field: ISO 8601.
IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_text)]
Number = float | None
"""A figure; null when its inputs are missing or it is undefined (never NaN)."""


class MarketDataStamp(BaseModel):
    """Where a priced figure's market data comes from and when it was priced."""

    source: str = Field(description="the market-data provider: synthetic, files or polygon")
    as_of: Timestamp | None = Field(None, description="the pricing instant (UTC, ISO 8601): the quotes' "
                                    "instant for a live book, the session's close for a book priced at a date")


class Meta(BaseModel):
    """``meta`` of every enveloped answer; some routes add fields (their own ``meta`` models)."""

    timestamp: Timestamp
    request_id: str | None = Field(None, description="the X-Request-ID of this request")
    execution_time_ms: float | None = None
    cache_status: Literal["hit", "miss", "partial"] | None = Field(None, description="whether cached figures were served")
    warnings: list[str] | None = Field(None, description="market data the answer had to do without: the ticker and "
                                       "why (e.g. the file that could not be read); absent when there is none")
    market_data: MarketDataStamp | None = Field(
        None, description="on every answer with priced figures (portfolio views, positions, risk): the source "
                          "(synthetic, files, polygon) and the pricing instant; a figure served from the daily "
                          "batch carries the batch's. Absent on answers that price nothing")


class PageMeta(Meta):
    page: int
    limit: int
    total: int
    pages: int


DataT = TypeVar("DataT")
MetaT = TypeVar("MetaT", bound=Meta, default=Meta)


class Envelope(BaseModel, Generic[DataT, MetaT]):
    """The portfolio API's success body (spec 3.3): ``{success, data, meta, errors}``."""

    success: Literal[True] = True
    data: DataT
    meta: MetaT
    errors: list[Any] = Field(default_factory=list, description="non-fatal problems (usually empty)")

    @classmethod
    def model_parametrized_name(cls, params: tuple[type[Any], ...]) -> str:
        def name(p) -> str:
            return getattr(p, "__name__", None) or str(p)

        data, meta = params
        label = name(data) if getattr(data, "__origin__", None) is not list else f"{name(data.__args__[0])}List"
        return f"Envelope[{label}]" if meta is Meta else f"Envelope[{label}, {name(meta)}]"


class AsyncAccepted(BaseModel):
    """The portfolio API's async answer (spec 3.4): poll ``poll_url`` until the job ends."""

    success: Literal[True] = True
    job_id: str
    status: str = Field(description="queued or running")
    poll_url: str = Field(description="/api/v1/jobs/{job_id}")
    estimated_duration_ms: int | None = None


class Deleted(BaseModel):
    deleted: Literal[True] = True


# -- errors ----------------------------------------------------------------------------------

class ErrorInfo(BaseModel):
    code: str = Field(description="INVALID_PARAMETER, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFLICT, RATE_LIMITED, ...")
    message: str
    details: dict[str, Any] = Field(default_factory=dict, description="e.g. {field, reason} for a bad parameter")


class ErrorItem(BaseModel):
    code: str
    message: str
    field: str | None = Field(None, description="the offending request field, when there is one")
    ai_suggestions: list[str] | None = Field(None, description="next steps an AI agent can take (spec 15.1), where there is one")


class ErrorResponse(BaseModel):
    """Every error: the Lab spec's ``error`` object and the portfolio spec's ``errors`` list."""

    success: Literal[False] = False
    error: ErrorInfo
    errors: list[ErrorItem]
    request_id: str | None = None


ERROR_DESCRIPTIONS = {
    400: "Invalid parameter or body: `error.details.field` names it (INVALID_PARAMETER)",
    401: "Missing, malformed or expired bearer token, or wrong credentials (UNAUTHORIZED)",
    403: "The route needs the admin role (FORBIDDEN)",
    404: "Not found, or not the caller's (NOT_FOUND)",
    409: "Conflicts with the current state or an existing row (CONFLICT)",
    413: "Payload too large (PAYLOAD_TOO_LARGE)",
    429: "Rate limit or quota exceeded; see Retry-After (RATE_LIMITED)",
    503: "A dependency is unavailable: market data or job workers",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each error status it can answer, in the error format, and
    ``default`` for any other (an unexpected 500 carries a request_id to quote)."""
    unknown = set(codes) - set(ERROR_DESCRIPTIONS)
    if unknown:
        raise ValueError(f"no description for status {sorted(unknown)}")
    out: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[code]} for code in sorted(set(codes))
    }
    out["default"] = {"model": ErrorResponse, "description": "Any other error, in the same format"}
    return out


def also(status: int, model: Any, description: str) -> dict[int, dict[str, Any]]:
    """A second success status of a route (e.g. 202 for ``mode=async``)."""
    return {status: {"model": model, "description": description}}


# -- bodies the service reads as sent -------------------------------------------------------

def _as_sent(value: Any, handler: Any) -> Any:
    handler(value)  # the model's rules: a 400 naming the field
    return value


def ServiceBody(model: type[BaseModel], *, examples: list[dict[str, Any]] | None = None) -> Any:
    """A JSON-object body that must pass ``model`` and reaches the handler as sent.

    The model holds the body's types and bounds (a non-object is a 400 naming ``body``, a bad
    field a 400 naming it); the service it goes to reads the dict it was sent (which keys are
    present matters to a partial update) and checks the rules a schema cannot state, naming
    the field too.
    """
    return Annotated[model, WrapValidator(_as_sent), Body(examples=examples) if examples else Body()]


# -- non-JSON answers ------------------------------------------------------------------------

def csv_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a CSV download (with ``response_class=Response``, so that its errors
    stay JSON): the 200 is ``text/csv``."""
    return {200: {"description": "CSV with a header row", "content": {"text/csv": {"schema": {"type": "string"}}}},
            **error_responses(*codes)}


# -- OpenAPI links: where a created resource's id goes next ---------------------------------

def created_links(status: int, id_pointer: str, targets: dict[str, tuple[str, str, str]]) -> dict[int, dict[str, Any]]:
    """``responses=`` entry documenting OpenAPI links from a create route's answer to the routes
    that take the new id: ``{"GetPosition": ("get", "/api/v1/positions/{position_id}",
    "position_id")}`` with ``id_pointer`` e.g. ``/data/id``. Clients (and schemathesis'
    stateful phase) follow them: create, then read, change and delete what was created."""
    def ref(method: str, path: str) -> str:
        return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method

    return {status: {"links": {name: {"operationRef": ref(method, path), "parameters": {param: f"$response.body#{id_pointer}"}}
                               for name, (method, path, param) in targets.items()}}}
