"""Inputs that cannot poison a book (issue 18, item 3), through the live API (SQLite and PostgreSQL).

A property test (hypothesis) posts random positions inside and outside the documented bounds
(compute/limits.py): each is either refused with a 4xx naming the field, or accepted, and then
every portfolio and risk route still answers figures that are finite (no NaN, no infinity) and
not null where the book has them. Beside it: the bounds at their edges, the CSV upload, PATCH,
hypothetical Greeks, scenario shocks, and JSON syntax errors that name the body, line and column.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from compute.limits import MAX_ABS_QUANTITY, MAX_PRICE
from tests.serve_app.test_api_platform import V1, assert_error

USER = "bounds_user"
EXPIRY = (dt.date.today() + dt.timedelta(days=120)).isoformat()

#: Every route that prices the default book, and the figures that must not be null on it.
BOOK_ROUTES = {
    "/portfolio": ("total_value", "positions_value"),
    "/portfolio/summary": ("total_value",),
    "/portfolio/exposures": (),
    "/portfolio/performance": (),
    "/positions": (),
    "/risk/greeks": (),
    "/risk/factors": (),
    "/risk/var": (),
    "/risk/overview": (),
}


def _strict_json(resp):
    """The body, refusing NaN / Infinity tokens (json.loads would accept them)."""
    def refuse(token):
        raise AssertionError(f"{resp.request.url.path}: non-finite number {token} in the answer")
    return json.loads(resp.text, parse_constant=refuse)


def _numbers(obj, path="data"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def assert_refused_naming_field(resp, *fields: str) -> None:
    assert 400 <= resp.status_code < 500, resp.text
    body = resp.json()
    field = body["error"]["details"].get("field")
    assert field and body["errors"][0]["field"] == field, resp.text
    if fields:
        assert field in fields, resp.text


def assert_book_is_sound(api, headers) -> None:
    """Every portfolio and risk route: 200 with finite figures (key ones not null), or a refusal
    in the error format naming a field (a book with no positive equity has no VaR relative to
    it); never a 5xx."""
    for route, required in BOOK_ROUTES.items():
        resp = api.http.get(f"{V1}{route}", headers=headers)
        assert resp.status_code < 500, f"{route}: {resp.text}"
        body = _strict_json(resp)
        if resp.status_code != 200:
            assert_refused_naming_field(resp)
            continue
        for path, number in _numbers(body["data"]):
            assert math.isfinite(number), f"{route} {path} = {number}"
        for key in required:
            assert body["data"][key] is not None, f"{route}: {key} is null: {resp.text[:500]}"
        if route == "/positions":
            assert body["data"]["summary"]["total_value"] is not None, resp.text[:500]


@pytest.fixture(scope="module")
def book(api):
    """A user whose default book holds one ordinary long position to start with."""
    headers = api.headers(USER)
    for row in api.http.get(f"{V1}/positions", headers=headers).json()["data"]["positions"]:
        api.http.delete(f"{V1}/positions/{row['id']}", headers=headers)
    resp = api.http.post(f"{V1}/positions", json={"ticker": "AAPL", "quantity": 100, "price": 150}, headers=headers)
    assert resp.status_code == 201, resp.text
    return headers


huge = st.sampled_from([1e308, -1e308, 1.7976931348623157e308, 1e300, 1e16, MAX_ABS_QUANTITY * 1.0001, 0.0, 5e-324])
quantities = st.one_of(st.floats(-MAX_ABS_QUANTITY, MAX_ABS_QUANTITY, allow_nan=False), huge,
                       st.integers(-10**12, 10**12))
prices = st.one_of(st.floats(0, MAX_PRICE, allow_nan=False), huge, st.floats(-1e9, 0))


@st.composite
def positions(draw):
    kind = draw(st.sampled_from(["stock", "option"]))
    quantity = draw(quantities)
    body = {"quantity": quantity, "price": draw(prices)}
    if kind == "stock":
        body["ticker"] = draw(st.sampled_from(["MSFT", "XOM", "SPY", "NVDA"]))
    else:
        right = draw(st.sampled_from(["C", "P"]))
        body.update(ticker="SPY", expiration=EXPIRY,
                    strike=draw(st.one_of(st.floats(0.001, 99_999.999, allow_nan=False), huge)),
                    type=("L" if quantity > 0 else "S") + right)
    return body


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(position=positions())
@example(position={"ticker": "MSFT", "quantity": 1e308, "price": 100})
@example(position={"ticker": "MSFT", "quantity": 10, "price": 1e308})
@example(position={"ticker": "MSFT", "quantity": MAX_ABS_QUANTITY, "price": MAX_PRICE})
@example(position={"ticker": "MSFT", "quantity": 1e6, "price": MAX_PRICE})
@example(position={"ticker": "XOM", "quantity": -MAX_ABS_QUANTITY, "price": 95})
def test_random_positions_never_poison_the_book(api, book, position):
    resp = api.http.post(f"{V1}/positions", json=position, headers=book)
    assert resp.status_code < 500, resp.text
    if resp.status_code != 201:
        assert_refused_naming_field(resp, "quantity", "price", "strike", "type", "ticker", "expiration")
        return
    created = resp.json()["data"]
    try:
        assert abs(created["quantity"]) <= MAX_ABS_QUANTITY and 0 < created["entry_price"] <= MAX_PRICE
        assert_book_is_sound(api, book)
        # the same figures as hypothetical positions
        hypo = api.http.post(f"{V1}/risk/greeks/calculate", json={"positions": [position]}, headers=book)
        assert hypo.status_code == 200, hypo.text
        for path, number in _numbers(_strict_json(hypo)["data"]):
            assert math.isfinite(number), f"{path} = {number}"
    finally:
        assert api.http.delete(f"{V1}/positions/{created['id']}", headers=book).status_code == 204


def test_the_bounds_name_the_field(api, book):
    post = lambda body: api.http.post(f"{V1}/positions", json=body, headers=book)  # noqa: E731
    assert_error(post({"ticker": "IBM", "quantity": 1e308, "price": 10}), 400, "INVALID_PARAMETER", field="quantity")
    assert_error(post({"ticker": "IBM", "quantity": -1e9 - 1, "price": 10}), 400, "INVALID_PARAMETER", field="quantity")
    assert_error(post({"ticker": "IBM", "quantity": 10, "price": 1e308}), 400, "INVALID_PARAMETER", field="price")
    assert_error(post({"ticker": "IBM", "quantity": 10, "price": 0}), 400, "INVALID_PARAMETER", field="price")
    assert_error(post({"ticker": "IBM", "type": "LC", "quantity": 1, "price": 1, "strike": 1e6, "expiration": EXPIRY}),
                 400, "INVALID_PARAMETER", field="strike")
    # inside each bound but 1e9 x 1e7 = 1e16 of notional
    assert_error(post({"ticker": "IBM", "quantity": 1e9, "price": 1e7}), 400, "INVALID_PARAMETER", field="quantity")
    ok = post({"ticker": "IBM", "quantity": 1e6, "price": 1e7})  # 1e13: inside every bound
    assert ok.status_code == 201, ok.text
    pid = ok.json()["data"]["id"]
    patch = lambda body: api.http.patch(f"{V1}/positions/{pid}", json=body, headers=book)  # noqa: E731
    assert_error(patch({"quantity": 1e308}), 400, "INVALID_PARAMETER", field="quantity")
    assert_error(patch({"entry_price": 1e308}), 400, "INVALID_PARAMETER", field="entry_price")
    assert_error(patch({"quantity": 1e9}), 400, "INVALID_PARAMETER", field="quantity")  # notional 1e16
    assert patch({"quantity": 2e6}).status_code == 200
    assert api.http.get(f"{V1}/positions/{pid}", headers=book).json()["data"]["quantity"] == 2e6
    assert api.http.delete(f"{V1}/positions/{pid}", headers=book).status_code == 204

    calc = api.http.post(f"{V1}/risk/greeks/calculate", headers=book,
                         json={"positions": [{"ticker": "AAPL", "quantity": 1, "price": 1}, {"ticker": "AAPL", "quantity": 1e308}]})
    assert_error(calc, 400, "INVALID_PARAMETER", field="positions[1].quantity")
    shock = api.http.post(f"{V1}/risk/scenarios", headers=book,
                          json={"custom_scenario": {"name": "x", "parameters": {"spy_change": 1e308}}})
    assert shock.status_code == 400 and "spy_change" in shock.json()["error"]["details"]["field"], shock.text


def test_csv_rows_outside_the_bounds_are_refused(api, book):
    before = api.http.get(f"{V1}/positions", headers=book).json()["data"]["summary"]["total_positions"]
    content = ("ticker,quantity,entry_price\n"
               "MSFT,10,300\n"
               "NVDA,1e308,100\n"
               "AMD,10,1e308\n"
               "INTC,-1000000001,20\n"
               "SPY270115C00500000,1000000000,20000\n"  # 2e15 of notional
).encode()
    resp = api.http.post(f"{V1}/portfolio/upload", files={"file": ("b.csv", content, "text/csv")}, headers=book)
    err = assert_error(resp, 400, "INVALID_FILE")
    assert {(e["line"], e["field"]) for e in err["errors"]} == {(3, "quantity"), (4, "entry_price"), (5, "quantity"), (6, "quantity")}
    after = api.http.get(f"{V1}/positions", headers=book).json()["data"]["summary"]["total_positions"]
    assert after == before  # nothing written, not even the good MSFT row


@pytest.mark.parametrize("raw, line, column", [
    ('{"ticker": "AAPL", "quantity": }', 1, 32),
    ('{\n  "ticker": "AAPL",\n  "quantity": 5,,\n  "price": 1\n}', 3, 17),
    ("[1, 2\n", 2, 1),
])
def test_json_syntax_errors_name_the_body_line_and_column(api, book, raw, line, column):
    try:
        json.loads(raw)
    except json.JSONDecodeError as exc:  # the reference: the standard library's own position
        assert (exc.lineno, exc.colno) == (line, column)
    resp = api.http.post(f"{V1}/positions", content=raw.encode(), headers={**book, "Content-Type": "application/json"})
    body = assert_error(resp, 400, "INVALID_PARAMETER", field="body")
    assert (body["error"]["details"]["line"], body["error"]["details"]["column"]) == (line, column)
    assert f"line {line}, column {column}" in body["error"]["message"]
