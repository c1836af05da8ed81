"""Lab packs and templates as data: instruments, cadence, labels, indicators, policies.

A *pack* fixes what a model trades and predicts (instrument kind, bar cadence, session hours,
label, default indicator set, trainer defaults, per-risk-profile costs and gates, sweep
defaults, post-gate ranking). A *template* is a named starting configuration inside a pack
(``<pack>_default``) holding the default ticker. Users create models from a template with a
config override, validated by ``compute.pack_config.validate_template_config``.

Policies chosen here beyond docs/spec/design.md "Gates" (documented so they can be argued with):

- Costs: one-way fees and slippage in basis points of traded notional (of the option premium
  for options packs). Conservative assumes the worst fills, Aggressive the best.
- momentumsigma (hourly equities): max DD 15/20/25 %, Sharpe >= 1.2/1.0/0.8, trades per year
  >= 100/75/50 (an hourly strategy that rarely trades is not a momentum strategy).
- overnightsigma (close-to-open): max DD 15/20/25 %, Sharpe >= 1.0/0.8/0.6, trades per year
  >= 100/75/50 (it can trade every night; few trades means the signal is mostly idle).
- zerosigma: besides DESIGN's drawdown and allowed hours, Sharpe >= 1.0/0.8/0.6 and trades
  per year >= 50/40/30 so that a handful of lucky days cannot pass.
- longsigma: DESIGN's Calmar and drawdown only (few trades by construction).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from compute.instruments import TICKER_RE
from compute.train import TrainConfig

RISK_PROFILES = ("Conservative", "Balanced", "Aggressive")
INSTRUMENT_KINDS = ("equity", "options")
CADENCES = ("daily", "hourly")
LABEL_KINDS = ("next_bar_direction", "forward_return_sign", "close_to_open_sign")

VARIANT_RE = re.compile(r"^[a-z0-9][a-z0-9\-]{0,31}$")
MODEL_ID_RE = re.compile(
    r"^(?P<ticker>[A-Z][A-Z0-9.\-]{0,9})_(?P<instrument>equity|options)_"
    r"(?P<horizon>\d+[dh]|overnight)_(?P<cadence>daily|hourly|intraday)"
    r"(?:_(?P<variant>[a-z0-9][a-z0-9\-]{0,31}))?$"
)


@dataclass(frozen=True)
class SessionHours:
    """Regular session in America/New_York local time, "HH:MM" strings; bars outside dropped."""

    open: str = "09:30"
    close: str = "16:00"
    timezone: str = "America/New_York"


@dataclass(frozen=True)
class LabelDef:
    """How a pack's label is computed from bars (see ``compute.features`` for the formulas).

    - ``next_bar_direction``: r = close[t+1] / close[t] - 1; UP (1) if r > band x sd,
      DOWN (-1) if r < -band x sd, else FLAT (0); sd = trailing std (ddof=1) of 1-bar simple
      returns over ``band_window`` bars ending at t (known at t, so the band leaks nothing).
    - ``forward_return_sign``: r = close[t+h] / close[t] - 1 with band as a plain return.
    - ``close_to_open_sign``: r = open[t+1] / close[t] - 1 with band as a plain return.

    ``band_units`` is "sd" or "return". ``within_session`` makes a label that would cross into
    the next session NaN (0DTE options expire at the close).
    """

    kind: str
    horizon_bars: int
    band: float
    band_units: str = "return"
    band_window: int = 20
    within_session: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GateThresholds:
    """Pass/fail thresholds of one risk profile; None means the check does not apply.

    ``max_drawdown`` is a positive fraction (0.20 = a 20 % peak-to-trough loss is the limit).
    ``allowed_hours`` are America/New_York bar-start hours a strategy may trade in.
    """

    max_drawdown: float | None = None
    min_sharpe: float | None = None
    min_trades_per_year: float | None = None
    min_calmar: float | None = None
    allowed_hours: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["allowed_hours"] is not None:
            d["allowed_hours"] = list(d["allowed_hours"])
        return d


@dataclass(frozen=True)
class RiskPolicy:
    """Costs (one-way, basis points of traded notional) and gate of one risk profile."""

    risk_profile: str
    fees_bps: float
    slippage_bps: float
    gate: GateThresholds

    def to_dict(self) -> dict[str, Any]:
        return {"risk_profile": self.risk_profile, "fees_bps": self.fees_bps,
                "slippage_bps": self.slippage_bps, "gate": self.gate.to_dict()}


#: A pack's trainer defaults are a trainer config: one definition of the settings and their
#: defaults (``compute.train.TrainConfig``), not a copy kept in step by hand.
TrainerDefaults = TrainConfig


@dataclass(frozen=True)
class SweepDefaults:
    """Default sweep grid. ``top_pct`` is a fraction (0.10 = top 10 % of scores)."""

    thresholds: tuple[float, ...]
    top_pct: tuple[float, ...]
    allowed_hours: tuple[tuple[int, ...], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"thresholds": list(self.thresholds), "top_pct": list(self.top_pct),
                "allowed_hours": None if self.allowed_hours is None
                else [list(h) for h in self.allowed_hours]}


@dataclass(frozen=True)
class Ranking:
    """Post-gate ranking score: a formula name, its text and its constants."""

    name: str
    formula: str
    params: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "formula": self.formula, "params": dict(self.params)}


RANK_0DTE = Ranking("sortino_trades_dd_foldstd",
                    "sortino * sqrt(trades / 100) - 0.5 * max_drawdown - 0.2 * std(fold_sharpe)",
                    (("trades_norm", 100.0), ("dd_weight", 0.5), ("fold_std_weight", 0.2)))
RANK_SWING = Ranking("sharpe_trades_dd",
                     "sharpe * sqrt(trades / trades_norm) - 0.3 * max_drawdown",
                     (("trades_norm", 100.0), ("dd_weight", 0.3)))
RANK_CALMAR = Ranking("calmar", "calmar")


@dataclass(frozen=True)
class Pack:
    """A Lab pack (see module docstring). ``default_features`` are ``compute.features`` names."""

    pack_id: str
    name: str
    description: str
    instrument: str
    cadence: str
    model_cadence: str  # cadence token in model ids: daily | hourly | intraday
    horizon: str  # horizon token in model ids: 5d, 63d, 0d, 1h, overnight
    session: SessionHours
    label: LabelDef
    default_features: tuple[str, ...]
    trainer: TrainerDefaults
    policies: tuple[RiskPolicy, ...]
    sweep: SweepDefaults
    ranking: Ranking
    default_ticker: str

    def policy(self, risk_profile: str) -> RiskPolicy:
        for p in self.policies:
            if p.risk_profile == risk_profile:
                return p
        raise ValueError(f"unknown risk_profile {risk_profile!r}; expected one of {RISK_PROFILES}")

    @property
    def default_template_id(self) -> str:
        return f"{self.pack_id}_default"

    def to_dict(self) -> dict[str, Any]:
        return {
            "pack_id": self.pack_id, "name": self.name, "description": self.description,
            "instrument": self.instrument, "cadence": self.cadence,
            "model_cadence": self.model_cadence, "horizon": self.horizon,
            "session": dataclasses.asdict(self.session), "label": self.label.to_dict(),
            "default_features": list(self.default_features), "trainer": self.trainer.to_dict(),
            "policies": {p.risk_profile: p.to_dict() for p in self.policies},
            "sweep": self.sweep.to_dict(), "ranking": self.ranking.to_dict(),
            "default_ticker": self.default_ticker,
            "default_template_id": self.default_template_id,
        }


@dataclass(frozen=True)
class Template:
    """A named starting configuration of a pack."""

    template_id: str
    pack_id: str
    name: str
    description: str
    ticker: str
    features: tuple[str, ...]
    risk_profile: str = "Balanced"
    trainer: TrainerDefaults = field(default_factory=TrainerDefaults)

    @property
    def pack(self) -> Pack:
        return get_pack(self.pack_id)

    def default_config(self) -> dict[str, Any]:
        """The config a model created from this template starts with."""
        return {"ticker": self.ticker, "indicators": list(self.features),
                "risk_profile": self.risk_profile, "trainer": self.trainer.to_dict()}

    def to_dict(self) -> dict[str, Any]:
        pack = self.pack
        return {"template_id": self.template_id, "pack_id": self.pack_id, "name": self.name,
                "description": self.description, "ticker": self.ticker,
                "cadence": pack.cadence, "instrument": pack.instrument,
                "horizon": pack.horizon, "label": pack.label.to_dict(),
                "indicators": list(self.features), "risk_profile": self.risk_profile,
                "trainer": self.trainer.to_dict(),
                "policies": {p.risk_profile: p.to_dict() for p in pack.policies},
                "model_id_example": model_id(self.ticker, pack)}


def _policies(fees, slippage, gates) -> tuple[RiskPolicy, ...]:
    return tuple(RiskPolicy(rp, fees[i], slippage[i], gates[i]) for i, rp in enumerate(RISK_PROFILES))


_PACKS: dict[str, Pack] = {}


def _register(pack: Pack) -> None:
    _PACKS[pack.pack_id] = pack


_register(Pack(
    pack_id="zerosigma", name="ZeroSigma 0DTE",
    description="Same-day-expiry SPY options driven by an hourly direction model.",
    instrument="options", cadence="hourly", model_cadence="intraday", horizon="0d",
    session=SessionHours(),
    label=LabelDef("next_bar_direction", 1, 0.3, "sd", 20, within_session=True),
    default_features=("RSI14", "EMA10", "EMA20", "MACD12_26_9", "ATR14", "VOL20", "BB20_2",
                      "OBV", "CMF20", "VWAP", "RVIV20", "hour", "weekday"),
    trainer=TrainerDefaults(model="logistic", learning_rate=0.01, epochs=30, batch_size=128),
    policies=_policies(
        fees=(10.0, 10.0, 10.0), slippage=(50.0, 35.0, 25.0),
        gates=(GateThresholds(0.15, 1.0, 50, None, (13, 14, 15)),
               GateThresholds(0.20, 0.8, 40, None, (13, 14, 15)),
               GateThresholds(0.25, 0.6, 30, None, (12, 13, 14, 15)))),
    sweep=SweepDefaults((0.50, 0.52, 0.54, 0.55, 0.60, 0.65), (0.10, 0.15), ((13, 14, 15),)),
    ranking=RANK_0DTE, default_ticker="SPY",
))

_register(Pack(
    pack_id="swingsigma", name="SwingSigma",
    description="Daily equity swing trades on the forward 5-day return.",
    instrument="equity", cadence="daily", model_cadence="daily", horizon="5d",
    session=SessionHours(),
    label=LabelDef("forward_return_sign", 5, 0.001, "return"),
    default_features=("RSI14", "EMA20", "EMA50", "MACD12_26_9", "ADX14", "ATR14", "KC20_2",
                      "OBV", "CMF20", "SMA50", "SMA200", "MOMSCORE"),
    trainer=TrainerDefaults(model="logistic", learning_rate=0.01, epochs=50, batch_size=64),
    policies=_policies(
        fees=(1.0, 1.0, 1.0), slippage=(5.0, 3.0, 2.0),
        gates=(GateThresholds(0.20, 1.2, 40), GateThresholds(0.25, 1.0, 30),
               GateThresholds(0.30, 0.8, 25))),
    sweep=SweepDefaults((0.50, 0.55, 0.60, 0.65, 0.70), (0.10, 0.20)),
    ranking=RANK_SWING, default_ticker="AAPL",
))

_register(Pack(
    pack_id="longsigma", name="LongSigma",
    description="Daily equity position trades on the forward 63-day (quarter) return.",
    instrument="equity", cadence="daily", model_cadence="daily", horizon="63d",
    session=SessionHours(),
    label=LabelDef("forward_return_sign", 63, 0.0, "return"),
    default_features=("SMA50", "SMA200", "EMA50", "MACD12_26_9", "ADX14", "RSI14", "MOMSCORE",
                      "RET21", "RET63", "RET126", "VOL63"),
    trainer=TrainerDefaults(model="logistic", learning_rate=0.01, epochs=50, batch_size=64,
                            l2=1e-2),
    policies=_policies(
        fees=(1.0, 1.0, 1.0), slippage=(5.0, 3.0, 2.0),
        gates=(GateThresholds(0.30, None, None, 0.8), GateThresholds(0.35, None, None, 0.6),
               GateThresholds(0.40, None, None, 0.4))),
    sweep=SweepDefaults((0.50, 0.55, 0.60, 0.65), (0.20, 0.30)),
    ranking=RANK_CALMAR, default_ticker="SPY",
))

_register(Pack(
    pack_id="momentumsigma", name="MomentumSigma",
    description="Hourly equity momentum on the next bar's direction.",
    instrument="equity", cadence="hourly", model_cadence="hourly", horizon="1h",
    session=SessionHours(),
    label=LabelDef("next_bar_direction", 1, 0.3, "sd", 20),
    default_features=("MOMSCORE", "RSI14", "RET1", "RET3", "RET7", "EMA10", "EMA20",
                      "MACD12_26_9", "ADX14", "VOL20", "VWAP", "hour", "weekday"),
    trainer=TrainerDefaults(model="logistic", learning_rate=0.01, epochs=30, batch_size=128),
    policies=_policies(
        fees=(1.0, 1.0, 1.0), slippage=(5.0, 3.0, 2.0),
        gates=(GateThresholds(0.15, 1.2, 100), GateThresholds(0.20, 1.0, 75),
               GateThresholds(0.25, 0.8, 50))),
    sweep=SweepDefaults((0.50, 0.52, 0.55, 0.60, 0.65), (0.10, 0.15),
                        ((10, 11, 12, 13, 14, 15), (13, 14, 15))),
    ranking=RANK_SWING, default_ticker="QQQ",
))

_register(Pack(
    pack_id="overnightsigma", name="OvernightSigma",
    description="Daily equity overnight holds: buy the close, sell the next open.",
    instrument="equity", cadence="daily", model_cadence="daily", horizon="overnight",
    session=SessionHours(),
    label=LabelDef("close_to_open_sign", 1, 0.0005, "return"),
    default_features=("GAP", "RET1", "RET5", "VOL5", "VOL20", "ATR14", "BB20_2", "RSI14",
                      "weekday"),
    trainer=TrainerDefaults(model="logistic", learning_rate=0.01, epochs=50, batch_size=64),
    policies=_policies(
        fees=(1.0, 1.0, 1.0), slippage=(3.0, 2.0, 1.0),
        gates=(GateThresholds(0.15, 1.0, 100), GateThresholds(0.20, 0.8, 75),
               GateThresholds(0.25, 0.6, 50))),
    sweep=SweepDefaults((0.50, 0.52, 0.55, 0.60), (0.10, 0.20)),
    ranking=RANK_SWING, default_ticker="SPY",
))


_TEMPLATES: dict[str, Template] = {}
for _p in _PACKS.values():
    _TEMPLATES[_p.default_template_id] = Template(
        template_id=_p.default_template_id, pack_id=_p.pack_id,
        name=f"{_p.name} default", description=_p.description, ticker=_p.default_ticker,
        features=_p.default_features, trainer=_p.trainer)
_TEMPLATES["zerosigma_mlp"] = Template(
    template_id="zerosigma_mlp", pack_id="zerosigma", name="ZeroSigma 0DTE (MLP)",
    description="The zerosigma indicator set with a one-hidden-layer MLP.", ticker="SPY",
    features=_PACKS["zerosigma"].default_features,
    trainer=TrainerDefaults(model="mlp", learning_rate=0.005, epochs=30, batch_size=128,
                            hidden=(16,), activation="tanh"))


def list_packs() -> list[Pack]:
    """All packs, in a stable order."""
    return list(_PACKS.values())


def get_pack(pack_id: str | Pack) -> Pack:
    """The pack with this id (a Pack is returned as is); ValueError naming an unknown id."""
    if isinstance(pack_id, Pack):
        return pack_id
    try:
        return _PACKS[pack_id]
    except (KeyError, TypeError):
        raise ValueError(f"unknown pack_id {pack_id!r}; expected one of {sorted(_PACKS)}") from None


def get_template(template_id: str) -> Template:
    """The template with this id; ValueError naming an unknown id."""
    try:
        return _TEMPLATES[template_id]
    except (KeyError, TypeError):
        raise ValueError(f"unknown template_id {template_id!r}; expected one of "
                         f"{sorted(_TEMPLATES)}") from None


def templates_for(pack_id: str) -> list[Template]:
    """Templates of one pack, default first; ValueError for an unknown pack."""
    pack = get_pack(pack_id)
    out = [t for t in _TEMPLATES.values() if t.pack_id == pack.pack_id]
    out.sort(key=lambda t: (t.template_id != pack.default_template_id, t.template_id))
    return out


def model_id(ticker: str, pack: str | Pack, variant: str | None = None) -> str:
    """``<TICKER>_<equity|options>_<horizon>_<daily|hourly|intraday>[_variant]``.

    e.g. ``model_id("AAPL", "swingsigma") == "AAPL_equity_5d_daily"``,
    ``model_id("TSLA", "zerosigma") == "TSLA_options_0d_intraday"``.
    """
    p = get_pack(pack)
    if not isinstance(ticker, str) or not TICKER_RE.fullmatch(ticker):
        raise ValueError(f"invalid ticker {ticker!r}: a normalised ticker (1-10 upper-case letters, "
                         "digits or '-', e.g. BRK-B; see compute.instruments.normalize_ticker)")
    mid = f"{ticker}_{p.instrument}_{p.horizon}_{p.model_cadence}"
    if variant is not None:
        if not isinstance(variant, str) or not VARIANT_RE.match(variant):
            raise ValueError(f"invalid variant {variant!r}: lower-case letters, digits, '-'")
        mid += f"_{variant}"
    return mid


def parse_model_id(mid: str) -> dict[str, Any]:
    """Split a model id into ticker, instrument, horizon, cadence, variant and its pack_id."""
    m = MODEL_ID_RE.match(mid) if isinstance(mid, str) else None
    if m is None:
        raise ValueError(f"invalid model_id {mid!r}: expected "
                         "<TICKER>_<equity|options>_<horizon>_<daily|hourly|intraday>[_variant]")
    parts = m.groupdict()
    for p in _PACKS.values():
        if (p.instrument, p.horizon, p.model_cadence) == (
                parts["instrument"], parts["horizon"], parts["cadence"]):
            parts["pack_id"] = p.pack_id
            return parts
    raise ValueError(f"model_id {mid!r} matches no pack (instrument {parts['instrument']}, "
                     f"horizon {parts['horizon']}, cadence {parts['cadence']})")
