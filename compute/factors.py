"""Factor model: definitions, batched joint OLS betas, position and portfolio factor exposures.

Each position's underlying daily simple returns are regressed, with an intercept, jointly on
the Market factor (SPY's return) and six style spreads (style ETF return minus SPY return) over
the last ``window`` trading days (150 by default, 252 allowed). Regressing on spreads rather
than raw ETF returns removes the common market component the style ETFs share with SPY, so the
design is far less collinear and each style beta reads as exposure *beyond* the market.

All series are solved in one numba call (:func:`compute.factors_nb.ols_batch_nb`), each with its
own missing-data mask. A series with fewer than ``min_obs`` (60) usable days is flagged
``limited_history`` and gets NaN (null) betas: we never substitute a made-up number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from compute.factors_nb import ols_batch_nb

DEFAULT_WINDOW = 150
MIN_OBSERVATIONS = 60
MARKET_ETF = "SPY"
MARKET_FACTOR = "Market Beta"
SHORT_INTEREST_FACTOR = "Short Interest"

FACTOR_DEFINITIONS: tuple[dict, ...] = (
    {
        "factor_name": "Market Beta",
        "etf_ticker": "SPY",
        "description": "Sensitivity of the portfolio to overall market movements",
        "calculation_method": "real",
        "display_order": 1,
    },
    {
        "factor_name": "Momentum",
        "etf_ticker": "MTUM",
        "description": "Exposure to stocks that have exhibited strong recent performance",
        "calculation_method": "real",
        "display_order": 2,
    },
    {
        "factor_name": "Value",
        "etf_ticker": "VTV",
        "description": "Exposure to stocks that are considered undervalued relative to their fundamentals",
        "calculation_method": "real",
        "display_order": 3,
    },
    {
        "factor_name": "Growth",
        "etf_ticker": "VUG",
        "description": "Exposure to companies with high growth rates",
        "calculation_method": "real",
        "display_order": 4,
    },
    {
        "factor_name": "Quality",
        "etf_ticker": "QUAL",
        "description": "Exposure to companies with strong balance sheets and stable earnings",
        "calculation_method": "real",
        "display_order": 5,
    },
    {
        "factor_name": "Size",
        "etf_ticker": "IJR",
        "description": "Exposure to smaller companies vs large-cap",
        "calculation_method": "real",
        "display_order": 6,
    },
    {
        "factor_name": "Low Volatility",
        "etf_ticker": "SPLV",
        "description": "Exposure to stocks that have historically exhibited lower price volatility",
        "calculation_method": "real",
        "display_order": 7,
    },
    {
        "factor_name": "Short Interest",
        "etf_ticker": None,
        "description": "Exposure to stocks with high short interest (V1.5 feature)",
        "calculation_method": "mock",
        "display_order": 8,
    },
)

# The regressed factors, in display order; Short Interest has no proxy and is reported as 0.0.
REGRESSION_FACTORS: tuple[str, ...] = tuple(
    d["factor_name"] for d in FACTOR_DEFINITIONS if d["calculation_method"] == "real"
)
FACTOR_ETFS: dict[str, str] = {
    d["factor_name"]: d["etf_ticker"] for d in FACTOR_DEFINITIONS if d["etf_ticker"]
}
ALL_FACTORS: tuple[str, ...] = tuple(d["factor_name"] for d in FACTOR_DEFINITIONS)


def simple_returns(closes: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Daily simple returns close_t / close_{t-1} - 1.

    A missing close makes both adjacent returns NaN (no filling), so a gap never produces an
    invented multi-day return labelled as one day.
    """
    return closes / closes.shift(1) - 1.0


def factor_returns_from_etfs(etf_returns: pd.DataFrame) -> pd.DataFrame:
    """Regressors of the factor model from the proxy ETFs' daily returns.

    Market Beta = r_SPY; each style factor = r_styleETF - r_SPY (a spread). ``etf_returns``
    needs a column per ticker in :data:`FACTOR_ETFS`. Returns a DataFrame with the columns of
    :data:`REGRESSION_FACTORS` on the same index.
    """
    missing = [t for t in FACTOR_ETFS.values() if t not in etf_returns.columns]
    if missing:
        raise ValueError(f"etf_returns lacks the factor proxy columns {missing}")
    market = etf_returns[MARKET_ETF]
    columns = {}
    for name in REGRESSION_FACTORS:
        etf = FACTOR_ETFS[name]
        columns[name] = market if etf == MARKET_ETF else etf_returns[etf] - market
    return pd.DataFrame(columns, index=etf_returns.index)


@dataclass(frozen=True)
class OLSBatch:
    """Plain-array result of :func:`ols_batch`; row i belongs to series i.

    params / tvalues have the intercept in column 0, then one column per regressor.
    """

    params: np.ndarray
    tvalues: np.ndarray
    rsquared: np.ndarray
    resid_std: np.ndarray
    nobs: np.ndarray


def ols_batch(y: np.ndarray, x: np.ndarray, min_obs: int = MIN_OBSERVATIONS) -> OLSBatch:
    """Joint OLS with intercept of each row of ``y`` (n_series, n_obs) on ``x`` (n_obs, k).

    NaNs in ``y`` drop that observation for that series only; NaNs in ``x`` drop the row for
    all series. Results equal statsmodels ``OLS(y, add_constant(x), missing="drop")``: params,
    classical t-values, centred R^2. Series with fewer than ``min_obs`` usable rows get NaN.
    """
    y = np.ascontiguousarray(np.atleast_2d(np.asarray(y, dtype=np.float64)))
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if x.ndim == 1:
        x = x[:, None]
    if y.shape[1] != x.shape[0]:
        raise ValueError(f"y has {y.shape[1]} observations but x has {x.shape[0]}")
    params, tvalues, rsquared, resid_std, nobs = ols_batch_nb(y, x, int(min_obs))
    return OLSBatch(params, tvalues, rsquared, resid_std, nobs)


@dataclass(frozen=True)
class FactorRegression:
    """Per-underlying factor regression results (index: ticker).

    betas, tstats : DataFrame[ticker x REGRESSION_FACTORS], NaN when limited_history
    alpha, alpha_tstat : Series, daily intercept and its t-value
    r_squared : Series; residual_vol : Series, daily std of residuals (for Monte Carlo)
    data_points : Series[int], usable overlapping days; limited_history : Series[bool]
    window, min_obs : the settings used; start, end : first and last date of the window
    """

    betas: pd.DataFrame
    tstats: pd.DataFrame
    alpha: pd.Series
    alpha_tstat: pd.Series
    r_squared: pd.Series
    residual_vol: pd.Series
    data_points: pd.Series
    limited_history: pd.Series
    window: int
    min_obs: int
    start: object
    end: object

    def to_records(self) -> list[dict]:
        """One JSON-ready dict per underlying: betas (Short Interest 0.0) and regression stats.

        NaN betas of limited-history series become None.
        """
        records = []
        for ticker in self.betas.index:
            limited = bool(self.limited_history[ticker])
            exposures = {
                f: (None if limited else float(self.betas.at[ticker, f])) for f in REGRESSION_FACTORS
            }
            exposures[SHORT_INTEREST_FACTOR] = 0.0
            tstats = {
                f: (None if limited else float(self.tstats.at[ticker, f])) for f in REGRESSION_FACTORS
            }
            records.append(
                {
                    "ticker": ticker,
                    "factor_exposures": exposures,
                    "t_stats": tstats,
                    "regression_stats": {
                        "r_squared": None if limited else float(self.r_squared[ticker]),
                        "data_points": int(self.data_points[ticker]),
                        "limited_history": limited,
                        "window": self.window,
                    },
                }
            )
        return records


def regress_factor_betas(
    underlying_returns: pd.DataFrame,
    factor_returns: pd.DataFrame,
    window: int = DEFAULT_WINDOW,
    min_obs: int = MIN_OBSERVATIONS,
) -> FactorRegression:
    """Joint factor betas for every column (underlying) of ``underlying_returns``, in one batch.

    ``factor_returns`` holds the regressors (normally :func:`factor_returns_from_etfs`, any set
    of columns works, e.g. extra rate/oil proxies); its last ``window`` dates define the
    regression window, and each underlying's returns are aligned to those dates (missing dates
    are NaN for that underlying only). Underlyings with fewer than ``min_obs`` overlapping
    non-NaN days are flagged ``limited_history`` with NaN betas.
    """
    if window < min_obs:
        raise ValueError(f"window ({window}) must be at least min_obs ({min_obs})")
    if min_obs <= factor_returns.shape[1] + 1:
        raise ValueError("min_obs must exceed the number of regression parameters")
    factors = factor_returns.sort_index().dropna(how="all").iloc[-window:]
    aligned = underlying_returns.reindex(factors.index)
    result = ols_batch(aligned.to_numpy(dtype=np.float64).T, factors.to_numpy(np.float64), min_obs)
    tickers = list(underlying_returns.columns)
    names = list(factors.columns)
    limited = result.nobs < min_obs
    return FactorRegression(
        betas=pd.DataFrame(result.params[:, 1:], index=tickers, columns=names),
        tstats=pd.DataFrame(result.tvalues[:, 1:], index=tickers, columns=names),
        alpha=pd.Series(result.params[:, 0], index=tickers),
        alpha_tstat=pd.Series(result.tvalues[:, 0], index=tickers),
        r_squared=pd.Series(result.rsquared, index=tickers),
        residual_vol=pd.Series(result.resid_std, index=tickers),
        data_points=pd.Series(result.nobs, index=tickers),
        limited_history=pd.Series(limited | np.isnan(result.params[:, 1:]).any(axis=1), index=tickers),
        window=int(window),
        min_obs=int(min_obs),
        start=factors.index[0] if len(factors) else None,
        end=factors.index[-1] if len(factors) else None,
    )


def position_factor_exposures(
    delta_adjusted_exposure: pd.Series,
    underlying: pd.Series,
    betas: pd.DataFrame,
) -> pd.DataFrame:
    """Dollar factor exposure per position: signed delta-adjusted exposure x underlying beta.

    ``delta_adjusted_exposure`` and ``underlying`` are indexed by position id (stocks: signed
    market value; options: delta x contracts x 100 x spot, so an option carries its
    underlying's betas on its delta exposure). ``betas`` is :attr:`FactorRegression.betas`.
    Positions whose underlying has no betas (limited history or absent) get NaN, never 0.
    Short Interest is the mock factor: 0.0 for every position.
    """
    position_betas = betas.reindex(underlying.reindex(delta_adjusted_exposure.index).to_numpy())
    position_betas.index = delta_adjusted_exposure.index
    exposure = position_betas.mul(delta_adjusted_exposure.astype(float), axis=0)
    exposure[SHORT_INTEREST_FACTOR] = 0.0
    return exposure


def portfolio_factor_exposures(position_exposures: pd.DataFrame, equity: float) -> pd.DataFrame:
    """Portfolio exposure per factor: sum over positions of dollar exposure, and / equity.

    Positions without betas (NaN rows) are left out of the sum and counted in
    ``positions_without_betas``, so a reader can see the total is partial rather than silently
    treating them as zero-beta. Returns a DataFrame indexed by factor name with columns
    ``exposure_dollars``, ``exposure_fraction`` (of equity) and ``positions_without_betas``.
    """
    if not np.isfinite(equity) or equity == 0:
        raise ValueError("equity must be a finite non-zero number")
    dollars = position_exposures.sum(axis=0, skipna=True, min_count=1)
    missing = position_exposures.isna().sum(axis=0)
    return pd.DataFrame(
        {
            "exposure_dollars": dollars,
            "exposure_fraction": dollars / float(equity),
            "positions_without_betas": missing.astype(int),
        }
    )


def factor_exposure_report(
    delta_adjusted_exposure: pd.Series,
    underlying: pd.Series,
    regression: FactorRegression,
    equity: float,
    symbols: pd.Series | None = None,
) -> dict:
    """JSON-ready factor exposures of a set of positions (``GET /risk/factors[/positions]``).

    Inputs as :func:`position_factor_exposures` (filter the positions first for a
    longs/shorts view). ``portfolio``: one row per factor of :data:`FACTOR_DEFINITIONS` with
    ``exposure`` (dollars / equity, i.e. the portfolio's beta to the factor),
    ``exposure_dollars``, ``positions_without_betas`` and ``calculation_method``.
    ``positions``: per position the underlying's betas (``factor_exposures``, None when
    limited history; Short Interest 0.0), ``exposure_dollars`` per factor and
    ``regression_stats`` (r_squared, data_points, limited_history, window).
    """
    dollars = position_factor_exposures(delta_adjusted_exposure, underlying, regression.betas)
    totals = portfolio_factor_exposures(dollars, equity)
    portfolio = []
    for definition in FACTOR_DEFINITIONS:
        name = definition["factor_name"]
        present = name in totals.index
        value = float(totals.at[name, "exposure_dollars"]) if present else float("nan")
        portfolio.append(
            {
                "factor_name": name,
                "exposure": value / equity if np.isfinite(value) else None,
                "exposure_dollars": value if np.isfinite(value) else None,
                "positions_without_betas": int(totals.at[name, "positions_without_betas"]) if present else 0,
                "calculation_method": definition["calculation_method"],
            }
        )
    by_ticker = {r["ticker"]: r for r in regression.to_records()}
    positions = []
    for position_id in delta_adjusted_exposure.index:
        ticker = underlying[position_id]
        record = by_ticker.get(ticker)
        row = dollars.loc[position_id]
        positions.append(
            {
                "position_id": str(position_id),
                "ticker": str(symbols[position_id]) if symbols is not None else str(ticker),
                "underlying": str(ticker),
                "factor_exposures": record["factor_exposures"] if record else {f: None for f in ALL_FACTORS},
                "exposure_dollars": {
                    f: (float(row[f]) if f in row.index and np.isfinite(row[f]) else None) for f in ALL_FACTORS
                },
                "regression_stats": record["regression_stats"]
                if record
                else {"r_squared": None, "data_points": 0, "limited_history": True, "window": regression.window},
            }
        )
    return {"portfolio": portfolio, "positions": positions, "window": regression.window,
            "start": None if regression.start is None else str(regression.start),
            "end": None if regression.end is None else str(regression.end)}
