"""Pass/fail gates per pack and risk profile, and the post-gate ranking score.

Thresholds live in ``compute.packs`` (``Pack.policy(risk_profile).gate``), which encodes
docs/spec/design.md "Gates" (swing: max drawdown 20/25/30 %, trades per year >= 40/30/25, Sharpe >=
1.2/1.0/0.8; 0DTE: max drawdown 15/20/25 %, allowed hours within 13-15/13-15/12-15; long:
Calmar >= 0.8/0.6/0.4 with max drawdown 30/35/40 %) plus the packs' documented extras.
Ranking formulas are docs/spec/reference.md's, with the constants of ``Pack.ranking``.

Metrics use ``compute.backtest`` names: ``max_drawdown`` negative (-0.25 = 25 %), ``sharpe``,
``sortino``, ``calmar`` annualised, ``trades``, ``trades_per_year``; walk-forward results add
``fold_sharpe_std``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

from compute.packs import GateThresholds, Pack, get_pack

# Short names used by callers and the brief, mapped to pack ids.
PACK_ALIASES = {
    "swing": "swingsigma",
    "0dte": "zerosigma",
    "zerodte": "zerosigma",
    "long": "longsigma",
    "momentum": "momentumsigma",
    "overnight": "overnightsigma",
}


def resolve_pack(pack_kind: str | Pack) -> Pack:
    """Pack from a pack id (``swingsigma``) or a short kind (``swing``, ``0dte``, ``long``)."""
    if isinstance(pack_kind, Pack):
        return pack_kind
    key = str(pack_kind).strip().lower()
    return get_pack(PACK_ALIASES.get(key, key))


def gate_thresholds(pack_kind: str | Pack, risk_profile: str) -> GateThresholds:
    """The gate thresholds of a pack for a risk profile (Conservative/Balanced/Aggressive)."""
    return resolve_pack(pack_kind).policy(_profile(risk_profile)).gate


def _profile(risk_profile: str) -> str:
    return str(risk_profile).strip().capitalize()


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _limit_pct(x: float) -> str:
    return f"{100 * x:g}%"


def _hours_text(hours) -> str:
    hours = sorted(hours)
    if hours and hours == list(range(hours[0], hours[-1] + 1)):
        return f"{hours[0]}-{hours[-1]}"
    return ", ".join(str(h) for h in hours)


def _number(metrics: Mapping[str, Any], key: str) -> float:
    value = metrics.get(key)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def evaluate_gate(
    pack_kind: str | Pack,
    risk_profile: str,
    metrics: Mapping[str, Any],
    config: Optional[Mapping[str, Any] | Any] = None,
) -> dict:
    """``{"pass": bool, "reasons": [str]}``: every failed check gives one readable reason,
    e.g. "max drawdown 27.1% exceeds 25% limit". An undefined metric (NaN, missing) fails
    its check. ``config`` (dict or ``BacktestConfig``) supplies ``allowed_hours`` for packs
    whose gate restricts trading hours (None = every hour, which such a gate refuses).
    """
    gate = gate_thresholds(pack_kind, risk_profile)
    reasons: list[str] = []

    if gate.max_drawdown is not None:
        dd = abs(_number(metrics, "max_drawdown"))
        if math.isnan(dd):
            reasons.append("max drawdown undefined")
        elif dd > gate.max_drawdown:
            reasons.append(f"max drawdown {_pct(dd)} exceeds {_limit_pct(gate.max_drawdown)} limit")

    if gate.min_sharpe is not None:
        sharpe = _number(metrics, "sharpe")
        if math.isnan(sharpe):
            reasons.append("Sharpe undefined (no trades or no return variation)")
        elif sharpe < gate.min_sharpe:
            reasons.append(f"Sharpe {sharpe:.2f} below {gate.min_sharpe:g} minimum")

    if gate.min_trades_per_year is not None:
        tpy = _number(metrics, "trades_per_year")
        if math.isnan(tpy) or tpy < gate.min_trades_per_year:
            shown = "undefined" if math.isnan(tpy) else f"{tpy:.1f}"
            reasons.append(f"trades per year {shown} below {gate.min_trades_per_year:g} minimum")

    if gate.min_calmar is not None:
        calmar = _number(metrics, "calmar")
        if math.isnan(calmar):
            reasons.append("Calmar undefined (no drawdown or no history)")
        elif calmar < gate.min_calmar:
            reasons.append(f"Calmar {calmar:.2f} below {gate.min_calmar:g} minimum")

    if gate.allowed_hours is not None:
        hours = _allowed_hours(config)
        window = _hours_text(gate.allowed_hours)
        if hours is None:
            reasons.append(f"allowed hours not restricted; must lie within {window}")
        else:
            outside = sorted(set(hours) - set(gate.allowed_hours))
            if outside:
                reasons.append(f"allowed hours {', '.join(map(str, outside))} outside the {window} window")

    return {"pass": not reasons, "reasons": reasons}


def _allowed_hours(config) -> Optional[list[int]]:
    if config is None:
        return None
    if isinstance(config, Mapping):
        hours = config.get("allowed_hours")
    else:
        hours = getattr(config, "allowed_hours", None)
    return None if hours is None else [int(h) for h in hours]


def ranking_score(pack_kind: str | Pack, metrics: Mapping[str, Any]) -> float:
    """Post-gate ranking score (docs/spec/reference.md), higher is better; -inf when undefined.

    - 0DTE: sortino x sqrt(trades / 100) - 0.5 x maxDD - 0.2 x std(fold Sharpe)
    - swing-like: Sharpe x sqrt(trades / N) - 0.3 x maxDD (N = the pack's ``trades_norm``)
    - long: Calmar
    maxDD is the drawdown's magnitude as a fraction (0.12 for -12 %); std(fold Sharpe) is
    ``metrics["fold_sharpe_std"]`` (0 when absent, i.e. a single fold).
    """
    pack = resolve_pack(pack_kind)
    params = dict(pack.ranking.params)
    dd = abs(_number(metrics, "max_drawdown"))
    trades = max(_number(metrics, "trades"), 0.0)
    name = pack.ranking.name
    if name == "sortino_trades_dd_foldstd":
        fold_std = _number(metrics, "fold_sharpe_std")
        fold_std = 0.0 if math.isnan(fold_std) else fold_std
        score = (_number(metrics, "sortino") * math.sqrt(trades / params["trades_norm"])
                 - params["dd_weight"] * dd - params["fold_std_weight"] * fold_std)
    elif name == "sharpe_trades_dd":
        score = (_number(metrics, "sharpe") * math.sqrt(trades / params["trades_norm"])
                 - params["dd_weight"] * dd)
    elif name == "calmar":
        score = _number(metrics, "calmar")
    else:
        raise ValueError(f"unknown ranking {name!r}")
    return score if math.isfinite(score) else float("-inf")
