"""Schemathesis' stateful phase on the live app (PostgreSQL): scenarios that follow the OpenAPI
links from create routes to the routes taking the new id (POST /positions -> GET, PATCH,
DELETE /positions/{position_id} and its tags; POST /tags -> PUT, DELETE /tags/{tag_id}).
Every step must answer a documented status with a body matching its schema, never a 5xx.
Bounded: a few scenarios of a few steps each (well under two minutes)."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.serve_app.test_openapi_contract import _document

USER = "stateful_user"
BUDGET_S = 120


@pytest.mark.parametrize("api", ["postgresql"], indirect=True)
def test_create_read_change_delete_scenarios_keep_the_contract(api):
    schema = schemathesis.openapi.from_dict(_document(), config=schemathesis.Config.from_dict({
        "checks": {"positive_data_acceptance": {"enabled": False}},  # see test_openapi_contract
        "request-timeout": 60,
    })).include(path_regex=r"^/api/v1/(positions|tags)(/|$)")
    links = [name for op in schema.get_all_operations() for name in
             (op.ok().definition.raw.get("responses", {}).get("201", {}).get("links") or {})]
    assert {"GetPosition", "DeletePosition", "UpdateTag", "DeleteTag"} <= set(links)
    headers = api.headers(USER)
    calls: list[int] = []

    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"base_url": api.base_url, "headers": headers}

        def after_call(self, response, case):
            calls.append(response.status_code)

    started = time.monotonic()
    Workflow.run(settings=settings(max_examples=8, stateful_step_count=5, deadline=None, derandomize=True,
                                   suppress_health_check=list(HealthCheck)))
    assert time.monotonic() - started < BUDGET_S
    assert calls and not [c for c in calls if c >= 500]
    # the links were followed: something was created and then reached through its id
    assert 201 in calls
