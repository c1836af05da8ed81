"""Synthetic history back to 1990 (issue 16, item 2): every NYSE session of 1990-1999 has a
positive, valid bar (exchange_calendars' XNYS as the reference), the backfill joins the 2000
history with an ordinary daily move, and nothing from 2000-01-03 on changed: a SHA-256 of
2000-2035 bars, factor returns, minutes, a chain and quotes equals the one computed on the
code before the backfill existed (main at b3f812c)."""

import hashlib
import warnings

import numpy as np
import pandas as pd
import pytest

from compute.marketdata import MarketDataError, make_provider
from compute.marketdata.factors import CORRELATION, DAILY_VOL, FACTORS

#: computed with the pre-backfill code (main b3f812c) by the very function below, on the CPUs this
#: suite has run on: numpy's exp and log take other code paths on different CPUs and differ in
#: the last bit (an Intel Xeon with AVX-512 gives the first, an AMD EPYC gives the second with
#: or without AVX-512: numpy does not dispatch its AVX-512 exp/log there), so the bytes must
#: equal one of the recorded pre-backfill digests; the twin test further down compares bit for
#: bit with the old generator on any CPU.
BEFORE = {
    0: ("f0087464c42998783b5e3dcefcbaa4d0d7b583339f442e7dd40874644c8517b3",
        "4e273c294401b5f3fee6f4e4e0249f9d7a8eb93297f862e57b4db97acae32d95"),
    7: ("96e789195b5fe86c5ef9d159004b6fb144e7da3586004edc536dfbf8e52c56ca",
        "8a4020ac3d7cbbb3b0a0291c6e762ae07f6e23718408dabddf0276b39930e949"),
}


TICKERS = ["SPY", "AAPL", "MSFT", "TLT", "USO", "MTUM", "FXNAX", "VIX", "UNKNOWNCO", "PTON"]
AFTER_HORIZON = pd.Timestamp("2036-01-02", tz="UTC").timestamp()


def digest(seed: int) -> str:
    p = make_provider("synthetic", seed=seed, clock=lambda: AFTER_HORIZON)
    h = hashlib.sha256()
    for t in TICKERS:
        d = p.daily_bars(t, "2000-01-03", "2035-12-31")
        h.update(t.encode())
        h.update(d.index.asi8.tobytes())
        h.update(np.ascontiguousarray(d.to_numpy()).tobytes())
    f = p.factor_returns("2000-01-03", "2035-12-31")
    h.update(f.index.asi8.tobytes())
    h.update(np.ascontiguousarray(f.to_numpy()).tobytes())
    for t, day in [("SPY", "2000-01-03"), ("AAPL", "2024-06-05"), ("VIX", "2001-09-17")]:
        m = p.intraday_bars(t, day, day)
        h.update(m.index.asi8.tobytes())
        h.update(np.ascontiguousarray(m.to_numpy()).tobytes())
    q = make_provider("synthetic", seed=seed, clock=lambda: pd.Timestamp("2024-03-05T15:00:00Z").timestamp())
    h.update(q.option_chain("SPY", strikes=5).to_csv().encode())
    h.update(repr(sorted(q.latest_quote(["SPY", "AAPL"]).items())).encode())
    return h.hexdigest()


@pytest.mark.parametrize("seed", [0, 7])
def test_everything_from_2000_is_byte_identical_to_before(seed):
    assert digest(seed) in BEFORE[seed]


@pytest.fixture(scope="module")
def provider():
    return make_provider("synthetic", seed=7, clock=lambda: AFTER_HORIZON)


def _xnys_sessions(start, end) -> pd.DatetimeIndex:
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar("XNYS", start="1990-01-01", end="2000-12-31")
    s = cal.sessions
    s = s.tz_localize(None) if s.tz is not None else s
    return s[(s >= pd.Timestamp(start)) & (s <= pd.Timestamp(end))]


@pytest.mark.parametrize("ticker", ["SPY", "AAPL", "TLT", "USO", "FXNAX", "VIX", "UNKNOWNCO"])
def test_every_1990s_session_has_a_positive_valid_bar(provider, ticker):
    bars = provider.daily_bars(ticker, "1990-01-01", "1999-12-31")
    days = bars.index.tz_convert("America/New_York").tz_localize(None).normalize()
    expected = _xnys_sessions("1990-01-01", "1999-12-31")
    assert len(expected) == 2528 and expected[0] == pd.Timestamp("1990-01-02")
    assert days.equals(pd.DatetimeIndex(expected).as_unit(days.unit))
    assert pd.Timestamp("1994-04-27") not in days     # closed: President Nixon's funeral
    assert (bars[["open", "high", "low", "close"]] > 0).all().all()
    assert np.isfinite(bars.to_numpy()).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars.index.tz_convert("America/New_York").strftime("%H:%M") == "09:30").all()
    # nothing before the calendar
    with pytest.raises(MarketDataError):
        provider.price_at(ticker, "1990-01-02T10:00")


@pytest.mark.parametrize("ticker", ["SPY", "AAPL", "MSFT", "TLT", "USO", "FXNAX", "VIX", "UNKNOWNCO"])
def test_backfill_joins_the_2000_series_with_an_ordinary_move(provider, ticker):
    bars = provider.daily_bars(ticker, "1990-01-02", "2009-12-31")
    r = np.log(bars["close"]).diff().dropna()
    join = float(r.loc[r.index >= pd.Timestamp("2000-01-03 09:30", tz="America/New_York")].iloc[0])
    before, after = r[r.index < pd.Timestamp("2000-01-01", tz="UTC")], r[r.index >= pd.Timestamp("2000-01-04", tz="UTC")]
    scale = float(pd.concat([before, after]).std())
    assert abs(join) < 5.0 * scale, (join, scale)
    # the backfill moves like the forward history: similar daily volatility over a decade each
    assert 0.6 < before.std() / after.std() < 1.6


def test_spy_joins_with_exactly_the_market_return_of_2000_01_03(provider):
    f = provider.factor_returns("1990-01-01", "2000-01-31")
    spy = provider.daily_bars("SPY", "1990-01-01", "2000-01-31")["close"].pct_change().iloc[1:]
    # SPY is the market factor in the backfill too, across the join included
    np.testing.assert_allclose(spy.to_numpy(), f["market"].iloc[1:].to_numpy(), atol=1e-12)
    assert spy.index[spy.index >= pd.Timestamp("2000-01-03", tz="UTC")][0] == f.index[f.index >= pd.Timestamp(
        "2000-01-03", tz="UTC")][0]


def test_backfill_factors_keep_the_model_structure(provider):
    f = provider.factor_returns("1990-01-01", "1999-12-31")
    assert list(f.columns) == list(FACTORS) and len(f) == 2528
    np.testing.assert_allclose(f.corr().to_numpy(), CORRELATION, atol=6 / np.sqrt(len(f)))
    std = f.std().to_numpy()
    np.testing.assert_allclose(std / std[0], DAILY_VOL / DAILY_VOL[0], rtol=0.12)
    # an independent stream: not the 2000s replayed
    later = provider.factor_returns("2000-01-03", "2009-12-31")
    n = min(len(f), len(later))
    assert abs(np.corrcoef(f["market"].to_numpy()[:n], later["market"].to_numpy()[:n])[0, 1]) < 0.1


def test_bars_in_the_1990s_do_not_depend_on_the_range(provider):
    long = provider.daily_bars("AAPL", "1990-01-02", "2005-12-30")
    short = provider.daily_bars("AAPL", "1994-04-25", "1994-04-29")
    pd.testing.assert_frame_equal(long.loc[short.index], short)
    minutes = provider.intraday_bars("AAPL", "1994-04-25", "1994-04-25", freq="1h")
    assert len(minutes) == 7 and minutes["close"].iloc[-1] == pytest.approx(short["close"].iloc[0])


def _pre_backfill_history(seed: int, ticker: str):
    """The generator as it was before the backfill (main b3f812c, verbatim but for names):
    one stream from 2000-01-03 over the forward horizon. Machine-independent twin of the
    checksum above."""
    from compute.marketdata import calendar
    from compute.marketdata import factors as fm
    from compute.marketdata.reference import PRICE_ANCHOR_SESSION, profile
    from compute.marketdata.synthetic import (OVERNIGHT_SHARE, VIX_MEAN_LEVEL, VIX_REVERSION, _rng,
                                              _student_t)
    from compute.marketdata.synthetic_nb import (compound_closes_nb, daily_ohlcv_nb, garch_variance_multiplier_nb,
                                                 idiosyncratic_returns_nb, mean_reverting_log_levels_nb)

    table = calendar.sessions("2000-01-03", fm.HORIZON_END)
    n = len(table)
    frng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(fm.seed_words(seed, "factors"))))
    z = fm.multivariate_t_shocks(frng, n, fm.CORRELATION, fm.STUDENT_T_DOF)
    a, c, b = fm.MARKET_GARCH
    g = garch_variance_multiplier_nb(np.ascontiguousarray(z[:, 0]), a, c, b)
    factor_ret = fm.DAILY_MEAN + fm.DAILY_VOL * np.sqrt(g)[:, None] * z
    prof = profile(ticker)
    rng = _rng(seed, "daily", prof.ticker)
    idio_shock = _student_t(rng, n)
    gap_noise, high_draw, low_draw, volume_noise = (rng.standard_normal(n) for _ in range(4))
    beta = prof.loading_vector()
    systematic_var = float(beta @ fm.factor_covariance() @ beta)
    a, c, b = fm.IDIO_GARCH
    if prof.model == "volatility_index":
        market_surprise = np.ascontiguousarray(factor_ret[:, 0] - fm.DAILY_MEAN[0])
        closes = mean_reverting_log_levels_nb(prof.idio_vol * idio_shock, market_surprise,
                                              prof.loadings.get("market", 0.0), VIX_REVERSION,
                                              np.log(VIX_MEAN_LEVEL), VIX_MEAN_LEVEL)
        closes = np.maximum(closes, 9.0)
        daily_vol = np.full(n, float(np.sqrt(systematic_var + prof.idio_vol**2)))
    else:
        idio = idiosyncratic_returns_nb(idio_shock, prof.idio_vol, a, c, b)
        returns = prof.alpha + factor_ret @ beta + idio
        closes = compound_closes_nb(returns, int(table.index.get_loc(pd.Timestamp(PRICE_ANCHOR_SESSION))), prof.price)
        idio_var = (idio / np.where(idio_shock == 0.0, 1.0, idio_shock)) ** 2
        daily_vol = np.sqrt(systematic_var * g + idio_var)
    if prof.model == "nav":
        return factor_ret, np.stack([closes, closes, closes, closes, np.zeros(n), daily_vol])
    o, h, lo, v = daily_ohlcv_nb(closes, daily_vol, gap_noise, high_draw, low_draw, volume_noise, prof.adv,
                                 OVERNIGHT_SHARE)
    return factor_ret, np.stack([o, h, lo, closes, v, daily_vol])


@pytest.mark.parametrize("ticker", ["SPY", "AAPL", "PTON", "FXNAX", "VIX", "UNKNOWNCO"])
def test_the_2000_on_history_equals_the_pre_backfill_generator_bit_for_bit(ticker):
    from compute.marketdata import factors as fm
    from compute.marketdata.synthetic import daily_history

    factor_ret, old = _pre_backfill_history(7, ticker)
    k = fm.backfill_sessions()
    hist = daily_history(7, ticker)
    new = np.stack([hist.open[k:], hist.high[k:], hist.low[k:], hist.close[k:], hist.volume[k:], hist.daily_vol[k:]])
    assert new.tobytes() == old.tobytes()
    assert fm.factor_returns_array(7)[k:].tobytes() == factor_ret.tobytes()
