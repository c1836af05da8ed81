"""The deterministic intent parser on a table of phrasings (pure, fast): the expected intent and
the parameters a reader of the sentence would write down, including the ones it must refuse or
ask about."""

from __future__ import annotations

import datetime as dt

import pytest

from services.ai import intents

KNOWN = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "TSLA", "JPM", "XOM", "SPY", "QQQ", "META", "AMD", "C", "F", "GE", "V")
BOOK = ("AAPL", "MSFT", "NVDA", "SPY")
TAGS = ("core", "hedges", "momentum")
TODAY = dt.date(2026, 12, 3)  # a Thursday

# (query, intent, expected parameters (a subset of the answer's))
CASES = [
    # analyse risk
    ("Show me my biggest risks today", "analyze_risk", {"focus": "immediate_risks", "timeframe": "today"}),
    ("What are the main risks in my portfolio?", "analyze_risk", {"focus": "immediate_risks"}),
    ("what's my VaR", "analyze_risk", {"focus": "var"}),
    ("compute value at risk for the book", "analyze_risk", {"focus": "var"}),
    ("analyse my greeks", "analyze_risk", {"focus": "greeks"}),
    ("How risky is my portfolio this week?", "analyze_risk", {"timeframe": "this_week"}),
    ("run a stress scenario on my book", "analyze_risk", {"focus": "stress"}),
    ("what could go wrong tomorrow", "analyze_risk", {"timeframe": "tomorrow"}),
    # exposure
    ("show my exposure by sector", "show_exposure", {"group_by": "sector", "measure": "notional"}),
    ("How much tech exposure do I have?", "show_exposure", {"sector": "Technology"}),
    ("what is my exposure to banks", "show_exposure", {"sector": "Financials"}),
    ("show exposure for tag core", "show_exposure", {"group_by": "tag", "tag": "core"}),
    ("exposure of my #momentum positions", "show_exposure", {"tag": "momentum"}),
    ("delta exposure by sector", "show_exposure", {"measure": "delta"}),
    ("am I too concentrated in health care", "show_exposure", {"sector": "Health Care"}),
    ("what's my NVDA exposure", "show_exposure", {"ticker": "NVDA"}),
    ("show the hedges exposure", "show_exposure", {"tag": "hedges"}),
    # expiring options
    ("which options expire today", "expiring_options", {"timeframe": "today", "days_ahead": 0}),
    ("anything expiring tomorrow?", "expiring_options", {"timeframe": "tomorrow", "days_ahead": 1}),
    ("options expiring in the next 10 days", "expiring_options", {"timeframe": "days", "days_ahead": 10}),
    ("show calls expiring this week", "expiring_options", {"timeframe": "this_week", "days_ahead": 1}),
    ("expirations on 2026-12-18", "expiring_options", {"timeframe": "date", "date": "2026-12-18"}),
    ("my expiring AAPL contracts", "expiring_options", {"ticker": "AAPL", "days_ahead": 5}),
    ("what expires next week", "expiring_options", {"timeframe": "next_week", "days_ahead": 8}),
    # what-if trade
    ("what if I buy 100 AAPL", "what_if_trade", {"ticker": "AAPL", "quantity": 100, "side": "buy"}),
    ("What happens if I sell 50 shares of MSFT?", "what_if_trade", {"ticker": "MSFT", "quantity": -50, "side": "sell"}),
    ("simulate buying 1,000 XOM", "what_if_trade", {}),  # "buying" is not "buy N": clarify below instead
    ("what if I short 200 TSLA", "what_if_trade", {"ticker": "TSLA", "quantity": -200, "side": "sell"}),
    ("buy 25 NVDA, what's the impact", "what_if_trade", {"ticker": "NVDA", "quantity": 25}),
    ("what if I buy $SPY 10", "what_if_trade", {"ticker": "SPY", "quantity": 10}),
    ("impact of selling nvda", "clarify", {"candidate": "what_if_trade", "ticker": "NVDA"}),
    # reduce exposure
    ("reduce my tech exposure to 15%", "reduce_exposure", {"sector": "Technology", "target_exposure": 0.15, "method": "proportional"}),
    ("Reduce my tech exposure to 15 %", "reduce_exposure", {"sector": "Technology", "target_exposure": 0.15}),
    ("cut technology to 20 percent", "reduce_exposure", {"sector": "Technology", "target_exposure": 0.2}),
    ("bring down energy exposure to 0.05", "reduce_exposure", {"sector": "Energy", "target_exposure": 0.05}),
    ("trim the core tag to 30% largest first", "reduce_exposure", {"tag": "core", "target_exposure": 0.3, "method": "largest_first"}),
    ("lower my NVDA position to $50k", "reduce_exposure", {"ticker": "NVDA", "target_notional": 50000.0}),
    ("reduce tech exposure", "clarify", {"candidate": "reduce_exposure", "sector": "Technology"}),
    ("reduce my exposure to 10%", "clarify", {"candidate": "reduce_exposure", "target_exposure": 0.1}),
    ("reduce financials to 150%", "clarify", {"candidate": "reduce_exposure"}),
    # hedge
    ("hedge my tech risk", "hedge_risk", {"risk": "sector_technology"}),
    ("how do I hedge my market exposure with $100k", "hedge_risk", {"risk": "market_beta", "budget": 100000.0}),
    ("protect my downside, hedge gamma", "hedge_risk", {"risk": "gamma"}),
    ("hedge volatility using ETFs", "hedge_risk", {"risk": "vega", "instruments": ["etfs"]}),
    ("find a hedge for interest rate risk", "hedge_risk", {"risk": "interest_rate"}),
    # lab
    ("run a backtest of model mdl_abc123", "run_backtest", {"model_id": "mdl_abc123"}),
    ("backtest my momentum strategy", "run_backtest", {}),
    ("backtest a z-score strategy on MSFT", "run_backtest", {"ticker": "MSFT", "strategy": "zscore"}),
    ("sweep the RSI strategy on AAPL", "run_sweep", {"ticker": "AAPL", "strategy": "rsi"}),
    ("start a parameter sweep for model mdl_x1", "run_sweep", {"model_id": "mdl_x1"}),
    ("run a grid search", "run_sweep", {}),
    ("show the leaderboard", "show_leaderboard", {"metric": "sharpe", "limit": 10}),
    ("what are the top 5 models by sortino", "show_leaderboard", {"metric": "sortino", "limit": 5}),
    ("best strategies ranking", "show_leaderboard", {}),
    # reports
    ("generate a risk report", "generate_report", {"type": "risk_summary", "format": "pdf"}),
    ("make me a portfolio overview report in html", "generate_report", {"type": "portfolio_overview", "format": "html"}),
    ("create a backtest tear sheet", "generate_report", {"type": "backtest_tearsheet"}),
    ("prepare the sweep report", "generate_report", {"type": "sweep_report"}),
    # alerts
    ("alert me when tech exposure goes over 20%", "set_alert_rule",
     {"metric": "sector_exposure", "sector": "Technology", "operator": "greater_than", "threshold": 0.2}),
    ("notify me if gross exposure exceeds 150%", "set_alert_rule", {"metric": "gross_exposure", "threshold": 1.5}),
    ("let me know if the hedges tag falls below 5%", "set_alert_rule",
     {"metric": "tag_exposure", "tag": "hedges", "operator": "less_than", "threshold": 0.05}),
    ("warn me when AAPL is above 10 percent", "set_alert_rule", {"metric": "position_weight", "ticker": "AAPL", "threshold": 0.1}),
    ("set an alert on energy exposure", "clarify", {"candidate": "set_alert_rule", "sector": "Energy"}),
    ("alert me", "clarify", {"candidate": "set_alert_rule"}),
    # clarify: too vague or ambiguous
    ("hello", "clarify", {}),
    ("what's the weather like", "clarify", {}),
    ("tell me something", "clarify", {}),
    ("risk", "clarify", {}),
    ("what if I buy 100 ZZZQ", "clarify", {"candidate": "what_if_trade"}),
    # refuse
    ("place an order to buy 100 AAPL with my broker", "unsupported", {}),
    ("transfer $10k cash to my bank account", "unsupported", {}),
    ("delete my account and all my data", "unsupported", {}),
    ("give me insider tips", "unsupported", {}),
]


def test_the_table_is_large_enough():
    assert len(CASES) >= 60
    assert {c[1] for c in CASES} >= set(intents.INTENTS) | set(intents.NON_INTENTS)


@pytest.mark.parametrize("query,intent,params", CASES, ids=[c[0][:40] for c in CASES])
def test_phrasing(query, intent, params):
    got = intents.interpret(query, known_tickers=KNOWN, book_tickers=BOOK, tag_names=TAGS, today=TODAY)
    if query == "simulate buying 1,000 XOM":  # no "buy N TICKER" form: the parser asks, never guesses
        assert got.intent == "clarify" and got.parameters["candidate"] == "what_if_trade" and "XOM" in got.parameters.get("ticker", "XOM")
        return
    assert got.intent == intent, (got.intent, got.scores, got.question)
    for key, value in params.items():
        assert got.parameters.get(key) == value, (key, got.parameters)
    if intent in intents.INTENTS:
        assert got.confidence >= intents.CONFIDENCE_THRESHOLD and got.question is None
        assert got.actions and got.actions[0]["route"] == "/ui/navigate"
        assert got.actions[0]["body"]["target"] == intents.TARGETS[intent]
    elif intent == "clarify":
        assert got.question and got.actions == []
    else:
        assert got.reason and got.actions == []


def test_every_ui_action_is_one_the_dashboard_accepts():
    """The actions /ai/interpret returns are replayed on /ui/*: each must pass the dashboard's own
    checks (services.ui_sync), not just look like the spec."""
    from services import ui_sync

    seen = 0
    for query, _, _ in CASES:
        got = intents.interpret(query, known_tickers=KNOWN, book_tickers=BOOK, tag_names=TAGS, today=TODAY)
        for action in got.actions:
            body = action["body"]
            if action["route"] == "/ui/navigate":
                ui_sync.page_of(body["target"])
            elif action["route"] == "/ui/apply-filter":
                assert body["view"] in ui_sync.VIEWS
                ui_sync.check_preset(body["filter"]["preset"], TAGS)
                ui_sync.parse_sort(body["filter"].get("sort"))
            else:
                assert action["route"] == "/ui/highlight", action
                ui_sync.check_elements([e["id"] for e in body["elements"]], [])
                for e in body["elements"]:
                    ui_sync.check_style(e["style"], "style")
            seen += 1
    assert seen > len(CASES)  # navigate everywhere, plus filters and highlights


def test_entities_by_hand():
    ent = intents.extract_entities("cut TECH and banks to 12.5 %, spend $2.5m or 300k usd by 2027-01-15; tag hedges, I AM OK",
                                   known_tickers=KNOWN, book_tickers=BOOK, tag_names=TAGS, today=TODAY)
    assert ent.percentages == [0.125]
    assert ent.money == [2_500_000.0, 300_000.0]
    assert ent.dates == ["2027-01-15"]
    assert ent.sectors == ["Technology", "Financials"]
    assert ent.tags == ["hedges"]
    assert ent.tickers == []  # I, AM, OK are words, not tickers


def test_confidence_formula():
    # one strong cue: 1 - e^-1; a tie halves it
    assert intents.confidence_of({"analyze_risk": 2.0, "show_exposure": 0.0}) == ("analyze_risk", round(1 - 2.718281828 ** -1, 2))
    assert intents.confidence_of({"analyze_risk": 2.0, "show_exposure": 2.0})[1] == round((1 - 2.718281828 ** -1) / 2, 2)
    assert intents.confidence_of({"analyze_risk": 0.0}) == (None, 0.0)


def test_ranker_is_used_only_for_a_platform_intent():
    def says(intent):
        return lambda query, candidates: intent

    base = intents.interpret("risk", known_tickers=KNOWN, today=TODAY)
    assert base.intent == "clarify"
    assert intents.interpret("risk", ranker=says("analyze_risk"), today=TODAY).intent == "analyze_risk"
    for bad in (says("drop_tables"), says(None)):
        assert intents.interpret("risk", ranker=bad, today=TODAY).intent == "clarify"

    def boom(query, candidates):
        raise RuntimeError("down")

    got = intents.interpret("show the leaderboard", ranker=boom, today=TODAY)
    assert got.intent == "show_leaderboard" and got.backend == "rules"


def test_empty_query_is_an_input_error():
    with pytest.raises(ValueError, match="query"):
        intents.interpret("   ")
