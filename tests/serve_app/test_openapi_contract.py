"""The API's contract: /api/v1/openapi.json documents every route's request body, success body
and error responses (checked offline), and the live app keeps that contract under
property-based testing (schemathesis over the whole schema: no 5xx, no answer that breaks its
own schema, no undocumented status)."""

from __future__ import annotations

import secrets
import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

V1 = "/api/v1"
#: POST routes that act on the resource in their path and take no body.
BODYLESS = {
    ("post", f"{V1}/auth/refresh"),
    ("post", f"{V1}/jobs/{{job_id}}/cancel"),
    ("post", f"{V1}/backtest_sweep/{{sweep_id}}/cancel"),
    ("post", f"{V1}/backtest_sweep/{{sweep_id}}/resume"),
    ("post", f"{V1}/signals/{{signal_id}}/cancel"),
    ("post", f"{V1}/modeling/sessions/{{session_id}}/reset"),
    ("post", f"{V1}/ai/execute/{{confirmation_id}}/confirm"),
    ("post", f"{V1}/ai/workflow/{{workflow_id}}/run"),
}
ERROR_REF = "#/components/schemas/ErrorResponse"


# -- the document (offline: the app without Ray) ---------------------------------------------

def _document() -> dict:
    from cluster.config import Settings
    from serve_app.app import local_app

    with tempfile.TemporaryDirectory(prefix="sigma_openapi_") as home:
        return local_app(Settings(home=home, jwt_secret=secrets.token_urlsafe(32))).openapi()


@pytest.fixture(scope="module")
def openapi() -> dict:
    return _document()


def _operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield method, path, op


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _is_described(spec: dict, schema: dict | None) -> bool:
    """A schema that says something: a known component, or a type with properties or items."""
    if not schema:
        return False
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return name in spec["components"]["schemas"] and _is_described(spec, _resolve(spec, schema))
    if "anyOf" in schema or "oneOf" in schema:
        return all(_is_described(spec, s) for s in schema.get("anyOf", schema.get("oneOf")))
    if schema.get("type") == "object":
        return bool(schema.get("properties") or schema.get("additionalProperties"))
    if schema.get("type") == "array":
        return _is_described(spec, schema.get("items"))
    return "type" in schema


def test_the_document_has_every_route(openapi):
    ops = list(_operations(openapi))
    assert len(ops) >= 78, f"only {len(ops)} operations documented"
    assert "HTTPBearer" in openapi["components"]["securitySchemes"]


def test_every_route_documents_its_success_body(openapi):
    missing = []
    for method, path, op in _operations(openapi):
        success = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        if not success:
            missing.append(f"{method.upper()} {path}: no success status")
        for code, response in success.items():
            if code == "204":
                assert not response.get("content"), f"{method.upper()} {path}: 204 with a body"
                continue
            content = response.get("content") or {}
            if not content:
                missing.append(f"{method.upper()} {path} {code}: no content")
            for media, body in content.items():
                schema = body.get("schema")
                if media == "application/json" and not _is_described(openapi, schema):
                    missing.append(f"{method.upper()} {path} {code}: empty schema {schema}")
                elif media != "application/json" and not schema:
                    missing.append(f"{method.upper()} {path} {code} {media}: no schema")
    assert not missing, "\n".join(missing)


def test_every_body_is_documented(openapi):
    documented = {(method, path) for method, path, _ in _operations(openapi)}
    assert BODYLESS <= documented, f"not routes: {sorted(BODYLESS - documented)}"
    missing = []
    for method, path, op in _operations(openapi):
        if method not in ("post", "put", "patch") or (method, path) in BODYLESS:
            assert "requestBody" not in op, f"{method.upper()} {path} takes a body"
            continue
        content = (op.get("requestBody") or {}).get("content") or {}
        if not content:
            missing.append(f"{method.upper()} {path}: no request body")
        for media, body in content.items():
            schema = body.get("schema")
            if not _is_described(openapi, schema):
                missing.append(f"{method.upper()} {path} {media}: empty body schema {schema}")
            elif media == "application/json" and "$ref" in schema:
                resolved = _resolve(openapi, schema)
                assert resolved.get("properties"), f"{method.upper()} {path}: body model without fields"
    assert not missing, "\n".join(missing)


def test_every_route_documents_its_errors_in_the_error_format(openapi):
    from serve_app.middleware import UNLIMITED_PATHS

    problems = []
    for method, path, op in _operations(openapi):
        label = f"{method.upper()} {path}"
        responses = op["responses"]
        errors = {code for code in responses if code[0] in "45" or code == "default"}
        for code in errors:
            schema = (responses[code].get("content") or {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") != ERROR_REF:
                problems.append(f"{label} {code}: not the error format ({schema})")
        required = {"default"}
        if op.get("security") and any(req for req in op["security"]):
            required.add("401")
        if path == f"{V1}/auth/token":
            required |= {"400", "401"}
        if not path.startswith(UNLIMITED_PATHS):
            required.add("429")
        if op.get("requestBody") or any(p["in"] in ("query", "header") for p in op.get("parameters", [])):
            required.add("400")
        if path.startswith(f"{V1}/admin/"):
            required.add("403")
        if "{" in path:
            required.add("404")
        if "422" in responses:
            problems.append(f"{label}: documents 422, which the API never answers (validation errors are 400)")
        lacking = required - set(responses)
        if lacking:
            problems.append(f"{label}: lacks {sorted(lacking)}")
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    assert not problems, "\n".join(problems)


def test_error_model_is_what_the_app_sends(openapi):
    from serve_app.errors import error_body

    error = _resolve(openapi, {"$ref": ERROR_REF})
    body = error_body("req_1", "INVALID_PARAMETER", "bad", details={"field": "x", "reason": "y"})
    assert set(error["properties"]) == set(body)
    assert set(error["required"]) <= set(body)


def test_a_response_model_documents_without_filtering():
    """Handlers return a response object; FastAPI sends it as is, whatever ``response_model``
    says (the models document the answers; they never filter or re-validate them)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from pydantic import BaseModel

    from serve_app.envelope import SigmaJSONResponse
    from serve_app.schemas.common import Envelope

    class Narrow(BaseModel):
        kept: int

    app = FastAPI()

    @app.get("/x", response_model=Envelope[Narrow])
    def handler():
        return SigmaJSONResponse({"data": {"kept": "not an int", "extra": 1}})

    assert TestClient(app).get("/x").json() == {"data": {"kept": "not an int", "extra": 1}}


def test_routes_share_helpers_through_deps_and_errors_only():
    """A route module imports no other route module: shared helpers live in serve_app.deps,
    serve_app.errors and serve_app.schemas."""
    import ast
    from pathlib import Path

    import serve_app.routes as routes

    for path in Path(routes.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("serve_app.routes"):
                raise AssertionError(f"{path.name} imports {node.module}")


def test_one_mapping_of_service_errors():
    from cluster.errors import InputError
    from compute.errors import InvalidTicker, MarketDataError
    from serve_app.errors import _field_of, input_error, service_error
    from services.portfolio.service import PortfolioConflict

    def shape(err):
        return None if err is None else (err.status, err.code, err.field)

    assert shape(service_error(InputError("condition.metric", "unknown"))) == (400, "INVALID_PARAMETER", "condition.metric")
    assert shape(service_error(LookupError("tag tag_1 not found"))) == (404, "NOT_FOUND", None)
    assert service_error(LookupError("position pos_AB")).message == "Position pos_AB not found"
    assert shape(service_error(PortfolioConflict("dup", field="name"))) == (409, "CONFLICT", "name")
    assert shape(service_error(MarketDataError("down"))) == (503, "MARKET_DATA_UNAVAILABLE", None)
    assert shape(service_error(InvalidTicker("bad"))) == (400, "INVALID_PARAMETER", "ticker")
    # a bare ValueError is a bug unless the route names a default field (the risk service's style)
    assert service_error(ValueError("view: nope")) is None and service_error(RuntimeError("bug")) is None
    assert shape(input_error(ValueError("view: expected one of"), "request")) == (400, "INVALID_PARAMETER", "view")
    assert shape(input_error(ValueError("equity is not positive"), "request")) == (400, "INVALID_PARAMETER", "request")
    renamed = input_error(ValueError("shocks.moon_change: unknown factor"), "scenario_ids",
                          {"shocks": "custom_scenario.parameters"})
    assert renamed.field == "custom_scenario.parameters.moon_change"
    assert _field_of(("body", "positions", 0, "ticker")) == "positions[0].ticker"
    assert _field_of(("query", "limit")) == "limit" and _field_of(("body",)) == "body"


# -- the live app under property-based testing -----------------------------------------------
#
# The schema is the document above (the code the live app runs builds the same one); each
# operation is one test per catalog back end, its requests sent to the live Serve app.

USER = "contract_admin"
#: Examples per operation in the fuzzing phase; the examples and coverage phases add the
#: documented examples and boundary and invalid values of every parameter on top.
MAX_EXAMPLES = 5

schema = schemathesis.openapi.from_dict(_document(), config=schemathesis.Config.from_dict({
    "generation": {"max-examples": MAX_EXAMPLES},
    "phases": {"stateful": {"enabled": False}},  # operations are tested one by one here
    "checks": {
        # Every other check runs. This one expects every schema-valid request to succeed, but the
        # services also apply rules a schema cannot state (a date not in the future, a known
        # metric or pack name, a range of at most five years, a non-zero quantity): such a
        # request gets a documented 400 naming the field, which the other checks verify.
        "positive_data_acceptance": {"enabled": False},
    },
    "auth": {"auto-signup": False},
    "request-timeout": 120,
}))
# GET /ui/events is a Server-Sent Events stream that stays open until the token ends: it has no
# answer to validate (tests/serve_app/test_api_ui_sync.py checks it, with its 401 and 400).
schema = schema.exclude(path=f"{V1}/ui/events")
#: The bearer token of the running back end's contract user (set by ``contract_user``).
_TOKEN: dict[str, str] = {}


@schema.auth(refresh_interval=None)
class ContractUserAuth:
    """The contract user's token on every request, except the ones schemathesis sends without
    credentials on purpose (they must answer 401)."""

    def get(self, case, context):
        return _TOKEN.get("bearer")  # None while collecting: no request is sent then

    def set(self, case, data, context):
        if data is not None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


#: The catalog of the running back end (set by ``contract_user``), for the hook below.
_CATALOG: dict[str, object] = {}
USER_ROUTE = f"{V1}/admin/users/{{user_id}}"


@schemathesis.hook
def before_call(context, case, kwargs):
    """The fuzzer must not deactivate or delete the users other tests of this session hold
    tokens for: a valid user id on PATCH/DELETE /admin/users/{user_id} becomes a throwaway
    user's (created here). Invalid ids (0, text, too large) go as generated."""
    if case.operation.path != USER_ROUTE or "catalog" not in _CATALOG:
        return
    user_id = (case.path_parameters or {}).get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 1 <= user_id <= 2**31 - 1:
        return
    from cluster.catalog import User

    with _CATALOG["catalog"].session() as s:
        victim = User(username=f"contract_victim_{secrets.token_hex(6)}", password_hash="!", role="user", tier="free")
        s.add(victim)
        s.flush()
        case.path_parameters = {**case.path_parameters, "user_id": victim.id}


@pytest.fixture(scope="module")
def contract_user(api):
    """An admin on the unlimited tier: every route is reachable and no rate limit interferes.
    Afterwards the jobs the run queued (probes, batches, trainings) are cancelled, so they do
    not hold the workers for later tests."""
    _TOKEN["bearer"] = api.user(USER, role="admin", tier="enterprise")
    _CATALOG["catalog"] = api.catalog
    yield USER
    _CATALOG.clear()
    headers = api.headers(USER)
    jobs = api.http.get(f"{V1}/jobs", params={"limit": 500}, headers=headers).json()["data"]
    for job in jobs:
        if job["status"] in ("queued", "running"):
            api.http.post(f"{V1}/jobs/{job['job_id']}/cancel", headers=headers)
    _TOKEN.clear()


@schema.parametrize()
# PostgreSQL only (the catalog a cluster runs on): the SQLite back end serves the same routes,
# which the route tests run on both; this keeps the suite within its time budget.
@pytest.mark.parametrize("api", ["postgresql"], indirect=True)
# derandomize: the same cases on every run, so CI is reproducible; deadline: a live app on two
# shared cores answers in its own time.
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_live_api_keeps_its_contract(case, api, contract_user):
    case.call_and_validate(base_url=api.base_url)
