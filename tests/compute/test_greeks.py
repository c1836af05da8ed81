"""BSM prices, Greeks and implied vol against mibian, Hull's worked examples and identities."""

import warnings

import mibian
import numba
import numpy as np
import pytest
from scipy.special import ndtr

from compute import greeks_nb
from compute.greeks import (
    GreeksResult,
    ImpliedVolWarning,
    allocate_greeks,
    bsm_greeks,
    bsm_price,
    implied_vol,
    position_greeks,
    select_volatility,
)


def _random_contracts(n, seed):
    """Calls and puts, expiries from 1 day to 2 years (both ends forced), varied r, q, vol."""
    rng = np.random.default_rng(seed)
    spot = rng.uniform(20.0, 500.0, n)
    strike = np.round(spot * np.exp(rng.uniform(-0.4, 0.4, n)), 2)
    days = rng.integers(1, 731, n).astype(float)
    days[: n // 5] = 1.0
    days[n // 5 : 2 * n // 5] = 730.0
    rate = rng.uniform(0.0, 0.08, n)
    div_yield = rng.uniform(0.0, 0.06, n)
    vol = rng.uniform(0.05, 1.2, n)
    is_call = rng.random(n) < 0.5
    return spot, strike, days, rate, div_yield, vol, is_call


def test_matches_mibian_on_10000_random_contracts():
    spot, strike, days, rate, div_yield, vol, is_call = _random_contracts(10_000, seed=7)
    got = bsm_greeks(spot, strike, days / 365.0, rate, div_yield, vol, is_call)
    expected = np.empty((6, spot.size))
    for i in range(spot.size):
        # mibian.Me takes r in percent, *annual dividends in dollars* (yield = dividend / S),
        # days to expiry and vol in percent
        m = mibian.Me(
            [spot[i], strike[i], rate[i] * 100.0, div_yield[i] * spot[i], days[i]],
            volatility=vol[i] * 100.0,
        )
        if is_call[i]:
            expected[:, i] = (m.callPrice, m.callDelta, m.gamma, m.callTheta, m.vega, m.callRho)
        else:
            expected[:, i] = (m.putPrice, m.putDelta, m.gamma, m.putTheta, m.vega, m.putRho)
    for row, name in enumerate(GreeksResult._fields):
        np.testing.assert_allclose(
            getattr(got, name), expected[row], rtol=1e-9, atol=1e-11, err_msg=f"{name} differs from mibian"
        )


def test_hull_worked_example_prices():
    # Hull, Options, Futures and Other Derivatives: S=42, K=40, r=10%, sigma=20%, T=0.5
    call = bsm_price(42.0, 40.0, 0.5, 0.10, 0.0, 0.20, True)
    put = bsm_price(42.0, 40.0, 0.5, 0.10, 0.0, 0.20, False)
    assert round(float(call), 2) == 4.76
    assert round(float(put), 2) == 0.81


def test_hull_index_option_with_dividend_yield():
    # Hull: 2-month European call on an index at 930, K=900, r=8%, q=3%, sigma=20% -> 51.83
    call = bsm_price(930.0, 900.0, 2.0 / 12.0, 0.08, 0.03, 0.20, True)
    assert round(float(call), 2) == 51.83


def test_hull_greeks_table():
    # Hull's running Greeks example: S=49, K=50, r=5%, sigma=20%, T=20 weeks (0.3846 years):
    # price 2.40, delta 0.522, gamma 0.066, theta -4.31/year, vega 12.1 per 1.00, rho 8.91 per 1.00
    g = bsm_greeks(49.0, 50.0, 0.3846, 0.05, 0.0, 0.20, True)
    assert round(float(g.price), 2) == 2.40
    assert round(float(g.delta), 3) == 0.522
    assert round(float(g.gamma), 3) == 0.066
    assert round(float(g.theta) * 365.0, 2) == -4.31
    assert round(float(g.vega) * 100.0, 1) == 12.1
    assert round(float(g.rho) * 100.0, 2) == 8.91


def test_put_call_parity_with_dividends():
    spot, strike, days, rate, div_yield, vol, _ = _random_contracts(5_000, seed=3)
    t = days / 365.0
    call = bsm_greeks(spot, strike, t, rate, div_yield, vol, True)
    put = bsm_greeks(spot, strike, t, rate, div_yield, vol, False)
    forward_value = spot * np.exp(-div_yield * t) - strike * np.exp(-rate * t)
    np.testing.assert_allclose(call.price - put.price, forward_value, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(call.delta - put.delta, np.exp(-div_yield * t), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(call.gamma, put.gamma, rtol=1e-12)
    np.testing.assert_allclose(call.vega, put.vega, rtol=1e-12)
    np.testing.assert_allclose(call.rho - put.rho, strike * t * np.exp(-rate * t) / 100.0, rtol=1e-10, atol=1e-12)


def test_expired_options_give_intrinsic_and_zero_greeks():
    spot = np.array([110.0, 90.0, 110.0, 90.0, 100.0])
    is_call = np.array([True, True, False, False, True])
    for t in (0.0, -0.1):
        g = bsm_greeks(spot, 100.0, t, 0.05, 0.01, 0.3, is_call)
        np.testing.assert_array_equal(g.price, [10.0, 0.0, 0.0, 10.0, 0.0])
        for name in ("delta", "gamma", "theta", "vega", "rho"):
            np.testing.assert_array_equal(getattr(g, name), 0.0)


def test_bad_inputs_give_nan_rows_not_exceptions():
    sigma = np.array([0.0, -0.2, np.nan, 0.2, 0.2, 0.2])
    spot = np.array([100.0, 100.0, 100.0, np.nan, 100.0, -5.0])
    strike = np.array([100.0, 100.0, 100.0, 100.0, 0.0, 100.0])
    g = bsm_greeks(spot, strike, 0.5, 0.03, 0.0, sigma, True)
    for name in GreeksResult._fields:
        assert np.isnan(getattr(g, name)).all(), name
    assert np.isnan(bsm_price(spot, strike, 0.5, 0.03, 0.0, sigma, False)).all()


def test_broadcasting_and_scalars():
    spot = np.array([[90.0], [100.0], [110.0]])
    strike = np.array([[95.0, 100.0, 105.0, 110.0]])
    prices = bsm_price(spot, strike, 0.25, 0.04, 0.01, 0.25, True)
    assert prices.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            single = bsm_price(float(spot[i, 0]), float(strike[0, j]), 0.25, 0.04, 0.01, 0.25, True)
            assert single.shape == ()
            assert prices[i, j] == float(single)
    mixed = bsm_greeks(100.0, strike.ravel(), 0.25, 0.04, 0.01, 0.25, np.array([True, False, True, False]))
    assert mixed.delta.shape == (4,)
    assert mixed.delta[0] > 0 > mixed.delta[1]


def test_out_buffers_are_filled_in_place():
    spot, strike, days, rate, div_yield, vol, is_call = _random_contracts(1_000, seed=11)
    out = allocate_greeks(spot.shape)
    chunk_size_before = numba.get_parallel_chunksize()
    result = bsm_greeks(spot, strike, days / 365.0, rate, div_yield, vol, is_call, out=out)
    assert result is out
    assert numba.get_parallel_chunksize() == chunk_size_before  # scheduling setting restored
    fresh = bsm_greeks(spot, strike, days / 365.0, rate, div_yield, vol, is_call)
    for name in GreeksResult._fields:
        np.testing.assert_array_equal(getattr(out, name), getattr(fresh, name))
    with pytest.raises(ValueError, match="out.price"):
        bsm_greeks(spot, strike, 0.5, 0.01, 0.0, 0.2, True, out=allocate_greeks(10))


def test_implied_vol_round_trip_to_1e_10_in_price():
    spot, strike, days, rate, div_yield, vol, is_call = _random_contracts(50_000, seed=5)
    t = days / 365.0
    price = bsm_price(spot, strike, t, rate, div_yield, vol, is_call)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        iv = implied_vol(price, spot, strike, t, rate, div_yield, is_call)
    assert not np.isnan(iv).any()
    repriced = bsm_price(spot, strike, t, rate, div_yield, iv, is_call)
    assert np.max(np.abs(repriced - price)) <= 1e-10
    # where the price is sensitive to vol the vol itself is recovered
    vega = bsm_greeks(spot, strike, t, rate, div_yield, vol, is_call).vega
    sensitive = vega > 1e-3
    np.testing.assert_allclose(iv[sensitive], vol[sensitive], atol=1e-8)


def test_implied_vol_extremes_converge():
    # deep OTM short-dated, deep ITM long-dated and very high vol
    spot = np.array([100.0, 100.0, 100.0, 100.0, 100.0])
    strike = np.array([160.0, 40.0, 100.0, 100.0, 70.0])
    t = np.array([2.0 / 365.0, 2.0, 1.0, 1e-3, 0.5])
    vol = np.array([0.9, 0.3, 4.0, 0.2, 0.01])
    for is_call in (True, False):
        price = bsm_price(spot, strike, t, 0.02, 0.01, vol, is_call)
        iv = implied_vol(price, spot, strike, t, 0.02, 0.01, is_call)
        repriced = bsm_price(spot, strike, t, 0.02, 0.01, iv, is_call)
        assert np.max(np.abs(repriced - price)) <= 1e-10


def test_implied_vol_below_intrinsic_is_nan_with_one_warning():
    spot = np.array([120.0, 100.0, 80.0, 100.0])
    strike = np.array([100.0, 100.0, 100.0, 100.0])
    # rows 0 and 2 are below intrinsic (call 120/100 at 15, put 80/100 at 12)
    price = np.array([15.0, 5.0, 12.0, 500.0])
    is_call = np.array([True, True, False, True])
    with pytest.warns(ImpliedVolWarning) as record:
        iv = implied_vol(price, spot, strike, 0.5, 0.03, 0.0, is_call)
    assert len(record) == 1
    message = str(record[0].message)
    assert "3 of 4" in message
    assert "2 below the no-arbitrage lower bound" in message
    assert "1 above the no-arbitrage upper bound" in message
    assert np.isnan(iv[[0, 2, 3]]).all()
    assert 0.0 < iv[1] < 1.0


def test_position_greeks_hand_worked():
    per_share = bsm_greeks(49.0, 50.0, 0.3846, 0.05, 0.0, 0.20, True)
    short_ten = position_greeks(per_share, -10, spot=49.0)
    np.testing.assert_allclose(short_ten.delta, -1000.0 * per_share.delta)
    np.testing.assert_allclose(short_ten.theta, -1000.0 * per_share.theta)
    np.testing.assert_allclose(short_ten.dollar_delta, -1000.0 * per_share.delta * 49.0)
    # 1 % move: 0.5 * gamma * (0.49)^2 per share
    np.testing.assert_allclose(short_ten.dollar_gamma, -1000.0 * 0.5 * per_share.gamma * 0.49**2)
    assert np.isnan(position_greeks(per_share, 1).dollar_delta)


def test_select_volatility_prefers_chain_iv_then_realised():
    sigma, source = select_volatility([0.25, np.nan, 0.0, np.nan], [0.30, 0.35, 0.40, np.nan])
    np.testing.assert_array_equal(sigma[:3], [0.25, 0.35, 0.40])
    assert np.isnan(sigma[3])
    assert list(source) == ["implied", "realised", "realised", "missing"]


@numba.njit
def _apply_nb(kernel, x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = kernel(x[i])
    return out


def _cdf_test_points():
    rng = np.random.default_rng(17)
    edges = np.array([greeks_nb._CODY_CENTRAL, greeks_nb._CODY_SQRT_32, 38.0])
    edges = np.concatenate([edges, np.nextafter(edges, 0.0), np.nextafter(edges, np.inf)])
    return np.concatenate(
        [np.linspace(-38.0, 38.0, 760_001), rng.uniform(-38.0, 38.0, 200_000), edges, -edges, [0.0, -0.0]]
    )


def test_norm_cdf_matches_scipy_ndtr_over_minus_38_to_38():
    x = _cdf_test_points()
    got = _apply_nb(greeks_nb.norm_cdf_nb, x)
    expected = ndtr(x)
    assert np.max(np.abs(got - expected)) <= 1e-14
    # the lower tail is computed directly, so it is accurate relative to its own size as well
    # (scipy's ndtr is itself good to ~2e-13 relative out at x = -37)
    tail = (x < 0.0) & (expected > np.finfo(float).tiny)
    np.testing.assert_allclose(got[tail], expected[tail], rtol=1e-12, atol=0.0)
    assert got[x == -38.0].min() > 0.0  # N(-38) = 2.9e-316 (subnormal), not flushed to 0
    special = _apply_nb(greeks_nb.norm_cdf_nb, np.array([np.inf, -np.inf, np.nan, 1e300, -1e300, -39.0]))
    np.testing.assert_array_equal(special, [1.0, 0.0, np.nan, 1.0, 0.0, 0.0])


def test_norm_cdf_and_deep_out_of_the_money_prices_against_50_digit_arithmetic():
    mp = pytest.importorskip("mpmath")
    rng = np.random.default_rng(31)
    x = np.concatenate([np.linspace(-37.5, 8.0, 1001), rng.uniform(-38.0, 0.0, 500)])
    with mp.workdps(50):
        exact = np.array([float(mp.ncdf(mp.mpf(v))) for v in x])
    normal = exact > np.finfo(float).tiny
    got = _apply_nb(greeks_nb.norm_cdf_nb, x)
    np.testing.assert_allclose(got[normal], exact[normal], rtol=2e-15, atol=0.0)
    # far out-of-the-money prices are a difference of two tiny tails: still ~1e-12 relative
    n = 1500
    spot = 100.0 * np.exp(rng.uniform(-2.5, 2.5, n))
    t = rng.choice([1.0 / 365.0, 7.0 / 365.0, 0.25, 1.0, 3.0], n)
    rate, div_yield = rng.uniform(0.0, 0.08, n), rng.uniform(0.0, 0.06, n)
    vol = rng.choice([0.03, 0.1, 0.3, 1.0], n)
    is_call = rng.random(n) < 0.5

    def exact_price(s, t_, r_, q_, v_, call):
        s, t_, r_, q_, v_ = (mp.mpf(float(a)) for a in (s, t_, r_, q_, v_))
        d1 = (mp.log(s / 100) + (r_ - q_ + v_ * v_ / 2) * t_) / (v_ * mp.sqrt(t_))
        d2 = d1 - v_ * mp.sqrt(t_)
        sign = 1 if call else -1
        return float(sign * (s * mp.exp(-q_ * t_) * mp.ncdf(sign * d1) - 100 * mp.exp(-r_ * t_) * mp.ncdf(sign * d2)))

    with mp.workdps(50):
        expected = np.array([exact_price(*row) for row in zip(spot, t, rate, div_yield, vol, is_call)])
    got = bsm_price(spot, 100.0, t, rate, div_yield, vol, is_call)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    far_out = (expected < 1e-3 * np.minimum(spot, 100.0)) & (expected > 1e-290)
    assert far_out.sum() > 200
    np.testing.assert_allclose(got[far_out], expected[far_out], rtol=1e-11, atol=0.0)


def test_exp_and_log_within_one_ulp_of_numpy():
    rng = np.random.default_rng(23)
    x = np.concatenate([rng.uniform(-745.0, 709.7, 300_000), rng.uniform(-1.0, 1.0, 100_000), [0.0, 1e-300]])
    got = _apply_nb(greeks_nb.exp_nb, x)
    expected = np.exp(x)
    normal = expected > np.finfo(float).tiny
    assert np.all(np.abs(got[normal] - expected[normal]) <= np.spacing(expected[normal]))
    assert np.all(np.abs(got[~normal] - expected[~normal]) <= np.spacing(0.0))  # subnormal results
    y = np.concatenate([np.exp(rng.uniform(-700.0, 700.0, 300_000)), 1.0 + rng.uniform(-1e-3, 1e-3, 100_000), [1.0]])
    got = _apply_nb(greeks_nb.log_nb, y)
    expected = np.log(y)
    assert np.all(np.abs(got - expected) <= np.spacing(np.abs(expected)))
    with np.errstate(all="ignore"):
        edge_x = np.array([np.inf, -np.inf, np.nan, 710.0, -746.0])
        np.testing.assert_array_equal(_apply_nb(greeks_nb.exp_nb, edge_x), np.exp(edge_x))
        edge_y = np.array([np.inf, 0.0, -1.0, np.nan, 5e-324, 1e-310])
        np.testing.assert_array_equal(_apply_nb(greeks_nb.log_nb, edge_y), np.log(edge_y))


def test_put_call_parity_deep_in_and_out_of_the_money():
    # |d1|, |d2| out to ~40: every range of the normal CDF, in both tails, on both the
    # contiguous and the broadcast (scalar inputs) path of the kernel
    rng = np.random.default_rng(29)
    n = 20_000
    spot = 100.0 * np.exp(rng.uniform(-3.0, 3.0, n))
    t = rng.choice([1.0 / 365.0, 7.0 / 365.0, 0.25, 1.0, 5.0], n)
    vol = rng.choice([0.01, 0.05, 0.2, 1.0, 3.0], n)
    for r, q in ((rng.uniform(0.0, 0.08, n), rng.uniform(0.0, 0.06, n)), (0.03, 0.01)):
        call = bsm_greeks(spot, 100.0, t, r, q, vol, True)
        put = bsm_greeks(spot, 100.0, t, r, q, vol, False)
        forward_value = spot * np.exp(-np.asarray(q) * t) - 100.0 * np.exp(-np.asarray(r) * t)
        np.testing.assert_allclose(call.price - put.price, forward_value, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(call.delta - put.delta, np.exp(-np.asarray(q) * t), rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(call.gamma, put.gamma)
        np.testing.assert_array_equal(call.vega, put.vega)
        # no negative prices beyond rounding at the bottom of the float range
        assert call.price.min() > -1e-300 and put.price.min() > -1e-300


def test_result_does_not_depend_on_position_or_broadcasting():
    # the vectorised loop body, its scalar remainder and the broadcast path round identically
    spot, strike, days, rate, div_yield, vol, is_call = _random_contracts(999, seed=13)
    t = days / 365.0
    full = bsm_greeks(spot, strike, t, rate, div_yield, vol, is_call)
    for i in range(0, 999, 37):
        single = bsm_greeks(spot[i], strike[i], t[i], rate[i], div_yield[i], vol[i], is_call[i])
        for name in GreeksResult._fields:
            assert getattr(single, name) == getattr(full, name)[i], (name, i)
    broadcast = bsm_greeks(spot, strike, t, 0.03, 0.01, vol, is_call)
    materialised = bsm_greeks(spot, strike, t, np.full(999, 0.03), np.full(999, 0.01), vol, is_call)
    for name in GreeksResult._fields:
        np.testing.assert_array_equal(getattr(broadcast, name), getattr(materialised, name))
    np.testing.assert_array_equal(bsm_price(spot, strike, t, 0.03, 0.01, vol, is_call), broadcast.price)
