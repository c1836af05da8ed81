"""The catalog on SQLite and PostgreSQL: migrations, constraints, UTC times, job state races."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from cluster.catalog import Base, Catalog, Job, User, upgrade_schema
from cluster.catalog.db import alembic_config
from cluster.jobs import _finish, create_job, request_cancel
from serve_app.security import verify_password
from serve_app.users import create_user


def test_migrations_match_the_models(catalog):
    """A model change without a migration would silently lose columns on upgrade."""
    with catalog.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_from_the_first_revision_keeps_data(catalog, tmp_path):
    # A fresh catalog at the oldest revision, with data, then upgraded to head.
    if catalog.url.startswith("sqlite"):
        old = Catalog(f"sqlite:///{tmp_path / 'old.db'}")
    else:
        old = catalog
        with catalog.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        from alembic import command

        command.downgrade(alembic_config(catalog), "base")
    script = ScriptDirectory.from_config(alembic_config(old))
    first = list(script.walk_revisions())[-1].revision
    upgrade_schema(old, first)
    # The first revision's columns only (the ORM model may have grown since): a plain INSERT.
    import sqlalchemy as sa

    from cluster.catalog.models import utcnow
    from serve_app.security import hash_password

    users = sa.table("users", *(sa.column(c) for c in ("username", "password_hash", "role", "tier", "is_active", "created_at")))
    with old.engine.begin() as conn:
        conn.execute(users.insert().values(username="keeper", password_hash=hash_password("keeper-password"), role="user",
                                           tier="basic", is_active=True, created_at=utcnow()))
    upgrade_schema(old, "heads")
    with old.session() as s:
        user = s.scalar(select(User).where(User.username == "keeper"))
        assert user is not None and user.tier == "basic"
        assert verify_password("keeper-password", user.password_hash)
    assert {"users", "jobs"} <= set(inspect(old.engine).get_table_names())


def test_usernames_are_unique(catalog):
    create_user(catalog, "dup", "password-one")
    with pytest.raises(ValueError, match="already exists"):
        create_user(catalog, "dup", "password-two")
    with pytest.raises(IntegrityError):
        with catalog.session() as s:
            s.add(User(username="dup", password_hash="x"))


def test_times_come_back_timezone_aware_utc(catalog):
    user = create_user(catalog, "tz_user", "password-tz")
    with catalog.session() as s:
        loaded = s.get(User, user.id)
        assert loaded.created_at.tzinfo is not None
        assert loaded.created_at.utcoffset() == dt.timedelta(0)
        assert abs((dt.datetime.now(dt.timezone.utc) - loaded.created_at).total_seconds()) < 60


def test_cancel_wins_over_a_late_completion(catalog):
    user = create_user(catalog, "racer", "password-race")
    job = create_job(catalog, user_id=user.id, kind="system.probe", params={})
    with catalog.session() as s:
        s.get(Job, job.id).status = "running"
    assert request_cancel(catalog, job.id) == "cancelled"
    # The worker finishing afterwards must not overwrite the user's cancel.
    assert _finish(catalog, job.id, "completed", result={"x": 1}) is False
    with catalog.session() as s:
        final = s.get(Job, job.id)
        assert final.status == "cancelled" and final.result is None


def test_a_replaced_run_writes_nothing(catalog):
    # The job manager gave run 1 up for dead and started run 2 (attempts counted up); run 1's
    # process lives a moment longer (its owner died, Ray tears it down): its progress and its
    # failure must not land on run 2 (seen once in CI: a probe requeued after a manager restart
    # ended "failed" at the old run's progress).
    from cluster.jobs import JobContext

    user = create_user(catalog, "twice", "password-twice")
    job = create_job(catalog, user_id=user.id, kind="system.probe", params={})
    with catalog.session() as s:
        row = s.get(Job, job.id)
        row.status, row.attempts, row.progress = "running", 2, 0.1
    old = JobContext(job_id=job.id, user_id=user.id, settings=None, catalog=catalog, attempt=1)
    new = JobContext(job_id=job.id, user_id=user.id, settings=None, catalog=catalog, attempt=2)
    old.progress(0.9, "the old run", force=True)
    assert _finish(catalog, job.id, "failed", 1, error={"code": "CALCULATION_ERROR", "message": "torn down"}) is False
    with catalog.session() as s:
        s.get(Job, job.id).status = "queued"  # requeued, not started again yet: still not the old run's
    assert _finish(catalog, job.id, "failed", 1, error={"code": "CALCULATION_ERROR", "message": "torn down"}) is False
    with catalog.session() as s:
        s.get(Job, job.id).status = "running"
    with catalog.session() as s:
        row = s.get(Job, job.id)
        assert (row.status, row.progress, row.error) == ("running", 0.1, None)
    new.progress(0.5, "the new run", force=True)
    assert _finish(catalog, job.id, "completed", 2, result={"ok": True}, progress=1.0) is True
    with catalog.session() as s:
        row = s.get(Job, job.id)
        assert (row.status, row.result, row.message) == ("completed", {"ok": True}, "the new run")


def test_a_catalog_hiccup_in_progress_does_not_fail_the_job(catalog, monkeypatch, caplog):
    # Progress and the cancel check are advisory: a failed write (here the very psycopg error seen
    # in CI on a reused worker's pooled connection) is logged, the pool reset, and the job goes on.
    import cluster.jobs as jobs
    from sqlalchemy.exc import ProgrammingError

    user = create_user(catalog, "hiccup", "password-hiccup")
    job = create_job(catalog, user_id=user.id, kind="system.probe", params={})
    with catalog.session() as s:
        row = s.get(Job, job.id)
        row.status, row.attempts = "running", 1
    ctx = jobs.JobContext(job_id=job.id, user_id=user.id, settings=None, catalog=catalog, attempt=1)

    def broken(*args, **kwargs):
        raise ProgrammingError("UPDATE jobs ...", {}, Exception("can't change 'autocommit' now"))

    monkeypatch.setattr(jobs, "write_progress", broken)
    monkeypatch.setattr(jobs, "is_cancelled", broken)
    with caplog.at_level("WARNING", logger="sigma.jobs"):
        ctx.progress(0.5, "half", force=True)
        assert ctx.cancelled() is False
    assert "progress not recorded" in caplog.text and "cancel check not recorded" in caplog.text
    monkeypatch.undo()
    ctx.progress(0.7, "on", force=True)  # the pool was reset: writes work again
    assert _finish(catalog, job.id, "completed", 1, result={}) is True
    with catalog.session() as s:
        assert (s.get(Job, job.id).status, s.get(Job, job.id).message) == ("completed", "on")


def test_a_failed_unit_of_work_writes_nothing(catalog):
    with pytest.raises(RuntimeError):
        with catalog.session() as s:
            s.add(User(username="ghost", password_hash="x"))
            s.flush()
            raise RuntimeError("boom")
    with catalog.session() as s:
        assert s.scalar(select(User).where(User.username == "ghost")) is None


def test_unknown_job_kind_is_refused(catalog):
    user = create_user(catalog, "kinder", "password-kind")
    with pytest.raises(ValueError, match="unknown job kind"):
        create_job(catalog, user_id=user.id, kind="no.such.kind", params={})
