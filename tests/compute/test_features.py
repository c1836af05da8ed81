"""Feature matrices: labels by hand, session rules, no look-ahead, sha idempotence/sensitivity."""

import numpy as np
import pandas as pd
import pytest

from compute import features as F
from compute import indicators as ind
from compute.train import feature_columns
from compute.packs import get_pack, list_packs


def hourly_bars(days=60, seed=0, extended=False, start="2024-01-02"):
    """Random-walk hourly bars at 09:30..15:30 New York on business days (optionally with an
    08:30 pre-market and a 16:00 after-hours bar that the session filter must drop)."""
    rng = np.random.default_rng(seed)
    stamps = []
    hours = (["08:30"] if extended else []) + [f"{h:02d}:30" for h in range(9, 16)] \
        + (["16:00"] if extended else [])
    for day in pd.bdate_range(start, periods=days):
        for hm in hours:
            stamps.append(pd.Timestamp(f"{day.date()} {hm}", tz="America/New_York"))
    idx = pd.DatetimeIndex(stamps).tz_convert("UTC").rename("timestamp")
    return _ohlcv(idx, rng)


def daily_bars(days=400, seed=0, start="2022-01-03"):
    rng = np.random.default_rng(seed)
    idx = pd.DatetimeIndex([pd.Timestamp(f"{d.date()} 09:30", tz="America/New_York")
                            for d in pd.bdate_range(start, periods=days)]).tz_convert("UTC")
    return _ohlcv(idx.rename("timestamp"), rng)


def _ohlcv(idx, rng):
    n = len(idx)
    close = 100 * np.exp(rng.normal(0, 0.004, n).cumsum())
    open_ = np.r_[100.0, close[:-1]] * (1 + rng.normal(0, 0.001, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.003, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.003, n))
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": rng.uniform(1e5, 5e5, n)}, index=idx)


def iv_series(bars):
    return pd.Series(0.18 + 0.02 * np.sin(np.arange(len(bars)) / 5.0), index=bars.index)


def test_registry_resolves_user_names():
    assert F.resolve_feature("RSI").name == "RSI14"
    assert F.resolve_feature("RSI14") == F.resolve_feature("rsi")
    assert F.resolve_feature("EMA10").params == {"window": 10}
    assert F.resolve_feature("MACD").params == {"fast": 12, "slow": 26, "signal": 9}
    assert F.resolve_feature("BB").columns == ("f_BB20_2_pct_b", "f_BB20_2_width")
    assert F.resolve_feature("close").columns == ("f_close",)
    assert F.resolve_feature("ATR14").name == "ATR14"
    for bad in ("FOO", "RSI0", "MACD26_12", "EMA10_3", "", "RSI-1"):
        with pytest.raises(ValueError, match="feature"):
            F.resolve_feature(bad)


def test_every_pack_default_feature_resolves():
    for pack in list_packs():
        assert F.resolve_features(pack.default_features)


def test_swing_matrix_label_by_hand_and_tail_flagged():
    bars = daily_bars(300)
    m = F.build_matrix({"AAPL": bars}, "swingsigma", ["close", "RSI", "MACD", "EMA10"])
    close = bars["close"]
    fwd = close.shift(-5) / close - 1
    expect_label = np.where(fwd > 0.001, 1.0, np.where(fwd < -0.001, -1.0, 0.0))
    expect_label[fwd.isna().to_numpy()] = np.nan
    ref = pd.DataFrame({"fwd_ret": fwd.to_numpy(), "label": expect_label},
                       index=close.index).loc[m["timestamp"]]
    np.testing.assert_allclose(m["fwd_ret"], ref["fwd_ret"], equal_nan=True)
    np.testing.assert_array_equal(m["label"], ref["label"])
    assert m["label"].tail(5).isna().all() and m["label"].iloc[:-5].notna().all()
    assert set(m["label"].dropna().unique()) <= {-1.0, 0.0, 1.0}
    # warm-up dropped: first row is where MACD's signal line (bar 33) becomes valid
    assert m["timestamp"].iloc[0] == bars.index[33]
    assert not m[feature_columns(m)].isna().any().any()
    np.testing.assert_allclose(m["f_close"], m["close"])
    np.testing.assert_allclose(m["f_RSI14"], ind.rsi(close, 14).loc[m["timestamp"]])
    assert {"timestamp", "ticker", "open", "close", "hour", "fwd_ret", "label"} <= set(m.columns)
    assert (m["hour"] == 9).all()


def test_overnight_label_is_close_to_next_open():
    bars = daily_bars(120)
    m = F.build_matrix(bars, "overnightsigma", ["RET1", "GAP"], ticker="SPY")
    nxt = bars["open"].shift(-1) / bars["close"] - 1
    ref = nxt.loc[m["timestamp"]].to_numpy()
    np.testing.assert_allclose(m["fwd_ret"], ref, equal_nan=True)
    lab = m["label"].dropna()
    r = m.loc[lab.index, "fwd_ret"]
    assert ((lab == 1) == (r > 0.0005)).all() and ((lab == -1) == (r < -0.0005)).all()
    np.testing.assert_allclose(m["f_GAP"], (bars["open"] / bars["close"].shift(1) - 1)
                               .loc[m["timestamp"]])


def test_zerosigma_session_hours_band_and_session_end():
    bars = hourly_bars(40, extended=True)
    m = F.build_matrix({"SPY": bars}, "zerosigma", implied_vol={"SPY": iv_series(bars)})
    assert set(m["hour"].unique()) == set(range(9, 16))
    local = pd.DatetimeIndex(m["timestamp"]).tz_convert("America/New_York")
    assert ((local.hour * 60 + local.minute >= 9 * 60 + 30) & (local.hour < 16)).all()
    # 0DTE: a label never reaches into the next session, so each session's last bar is NaN
    assert m.loc[m["hour"] == 15, "label"].isna().all()
    assert m.loc[m["hour"] < 15, "label"].iloc[:-1].notna().all()
    # band: 0.3 x trailing std (20 bars, ddof=1) of 1-bar returns, computed on session bars
    session = bars[(bars.index.tz_convert("America/New_York").hour >= 9)
                   & (bars.index.tz_convert("America/New_York").hour < 16)]
    sd = session["close"].pct_change().rolling(20).std().loc[m["timestamp"]].to_numpy()
    r = m["fwd_ret"].to_numpy()
    ok = ~np.isnan(r)
    expect = np.where(r > 0.3 * sd, 1.0, np.where(r < -0.3 * sd, -1.0, 0.0))
    np.testing.assert_array_equal(m["label"].to_numpy()[ok], expect[ok])
    assert (m["label"] == 0).any() and (m["label"] == 1).any() and (m["label"] == -1).any()


def test_rviv_needs_implied_vol_and_uses_only_past_values():
    bars = hourly_bars(30)
    with pytest.raises(ValueError, match="implied_vol"):
        F.build_matrix(bars, "zerosigma", ["RVIV20"])
    # implied vol published at 16:00 each day: bars of the next day see it, same-day bars not
    days = pd.DatetimeIndex(sorted({t.tz_convert("America/New_York").date() for t in bars.index}))
    stamps = [pd.Timestamp(f"{d.date()} 16:00", tz="America/New_York") for d in days]
    iv = pd.Series(np.arange(len(days)) * 0.01 + 0.1, index=pd.DatetimeIndex(stamps))
    m = F.build_matrix(bars, "zerosigma", ["RVIV20", "VOL20"], implied_vol=iv)
    day_pos = np.searchsorted(days, m["session_date"].to_numpy())
    np.testing.assert_allclose(m["f_VOL20"] - m["f_RVIV20"], (day_pos - 1) * 0.01 + 0.1)


def test_hour_and_weekday_features_in_new_york():
    bars = hourly_bars(5)
    m = F.build_matrix(bars, "momentumsigma", ["hour", "weekday", "RET1"])
    local = pd.DatetimeIndex(m["timestamp"]).tz_convert("America/New_York")
    np.testing.assert_array_equal(m["f_hour"], local.hour)
    np.testing.assert_array_equal(m["f_weekday"], local.day_of_week)


def test_daily_bars_stamped_at_midnight_keep_their_date():
    bars = daily_bars(60)
    bars.index = bars.index.normalize()  # midnight UTC of the trading date
    m = F.build_matrix(bars, "swingsigma", ["weekday", "RET1"], start="2022-01-10")
    np.testing.assert_array_equal(m["f_weekday"], pd.DatetimeIndex(m["timestamp"]).day_of_week)
    assert m["session_date"].iloc[0] == pd.Timestamp("2022-01-10")


def test_start_end_are_inclusive_and_bars_after_end_are_not_used():
    bars = daily_bars(300)
    m = F.build_matrix(bars, "swingsigma", ["RSI", "SMA50"], start="2022-06-01", end="2022-09-30")
    assert m["session_date"].min() >= pd.Timestamp("2022-06-01")
    assert m["session_date"].max() == pd.Timestamp("2022-09-30")
    assert m["label"].tail(5).isna().all()  # horizon runs past `end`: flagged, not invented


def test_multi_ticker_rows_sorted_by_time_then_ticker():
    m = F.build_matrix({"MSFT": daily_bars(100, 1), "AAPL": daily_bars(100, 2)}, "swingsigma",
                       ["RSI", "ATR14"])
    assert list(m["ticker"].iloc[:2]) == ["AAPL", "MSFT"]
    assert m["timestamp"].is_monotonic_increasing
    solo = F.build_matrix({"MSFT": daily_bars(100, 1)}, "swingsigma", ["RSI", "ATR14"])
    pd.testing.assert_frame_equal(m[m["ticker"] == "MSFT"].reset_index(drop=True), solo)


@pytest.mark.parametrize("pack_id", ["zerosigma", "swingsigma", "longsigma", "momentumsigma",
                                     "overnightsigma"])
def test_no_look_ahead_appending_future_bars(pack_id):
    pack = get_pack(pack_id)
    bars = hourly_bars(120) if pack.cadence == "hourly" else daily_bars(500)
    iv = {"X": iv_series(bars)}
    full = F.build_matrix({"X": bars}, pack)if pack_id != "zerosigma" else \
        F.build_matrix({"X": bars}, pack, implied_vol=iv)
    cut = bars.index[int(len(bars) * 0.7)]
    past = F.build_matrix({"X": bars[bars.index <= cut]}, pack, implied_vol=iv)
    assert len(past) > 20
    common = full[full["timestamp"].isin(past["timestamp"])].reset_index(drop=True)
    cols = feature_columns(past)
    pd.testing.assert_frame_equal(common[cols], past[cols])
    # labels known in the truncated history agree; its tail is NaN rather than guessed
    known = past["label"].notna().to_numpy()
    np.testing.assert_array_equal(common["label"].to_numpy()[known], past["label"][known])
    assert past["label"].iloc[-1:].isna().all()


def test_build_is_deterministic():
    bars = daily_bars(200)
    a = F.build_matrix(bars, "swingsigma", ["RSI", "MACD", "KC", "ADX14", "OBV", "CMF20"])
    b = F.build_matrix(bars.copy(), "swingsigma", ["RSI", "MACD", "KC", "ADX14", "OBV", "CMF20"])
    pd.testing.assert_frame_equal(a, b)


def _desc(**over):
    args = dict(pack="swingsigma", tickers=["AAPL"], start="2023-01-01", end="2023-12-31",
                features=["close", "volume", "RSI", "MACD"], data_source="synthetic",
                data_version="synthetic:v1:seed=0")
    args.update(over)
    return F.canonical_matrix_description(args.pop("pack"), args.pop("tickers"),
                                          args.pop("start"), args.pop("end"),
                                          args.pop("features"), **args)


def test_matrix_sha_idempotent_and_canonical():
    a, b = _desc(), _desc()
    assert F.matrix_sha(a) == F.matrix_sha(b)
    assert len(F.matrix_sha(a)) == 64
    # same request spelled differently: default parameters, ticker order, date types
    assert F.matrix_sha(_desc(features=["close", "volume", "RSI14", "MACD12_26_9"])) == \
        F.matrix_sha(a)
    assert F.matrix_sha(_desc(tickers=["MSFT", "AAPL"])) == \
        F.matrix_sha(_desc(tickers=["AAPL", "MSFT"]))
    import datetime as dt
    assert F.matrix_sha(_desc(start=dt.date(2023, 1, 1))) == F.matrix_sha(a)
    text = F.canonical_json(a)
    assert " " not in text and text.startswith("{") and '"code_version"' in text
    import hashlib
    assert F.matrix_sha(a) == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("change", [
    dict(tickers=["MSFT"]), dict(tickers=["AAPL", "MSFT"]), dict(start="2023-01-02"),
    dict(end="2023-12-30"), dict(features=["close", "volume", "RSI15", "MACD"]),
    dict(features=["close", "volume", "MACD", "RSI"]), dict(features=["close", "RSI", "MACD"]),
    dict(data_version="synthetic:v1:seed=1"), dict(data_source="files:/data"),
    dict(pack="longsigma"), dict(pack="overnightsigma"), dict(warmup=500),
    dict(implied_vol=pd.Series([0.2], index=pd.DatetimeIndex(["2023-01-03"], tz="UTC"))),
])
def test_matrix_sha_changes_with_any_input(change):
    assert F.matrix_sha(_desc(**change)) != F.matrix_sha(_desc())


def test_sha_sees_implied_vol_values_and_code_version(monkeypatch):
    iv1 = pd.Series([0.2, 0.21], index=pd.DatetimeIndex(["2023-01-03", "2023-01-04"], tz="UTC"))
    iv2 = iv1.copy()
    iv2.iloc[1] = 0.22
    assert F.matrix_sha(_desc(implied_vol=iv1)) != F.matrix_sha(_desc(implied_vol=iv2))
    base = F.matrix_sha(_desc())
    monkeypatch.setattr(F, "source_digest", lambda modules: "0" * 16)
    assert F.matrix_sha(_desc()) != base


def test_description_lists_inputs():
    d = _desc()
    assert d["cadence"] == "daily" and d["tickers"] == ["AAPL"]
    assert d["data"] == {"source": "synthetic", "version": "synthetic:v1:seed=0"}
    assert d["label"]["kind"] == "forward_return_sign" and d["label"]["horizon_bars"] == 5
    assert d["features"][2] == {"name": "RSI14", "indicator": "RSI", "params": {"window": 14},
                                "columns": ["f_RSI14"]}


def test_bad_inputs_raise():
    bars = daily_bars(50)
    with pytest.raises(ValueError, match="pack"):
        F.build_matrix(bars, "nosuchpack")
    with pytest.raises(ValueError, match="tz-aware"):
        F.build_matrix(bars.tz_localize(None), "swingsigma", ["RSI"])
    with pytest.raises(ValueError, match="lack"):
        F.build_matrix(bars.drop(columns="volume"), "swingsigma", ["RSI"])
    with pytest.raises(ValueError, match="after"):
        F.build_matrix(bars, "swingsigma", ["RSI"], start="2023-01-01", end="2022-01-01")


def test_build_from_synthetic_provider():
    md = pytest.importorskip("compute.marketdata")
    provider = md.make_provider("synthetic")
    m, desc = F.build_matrix_from_provider(provider, "swingsigma", "AAPL", "2023-01-01",
                                           "2023-06-30")
    assert m["session_date"].min() <= pd.Timestamp("2023-01-05")  # warm-up history fetched
    assert m["ticker"].eq("AAPL").all() and len(m) > 100
    assert desc["data"]["version"] == provider.data_version
    _, desc2 = F.build_matrix_from_provider(provider, "swingsigma", "AAPL", "2023-01-01",
                                            "2023-06-30")
    assert F.matrix_sha(desc) == F.matrix_sha(desc2)
