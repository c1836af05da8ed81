"""Stress scenarios: factor-return shock templates and full revaluation of a position book.

A scenario is a set of instantaneous factor shocks (Market -0.10, Value +0.20, ...). Each
underlying moves by sum_f beta_f x shock_f, using the factor model's betas (style shocks apply
to the style *spread* factor, which is what the style betas are estimated on). Stocks move
linearly; options are repriced with full Black-Scholes-Merton at the shocked spot (not a delta
or delta-gamma approximation). A factor the scenario names but the model has no betas for
(Interest Rate and Oil unless rate/oil proxy betas are supplied) contributes 0 and is reported
as a warning, never replaced by an invented sensitivity.

The position book (:class:`PositionBook`) and :func:`revalue_pnl` are shared with the Monte
Carlo VaR in :mod:`compute.var`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from compute.factors import MARKET_FACTOR
from compute.greeks import bsm_price
from compute.instruments import OPTION_MULTIPLIER, PositionType
from compute.limits import MAX_ABS_SHOCK

POSITION_TYPES = tuple(t.value for t in PositionType)
OPTION_TYPES = frozenset(t.value for t in PositionType if t.is_option)
CALL_TYPES = frozenset(t.value for t in PositionType if t.is_call)
TRADING_DAYS_PER_YEAR = 252.0

# Scenario factor name -> factor model column it shocks. Style shocks hit the spread factors.
SCENARIO_FACTORS: dict[str, str] = {
    "Market": MARKET_FACTOR,
    "Value": "Value",
    "Growth": "Growth",
    "Momentum": "Momentum",
    "Quality": "Quality",
    "Size": "Size",
    "Low Volatility": "Low Volatility",
    "Interest Rate": "Interest Rate",
    "Oil": "Oil",
}
# Spec-style parameter names (``spy_change``, ``rate_change``, ...) accepted for custom shocks.
PARAMETER_ALIASES: dict[str, str] = {
    "spy_change": "Market",
    "market_change": "Market",
    "value_change": "Value",
    "growth_change": "Growth",
    "momentum_change": "Momentum",
    "quality_change": "Quality",
    "size_change": "Size",
    "low_volatility_change": "Low Volatility",
    "rate_change": "Interest Rate",
    "interest_rate_change": "Interest Rate",
    "oil_change": "Oil",
}
_PARAMETER_NAME = {
    "Market": "spy_change",
    "Value": "value_change",
    "Growth": "growth_change",
    "Momentum": "momentum_change",
    "Quality": "quality_change",
    "Size": "size_change",
    "Low Volatility": "low_volatility_change",
    "Interest Rate": "rate_change",
    "Oil": "oil_change",
}
# Equity-return factors cannot fall by more than 100 %; rate shocks are absolute changes.
_RETURN_FACTORS = frozenset(SCENARIO_FACTORS) - {"Interest Rate"}


@dataclass(frozen=True)
class Scenario:
    """A named set of factor shocks (scenario factor name -> shock, decimals)."""

    id: str
    name: str
    shocks: Mapping[str, float]

    def to_dict(self) -> dict:
        """JSON-ready template: id, name, shocks by factor and spec-style ``parameters``."""
        return {
            "id": self.id,
            "name": self.name,
            "shocks": dict(self.shocks),
            "parameters": {_PARAMETER_NAME[f]: v for f, v in self.shocks.items()},
        }


SCENARIO_TEMPLATES: tuple[Scenario, ...] = (
    Scenario("market_up_10", "Market Up 10%", {"Market": 0.10}),
    Scenario("market_down_10", "Market Down 10%", {"Market": -0.10}),
    Scenario("market_crash_35", "Market Crash 35%", {"Market": -0.35}),
    Scenario("market_rally_25", "Market Rally 25%", {"Market": 0.25}),
    Scenario("rates_up_25bp", "Rates Up 25bp", {"Interest Rate": 0.0025}),
    Scenario("rates_down_25bp", "Rates Down 25bp", {"Interest Rate": -0.0025}),
    Scenario("rates_up_100bp", "Rates Up 100bp", {"Interest Rate": 0.01}),
    Scenario("rates_down_100bp", "Rates Down 100bp", {"Interest Rate": -0.01}),
    Scenario("rates_spike_300bp", "Rates Spike 300bp", {"Interest Rate": 0.03}),
    Scenario("oil_up_5", "Oil Up 5%", {"Oil": 0.05}),
    Scenario("value_rotation_20", "Value Rotation 20%", {"Value": 0.20, "Growth": -0.10}),
    Scenario("growth_rally_15", "Growth Rally 15%", {"Growth": 0.15, "Momentum": 0.10}),
    Scenario("small_cap_10", "Small Cap Outperformance 10%", {"Size": 0.10}),
    Scenario("quality_flight_12", "Flight to Quality 12%", {"Quality": 0.12, "Market": -0.05}),
    Scenario("vix_spike_150", "VIX Spike 150%", {"Low Volatility": -0.25, "Market": -0.15}),
    Scenario(
        "liquidity_crisis",
        "Liquidity Crisis",
        {"Market": -0.20, "Low Volatility": -0.30, "Quality": 0.15, "Size": -0.10},
    ),
    Scenario(
        "hist_2008",
        "2008 Financial Crisis",
        {"Market": -0.45, "Value": -0.30, "Size": -0.25, "Quality": 0.20, "Low Volatility": -0.35},
    ),
    Scenario(
        "hist_covid_2020",
        "COVID-19 Crash 2020",
        {"Market": -0.35, "Growth": 0.15, "Value": -0.40, "Size": -0.30, "Quality": 0.10},
    ),
    Scenario(
        "hist_dotcom",
        "Dot-com Bust 2000-2002",
        {"Market": -0.45, "Growth": -0.60, "Value": 0.20, "Momentum": -0.50, "Quality": 0.15},
    ),
)
TEMPLATES_BY_ID: dict[str, Scenario] = {s.id: s for s in SCENARIO_TEMPLATES}


def scenario_templates() -> list[dict]:
    """The stress templates as JSON-ready dicts (for ``GET /risk/scenarios/templates``)."""
    return [s.to_dict() for s in SCENARIO_TEMPLATES]


def validate_shocks(shocks: Mapping[str, object]) -> dict[str, float]:
    """Canonical ``{scenario factor: shock}`` from user input.

    Keys may be scenario factor names (``"Market"``, ``"Low Volatility"``, case-insensitive)
    or spec parameter names (``"spy_change"``, ``"rate_change"``, ...). Raises ValueError
    naming the offending field for an unknown factor, a non-numeric or non-finite value, a
    return shock at or below -100 %, a factor given twice, or an empty set of shocks.
    """
    if not isinstance(shocks, Mapping) or not shocks:
        raise ValueError("shocks: expected a non-empty mapping of factor name to shock")
    by_lower = {name.lower(): name for name in SCENARIO_FACTORS}
    canonical: dict[str, float] = {}
    for key, value in shocks.items():
        name = str(key)
        factor = PARAMETER_ALIASES.get(name.lower()) or by_lower.get(name.lower())
        if factor is None:
            raise ValueError(
                f"shocks.{name}: unknown factor; expected one of {sorted(SCENARIO_FACTORS)} "
                f"or {sorted(PARAMETER_ALIASES)}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise ValueError(f"shocks.{name}: shock must be a number, got {value!r}")
        shock = float(value)
        if not math.isfinite(shock):
            raise ValueError(f"shocks.{name}: shock must be finite")
        if abs(shock) > MAX_ABS_SHOCK:
            raise ValueError(f"shocks.{name}: |shock| must be at most {MAX_ABS_SHOCK:g} ({MAX_ABS_SHOCK:.0%})")
        if factor in _RETURN_FACTORS and shock <= -1.0:
            raise ValueError(f"shocks.{name}: a return shock must be greater than -1 (-100 %)")
        if factor in canonical:
            raise ValueError(f"shocks.{name}: factor {factor} given more than once")
        canonical[factor] = shock
    return canonical


def resolve_scenarios(
    scenario_ids: Sequence[str] = (), custom: Mapping[str, object] | None = None
) -> list[Scenario]:
    """Templates by id plus an optional custom scenario ``{"name", "parameters"|"shocks"}``.

    Unknown template ids raise ValueError naming them; custom shocks go through
    :func:`validate_shocks`.
    """
    unknown = [i for i in scenario_ids if i not in TEMPLATES_BY_ID]
    if unknown:
        raise ValueError(f"scenario_ids: unknown template ids {unknown}")
    scenarios = [TEMPLATES_BY_ID[i] for i in scenario_ids]
    if custom is not None:
        raw = custom.get("shocks", custom.get("parameters"))
        if raw is None:
            raise ValueError("custom_scenario.parameters: required")
        name = str(custom.get("name") or "Custom scenario")
        scenarios.append(Scenario(str(custom.get("id", "custom")), name, validate_shocks(raw)))
    if not scenarios:
        raise ValueError("scenario_ids: give at least one template id or a custom_scenario")
    return scenarios


@dataclass(frozen=True)
class PositionBook:
    """A portfolio as aligned float arrays (one entry per position), for revaluation.

    Built by :func:`position_book` from a positions DataFrame with columns:
    ``position_id``, ``symbol``, ``underlying``, ``position_type`` (LONG, SHORT, LC, LP, SC,
    SP), ``quantity`` (signed shares or contracts), ``underlying_price`` (spot), and for
    options ``strike``, ``time_to_expiry`` (years), ``volatility`` (implied, decimal), and
    optionally ``risk_free_rate``, ``dividend_yield`` (decimals, default 0), ``multiplier``
    (default 100 for options, 1 for stocks), ``tags`` (list of names).
    """

    position_id: np.ndarray
    symbol: np.ndarray
    position_type: np.ndarray
    underlying: np.ndarray
    underlyings: tuple[str, ...]
    underlying_index: np.ndarray
    quantity: np.ndarray
    multiplier: np.ndarray
    spot: np.ndarray
    strike: np.ndarray
    time_to_expiry: np.ndarray
    volatility: np.ndarray
    risk_free_rate: np.ndarray
    dividend_yield: np.ndarray
    is_option: np.ndarray
    is_call: np.ndarray
    tags: tuple = field(default=())

    def __len__(self) -> int:
        return len(self.position_id)

    def option_value(self, spot: np.ndarray, time_to_expiry: np.ndarray) -> np.ndarray:
        """BSM value per share of each option position at the given spots / times (broadcast).

        ``spot`` and ``time_to_expiry`` have trailing axis = option positions.
        """
        idx = self.is_option
        return bsm_price(
            spot,
            self.strike[idx],
            time_to_expiry,
            self.risk_free_rate[idx],
            self.dividend_yield[idx],
            self.volatility[idx],
            self.is_call[idx],
        )


def _column(df: pd.DataFrame, name: str, default: float | None = None) -> np.ndarray:
    if name in df.columns:
        values = pd.to_numeric(df[name], errors="coerce").to_numpy(np.float64)
        if default is not None:
            values = np.where(np.isnan(values), default, values)
        return values
    if default is None:
        raise ValueError(f"positions: column {name!r} is required")
    return np.full(len(df), float(default))


def position_book(positions: pd.DataFrame) -> PositionBook:
    """Validate a positions DataFrame and turn it into a :class:`PositionBook`."""
    for col in ("position_id", "underlying", "position_type", "quantity", "underlying_price"):
        if col not in positions.columns:
            raise ValueError(f"positions: column {col!r} is required")
    ptype = positions["position_type"].astype(str).str.upper().to_numpy()
    bad = sorted(set(ptype) - set(POSITION_TYPES))
    if bad:
        raise ValueError(f"positions.position_type: unknown types {bad}")
    is_option = np.isin(ptype, list(OPTION_TYPES))
    is_call = np.isin(ptype, list(CALL_TYPES))
    n = len(positions)
    option_default = np.where(is_option, OPTION_MULTIPLIER, 1.0)
    if "multiplier" in positions.columns:
        multiplier = pd.to_numeric(positions["multiplier"], errors="coerce").to_numpy(np.float64)
        multiplier = np.where(np.isnan(multiplier), option_default, multiplier)
    else:
        multiplier = option_default
    strike = _column(positions, "strike", np.nan) if "strike" in positions.columns else np.full(n, np.nan)
    expiry = (
        _column(positions, "time_to_expiry", np.nan)
        if "time_to_expiry" in positions.columns
        else np.full(n, np.nan)
    )
    vol = _column(positions, "volatility", np.nan) if "volatility" in positions.columns else np.full(n, np.nan)
    if is_option.any():
        for name, arr in (("strike", strike), ("time_to_expiry", expiry), ("volatility", vol)):
            if np.isnan(arr[is_option]).any():
                raise ValueError(f"positions.{name}: required for every option position")
    underlying = positions["underlying"].astype(str).to_numpy()
    underlyings = tuple(dict.fromkeys(underlying))
    lookup = {u: i for i, u in enumerate(underlyings)}
    tags = tuple(positions["tags"]) if "tags" in positions.columns else tuple([] for _ in range(n))
    symbol = positions["symbol"].astype(str).to_numpy() if "symbol" in positions.columns else underlying
    return PositionBook(
        position_id=positions["position_id"].astype(str).to_numpy(),
        symbol=symbol,
        position_type=ptype,
        underlying=underlying,
        underlyings=underlyings,
        underlying_index=np.array([lookup[u] for u in underlying], dtype=np.int64),
        quantity=_column(positions, "quantity"),
        multiplier=multiplier,
        spot=_column(positions, "underlying_price"),
        strike=strike,
        time_to_expiry=expiry,
        volatility=vol,
        risk_free_rate=_column(positions, "risk_free_rate", 0.0),
        dividend_yield=_column(positions, "dividend_yield", 0.0),
        is_option=is_option,
        is_call=is_call,
        tags=tags,
    )


def revalue_pnl(
    book: PositionBook, underlying_returns: np.ndarray, horizon_years: float = 0.0
) -> np.ndarray:
    """P&L per position in dollars for underlying moves ``underlying_returns``.

    ``underlying_returns`` has shape (..., n_underlyings) (simple returns, in the order of
    ``book.underlyings``); the result has shape (..., n_positions). Stocks:
    quantity x multiplier x spot x return. Options: quantity x multiplier x
    (BSM(spot x (1 + return), T - horizon) - BSM(spot, T)), so the base is the model value
    and only the shock's effect (plus time decay over the horizon) is counted. A move below
    -100 % is floored at a spot of (almost) zero.
    """
    moves = np.asarray(underlying_returns, dtype=np.float64)[..., book.underlying_index]
    moves = np.maximum(moves, -1.0)
    pnl = book.quantity * book.multiplier * book.spot * moves
    if book.is_option.any():
        idx = book.is_option
        base = book.option_value(book.spot[idx], book.time_to_expiry[idx])
        # bsm_price wants S > 0: a total wipe-out is priced at a negligible positive spot
        shocked_spot = np.maximum(book.spot[idx] * (1.0 + moves[..., idx]), 1e-12 * book.spot[idx])
        remaining = np.maximum(book.time_to_expiry[idx] - horizon_years, 0.0)
        shocked = book.option_value(shocked_spot, np.broadcast_to(remaining, shocked_spot.shape))
        pnl[..., idx] = book.quantity[idx] * book.multiplier[idx] * (shocked - base)
    return pnl


def underlying_shock_returns(
    underlyings: Sequence[str], betas: pd.DataFrame, shocks: Mapping[str, float]
) -> tuple[np.ndarray, list[str], list[str]]:
    """Scenario return of each underlying: sum_f beta_f x shock_f.

    Returns (returns array aligned with ``underlyings``, warnings, underlyings without betas).
    A shocked factor missing from ``betas`` adds 0 with a warning; an underlying with no (or
    NaN) betas for a shocked factor that the model does have moves 0, is listed, and warned.
    """
    warnings: list[str] = []
    model = betas.reindex(list(underlyings))
    moves = np.zeros(len(underlyings))
    unmodelled: set[str] = set()
    for factor, shock in shocks.items():
        column = SCENARIO_FACTORS[factor]
        if column not in betas.columns:
            warnings.append(
                f"factor '{factor}' is not in the factor model (no proxy betas); "
                f"its shock of {shock:+g} contributes 0"
            )
            continue
        beta = model[column].to_numpy(np.float64)
        missing = np.isnan(beta)
        unmodelled.update(np.asarray(underlyings, dtype=object)[missing])
        moves += np.where(missing, 0.0, beta) * shock
    without = sorted(unmodelled)
    if without:
        warnings.append(
            f"no factor betas (limited history) for {without}: these underlyings are not moved"
        )
    return moves, warnings, without


def run_scenarios(
    positions: pd.DataFrame | PositionBook,
    betas: pd.DataFrame,
    scenarios: Sequence[Scenario],
    equity: float,
    worst_n: int = 5,
) -> list[dict]:
    """Run stress scenarios over a portfolio with full revaluation.

    ``positions``: DataFrame as :func:`position_book` expects (or a book). ``betas``:
    underlying x factor-model column (e.g. ``FactorRegression.betas``, optionally with extra
    ``Interest Rate`` / ``Oil`` columns whose betas are return per unit of that shock).
    ``equity``: portfolio equity for the percentage.

    One dict per scenario: ``id``, ``name``, ``shocks``, ``pnl`` ($), ``pnl_percent`` (percent
    of equity, 1.5 = 1.5 %), ``by_type`` (LONG/SHORT/LC/LP/SC/SP -> $, only types present),
    ``worst_positions`` (``worst_n`` lowest P&L: position_id, symbol, position_type, pnl),
    ``positions_unmoved`` (ids of positions whose underlying has no betas) and ``warnings``.
    """
    book = positions if isinstance(positions, PositionBook) else position_book(positions)
    if not math.isfinite(equity) or equity == 0:
        raise ValueError("equity must be a finite non-zero number")
    results = []
    for scenario in scenarios:
        shocks = validate_shocks(scenario.shocks)
        moves, warnings, without = underlying_shock_returns(book.underlyings, betas, shocks)
        pnl = revalue_pnl(book, moves)
        total = float(np.nansum(pnl))
        by_type = {
            t: float(np.nansum(pnl[book.position_type == t]))
            for t in POSITION_TYPES
            if (book.position_type == t).any()
        }
        order = np.argsort(pnl, kind="stable")[: max(int(worst_n), 0)]
        worst = [
            {
                "position_id": str(book.position_id[i]),
                "symbol": str(book.symbol[i]),
                "position_type": str(book.position_type[i]),
                "pnl": float(pnl[i]),
            }
            for i in order
            if pnl[i] < 0
        ]
        unmoved = [str(p) for p, u in zip(book.position_id, book.underlying) if u in set(without)]
        results.append(
            {
                "id": scenario.id,
                "name": scenario.name,
                "shocks": shocks,
                "pnl": total,
                "pnl_percent": total / equity * 100.0,
                "by_type": by_type,
                "worst_positions": worst,
                "positions_unmoved": unmoved,
                "warnings": warnings,
            }
        )
    return results
