"""One error format for every route.

``{"success": false, "error": {code, message, details}, "errors": [{code, message, field}],
"request_id"}``: the Lab spec's ``error`` object and the portfolio spec's ``errors`` list in one
body, so clients of either API read it the way their spec says.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def error_body(
    request_id: str | None,
    code: str,
    message: str,
    *,
    details: dict | None = None,
    errors: list[dict] | None = None,
    field: str | None = None,
) -> dict:
    if errors is None:
        errors = [{"code": code, "message": message, "field": field if field is not None else (details or {}).get("field")}]
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


def _field_of(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie", "form")]
    return ".".join(parts) if parts else (str(loc[-1]) if loc else "request")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        body = error_body(_request_id(request), exc.code, exc.message, details=exc.details, errors=exc.errors, field=exc.field)
        return _response(request, exc.status, body, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = []
        for err in exc.errors():
            field = _field_of(err.get("loc", ()))
            reason = err.get("msg", "invalid value")
            errors.append({"code": "INVALID_PARAMETER", "message": f"{field}: {reason}", "field": field})
        first = errors[0] if errors else {"field": "request", "message": "invalid request"}
        message = f"The '{first['field']}' parameter is invalid: {first['message'].split(': ', 1)[-1]}"
        details = {"field": first["field"], "reason": first["message"].split(": ", 1)[-1]}
        return _response(request, 400, error_body(_request_id(request), "INVALID_PARAMETER", message, details=details, errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = STATUS_CODES.get(exc.status_code, "ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
        return _response(request, exc.status_code, error_body(_request_id(request), code, message), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception):
        # Every 500 is a bug: log it with the request id, never leak internals to the client.
        log.exception("unhandled error in %s %s (request %s)", request.method, request.url.path, _request_id(request))
        body = error_body(_request_id(request), "INTERNAL", "Internal server error; quote the request_id when reporting it")
        return _response(request, 500, body)
