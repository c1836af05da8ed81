"""One error format for every route, and one mapping of service errors onto it.

``{"success": false, "error": {code, message, details}, "errors": [{code, message, field}],
"request_id"}``: the Lab spec's ``error`` object and the portfolio spec's ``errors`` list in one
body, so clients of either API read it the way their spec says (``schemas.common.ErrorResponse``
documents it).

Service errors reach HTTP through :func:`service_error` only:

- an input error (``cluster.errors.InputError``: the Lab, portfolio and webhook input errors)
  is a 400 ``INVALID_PARAMETER`` naming the field (:func:`input_error`); raised anywhere in a
  request it answers so through the app's handler, so routes never catch it themselves;
- ``LookupError`` is a 404, a conflict (``field`` and a 409 meaning) a 409 and a market data
  failure a 503, where a route asks for it with ``with service_errors():``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cluster.errors import InputError

log = logging.getLogger("sigma.api")

STATUS_CODES = {
    400: "INVALID_PARAMETER",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_PARAMETER",
    429: "RATE_LIMITED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class ApiError(Exception):
    """Raise from anywhere in a request to answer with the standard error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        details: dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        ai_suggestions: list[str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = dict(details or {})
        if field is not None:
            self.details.setdefault("field", field)
        self.errors = errors
        self.headers = headers or {}
        #: next steps an AI agent can take (portfolio spec 15.1), on the ``errors`` item
        self.ai_suggestions = list(ai_suggestions or [])


def invalid(field: str, reason: str, message: str | None = None) -> ApiError:
    """400 INVALID_PARAMETER naming the field and the reason."""
    return ApiError(
        400,
        "INVALID_PARAMETER",
        message or f"The '{field}' parameter is invalid: {reason}",
        field=field,
        details={"field": field, "reason": reason},
    )


def not_found(what: str, ident: Any) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} {ident!s} not found")


#: ``"field: reason"``: how services that raise a bare ``ValueError`` name the field.
_FIELD_MESSAGE = re.compile(r"^([A-Za-z_][\w.]*):\s*(.*)$", re.S)


def input_error(exc: BaseException, default_field: str | None = None,
                aliases: Mapping[str, str] | None = None) -> ApiError | None:
    """The 400 for a service input error, or None when ``exc`` is not one.

    An input error is a ``cluster.errors.InputError`` (``field`` and ``reason``). With
    ``default_field``, any other ``ValueError`` is an input error too (the risk service raises
    plain ones): its message names the field as ``"field: reason"``, else the field is
    ``default_field``. ``aliases`` renames a field by prefix (a service's name for a request
    field, e.g. ``{"shocks": "custom_scenario.parameters"}``).
    """
    if not isinstance(exc, ValueError):
        return None
    if isinstance(exc, InputError):
        field, reason = str(exc.field), str(exc.reason)
    else:
        if default_field is None:
            return None
        match = _FIELD_MESSAGE.match(str(exc))
        field, reason = (match.group(1), match.group(2)) if match else (default_field, str(exc))
    for prefix, alias in (aliases or {}).items():
        if field == prefix or field.startswith(prefix + ".") or field.startswith(prefix + "["):
            field = alias + field[len(prefix):]
            break
    error = invalid(field, reason or str(exc))
    error.ai_suggestions = list(getattr(exc, "suggestions", None) or [])
    rows = getattr(exc, "errors", None)
    if isinstance(exc, InputError) and isinstance(rows, list) and len(rows) > 1:
        # an all-or-nothing request: every bad row named, in the portfolio spec's ``errors`` list
        error.errors = [{"code": "INVALID_PARAMETER", "message": f"{f}: {r}", "field": f} for f, r in rows]
    return error


def _not_found_message(exc: LookupError) -> str:
    text = str(exc).strip().strip("'\"")
    if not text:
        return "Not found"
    if "not found" not in text:
        text += " not found"
    return text[:1].upper() + text[1:]


def service_error(exc: BaseException, default_field: str | None = None,
                  aliases: Mapping[str, str] | None = None) -> ApiError | None:
    """The standard error for an exception a service raises for its caller, or None (a bug).

    404 for ``LookupError`` (a row that is not the caller's is missing too), 400 for a ticker
    that breaks the ticker rule, 503 for market data that cannot be had, 409 for a conflict
    with an existing row, 400 for input errors (:func:`input_error`, with ``default_field`` and
    ``aliases``).
    """
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, LookupError):
        return ApiError(404, "NOT_FOUND", _not_found_message(exc))
    from compute.errors import InvalidTicker, MarketDataError

    if isinstance(exc, InvalidTicker):  # bad input, though market data raised it
        return invalid(default_field or "ticker", str(exc))
    if isinstance(exc, MarketDataError):
        return ApiError(503, "MARKET_DATA_UNAVAILABLE", f"market data unavailable: {exc}",
                        ai_suggestions=["retry in a minute", "GET /api/v1/healthz shows the market data status"])
    from services.portfolio.service import PortfolioConflict

    if isinstance(exc, PortfolioConflict):
        return ApiError(409, "CONFLICT", str(exc), field=exc.field)
    return input_error(exc, default_field, aliases)


@contextlib.contextmanager
def service_errors(default_field: str | None = None, *, aliases: Mapping[str, str] | None = None) -> Iterator[None]:
    """Service exceptions in the block become the standard error body (:func:`service_error`);
    anything else propagates (a bug: the app answers 500 and logs it)."""
    try:
        yield
    except ApiError:
        raise
    except Exception as exc:
        mapped = service_error(exc, default_field, aliases)
        if mapped is None:
            raise
        raise mapped from None


def error_body(
    request_id: str | None,
    code: str,
    message: str,
    *,
    details: dict | None = None,
    errors: list[dict] | None = None,
    field: str | None = None,
    ai_suggestions: list[str] | None = None,
) -> dict:
    if errors is None:
        errors = [{"code": code, "message": message, "field": field if field is not None else (details or {}).get("field")}]
    if ai_suggestions:
        errors = [dict(errors[0], ai_suggestions=list(ai_suggestions)), *errors[1:]]
    return {
        "success": False,
        "error": {"code": code, "message": message, "details": details or {}},
        "errors": errors,
        "request_id": request_id,
    }


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _response(request: Request, status: int, body: dict, headers: dict | None = None) -> JSONResponse:
    headers = dict(headers or {})
    rid = _request_id(request)
    if rid and request.app.state.sigma.sets_request_id_header:
        headers["X-Request-ID"] = rid
    return JSONResponse(body, status_code=status, headers=headers)


def _allowed_methods(request: Request) -> str | None:
    """The methods of the request's resource, for a 405's ``Allow``: Starlette names only the
    first route that matched the path, though GET and POST of a path are separate routes. The
    resource is the most specific path template that matches (``/jobs/probe`` before
    ``/jobs/{job_id}``)."""
    table = getattr(request.app.state, "allowed_methods", None)
    if table is None:
        by_template: dict[str, set[str]] = {}
        for template, item in request.app.openapi().get("paths", {}).items():
            methods = by_template.setdefault(template, set())
            methods |= {method.upper() for method in item}
            if "GET" in methods:
                methods.add("HEAD")
        table = sorted(((template.count("{"), re.compile("^" + re.sub(r"\{[^}/]+\}", "[^/]+", template) + "$"), methods)
                        for template, methods in by_template.items()), key=lambda row: row[0])
        request.app.state.allowed_methods = table
    for _, pattern, methods in table:
        if pattern.match(request.url.path):
            return ", ".join(sorted(methods))
    return None


def _field_of(loc: tuple | list) -> str:
    """``("body", "positions", 0, "ticker")`` -> ``positions[0].ticker`` (the services' naming)."""
    source, field = "request", ""
    for part in loc:
        if part in ("body", "query", "path", "header", "cookie", "form") and not field:
            source = part
            continue
        if isinstance(part, int):
            field = f"{field or source}[{part}]"
        else:
            field = f"{field}.{part}" if field else str(part)
    return field or (str(loc[-1]) if loc else "request")


def _json_syntax_error(err: Mapping[str, Any], document: Any) -> tuple[str, dict[str, int]]:
    """``("not valid JSON: Expecting value at line 2, column 14", {"line": 2, "column": 14})``
    for FastAPI's ``json_invalid`` error, whose location is ``("body", <character offset>)``
    and whose body is the document (1-based line and column, as ``json`` counts them)."""
    loc = err.get("loc") or ()
    pos = loc[-1] if loc and isinstance(loc[-1], int) else None
    what = str((err.get("ctx") or {}).get("error") or "syntax error")
    if pos is None:
        return f"not valid JSON: {what}", {}
    if isinstance(document, (bytes, bytearray)):
        document = bytes(document).decode("utf-8", "replace")
    text = document if isinstance(document, str) else ""
    pos = min(pos, len(text))
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"not valid JSON: {what} at line {line}, column {column}", {"line": line, "column": column}


def install_error_handlers(app: FastAPI) -> None:
    def _api_error_response(request: Request, exc: ApiError) -> JSONResponse:
        body = error_body(_request_id(request), exc.code, exc.message, details=exc.details, errors=exc.errors, field=exc.field,
                          ai_suggestions=exc.ai_suggestions)
        return _response(request, exc.status, body, exc.headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _api_error_response(request, exc)

    @app.exception_handler(ValueError)
    async def _value_error(request: Request, exc: ValueError):
        # A service input error no route caught is still the caller's 400 naming the field;
        # any other ValueError is a bug like any other exception.
        mapped = input_error(exc)
        if mapped is not None:
            return _api_error_response(request, mapped)
        return _internal(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                reason, where = _json_syntax_error(err, getattr(exc, "body", None))
                errors.append({"code": "INVALID_PARAMETER", "message": f"body: {reason}", "field": "body", **where})
                continue
            field = _field_of(err.get("loc", ()))
            reason = err.get("msg", "invalid value")
            errors.append({"code": "INVALID_PARAMETER", "message": f"{field}: {reason}", "field": field})
        first = errors[0] if errors else {"field": "request", "message": "invalid request"}
        message = f"The '{first['field']}' parameter is invalid: {first['message'].split(': ', 1)[-1]}"
        details = {"field": first["field"], "reason": first["message"].split(": ", 1)[-1],
                   **{k: first[k] for k in ("line", "column") if k in first}}
        return _response(request, 400, error_body(_request_id(request), "INVALID_PARAMETER", message, details=details, errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = STATUS_CODES.get(exc.status_code, "ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            allow = _allowed_methods(request)
            if allow:
                headers["Allow"] = allow
        return _response(request, exc.status_code, error_body(_request_id(request), code, message), headers)

    def _internal(request: Request, exc: BaseException) -> JSONResponse:
        # Every 500 is a bug: log it with the request id, never leak internals to the client.
        log.error("unhandled error in %s %s (request %s)", request.method, request.url.path, _request_id(request),
                  exc_info=(type(exc), exc, exc.__traceback__))
        body = error_body(_request_id(request), "INTERNAL", "Internal server error; quote the request_id when reporting it")
        return _response(request, 500, body)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception):
        return _internal(request, exc)
