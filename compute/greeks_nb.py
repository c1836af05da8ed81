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
DAYS_PER_YEAR = 365.0

IV_OK = 0
IV_BELOW_LOWER_BOUND = 1
IV_ABOVE_UPPER_BOUND = 2
IV_INVALID_INPUT = 3
IV_NOT_CONVERGED = 4


# W. J. Cody's rational Chebyshev approximations of the normal CDF (ACM TOMS 715, SPECFUN
# ANORM; the coefficients R's pnorm uses), good to about 1e-16. Used instead of math.erfc
# because the tail branches need only exp(-x^2/2), which the Greeks already compute for the
# density: the kernel pays one exp for n(d1), N(d1) and N(d2) instead of three transcendentals.
_A0, _A1, _A2, _A3, _A4 = (
    2.2352520354606839287, 161.02823106855587881, 1067.6894854603709582,
    18154.981253343561249, 0.065682337918207449113,
)
_B0, _B1, _B2, _B3 = (
    47.20258190468824187, 976.09855173777669322, 10260.932208618978205, 45507.789335026729956,
)
_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8 = (
    0.39894151208813466764, 8.8831497943883759412, 93.506656132177855979,
    597.27027639480026226, 2494.5375852903726711, 6848.1904505362823326,
    11602.651437647350124, 9842.7148383839780218, 1.0765576773720192317e-8,
)
_D0, _D1, _D2, _D3, _D4, _D5, _D6, _D7 = (
    22.266688044328115691, 235.38790178262499861, 1519.377599407554805,
    6485.558298266760755, 18615.571640885098091, 34900.952721145977266,
    38912.003286093271411, 19685.429676859990727,
)
_P0, _P1, _P2, _P3, _P4, _P5 = (
    0.21589853405795699, 0.1274011611602473639, 0.022235277870649807,
    0.001421619193227893466, 2.9112874951168792e-5, 0.02307344176494017303,
)
_Q0, _Q1, _Q2, _Q3, _Q4 = (
    1.28426009614491121, 0.468238212480865118, 0.0659881378689285515,
    0.00378239633202758244, 7.29751555083966205e-5,
)
_CODY_CENTRAL = 0.67448975
_CODY_SQRT_32 = math.sqrt(32.0)
_CODY_CUTOFF = 37.5193


@njit(cache=True, inline="always")
def norm_cdf_given_exp_nb(x, exp_half_x2):
    """N(x) given exp_half_x2 = exp(-x^2 / 2) (Cody's algorithm without its own exp call).

    The lower tail is computed directly, so N(-d) for puts keeps full relative accuracy.
    """
    y = abs(x)
    if y <= _CODY_CENTRAL:
        xsq = x * x
        xnum = ((((_A4 * xsq + _A0) * xsq + _A1) * xsq + _A2) * xsq)
        xden = ((((xsq + _B0) * xsq + _B1) * xsq + _B2) * xsq)
        return 0.5 + x * (xnum + _A3) / (xden + _B3)
    if y <= _CODY_SQRT_32:
        xnum = _C8 * y
        xden = y
        xnum = (xnum + _C0) * y
        xden = (xden + _D0) * y
        xnum = (xnum + _C1) * y
        xden = (xden + _D1) * y
        xnum = (xnum + _C2) * y
        xden = (xden + _D2) * y
        xnum = (xnum + _C3) * y
        xden = (xden + _D3) * y
        xnum = (xnum + _C4) * y
        xden = (xden + _D4) * y
        xnum = (xnum + _C5) * y
        xden = (xden + _D5) * y
        xnum = (xnum + _C6) * y
        xden = (xden + _D6) * y
        tail = exp_half_x2 * (xnum + _C7) / (xden + _D7)
    elif y < _CODY_CUTOFF:
        xsq = 1.0 / (x * x)
        xnum = _P5 * xsq
        xden = xsq
        xnum = (xnum + _P0) * xsq
        xden = (xden + _Q0) * xsq
        xnum = (xnum + _P1) * xsq
        xden = (xden + _Q1) * xsq
        xnum = (xnum + _P2) * xsq
        xden = (xden + _Q2) * xsq
        xnum = (xnum + _P3) * xsq
        xden = (xden + _Q3) * xsq
        temp = xsq * (xnum + _P4) / (xden + _Q4)
        tail = exp_half_x2 * (SQRT_2PI_INV - temp) / y
    elif y == y:
        tail = 0.0
    else:
        return math.nan
    return tail if x < 0.0 else 1.0 - tail


@njit(cache=True, inline="always")
def norm_cdf_nb(x):
    """Standard normal CDF N(x) (Cody), accurate in the lower tail."""
    return norm_cdf_given_exp_nb(x, math.exp(-0.5 * x * x))


@njit(cache=True, inline="always")
def _step(a, n):
    return 1 if a.shape[0] == n else 0


@njit(cache=True, inline="always")
def _half_square_exps(d1, d2, spot_disc, strike_disc):
    """exp(-d1^2/2) and exp(-d2^2/2) for one exp call: since d1^2 - d2^2 = 2 ln(F/K),
    exp(-d2^2/2) = exp(-d1^2/2) S e^{-qT} / (K e^{-rT}). Falls back to a direct exp when the
    first one underflows (|d1| > ~37, where the identity would lose the second)."""
    exp_d1 = math.exp(-0.5 * d1 * d1)
    if exp_d1 > 1e-290:
        exp_d2 = exp_d1 * (spot_disc / strike_disc)
    else:
        exp_d2 = math.exp(-0.5 * d2 * d2)
    return exp_d1, exp_d2


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
        vol_sqrt_t = vol * sqrt_t
        d1 = (math.log(s / k) + (rr - qq + 0.5 * vol * vol) * t) / vol_sqrt_t
        d2 = d1 - vol_sqrt_t
        spot_disc = s * math.exp(-qq * t)
        strike_disc = k * math.exp(-rr * t)
        exp_d1, exp_d2 = _half_square_exps(d1, d2, spot_disc, strike_disc)
        spot_pdf = spot_disc * SQRT_2PI_INV * exp_d1
        theta_decay = -spot_pdf * vol / (2.0 * sqrt_t)
        gamma[i] = spot_pdf / (s * s * vol_sqrt_t)
        vega[i] = spot_pdf * sqrt_t * 0.01
        if call:
            n_d1 = norm_cdf_given_exp_nb(d1, exp_d1)
            n_d2 = norm_cdf_given_exp_nb(d2, exp_d2)
            price[i] = spot_disc * n_d1 - strike_disc * n_d2
            delta[i] = spot_disc / s * n_d1
            theta[i] = (theta_decay + qq * spot_disc * n_d1 - rr * strike_disc * n_d2) / DAYS_PER_YEAR
            rho[i] = strike_disc * t * n_d2 * 0.01
        else:
            n_md1 = norm_cdf_given_exp_nb(-d1, exp_d1)
            n_md2 = norm_cdf_given_exp_nb(-d2, exp_d2)
            price[i] = strike_disc * n_md2 - spot_disc * n_md1
            delta[i] = -spot_disc / s * n_md1
            theta[i] = (theta_decay - qq * spot_disc * n_md1 + rr * strike_disc * n_md2) / DAYS_PER_YEAR
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
        exp_d1, exp_d2 = _half_square_exps(d1, d2, spot_disc, strike_disc)
        if call:
            price[i] = spot_disc * norm_cdf_given_exp_nb(d1, exp_d1) - strike_disc * norm_cdf_given_exp_nb(d2, exp_d2)
        else:
            price[i] = strike_disc * norm_cdf_given_exp_nb(-d2, exp_d2) - spot_disc * norm_cdf_given_exp_nb(-d1, exp_d1)


@njit(cache=True, inline="always")
def _otm_call_normalised(x, s, half_x_exp, half_x_exp_inv):
    """Normalised out-of-the-money call b(x, s) = e^{x/2} N(x/s + s/2) - e^{-x/2} N(x/s - s/2)
    for x = ln(F/K) <= 0 and total volatility s = sigma sqrt T > 0, plus db/ds = e^{x/2} n(d1)."""
    d1 = x / s + 0.5 * s
    d2 = d1 - s
    exp_d1 = math.exp(-0.5 * d1 * d1)
    # d2^2 = d1^2 - 2x, so exp(-d2^2/2) = exp(-d1^2/2) e^x (no second exp call)
    exp_d2 = exp_d1 * (half_x_exp * half_x_exp)
    b = half_x_exp * norm_cdf_given_exp_nb(d1, exp_d1) - half_x_exp_inv * norm_cdf_given_exp_nb(d2, exp_d2)
    db = half_x_exp * SQRT_2PI_INV * exp_d1
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
