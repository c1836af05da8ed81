"""Risk analytics for a user's portfolio: the glue between catalog, market data and ``compute``.

Every public function takes the catalog, a market-data provider and the caller's user id, and
answers for that user's portfolio only (``LookupError`` when it is not theirs, which routes
turn into a 404). The priced book comes from :func:`services.portfolio.service.priced_book`;
the numbers come from ``compute.factors``, ``compute.var``, ``compute.scenarios``,
``compute.risk`` and ``compute.attribution``.

Factor model inputs (:func:`factor_returns_frame`): Market = SPY's daily return, each style
factor = style ETF return - SPY return (MTUM, VTV, VUG, QUAL, IJR, SPLV), plus two extra
regressors so that rate and oil scenarios have real sensitivities: Interest Rate = -TLT
return / 17 (TLT's modified duration, so the regressor reads as a change of the 10-year
yield in decimals) and Oil = USO's return. All nine are regressed jointly (one batched OLS for
every underlying of the portfolio); the reported model is the spec's 7 factors plus the mock
Short Interest, with the rate and oil betas shown as ``additional_factors``.

Stored results: the daily batch (:mod:`services.risk.batch`) writes each step's result into
``batch_results`` together with a fingerprint of the portfolio's holdings. Routes call
:func:`stored_result` first and serve the stored figure (saying ``source: batch``, ``as_of``
and ``age_seconds``) when the holdings are unchanged and it is younger than
:data:`STORED_MAX_AGE_S`; otherwise they compute live (``source: live``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from cluster.errors import InputError
from cluster.catalog import BatchResult, Catalog, Portfolio, Position, PositionTag, Snapshot, Tag
from cluster.catalog.models import utcnow
from compute import stats
from compute.attribution import GROUP_BY, daily_snapshot, pnl_attribution
from compute.memo import ProviderMemo
from compute.factors import (
    ALL_FACTORS,
    DEFAULT_WINDOW,
    FACTOR_DEFINITIONS,
    FACTOR_ETFS,
    MIN_OBSERVATIONS,
    FactorRegression,
    factor_exposure_report,
    factor_returns_from_etfs,
    regress_factor_betas,
    simple_returns,
)
from compute.marketdata import MarketDataError, calendar
from compute.risk import PERIODS_PER_YEAR, VIEWS, exposure_by_underlying, portfolio_returns, risk_overview
from compute.scenarios import OPTION_TYPES, resolve_scenarios, run_scenarios, scenario_templates
from compute.var import ES_LEVEL, VAR_LEVELS, monte_carlo_var, var_table
from compute.jsonsafe import finite_or_none

#: Extra regressors: name -> (proxy ETF, multiplier applied to its daily return).
EXTRA_FACTOR_PROXIES: dict[str, tuple[str, float]] = {
    "Interest Rate": ("TLT", -1.0 / 17.0),
    "Oil": ("USO", 1.0),
}
FACTOR_PROXY_TICKERS: tuple[str, ...] = tuple(dict.fromkeys(
    list(FACTOR_ETFS.values()) + [t for t, _ in EXTRA_FACTOR_PROXIES.values()]
))
MARKET_TICKER = "SPY"
ALLOWED_WINDOWS = range(MIN_OBSERVATIONS + 10, 505)
#: Sessions of history behind the overview, per return period (enough periods to measure).
OVERVIEW_LOOKBACK_SESSIONS = {"daily": 252, "weekly": 756, "monthly": 1260, "annual": 2520}
MONTE_CARLO_PATHS = 100_000
STORED_MAX_AGE_S = 26 * 3600
#: Fallback risk-free rate when the priced book does not say which one it used.
RISK_FREE_RATE = 0.045


class RiskInputError(InputError):
    """Bad input to a risk report (view, period, window, paths, factors, dates)."""

# ---------------------------------------------------------------------------------------------
# market data
# ---------------------------------------------------------------------------------------------
def session_date(value) -> dt.date:
    """The last NYSE session on or before ``value`` (a date, datetime or ISO string)."""
    return calendar.session_on_or_before(value).date()


def session_span(end: dt.date, sessions: int) -> tuple[dt.date, dt.date]:
    """(first, last) session dates of the ``sessions`` sessions ending on ``end``."""
    index = calendar.all_sessions().index
    last = calendar.session_on_or_before(end)
    pos = int(index.get_loc(last))
    return index[max(0, pos - int(sessions))].date(), last.date()


def daily_closes(provider, tickers, start, end) -> tuple[pd.DataFrame, dict[str, str]]:
    """Daily closes (index: session date, naive) per ticker, and the tickers that failed.

    A ticker whose data cannot be read becomes an all-NaN column and is named in the second
    value with the provider's reason, so one bad name degrades to ``limited_history`` rather
    than failing the whole analysis.
    """
    index = pd.DatetimeIndex(calendar.sessions(start, end).index, name="session")
    columns: dict[str, pd.Series] = {}
    failed: dict[str, str] = {}
    # a session's close is final once it has happened: the key says whether ``end``'s has
    end_closed = calendar.session_close(calendar.session_on_or_before(pd.Timestamp(end))) <= provider.now()
    scope = (getattr(provider, "data_version", ""), str(start), str(end), end_closed)
    for ticker in dict.fromkeys(tickers):
        key = (*scope, ticker)
        hit = _closes.get(provider, key)
        if hit is not None:
            columns[ticker] = hit
            continue
        try:
            bars = provider.daily_bars(ticker, start, end)
        except MarketDataError as exc:
            failed[ticker] = str(exc)
            columns[ticker] = pd.Series(np.nan, index=index)
            continue
        stamps = pd.DatetimeIndex(bars.index).tz_convert(calendar.NEW_YORK).tz_localize(None).normalize()
        columns[ticker] = pd.Series(bars["close"].to_numpy(np.float64), index=stamps).reindex(index)
        _closes.put(provider, key, columns[ticker])
    return pd.DataFrame(columns, index=index), failed


#: Daily closes read by ``daily_closes`` are kept per process (every risk figure, the impact of
#: each ProForma edit and each hedge candidate read the same year of closes): per provider object
#: (weakly: a provider's entries go with it), keyed by its data version, the span, whether the
#: span's last close has happened, and the ticker; at most ``CLOSES_TTL_S`` seconds (files may be
#: replaced) and ``CLOSES_CACHE_SIZE`` series per provider.
CLOSES_TTL_S = 300.0
CLOSES_CACHE_SIZE = 4096
_closes = ProviderMemo(CLOSES_CACHE_SIZE, CLOSES_TTL_S)


def factor_returns_frame(etf_returns: pd.DataFrame) -> pd.DataFrame:
    """The nine regressors (7 spec factors + Interest Rate + Oil) from proxy ETF returns."""
    frame = factor_returns_from_etfs(etf_returns)
    for name, (ticker, scale) in EXTRA_FACTOR_PROXIES.items():
        frame[name] = etf_returns[ticker] * scale
    return frame


@dataclass
class MarketHistory:
    """Daily returns of a set of underlyings and of the factor regressors, one index."""

    underlying_returns: pd.DataFrame
    factor_returns: pd.DataFrame
    benchmark_returns: pd.Series
    failed: dict[str, str]


def market_history(provider, underlyings, as_of: dt.date, sessions: int) -> MarketHistory:
    start, end = session_span(as_of, sessions + 1)
    tickers = list(dict.fromkeys(list(underlyings) + list(FACTOR_PROXY_TICKERS)))
    closes, failed = daily_closes(provider, tickers, start, end)
    proxy_failed = [t for t in FACTOR_PROXY_TICKERS if t in failed]
    if proxy_failed:
        raise MarketDataError(f"factor proxy history unavailable for {proxy_failed}: {failed[proxy_failed[0]]}")
    returns = simple_returns(closes).iloc[1:]
    factors = factor_returns_frame(returns[list(FACTOR_PROXY_TICKERS)])
    return MarketHistory(returns[list(dict.fromkeys(underlyings))], factors, returns[MARKET_TICKER], failed)


def regress(history: MarketHistory, window: int = DEFAULT_WINDOW) -> FactorRegression:
    """Joint factor betas of every underlying in ``history`` in one batched OLS."""
    return regress_factor_betas(history.underlying_returns, history.factor_returns, window, MIN_OBSERVATIONS)


# ---------------------------------------------------------------------------------------------
# the portfolio's book
# ---------------------------------------------------------------------------------------------
def get_priced_book(catalog: Catalog, provider, user_id: int, portfolio_id: str | None = None, as_of=None):
    """The portfolio engine's priced book (LookupError when the portfolio is not the user's)."""
    from services.portfolio.service import priced_book

    return priced_book(catalog, provider, user_id, portfolio_id, as_of=as_of)


def book_as_of(book) -> dt.date:
    value = getattr(book, "as_of", None)
    return session_date(value if value is not None else dt.date.today())


def _portfolio_id(book) -> str:
    portfolio = book.portfolio
    return portfolio["id"] if isinstance(portfolio, dict) else portfolio.id


def live_positions(book) -> pd.DataFrame:
    """Positions that carry risk (expired options dropped), indexed by position id."""
    frame = book.positions.copy()
    if "expired" in frame.columns:
        frame = frame[~frame["expired"].fillna(False).astype(bool)]
    frame = frame.set_index(frame["position_id"].astype(str), drop=False)
    return frame


def select_positions(positions: pd.DataFrame, view: str) -> pd.DataFrame:
    """Positions of a view by the sign of their delta-adjusted exposure (longs > 0, shorts < 0)."""
    if view not in VIEWS:
        raise RiskInputError("view", f"expected one of {VIEWS}, got {view!r}")
    exposure = pd.to_numeric(positions["delta_exposure"], errors="coerce")
    if view == "longs":
        return positions[exposure > 0]
    if view == "shorts":
        return positions[exposure < 0]
    return positions


def position_book_frame(positions: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The revaluation input of ``compute.scenarios.position_book`` from priced positions.

    Options without a usable volatility, strike or time to expiry cannot be repriced: they are
    left out with a warning rather than valued with an invented number.
    """
    frame = pd.DataFrame(
        {
            "position_id": positions["position_id"].astype(str),
            "symbol": positions["symbol"].astype(str),
            "underlying": positions["underlying"].astype(str),
            "position_type": positions["type"].astype(str).str.upper(),
            "quantity": pd.to_numeric(positions["quantity"], errors="coerce"),
            "multiplier": pd.to_numeric(positions["multiplier"], errors="coerce"),
            "underlying_price": pd.to_numeric(positions["underlying_price"], errors="coerce"),
            "strike": pd.to_numeric(positions.get("strike"), errors="coerce"),
            "time_to_expiry": pd.to_numeric(positions.get("time_to_expiry"), errors="coerce"),
            "volatility": pd.to_numeric(positions.get("iv"), errors="coerce"),
            "risk_free_rate": float(positions.attrs.get("rate", RISK_FREE_RATE)),
            "dividend_yield": pd.to_numeric(positions["dividend_yield"], errors="coerce")
            if "dividend_yield" in positions.columns else 0.0,
            "tags": positions["tags"] if "tags" in positions.columns else [[] for _ in range(len(positions))],
        }
    )
    frame["risk_free_rate"] = frame["risk_free_rate"].fillna(RISK_FREE_RATE)
    frame["dividend_yield"] = frame["dividend_yield"].fillna(0.0)
    warnings: list[str] = []
    is_option = frame["position_type"].isin(OPTION_TYPES)
    bad_option = is_option & (
        ~(frame["volatility"] > 0) | ~(frame["strike"] > 0) | ~(frame["time_to_expiry"] > 0)
    )
    bad_spot = ~(frame["underlying_price"] > 0) | frame["quantity"].isna()
    drop = bad_option | bad_spot
    if drop.any():
        warnings.append(f"positions without a price or volatility left out of revaluation: {sorted(frame.loc[drop, 'symbol'])}")
    return frame[~drop].reset_index(drop=True), warnings


def _equity(book) -> float:
    equity = float(book.equity)
    if not math.isfinite(equity) or equity <= 0:
        raise RiskInputError("portfolio", "equity is not positive; risk figures relative to equity are undefined")
    return equity


# ---------------------------------------------------------------------------------------------
# stored batch results
# ---------------------------------------------------------------------------------------------
def holdings_fingerprint(catalog: Catalog, portfolio_id: str) -> str:
    """SHA-256 of the holdings (ids, symbols, quantities, contract terms, tags) and cash.

    A stored result computed for a different fingerprint is stale: routes compute live.
    """
    with catalog.session() as s:
        portfolio = s.get(Portfolio, portfolio_id)
        rows = s.execute(
            select(Position.id, Position.symbol, Position.quantity, Position.strike, Position.expiry, Position.type)
            .where(Position.portfolio_id == portfolio_id)
            .order_by(Position.id)
        ).all()
        tags = s.execute(
            select(PositionTag.position_id, Tag.name)
            .join(Tag, Tag.id == PositionTag.tag_id)
            .join(Position, Position.id == PositionTag.position_id)
            .where(Position.portfolio_id == portfolio_id)
            .order_by(PositionTag.position_id, Tag.name)
        ).all()
    payload = {
        "cash": None if portfolio is None else float(portfolio.cash or 0.0),
        "positions": [[r[0], r[1], float(r[2]), r[3], str(r[4]), r[5]] for r in rows],
        "tags": [list(t) for t in tags],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def stored_result(
    catalog: Catalog, portfolio_id: str, step: str, *, max_age_s: float = STORED_MAX_AGE_S, now: dt.datetime | None = None,
    provider=None,
) -> tuple[dict, dict] | None:
    """The latest completed batch result of ``step`` if still valid: (result data, source meta).

    Valid means: same holdings fingerprint as now and younger than ``max_age_s``. The meta's
    ``market_data`` is where the batch priced the book from and when (stored with the result;
    for a result stored before that was recorded: ``provider``'s source at the close of the
    batch's session, which is where the batch prices).
    """
    with catalog.session() as s:
        row = s.scalars(
            select(BatchResult)
            .where(BatchResult.portfolio_id == portfolio_id, BatchResult.step == step, BatchResult.status == "completed")
            .order_by(BatchResult.finished_at.desc(), BatchResult.id.desc())
            .limit(1)
        ).first()
    if row is None or not row.result or row.finished_at is None:
        return None
    now = now or utcnow()
    age = (now - row.finished_at).total_seconds()
    if age > max_age_s or row.result.get("fingerprint") != holdings_fingerprint(catalog, portfolio_id):
        return None
    meta = {
        "source": "batch",
        "as_of": row.result.get("as_of"),
        "computed_at": row.finished_at.isoformat(),
        "age_seconds": round(max(age, 0.0), 1),
        "batch_run_id": row.run_id,
    }
    stamp = row.result.get("market_data")
    if not stamp and provider is not None and row.result.get("as_of"):
        from services.portfolio.service import pricing_stamp

        stamp = pricing_stamp(provider, calendar.session_close(calendar.session_on_or_before(row.result["as_of"])))
    if stamp:
        meta["market_data"] = dict(stamp)
    return row.result.get("data") or {}, meta


def live_meta(as_of: dt.date, book=None, provider=None) -> dict:
    """Meta of a figure computed now: ``source: live``, the book's session, and (with the book
    and its provider) ``market_data``: the provider's source and the book's pricing instant."""
    meta = {"source": "live", "as_of": str(as_of), "computed_at": utcnow().isoformat(), "age_seconds": 0.0}
    if book is not None and provider is not None:
        from services.portfolio.service import pricing_stamp

        meta["market_data"] = pricing_stamp(provider, getattr(book, "as_of", None))
    return meta


def default_portfolio_id(catalog: Catalog, user_id: int, portfolio_id: str | None = None) -> str:
    """The id of the user's named (or default) portfolio; LookupError when none is theirs."""
    from services.portfolio.service import get_portfolio

    portfolio = get_portfolio(catalog, user_id, portfolio_id)
    return portfolio["id"] if isinstance(portfolio, dict) else portfolio.id


# ---------------------------------------------------------------------------------------------
# analyses on a priced book (pure given the book and the provider)
# ---------------------------------------------------------------------------------------------
@dataclass
class RiskInputs:
    """A priced book with its market history and factor regression, ready for every analysis."""

    book: Any
    positions: pd.DataFrame
    equity: float
    as_of: dt.date
    history: MarketHistory
    regression: FactorRegression
    warnings: list[str] = field(default_factory=list)


def risk_inputs(book, provider, *, window: int = DEFAULT_WINDOW, sessions: int | None = None) -> RiskInputs:
    """Market history (``sessions`` long, at least the regression window) and factor betas."""
    positions = live_positions(book)
    as_of = book_as_of(book)
    underlyings = list(dict.fromkeys(positions["underlying"].astype(str)))
    history = market_history(provider, underlyings, as_of, max(int(sessions or 0), int(window) + 5))
    regression = regress(history, window)
    warnings = [f"no price history for {t}: {reason}" for t, reason in history.failed.items()]
    limited = [t for t in underlyings if bool(regression.limited_history.get(t, True))]
    if limited:
        warnings.append(f"limited history (< {MIN_OBSERVATIONS} days): null factor betas for {limited}")
    return RiskInputs(book, positions, _equity(book), as_of, history, regression, warnings)



def factor_report(inputs: RiskInputs, view: str = "portfolio") -> dict:
    """Factor exposures of a view: per factor (dollars, fraction of equity) and per position."""
    selected = select_positions(inputs.positions, view)
    exposure = pd.to_numeric(selected["delta_exposure"], errors="coerce").fillna(0.0)
    report = factor_exposure_report(
        exposure, selected["underlying"].astype(str), inputs.regression, inputs.equity, selected["symbol"].astype(str)
    )
    betas = inputs.regression.betas
    additional = []
    for name, (ticker, scale) in EXTRA_FACTOR_PROXIES.items():
        position_betas = betas[name].reindex(selected["underlying"].astype(str).to_numpy()).to_numpy()
        dollars = position_betas * exposure.to_numpy()
        known = ~np.isnan(dollars)
        total = float(dollars[known].sum()) if known.any() else None
        additional.append({
            "factor_name": name,
            "proxy": f"{ticker} x {scale:+.4g}",
            "exposure": total / inputs.equity if total is not None else None,
            "exposure_dollars": total,
            "positions_without_betas": int((~known).sum()),
            "calculation_method": "real",
        })
    tstats = inputs.regression.tstats
    for row in report["positions"]:
        underlying = row["underlying"]
        limited = row["regression_stats"]["limited_history"]
        row["t_stats"] = {
            f: (None if limited or underlying not in tstats.index else finite_or_none(tstats.at[underlying, f]))
            for f in ALL_FACTORS if f in tstats.columns
        }
        row["additional_factor_betas"] = {
            f: (None if limited or underlying not in betas.index else finite_or_none(betas.at[underlying, f]))
            for f in EXTRA_FACTOR_PROXIES
        }
    for item in report["portfolio"]:
        item["exposure_visual"] = _exposure_visual(item["exposure"])
    report.update(view=view, equity=inputs.equity, as_of=str(inputs.as_of), additional_factors=additional,
                  warnings=list(inputs.warnings))
    return report


def _exposure_visual(exposure: float | None) -> dict:
    """Spec 6.5 block: percentage = |beta| x 100; >1.5 danger, >1.0 warning, else success."""
    if exposure is None:
        return {"percentage": None, "status": "info"}
    magnitude = abs(exposure)
    status = "danger" if magnitude > 1.5 else "warning" if magnitude > 1.0 else "success"
    return {"percentage": round(magnitude * 100), "status": status}


def overview_report(inputs: RiskInputs, view: str, period: str) -> dict:
    """Risk overview (spec 6.1) of the view over the period returns, plus plain-number fields."""
    positions = select_positions(inputs.positions, view) if view != "portfolio" else inputs.positions
    exposure = exposure_by_underlying(
        pd.to_numeric(inputs.positions["delta_exposure"], errors="coerce").fillna(0.0),
        inputs.positions["underlying"].astype(str),
    )
    usable = [t for t in exposure.index if inputs.history.underlying_returns[t].notna().any()]
    dropped = [t for t in exposure.index if t not in usable]
    # the same look-back whether the history was fetched for this period (live) or longer (batch)
    lookback = OVERVIEW_LOOKBACK_SESSIONS[period]
    returns = inputs.history.underlying_returns.iloc[-lookback:].copy()
    returns.index = pd.DatetimeIndex(returns.index)
    bench = inputs.history.benchmark_returns.iloc[-lookback:].copy()
    bench.index = pd.DatetimeIndex(bench.index)
    raw = risk_overview(exposure[usable], returns, bench, inputs.equity, view, period)
    beta_value = raw["beta"]
    vol = raw["annualized_volatility"]
    mdd = raw["max_drawdown"]
    warnings = list(inputs.warnings)
    if dropped:
        warnings.append(f"no return history: {dropped} left out of the overview")
    metrics = {
        "beta": {
            "value": beta_value,
            "description": "vs. SPY",
            "visual": {"status": "info" if beta_value is None else "danger" if abs(beta_value) > 1.5
                       else "warning" if abs(beta_value) > 1.0 else "success"},
        },
        "annualized_volatility": {"value": None if vol is None else f"{vol * 100:.1f}%", "raw": vol,
                                  "description": "Std. dev of returns"},
        "position_correlation": {"value": raw["position_correlation"], "description": "Avg. pairwise correlation",
                                 "clusters": raw["correlation_clusters"]},
        "max_drawdown": {"value": None if mdd is None else f"{mdd * 100:.1f}%", "raw": mdd,
                         "description": "Peak-to-trough decline"},
        "var_1d": {"value": raw["var_1d"]["value"], "return": raw["var_1d"]["return"], "confidence": 0.95,
                   "method": "historical"},
        "expected_shortfall": next(
            ({"value": r["dollars"], "return": r["return"], "confidence": r["level"], "method": r["method"]}
             for r in raw["var"]["expected_shortfall"] if r["method"] == "historical" and r["horizon_days"] == 1),
            None,
        ),
    }
    return {
        "view": view,
        "period": period,
        "as_of": str(inputs.as_of),
        "equity": inputs.equity,
        "observations": raw["observations"],
        "positions": int(len(positions)),
        "metrics": metrics,
        "var": raw["var"],
        "ai_risk_summary": {"biggest_risks": _biggest_risks(inputs, raw)},
        "warnings": warnings,
    }


def _biggest_risks(inputs: RiskInputs, raw: dict) -> list[dict]:
    """Rule-based flags: single-name concentration, correlation clusters, high beta."""
    risks = []
    exposure = exposure_by_underlying(
        pd.to_numeric(inputs.positions["delta_exposure"], errors="coerce").fillna(0.0),
        inputs.positions["underlying"].astype(str),
    )
    if len(exposure):
        top = exposure.abs().sort_values(ascending=False)
        share = float(top.iloc[0]) / inputs.equity
        if share > 0.20:
            risks.append({
                "type": "concentration",
                "description": f"{top.index[0]} at {share:.0%} of equity exceeds a 20% single-name limit",
                "severity": "high" if share > 0.35 else "medium",
                "suggested_actions": [f"reduce_{top.index[0].lower()}", "diversify"],
            })
    for cluster in raw["correlation_clusters"][:3]:
        risks.append({
            "type": "correlation",
            "description": f"{', '.join(cluster)} move together (|rho| >= 0.7)",
            "severity": "medium" if len(cluster) < 4 else "high",
            "suggested_actions": ["reduce_correlated_positions", "add_hedges"],
        })
    beta_value = raw["beta"]
    if beta_value is not None and abs(beta_value) > 1.2:
        risks.append({
            "type": "market_beta",
            "description": f"beta {beta_value:.2f} vs SPY amplifies market moves",
            "severity": "medium",
            "suggested_actions": ["hedge_with_index", "add_defensive_positions"],
        })
    return risks


def historical_returns(inputs: RiskInputs, view: str = "portfolio") -> pd.Series:
    """The view's daily returns (fraction of equity) over the last 252 sessions: today's
    delta-adjusted exposure per underlying applied to each session's returns (historical VaR's
    sample)."""
    selected = select_positions(inputs.positions, view)
    exposure = exposure_by_underlying(
        pd.to_numeric(selected["delta_exposure"], errors="coerce").fillna(0.0), selected["underlying"].astype(str)
    )
    usable = [t for t in exposure.index if inputs.history.underlying_returns[t].notna().any()]
    return portfolio_returns(exposure[usable], inputs.history.underlying_returns, inputs.equity).iloc[-252:]


def var_report(inputs: RiskInputs, view: str = "portfolio", *, paths: int = MONTE_CARLO_PATHS, seed: int = 0,
               horizons=(1, 10), include_monte_carlo: bool = True) -> dict:
    """The VaR family of a view: historical, parametric normal, Cornish-Fisher (from the current
    holdings applied to the last year of returns) and Monte Carlo with full BSM revaluation."""
    selected = select_positions(inputs.positions, view)
    returns = historical_returns(inputs, view)
    table = var_table(returns.to_numpy(), inputs.equity, VAR_LEVELS, tuple(horizons), ES_LEVEL)
    result = {
        "view": view,
        "as_of": str(inputs.as_of),
        "equity": inputs.equity,
        "levels": list(VAR_LEVELS),
        "es_level": ES_LEVEL,
        "horizons_days": list(horizons),
        "history_observations": table["observations"],
        "var": table["var"],
        "expected_shortfall": table["expected_shortfall"],
        "monte_carlo": None,
        "warnings": list(inputs.warnings),
    }
    if include_monte_carlo and len(selected):
        frame, warnings = position_book_frame(selected)
        result["warnings"].extend(warnings)
        regression = inputs.regression
        window_factors = inputs.history.factor_returns.dropna().iloc[-regression.window:]
        covariance = window_factors.cov()
        mc = []
        for horizon in horizons:
            out = monte_carlo_var(frame, regression.betas, regression.residual_vol, covariance, inputs.equity,
                                  VAR_LEVELS, ES_LEVEL, int(horizon), int(paths), int(seed))
            mc.append({
                "horizon_days": int(horizon),
                "var": [{"level": lv, "dollars": v, "return": v / inputs.equity} for lv, v in out["var"].items()],
                "expected_shortfall": [{"level": lv, "dollars": v, "return": v / inputs.equity}
                                       for lv, v in out["expected_shortfall"].items()],
                "mean_pnl": out["mean_pnl"],
                "std_pnl": out["std_pnl"],
                "paths": out["n_paths"],
                "seed": out["seed"],
            })
            for w in out["warnings"]:
                if w not in result["warnings"]:
                    result["warnings"].append(w)
        result["monte_carlo"] = {
            "method": "factor Monte Carlo, correlated normal factor draws + idiosyncratic noise, options repriced with Black-Scholes",
            "factor_window_days": regression.window,
            "results": mc,
        }
    return result


def scenario_report(inputs: RiskInputs, scenario_ids, custom: dict | None = None, view: str = "portfolio",
                    worst_n: int = 5) -> dict:
    """Stress scenarios over a view, options repriced with Black-Scholes (not linear)."""
    scenarios = resolve_scenarios(list(scenario_ids or []), custom)
    selected = select_positions(inputs.positions, view)
    frame, warnings = position_book_frame(selected)
    if len(frame) == 0:
        results = [{"id": s.id, "name": s.name, "shocks": dict(s.shocks), "pnl": 0.0, "pnl_percent": 0.0, "by_type": {},
                    "worst_positions": [], "positions_unmoved": [], "warnings": ["no positions in this view"]}
                   for s in scenarios]
    else:
        results = run_scenarios(frame, inputs.regression.betas, scenarios, inputs.equity, worst_n)
    for r in results:
        r["by_type"] = {t: {"pnl": v, "pnl_percent": v / inputs.equity * 100.0} for t, v in r["by_type"].items()}
    return {"view": view, "as_of": str(inputs.as_of), "equity": inputs.equity, "scenarios": results,
            "warnings": list(inputs.warnings) + warnings}


# ---------------------------------------------------------------------------------------------
# user-facing entry points (catalog + provider): routes and jobs call these
# ---------------------------------------------------------------------------------------------
def _validate_view(view: str) -> None:
    if view not in VIEWS:
        raise RiskInputError("view", f"expected one of {VIEWS}, got {view!r}")


def _validate_period(period: str) -> None:
    if period not in PERIODS_PER_YEAR:
        raise RiskInputError("period", f"expected one of {tuple(PERIODS_PER_YEAR)}, got {period!r}")


def _validate_window(window: int) -> None:
    if int(window) not in ALLOWED_WINDOWS:
        raise RiskInputError("window", f"expected {ALLOWED_WINDOWS.start}..{ALLOWED_WINDOWS.stop - 1} trading days, got {window}")


def factor_definitions() -> list[dict]:
    return [dict(d) for d in FACTOR_DEFINITIONS]


def portfolio_factors(catalog, provider, user_id, portfolio_id=None, *, view="portfolio", window=DEFAULT_WINDOW,
                      use_stored=True) -> tuple[dict, dict]:
    """Factor exposures of the user's portfolio view: (report, source meta)."""
    _validate_view(view)
    _validate_window(window)
    pid = default_portfolio_id(catalog, user_id, portfolio_id)
    if use_stored and window == DEFAULT_WINDOW:
        hit = stored_result(catalog, pid, "factors", provider=provider)
        if hit is not None and view in hit[0]:
            return hit[0][view], hit[1]
    book = get_priced_book(catalog, provider, user_id, pid)
    inputs = risk_inputs(book, provider, window=window)
    return factor_report(inputs, view), live_meta(inputs.as_of, inputs.book, provider)


def portfolio_overview(catalog, provider, user_id, portfolio_id=None, *, view="portfolio", period="daily",
                       use_stored=True) -> tuple[dict, dict]:
    _validate_view(view)
    _validate_period(period)
    pid = default_portfolio_id(catalog, user_id, portfolio_id)
    if use_stored:
        hit = stored_result(catalog, pid, "risk", provider=provider)
        key = f"{view}:{period}"
        if hit is not None and key in hit[0].get("overview", {}):
            return hit[0]["overview"][key], hit[1]
    book = get_priced_book(catalog, provider, user_id, pid)
    inputs = risk_inputs(book, provider, sessions=OVERVIEW_LOOKBACK_SESSIONS[period])
    return overview_report(inputs, view, period), live_meta(inputs.as_of, inputs.book, provider)


def portfolio_var(catalog, provider, user_id, portfolio_id=None, *, view="portfolio", paths=MONTE_CARLO_PATHS,
                  seed=0, use_stored=True) -> tuple[dict, dict]:
    _validate_view(view)
    if not 1_000 <= int(paths) <= 1_000_000:
        raise RiskInputError("paths", "expected 1000..1000000")
    pid = default_portfolio_id(catalog, user_id, portfolio_id)
    if use_stored and int(paths) == MONTE_CARLO_PATHS and int(seed) == 0:
        hit = stored_result(catalog, pid, "risk", provider=provider)
        if hit is not None and view in hit[0].get("var", {}):
            return hit[0]["var"][view], hit[1]
    book = get_priced_book(catalog, provider, user_id, pid)
    inputs = risk_inputs(book, provider, sessions=252)
    return var_report(inputs, view, paths=paths, seed=seed), live_meta(inputs.as_of, inputs.book, provider)


def portfolio_var_returns(catalog, provider, user_id, portfolio_id=None, *, view="portfolio") -> pd.Series:
    """The sample behind historical VaR (``historical_returns``) of the user's portfolio."""
    _validate_view(view)
    pid = default_portfolio_id(catalog, user_id, portfolio_id)
    book = get_priced_book(catalog, provider, user_id, pid)
    return historical_returns(risk_inputs(book, provider, sessions=252), view)


def portfolio_scenarios(catalog, provider, user_id, portfolio_id=None, *, scenario_ids=(), custom=None,
                        view="portfolio", use_stored=True) -> tuple[dict, dict]:
    """Scenario P&L; template-only requests are served from the batch when it is fresh."""
    _validate_view(view)
    resolve_scenarios(list(scenario_ids or []), custom)  # validate before any work
    pid = default_portfolio_id(catalog, user_id, portfolio_id)
    if use_stored and custom is None:
        hit = stored_result(catalog, pid, "scenarios", provider=provider)
        if hit is not None and view in hit[0]:
            stored = hit[0][view]
            by_id = {s["id"]: s for s in stored["scenarios"]}
            if all(i in by_id for i in scenario_ids):
                data = dict(stored, scenarios=[by_id[i] for i in scenario_ids])
                return data, hit[1]
    book = get_priced_book(catalog, provider, user_id, pid)
    inputs = risk_inputs(book, provider)
    return scenario_report(inputs, scenario_ids, custom, view), live_meta(inputs.as_of, inputs.book, provider)


def position_factors(catalog, provider, user_id, portfolio_id=None, *, position_ids=None, factors=None,
                     window=DEFAULT_WINDOW, use_stored=True) -> tuple[dict, dict]:
    """Per-position betas, t-stats, R^2 and data points, optionally filtered."""
    if factors:
        unknown = [f for f in factors if f not in ALL_FACTORS and f not in EXTRA_FACTOR_PROXIES]
        if unknown:
            raise RiskInputError("factors", f"unknown factor names {unknown}; expected some of {list(ALL_FACTORS)}")
    report, meta = portfolio_factors(catalog, provider, user_id, portfolio_id, view="portfolio", window=window,
                                     use_stored=use_stored)
    rows = report["positions"]
    if position_ids:
        known = {r["position_id"] for r in rows}
        missing = [p for p in position_ids if p not in known]
        if missing:
            raise LookupError(f"position {missing[0]}")
        wanted = set(position_ids)
        rows = [r for r in rows if r["position_id"] in wanted]
    out = []
    for r in rows:
        row = dict(r)
        row["regression_stats"] = dict(r["regression_stats"], last_updated=meta.get("computed_at"))
        if factors:
            row["factor_exposures"] = {f: v for f, v in r["factor_exposures"].items() if f in factors}
            row["exposure_dollars"] = {f: v for f, v in r["exposure_dollars"].items() if f in factors}
            row["t_stats"] = {f: v for f, v in r.get("t_stats", {}).items() if f in factors}
        out.append(row)
    return {"positions": out, "window": report["window"], "as_of": report.get("as_of")}, meta


def attribution(catalog, provider, user_id, portfolio_id=None, *, date=None, group_by="position") -> dict:
    """One day's P&L attribution: each position's instrument price at the session's close
    against the previous session's close (the book as it stands now, priced at both dates)."""
    if group_by not in GROUP_BY:
        raise RiskInputError("groupBy", f"expected one of {GROUP_BY}, got {group_by!r}")
    pid = default_portfolio_id(catalog, user_id, portfolio_id)
    day = session_date(date or dt.date.today())
    previous = calendar.previous_session(day).date()
    today_book = get_priced_book(catalog, provider, user_id, pid, as_of=day)
    prev_book = get_priced_book(catalog, provider, user_id, pid, as_of=previous)
    now = today_book.positions.set_index("position_id")
    before = prev_book.positions.set_index("position_id")["price"]
    frame = pd.DataFrame({
        "position_id": now.index.astype(str),
        "symbol": now["symbol"].to_numpy(),
        "position_type": now["type"].to_numpy(),
        "quantity": now["quantity"].to_numpy(),
        "multiplier": now["multiplier"].to_numpy(),
        "previous_price": before.reindex(now.index).to_numpy(),
        "price": now["price"].to_numpy(),
        "tags": now["tags"].to_numpy() if "tags" in now.columns else [[] for _ in range(len(now))],
    })
    result = pnl_attribution(frame, group_by, day)
    result["previous_date"] = str(previous)
    result["equity"] = float(today_book.equity)
    return result


def snapshot_record(book, previous_book=None) -> dict:
    """The daily snapshot (compute.attribution.daily_snapshot) of a priced book."""
    positions = book.positions
    frame = pd.DataFrame({
        "position_id": positions["position_id"].astype(str),
        "position_type": positions["type"].astype(str),
        "quantity": positions["quantity"],
        "multiplier": positions["multiplier"],
        "price": positions["price"],
        "underlying_price": positions["underlying_price"],
    })
    if previous_book is not None:
        prev = previous_book.positions.set_index(previous_book.positions["position_id"].astype(str))["price"]
        frame["previous_price"] = prev.reindex(frame["position_id"]).to_numpy()
    greeks = positions.set_index(positions["position_id"].astype(str))
    # The book's position Greeks (stocks: delta = shares, other Greeks 0; expired options 0).
    greek_cols = {"position_delta": "delta", "position_gamma": "gamma", "position_theta": "theta",
                  "position_vega": "vega", "position_rho": "rho"}
    greek_table = greeks[list(greek_cols)].rename(columns=greek_cols).apply(pd.to_numeric, errors="coerce")
    return daily_snapshot(frame, greek_table, float(book.cash), book_as_of(book))


def timeline(catalog, provider, user_id, portfolio_id=None, *, start=None, end=None, progress=None) -> dict:
    """Daily history between ``start`` and ``end``: stored snapshots where the batch wrote
    them (``source: snapshot``), otherwise the current holdings priced at that session's
    close (``source: reconstructed``)."""
    pid = default_portfolio_id(catalog, user_id, portfolio_id)
    end_day = session_date(end or dt.date.today())
    start_day = dt.date.fromisoformat(str(start)) if start else end_day - dt.timedelta(days=30)
    if start_day > end_day:
        raise RiskInputError("start", "must be on or before end")
    days = [d.date() for d in calendar.sessions(start_day, end_day).index]
    with catalog.session() as s:
        stored = {
            row.as_of: row.data
            for row in s.scalars(
                select(Snapshot).where(Snapshot.portfolio_id == pid, Snapshot.as_of >= start_day, Snapshot.as_of <= end_day)
            )
        }
    points = []
    previous_book = None
    for i, day in enumerate(days):
        if day in stored:
            point = dict(stored[day], source="snapshot")
            previous_book = None
        else:
            book = get_priced_book(catalog, provider, user_id, pid, as_of=day)
            if previous_book is None and i == 0:
                previous_book = get_priced_book(catalog, provider, user_id, pid, as_of=calendar.previous_session(day).date())
            point = dict(snapshot_record(book, previous_book), source="reconstructed")
            previous_book = book
        point["date"] = str(day)
        points.append(point)
        if progress is not None:
            progress((i + 1) / max(len(days), 1), f"{i + 1}/{len(days)} sessions")
    equities = [p["equity"] for p in points if p.get("equity") is not None]
    summary = {
        "sessions": len(points),
        "start_equity": equities[0] if equities else None,
        "end_equity": equities[-1] if equities else None,
        "total_return": (equities[-1] / equities[0] - 1.0) if len(equities) >= 2 and equities[0] > 0 else None,
        "max_drawdown": finite_or_none(stats.max_drawdown(np.diff(equities) / np.asarray(equities[:-1])))
        if len(equities) >= 3 else None,
        "stored_snapshots": sum(1 for p in points if p["source"] == "snapshot"),
    }
    return {"portfolio_id": pid, "start": str(start_day), "end": str(end_day), "points": points, "summary": summary}


def scenario_template_list() -> list[dict]:
    return scenario_templates()
