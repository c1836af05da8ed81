"""Batched factor regressions vs a statsmodels loop.

10,000 positions x 150 daily returns x 7 factors (joint OLS with intercept, t-stats, R^2), 5 %
of the series with NaN gaps. The batched numba kernel solves all of them; statsmodels runs a
Python loop over a subsample in the same process, extrapolated to the full count.
Prints one JSON object per line.
"""


import numpy as np

from compute.factors import ols_batch
from _common import best_of, emit as _emit  # noqa: E402


def emit(metric, value, unit, n, **extra):
    _emit("factors", metric, value, unit, n, **extra)

N_SERIES = 10_000
N_OBS = 150
N_FACTORS = 7
STATSMODELS_SAMPLE = 300


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.008, size=(N_OBS, N_FACTORS))
    betas = rng.normal(0.0, 0.8, size=(N_SERIES, N_FACTORS))
    y = betas @ x.T + rng.normal(0.0, 0.015, size=(N_SERIES, N_OBS))
    gappy = rng.choice(N_SERIES, N_SERIES // 20, replace=False)
    for i in gappy:
        y[i, rng.choice(N_OBS, 15, replace=False)] = np.nan
    return y, x


def main():
    y, x = make_data()
    ols_batch(y[:10], x)  # JIT warm-up (compile or load from cache)
    batched = best_of(lambda: ols_batch(y, x, 60), 20)
    emit("batched_ols_seconds", round(batched, 5), "s", N_SERIES, n_obs=N_OBS, n_factors=N_FACTORS)
    emit("batched_ols_regressions_per_second", round(N_SERIES / batched), "1/s", N_SERIES)

    try:
        import statsmodels.api as sm
    except ImportError:
        emit("statsmodels_ols_seconds", None, "s", N_SERIES, note="statsmodels not installed")
        return
    design = sm.add_constant(x)

    def statsmodels_loop():
        for i in range(STATSMODELS_SAMPLE):
            ok = ~np.isnan(y[i])
            fit = sm.OLS(y[i][ok], design[ok]).fit()
            fit.params, fit.tvalues, fit.rsquared  # noqa: B018 - force the statistics

    sample = best_of(statsmodels_loop, 3)
    statsmodels_full = sample / STATSMODELS_SAMPLE * N_SERIES
    emit(
        "statsmodels_ols_seconds_extrapolated",
        round(statsmodels_full, 3),
        "s",
        N_SERIES,
        measured_on=STATSMODELS_SAMPLE,
    )
    emit("statsmodels_regressions_per_second", round(STATSMODELS_SAMPLE / sample), "1/s", STATSMODELS_SAMPLE)
    emit("speedup_vs_statsmodels", round(statsmodels_full / batched, 1), "x", N_SERIES, target=100)


if __name__ == "__main__":
    main()
