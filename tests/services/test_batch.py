"""The daily batch on Ray: per-portfolio tasks, failure isolation, transient retries, stored results."""

from __future__ import annotations

import datetime as dt
import secrets
from zoneinfo import ZoneInfo

from sqlalchemy import select

NY = ZoneInfo("America/New_York")


def test_schedule_runs_after_the_close_on_trading_days():
    from services.risk.batch import due_session, next_scheduled_run

    def ny(*args):
        return dt.datetime(*args, tzinfo=NY)

    # Friday before the close -> that Friday 16:30; after it -> Monday 16:30
    assert next_scheduled_run(ny(2025, 6, 13, 12, 0)) == (dt.date(2025, 6, 13), ny(2025, 6, 13, 16, 30).astimezone(dt.timezone.utc))
    assert next_scheduled_run(ny(2025, 6, 13, 16, 31))[0] == dt.date(2025, 6, 16)
    # Christmas and the weekend are skipped; Christmas Eve (half day) still runs at 16:30
    assert next_scheduled_run(ny(2025, 12, 24, 10, 0))[0] == dt.date(2025, 12, 24)
    assert next_scheduled_run(ny(2025, 12, 24, 17, 0))[0] == dt.date(2025, 12, 26)
    assert due_session(ny(2025, 12, 24, 17, 0)) == dt.date(2025, 12, 24)
    assert due_session(ny(2025, 12, 24, 16, 0)) is None
    assert due_session(ny(2025, 12, 25, 18, 0)) is None


def _user(catalog, name):
    from serve_app.users import create_user

    from cluster.catalog import User

    create_user(catalog, name, "pw-" + secrets.token_hex(8), role="user", tier="pro", update=True)
    with catalog.session() as s:
        return s.scalar(select(User.id).where(User.username == name))


def test_batch_isolates_failures_and_retries_transient_errors(ray_session, catalog, tmp_path):
    from services.risk.batch import process_portfolio, run_daily_batch
    from cluster.catalog import BatchResult, BatchRun, Portfolio, Position, Snapshot
    from cluster.config import Settings
    from services.portfolio.service import add_position, ensure_default_portfolio
    from services.risk.service import portfolio_factors, stored_result
    from compute.marketdata.synthetic import SyntheticProvider

    settings = Settings(home=tmp_path, database_url=catalog.url)
    good_uid, flaky_uid, broken_uid, empty_uid, partial_uid = (_user(catalog, n) for n in ("b_good", "b_flaky", "b_broken", "b_empty",
                                                                                          "b_partial"))
    for uid, book in ((good_uid, {"AAPL": 100, "XOM": -50}), (flaky_uid, {"MSFT": 40})):
        for ticker, qty in book.items():
            add_position(catalog, uid, {"ticker": ticker, "quantity": qty, "price": 100.0})
    add_position(catalog, partial_uid, {"ticker": "JPM", "quantity": 10, "price": 100.0})
    broken_pid = ensure_default_portfolio(catalog, broken_uid).id
    partial_pid = ensure_default_portfolio(catalog, partial_uid).id
    with catalog.session() as s:  # holdings whose market data cannot be read (bypasses input checks)
        for pid, uid in ((broken_pid, broken_uid), (partial_pid, partial_uid)):
            s.add(Position(portfolio_id=pid, user_id=uid, symbol="BAD$", underlying="BAD$", type="LONG",
                           quantity=5, entry_price=1.0, multiplier=1))
    empty_pid = ensure_default_portfolio(catalog, empty_uid).id
    good_pid = ensure_default_portfolio(catalog, good_uid).id
    flaky_pid = ensure_default_portfolio(catalog, flaky_uid).id
    marker = tmp_path / "fail_once"
    marker.write_text("x")
    marker_path = str(marker)

    class FlakyProvider(SyntheticProvider):
        """Synthetic data whose first MSFT history request (in any process) drops the connection."""

        def daily_bars(self, ticker, start, end):
            import os

            if ticker == "MSFT" and (dt.date.fromisoformat(str(end)[:10]) - dt.date.fromisoformat(str(start)[:10])).days > 100:
                try:
                    os.remove(marker_path)
                except FileNotFoundError:
                    pass
                else:
                    raise ConnectionError("connection reset by market data vendor")
            return super().daily_bars(ticker, start, end)

    seed = settings.market_data_seed
    summary = run_daily_batch(settings, trigger="manual", portfolio_ids=[good_pid, flaky_pid, broken_pid, empty_pid, partial_pid],
                              provider_factory=lambda _s: FlakyProvider(seed=seed))
    assert summary["status"] == "partial" and summary["portfolios"] == 5
    assert summary["completed"] == 4 and set(summary["failures"]) == {broken_pid}
    assert "BAD$" in summary["failures"][broken_pid]["prices"]
    assert not marker.exists()  # the transient error really happened

    with catalog.session() as s:
        run = s.get(BatchRun, summary["run_id"])
        assert run.status == "partial" and run.finished_at is not None
        rows = s.scalars(select(BatchResult).where(BatchResult.run_id == run.id)).all()
        snapshots = {r.portfolio_id: r for r in s.scalars(select(Snapshot).where(Snapshot.batch_run_id == run.id))}
    steps = {(r.portfolio_id, r.step): r for r in rows}
    assert len(rows) == 5 * 7
    good_steps = [steps[(good_pid, st)] for st in ("prices", "values", "greeks", "factors", "scenarios", "risk", "snapshot")]
    assert all(r.status == "completed" for r in good_steps)
    recorded_ms = [r.duration_ms for r in good_steps]  # each step's timing is recorded
    assert all(ms is not None and ms >= 0 for ms in recorded_ms)
    assert steps[(broken_pid, "prices")].status == "failed" and steps[(broken_pid, "prices")].attempts == 1
    assert {steps[(broken_pid, st)].status for st in ("values", "factors", "scenarios", "snapshot")} == {"skipped"}
    retried = [r for (pid, _), r in steps.items() if pid == flaky_pid and r.attempts == 2]
    assert len(retried) == 1 and retried[0].status == "completed"
    assert steps[(empty_pid, "factors")].status == "skipped" and steps[(empty_pid, "snapshot")].status == "completed"
    assert set(snapshots) == {good_pid, flaky_pid, empty_pid, partial_pid}
    # a book with one holding it cannot price: skipped and named in the run log, the rest goes on
    partial_prices = steps[(partial_pid, "prices")]
    assert partial_prices.status == "completed" and "BAD$" in partial_prices.error
    assert all(steps[(partial_pid, st)].status == "completed" for st in ("values", "greeks", "factors", "risk", "snapshot"))
    assert snapshots[partial_pid].data["position_count"]["total"] == 1
    good_snap = snapshots[good_pid].data
    assert good_snap["position_count"]["total"] == 2 and good_snap["date"] == summary["as_of"]
    assert good_snap["exposure"]["notional"]["short"] < 0 < good_snap["exposure"]["notional"]["long"]

    # stored results are served with their age while the holdings are unchanged
    provider = SyntheticProvider(seed=seed)
    stored = stored_result(catalog, good_pid, "factors")
    assert stored is not None and stored[1]["source"] == "batch" and stored[1]["age_seconds"] >= 0
    report, meta = portfolio_factors(catalog, provider, good_uid)
    assert meta["source"] == "batch" and meta["as_of"] == summary["as_of"] and meta["batch_run_id"] == run.id
    assert [f["factor_name"] for f in report["portfolio"]][0] == "Market Beta"
    # too old: computed live
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=30)
    assert stored_result(catalog, good_pid, "factors", now=later) is None
    # changed holdings: the stored figures are stale, computed live
    add_position(catalog, good_uid, {"ticker": "NVDA", "quantity": 10, "price": 100.0})
    assert stored_result(catalog, good_pid, "factors") is None
    report, meta = portfolio_factors(catalog, provider, good_uid)
    assert meta["source"] == "live" and len(report["positions"]) == 3

    # a portfolio deleted between listing and processing fails alone
    with catalog.session() as s:
        s.delete(s.get(Portfolio, empty_pid))
    gone = process_portfolio(settings, run.id, empty_pid, dt.date.fromisoformat(summary["as_of"]))
    assert gone["status"] == "failed"
