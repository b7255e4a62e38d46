"""The planner: a checked policy and a calibration samples table in, an optimal budget-safe plan out.

Modules: :mod:`.knapsack` (the problem every solver reads), :mod:`.lagrangian` (JAX, one budget),
:mod:`.lp` (cvxpy, any linear limits; the only module that imports cvxpy), :mod:`.dp` (exact integer
optimum, small instances), :mod:`.rounding` (fractional to whole queries, never over budget),
:mod:`.frontier` (accuracy-vs-budget sweeps).
"""
