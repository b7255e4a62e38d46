"""The LP relaxation under one batch budget, solved exactly through its Lagrangian dual (JAX).

With a single limit ``Σ_g w_g Σ_k c[g, k] x[g, k] <= B`` the relaxation decomposes once the limit
is priced: for a multiplier ``λ >= 0`` every group independently takes

    k_g(λ) = argmax over allowed k of  v[g, k] - λ c[g, k]      (ties to the cheaper option)

and the dual function ``L(λ) = Σ_g w_g max_k (v - λ c) + λ B`` is convex, piecewise linear, and an
upper bound on the relaxation's optimum for every ``λ >= 0``. Its slope at ``λ`` is ``B - S(λ)``
with ``S(λ)`` the spend of the choices ``k(λ)``, which never increases with ``λ``. The optimum
``λ*`` is the kink where ``S`` steps across ``B``; the choices just below it (``S > B``) and just
above it (``S <= B``) are both best at ``λ*``, so the mix of the two that spends exactly ``B`` is
optimal: the LP has no duality gap, and only the groups whose choice differs get fractional ``x``.

``λ*`` is searched on scalars: one evaluation of ``k(λ)`` is one pass over the options returning
two sums (value and spend), and a bracket ``lo < λ* <= hi`` (``S(lo) > B >= S(hi)``) is narrowed
by three kinds of step. *Regula falsi* on ``S(λ) - B`` (Illinois variant, so it cannot stall on
one side) is fast while the bracket holds many kinks and ``S`` looks smooth. The point where the
*supporting lines* of ``L`` at ``lo`` and ``hi`` meet is ``λ*`` itself, exactly, once the bracket
holds a single kink, and there ``L`` equals the value of the mix: a certificate, so the answer
does not depend on an iteration count. *Bisection* is the fallback when a step would leave the
bracket. The search stops when the best dual value found is within ``RTOL`` of the mix's value.

The whole search is one jit-compiled function over ``value`` [G, K] and ``cost`` [G, K] or
[1, K], shared by :func:`solve_lagrangian` (a :class:`Knapsack`) and :func:`allocate_per_query`
(a million per-query curves with shared levels, whose costs are never copied per query). Each
evaluation walks the K options as a chain of elementwise selects over contiguous ``[G]`` columns
(see :func:`_best`). Everything runs inside the scoped ``jax.enable_x64(True)`` context, so the
rest of the process (``ttcdsl.curves.montecarlo`` included) keeps its own precision setting.
"""

from __future__ import annotations

import time
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ttcdsl.planner.knapsack import Knapsack, Solution

RTOL = 1e-11
"""Relative duality gap at which the search stops: both sides are float64 sums over the groups,
so a gap this small is rounding (or a kink worth less than that), not a missed optimum."""

OPTIMAL_RTOL = 1e-9
"""Relative gap below which the answer is reported ``optimal``; above it (only a search cut short
by ``max_iter``) the status is ``optimal_inaccurate``, with the gap in the message."""

FEASIBILITY_RTOL = 1e-12
"""A bound this close (relative) below the cheapest allocation's spend still admits it: the two
differ by rounding alone, and :meth:`Knapsack.violations` allows far more."""

MEET_EVERY = 3
"""Every third step is a supporting-line meet (the exact, certifying step); the others are
regula falsi."""

_MIXED, _AT_ZERO, _INFEASIBLE = 0, 1, 2  # _Core.code


class _Core(NamedTuple):
    code: jax.Array  # _MIXED / _AT_ZERO / _INFEASIBLE
    lam: jax.Array  # λ*, the multiplier with the least dual value found
    dual: jax.Array  # L(λ*)
    lo_choice: jax.Array  # [G] int32 option chosen at lo (spend > B), or the only choice
    hi_choice: jax.Array  # [G] int32 option chosen at hi (spend <= B)
    theta: jax.Array  # share of lo_choice in each group's mix
    objective: jax.Array  # Σ w v x of the mix
    spend: jax.Array  # Σ w c x of the mix
    iterations: jax.Array  # evaluations after the first two
    empty_groups: jax.Array  # groups with no selectable option (the caller raises)
    bad_costs: jax.Array  # selectable options whose cost is not finite (the caller raises)
    unbounded: jax.Array  # groups with an infinite value (the caller raises)


class _Columns(NamedTuple):
    """Option ``k`` of every group: ``value`` [G] and ``cost`` [G], or [1] when shared."""

    value: jax.Array
    cost: jax.Array


def _columns(value, cost, allowed) -> list[_Columns]:
    """The options as K columns (a Python loop over options, which are few, never over groups).

    Nothing is masked or copied: a NaN value makes ``v - λ c`` NaN, which loses every comparison,
    and ``-inf`` (the Knapsack path's mark for a disallowed option) never beats a finite value,
    so only ``allowed`` needs a select, fused into each pass.
    """
    cols = []
    for k in range(value.shape[1]):
        v = value[:, k] if allowed is None else jnp.where(allowed[:, k], value[:, k], -jnp.inf)
        cols.append(_Columns(v, cost[:, k]))
    return cols


def _selectable(col: _Columns) -> jax.Array:
    return col.value > -jnp.inf  # False for NaN too


def _best(cols: list[_Columns], lams: tuple, n_groups: int, dtype):
    """For each ``λ`` in ``lams``, per group: ``max_k (v - λ c)`` over selectable options, the
    cost of the option attaining it (the cheapest among exact ties, so ``S(λ)`` is the least
    spend of any best choice), and its index (the first among full ties); ``-inf`` when a group
    has nothing selectable.

    A chain of elementwise selects rather than ``max``/``argmin`` along the option axis: XLA on
    CPU compiles the chain to one vectorized loop, several times faster than those reductions.
    Several ``λ`` share one read of the columns.
    """
    out = []
    for lam in lams:
        out.append((jnp.full(n_groups, -jnp.inf, dtype), jnp.full(n_groups, jnp.inf, dtype),
                    jnp.zeros(n_groups, jnp.int32)))
    for k, col in enumerate(cols):
        for i, lam in enumerate(lams):
            top, cost, index = out[i]
            s = col.value - lam * col.cost
            take = (s > top) | ((s == top) & (col.cost < cost))
            out[i] = (jnp.where(take, s, top), jnp.where(take, col.cost, cost), jnp.where(take, k, index))
    return out


def _first_pass(cols: list[_Columns], n_groups: int, dtype):
    """One read of the columns for what the search starts from, per group: the best value and
    the cost of its cheapest option (the choice at ``λ = 0``), the least cost of a selectable
    option and the best value at that cost (the cheapest allocation), and how many selectable
    options have a cost that is not finite (an input error)."""
    (top, c0, _), = _best(cols, (jnp.zeros((), dtype),), n_groups, dtype)
    cmin = jnp.full(n_groups, jnp.inf, dtype)
    vcheap = jnp.full(n_groups, -jnp.inf, dtype)
    bad = jnp.zeros(n_groups, jnp.int32)
    for col in cols:
        ok = _selectable(col)
        take = ok & ((col.cost < cmin) | ((col.cost == cmin) & (col.value > vcheap)))
        cmin, vcheap = jnp.where(take, col.cost, cmin), jnp.where(take, col.value, vcheap)
        bad = bad + (ok & ~jnp.isfinite(col.cost))
    return top, c0, cmin, vcheap, bad


def _steepest(cols: list[_Columns], top, cmin, vcheap, shared: bool):
    """An upper bound on every group's steepest gain per unit cost from its cheapest option to
    a dearer one: above it, ``k(λ)`` is the cheapest allocation. With shared level costs any two
    distinct costs differ by at least the least gap between levels, which bounds it without
    another pass; otherwise each group's exact steepest gain is taken (one more pass)."""
    if shared:
        c = jnp.stack([col.cost[0] for col in cols])
        diff = jnp.abs(c[:, None] - c[None, :])
        gap = jnp.min(jnp.where(diff > 0, diff, jnp.inf))
        gain = jnp.where(top > -jnp.inf, top - vcheap, 0.0)  # top: the best value (λ = 0)
        return jnp.maximum(jnp.max(gain), 0.0) / gap  # no gap (one cost): no gain either
    steepest = jnp.zeros(top.shape, top.dtype)
    for col in cols:
        dearer = _selectable(col) & (col.cost > cmin)
        gain = (col.value - vcheap) / jnp.where(dearer, col.cost - cmin, 1.0)
        steepest = jnp.where(dearer & (gain > steepest), gain, steepest)
    return jnp.max(steepest)


@partial(jax.jit, static_argnames=("max_iter",))
def _core(value, cost, allowed, weight, bound, *, max_iter: int) -> _Core:
    """The whole solve: ``value`` [G, K]; ``cost`` [G, K] or [1, K] (levels shared by all groups);
    ``allowed`` [G, K] bool or None; ``weight`` [G] or [1]; ``bound`` the batch limit.

    An option is selectable when allowed and its value is finite (NaN marks a missing level).
    """
    n_groups, dtype = value.shape[0], value.dtype
    shared = cost.shape[0] == 1 and n_groups != 1
    cols = _columns(value, cost, allowed)
    w = weight
    zero = jnp.zeros((), dtype)

    def sums(*arrays):  # Σ w a for each array, computed by one pass
        # Reductions of the same chain would each re-run it (XLA fuses a producer into every
        # consumer): the barrier makes the pass write its [G] results once, then sums them.
        return tuple(jnp.sum(w * a) for a in jax.lax.optimization_barrier(arrays))

    def evaluate(lam):  # (Σ w v, Σ w c) of the choices k(λ)
        ((top, chosen, _),) = _best(cols, (lam,), n_groups, dtype)
        f, spend = sums(top, chosen)
        return f + lam * spend, spend

    def dual(v_, s_, lam):  # L(λ) from the sums at λ
        return v_ + lam * (bound - s_)

    def mix(lo_v, lo_s, hi_v, hi_s):  # the mix of the lo and hi choices that spends exactly B
        theta = jnp.clip((bound - hi_s) / (lo_s - hi_s), 0.0, 1.0)
        return hi_v + theta * (lo_v - hi_v), theta

    top0, c0, cmin, vcheap, bad = jax.lax.optimization_barrier(_first_pass(cols, n_groups, dtype))
    v0, s0, vt, st = sums(top0, c0, vcheap, cmin)  # vt, st: the cheapest allocation's sums
    empty, bad = jnp.sum(top0 == -jnp.inf), jnp.sum(bad)
    unbounded = jnp.sum(top0 == jnp.inf)
    # A multiplier that certainly selects the cheapest allocation, so vt, st are its sums.
    lam_top = 2.0 * _steepest(cols, top0, cmin, vcheap, shared)

    at_zero = s0 <= bound
    # A bound equal to the cheapest spend must not turn infeasible through the order of a sum
    # (weights that sum to 1 - 1e-16, say); the mix then clips to the cheapest allocation.
    infeasible = ~at_zero & (st > bound + FEASIBILITY_RTOL * jnp.maximum(1.0, jnp.abs(bound)))
    scale = jnp.abs(v0) + jnp.abs(vt)  # the objective's magnitude, for the tolerances

    def tol(lam):
        return RTOL * (scale + lam * jnp.abs(bound)) + 1e-300

    l0, lt = dual(v0, s0, zero), dual(vt, st, lam_top)
    best_l, best_lam = jnp.where(lt < l0, lt, l0), jnp.where(lt < l0, lam_top, zero)
    p0, _ = mix(v0, s0, vt, st)
    invalid = (empty > 0) | (bad > 0) | (unbounded > 0)  # the caller raises; don't search
    done = at_zero | infeasible | invalid | (best_l - p0 <= tol(best_lam))

    # bracket: (λ, Σ w v, Σ w c, scaled S - B for regula falsi) at lo and at hi
    lo, hi = (zero, v0, s0, s0 - bound), (lam_top, vt, st, st - bound)
    state = (jnp.int32(0), lo, hi, best_l, best_lam, jnp.int32(0), done)

    def body(state):
        it, lo, hi, best_l, best_lam, last_side, _ = state
        (a, a_v, a_s, a_f), (b, b_v, b_s, b_f) = lo, hi
        meet = (a_v - b_v) / (a_s - b_s)  # where L's supporting lines at lo and hi cross
        falsi = (a * b_f - b * a_f) / (b_f - a_f)  # where the chord of S - B crosses zero
        lam = jnp.where(it % MEET_EVERY == 0, meet, falsi)
        lam = jnp.where((lam > a) & (lam < b), lam, 0.5 * (a + b))
        lam_v, lam_s = evaluate(lam)
        lam_l = dual(lam_v, lam_s, lam)
        p_old, _ = mix(a_v, a_s, b_v, b_s)
        # L(lam) equal to the mix's value: L is linear from lo to lam and from lam to hi, so lam is
        # λ* and the lo and hi choices are both best there. Keep the bracket as it is.
        certified = lam_l - p_old <= tol(lam)
        better = lam_l < best_l
        best_l, best_lam = jnp.where(better, lam_l, best_l), jnp.where(better, lam, best_lam)
        to_lo = lam_s > bound
        side = jnp.where(certified, 0, jnp.where(to_lo, -1, 1)).astype(jnp.int32)
        # Illinois: when the same end moves twice running, halve the other end's f.
        new = (lam, lam_v, lam_s, lam_s - bound)
        lo = tuple(jnp.where(side == -1, n, o) for n, o in zip(new, lo))
        hi = tuple(jnp.where(side == 1, n, o) for n, o in zip(new, hi))
        lo = lo[:3] + (jnp.where((side == 1) & (last_side == 1), 0.5 * lo[3], lo[3]),)
        hi = hi[:3] + (jnp.where((side == -1) & (last_side == -1), 0.5 * hi[3], hi[3]),)
        p_new, _ = mix(lo[1], lo[2], hi[1], hi[2])
        mid = 0.5 * (lo[0] + hi[0])
        collapsed = (mid <= lo[0]) | (mid >= hi[0])  # no float left strictly inside
        done = certified | collapsed | (best_l - p_new <= tol(best_lam))
        return it + 1, lo, hi, best_l, best_lam, side, done

    it, lo, hi, best_l, best_lam, _, _ = jax.lax.while_loop(
        lambda s: ~s[-1] & (s[0] < max_iter), body, state
    )

    p, theta = mix(lo[1], lo[2], hi[1], hi[2])
    code = jnp.where(at_zero, _AT_ZERO, jnp.where(infeasible, _INFEASIBLE, _MIXED))
    lam_lo = jnp.where(at_zero, zero, jnp.where(infeasible, lam_top, lo[0]))
    theta = jnp.where(code == _MIXED, theta, 1.0)
    (_, _, lo_choice), (_, _, hi_choice) = _best(cols, (lam_lo, hi[0]), n_groups, dtype)
    return _Core(
        code=code,
        lam=jnp.where(at_zero, zero, jnp.where(infeasible, jnp.nan, best_lam)),
        dual=jnp.where(at_zero, v0, jnp.where(infeasible, jnp.nan, best_l)),
        lo_choice=lo_choice,
        hi_choice=hi_choice,
        theta=theta,
        objective=jnp.where(at_zero, v0, jnp.where(infeasible, vt, p)),
        spend=jnp.where(at_zero, s0, jnp.where(infeasible, st, theta * lo[2] + (1 - theta) * hi[2])),
        iterations=it,
        empty_groups=empty,
        bad_costs=bad,
        unbounded=unbounded,
    )


PAD_ELEMENTS = 1 << 22
"""Problems up to this many options in all are padded to a few shapes (groups to a power of
two, options to a multiple of 4), so that a planner solving many small problems (or a test
suite) compiles the core a handful of times rather than once per shape. Larger ones run as they
are: padding would copy them."""


def _pad(value, cost, allowed, weight):
    """Pad with weightless groups holding one option of value 0, and with options never
    selectable (value ``-inf``, cost copied from the last column, so no new cost gap)."""
    g, k = value.shape
    if g * k > PAD_ELEMENTS:
        return value, cost, allowed, weight
    g2, k2 = max(8, 1 << (g - 1).bit_length()), -(-k // 4) * 4
    if (g2, k2) == (g, k) and weight.shape == (g,):
        return value, cost, allowed, weight
    v = np.full((g2, k2), -np.inf)
    v[:g, :k] = value
    v[g:, 0] = 0.0
    c = np.empty((cost.shape[0] if cost.shape[0] == 1 and g != 1 else g2, k2))
    c[: cost.shape[0], :k] = cost
    c[: cost.shape[0], k:] = cost[:, -1:]
    c[cost.shape[0] :] = 0.0
    w = np.zeros(g2)
    w[:g] = weight  # broadcasts a uniform [1] weight
    a = None
    if allowed is not None:
        a = np.zeros((g2, k2), bool)
        a[:g, :k] = allowed
        a[g:, 0] = True
    return v, c, a, w


def _run(value, cost, allowed, weight, bound: float, max_iter: int) -> tuple[_Core, np.ndarray]:
    """Run the core under float64 and build ``x`` on the host.

    ``jax.device_put`` aliases a suitably aligned float64 array instead of copying it (128 MB
    for a million queries by 16 levels); ``jnp.asarray`` would always copy.
    """
    g, k = value.shape
    value, cost, allowed, weight = _pad(
        np.asarray(value, dtype=np.float64),
        np.asarray(cost, dtype=np.float64),
        None if allowed is None else np.asarray(allowed, dtype=bool),
        np.asarray(weight, dtype=np.float64),
    )
    with jax.enable_x64(True):
        core = _core(
            jax.device_put(value),
            jax.device_put(cost),
            None if allowed is None else jax.device_put(allowed),
            jax.device_put(weight),
            jnp.float64(bound),
            max_iter=max_iter,
        )
        core = jax.tree.map(np.asarray, core)
    _check(core)
    core = core._replace(lo_choice=core.lo_choice[:g], hi_choice=core.hi_choice[:g])
    theta = float(core.theta)
    # Scatter on the flat array: ~5x faster than 2-D fancy indexing, and faster than building the
    # one-hot mix in XLA.
    x = np.zeros(g * k)
    rows = np.arange(g, dtype=np.int64) * k
    x[rows + core.lo_choice] = theta
    x[rows + core.hi_choice] += 1.0 - theta
    return core, x.reshape(g, k)


def _check(core: _Core) -> None:
    if int(core.empty_groups):
        raise ValueError(f"{int(core.empty_groups)} groups have no allowed option with a finite value")
    if int(core.bad_costs):
        raise ValueError(f"{int(core.bad_costs)} allowed options have a cost that is not finite")
    if int(core.unbounded):
        raise ValueError(f"{int(core.unbounded)} groups have an option with infinite value")


def _status(core: _Core, bound: float) -> tuple[str, str]:
    """``(status, message)`` for a :class:`Solution`."""
    if int(core.code) == _INFEASIBLE:
        return "infeasible", f"even the cheapest allocation spends {float(core.spend):.6g} > {bound:.6g}"
    gap = float(core.dual) - float(core.objective)
    if gap <= OPTIMAL_RTOL * max(1.0, abs(float(core.dual))):
        return "optimal", ""
    return "optimal_inaccurate", f"stopped after {int(core.iterations)} steps with duality gap {gap:.3g}"


def solve_lagrangian(problem: Knapsack, *, max_iter: int = 200) -> Solution:
    """The relaxation's exact optimum when ``problem`` has one batch limit and no group limits.

    Raises ``ValueError`` naming the limits it cannot handle otherwise (the caller then uses the
    general LP in :mod:`ttcdsl.planner.lp`). A problem without limits is solved at ``λ = 0``.
    Other resources are reported in ``spend`` but not limited. ``multipliers`` is ``(λ*,)``,
    ``dual_bound`` is ``L(λ*)``. ``status`` is ``optimal``, or ``infeasible`` when even the
    cheapest allocation exceeds the bound: ``x`` is then that allocation, with no dual bound (NaN).
    """
    start = time.perf_counter()
    extra = [l for l in problem.limits if l.group is not None] + list(problem.batch_limits[1:])
    if extra:
        names = "; ".join(
            (l.label or f"{problem.resources[l.resource]} <= {l.bound:g}")
            + ("" if l.group is None else f" (group {l.group})")
            for l in extra
        )
        raise ValueError(f"the Lagrangian solver takes one batch limit and no group limits; cannot handle: {names}")
    if (problem.weight < 0).any():
        raise ValueError("group weights must be non-negative")
    resource, bound = (problem.limits[0].resource, float(problem.limits[0].bound)) if problem.limits else (0, np.inf)
    allowed = np.asarray(problem.allowed, dtype=bool)
    value = np.where(allowed, problem.value, -np.inf)  # not allowed: never selectable
    cost = np.where(allowed, problem.cost[resource], 0.0)  # and no NaN from its cost
    core, x = _run(value, cost, None, problem.weight, bound, max_iter)
    status, message = _status(core, bound)
    objective = problem.objective(x)
    return Solution(
        x=x,
        objective=objective,
        dual_bound=float(core.dual),
        spend=problem.spend(x),
        solver="lagrangian",
        status=status,
        seconds=time.perf_counter() - start,
        multipliers=(float(core.lam),) if problem.limits else (),
        integral=float(core.theta) in (0.0, 1.0),
        message=message,
    )


def allocate_per_query(
    value: np.ndarray,
    cost: np.ndarray,
    budget: float,
    *,
    allowed: np.ndarray | None = None,
    max_iter: int = 200,
) -> Solution:
    """The relaxation for per-query curves: each query is its own group, all weighted ``1/Q``.

    ``value`` [Q, N]: each query's expected accuracy at each of N levels (NaN: level unavailable);
    ``cost`` [Q, N], or [N] when the levels cost the same for every query (sample counts), which
    is never copied per query; ``budget``: mean cost per query. ``allowed`` [Q, N] further prunes
    levels. Returns a one-resource :class:`Solution` (``x`` [Q, N]); see :func:`solve_lagrangian`
    for the statuses. Raises ``ValueError`` when a query has no usable level.
    """
    start = time.perf_counter()
    value = np.asarray(value, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if value.ndim != 2:
        raise ValueError(f"value must be [Q, N], got shape {value.shape}")
    q, n = value.shape
    if cost.shape == (n,):
        if not np.isfinite(cost).all():
            raise ValueError("level costs must be finite")
        cost = cost[None, :]
    elif cost.shape != (q, n):
        raise ValueError(f"cost must be [{n}] or [{q}, {n}], got shape {cost.shape}")
    if allowed is not None and np.shape(allowed) != (q, n):
        raise ValueError(f"allowed must be [{q}, {n}], got shape {np.shape(allowed)}")
    core, x = _run(value, cost, allowed, np.full(1, 1.0 / q), float(budget), max_iter)
    status, message = _status(core, float(budget))
    return Solution(
        x=x,
        objective=float(core.objective),
        dual_bound=float(core.dual),
        spend=np.array([float(core.spend)]),
        solver="lagrangian",
        status=status,
        seconds=time.perf_counter() - start,
        multipliers=(float(core.lam),),
        integral=float(core.theta) in (0.0, 1.0),
        message=message,
    )
