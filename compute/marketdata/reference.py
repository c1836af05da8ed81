"""Reference data and synthetic-model parameters for known tickers.

Every ticker gets a :class:`TickerProfile`: display data (name, sector, asset class, ETF flag)
and the parameters the synthetic provider draws its prices from (price level on the anchor
date, idiosyncratic daily volatility, average daily volume, dividend yield, factor loadings).
Known names (the demo portfolios of docs/spec/reference.md, the factor ETFs, a few index products) are
listed explicitly with sector-aware loadings; any other ticker gets a deterministic profile
derived from the SHA-256 of its symbol, so every ticker works and always looks the same.

Factor loadings are in the units of :mod:`compute.marketdata.factors`: return per unit
factor return for the equity factors and oil, return per unit (decimal) change of the 10-year
yield for ``rates`` (so a loading of -17 is a 17-year duration).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from compute.marketdata.factors import FACTORS, STYLE_FACTORS, STYLE_PROXIES, ticker_digest
from compute.instruments import normalize_ticker

ASSET_CLASSES = ("equity", "etf", "mutual_fund", "commodity", "index")

# Sector-typical loadings on (market, momentum, value, growth, quality, size, low_volatility,
# rates, oil); individual names override a few entries.
SECTOR_LOADINGS: dict[str, dict[str, float]] = {
    "Technology": dict(market=1.15, momentum=0.2, value=-0.3, growth=0.5, quality=0.2, size=-0.2,
                       low_volatility=-0.2, rates=-2.0),
    "Communication Services": dict(market=1.1, momentum=0.1, value=-0.2, growth=0.4, quality=0.1,
                                   size=-0.1, low_volatility=-0.2, rates=-1.5),
    "Consumer Discretionary": dict(market=1.2, momentum=0.1, value=-0.1, growth=0.3, size=0.1,
                                   low_volatility=-0.3, rates=-1.5, oil=-0.05),
    "Financials": dict(market=1.1, value=0.5, growth=-0.2, size=0.1, rates=2.5, oil=0.05),
    "Health Care": dict(market=0.8, value=0.1, quality=0.3, size=-0.1, low_volatility=0.4,
                        rates=-0.5),
    "Consumer Staples": dict(market=0.6, value=0.2, growth=-0.1, quality=0.3, size=-0.1,
                             low_volatility=0.6, rates=-1.5),
    "Energy": dict(market=1.0, value=0.6, growth=-0.3, quality=-0.1, size=0.1, rates=1.0, oil=0.45),
    "Industrials": dict(market=1.05, value=0.3, quality=0.1, size=0.2, rates=0.5, oil=0.05),
    "Utilities": dict(market=0.5, value=0.2, growth=-0.2, quality=0.1, low_volatility=0.7,
                      rates=-4.0),
    "Real Estate": dict(market=0.9, value=0.3, growth=-0.1, size=0.2, low_volatility=0.2,
                        rates=-5.0),
    "Materials": dict(market=1.05, value=0.4, growth=-0.1, size=0.2, rates=0.5, oil=0.15),
}

# Anchor date of the price levels below: the synthetic path is scaled so that the close on
# this session equals ``price``.
PRICE_ANCHOR_SESSION = "2024-01-02"


@dataclass(frozen=True)
class TickerProfile:
    """Reference data plus the synthetic-model parameters of one ticker."""

    ticker: str
    name: str
    sector: str
    asset_class: str
    is_etf: bool
    price: float                # close on PRICE_ANCHOR_SESSION
    idio_vol: float             # daily idiosyncratic volatility (decimal)
    adv: float                  # average daily volume, shares
    dividend_yield: float       # continuous yield used for option pricing
    loadings: dict[str, float] = field(default_factory=dict)
    alpha: float = 0.0001       # daily drift not explained by the factors
    model: str = "factor"       # 'factor' | 'nav' (mutual fund) | 'volatility_index' (VIX)
    known: bool = True

    def loading_vector(self) -> np.ndarray:
        return np.array([self.loadings.get(f, 0.0) for f in FACTORS], dtype=np.float64)

    def reference_dict(self) -> dict:
        return {
            "ticker": self.ticker,
            "name": self.name,
            "sector": self.sector,
            "asset_class": self.asset_class,
            "is_etf": self.is_etf,
        }


def _stock(ticker, name, sector, price, idio_vol, adv, dividend_yield=0.01, **overrides):
    loadings = dict(SECTOR_LOADINGS[sector])
    loadings.update(overrides)
    return TickerProfile(ticker, name, sector, "equity", False, price, idio_vol, adv,
                         dividend_yield, loadings)


def _fund(ticker, name, sector, asset_class, is_etf, price, idio_vol, adv, dividend_yield,
          model="factor", **loadings):
    # No alpha: a fund is its factor mix (SPY *is* the market factor) plus tracking noise.
    return TickerProfile(ticker, name, sector, asset_class, is_etf, price, idio_vol, adv,
                         dividend_yield, loadings, alpha=0.0, model=model)


#: (ticker, name, sector, price, growth loading, value loading) of the Select Sector SPDRs.
SECTOR_SPDRS = (
    ("XLK", "Technology", "Technology", 210.0, 0.5, -0.2),
    ("XLF", "Financial", "Financials", 40.0, -0.2, 0.5),
    ("XLV", "Health Care", "Health Care", 140.0, 0.0, 0.2),
    ("XLE", "Energy", "Energy", 90.0, -0.3, 0.5),
    ("XLI", "Industrial", "Industrials", 120.0, 0.0, 0.2),
    ("XLY", "Consumer Discretionary", "Consumer Discretionary", 180.0, 0.4, -0.1),
    ("XLP", "Consumer Staples", "Consumer Staples", 78.0, -0.2, 0.3),
    ("XLU", "Utilities", "Utilities", 70.0, -0.3, 0.4),
    ("XLB", "Materials", "Materials", 88.0, 0.0, 0.3),
    ("XLRE", "Real Estate", "Real Estate", 40.0, -0.1, 0.3),
    ("XLC", "Communication Services", "Communication Services", 80.0, 0.3, 0.0),
)


_STYLE_NAMES = {
    "momentum": ("MTUM", "iShares MSCI USA Momentum Factor ETF", 160.0),
    "value": ("VTV", "Vanguard Value ETF", 150.0),
    "growth": ("VUG", "Vanguard Growth ETF", 310.0),
    "quality": ("QUAL", "iShares MSCI USA Quality Factor ETF", 150.0),
    "size": ("IJR", "iShares Core S&P Small-Cap ETF", 108.0),
    "low_volatility": ("SPLV", "Invesco S&P 500 Low Volatility ETF", 62.0),
}
# Factor ETFs track their index closely: a small tracking error keeps the regression on
# (ETF - SPY) spreads almost unattenuated (var ratio ~ 1e-3).
STYLE_ETF_TRACKING_VOL = 0.0002
RATES_PROXY_DURATION = 17.0     # TLT return = -17 x change in 10y yield


def _known_profiles() -> dict[str, TickerProfile]:
    items = [
        # Demo-portfolio stocks.
        _stock("AAPL", "Apple Inc.", "Technology", 185.0, 0.011, 55e6, 0.005),
        _stock("MSFT", "Microsoft Corporation", "Technology", 375.0, 0.010, 25e6, 0.008,
               quality=0.4),
        _stock("AMZN", "Amazon.com, Inc.", "Consumer Discretionary", 150.0, 0.015, 45e6, 0.0,
               growth=0.6),
        _stock("GOOGL", "Alphabet Inc. Class A", "Communication Services", 140.0, 0.014, 30e6,
               0.0),
        _stock("TSLA", "Tesla, Inc.", "Consumer Discretionary", 245.0, 0.030, 110e6, 0.0,
               market=1.6, momentum=0.4, growth=0.8),
        _stock("NVDA", "NVIDIA Corporation", "Technology", 120.0, 0.024, 300e6, 0.0003,
               market=1.7, momentum=0.6, growth=0.7),
        _stock("JNJ", "Johnson & Johnson", "Health Care", 160.0, 0.009, 7e6, 0.03),
        _stock("JPM", "JPMorgan Chase & Co.", "Financials", 170.0, 0.011, 9e6, 0.025),
        _stock("V", "Visa Inc.", "Financials", 260.0, 0.009, 6e6, 0.008, quality=0.3,
               value=0.0, rates=0.5),
        _stock("META", "Meta Platforms, Inc.", "Communication Services", 350.0, 0.020, 15e6,
               0.004, momentum=0.4),
        _stock("UNH", "UnitedHealth Group Incorporated", "Health Care", 520.0, 0.012, 3e6, 0.015),
        _stock("HD", "The Home Depot, Inc.", "Consumer Discretionary", 345.0, 0.011, 3.5e6, 0.025),
        _stock("PG", "The Procter & Gamble Company", "Consumer Staples", 147.0, 0.008, 6.5e6,
               0.025),
        _stock("BRK-B", "Berkshire Hathaway Inc. Class B", "Financials", 357.0, 0.007, 3.5e6,
               0.0, market=0.85, quality=0.3, rates=1.0),
        _stock("AMD", "Advanced Micro Devices, Inc.", "Technology", 140.0, 0.025, 55e6, 0.0,
               market=1.6, momentum=0.4),
        _stock("NFLX", "Netflix, Inc.", "Communication Services", 480.0, 0.020, 4e6, 0.0),
        _stock("SHOP", "Shopify Inc.", "Technology", 78.0, 0.030, 12e6, 0.0, market=1.6,
               size=0.2),
        _stock("ZM", "Zoom Video Communications, Inc.", "Technology", 72.0, 0.022, 3e6, 0.0,
               momentum=-0.3),
        _stock("PTON", "Peloton Interactive, Inc.", "Consumer Discretionary", 6.0, 0.045, 15e6,
               0.0, market=1.5, size=0.6, quality=-0.5),
        _stock("ROKU", "Roku, Inc.", "Communication Services", 92.0, 0.035, 5e6, 0.0,
               market=1.5, size=0.4),
        _stock("XOM", "Exxon Mobil Corporation", "Energy", 100.0, 0.012, 17e6, 0.035),
        _stock("F", "Ford Motor Company", "Consumer Discretionary", 12.0, 0.016, 50e6, 0.05,
               value=0.5, growth=-0.2),
        _stock("GE", "General Electric Company", "Industrials", 127.0, 0.014, 6e6, 0.003),
        _stock("C", "Citigroup Inc.", "Financials", 51.0, 0.013, 15e6, 0.04),
        # Mutual funds: one NAV a day.
        _fund("FXNAX", "Fidelity U.S. Bond Index Fund", "Fixed Income", "mutual_fund", False,
              10.3, 0.0008, 0.0, 0.03, model="nav", market=0.03, rates=-6.0),
        _fund("FCNTX", "Fidelity Contrafund", "Large Growth", "mutual_fund", False, 16.5,
              0.003, 0.0, 0.0, model="nav", market=1.05, growth=0.4, momentum=0.2),
        _fund("FMAGX", "Fidelity Magellan Fund", "Large Growth", "mutual_fund", False, 12.5,
              0.003, 0.0, 0.003, model="nav", market=1.05, growth=0.3),
        _fund("VTIAX", "Vanguard Total International Stock Index Fund Admiral Shares",
              "Foreign Large Blend", "mutual_fund", False, 31.0, 0.005, 0.0, 0.03, model="nav",
              market=0.8, value=0.2, rates=-0.5),
        # ETFs, commodities, index.
        _fund("SPY", "SPDR S&P 500 ETF Trust", "Broad Market", "etf", True, 475.0, 0.0, 80e6,
              0.013, market=1.0),
        _fund("QQQ", "Invesco QQQ Trust", "Technology", "etf", True, 410.0, 0.002, 45e6, 0.006,
              market=1.1, growth=0.8, momentum=0.15, rates=-1.5),
        _fund("IWM", "iShares Russell 2000 ETF", "Small Cap", "etf", True, 200.0, 0.002, 30e6,
              0.012, market=1.1, size=1.0),
        _fund("VTI", "Vanguard Total Stock Market ETF", "Broad Market", "etf", True, 237.0,
              0.0005, 3.5e6, 0.014, market=1.0, size=0.1),
        _fund("BND", "Vanguard Total Bond Market ETF", "Fixed Income", "etf", True, 73.0,
              0.001, 6.5e6, 0.033, market=0.03, rates=-6.0),
        _fund("VNQ", "Vanguard Real Estate ETF", "Real Estate", "etf", True, 88.0, 0.006, 4e6,
              0.04, market=0.95, value=0.3, rates=-5.0),
        _fund("TLT", "iShares 20+ Year Treasury Bond ETF", "Fixed Income", "etf", True, 98.0,
              0.002, 35e6, 0.038, rates=-RATES_PROXY_DURATION),
        _fund("USO", "United States Oil Fund", "Energy", "commodity", True, 67.0, 0.002, 4e6,
              0.0, oil=1.0),
        _fund("GLD", "SPDR Gold Shares", "Precious Metals", "commodity", True, 190.0, 0.008,
              8e6, 0.0, market=0.05, rates=-3.0, oil=0.05),
        _fund("DJP", "iPath Bloomberg Commodity Index Total Return ETN", "Commodities",
              "commodity", True, 31.0, 0.006, 0.1e6, 0.0, market=0.2, oil=0.35, rates=-1.0),
        _fund("VIX", "CBOE Volatility Index", "Volatility", "index", False, 13.0, 0.05, 0.0,
              0.0, model="volatility_index", market=-4.0),
    ]
    # The eleven Select Sector SPDRs (hedge candidates): market-like funds of one sector.
    for ticker, name, sector, price, growth, value in SECTOR_SPDRS:
        items.append(_fund(ticker, f"{name} Select Sector SPDR Fund", sector, "etf", True, price, 0.004, 10e6,
                           0.015, market=1.0, growth=growth, value=value))
    for factor in STYLE_FACTORS:
        ticker, name, price = _STYLE_NAMES[factor]
        assert STYLE_PROXIES[factor] == ticker
        items.append(_fund(ticker, name, "Factor: " + factor.replace("_", " ").title(), "etf",
                           True, price, STYLE_ETF_TRACKING_VOL, 2e6, 0.015,
                           **{"market": 1.0, factor: 1.0}))
    return {p.ticker: p for p in items}


KNOWN_PROFILES: dict[str, TickerProfile] = _known_profiles()




@lru_cache(maxsize=4096)
def profile(ticker: str) -> TickerProfile:
    """The profile of ``ticker``: listed for known names, hash-derived for any other."""
    symbol = normalize_ticker(ticker)
    if symbol in KNOWN_PROFILES:
        return KNOWN_PROFILES[symbol]
    rng = np.random.default_rng(np.frombuffer(ticker_digest("profile-v1", symbol), np.uint32))
    sector = list(SECTOR_LOADINGS)[int(rng.integers(len(SECTOR_LOADINGS)))]
    loadings = dict(SECTOR_LOADINGS[sector])
    loadings["market"] = float(np.round(rng.uniform(0.7, 1.5), 3))
    for factor in STYLE_FACTORS:
        loadings[factor] = float(np.round(loadings.get(factor, 0.0) + rng.normal(0.0, 0.25), 3))
    price = float(np.round(np.exp(rng.uniform(np.log(8.0), np.log(400.0))), 2))
    return TickerProfile(
        ticker=symbol,
        name=f"{symbol} Inc. (synthetic)",
        sector=sector,
        asset_class="equity",
        is_etf=False,
        price=price,
        idio_vol=float(np.round(rng.uniform(0.01, 0.03), 4)),
        adv=float(np.round(np.exp(rng.uniform(np.log(5e5), np.log(3e7))), -3)),
        dividend_yield=float(np.round(rng.uniform(0.0, 0.03), 4)),
        loadings=loadings,
        known=False,
    )
