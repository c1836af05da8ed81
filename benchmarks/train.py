"""Trainer speed: logistic regression on 100,000 rows x 30 features (target: under 2 s).

Peers measured in the same run: statsmodels Logit (Newton MLE) and, when installed,
scikit-learn LogisticRegression (lbfgs). Times exclude numba's first compile (warmed up on a
small problem). Prints one JSON object per line.
"""

from __future__ import annotations


import numpy as np

from compute.train import roc_auc, train_model
from _common import emit, timings  # noqa: E402


def fastest(fn, repeats=3):
    """(best seconds, the result of the last call)."""
    times, out = timings(fn, repeats)
    return min(times), out


N_ROWS, N_FEATURES = 100_000, 30


def main():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, N_FEATURES))
    beta = rng.normal(0, 0.3, N_FEATURES)
    y = (rng.random(N_ROWS) < 1 / (1 + np.exp(-(X @ beta)))).astype(int)
    n_fit = int(N_ROWS * 0.8)

    cfg = {"model": "logistic", "learning_rate": 0.01, "epochs": 30, "batch_size": 256,
           "l2": 1e-4, "optimizer": "adam", "calibration": "platt", "seed": 0}
    train_model(X[:2000], y[:2000], {**cfg, "epochs": 1})  # JIT warm-up
    secs, model = fastest(lambda: train_model(X, y, cfg))
    emit("train", "logistic_fit_seconds", round(secs, 4), "s", N_ROWS, features=N_FEATURES,
         epochs=cfg["epochs"], batch_size=cfg["batch_size"],
         holdout_auc=round(model.metrics["calibrated"]["auc"], 4), peer="sigma")
    emit("train", "logistic_rows_per_second", round(N_ROWS * cfg["epochs"] / secs), "rows/s",
         N_ROWS, features=N_FEATURES, peer="sigma")

    import statsmodels.api as sm

    Xc = sm.add_constant(X[:n_fit])
    secs_sm, res = fastest(lambda: sm.Logit(y[:n_fit], Xc).fit(disp=0), repeats=2)
    auc_sm = roc_auc(y[n_fit:] == 1, res.predict(sm.add_constant(X[n_fit:])))
    emit("train", "logistic_fit_seconds", round(secs_sm, 4), "s", n_fit, features=N_FEATURES,
         holdout_auc=round(float(auc_sm), 4), peer="statsmodels.Logit")
    w, _ = model.coefficients()
    emit("train", "max_abs_coef_diff_vs_statsmodels", round(float(np.max(np.abs(w - res.params[1:]))), 4),
         "coef", N_ROWS, features=N_FEATURES)

    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        emit("train", "logistic_fit_seconds", None, "s", n_fit, peer="sklearn",
             note="scikit-learn not installed")
    else:
        secs_sk, _ = fastest(lambda: LogisticRegression(max_iter=1000).fit(X[:n_fit], y[:n_fit]))
        emit("train", "logistic_fit_seconds", round(secs_sk, 4), "s", n_fit,
             features=N_FEATURES, peer="sklearn.LogisticRegression")

    mlp_cfg = {"model": "mlp", "hidden": [16], "learning_rate": 0.005, "epochs": 10,
               "batch_size": 256, "seed": 0}
    train_model(X[:2000], y[:2000], {**mlp_cfg, "epochs": 1})
    secs_mlp, mlp = fastest(lambda: train_model(X, y, mlp_cfg), repeats=1)
    emit("train", "mlp_fit_seconds", round(secs_mlp, 4), "s", N_ROWS, features=N_FEATURES,
         hidden=16, epochs=mlp_cfg["epochs"],
         holdout_auc=round(mlp.metrics["calibrated"]["auc"], 4), peer="sigma")

    secs_pred, _ = fastest(lambda: model.score(X))
    emit("train", "logistic_score_seconds", round(secs_pred, 5), "s", N_ROWS,
         features=N_FEATURES, peer="sigma")


if __name__ == "__main__":
    main()
