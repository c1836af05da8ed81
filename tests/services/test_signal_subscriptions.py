"""Live signals on a schedule (services/lab/subscriptions.py) on both catalog back ends, no Ray:
the scheduler is driven at given instants (before a close, at a close, a holiday, a half day,
after downtime) and exactly the expected signals exist, sized from the portfolio when there
is one; a real local HTTP receiver gets signal.generated, signed. Bar closes are checked
against exchange_calendars. Your own model (a scikit-learn tree) is what is subscribed, and its
walk-forward fold scores equal scikit-learn's own fit on each fold."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from cluster.artifacts import ArtifactStore
from cluster.catalog import Portfolio, Signal, SignalSubscription, Training
from cluster.config import Settings
from compute.marketdata import calendar, make_provider
from services.lab import matrices, models, signals, subscriptions, training
from serve_app.users import create_user

NY = ZoneInfo("America/New_York")
SECRET = "subscription-secret-1"
TREE = {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"random_state": 0}}


def ny(*args) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime(*args, tzinfo=NY)).tz_convert("UTC")


class Receiver:
    """A real HTTP server on loopback recording verified webhook deliveries."""

    def __init__(self):
        from cluster.webhooks import verify_signature

        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = verify_signature(SECRET, body, self.headers.get("X-Sigma-Timestamp"),
                                      self.headers.get("X-Sigma-Signature"))
                outer.received.append({"verified": ok, "event": self.headers.get("X-Sigma-Event"),
                                       "body": json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def _deliver(catalog) -> None:
    import httpx

    from cluster.webhooks import dispatch_due

    async def run():
        async with httpx.AsyncClient() as client:
            while await dispatch_due(catalog, client, allow_private=True):
                pass

    asyncio.run(run())


def test_bar_closes_follow_the_nyse_calendar():
    import exchange_calendars as xcals

    nyse = xcals.get_calendar("XNYS")
    got = calendar.bar_closes("daily", ny(2024, 2, 29, 16, 0), ny(2024, 3, 28, 17, 0))
    expected = [nyse.session_close(d) for d in nyse.sessions_in_range("2024-03-01", "2024-03-28")]
    assert list(got) == expected and len(got) == 20
    assert len(calendar.bar_closes("daily", ny(2024, 3, 28, 17, 0), ny(2024, 3, 29, 23, 0))) == 0  # Good Friday
    assert len(calendar.bar_closes("daily", ny(2024, 4, 1, 9, 0), ny(2024, 4, 1, 15, 59))) == 0  # not closed yet
    assert list(calendar.bar_closes("daily", ny(2024, 7, 3, 9, 0), ny(2024, 7, 3, 13, 0))) == [ny(2024, 7, 3, 13, 0)]
    hourly = calendar.bar_closes("hourly", ny(2024, 4, 1, 9, 0), ny(2024, 4, 1, 23, 0))
    assert [t.tz_convert(NY).strftime("%H:%M") for t in hourly] == ["10:30", "11:30", "12:30", "13:30", "14:30",
                                                                     "15:30", "16:00"]
    half = calendar.bar_closes("hourly", ny(2024, 7, 3, 9, 0), ny(2024, 7, 3, 23, 0))
    assert [t.tz_convert(NY).strftime("%H:%M") for t in half] == ["10:30", "11:30", "12:30", "13:00"]
    assert calendar.bar_close(ny(2024, 7, 3, 12, 30), "hourly") == ny(2024, 7, 3, 13, 0)
    assert calendar.bar_close(ny(2024, 7, 3, 9, 30), "daily") == nyse.session_close("2024-07-03")


@pytest.fixture
def lab(catalog, tmp_path):
    store = ArtifactStore(f"file://{tmp_path / 'artifacts'}")
    settings = Settings(home=tmp_path, database_url="sqlite://", allow_private_webhooks=True)
    provider = make_provider("synthetic", seed=7)
    return catalog, store, settings, provider


def _trained(catalog, store, provider, user_id, ticker, config=TREE, template="longsigma_default"):
    # longsigma's label (sign of the 63-day return, no band) has two classes: a fully grown tree
    # is certain (score 0 or 1), so every scored bar makes a call
    mid = models.create_model(catalog, user_id, template, config={"ticker": ticker}).model_id
    m, _ = matrices.build_matrix(catalog, store, provider, user_id, mid, "2021-01-04", "2023-12-29")
    row, _ = training.create_training(catalog, user_id, mid, m["matrix_sha"], None, config)
    training.run_training(catalog, store, row.id)
    return mid, m["matrix_sha"]


def _signals(catalog, user_id) -> list[Signal]:
    with catalog.session() as s:
        return list(s.scalars(select(Signal).where(Signal.user_id == user_id).order_by(Signal.bar_time)))


def test_scheduled_signals_at_bar_closes_only_once_sized_and_announced(lab, monkeypatch):
    import exchange_calendars as xcals

    from cluster import webhooks

    # deliveries go out from this process (below), not from a Ray dispatcher another test started
    monkeypatch.setattr(webhooks, "wake_dispatcher", lambda *args, **kwargs: False)

    catalog, store, settings, provider = lab
    nyse = xcals.get_calendar("XNYS")
    ann = create_user(catalog, "sub_ann", "pw-pw-pw-pw-12").id
    ben = create_user(catalog, "sub_ben", "pw-pw-pw-pw-12").id
    mid_a, _ = _trained(catalog, store, provider, ann, "MSFT")
    mid_b, _ = _trained(catalog, store, provider, ben, "AAPL")
    with catalog.session() as s:  # ben has a portfolio: 250,000 of cash
        s.add(Portfolio(user_id=ben, name="main", is_default=True, cash=250_000.0))
    receiver = Receiver()
    try:
        webhooks.register(catalog, settings, ann, receiver.url, ["signal.generated"], SECRET)

        def tick(when: pd.Timestamp) -> list[dict]:
            provider.clock = lambda: when.timestamp()  # the market as it was then
            return subscriptions.run_due(catalog, store, provider, now=when.to_pydatetime())

        start = ny(2024, 2, 29, 12, 0)
        sub_a = subscriptions.create_subscription(catalog, ann, mid_a, now=start.to_pydatetime())
        sub_b = subscriptions.create_subscription(catalog, ben, mid_b, now=start.to_pydatetime())
        with pytest.raises(subscriptions.AlreadySubscribed):
            subscriptions.create_subscription(catalog, ann, mid_a)
        with pytest.raises(LookupError):  # another user's model
            subscriptions.create_subscription(catalog, ben, mid_a)
        with pytest.raises(LookupError):  # another user's subscription
            subscriptions.get_subscription(catalog, ben, sub_a.id)
        with pytest.raises(LookupError):
            subscriptions.delete_subscription(catalog, ben, sub_a.id)
        assert subscriptions.subscription_view(sub_a)["next_bar_close"] == ny(2024, 2, 29, 16, 0).isoformat()

        assert tick(ny(2024, 2, 29, 15, 59)) == [] and _signals(catalog, ann) == []  # before the close
        first = tick(ny(2024, 2, 29, 16, 0))  # at the close
        assert sorted(r["status"] for r in first) == ["generated", "generated"]
        assert tick(ny(2024, 2, 29, 16, 30)) == []  # the same close again: nothing
        # after downtime: one run, for the newest close, the 19 earlier ones counted as skipped
        [catch_up_a, catch_up_b] = tick(ny(2024, 3, 28, 17, 0))
        assert catch_up_a["skipped_closes"] == len(nyse.sessions_in_range("2024-03-01", "2024-03-27")) == 19
        assert tick(ny(2024, 3, 29, 17, 0)) == []  # Good Friday: no session, no bar close
        assert tick(ny(2024, 4, 1, 12, 0)) == []  # Monday, before the close
        assert len(tick(ny(2024, 4, 1, 16, 1))) == 2
        subscriptions.delete_subscription(catalog, ben, sub_b.id)
        assert len(tick(ny(2024, 7, 3, 13, 0))) == 1  # a half day closes at 13:00; ben unsubscribed

        # exactly the expected bars, each scored once, none before its close
        days = ["2024-02-29", "2024-03-28", "2024-04-01", "2024-07-03"]
        got = _signals(catalog, ann)
        assert [pd.Timestamp(r.bar_time) for r in got] == [nyse.session_open(d) for d in days]
        assert [pd.Timestamp(r.bar_time) for r in _signals(catalog, ben)] == [nyse.session_open(d) for d in days[:3]]
        # each run settled the signals whose time stop had passed by then (on 1-minute bars)
        assert [r.status for r in got] == ["filled", "filled", "filled", "active"]
        assert all(r.exit_reason in ("stop", "target", "time") for r in got[:3])
        for row in got:
            assert row.details["capital"] == signals.CAPITAL and row.details["capital_source"] == "default"
            used = row.details["atr_used"]
            assert row.quantity == min(math.floor(1000.0 / (1.2 * used)), math.floor(100_000.0 / row.price))
        with catalog.session() as s:
            pf_id = s.scalar(select(Portfolio.id).where(Portfolio.user_id == ben))
        for row in _signals(catalog, ben):  # sized from the portfolio's value
            assert row.details["capital"] == 250_000.0 and row.details["capital_source"] == f"portfolio:{pf_id}"
            assert row.quantity == min(math.floor(2500.0 / (1.2 * row.details["atr_used"])),
                                       math.floor(250_000.0 / row.price))
        # the signals are the model's own calls: the stored tree's score on the recorded features
        with catalog.session() as s:
            tr = s.get(Training, got[0].training_id)
        weights = training.load_weights(store, tr)
        for row in got:
            features = pd.DataFrame([row.details["features"]])[list(weights.feature_names)]
            assert weights.score(features)[0] == pytest.approx(row.score, abs=1e-12)
        view = subscriptions.subscription_view(subscriptions.get_subscription(catalog, ann, sub_a.id))
        assert view["runs"] == 4 and view["signals_generated"] == 4 and view["last_status"] == "generated"
        assert view["last_signal_id"] == got[-1].id and view["last_bar_close"] == ny(2024, 7, 3, 13, 0).isoformat()

        # every new signal announced once to the real receiver, signed
        _deliver(catalog)
        deadline = time.monotonic() + 10
        while len(receiver.received) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(r["verified"] and r["event"] == "signal.generated" for r in receiver.received)
        assert sorted(r["body"]["data"]["signal_id"] for r in receiver.received) == sorted(r.id for r in got)
    finally:
        receiver.close()

    # a lagging feed: at 16:00:30 the market data has no bar of the 16:00 close yet. Nothing is
    # scored (the 3 July bar is not signalled again, nor is any older bar), and the next tick
    # tries the close again
    lagging = ny(2024, 7, 5, 15, 59)
    provider.clock = lambda: lagging.timestamp()
    [waiting] = subscriptions.run_due(catalog, store, provider, now=ny(2024, 7, 5, 16, 0, 30).to_pydatetime())
    assert waiting["status"] == "waiting" and len(_signals(catalog, ann)) == 4
    assert tick(ny(2024, 7, 5, 16, 5))[0]["status"] == "generated"
    assert pd.Timestamp(_signals(catalog, ann)[-1].bar_time) == nyse.session_open("2024-07-05")

    # a model whose estimator has left the allow-list: the run fails and says why; no signal
    tick_at = ny(2024, 7, 8, 16, 5)
    provider.clock = lambda: tick_at.timestamp()
    [failed] = subscriptions.run_due(catalog, store, provider, now=tick_at.to_pydatetime(),
                                     allowed_modules=["sklearn.linear_model"])
    assert failed["status"] == "failed" and len(_signals(catalog, ann)) == 5
    with catalog.session() as s:
        assert "allowed model modules" in s.get(SignalSubscription, sub_a.id).last_result["error"]


def test_subscribing_needs_a_trained_model_and_your_own_portfolio(lab):
    from services.lab.common import LabInputError

    catalog, store, settings, provider = lab
    ann = create_user(catalog, "sub_cy", "pw-pw-pw-pw-12").id
    ben = create_user(catalog, "sub_di", "pw-pw-pw-pw-12").id
    mid = models.create_model(catalog, ann, "swingsigma_default", config={"ticker": "MSFT"}).model_id
    with pytest.raises(LabInputError) as err:
        subscriptions.create_subscription(catalog, ann, mid)
    assert err.value.field == "model_id"
    with pytest.raises(LookupError):
        subscriptions.create_subscription(catalog, ann, "NOPE_equity_5d_daily")
    with catalog.session() as s:
        s.add(Portfolio(user_id=ben, name="other", is_default=True, cash=1.0))
        s.flush()
        other = s.scalar(select(Portfolio.id).where(Portfolio.user_id == ben))
    mid2, _ = _trained(catalog, store, provider, ann, "AAPL",
                       {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": 0.1}})
    with pytest.raises(LabInputError) as err:
        subscriptions.create_subscription(catalog, ann, mid2, portfolio_id=other)
    assert err.value.field == "portfolio_id"
    with catalog.session() as s:
        assert s.scalars(select(SignalSubscription)).all() == []  # nothing written


def test_walk_forward_refits_your_own_model_per_fold(lab, monkeypatch):
    """model_inputs (behind backtests and sweeps) with an estimator training: each fold's
    out-of-sample scores equal scikit-learn's own fit on that fold's training rows."""
    from sklearn.linear_model import LogisticRegression

    from services.lab.inputs import model_inputs

    catalog, store, settings, provider = lab
    ann = create_user(catalog, "sub_ed", "pw-pw-pw-pw-12").id
    config = {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": 0.3}}
    mid, sha = _trained(catalog, store, provider, ann, "MSFT", config, template="swingsigma_default")
    inputs = model_inputs(catalog, store, ann, mid, sha, n_splits=3)
    frame, cols = inputs.matrix, inputs.feature_names
    for fold, test_scores in zip(inputs.folds, inputs.extras["test_scores"]):
        rows = frame.iloc[fold.train]
        rows = rows[rows["label"].notna()].sort_values("timestamp", kind="mergesort")
        X, y = rows[cols].to_numpy(np.float64), rows["label"].to_numpy()
        n_fit = len(y) - int(np.ceil(len(y) * 0.2))
        mean, scale = X[:n_fit].mean(axis=0), X[:n_fit].std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        ref = LogisticRegression(C=0.3).fit((X[:n_fit] - mean) / scale, y[:n_fit])
        test = frame.iloc[fold.test][cols].to_numpy(np.float64)
        proba = ref.predict_proba((test - mean) / scale)
        expected = proba[:, -1] if proba.shape[1] == 2 else (1 + proba[:, -1] - proba[:, 0]) / 2
        np.testing.assert_allclose(test_scores, expected, rtol=0, atol=1e-12)
    assert np.isfinite(inputs.scores).all()

    # weights written by other library versions are refused (400 on model_id), never unpickled
    from compute import estimators
    from services.lab.common import LabInputError

    with catalog.session() as s:
        tr = s.scalar(select(Training).where(Training.status == "completed"))
    real = estimators.library_versions
    monkeypatch.setattr(estimators, "library_versions", lambda name: {**real(name), "sklearn": "99.0"})
    for attempt in (lambda: training.load_weights(store, tr),
                    lambda: signals.generate_signal(catalog, store, provider, ann, mid, "2024-03-01")):
        with pytest.raises(LabInputError) as err:
            attempt()
        assert err.value.field == "model_id" and "(running 99.0)" in err.value.reason and "retrain" in err.value.reason
