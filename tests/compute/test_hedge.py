"""The hedge MILP (HiGHS) against an exhaustive search over small candidate sets."""

import numpy as np
import pytest

from compute.hedge import brute_force_hedge, solve_hedge


@pytest.mark.parametrize("seed", range(6))
def test_milp_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 5
    a = rng.normal(0, 300, n)
    c = rng.uniform(50, 400, n)
    short = rng.random(n) < 0.5
    r0 = float(rng.normal(0, 5000))
    budget = float(rng.uniform(500, 1500))
    for k in (1, 2):
        sol = solve_hedge(r0, a, c, budget, k, short, abs_gap=1e-9)
        q, best = brute_force_hedge(r0, a, c, budget, k, short)
        assert abs(sol.residual) <= best + 1e-6
        assert sol.cost <= budget + 1e-6 and np.count_nonzero(sol.quantities) <= k
        assert np.all(sol.quantities[~short] >= 0)
        assert abs(sol.residual - (r0 + a @ sol.quantities)) < 1e-6


def test_hand_worked():
    # R0 = 1000; one candidate removes 300 per unit at 100 each: 3 units (cost 300) leave 100,
    # 4 units would overshoot to -200; budget 350 allows 3.
    sol = solve_hedge(1000.0, [-300.0], [100.0], 350.0, 1, [False])
    assert sol.quantities.tolist() == [3.0] and sol.residual == pytest.approx(100.0) and sol.cost == pytest.approx(300.0)
    # a short-able ETF of +250 per share: short 4 leaves 0
    sol = solve_hedge(1000.0, [250.0, -300.0], [100.0, 100.0], 1000.0, 1, [True, False])
    assert sol.quantities.tolist() == [-4.0, 0.0] and sol.residual == pytest.approx(0.0)
