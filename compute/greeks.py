"""Black-Scholes-Merton prices, Greeks, implied volatility and position Greeks.

Thin numpy-facing wrappers over ``compute.greeks_nb``. Conventions are mibian's (the test
oracle), with rates and volatilities as decimals instead of percent:

- ``S`` spot, ``K`` strike, ``T`` years to expiry (calendar days / 365), ``r`` continuously
  compounded risk-free rate, ``q`` continuous dividend yield, ``sigma`` volatility (0.2 = 20 %).
- Greeks are per share: delta (per $1 of spot), gamma (per $1 of spot, per $1), theta (dollars
  per calendar day), vega (dollars per 1 volatility point, i.e. sigma + 0.01), rho (dollars per
  1 rate point, r + 0.01).
- Expired options (T <= 0) price at intrinsic with all Greeks 0; sigma <= 0, S <= 0, K <= 0 or
  NaN inputs give NaN rows, never an exception.

All functions broadcast their inputs like numpy; scalars give 0-d arrays.
"""

import warnings
from typing import NamedTuple

import numpy as np

from compute.threads import threads_for
from compute.greeks_nb import (
    BLOCK,
    IV_ABOVE_UPPER_BOUND,
    IV_BELOW_LOWER_BOUND,
    IV_INVALID_INPUT,
    IV_NOT_CONVERGED,
    bsm_greeks_nb,
    bsm_price_nb,
    implied_vol_nb,
)

OPTION_MULTIPLIER = 100
# Contracts per dynamically scheduled chunk: on a shared 2-core machine a statically split loop
# waits for whichever thread the OS descheduled; chunks this size cost nothing to hand out.
# The price / Greek kernels' prange runs over blocks of BLOCK contracts, so their chunk is
# GREEKS_BLOCK // BLOCK iterations; the implied-vol kernel's runs over contracts.
GREEKS_BLOCK = 1 << 16
IMPLIED_VOL_BLOCK = 1 << 14


class GreeksResult(NamedTuple):
    """Per-share BSM price and Greeks (arrays of the broadcast input shape)."""

    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray
    rho: np.ndarray


class PositionGreeks(NamedTuple):
    """Position-level Greeks: per-share Greek x contracts x multiplier (sign = direction).

    - ``delta``: share-equivalent delta (shares of underlying).
    - ``gamma``: change of ``delta`` per $1 move of the underlying.
    - ``theta``: dollars per calendar day; ``vega``: dollars per vol point; ``rho``: dollars per
      rate point. These are already dollar Greeks.
    - ``dollar_delta``: delta x S x contracts x multiplier, dollars of underlying held
      (the delta-adjusted notional); P&L of a 1 % move is ``0.01 * dollar_delta``.
    - ``dollar_gamma``: 0.5 x gamma x (0.01 S)^2 x contracts x multiplier, the second-order P&L
      in dollars of a 1 % move in the underlying.
    """

    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray
    rho: np.ndarray
    dollar_delta: np.ndarray
    dollar_gamma: np.ndarray


VOL_SOURCE_IMPLIED = "implied"
VOL_SOURCE_REALISED = "realised"
VOL_SOURCE_MISSING = "missing"


class ImpliedVolWarning(RuntimeWarning):
    """Some prices had no implied volatility (outside no-arbitrage bounds, bad inputs)."""


def _flatten_broadcast(arrays, dtypes):
    """Broadcast ``arrays`` together; return (shape, flat arrays of length n or 1).

    Size-1 inputs stay length 1 (the kernels broadcast them with a zero step); inputs already of
    the full shape are passed as contiguous views, others are materialised.
    """
    converted = [np.asarray(a, dtype=dt) for a, dt in zip(arrays, dtypes)]
    shape = np.broadcast_shapes(*(a.shape for a in converted))
    flat = []
    for a in converted:
        if a.size == 1:
            flat.append(a.reshape(1))
        elif a.shape == shape:
            flat.append(np.ascontiguousarray(a).reshape(-1))
        else:
            flat.append(np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1))
    return shape, flat


_F8 = np.float64
_BSM_DTYPES = (_F8, _F8, _F8, _F8, _F8, _F8, np.bool_)


def _flat_output(buffer, shape, name):
    if buffer.shape != shape or buffer.dtype != np.float64 or not buffer.flags.c_contiguous:
        raise ValueError(
            f"out.{name} must be a C-contiguous float64 array of shape {shape}, "
            f"got {buffer.dtype} {buffer.shape}"
        )
    return buffer.reshape(-1)


def bsm_price(S, K, T, r, q, sigma, is_call) -> np.ndarray:
    """Black-Scholes-Merton option price per share.

    call = S e^{-qT} N(d1) - K e^{-rT} N(d2), put = K e^{-rT} N(-d2) - S e^{-qT} N(-d1),
    d1 = (ln(S/K) + (r - q + sigma^2/2) T) / (sigma sqrt T), d2 = d1 - sigma sqrt T.
    """
    shape, flat = _flatten_broadcast((S, K, T, r, q, sigma, is_call), _BSM_DTYPES)
    price = np.empty(shape, dtype=np.float64)
    with threads_for(price.size, GREEKS_BLOCK // BLOCK):
        bsm_price_nb(*flat, price.reshape(-1))
    return price


def allocate_greeks(shape) -> GreeksResult:
    """Uninitialised output buffers for ``bsm_greeks(..., out=...)``."""
    return GreeksResult(*(np.empty(shape, dtype=np.float64) for _ in GreeksResult._fields))


def bsm_greeks(S, K, T, r, q, sigma, is_call, out: GreeksResult | None = None) -> GreeksResult:
    """Price and the five Greeks per share (see module docstring for units).

    ``out`` (e.g. from ``allocate_greeks``) receives the results in place; reusing buffers
    avoids paging in fresh memory, which dominates at tens of millions of contracts.
    """
    shape, flat = _flatten_broadcast((S, K, T, r, q, sigma, is_call), _BSM_DTYPES)
    if out is None:
        out = allocate_greeks(shape)
    buffers = [_flat_output(buf, shape, name) for buf, name in zip(out, GreeksResult._fields)]
    with threads_for(buffers[0].size, GREEKS_BLOCK // BLOCK):
        bsm_greeks_nb(*flat, *buffers)
    return out


def implied_vol(price, S, K, T, r, q, is_call, tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """BSM implied volatility (decimal) of option prices, vectorised and parallel.

    Converges until the model price is within ``tol`` (absolute, price units) of ``price``.
    Prices outside the European no-arbitrage bounds
    max(0, S e^{-qT} - K e^{-rT}) <= call < S e^{-qT} and max(0, K e^{-rT} - S e^{-qT}) <= put < K e^{-rT},
    expired contracts (T <= 0) and NaN/non-positive inputs give NaN; one ``ImpliedVolWarning``
    per call counts them. A price up to ``tol`` below the lower bound counts as on it.
    """
    shape, flat = _flatten_broadcast((price, S, K, T, r, q, is_call), (_F8,) * 6 + (np.bool_,))
    sigma = np.empty(shape, dtype=np.float64)
    status = np.empty(shape, dtype=np.int8)
    with threads_for(sigma.size, IMPLIED_VOL_BLOCK):
        implied_vol_nb(*flat, float(tol), int(max_iter), sigma.reshape(-1), status.reshape(-1))
    counts = np.bincount(status.reshape(-1), minlength=5)
    problems = {
        "below the no-arbitrage lower bound (intrinsic)": counts[IV_BELOW_LOWER_BOUND],
        "above the no-arbitrage upper bound": counts[IV_ABOVE_UPPER_BOUND],
        "with invalid inputs (NaN, T <= 0, S <= 0 or K <= 0)": counts[IV_INVALID_INPUT],
        "not converged": counts[IV_NOT_CONVERGED],
    }
    bad = {what: int(c) for what, c in problems.items() if c}
    if bad:
        detail = "; ".join(f"{c} {what}" for what, c in bad.items())
        warnings.warn(
            f"implied_vol: {sum(bad.values())} of {status.size} prices have no implied volatility "
            f"(NaN returned): {detail}",
            ImpliedVolWarning,
            stacklevel=2,
        )
    return sigma


def position_greeks(per_share: GreeksResult, contracts, multiplier=OPTION_MULTIPLIER, spot=None) -> PositionGreeks:
    """Scale per-share Greeks to positions: Greek x contracts x multiplier (contracts signed).

    ``spot`` (underlying price) is needed for the dollar Greeks; without it they are NaN.
    See ``PositionGreeks`` for the definitions of dollar delta and dollar gamma.
    """
    size = np.asarray(contracts, dtype=np.float64) * np.asarray(multiplier, dtype=np.float64)
    delta = per_share.delta * size
    gamma = per_share.gamma * size
    spot_arr = np.asarray(np.nan if spot is None else spot, dtype=np.float64)
    dollar_delta = delta * spot_arr
    dollar_gamma = 0.5 * gamma * (0.01 * spot_arr) ** 2
    return PositionGreeks(
        delta=delta,
        gamma=gamma,
        theta=per_share.theta * size,
        vega=per_share.vega * size,
        rho=per_share.rho * size,
        dollar_delta=dollar_delta,
        dollar_gamma=dollar_gamma,
    )


def select_volatility(chain_implied_vol, realised_vol) -> tuple[np.ndarray, np.ndarray]:
    """Volatility per contract: the option chain's implied vol where it is a positive number,
    else the underlying's realised vol, else NaN. Returns (sigma, source) with source one of
    "implied", "realised", "missing" per contract, so responses can say which was used."""
    implied, realised = np.broadcast_arrays(
        np.asarray(chain_implied_vol, dtype=np.float64), np.asarray(realised_vol, dtype=np.float64)
    )
    use_implied = implied > 0.0
    use_realised = ~use_implied & (realised > 0.0)
    sigma = np.where(use_implied, implied, np.where(use_realised, realised, np.nan))
    source = np.where(
        use_implied, VOL_SOURCE_IMPLIED, np.where(use_realised, VOL_SOURCE_REALISED, VOL_SOURCE_MISSING)
    ).astype(object)
    return sigma, source
