"""The backbone through a real Serve app: auth, errors, request ids, rate limits, jobs, health."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.conftest import TEST_PASSWORD

V1 = "/api/v1"


def assert_error(resp, status: int, code: str, field: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["errors"] and body["errors"][0]["code"] == code
    assert body["request_id"] and body["request_id"] == resp.headers["x-request-id"]
    if field is not None:
        assert body["error"]["details"]["field"] == field
        assert body["errors"][0]["field"] == field
    return body


# -- auth -------------------------------------------------------------------------------------

def test_login_json_and_form(api):
    api.user("alice")
    resp = api.http.post(f"{V1}/auth/token", json={"username": "alice", "password": TEST_PASSWORD})
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == api.settings.jwt_ttl_s
    claims = jwt.decode(body["access_token"], api.settings.jwt_secret, algorithms=["HS256"])
    assert claims["username"] == "alice" and claims["tier"] == "pro"

    form = api.http.post(f"{V1}/auth/token", data={"username": "alice", "password": TEST_PASSWORD, "grant_type": "password"})
    assert form.status_code == 200 and form.json()["access_token"]


def test_login_rejects_bad_credentials_and_bodies(api):
    api.user("alice")
    assert_error(api.http.post(f"{V1}/auth/token", json={"username": "alice", "password": "wrong-password"}), 401, "UNAUTHORIZED")
    assert_error(api.http.post(f"{V1}/auth/token", json={"username": "nobody", "password": "whatever1"}), 401, "UNAUTHORIZED")
    assert_error(api.http.post(f"{V1}/auth/token", json={"username": "alice"}), 400, "INVALID_PARAMETER", field="password")
    assert_error(api.http.post(f"{V1}/auth/token", content=b"{not json", headers={"content-type": "application/json"}), 400, "INVALID_PARAMETER", field="body")


def test_refresh_issues_a_new_valid_token(api):
    headers = api.headers("alice")
    time.sleep(1.1)  # iat has one-second resolution: the refreshed token must differ
    resp = api.http.post(f"{V1}/auth/refresh", headers=headers)
    assert resp.status_code == 200
    new_token = resp.json()["access_token"]
    assert new_token != headers["Authorization"].split()[1]
    assert api.http.get(f"{V1}/jobs", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200



def test_me_names_the_tokens_user(api):
    api.user("me_mia", tier="basic")
    resp = api.http.get(f"{V1}/auth/me", headers=api.headers("me_mia"))
    assert resp.status_code == 200 and resp.json() == {"username": "me_mia", "role": "user", "tier": "basic"}
    assert_error(api.http.get(f"{V1}/auth/me"), 401, "UNAUTHORIZED")

@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Basic abc", "Bearer not-a-jwt", "Token abc.def.ghi"],
    ids=["missing", "empty", "basic", "garbage", "wrong-scheme"],
)
def test_missing_or_malformed_token_is_401(api, header):
    headers = {"Authorization": header} if header else {}
    assert_error(api.http.get(f"{V1}/jobs", headers=headers), 401, "UNAUTHORIZED")


def test_expired_and_forged_tokens_are_401(api):
    api.user("alice")
    with api.catalog.session() as s:
        from sqlalchemy import select

        from cluster.catalog import User

        uid = s.scalar(select(User.id).where(User.username == "alice"))
    now = int(time.time())
    base = {"sub": str(uid), "username": "alice", "role": "user", "tier": "pro", "typ": "access"}
    expired = jwt.encode({**base, "iat": now - 7200, "exp": now - 3600}, api.settings.jwt_secret, algorithm="HS256")
    forged = jwt.encode({**base, "iat": now, "exp": now + 3600}, "not-the-server-secret", algorithm="HS256")
    admin_claim = jwt.encode({**base, "role": "admin", "iat": now, "exp": now + 3600}, "guess", algorithm="HS256")
    for token, word in ((expired, "expired"), (forged, "signature"), (admin_claim, "signature")):
        body = assert_error(api.http.get(f"{V1}/jobs", headers={"Authorization": f"Bearer {token}"}), 401, "UNAUTHORIZED")
        assert word in body["error"]["message"]


def test_admin_routes_need_admin_role(api):
    assert_error(api.http.get(f"{V1}/admin/users", headers=api.headers("alice")), 403, "FORBIDDEN")
    admin = api.headers("root_admin", role="admin", tier="enterprise")
    resp = api.http.get(f"{V1}/admin/users", headers=admin)
    assert resp.status_code == 200
    assert "root_admin" in {u["username"] for u in resp.json()["data"]}
    created = api.http.post(f"{V1}/admin/users", headers=admin, json={"username": "bob_new", "password": "bobs-password", "tier": "basic"})
    assert created.status_code == 201 and created.json()["data"]["tier"] == "basic"
    assert_error(api.http.post(f"{V1}/admin/users", headers=admin, json={"username": "bob_new", "password": "bobs-password"}), 409, "CONFLICT", field="username")
    assert_error(api.http.post(f"{V1}/admin/users", headers=admin, json={"username": "x y", "password": "short"}), 400, "INVALID_PARAMETER")
    login = api.http.post(f"{V1}/auth/token", json={"username": "bob_new", "password": "bobs-password"})
    assert login.status_code == 200


# -- errors, request ids, docs -----------------------------------------------------------------

def test_unknown_route_and_method_use_the_error_format(api):
    assert_error(api.http.get(f"{V1}/no-such-route", headers=api.headers("alice")), 404, "NOT_FOUND")
    assert_error(api.http.delete(f"{V1}/auth/token"), 405, "METHOD_NOT_ALLOWED")


def test_every_response_carries_a_request_id(api):
    ok = api.http.get(f"{V1}/healthz")
    assert ok.headers["x-request-id"]
    mine = api.http.get(f"{V1}/jobs", headers={**api.headers("alice"), "X-Request-ID": "req_client_chosen_1"})
    assert mine.headers["x-request-id"] == "req_client_chosen_1"
    assert mine.json()["meta"]["request_id"] == "req_client_chosen_1"
    ids = {api.http.get(f"{V1}/jobs", headers=api.headers("alice")).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


def test_portfolio_envelope_shape(api):
    body = api.http.get(f"{V1}/jobs", headers=api.headers("alice")).json()
    assert body["success"] is True and body["errors"] == []
    assert set(body["meta"]) >= {"timestamp", "request_id", "execution_time_ms", "cache_status"}
    assert body["meta"]["execution_time_ms"] >= 0


def test_openapi_and_docs_are_served(api):
    spec = api.http.get(f"{V1}/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert f"{V1}/auth/token" in paths and f"{V1}/jobs/{{job_id}}" in paths
    assert api.http.get(f"{V1}/docs").status_code == 200


# -- rate limits ------------------------------------------------------------------------------

def test_rate_limit_headers_on_authenticated_responses(api):
    now = int(time.time())
    resp = api.http.get(f"{V1}/jobs", headers=api.headers("carol", tier="basic"))
    assert resp.headers["x-ratelimit-limit"] == "300"
    assert 0 <= int(resp.headers["x-ratelimit-remaining"]) < 300
    assert int(resp.headers["x-ratelimit-reset"]) >= now  # an epoch second, not a delay
    # without a valid token the client address has the anonymous budget (test settings: 100000/min)
    anonymous = api.http.get(f"{V1}/jobs")
    assert anonymous.status_code == 401 and anonymous.headers["x-ratelimit-limit"] == "100000"
    from cluster.config import TIERS

    assert "anonymous" not in TIERS  # not a tier a user can be given


def test_rate_limit_429_with_retry_after(api):
    headers = api.headers(f"freebie_{api.backend}", tier="free")  # test settings: free = 30/min
    statuses = []
    last = None
    for _ in range(40):
        last = api.http.get(f"{V1}/jobs", headers=headers)
        statuses.append(last.status_code)
        if last.status_code == 429:
            break
    assert statuses.count(200) >= 25, statuses
    body = assert_error(last, 429, "RATE_LIMITED")
    assert int(last.headers["retry-after"]) >= 1
    assert last.headers["x-ratelimit-remaining"] == "0"
    assert body["error"]["details"]["tier"] == "free"
    # Another user is unaffected: buckets are per user.
    assert api.http.get(f"{V1}/jobs", headers=api.headers("alice")).status_code == 200


# -- jobs -------------------------------------------------------------------------------------

def test_job_lifecycle_and_result(api):
    headers = api.headers("alice")
    resp = api.http.post(f"{V1}/jobs/probe", headers=headers, json={"duration_s": 0.2})
    assert resp.status_code == 202
    accepted = resp.json()
    assert accepted["success"] is True and accepted["status"] == "queued"
    assert accepted["poll_url"] == f"{V1}/jobs/{accepted['job_id']}"
    done = api.wait_job(accepted["job_id"], "alice")
    assert done["status"] == "completed" and done["progress"] == 1.0 and done["finished_at"]
    result = api.http.get(f"{V1}/jobs/{accepted['job_id']}/result", headers=headers).json()["data"]
    assert result["status"] == "completed"
    assert result["result"]["iterations"] >= 1 and result["result"]["node_id"]


def test_jobs_are_private_to_their_owner(api):
    job_id = api.http.post(f"{V1}/jobs/probe", headers=api.headers("alice"), json={}).json()["job_id"]
    other = api.headers("mallory")
    assert_error(api.http.get(f"{V1}/jobs/{job_id}", headers=other), 404, "NOT_FOUND")
    assert_error(api.http.get(f"{V1}/jobs/{job_id}/result", headers=other), 404, "NOT_FOUND")
    assert_error(api.http.post(f"{V1}/jobs/{job_id}/cancel", headers=other), 404, "NOT_FOUND")
    assert job_id not in {j["job_id"] for j in api.http.get(f"{V1}/jobs", headers=other).json()["data"]}
    assert_error(api.http.get(f"{V1}/jobs/job_doesnotexist", headers=other), 404, "NOT_FOUND")


def test_invalid_job_parameters_name_the_field(api):
    resp = api.http.post(f"{V1}/jobs/probe", headers=api.headers("alice"), json={"duration_s": 600})
    body = assert_error(resp, 400, "INVALID_PARAMETER", field="duration_s")
    assert "60" in body["error"]["details"]["reason"]


def test_cancel_a_running_job(api):
    headers = api.headers("alice")
    job_id = api.http.post(f"{V1}/jobs/probe", headers=headers, json={"duration_s": 30}).json()["job_id"]
    api.wait_job(job_id, "alice", until=("running",))
    resp = api.http.post(f"{V1}/jobs/{job_id}/cancel", headers=headers)
    assert resp.status_code == 200 and resp.json()["data"]["status"] == "cancelled"
    time.sleep(1.0)
    final = api.wait_job(job_id, "alice")
    assert final["status"] == "cancelled"
    # A finished job cannot be cancelled again into another state.
    assert api.http.post(f"{V1}/jobs/{job_id}/cancel", headers=headers).json()["data"]["status"] == "cancelled"


def test_completed_job_cannot_be_cancelled(api):
    headers = api.headers("alice")
    job_id = api.http.post(f"{V1}/jobs/probe", headers=headers, json={}).json()["job_id"]
    api.wait_job(job_id, "alice")
    assert_error(api.http.post(f"{V1}/jobs/{job_id}/cancel", headers=headers), 409, "CONFLICT", field="job_id")


@pytest.mark.postgresql_only  # the batch and the job manager are the subject, not the catalog's back end
def test_restart_recovery_runs_interrupted_jobs_again_up_to_the_limit(api):
    """Kill the job manager mid-job (as a service restart does): a running job starts again by
    itself and completes; one that already had its runs fails naming the limit; queued ones run."""
    import ray
    from sqlalchemy import update

    from cluster.catalog import Job
    from cluster.jobs import create_job, manager_name

    headers = api.headers("dave")
    # long enough to be still running when the manager dies, even on a loaded machine
    running_id = api.http.post(f"{V1}/jobs/probe", headers=headers, json={"duration_s": 12}).json()["job_id"]
    last_id = api.http.post(f"{V1}/jobs/probe", headers=headers, json={"duration_s": 30}).json()["job_id"]
    api.wait_job(running_id, "dave", until=("running",))
    api.wait_job(last_id, "dave", until=("running",))
    with api.catalog.session() as s:
        uid = s.get(Job, running_id).user_id
        # as if this were already its third run
        s.execute(update(Job).where(Job.id == last_id).values(attempts=api.settings.job_max_attempts))
    # A job written to the catalog but not yet handed to a worker when the service died.
    queued = create_job(api.catalog, user_id=uid, kind="system.probe", params={"duration_s": 0.1})

    manager = ray.get_actor(manager_name(api.settings), namespace="sigma")
    ray.kill(manager, no_restart=False)  # the actor restarts, as after a crash

    again = api.wait_job(running_id, "dave", timeout=90)
    assert again["status"] == "completed", (again.get("error"), again.get("message"), again)
    with api.catalog.session() as s:
        assert s.get(Job, running_id).attempts == 2
    failed = api.wait_job(last_id, "dave", timeout=60)
    assert failed["status"] == "failed" and failed["error"]["code"] == "WORKER_FAILED"
    assert "SIGMA_JOB_MAX_ATTEMPTS" in failed["error"]["message"]
    requeued = api.wait_job(queued.id, "dave", timeout=90)
    assert requeued["status"] == "completed"


def test_per_user_queue_limit_holds_jobs_back(api):
    """Two jobs in a group limited to one at a time: the second waits queued until the first ends."""
    import ray
    from sqlalchemy import select

    from cluster.catalog import Job, User
    from cluster.jobs import create_job, get_job_manager

    api.user("erin")
    with api.catalog.session() as s:
        uid = s.scalar(select(User.id).where(User.username == "erin"))
    manager = get_job_manager(api.settings)
    first = create_job(api.catalog, user_id=uid, kind="system.probe", params={"duration_s": 3}, queue_group="g", queue_limit=1)
    second = create_job(api.catalog, user_id=uid, kind="system.probe", params={"duration_s": 0.1}, queue_group="g", queue_limit=1)
    ray.get(manager.submit.remote(first.id, uid, "g", 1))
    position = ray.get(manager.submit.remote(second.id, uid, "g", 1))
    assert position == 1
    api.wait_job(first.id, "erin", until=("running",))
    with api.catalog.session() as s:
        assert s.get(Job, second.id).status == "queued"
    assert api.wait_job(first.id, "erin")["status"] == "completed"
    done = api.wait_job(second.id, "erin")
    assert done["status"] == "completed"
    with api.catalog.session() as s:
        assert s.get(Job, second.id).started_at >= s.get(Job, first.id).finished_at


def test_job_manager_warms_its_workers_only_when_asked_and_once(api, tmp_path):
    """A job manager starts no warm workers of its own accord (they would compete with the API
    replica being built; the replica asks once it has answered, tests/serve_app/test_warmup.py);
    each is started once: asking again starts none. (The API's own manager may have been restarted by the recovery
    tests, so this uses a manager of its own, for another catalog.)"""
    import ray

    from cluster.catalog import prepare_catalog
    from cluster.jobs import WARM_WORKERS, get_job_manager, manager_name

    other = api.settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'other.db'}"})
    prepare_catalog(other)
    manager = get_job_manager(other)
    try:
        assert ray.get(manager.warm_workers.remote(1)) == 1
        assert ray.get(manager.warm_workers.remote()) == WARM_WORKERS - 1
        assert ray.get(manager.warm_workers.remote()) == 0
    finally:
        ray.kill(ray.get_actor(manager_name(other), namespace="sigma"), no_restart=True)


# -- health -----------------------------------------------------------------------------------

def test_health_needs_no_token_and_checks_components(api):
    resp = api.http.get(f"{V1}/healthz")
    assert resp.status_code == 200
    body = resp.json()
    assert set(body["components"]) == {"database", "artifact_store", "market_data", "workers"}
    assert body["components"]["database"] == "healthy"
    assert body["components"]["artifact_store"] == "healthy"
    assert body["components"]["workers"] == "healthy"
    assert body["status"] in ("healthy", "degraded")
    assert body["status"] == ("healthy" if all(v == "healthy" for v in body["components"].values()) else "degraded")


def test_health_detail_needs_a_token(api):
    assert_error(api.http.get(f"{V1}/healthz", params={"ticker": "AAPL"}), 401, "UNAUTHORIZED")
