"""Hedge sizing as a mixed-integer program solved by HiGHS (``highspy``).

Given a risk figure ``R0`` that is linear in positions (dollar exposure to a sector, a factor,
the market; dollar delta; gamma; vega) and candidates j with a per-unit effect ``a_j`` on it
and a per-unit cost ``c_j``, choose integer quantities x_j minimising |R0 + sum a_j x_j|:

    minimise    t + eps * sum c_j (p_j + n_j)
    subject to  t >= R0 + sum a_j (p_j - n_j),  t >= -(R0 + sum a_j (p_j - n_j))
                sum c_j (p_j + n_j) <= budget
                p_j + n_j <= U_j z_j,  sum z_j <= max_positions
                p_j, n_j integer >= 0 (n_j = 0 where the candidate cannot be sold), z_j binary

Buying is ``p_j``, selling short ``n_j`` (ETFs may be shorted; options are only bought, so a
hedge never writes premium). ``U_j = floor(budget / c_j)``. The tiny ``eps`` prefers the
cheaper of equally good hedges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

COST_TIE_BREAK = 1e-9
#: Dollars of risk within which a hedge counts as optimal.
ABS_GAP = 0.5


@dataclass(frozen=True)
class HedgeSolution:
    quantities: np.ndarray      # signed, one per candidate
    residual: float             # R0 + a . x
    cost: float
    status: str


def solve_hedge(r0: float, effect, cost, budget: float, max_positions: int, can_short,
                time_limit_s: float = 5.0, abs_gap: float = ABS_GAP) -> HedgeSolution:
    """The MILP above; ``effect``, ``cost``, ``can_short``: one entry per candidate. The search
    stops once the residual is proven within ``abs_gap`` dollars of the optimum (a residual
    near 0 makes a relative gap unprovable) or after ``time_limit_s``."""
    import highspy

    a = np.asarray(effect, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    short = np.asarray(can_short, dtype=bool)
    n = a.size
    if n == 0 or not budget > 0:
        return HedgeSolution(np.zeros(n), float(r0), 0.0, "empty")
    usable = np.isfinite(a) & np.isfinite(c) & (c > 0) & (a != 0)
    upper = np.where(usable, np.floor(budget / np.where(c > 0, c, 1.0)), 0.0)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 1e-6)
    h.setOptionValue("mip_abs_gap", float(abs_gap))
    kint, kcont = highspy.HighsVarType.kInteger, highspy.HighsVarType.kContinuous
    t = h.addVariable(lb=0.0, ub=highspy.kHighsInf, obj=1.0, type=kcont)
    buy, sell, pick = [], [], []
    for j in range(n):
        u = float(upper[j])
        buy.append(h.addVariable(lb=0.0, ub=u, obj=COST_TIE_BREAK * c[j] if usable[j] else 0.0, type=kint))
        sell.append(h.addVariable(lb=0.0, ub=u if short[j] else 0.0, obj=COST_TIE_BREAK * c[j] if usable[j] else 0.0,
                                  type=kint))
        pick.append(h.addVariable(lb=0.0, ub=1.0 if u > 0 else 0.0, obj=0.0, type=kint))
    exposure = sum(float(a[j]) * (buy[j] - sell[j]) for j in range(n) if usable[j])
    if isinstance(exposure, (int, float)):
        return HedgeSolution(np.zeros(n), float(r0), 0.0, "no usable candidate")
    h.addConstr(t - exposure >= float(r0))
    h.addConstr(t + exposure >= -float(r0))
    h.addConstr(sum(float(c[j]) * (buy[j] + sell[j]) for j in range(n) if usable[j]) <= float(budget))
    for j in range(n):
        if usable[j]:
            h.addConstr(buy[j] + sell[j] - float(upper[j]) * pick[j] <= 0.0)
    h.addConstr(sum(pick[j] for j in range(n) if usable[j]) <= int(max_positions))
    h.minimize()
    status = h.modelStatusToString(h.getModelStatus())
    sol = h.getSolution().col_value
    q = np.array([round(sol[buy[j].index]) - round(sol[sell[j].index]) if usable[j] else 0.0 for j in range(n)],
                 dtype=np.float64)
    return HedgeSolution(q, float(r0 + a[usable] @ q[usable]) if usable.any() else float(r0),
                         float(np.abs(q) @ np.where(np.isfinite(c), c, 0.0)), status)


def brute_force_hedge(r0: float, effect, cost, budget: float, max_positions: int, can_short) -> tuple[np.ndarray, float]:
    """Exhaustive search (small sets only): every subset of at most ``max_positions``
    candidates and every integer size within the budget. The test oracle of ``solve_hedge``."""
    import itertools

    a = np.asarray(effect, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    short = np.asarray(can_short, dtype=bool)
    best_q, best = np.zeros(a.size), abs(r0)
    for k in range(1, max_positions + 1):
        for subset in itertools.combinations(range(a.size), k):
            ranges = [np.arange(-int(budget // c[j]) if short[j] else 0, int(budget // c[j]) + 1) for j in subset]
            grids = np.meshgrid(*ranges, indexing="ij")
            sizes = np.stack([g.ravel() for g in grids], axis=1).astype(np.float64)
            spend = np.abs(sizes) @ c[list(subset)]
            resid = np.abs(r0 + sizes @ a[list(subset)])
            resid[spend > budget + 1e-9] = math.inf
            i = int(np.argmin(resid))
            if resid[i] < best - 1e-9:
                best = float(resid[i])
                best_q = np.zeros(a.size)
                best_q[list(subset)] = sizes[i]
    return best_q, best


def solve_subset(r0: float, effect, cost, budget: float, max_positions: int, can_short, idx):
    """``solve_hedge`` on one subset of the candidates, answered in the candidates' own indices
    ``idx``: (picked indices, their quantities, residual, cost, status). The unit of work the
    hedge search fans out as Ray tasks; it lives here, beside the solver, so a fresh worker
    imports numpy and HiGHS only."""
    sol = solve_hedge(r0, effect, cost, budget, max_positions, can_short)
    picked = np.flatnonzero(sol.quantities)
    return [int(idx[j]) for j in picked], [float(q) for q in sol.quantities[picked]], sol.residual, sol.cost, sol.status
