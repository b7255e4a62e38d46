"""Lower a Policy IR and its plan to the simulator's arrays; simulate against uniform and the oracle.

The simulator (:mod:`simulator`) never reads policies: this module turns a plan into
:class:`simulator.rollout.PlanArrays` (bins, edges, allocations, strategies, stop-rule tables,
the sample cap) and a static :class:`simulator.rollout.Config`. Stop-rule thresholds on vote
counts are TABULATED with :func:`ttcdsl.features.holds` itself (one row per
``(samples, first, second)``), so the simulator applies the runtime's own comparison.

What it cannot lower yet it refuses, naming the reason (a :class:`~ttcdsl.errors.UserError`):
the bandit, reward-model and gold scorers, best-of-n, features or stop rules that read
correctness or anything beyond vote counts and the probe's tokens and log-probabilities, token
limits, prompt-token charges, bin-scoped limits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ttcdsl.errors import UserError
from ttcdsl.lang import ir

_VOTE_OBSERVABLES = {"beta_confidence", "top_share", "samples"}


class Unsupported(UserError):
    """The policy uses something the simulator does not model yet."""


def _unsupported(policy: ir.Policy, what: str) -> Unsupported:
    return Unsupported(
        f"ttc simulate does not support policy '{policy.name}' yet: {what}",
        hint="simulate a policy of majority or confidence-weighted votes, probes, bins and "
        "stop rules on vote counts (see issue 13 for what is coming)",
    )


def _names(expr: ir.Expr, policy: ir.Policy) -> set[str]:
    """Observables, functions and scorers an expression reads (features expanded)."""
    features = {f.name: f.expr for f in policy.features}
    out: set[str] = set()

    def walk(e):
        match e:
            case ir.Const():
                pass
            case ir.FeatureRef(name=name):
                walk(features[name]) if name in features else out.add(name)
            case ir.ObservableRef(name=name):
                out.add(name)
            case ir.ScorerRef(name=name):
                out.add(f"scorer:{name}")
            case ir.Apply(function=function, args=args):
                out.add(f"{function}()")
                for a in args:
                    walk(a)
            case ir.Arith(left=left, right=right):
                walk(left)
                walk(right)
            case ir.Neg(operand=operand):
                walk(operand)

    walk(expr)
    return out


def check_supported(policy: ir.Policy, plan: Mapping) -> None:
    """Raise :class:`Unsupported` naming the first thing the simulator cannot model."""
    if plan.get("mode") == "bandit" or isinstance(policy.allocation, ir.Bandit):
        raise _unsupported(policy, "the online bandit (allocate bandit)")
    if plan.get("mode") == "per_query" or isinstance(policy.allocation, ir.PerQuery):
        raise _unsupported(policy, "per-query allocation (allocate per query); check it by "
                           "replay with ttc compare, whose split compares the plan's "
                           "prediction with the run")
    for scorer in policy.scorers:
        if scorer.kind != "confidence":
            raise _unsupported(policy, f"{scorer.kind} scorer '{scorer.name}' (scores are not simulated yet)")
    for spec in policy.bins:
        kind = spec.strategy.kind
        if kind not in ("majority_vote", "keep_probe", "weighted_vote"):
            raise _unsupported(policy, f"strategy {kind} in bin '{spec.name}'")
        for rule in spec.stop:
            cond = rule.condition
            if isinstance(cond, ir.UnanimousWindow):
                continue
            reads = _names(cond.left, policy) | _names(cond.right, policy)
            if not reads <= _VOTE_OBSERVABLES:
                what = ", ".join(sorted(reads - _VOTE_OBSERVABLES))
                raise _unsupported(policy, f"a stop rule in bin '{spec.name}' reads {what} "
                                   "(only beta_confidence, top_share and samples are simulated)")
    if policy.budget.charge_prompt_tokens:
        raise _unsupported(policy, "charge prompt tokens (token limits are not simulated yet)")
    for limit in policy.budget.limits:
        if limit.unit != "samples":
            raise _unsupported(policy, f"a {limit.unit} limit (only sample limits are simulated)")
        if limit.bin is not None:
            raise _unsupported(policy, f"a limit scoped to bin '{limit.bin}'")
    if plan.get("binning") is not None:
        key = plan["binning"]["key"]
        expr = policy.difficulty if key == "difficulty" else ir.FeatureRef(key, None)
        _lower_key(expr, policy)  # raises on what it cannot read


def _lower_key(expr: ir.Expr, policy: ir.Policy):
    """The binning key as a function of :class:`simulator.rollout.ProbeStats` (jnp)."""
    import jax.numpy as jnp

    features = {f.name: f.expr for f in policy.features}

    def lower(e):
        match e:
            case ir.Const(value=v):
                return lambda s: jnp.float32(v)
            case ir.FeatureRef(name=name) if name in features:
                return lower(features[name])
            case ir.ObservableRef(name="top_share"):
                return lambda s: s.top_share
            case ir.Apply(function=f, args=(ir.ObservableRef(name="answers"),)) if f in (
                "top_share", "distinct", "answer_entropy"):
                field = {"top_share": "top_share", "distinct": "distinct", "answer_entropy": "entropy"}[f]
                return lambda s: getattr(s, field)
            case ir.Apply(function="mean", args=(ir.ObservableRef(name="tokens"),)):
                return lambda s: s.mean_tokens
            case ir.Apply(function="mean", args=(ir.ObservableRef(name="logprobs"),)):
                return lambda s: s.mean_logprob
            case ir.Apply(function="clip", args=(x, lo, hi)):
                fx, flo, fhi = lower(x), lower(lo), lower(hi)
                return lambda s: jnp.clip(fx(s), flo(s), fhi(s))
            case ir.Arith(op=op, left=left, right=right):
                fl, fr = lower(left), lower(right)
                ops = {"+": jnp.add, "-": jnp.subtract, "*": jnp.multiply, "/": jnp.divide}
                return lambda s: ops[op](fl(s), fr(s))
            case ir.Neg(operand=operand):
                f = lower(operand)
                return lambda s: -f(s)
        raise _unsupported(policy, f"the binning key reads {sorted(_names(e, policy))} "
                           "(simulated: top_share, distinct, answer_entropy of the answers, "
                           "mean tokens, mean logprobs)")

    return lower(expr)


def _vote_table(conditions: list[ir.Threshold], policy: ir.Policy, length: int) -> np.ndarray:
    """``[L + 1, L + 1, L + 1]`` bool: some condition holds for a query with ``n`` samples whose
    two leading answers have ``first >= second`` votes (the rest answerless), evaluated by
    :func:`ttcdsl.features.holds` on such rows."""
    from ttcdsl.features import SampleBatch, holds

    side = length + 1
    table = np.zeros((side, side, side), dtype=bool)
    if not conditions:
        return table
    index, rows = [], []
    for n in range(1, side):
        for first in range(n + 1):
            for second in range(min(first, n - first) + 1):
                index.append((n, first, second))
                rows.append(["a"] * first + ["b"] * second + [None] * (n - first - second))
    batch = SampleBatch.from_lists(rows)
    hit = np.zeros(len(rows), dtype=bool)
    features = {f.name: f.expr for f in policy.features}
    for condition in conditions:
        hit |= holds(condition, batch, features)
    n, first, second = np.array(index).T
    table[n, first, second] = hit
    return table


@dataclass(frozen=True)
class Lowered:
    config: object  # simulator.rollout.Config
    arrays: object  # simulator.rollout.PlanArrays
    objective: str


def lower(policy: ir.Policy, plan: Mapping, n_queries: int, *, length: int | None = None) -> Lowered:
    """The plan as the simulator's arrays (raises :class:`Unsupported`); ``length``: simulate
    this many sample positions (at least the largest target; the same length gives the same
    sample sequences for the same key, so two plans can be compared on the same draws)."""
    import jax.numpy as jnp

    from simulator.rollout import MAJORITY, KEEP_PROBE, WEIGHTED_CONFIDENCE, Config, PlanArrays, Rules
    from ttcdsl.features.stop_check import first_stop_check
    from ttcdsl.planner.candidates import apply_plan_choices

    policy = apply_plan_choices(policy, plan)  # bins with candidates run the plan's choice
    check_supported(policy, plan)
    probe = int(plan.get("probe", policy.probe) or 0)
    bins = plan["bins"]
    length = max([probe, 1, length or 0] + [int(o["samples"]) for b in bins for o in b["allocation"]])
    n_options = max(len(b["allocation"]) for b in bins)
    options = np.zeros((len(bins), n_options), np.int32)
    shares = np.zeros((len(bins), n_options), np.float32)
    for i, b in enumerate(bins):
        ordered = sorted(b["allocation"], key=lambda o: -int(o["samples"]))
        options[i] = [int(o["samples"]) for o in ordered] + [int(ordered[-1]["samples"])] * (n_options - len(ordered))
        shares[i, : len(ordered)] = [float(o["share"]) for o in ordered]
    strategy = np.array([
        {"majority_vote": MAJORITY, "keep_probe": KEEP_PROBE, "weighted_vote": WEIGHTED_CONFIDENCE}[s.strategy.kind]
        for s in policy.bins
    ], np.int32)
    votes = np.stack([
        _vote_table([r.condition for r in s.stop if isinstance(r.condition, ir.Threshold)], policy, length)
        for s in policy.bins
    ])

    def window(spec, disjoint):
        sizes = [r.condition.last for r in spec.stop
                 if isinstance(r.condition, ir.UnanimousWindow) and r.condition.disjoint == disjoint]
        if len(sizes) > 1:
            raise _unsupported(policy, f"two unanimous rules of one kind in bin '{spec.name}'")
        return sizes[0] if sizes else 0

    rules = Rules(
        votes=jnp.asarray(votes),
        window=jnp.asarray([window(s, True) for s in policy.bins], jnp.int32),
        last=jnp.asarray([window(s, False) for s in policy.bins], jnp.int32),
        first_check=jnp.asarray([first_stop_check(policy, s.name) for s in policy.bins], jnp.int32),
        any=jnp.asarray([bool(s.stop) for s in policy.bins]),
    )
    cap = math.inf
    for limit in policy.budget.limits:
        if limit.kind == "mean":
            cap = min(cap, limit.value)
        elif limit.kind == "total":
            cap = min(cap, limit.value / n_queries)
    binning = plan.get("binning")
    key_fn = None
    edges = np.zeros(0, np.float32)
    if binning is not None:
        expr = policy.difficulty if binning["key"] == "difficulty" else ir.FeatureRef(binning["key"], None)
        key_fn = _lower_key(expr, policy)
        edges = np.asarray(binning["edges"], np.float32)
    bin_cap = [float(s.sampling.max_tokens) for s in policy.bins]
    stops = any(s.stop for s in policy.bins)
    uniform = plan.get("uniform_choice")
    if uniform is not None:
        # the planner chose uniform (ttcdsl.planner.choice): the bins still bin, but every query
        # gets the uniform count (already each bin's allocation), the answer strategy over all
        # its samples under the policy's sampling, no stop rule
        from simulator.rollout import no_rules

        codes = {"majority_vote": MAJORITY, "weighted_vote": WEIGHTED_CONFIDENCE}
        if uniform["strategy"] not in codes or (
            uniform["strategy"] == "weighted_vote" and policy.scorer_kind(uniform["scorer"]) != "confidence"
        ):
            raise _unsupported(policy, f"uniform allocation with {uniform['strategy']}")
        strategy[:] = codes[uniform["strategy"]]
        rules = no_rules(len(bins), length)
        bin_cap = [float(policy.sampling.max_tokens)] * len(bins)
        stops = False
    arrays = PlanArrays(
        edges=jnp.asarray(edges),
        options=jnp.asarray(options),
        shares=jnp.asarray(shares),
        strategy=jnp.asarray(strategy),
        probe_cap=jnp.asarray(float(policy.sampling.max_tokens), jnp.float32),
        bin_cap=jnp.asarray(bin_cap, jnp.float32),
        sample_cap=jnp.asarray(cap, jnp.float32),
        rules=rules,
    )
    config = Config(n_positions=length, probe=probe, n_bins=len(bins), rounds=policy.budget.rounds,
                    key_fn=key_fn, stops=stops,
                    weighted=bool((strategy == WEIGHTED_CONFIDENCE).any()))
    return Lowered(config=config, arrays=arrays, objective=policy.objective)


# --------------------------------------------------------------------------- workloads

TABLE_MAX_TOKENS = 4096  # the cap a drawn table is logged under (as `ttc workload`'s)


def table_arrays(table) -> dict[str, np.ndarray]:
    """A samples table as the arrays :func:`simulator.fit` reads (``[Q, M]``, logged order)."""
    from ttcdsl.curves.pool import QueryPool

    cut = np.ma.MaskedArray((np.asarray(table.finish_reason, dtype=object) == "length").astype(float))
    pool = QueryPool.from_table(table, extra={"\0cut": cut, "\0logprob": table.mean_logprob})
    tokens = pool.tokens
    is_cut = pool.scores["\0cut"] == 1.0
    known = np.isfinite(tokens)
    cap = float(np.nanmax(np.where(is_cut & known, tokens, np.nan))) if (is_cut & known).any() else (
        float(np.nanmax(tokens)) + 1.0 if known.any() else float(TABLE_MAX_TOKENS))
    scores = [v for k, v in pool.scores.items() if not k.startswith("\0")]
    return {
        "answer": pool.answer, "correct": pool.correct, "valid": pool.valid, "tokens": tokens,
        "cut": is_cut | (known & (tokens >= cap)), "max_tokens": cap,
        "logprob": pool.scores["\0logprob"], "score": scores[0] if len(scores) == 1 else None,
    }


def fit_table(table):
    """:func:`simulator.fit` on a samples table."""
    from simulator.fit import fit

    a = table_arrays(table)
    return fit(a["answer"], a["correct"], a["valid"], a["tokens"], a["cut"], a["max_tokens"],
               score=a["score"], logprob=a["logprob"])


@dataclass(frozen=True)
class Workload:
    """Where simulated questions come from: the built-in parametric mixture, or a fitted table."""

    name: str
    fitted: object | None = None  # simulator.fit.Fitted

    def draw(self, keys, n_queries: int):
        """``[S]`` independent draws of the questions (``[S, Q, ...]`` arrays)."""
        import jax

        if self.fitted is None:
            from simulator.model import default_mixture, draw_questions

            mixture = default_mixture()
            return jax.vmap(lambda k: draw_questions(k, mixture, n_queries))(keys)
        from simulator.fit import draw_fitted

        fitted = self.fitted
        q = int(fitted.correct_a.shape[0])
        if n_queries != q:  # resample the table's questions (with replacement)
            def one(k):
                k1, k2 = jax.random.split(k)
                idx = jax.random.randint(k1, (n_queries,), 0, q)
                return draw_fitted(k2, jax.tree.map(lambda x: x[idx] if x.ndim and x.shape[0] == q else x, fitted))
            return jax.vmap(one)(keys)
        return jax.vmap(lambda k: draw_fitted(k, fitted))(keys)


def draw_table(workload: Workload, n_queries: int, n_samples: int, *, seed: int = 0):
    """A samples table drawn from ``workload`` (answers ``"0"`` correct, ``"1".."D"`` wrong;
    logged under :data:`TABLE_MAX_TOKENS`; the verifier score stored as scorer ``prm``)."""
    import jax

    from simulator.model import draw_latent, serve
    from ttcdsl.samples import RunMeta, SamplesTable

    key = jax.random.key(seed)
    k_q, k_s = jax.random.split(key)
    questions = jax.tree.map(lambda x: x[0], workload.draw(k_q[None], n_queries))
    obs = serve(draw_latent(k_s, questions, n_samples), float(TABLE_MAX_TOKENS))
    answer = np.asarray(obs.answer)
    tokens = np.asarray(obs.tokens).astype(np.int64)
    q, m = answer.shape
    cut = tokens >= TABLE_MAX_TOKENS
    ids = np.array([f"sim-{i:05d}" for i in range(q)], dtype=object)
    full = np.zeros(q * m, dtype=bool)
    return SamplesTable.from_columns(
        meta=RunMeta(model="simulated", backend="simulator", seed=seed,
                     sampling={"n": n_samples, "max_tokens": TABLE_MAX_TOKENS},
                     source=f"simulator workload {workload.name} (queries={q}, samples={m}, seed={seed})"),
        query_id=np.repeat(ids, m),
        sample_index=np.tile(np.arange(m, dtype=np.int64), q),
        prompt_tokens=np.ma.MaskedArray(np.full(q * m, 100, np.int64), mask=full),
        completion_tokens=np.ma.MaskedArray(tokens.ravel(), mask=full),
        finish_reason=np.where(cut, "length", "stop").astype(object).ravel(),
        answer=np.where(answer >= 0, answer.astype(str), None).astype(object).ravel(),
        correct=np.ma.MaskedArray((answer == 0).ravel(), mask=full),
        mean_logprob=np.ma.MaskedArray(np.asarray(obs.logprob, np.float64).ravel(), mask=full),
        scores={"prm": np.ma.MaskedArray(np.asarray(obs.score, np.float64).ravel(), mask=full)},
    )


# --------------------------------------------------------------------------- simulate

def _interval(values: np.ndarray) -> dict:
    """Mean over seeds with a 95% normal interval."""
    from ttcdsl.verdict import Z95

    values = np.asarray(values, np.float64)
    mean = float(values.mean())
    se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return {"mean": mean, "se": se, "lo": mean - Z95 * se, "hi": mean + Z95 * se}


def _summary(out) -> dict:
    return {
        "accuracy": _interval(np.asarray(out.correct).mean(1)),
        "coverage": _interval(np.asarray(out.covered).mean(1)),
        "samples": _interval(np.asarray(out.samples).mean(1)),
        "max_samples": _interval(np.asarray(out.samples).max(1)),
        "rounds": _interval(np.asarray(out.rounds)),
    }


def simulate_plan(policy: ir.Policy, plan: Mapping, workload: Workload, *, n_queries: int,
                  seeds: int, seed: int = 0) -> dict:
    """The plan's simulated accuracy, coverage and spend over ``seeds`` draws of ``n_queries``
    questions, next to uniform allocation at the same mean spend and the static oracle, on the
    same draws; and the verdict against uniform."""
    import jax

    from simulator.oracle import static_oracle
    from ttcdsl.planner.candidates import apply_plan_choices

    policy = apply_plan_choices(policy, plan)  # bins with candidates run the plan's choice
    from simulator.rollout import MAJORITY, WEIGHTED_CONFIDENCE, simple_plan, simulate
    from ttcdsl.verdict import verdict

    longest = lower(policy, plan, n_queries).config.n_positions
    length = longest + 1  # room for uniform's ceil(spend): both run on the same sequences
    lowered = lower(policy, plan, n_queries, length=length)
    keys = jax.random.split(jax.random.key(seed), seeds)
    k_questions = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    k_run = jax.vmap(lambda k: jax.random.fold_in(k, 2))(keys)
    questions = workload.draw(k_questions, n_queries)
    out = simulate(k_run, questions, lowered.arrays, lowered.config)
    policy_summary = _summary(out)

    spend = policy_summary["samples"]["mean"]
    lo = max(1, int(math.floor(spend)))
    theta = spend - lo if spend >= 1 else 0.0
    kind = policy.answer.kind if policy.answer.kind != "keep_probe" else "majority_vote"
    strategy = WEIGHTED_CONFIDENCE if kind == "weighted_vote" else MAJORITY
    uniform = simple_plan(1, length, [lo + 1, lo], [theta, 1.0 - theta], strategy=strategy,
                          cap=policy.sampling.max_tokens)
    from simulator.rollout import Config

    base = simulate(k_run, questions, uniform,
                    Config(length, 0, 1, stops=False, weighted=strategy == WEIGHTED_CONFIDENCE))
    uniform_summary = _summary(base)
    metric = "covered" if policy.objective == "coverage" else "correct"
    diff = np.asarray(getattr(out, metric)).mean(1) - np.asarray(getattr(base, metric)).mean(1)
    d = _interval(diff)
    oracle = static_oracle(
        jax.vmap(lambda k: jax.random.fold_in(k, 3))(keys), questions, spend,
        # room to concentrate: up to 4x the mean spend per question (at most 64 samples)
        n_positions=max(length, min(64, 4 * math.ceil(spend))), cap=float(policy.sampling.max_tokens),
        objective="coverage" if policy.objective == "coverage" else "accuracy",
    )
    return {
        "policy": policy.name,
        "workload": workload.name,
        "queries": n_queries,
        "seeds": seeds,
        "objective": policy.objective,
        "simulated": policy_summary,
        "uniform": uniform_summary,
        "oracle": oracle,
        "difference": d,
        "verdict": verdict(d["mean"], d["se"] if math.isfinite(d["se"]) else None),
    }
