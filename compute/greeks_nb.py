"""Numba kernels for Black-Scholes-Merton prices, Greeks and implied volatility.

Kernels take flat float64 arrays. Every input array has either the full length ``n`` or length 1
(a broadcast scalar); the kernel indexes it with ``i * step`` where ``step`` is 1 or 0, so one
compiled specialisation serves both shapes without materialising broadcast copies.

Units inside the kernels: rates, dividend yields and volatilities are decimals (0.05 = 5 %),
time to expiry is in years (calendar days / 365). Output Greeks follow mibian's conventions:
theta per calendar day, vega and rho per 1 percentage point of volatility / rate.

``fastmath`` is deliberately not used: it would let LLVM assume NaN never occurs and delete the
checks that turn bad inputs into NaN rows.
"""

import math

import numpy as np
from numba import njit, prange

SQRT_2PI_INV = 1.0 / math.sqrt(2.0 * math.pi)
SQRT_2PI = math.sqrt(2.0 * math.pi)
SQRT_HALF = math.sqrt(0.5)
DAYS_PER_YEAR = 365.0
PER_DAY = 1.0 / DAYS_PER_YEAR

IV_OK = 0
IV_BELOW_LOWER_BOUND = 1
IV_ABOVE_UPPER_BOUND = 2
IV_INVALID_INPUT = 3
IV_NOT_CONVERGED = 4


@njit(cache=True, inline="always")
def norm_cdf_nb(x):
    """Standard normal CDF via erfc: accurate in both tails (no 1 - N(x) cancellation)."""
    return 0.5 * math.erfc(-x * SQRT_HALF)


@njit(cache=True, inline="always")
def _step(a, n):
    return 1 if a.shape[0] == n else 0


@njit(cache=True, parallel=True)
def bsm_greeks_nb(S, K, T, r, q, sigma, is_call, price, delta, gamma, theta, vega, rho):
    """Fill price and the five Greeks for n contracts (n = len(price)), in place.

    Formulas (Hull, ch. 19, with continuous dividend yield q), per share:
      d1 = (ln(S/K) + (r - q + sigma^2/2) T) / (sigma sqrt T),  d2 = d1 - sigma sqrt T
      call = S e^{-qT} N(d1) - K e^{-rT} N(d2);  put = K e^{-rT} N(-d2) - S e^{-qT} N(-d1)
      delta = e^{-qT} N(d1) (call), -e^{-qT} N(-d1) (put)
      gamma = e^{-qT} n(d1) / (S sigma sqrt T)
      theta = [-S e^{-qT} n(d1) sigma / (2 sqrt T) +/- (q S e^{-qT} N(+/-d1) - r K e^{-rT} N(+/-d2))] / 365
      vega  = S e^{-qT} n(d1) sqrt T / 100
      rho   = +/- K T e^{-rT} N(+/-d2) / 100
    T <= 0 (expired): price = intrinsic, Greeks 0. sigma <= 0, S <= 0, K <= 0 or NaN: all NaN.
    """
    n = price.shape[0]
    sS = _step(S, n)
    sK = _step(K, n)
    sT = _step(T, n)
    sr = _step(r, n)
    sq = _step(q, n)
    sv = _step(sigma, n)
    sc = _step(is_call, n)
    for i in prange(n):
        s = S[i * sS]
        k = K[i * sK]
        t = T[i * sT]
        rr = r[i * sr]
        qq = q[i * sq]
        vol = sigma[i * sv]
        call = is_call[i * sc]
        # NaN fails every comparison, so this single test also rejects NaN inputs
        if not (s > 0.0 and k > 0.0 and rr == rr and qq == qq and t == t):
            price[i] = np.nan
            delta[i] = np.nan
            gamma[i] = np.nan
            theta[i] = np.nan
            vega[i] = np.nan
            rho[i] = np.nan
            continue
        if t <= 0.0:
            price[i] = max(s - k, 0.0) if call else max(k - s, 0.0)
            delta[i] = 0.0
            gamma[i] = 0.0
            theta[i] = 0.0
            vega[i] = 0.0
            rho[i] = 0.0
            continue
        if not (vol > 0.0):
            price[i] = np.nan
            delta[i] = np.nan
            gamma[i] = np.nan
            theta[i] = np.nan
            vega[i] = np.nan
            rho[i] = np.nan
            continue
        sqrt_t = math.sqrt(t)
        inv_vol_sqrt_t = 1.0 / (vol * sqrt_t)
        d1 = (math.log(s / k) + (rr - qq + 0.5 * vol * vol) * t) * inv_vol_sqrt_t
        d2 = d1 - vol * sqrt_t
        div_disc = math.exp(-qq * t)
        spot_disc = s * div_disc
        strike_disc = k * math.exp(-rr * t)
        pdf_d1 = SQRT_2PI_INV * math.exp(-0.5 * d1 * d1)
        spot_pdf = spot_disc * pdf_d1
        # sigma / (2 sqrt T) written with the reciprocal already at hand
        theta_decay = -0.5 * spot_pdf * vol * vol * inv_vol_sqrt_t
        gamma[i] = div_disc * pdf_d1 * inv_vol_sqrt_t / s
        vega[i] = spot_pdf * sqrt_t * 0.01
        if call:
            n_d1 = norm_cdf_nb(d1)
            n_d2 = norm_cdf_nb(d2)
            price[i] = spot_disc * n_d1 - strike_disc * n_d2
            delta[i] = div_disc * n_d1
            theta[i] = (theta_decay + qq * spot_disc * n_d1 - rr * strike_disc * n_d2) * PER_DAY
            rho[i] = strike_disc * t * n_d2 * 0.01
        else:
            n_md1 = norm_cdf_nb(-d1)
            n_md2 = norm_cdf_nb(-d2)
            price[i] = strike_disc * n_md2 - spot_disc * n_md1
            delta[i] = -div_disc * n_md1
            theta[i] = (theta_decay - qq * spot_disc * n_md1 + rr * strike_disc * n_md2) * PER_DAY
            rho[i] = -strike_disc * t * n_md2 * 0.01


@njit(cache=True, parallel=True)
def bsm_price_nb(S, K, T, r, q, sigma, is_call, price):
    """Fill the BSM price only (same conventions and edge cases as ``bsm_greeks_nb``)."""
    n = price.shape[0]
    sS = _step(S, n)
    sK = _step(K, n)
    sT = _step(T, n)
    sr = _step(r, n)
    sq = _step(q, n)
    sv = _step(sigma, n)
    sc = _step(is_call, n)
    for i in prange(n):
        s = S[i * sS]
        k = K[i * sK]
        t = T[i * sT]
        rr = r[i * sr]
        qq = q[i * sq]
        vol = sigma[i * sv]
        call = is_call[i * sc]
        if not (s > 0.0 and k > 0.0 and rr == rr and qq == qq and t == t):
            price[i] = np.nan
            continue
        if t <= 0.0:
            price[i] = max(s - k, 0.0) if call else max(k - s, 0.0)
            continue
        if not (vol > 0.0):
            price[i] = np.nan
            continue
        vol_sqrt_t = vol * math.sqrt(t)
        d1 = (math.log(s / k) + (rr - qq + 0.5 * vol * vol) * t) / vol_sqrt_t
        d2 = d1 - vol_sqrt_t
        spot_disc = s * math.exp(-qq * t)
        strike_disc = k * math.exp(-rr * t)
        if call:
            price[i] = spot_disc * norm_cdf_nb(d1) - strike_disc * norm_cdf_nb(d2)
        else:
            price[i] = strike_disc * norm_cdf_nb(-d2) - spot_disc * norm_cdf_nb(-d1)


@njit(cache=True, inline="always")
def _otm_call_normalised(x, s, half_x_exp, half_x_exp_inv):
    """Normalised out-of-the-money call b(x, s) = e^{x/2} N(x/s + s/2) - e^{-x/2} N(x/s - s/2)
    for x = ln(F/K) <= 0 and total volatility s = sigma sqrt T > 0, plus db/ds = e^{x/2} n(d1)."""
    d1 = x / s + 0.5 * s
    d2 = d1 - s
    b = half_x_exp * norm_cdf_nb(d1) - half_x_exp_inv * norm_cdf_nb(d2)
    db = half_x_exp * SQRT_2PI_INV * math.exp(-0.5 * d1 * d1)
    return b, db


@njit(cache=True)
def implied_total_vol_nb(b_target, x, tol_b, max_iter):
    """Solve b(x, s) = b_target for s = sigma sqrt T, x = ln(F/K) <= 0 (out-of-the-money call).

    Safeguarded Halley iteration: b has its inflection point at s_c = sqrt(2|x|) (convex below,
    concave above), so the solver starts there and iterates on ln b below the inflection point
    (where b decays like exp(-x^2 / 2s^2) and plain Newton crawls) and on b above it. A bracket
    [lo, hi] is kept from the sign of every residual; a step leaving it falls back to bisection.
    Returns (s, converged) with |b(s) - b_target| <= tol_b on success.
    """
    half_x_exp = math.exp(0.5 * x)
    half_x_exp_inv = math.exp(-0.5 * x)
    lo = 0.0
    hi = math.inf
    if x < 0.0:
        s = math.sqrt(-2.0 * x)
    else:
        # at the money b = 2 N(s/2) - 1 ~ s / sqrt(2 pi) (Brenner-Subrahmanyam)
        s = SQRT_2PI * b_target
        if s <= 0.0:
            s = 1e-8
    b, db = _otm_call_normalised(x, s, half_x_exp, half_x_exp_inv)
    use_log = 0.0 < b_target < b
    log_target = math.log(b_target) if use_log else 0.0
    for _ in range(max_iter):
        residual = b - b_target
        if abs(residual) <= tol_b:
            return s, True
        if residual > 0.0:
            hi = s
        else:
            lo = s
        # second derivative: b'' = b' (x^2/s^3 - s/4)
        curvature = x * x / (s * s * s) - 0.25 * s
        if use_log and b > 0.0:
            f = math.log(b) - log_target
            f1 = db / b
            f2 = f1 * curvature - f1 * f1
        else:
            f = residual
            f1 = db
            f2 = db * curvature
        if f1 > 0.0:
            newton = f / f1
            halley_denominator = 1.0 - 0.5 * newton * f2 / f1
            # Halley's correction only when it is a modest adjustment of the Newton step
            if halley_denominator > 0.5 and halley_denominator < 2.0:
                s_next = s - newton / halley_denominator
            else:
                s_next = s - newton
        else:
            s_next = math.nan
        if not (s_next > lo and s_next < hi):
            if hi == math.inf:
                s_next = 2.0 * s if s > lo else 2.0 * lo + 1e-8
            else:
                s_next = 0.5 * (lo + hi)
        if s_next == s:
            return s, abs(b - b_target) <= tol_b
        s = s_next
        b, db = _otm_call_normalised(x, s, half_x_exp, half_x_exp_inv)
    return s, abs(b - b_target) <= tol_b


@njit(cache=True, parallel=True)
def implied_vol_nb(price, S, K, T, r, q, is_call, tol, max_iter, sigma, status):
    """Fill ``sigma`` with the BSM implied volatility of each price and ``status`` with an IV_* code.

    The price is moved to forward terms (u = price e^{rT}, F = S e^{(r-q)T}), normalised by
    sqrt(F K), and an in-the-money option is swapped for its out-of-the-money twin by put-call
    parity, so a single solver for an OTM call in x = -|ln(F/K)| handles every row. No-arbitrage
    bounds: max(0, S e^{-qT} - K e^{-rT}) <= call <= S e^{-qT}, and the put mirror image.
    A price up to ``tol`` below the lower bound is treated as sitting on it (a small vol).
    """
    n = sigma.shape[0]
    sp = _step(price, n)
    sS = _step(S, n)
    sK = _step(K, n)
    sT = _step(T, n)
    sr = _step(r, n)
    sq = _step(q, n)
    sc = _step(is_call, n)
    for i in prange(n):
        p = price[i * sp]
        s = S[i * sS]
        k = K[i * sK]
        t = T[i * sT]
        rr = r[i * sr]
        qq = q[i * sq]
        call = is_call[i * sc]
        if not (s > 0.0 and k > 0.0 and t > 0.0 and p == p and rr == rr and qq == qq):
            sigma[i] = np.nan
            status[i] = IV_INVALID_INPUT
            continue
        discount = math.exp(-rr * t)
        forward = s * math.exp((rr - qq) * t)
        undiscounted = p / discount
        intrinsic = forward - k if call else k - forward
        upper = forward if call else k
        time_value = undiscounted - max(intrinsic, 0.0)
        tol_u = tol / discount
        if time_value < -tol_u:
            sigma[i] = np.nan
            status[i] = IV_BELOW_LOWER_BOUND
            continue
        if undiscounted >= upper:
            sigma[i] = np.nan
            status[i] = IV_ABOVE_UPPER_BOUND
            continue
        # within tol below the bound: any small enough vol reproduces the price, find one
        time_value = max(time_value, 0.0)
        # the out-of-the-money twin's undiscounted price equals the time value
        scale = math.sqrt(forward * k)
        x = -abs(math.log(forward / k))
        # half the tolerance inside: rounding between the normalised and the plain BSM price
        # must not push the final price error past tol
        total_vol, converged = implied_total_vol_nb(time_value / scale, x, 0.5 * tol_u / scale, max_iter)
        sigma[i] = total_vol / math.sqrt(t)
        status[i] = IV_OK if converged else IV_NOT_CONVERGED
