"""The knapsack's LP relaxation through cvxpy, for any set of linear limits (the only cvxpy import).

:class:`LPModel` builds the relaxation once and re-solves it for new bounds: every limit's bound is
an entry of a ``cp.Parameter`` and the bounds appear only on the right-hand side, so the problem is
DPP-compliant and cvxpy canonicalises it once per solver; later solves only substitute the new
parameter values (a budget sweep costs one solver call per budget, not one rebuild).

The matrices are sparse and built with numpy: one variable per *allowed* (group, option), one
equality row per group (the shares sum to 1), one row per limit. Rows are scaled by their largest
coefficient and the objective by its largest coefficient, because batch rows carry the group weights
(``~1/G``) and token costs are in the thousands; the multipliers are scaled back to the problem's
units before they are returned.

Solvers: HiGHS's interior-point method (``"highs"``; its default dual simplex is about two orders
of magnitude slower on these problems at 10^4 groups — see ``bench/planner.py``) and Clarabel.
``"auto"`` tries HiGHS-IPM and falls back to Clarabel when HiGHS is missing or fails. cvxpy forwards
unknown keyword arguments to HiGHS as options, but ``solver=`` is cvxpy's own argument, so the HiGHS
option of that name travels in the nested ``highs_options`` dict (``unpack_highs_options_inplace``
in cvxpy's HiGHS interfaces).

Whatever the solver returns, the reported ``dual_bound`` is recomputed here as the Lagrangian bound
of the returned multipliers (valid for *any* multipliers >= 0), so it is a true upper bound on the
relaxation's optimum even when the solver is slightly off; ``objective`` is recomputed from ``x``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator

import cvxpy as cp
import cvxpy.settings as cps
import numpy as np
import scipy.sparse as sp

from ttcdsl.planner.knapsack import Knapsack, Solution

ROW_TOL = (
    1e-6  # rows of x may miss 1 by this much before the answer counts as a solver error
)

_SOLVERS = {
    # name accepted by solve() -> (cvxpy solver, options, name reported in Solution.solver)
    # output_flag off: HiGHS otherwise prints its copyright banner on stdout at every solve,
    # into the plan YAML that `ttc plan` writes there.
    "highs": (cp.HIGHS, {"highs_options": {"solver": "ipm", "output_flag": False}},
              "cvxpy/HIGHS-ipm"),
    "highs-ipm": (cp.HIGHS, {"highs_options": {"solver": "ipm", "output_flag": False}},
                  "cvxpy/HIGHS-ipm"),
    "highs-simplex": (
        cp.HIGHS,
        {"highs_options": {"solver": "simplex", "output_flag": False}},
        "cvxpy/HIGHS-simplex",
    ),
    "clarabel": (cp.CLARABEL, {}, "cvxpy/CLARABEL"),
}


class LPModel:
    """The LP relaxation of ``problem``, built once; :meth:`solve` for any bounds.

    ``build_seconds`` is the time to build the matrices and the cvxpy problem;
    ``compile_seconds[solver]`` the time cvxpy spent canonicalising for that solver (first solve
    only). ``Solution.seconds`` counts the solve alone.
    """

    def __init__(self, problem: Knapsack) -> None:
        began = time.perf_counter()
        self.problem = problem
        allowed = problem.allowed
        g_idx, k_idx = np.nonzero(
            allowed
        )  # row-major: each group's entries are contiguous
        n, n_groups = len(g_idx), problem.n_groups
        self._g_idx, self._k_idx = g_idx, k_idx
        weight = problem.weight.astype(np.float64)

        c = weight[g_idx] * problem.value[g_idx, k_idx]
        self._obj_scale = float(np.abs(c).max()) if n and np.abs(c).max() > 0 else 1.0
        self.z = cp.Variable(n, nonneg=True, name="share")
        rows_sum = sp.csr_matrix(
            (np.ones(n), (g_idx, np.arange(n))), shape=(n_groups, n)
        )
        constraints = [rows_sum @ self.z == 1]

        limits = problem.limits
        resource = np.array([l.resource for l in limits], dtype=np.int64)
        group = np.array(
            [-1 if l.group is None else l.group for l in limits], dtype=np.int64
        )
        self._batch = np.flatnonzero(group < 0)
        self._grouped = np.flatnonzero(group >= 0)
        self._resource, self._group = resource, group
        self._row_scale = np.ones(len(limits))
        self._constraints: dict[str, cp.Constraint] = {}
        self._params: dict[str, cp.Parameter] = {}

        if len(self._batch):
            # [Lb, n] dense is fine: a handful of batch limits
            rows = (
                weight[g_idx][None, :]
                * problem.cost[resource[self._batch]][:, g_idx, k_idx]
            )
            self._add_rows("batch", self._batch, sp.csr_matrix(rows), constraints)
        if len(self._grouped):
            # group h's entries are the contiguous run start[h]:start[h+1] of the flattened variables
            start = np.searchsorted(g_idx, np.arange(n_groups + 1))
            lim_g = group[self._grouped]
            lengths = start[lim_g + 1] - start[lim_g]
            row_of = np.repeat(np.arange(len(lim_g)), lengths)
            offset = np.arange(lengths.sum()) - np.repeat(
                np.cumsum(lengths) - lengths, lengths
            )
            col = start[lim_g][row_of] + offset
            data = problem.cost[resource[self._grouped][row_of], g_idx[col], k_idx[col]]
            matrix = sp.csr_matrix((data, (row_of, col)), shape=(len(lim_g), n))
            self._add_rows("group", self._grouped, matrix, constraints)

        objective = cp.Maximize((c / self._obj_scale) @ self.z)
        self._objective, self._constraint_list = objective, constraints
        self._problems: dict[str, cp.Problem] = {}
        self.compile_seconds: dict[str, float] = {}
        self.build_seconds = time.perf_counter() - began

    def _add_rows(
        self, key: str, which: np.ndarray, matrix: sp.csr_matrix, constraints: list
    ) -> None:
        scale = np.abs(matrix).max(axis=1).toarray().ravel()
        scale[scale == 0] = 1.0
        self._row_scale[which] = scale
        param = cp.Parameter(len(which), name=f"{key}_bounds")
        self._params[key] = param
        con = sp.diags(1.0 / scale) @ matrix @ self.z <= param
        self._constraints[key] = con
        constraints.append(con)

    def _cvxpy_problem(self, name: str) -> cp.Problem:
        # one cp.Problem per solver: cvxpy caches one canonicalisation per Problem object
        if name not in self._problems:
            self._problems[name] = cp.Problem(self._objective, self._constraint_list)
        return self._problems[name]

    def solve(self, bounds=None, *, solver: str = "auto") -> Solution:
        """Solve for ``bounds`` (one per limit, in ``problem.limits`` order; default: the limits'
        own bounds). ``solver``: ``"auto"``, ``"highs"`` (= ``"highs-ipm"``), ``"highs-simplex"``,
        ``"clarabel"``. Never raises for an infeasible problem or a solver failure: the status says
        so."""
        limits = self.problem.limits
        b = np.array(
            [l.bound for l in limits] if bounds is None else bounds, dtype=np.float64
        )
        if b.shape != (len(limits),):
            raise ValueError(f"expected {len(limits)} bounds, got shape {b.shape}")
        name = solver.lower()
        if name == "auto":
            if cp.HIGHS in cp.installed_solvers():
                sol = self._solve_with("highs", b)
                if sol.status != "solver_error":
                    return sol
                fallback = self._solve_with("clarabel", b)
                if fallback.status == "solver_error":
                    return fallback
                return _with_message(
                    fallback, f"HiGHS failed ({sol.message}); solved by Clarabel"
                )
            return self._solve_with("clarabel", b)
        if name not in _SOLVERS:
            raise ValueError(
                f"unknown solver {solver!r}; expected auto, {', '.join(_SOLVERS)}"
            )
        return self._solve_with(name, b)

    def _solve_with(self, name: str, b: np.ndarray) -> Solution:
        cvx_solver, options, label = _SOLVERS[name]
        if cvx_solver not in cp.installed_solvers():
            return self._failed(
                label, "solver_error", f"{cvx_solver} is not installed", 0.0
            )
        for key, which in (("batch", self._batch), ("group", self._grouped)):
            if key in self._params:
                self._params[key].value = b[which] / self._row_scale[which]
        prob = self._cvxpy_problem(name)
        start = time.perf_counter()
        try:
            with _quiet_native_stdout():
                prob.solve(solver=cvx_solver, enforce_dpp=True, **_copy_options(options))
            message = ""
        except (cp.SolverError, ValueError, ArithmeticError) as err:
            message = f"{type(err).__name__}: {err}"
        seconds = time.perf_counter() - start
        if name not in self.compile_seconds:
            self.compile_seconds[name] = float(
                getattr(prob, "compilation_time", 0.0) or 0.0
            )
            seconds -= self.compile_seconds[name]
        if message:
            return self._failed(label, "solver_error", message, seconds)
        status = prob.status
        if status in (
            cp.INFEASIBLE,
            cp.INFEASIBLE_INACCURATE,
            cps.INFEASIBLE_OR_UNBOUNDED,
        ):
            # the relaxation is bounded (every share lies in [0, 1]), so this means infeasible
            return self._failed(label, "infeasible", f"solver status {status}", seconds)
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or self.z.value is None:
            return self._failed(
                label, "solver_error", f"solver status {status}", seconds
            )
        return self._solution(label, b, seconds, status)

    def _solution(
        self, label: str, b: np.ndarray, seconds: float, status: str
    ) -> Solution:
        problem = self.problem
        z = np.clip(np.asarray(self.z.value, dtype=np.float64), 0.0, None)
        x = np.zeros(problem.value.shape)
        x[self._g_idx, self._k_idx] = z
        row = x.sum(axis=1)
        worst = float(np.abs(row - 1.0).max()) if len(row) else 0.0
        if worst > ROW_TOL:
            return self._failed(
                label,
                "solver_error",
                f"shares of a group sum to {1 - worst:g} (status {status})",
                seconds,
            )
        x /= row[:, None]

        lam = np.zeros(len(problem.limits))
        for key, which in (("batch", self._batch), ("group", self._grouped)):
            if key in self._constraints:
                dual = self._constraints[key].dual_value
                dual = (
                    np.zeros(len(which))
                    if dual is None
                    else np.asarray(dual, dtype=np.float64)
                )
                lam[which] = (
                    np.clip(dual, 0.0, None) * self._obj_scale / self._row_scale[which]
                )
        message = "" if status == cp.OPTIMAL else f"solver status {status}"
        return Solution(
            x=x,
            objective=problem.objective(x),
            dual_bound=lagrangian_bound(problem, lam, b),
            spend=problem.spend(x),
            solver=label,
            status="optimal",
            seconds=seconds,
            multipliers=tuple(float(v) for v in lam),
            integral=bool(np.all((x == 0) | (x == 1))),
            message=message,
        )

    def _failed(
        self, label: str, status: str, message: str, seconds: float
    ) -> Solution:
        shape = self.problem.value.shape
        return Solution(
            x=np.zeros(shape),
            objective=float("nan"),
            dual_bound=float("nan"),
            spend=np.full(len(self.problem.resources), np.nan),
            solver=label,
            status=status,
            seconds=seconds,
            multipliers=tuple(float("nan") for _ in self.problem.limits),
            message=message,
        )


def solve_lp(problem: Knapsack, *, bounds=None, solver: str = "auto") -> Solution:
    """One-off solve: ``LPModel(problem).solve(bounds, solver=solver)``."""
    return LPModel(problem).solve(bounds, solver=solver)


def lagrangian_bound(problem: Knapsack, multipliers, bounds=None) -> float:
    """``max_x L(x, λ)`` over the shares (each row a distribution over allowed options):

        Σ_g max_k [w_g v_gk - Σ_{batch j} λ_j w_g c_{r_j g k} - Σ_{group j on g} λ_j c_{r_j g k}]
        + Σ_j λ_j B_j

    An upper bound on the relaxation's optimum for every ``λ >= 0`` (weak duality), so it holds
    however inexact the multipliers are. A group limit's row has no weight factor, hence its
    multiplier is not multiplied by ``w_g`` (nothing is divided by ``w_g``, so ``w_g = 0`` is fine).
    """
    lam = np.clip(np.asarray(multipliers, dtype=np.float64), 0.0, None)
    limits = problem.limits
    b = np.array(
        [l.bound for l in limits] if bounds is None else bounds, dtype=np.float64
    )
    weight = problem.weight.astype(np.float64)
    cost = np.where(problem.allowed[None], problem.cost, 0.0)
    reduced = weight[:, None] * np.where(problem.allowed, problem.value, 0.0)
    n_res = len(problem.resources)
    resource = np.array([l.resource for l in limits], dtype=np.int64)
    group = np.array(
        [-1 if l.group is None else l.group for l in limits], dtype=np.int64
    )
    batch_price = np.zeros(n_res)
    group_price = np.zeros((n_res, problem.n_groups))
    is_batch = group < 0
    np.add.at(batch_price, resource[is_batch], lam[is_batch])
    np.add.at(group_price, (resource[~is_batch], group[~is_batch]), lam[~is_batch])
    reduced -= weight[:, None] * np.einsum("r,rgk->gk", batch_price, cost)
    reduced -= np.einsum("rg,rgk->gk", group_price, cost)
    reduced = np.where(problem.allowed, reduced, -np.inf)
    return float(reduced.max(axis=1).sum() + (np.dot(lam, b) if len(lam) else 0.0))


def _copy_options(options: dict) -> dict:
    # cvxpy pops the nested highs_options dict: hand it a fresh copy each call
    return {k: dict(v) if isinstance(v, dict) else v for k, v in options.items()}


def _with_message(sol: Solution, message: str) -> Solution:
    from dataclasses import replace

    return replace(sol, message=message)


@contextlib.contextmanager
def _quiet_native_stdout() -> Iterator[None]:
    """Discard what native code writes to file descriptor 1 meanwhile.

    HiGHS prints its copyright banner from C++ whenever a ``Highs`` object is made (cvxpy makes
    several per solve), before any option could turn it off, and `ttc plan` without ``-o``
    writes the plan YAML to standard output. Python's own ``sys.stdout`` is flushed first and
    C's stdio buffers before the descriptor is restored, so nothing leaks out later.
    """
    import ctypes

    sys.stdout.flush()
    libc = ctypes.CDLL(None)
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            try:
                yield
            finally:
                libc.fflush(None)
                os.dup2(saved, 1)
    finally:
        os.close(saved)
