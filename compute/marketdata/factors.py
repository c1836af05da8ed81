"""The synthetic factor model.

Model (simple daily returns, one row per NYSE session from ``EPOCH``, 1990-01-02)::

    F_t      = mu + sigma * sqrt(g_t) * z_t              factor returns, 9 columns (FACTORS)
    z_t      = L n_t * sqrt((nu - 2) / chi2_nu,t)         multivariate Student-t, corr = L L'
    g_t      = (1 - a - c/2 - b) + (a + c 1[z_m<0]) z_m,t-1^2 g_t-1 + b g_t-1
                                                          GJR-GARCH(1,1) variance multiplier,
                                                          unit mean, driven by the market shock
    R_i,t    = alpha_i + beta_i . F_t + e_i,t             ticker return
    e_i,t    = s_i sqrt(h_i,t) u_i,t                      own GARCH(1,1), Student-t u

Because ``g_t`` scales every factor alike, the factors' correlation is exactly CORRELATION
and their unconditional volatilities exactly DAILY_VOL, while returns have fat tails and
volatility clusters.

How the style factors are defined: ``market`` is the SPY return; each style factor is the
*spread* of its ETF over SPY (e.g. momentum = MTUM - SPY).  So SPY = market, a style ETF
= market + its style factor (+ a 2 bp tracking error), and a joint OLS of any ticker's return
on [SPY, ETF_k - SPY for the six styles] recovers the ticker's loadings (the regressors *are*
the factors up to the tracking error).  ``rates`` is the daily change of the 10-year yield
(decimal; TLT = -17 x rates) and ``oil`` the USO return, so stress scenarios quoted as
"rates +25 bp" or "oil +5 %" multiply the loadings directly.

History before 2000 (``EPOCH`` .. the session before ``FORWARD_EPOCH``): the model first
started on 2000-01-03, and every draw from that day on is kept exactly as it was (the same
streams, the same number of draws, the GARCH started there), so no price on or after
2000-01-03 changed when the history was extended back to 1990. The earlier sessions are an
independent *backfill*: their own streams (keyed ``backfill``), the same model run forward in
time over 1990-1999, and prices compounded *backwards* from the first forward bar (see
``compute.marketdata.synthetic``), so the two segments join with an ordinary daily move.
"""

from __future__ import annotations

import hashlib

from functools import lru_cache

import numpy as np
import pandas as pd

from compute.marketdata import calendar
from compute.marketdata.synthetic_nb import garch_variance_multiplier_nb

#: v3 added the 1990-1999 backfill (every bar from 2000-01-03 on is as in v2).
MODEL_VERSION = "sigma-synthetic-v3"
#: Random streams are keyed by this, not by MODEL_VERSION: v2 changed only how minutes are
#: drawn between the daily bars (a Brownian bridge), v3 only added bars before 2000, so every
#: daily bar from 2000-01-03 on stays as it was.
SEED_NAMESPACE = "sigma-synthetic-v1"
#: First session of the synthetic history: the calendar's first (1990-01-02).
EPOCH = calendar.CALENDAR_START
#: Where the original generation starts; sessions before it are the backfill.
FORWARD_EPOCH = pd.Timestamp("2000-01-03")
HORIZON_END = calendar.CALENDAR_END
#: Stream key of the pre-2000 draws (independent of every forward stream).
BACKFILL = "backfill"

FACTORS = ("market", "momentum", "value", "growth", "quality", "size", "low_volatility",
           "rates", "oil")
STYLE_FACTORS = ("momentum", "value", "growth", "quality", "size", "low_volatility")
STYLE_PROXIES = {"momentum": "MTUM", "value": "VTV", "growth": "VUG", "quality": "QUAL",
                 "size": "IJR", "low_volatility": "SPLV"}
FACTOR_PROXIES = {"market": "SPY", **STYLE_PROXIES, "rates": "TLT", "oil": "USO"}
FACTOR_DISPLAY_NAMES = {"market": "Market Beta", "momentum": "Momentum", "value": "Value",
                        "growth": "Growth", "quality": "Quality", "size": "Size",
                        "low_volatility": "Low Volatility", "rates": "Interest Rate",
                        "oil": "Oil"}

# Unconditional daily volatility: market 17.5 %/yr; style spreads 5-10 %/yr; 7 bp/day of
# 10y yield; oil 35 %/yr.
DAILY_VOL = np.array([0.011, 0.006, 0.005, 0.004, 0.003, 0.006, 0.005, 0.0007, 0.022])
# Daily mean: equity premium ~7 %/yr on the market, zero elsewhere.
DAILY_MEAN = np.array([0.0003, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
CORRELATION = np.array([
    # mkt   mom   val   gro   qual  size  lowv  rates oil
    [1.00, 0.00, 0.10, 0.20, -0.20, 0.30, -0.50, 0.20, 0.30],   # market
    [0.00, 1.00, -0.40, 0.40, 0.20, -0.10, 0.20, -0.10, 0.00],  # momentum
    [0.10, -0.40, 1.00, -0.70, -0.20, 0.30, 0.10, 0.30, 0.30],  # value
    [0.20, 0.40, -0.70, 1.00, 0.20, -0.20, -0.20, -0.20, -0.10],  # growth
    [-0.20, 0.20, -0.20, 0.20, 1.00, -0.20, 0.30, -0.10, -0.10],  # quality
    [0.30, -0.10, 0.30, -0.20, -0.20, 1.00, -0.20, 0.20, 0.10],  # size
    [-0.50, 0.20, 0.10, -0.20, 0.30, -0.20, 1.00, -0.30, -0.10],  # low volatility
    [0.20, -0.10, 0.30, -0.20, -0.10, 0.20, -0.30, 1.00, 0.20],  # rates
    [0.30, 0.00, 0.30, -0.10, -0.10, 0.10, -0.10, 0.20, 1.00],  # oil
])
STUDENT_T_DOF = 5.0
# GJR-GARCH(1,1) of the common variance multiplier: persistence a + c/2 + b = 0.985.
MARKET_GARCH = (0.05, 0.06, 0.905)   # (a, c, b)
# Idiosyncratic GARCH(1,1) per ticker: persistence 0.97.
IDIO_GARCH = (0.06, 0.0, 0.91)


def factor_covariance() -> np.ndarray:
    """Unconditional daily covariance of FACTORS (decimal returns squared)."""
    return CORRELATION * np.outer(DAILY_VOL, DAILY_VOL)


def ticker_digest(*parts: object) -> bytes:
    """SHA-256 of the parts joined by '|': process- and machine-independent randomness."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()


def seed_words(*parts: object) -> np.ndarray:
    """SHA-256 of the parts as uint32 words, for a numpy SeedSequence (not Python's hash())."""
    return np.frombuffer(ticker_digest(SEED_NAMESPACE, *parts), dtype=np.uint32)


def multivariate_t_shocks(rng: np.random.Generator, n: int, corr: np.ndarray,
                          dof: float) -> np.ndarray:
    """``n`` draws of a unit-variance multivariate Student-t with correlation ``corr``."""
    chol = np.linalg.cholesky(corr)
    normals = rng.standard_normal((n, corr.shape[0])) @ chol.T
    scale = np.sqrt((dof - 2.0) / rng.chisquare(dof, n))
    return normals * scale[:, None]


def _factor_segment(seed: int, n: int, *key: str) -> tuple[np.ndarray, np.ndarray]:
    """Factor returns and g over ``n`` sessions from the stream (seed, "factors", *key)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed_words(seed, "factors", *key))))
    z = multivariate_t_shocks(rng, n, CORRELATION, STUDENT_T_DOF)
    a, c, b = MARKET_GARCH
    g = garch_variance_multiplier_nb(np.ascontiguousarray(z[:, 0]), a, c, b)
    returns = DAILY_MEAN + DAILY_VOL * np.sqrt(g)[:, None] * z
    return returns, g


@lru_cache(maxsize=8)
def _factor_model(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(factor returns [n_sessions x 9], common variance multiplier g [n_sessions]): the
    backfill segment (its own stream) followed by the forward one (the original stream)."""
    n_back = backfill_sessions()
    forward, g_forward = _factor_segment(seed, len(model_sessions()) - n_back)
    back, g_back = _factor_segment(seed, n_back, BACKFILL)
    returns = np.concatenate([back, forward])
    g = np.concatenate([g_back, g_forward])
    returns.setflags(write=False)
    g.setflags(write=False)
    return returns, g


@lru_cache(maxsize=1)
def model_sessions() -> pd.DataFrame:
    """Every session the synthetic model covers (EPOCH .. HORIZON_END)."""
    return calendar.sessions(EPOCH, HORIZON_END)


@lru_cache(maxsize=1)
def backfill_sessions() -> int:
    """How many model sessions precede FORWARD_EPOCH (rows 0 .. n - 1 are the backfill)."""
    return int(model_sessions().index.searchsorted(FORWARD_EPOCH, side="left"))


def factor_returns_array(seed: int) -> np.ndarray:
    """Factor returns over all model sessions (read-only; rows align with model_sessions())."""
    return _factor_model(seed)[0]


def variance_multiplier(seed: int) -> np.ndarray:
    """Common GARCH variance multiplier g_t over all model sessions (unit mean)."""
    return _factor_model(seed)[1]


def factor_returns(start, end, seed: int = 0) -> pd.DataFrame:
    """Daily factor returns for sessions in [start, end]: index = session open (UTC),
    columns = FACTORS (rates in yield change, the rest in simple returns)."""
    table = model_sessions()
    lo = table.index.searchsorted(calendar.to_session_date(start), side="left")
    hi = table.index.searchsorted(calendar.to_session_date(end), side="right")
    frame = pd.DataFrame(factor_returns_array(seed)[lo:hi], columns=list(FACTORS),
                         index=pd.DatetimeIndex(table["open"].iloc[lo:hi], name="timestamp"))
    return frame
