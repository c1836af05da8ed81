"""Packs, templates, model ids and config validation against docs/spec/reference.md / docs/spec/design.md values."""

import dataclasses

import pytest

from compute import pack_config as PC
from compute import packs as P
from compute.features import resolve_features


def test_five_packs_with_reference_instruments_and_labels():
    assert [p.pack_id for p in P.list_packs()] == [
        "zerosigma", "swingsigma", "longsigma", "momentumsigma", "overnightsigma"]
    z, s, lo, m, o = (P.get_pack(i) for i in ("zerosigma", "swingsigma", "longsigma",
                                               "momentumsigma", "overnightsigma"))
    assert (z.instrument, z.cadence, z.default_ticker) == ("options", "hourly", "SPY")
    assert (z.session.open, z.session.close) == ("09:30", "16:00")
    assert z.label == P.LabelDef("next_bar_direction", 1, 0.3, "sd", 20, within_session=True)
    assert (s.instrument, s.cadence) == ("equity", "daily")
    assert (s.label.kind, s.label.horizon_bars, s.label.band) == ("forward_return_sign", 5, 0.001)
    assert (lo.label.kind, lo.label.horizon_bars, lo.label.band) == ("forward_return_sign", 63, 0)
    assert (m.cadence, m.label.kind) == ("hourly", "next_bar_direction")
    assert {"hour", "weekday", "MOMSCORE"} <= set(m.default_features)
    assert (o.label.kind, o.label.band) == ("close_to_open_sign", 0.0005)


def test_default_indicator_sets_follow_reference():
    z = {f.name for f in resolve_features(P.get_pack("zerosigma").default_features)}
    assert {"RSI14", "EMA10", "EMA20", "MACD12_26_9", "ATR14", "VOL20", "BB20_2", "OBV20",
            "CMF20", "VWAP20", "RVIV20", "hour", "weekday"} == z
    s = {f.name for f in resolve_features(P.get_pack("swingsigma").default_features)}
    assert {"RSI14", "EMA20", "EMA50", "MACD12_26_9", "ADX14", "ATR14", "KC20_2_10", "OBV20",
            "CMF20", "SMA50", "SMA200", "MOMSCORE20_14"} == s


@pytest.mark.parametrize("pack_id,profile,dd,sharpe,trades,calmar,hours", [
    ("swingsigma", "Conservative", 0.20, 1.2, 40, None, None),
    ("swingsigma", "Balanced", 0.25, 1.0, 30, None, None),
    ("swingsigma", "Aggressive", 0.30, 0.8, 25, None, None),
    ("zerosigma", "Conservative", 0.15, 1.0, 50, None, (13, 14, 15)),
    ("zerosigma", "Balanced", 0.20, 0.8, 40, None, (13, 14, 15)),
    ("zerosigma", "Aggressive", 0.25, 0.6, 30, None, (12, 13, 14, 15)),
    ("longsigma", "Conservative", 0.30, None, None, 0.8, None),
    ("longsigma", "Balanced", 0.35, None, None, 0.6, None),
    ("longsigma", "Aggressive", 0.40, None, None, 0.4, None),
])
def test_gates_match_design(pack_id, profile, dd, sharpe, trades, calmar, hours):
    gate = P.get_pack(pack_id).policy(profile).gate
    assert (gate.max_drawdown, gate.min_sharpe, gate.min_trades_per_year, gate.min_calmar,
            gate.allowed_hours) == (dd, sharpe, trades, calmar, hours)


def test_every_pack_has_three_policies_with_costs():
    for pack in P.list_packs():
        assert [p.risk_profile for p in pack.policies] == list(P.RISK_PROFILES)
        slips = [p.slippage_bps for p in pack.policies]
        assert slips == sorted(slips, reverse=True)  # Conservative assumes the worst fills
        assert all(p.fees_bps >= 0 for p in pack.policies)
    with pytest.raises(ValueError, match="Reckless"):
        P.get_pack("swingsigma").policy("Reckless")


def test_sweep_and_ranking_defaults():
    z = P.get_pack("zerosigma")
    assert z.sweep.thresholds == (0.50, 0.52, 0.54, 0.55, 0.60, 0.65)
    assert z.sweep.top_pct == (0.10, 0.15)
    assert z.sweep.allowed_hours == ((13, 14, 15),)
    assert z.ranking.name == "sortino_trades_dd_foldstd"
    assert P.get_pack("swingsigma").ranking.name == "sharpe_trades_dd"
    assert P.get_pack("longsigma").ranking.name == "calmar"


def test_packs_are_frozen_and_serialisable():
    import json

    pack = P.get_pack("swingsigma")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pack.cadence = "hourly"
    for p in P.list_packs():
        json.dumps(p.to_dict())
        for t in P.templates_for(p.pack_id):
            json.dumps(t.to_dict())


@pytest.mark.parametrize("ticker,pack,variant,expected", [
    ("AAPL", "swingsigma", None, "AAPL_equity_5d_daily"),
    ("TSLA", "zerosigma", None, "TSLA_options_0d_intraday"),
    ("SPY", "longsigma", None, "SPY_equity_63d_daily"),
    ("QQQ", "momentumsigma", "v2", "QQQ_equity_1h_hourly_v2"),
    ("BRK-B", "overnightsigma", None, "BRK-B_equity_overnight_daily"),
])
def test_model_id_naming_and_parse_round_trip(ticker, pack, variant, expected):
    mid = P.model_id(ticker, pack, variant)
    assert mid == expected
    parts = P.parse_model_id(mid)
    assert (parts["ticker"], parts["pack_id"], parts["variant"]) == (ticker, pack, variant)


def test_model_id_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="aapl"):
        P.model_id("aapl", "swingsigma")
    with pytest.raises(ValueError, match="Bad_Variant"):
        P.model_id("AAPL", "swingsigma", "Bad_Variant")
    with pytest.raises(ValueError, match="nopack"):
        P.model_id("AAPL", "nopack")
    with pytest.raises(ValueError, match="AAPL_equity_7d_daily"):
        P.parse_model_id("AAPL_equity_7d_daily")  # well formed, but no pack has 7d
    with pytest.raises(ValueError, match="garbage"):
        P.parse_model_id("garbage")


def test_templates():
    assert [t.template_id for t in P.templates_for("zerosigma")][0] == "zerosigma_default"
    for pack in P.list_packs():
        t = P.get_template(f"{pack.pack_id}_default")
        assert t.pack_id == pack.pack_id and t.ticker == pack.default_ticker
        assert t.features == pack.default_features
    assert P.get_template("swingsigma_default").ticker == "AAPL"
    with pytest.raises(ValueError, match="nope_default"):
        P.get_template("nope_default")
    with pytest.raises(ValueError, match="nope"):
        P.templates_for("nope")


def test_validate_template_config_accepts_spec_example():
    config = {"ticker": "TSLA", "indicators": ["RSI", "MACD", "BB"]}
    assert PC.validate_template_config("zerosigma_default", config) == []
    merged = PC.merged_config("zerosigma_default", {**config, "risk_profile": "Conservative"})
    assert merged["model_id"] == "TSLA_options_0d_intraday"
    assert merged["indicators"] == ["RSI", "MACD", "BB"] and merged["pack_id"] == "zerosigma"
    assert merged["risk_profile"] == "Conservative"
    assert PC.validate_template_config("swingsigma_default", None) == []


def test_validate_template_config_names_each_bad_field():
    errors = PC.validate_template_config("zerosigma_default", {
        "ticker": "tsla!", "indicators": ["RSI", "FOO"], "risk_profile": "YOLO",
        "allowed_hours": [13, 17], "thresholds": {"entry": 1.5, "exit": 0.3},
        "trainer": {"learning_rate": -1, "epochs": 10, "colour": "red"}, "extra": 1})
    fields = {e["field"] for e in errors}
    assert fields == {"config.ticker", "config.indicators[1]", "config.risk_profile",
                      "config.allowed_hours[1]", "config.thresholds.entry",
                      "config.trainer.learning_rate", "config.trainer.colour", "config.extra"}
    assert all(e["message"] for e in errors)
    assert PC.validate_template_config("nope", {})[0]["field"] == "template_id"
    with pytest.raises(ValueError, match="config.ticker"):
        PC.merged_config("swingsigma_default", {"ticker": ""})
