"""Garbage in, 4xx out: every route of the OpenAPI document, fed bad paths, queries and bodies,
never answers 500 (the in-process app: same routers, no Ray; job routes may answer 503)."""

from __future__ import annotations

import asyncio
import random
import re
import secrets

import httpx

BAD_VALUES = ["", "x", "-1", "1e309", "null", "[]", "2024-13-45", "'; drop table users;--", "9" * 40, "AAPL", "nan"]
BAD_BODIES = [
    None, {}, [], {"x": 1}, {"model_id": "x" * 500}, {"positions": "x"},
    {"positions": [{"ticker": "AAPL", "type": "LC", "quantity": "a"}]},
    {"ticker": "AAPL", "type": "LONG", "quantity": 1e308, "price": -1},
    {"scenario_ids": ["nope"]}, {"custom_scenario": {"parameters": {"spy_change": "x"}}},
    {"sweep": {"thresholds": [2, -1]}, "model_id": "AAPL_equity_5d_daily"},
    {"url": "ftp://x", "events": ["x"], "secret": ""},
]


def test_no_route_answers_500_to_garbage(tmp_path):
    from cluster.catalog import get_catalog, upgrade_schema
    from cluster.config import Settings
    from serve_app import demo_portfolio
    from serve_app.app import local_app
    from serve_app.users import seed_demo_users

    password = "pw-" + secrets.token_hex(6)
    settings = Settings(home=tmp_path, jwt_secret=secrets.token_urlsafe(32), demo_password=password,
                        admin_password=password, rate_limits='{"pro": {"per_minute": 1000000, "per_hour": 10000000}}')
    catalog = get_catalog(settings)
    upgrade_schema(catalog)
    seed_demo_users(catalog, settings)
    demo_portfolio.seed(catalog, settings)
    app = local_app(settings)
    rng = random.Random(7)

    async def probe() -> tuple[int, list]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sigma") as client:
            tokens = [
                (await client.post("/api/v1/auth/token", json={"username": name, "password": password})).json()["access_token"]
                for name in ("demo_hedgefundstyle", "admin")
            ]
            spec = (await client.get("/api/v1/openapi.json")).json()
            sent, failures = 0, []
            for path, operations in spec["paths"].items():
                for method, operation in operations.items():
                    if "text/event-stream" in operation.get("responses", {}).get("200", {}).get("content", {}):
                        continue  # an event stream stays open until its token ends (tests/serve_app/test_api_ui_sync.py)
                    query_names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
                    for token in tokens:
                        for _ in range(2):
                            url = re.sub(r"\{[^}]+\}", lambda _m: rng.choice(BAD_VALUES[1:] + ["pos_x", "job_x"]), path)
                            params = {name: rng.choice(BAD_VALUES) for name in query_names if rng.random() < 0.7}
                            kwargs = {"params": params, "headers": {"Authorization": f"Bearer {token}"}}
                            if method in ("post", "put", "patch"):
                                kwargs["json"] = rng.choice(BAD_BODIES)
                            resp = await client.request(method.upper(), url, **kwargs)
                            sent += 1
                            if resp.status_code >= 500 and resp.status_code != 503:
                                failures.append((method, url, params, kwargs.get("json"), resp.status_code, resp.text[:200]))
            return sent, failures

    sent, failures = asyncio.run(probe())
    assert sent > 200
    assert failures == []
