"""Lower a Policy IR and its plan to the simulator's arrays; simulate against uniform and the oracle.

The simulator (:mod:`simulator`) never reads policies: this module turns a plan into
:class:`simulator.rollout.PlanArrays` (bins, edges, allocations, strategies, stop-rule tables,
the sample cap) and a static :class:`simulator.rollout.Config`. Stop-rule thresholds on vote
counts are TABULATED with :func:`ttcdsl.features.holds` itself (one row per
``(samples, first, second)``), so the simulator applies the runtime's own comparison.

Reward-model scores are the workload's verifier score (one reward model per policy); a stop
rule comparing ``score(s)`` or ``max``/``min`` of ``scores(s)`` with a constant is lowered to a
running statistic with a float32 threshold that compares as the runtime's float64; an offline
evaluation's stop rule on ``max``/``min`` of ``correct`` likewise.

A per-query plan (``allocate per query``) lowers to one bin whose targets come from
:mod:`ttcdsl.simulate_per_query`: the plan's predictor and per-query Lagrangian, the run's own
code, called on each simulated batch's probe.

A bandit plan lowers to :mod:`simulator.bandit` instead (:func:`lower_bandit`): its solved rules
are the stop-rule tables of one bin, its learned skip the tables of :mod:`ttcdsl.simulate_bandit`,
and a gold scorer (offline evaluation only) reads the label as the score.

What it cannot lower yet it refuses, naming the reason (a :class:`~ttcdsl.errors.UserError`):
gold scorers outside a bandit, two reward models, best-of-n by confidence, features or stop rules
that read anything else (beyond vote counts, the probe's tokens, log-probabilities and scores),
and in a bandit token limits, prompt-token charges and bin-scoped limits.

Budget limits are the runtime's (:func:`ttcdsl.runtime.ledger.limits_from_policy`): the batch's
mean or total sample cap alone lowers to ``sample_cap``; any other limit (tokens, per query, per
bin) or a prompt-token charge lowers every limit to :class:`simulator.ledger.Limits`, the
runtime ledger's rule over arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ttcdsl.equal_spend import budget_unit, uniform_samples
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


def _reward_scorers(policy: ir.Policy) -> list[ir.Scorer]:
    return [s for s in policy.scorers if s.kind == "reward_model"]


def _scorer(policy: ir.Policy, name: str | None) -> ir.Scorer | None:
    return next((s for s in policy.scorers if s.name == name), None)


def _resolve(expr: ir.Expr, policy: ir.Policy) -> ir.Expr:
    """``expr`` with feature references replaced by their expressions (top level only)."""
    features = {f.name: f.expr for f in policy.features}
    while isinstance(expr, ir.FeatureRef) and expr.name in features:
        expr = features[expr.name]
    return expr


def _const(expr: ir.Expr, policy: ir.Policy) -> float | None:
    match _resolve(expr, policy):
        case ir.Const(value=v):
            return float(v)
        case ir.Neg(operand=operand):
            v = _const(operand, policy)
            return None if v is None else -v
    return None


def _stat(expr: ir.Expr, policy: ir.Policy) -> int | None:
    """The running statistic (``simulator.rollout.SCORE_MAX`` ...) an expression is, if it is
    one the simulator tracks: ``score(s)``, ``max``/``min`` of ``scores(s)`` for the reward model
    ``s``, and ``max``/``min`` of ``correct`` in an offline evaluation."""
    from simulator.rollout import CORRECT_MAX, CORRECT_MIN, SCORE_MAX, SCORE_MIN

    def reward(name):
        # a gold scorer's score is the label: only an offline evaluation reads it, and only the
        # bandit's rollout lowers it (its score array is then the label); check_supported refuses
        # gold elsewhere
        scorer = _scorer(policy, name)
        return scorer is not None and (scorer.kind == "reward_model"
                                       or (scorer.kind == "gold" and policy.offline))

    match _resolve(expr, policy):
        case ir.Apply(function="score", args=(ir.ScorerRef(name=name),)) if reward(name):
            return SCORE_MAX  # the best score so far (ttcdsl.features.evaluate)
        case ir.Apply(function=("max" | "min") as f,
                      args=(ir.Apply(function="scores", args=(ir.ScorerRef(name=name),)),)) if reward(name):
            return SCORE_MAX if f == "max" else SCORE_MIN
        case ir.Apply(function=("max" | "min") as f, args=(ir.ObservableRef(name="correct"),)) \
                if policy.offline:
            return CORRECT_MAX if f == "max" else CORRECT_MIN
    return None


_FLIP = {">=": "<=", ">": "<", "<=": ">=", "<": ">", "==": "==", "!=": "!="}


def _float32_threshold(op: str, t: float) -> float:
    """The float32 threshold ``t32`` for which ``x OP t32`` in float32 is ``x OP t`` in float64
    for every float32 ``x`` (the simulator's scores are float32; the runtime compares the same
    values as float64): round up for ``>=`` and ``<``, down for ``>`` and ``<=``; ``==`` and
    ``!=`` against a ``t`` no float32 equals compare with NaN (never equal)."""
    t32 = np.float32(t)
    if float(t32) == t:
        return float(t32)
    if op in ("==", "!="):
        return math.nan
    if op in (">=", "<"):
        return float(t32 if float(t32) > t else np.nextafter(t32, np.float32(np.inf)))
    return float(t32 if float(t32) < t else np.nextafter(t32, np.float32(-np.inf)))


def _stat_condition(cond: ir.Threshold, policy: ir.Policy) -> tuple[int, str, float] | None:
    """``(statistic, op, threshold)`` when ``cond`` compares a tracked statistic with a constant
    (either side), else None."""
    for stat_side, const_side, op in ((cond.left, cond.right, cond.op),
                                      (cond.right, cond.left, _FLIP[cond.op])):
        src, t = _stat(stat_side, policy), _const(const_side, policy)
        if src is not None and t is not None:
            return src, op, t
    return None


def _strategy_code(policy: ir.Policy, strategy: ir.Strategy) -> int:
    from simulator.rollout import BEST_OF_N, KEEP_PROBE, MAJORITY, WEIGHTED_CONFIDENCE, WEIGHTED_SCORE

    scorer = _scorer(policy, strategy.scorer)
    match strategy.kind, None if scorer is None else scorer.kind:
        case "majority_vote", _:
            return MAJORITY
        case "keep_probe", _:
            return KEEP_PROBE
        case "weighted_vote", "confidence":
            return WEIGHTED_CONFIDENCE
        case "weighted_vote", "reward_model":
            return WEIGHTED_SCORE
        case "best_of_n", "reward_model":
            return BEST_OF_N
    what = strategy.kind if scorer is None else f"{strategy.kind}({scorer.kind} scorer '{scorer.name}')"
    raise _unsupported(policy, f"strategy {what}")


def check_supported(policy: ir.Policy, plan: Mapping) -> None:
    """Raise :class:`Unsupported` naming the first thing the simulator cannot model."""
    if plan.get("mode") == "bandit" or isinstance(policy.allocation, ir.Bandit):
        return _check_bandit(policy)
    for scorer in policy.scorers:
        if scorer.kind not in ("confidence", "reward_model"):
            raise _unsupported(policy, f"{scorer.kind} scorer '{scorer.name}'")
    rewards = _reward_scorers(policy)
    if len(rewards) > 1:
        raise _unsupported(policy, "two reward-model scorers (the workload draws one score per sample): "
                           + ", ".join(s.name for s in rewards))
    for spec in policy.bins:
        _strategy_code(policy, spec.strategy)
        _check_conditions(policy, [rule.condition for rule in spec.stop], f"stop rule in bin '{spec.name}'")
    if plan.get("binning") is not None:
        key = plan["binning"]["key"]
        expr = policy.difficulty if key == "difficulty" else ir.FeatureRef(name=key, span=None)
        _lower_key(expr, policy)  # raises on what it cannot read
    if _per_query(policy, plan):
        from ttcdsl.simulate_per_query import feature_exprs

        for expr in feature_exprs(policy):  # what the predictor reads of the probe
            _lower_key(expr, policy, "a feature the per-query predictor uses")


def _per_query(policy: ir.Policy, plan: Mapping) -> bool:
    return plan.get("mode") == "per_query" or isinstance(policy.allocation, ir.PerQuery)


def _reads_logprobs(policy: ir.Policy) -> bool:
    """Whether anything in ``policy`` reads the samples' log-probabilities (a feature, a rule, a
    confidence scorer's weights): the simulator draws them only then."""
    from ttcdsl.observables import policy_needs

    return any(need.kind == "logprobs" for need in policy_needs(policy))


def _lower_key(expr: ir.Expr, policy: ir.Policy, what: str = "the binning key"):
    """The binning key (or ``what`` else reads the probe) as a function of
    :class:`simulator.rollout.ProbeStats` (jnp)."""
    import jax.numpy as jnp

    features = {f.name: f.expr for f in policy.features}

    def kind(name):
        scorer = _scorer(policy, name)
        return None if scorer is None else scorer.kind

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
            case ir.Apply(function="mean", args=(ir.Apply(function="scores", args=(ir.ScorerRef(name=n),)),)) \
                    if kind(n) == "confidence":
                return lambda s: s.mean_logprob
            case ir.Apply(function="score", args=(ir.ScorerRef(name=n),)) if kind(n) == "reward_model":
                return lambda s: s.max_score
            case ir.Apply(function=("mean" | "max" | "min") as f,
                          args=(ir.Apply(function="scores", args=(ir.ScorerRef(name=n),)),)) \
                    if kind(n) == "reward_model":
                field = {"mean": "mean_score", "max": "max_score", "min": "min_score"}[f]
                return lambda s: getattr(s, field)
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
        raise _unsupported(policy, f"{what} reads {sorted(_names(e, policy))} "
                           "(simulated: top_share, distinct, answer_entropy of the answers, "
                           "mean tokens, mean logprobs, score(s) and the mean, max and min of "
                           "scores(s))")

    return lower(expr)


# The vote table holds every (samples, leading votes, second votes) state, L^3 of them, and
# evaluating it reads L^4 / 24 sample slots: past this many samples per question it would take
# gigabytes and minutes (at 258 it took over 20 GB), so stop rules on the answers are simulated
# up to here and a longer run is refused by name.
VOTE_TABLE_MAX = 200


def _vote_table(conditions: list[ir.Threshold], policy: ir.Policy, length: int) -> np.ndarray:
    """``[L + 1, L + 1, L + 1]`` bool: some condition holds for a query with ``n`` samples whose
    two leading answers have ``first >= second`` votes (the rest answerless), evaluated by
    :func:`ttcdsl.features.holds` on such rows, one sample count at a time (the rows of one
    count are built as arrays: as lists they took minutes and tens of gigabytes at 258)."""
    from ttcdsl.features import SampleBatch, holds

    side = length + 1
    table = np.zeros((side, side, side), dtype=bool)
    if not conditions:
        return table
    if length > VOTE_TABLE_MAX:
        raise Unsupported(
            f"the simulator evaluates stop and solved rules on the answers for at most "
            f"{VOTE_TABLE_MAX} samples per question, and policy '{policy.name}' lets a question "
            f"take {length}", hint=f"cap each question (`samples per query <= {VOTE_TABLE_MAX}` "
            "or less in the budget)")
    features = {f.name: f.expr for f in policy.features}
    for n in range(1, side):
        first = np.concatenate([np.full(min(f, n - f) + 1, f) for f in range(n + 1)])
        second = np.concatenate([np.arange(min(f, n - f) + 1) for f in range(n + 1)])
        slot = np.arange(n)[None, :]
        # the leading answer first (id 0), then the second (id 1), then samples without one
        answer = np.where(slot < first[:, None], 0,
                          np.where(slot < (first + second)[:, None], 1, -1)).astype(np.int32)
        unknown = np.full(answer.shape, np.nan)
        batch = SampleBatch(answer=answer, valid=np.ones(answer.shape, dtype=bool), tokens=unknown,
                            logprob=unknown, correct=unknown, scores={},
                            prompt_nll=np.full(len(first), np.nan)).check()
        hit = np.zeros(len(first), dtype=bool)
        for condition in conditions:
            hit |= holds(condition, batch, features)
        table[n, first, second] = hit
    return table


def _rules(policy: ir.Policy, groups: list[tuple[str, list[ir.Condition]]], first_checks: list[int],
           length: int):
    """:class:`simulator.rollout.Rules` for groups of conditions (one per bin: its name and its
    stop rules; the bandit: one group of solved rules), for counts up to ``length``."""
    import jax.numpy as jnp

    from simulator.rollout import EQ, GE, GT, LE, LT, NE, Rules

    def thresholds(conditions):
        return [c for c in conditions if isinstance(c, ir.Threshold)]

    votes = np.stack([
        _vote_table([c for c in thresholds(conds) if _stat_condition(c, policy) is None], policy, length)
        for _, conds in groups
    ])
    # thresholds on running statistics (scores, labels): [B, K] arrays, K the most in one group
    stats = [[(c, _stat_condition(c, policy)) for c in thresholds(conds)] for _, conds in groups]
    stats = [[(c, st) for c, st in per_bin if st is not None] for per_bin in stats]
    width = max(1, max(len(per_bin) for per_bin in stats))
    codes = {">=": GE, ">": GT, "<=": LE, "<": LT, "==": EQ, "!=": NE}
    stat_src = np.zeros((len(groups), width), np.int32)
    stat_op = np.zeros((len(groups), width), np.int32)
    stat_t = np.zeros((len(groups), width), np.float32)
    stat_after = np.zeros((len(groups), width), np.int32)
    stat_on = np.zeros((len(groups), width), bool)
    for i, per_bin in enumerate(stats):
        for j, (cond, (src, op, t)) in enumerate(per_bin):
            stat_src[i, j], stat_op[i, j], stat_t[i, j] = src, codes[op], _float32_threshold(op, t)
            stat_after[i, j], stat_on[i, j] = cond.after or 0, True

    def window(name, conditions, disjoint):
        sizes = [c.last for c in conditions
                 if isinstance(c, ir.UnanimousWindow) and c.disjoint == disjoint]
        if len(sizes) > 1:
            raise _unsupported(policy, f"two unanimous rules of one kind in bin '{name}'")
        return sizes[0] if sizes else 0

    return Rules(
        votes=jnp.asarray(votes),
        window=jnp.asarray([window(n, c, True) for n, c in groups], jnp.int32),
        last=jnp.asarray([window(n, c, False) for n, c in groups], jnp.int32),
        first_check=jnp.asarray(first_checks, jnp.int32),
        any=jnp.asarray([bool(c) for _, c in groups]),
        **({} if not stat_on.any() else dict(
            stat_src=jnp.asarray(stat_src), stat_op=jnp.asarray(stat_op), stat_t=jnp.asarray(stat_t),
            stat_after=jnp.asarray(stat_after), stat_on=jnp.asarray(stat_on))),
    )


def _check_conditions(policy: ir.Policy, conditions, where: str) -> None:
    """Refuse a stop or solved rule the simulator cannot evaluate (``where``: whose rule)."""
    for cond in conditions:
        if isinstance(cond, ir.UnanimousWindow) or _stat_condition(cond, policy) is not None:
            continue
        reads = _names(cond.left, policy) | _names(cond.right, policy)
        if not reads <= _VOTE_OBSERVABLES:
            what = ", ".join(sorted(reads - _VOTE_OBSERVABLES))
            raise _unsupported(policy, f"a {where} reads {what} "
                               "(simulated: beta_confidence, top_share and samples; a constant "
                               "threshold on score(s), max or min of scores(s), and in an "
                               "offline evaluation on max or min of correct)")


def _check_bandit(policy: ir.Policy) -> None:
    """What :func:`lower_bandit` cannot model, refused by name."""
    bandit = policy.allocation
    scored = [s for s in policy.scorers if s.kind in ("reward_model", "gold")]
    for scorer in policy.scorers:
        if scorer.kind == "gold" and not policy.offline:
            raise _unsupported(policy, f"gold scorer '{scorer.name}' outside an offline evaluation")
        if scorer.kind not in ("confidence", "reward_model", "gold"):
            raise _unsupported(policy, f"{scorer.kind} scorer '{scorer.name}'")
    if len(scored) > 1:
        raise _unsupported(policy, "two score sources (the workload draws one score per sample): "
                           + ", ".join(s.name for s in scored))
    _bandit_strategy(policy)
    _check_conditions(policy, bandit.solved, "solved rule")
    for limit in policy.budget.limits:
        if limit.bin is not None:
            raise _unsupported(policy, f"a limit scoped to bin '{limit.bin}'")


def _is_gold_best_of_n(policy: ir.Policy, strategy: ir.Strategy) -> bool:
    scorer = _scorer(policy, strategy.scorer)
    return strategy.kind == "best_of_n" and scorer is not None and scorer.kind == "gold"


def _bandit_strategy(policy: ir.Policy) -> int:
    """The answer strategy's code; best-of-n by a gold scorer is best-of-n on the label."""
    from simulator.rollout import BEST_OF_N

    if _is_gold_best_of_n(policy, policy.bins[0].strategy):
        return BEST_OF_N
    return _strategy_code(policy, policy.bins[0].strategy)


def lower_bandit(policy: ir.Policy, plan: Mapping, n_queries: int, *, length: int | None = None) -> Lowered:
    """A bandit plan as :mod:`simulator.bandit`'s arrays (raises :class:`Unsupported`);
    ``length``: the sample positions to draw (at least the per-query cap; more keeps the draws
    those of a rollout of that length, the cap still binds)."""
    import jax.numpy as jnp

    from simulator.bandit import SIGNAL_CONFIDENCE, SIGNAL_SCORE, SIGNAL_VOTES, BanditArrays, BanditConfig
    from simulator.rollout import BEST_OF_N, WEIGHTED_CONFIDENCE, WEIGHTED_SCORE
    from ttcdsl.runtime.bandit_gain import settings, signal_scorer
    from ttcdsl.simulate_bandit import skip_tables

    _check_bandit(policy)
    bandit = policy.allocation
    s = settings(policy)
    capped = not math.isinf(s.cap)
    # without a per-query cap, the drawn length stands in for one (simulate_plan checks that no
    # question came near it, and draws longer sequences where one did)
    cap = int(s.cap) if capped else max(length or 0, uncapped_length(policy, n_queries))
    length = max(cap, length or 0)
    rules = _rules(policy, [(policy.bins[0].name, list(bandit.solved))], [s.first_check], length)
    room = math.inf
    for limit in policy.budget.limits:
        if limit.bin is None and limit.kind == "mean":
            room = min(room, limit.value * n_queries)
        elif limit.bin is None and limit.kind == "total":
            room = min(room, limit.value)
    skip = skip_tables(policy, plan, cap)
    if skip is not None:
        tables, edges = skip
        if edges is not None:  # `best < edge` in float32 as the runtime's float64
            tables = tables._replace(edges=jnp.asarray([_float32_threshold("<", e) for e in edges],
                                                       jnp.float32))
        skip = tables
    strategy = _bandit_strategy(policy)
    signal = signal_scorer(policy)
    code = SIGNAL_VOTES if signal is None else SIGNAL_CONFIDENCE if signal.kind == "confidence" \
        else SIGNAL_SCORE
    gold = any(sc.kind == "gold" for sc in policy.scorers)
    # token limits and prompt charges go through the general ledger; sample limits alone are
    # the batch's room (the per-query cap is the bandit's own `cap`)
    tokens = policy.budget.charge_prompt_tokens or any(limit.unit == "tokens" for limit in policy.budget.limits)
    arrays = BanditArrays(rules=rules, strategy=jnp.asarray(strategy, jnp.int32),
                          max_tokens=jnp.asarray(float(policy.bins[0].sampling.max_tokens), jnp.float32),
                          room=jnp.asarray(room, jnp.float32), skip=skip,
                          limits=_lower_limits(policy, n_queries, length) if tokens else None)
    config = BanditConfig(
        n_positions=length, cap=cap, capped=capped, round_samples=s.round_samples, first=min(s.first, cap), first_check=s.first_check,
        explore=bandit.explore, signal=code, bill_tokens=bandit.bill == "tokens",
        rounds=policy.budget.rounds, gold=gold, scores=bool(_reward_scorers(policy)),
        weighted=strategy in (WEIGHTED_CONFIDENCE, WEIGHTED_SCORE), best=strategy == BEST_OF_N,
        charge_prompt=policy.budget.charge_prompt_tokens,
    )
    return Lowered(config=config, arrays=arrays, objective=policy.objective)


# The longest sequence a bandit without a per-query cap is drawn to: past it the simulation
# refuses (a question that takes more samples than this is better capped by the policy).
UNCAPPED_MAX = 1024


def uncapped_length(policy: ir.Policy, n_queries: int) -> int:
    """The first length a bandit without a per-query cap is drawn to: four times its mean
    budget (a question rarely takes more), at least two rounds, in whole rounds."""
    from ttcdsl.runtime.bandit_gain import settings

    s = settings(policy)
    mean = 8.0
    for limit in policy.budget.limits:
        if limit.bin is None and limit.unit == "samples" and limit.kind in ("mean", "total"):
            mean = limit.value if limit.kind == "mean" else limit.value / max(n_queries, 1)
    rounds = math.ceil(max(4 * mean, s.first + 2 * s.round_samples) / s.round_samples)
    return min(UNCAPPED_MAX, rounds * s.round_samples)


def near_stand_in_cap(out, config) -> bool:
    """Whether a bandit without a per-query cap had a question within a round of the drawn
    length (``config.cap``): there the stand-in could have held it back, so the simulation is
    not the uncapped run. Below it, every ask, retirement and skip was the uncapped run's."""
    return not config.capped and int(np.asarray(out.samples).max()) > config.cap - config.round_samples


def _needs_ledger(policy: ir.Policy) -> bool:
    """Whether the policy's limits need the general ledger (more than a batch sample cap)."""
    return policy.budget.charge_prompt_tokens or any(
        limit.unit != "samples" or limit.bin is not None or limit.kind == "per_query_max"
        for limit in policy.budget.limits)


def _lower_limits(policy: ir.Policy, n_queries: int, length: int):
    """The runtime's limits for the policy and a batch of ``n_queries``, as arrays."""
    from ttcdsl.runtime.ledger import limits_from_policy

    try:
        return limit_arrays(limits_from_policy(policy, n_queries), [b.name for b in policy.bins],
                            n_queries, length)
    except ValueError as error:
        raise _unsupported(policy, str(error)) from None


def limit_arrays(limits, bin_names, n_queries: int, length: int):
    """The runtime's limits (:class:`ttcdsl.runtime.ledger.Limit`) for a batch of ``n_queries``
    as :class:`simulator.ledger.Limits`: integer caps (``floor(cap + 1e-9)``: the runtime's
    tolerance on whole-number spend) per count of the limit's bin. Raises ValueError for a token
    cap the int32 ledger cannot count to."""
    import jax.numpy as jnp

    from simulator.ledger import SATURATE, Limits
    from ttcdsl.runtime.ledger import _EPS

    names = list(bin_names)
    counts = np.arange(n_queries + 1, dtype=np.float64)
    rows = []
    for limit in limits:
        cap = limit.value * counts if limit.mean and limit.bin is not None else np.full(len(counts), limit.cap)
        cap = np.floor(cap + _EPS)
        if limit.unit == "samples":
            cap = np.minimum(cap, n_queries * length + 1)  # no run spends more: the same limit
        elif cap.max() >= SATURATE:
            raise ValueError(f"`{limit.label}` caps {cap.max():.0f} tokens; the simulator's "
                             f"ledger counts tokens below {SATURATE} (int32)")
        rows.append((limit.unit == "tokens", limit.kind == "per_query",
                     -1 if limit.bin is None else names.index(limit.bin), cap))
    if not rows:  # prompts charged, nothing capped: one limit that never binds
        rows.append((False, False, -1, np.full(len(counts), n_queries * length + 1.0)))
    tokens, per_query, bins, caps = zip(*rows)
    return Limits(tokens=jnp.asarray(tokens, bool), per_query=jnp.asarray(per_query, bool),
                  bin=jnp.asarray(bins, jnp.int32), cap=jnp.asarray(np.stack(caps), jnp.int32))


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

    from simulator.rollout import BEST_OF_N, WEIGHTED_CONFIDENCE, WEIGHTED_SCORE, Config, PlanArrays
    from ttcdsl.features.stop_check import first_stop_check
    from ttcdsl.planner.candidates import apply_plan_choices

    policy = apply_plan_choices(policy, plan)  # bins with candidates run the plan's choice
    check_supported(policy, plan)
    probe = int(plan.get("probe", policy.probe) or 0)
    bins = plan["bins"]
    target_fn, most = None, 0
    if _per_query(policy, plan):  # each query's target from its probe, by the plan's own rule
        from ttcdsl.simulate_per_query import target_rule

        target_fn, most = target_rule(policy, plan, n_queries, _lower_key)
    length = max([probe, 1, most, length or 0] + [int(o["samples"]) for b in bins for o in b["allocation"]])
    n_options = max(len(b["allocation"]) for b in bins)
    options = np.zeros((len(bins), n_options), np.int32)
    shares = np.zeros((len(bins), n_options), np.float32)
    for i, b in enumerate(bins):
        ordered = sorted(b["allocation"], key=lambda o: -int(o["samples"]))
        options[i] = [int(o["samples"]) for o in ordered] + [int(ordered[-1]["samples"])] * (n_options - len(ordered))
        shares[i, : len(ordered)] = [float(o["share"]) for o in ordered]
    strategy = np.array([_strategy_code(policy, s.strategy) for s in policy.bins], np.int32)

    rules = _rules(policy, [(spec.name, [r.condition for r in spec.stop]) for spec in policy.bins],
                   [first_stop_check(policy, spec.name) for spec in policy.bins], length)
    cap = math.inf
    limits = None
    if _needs_ledger(policy):
        limits = _lower_limits(policy, n_queries, length)
    else:
        for limit in policy.budget.limits:
            if limit.kind == "mean":
                cap = min(cap, limit.value)
            elif limit.kind == "total":
                cap = min(cap, limit.value / n_queries)
    binning = plan.get("binning")
    key_fn = None
    edges = np.zeros(0, np.float32)
    if binning is not None:
        expr = policy.difficulty if binning["key"] == "difficulty" else ir.FeatureRef(name=binning["key"], span=None)
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

        strategy[:] = _strategy_code(
            policy, ir.Strategy(kind=uniform["strategy"], scorer=uniform.get("scorer")))
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
        limits=limits,
    )
    config = Config(n_positions=length, probe=probe, n_bins=len(bins), rounds=policy.budget.rounds,
                    key_fn=key_fn, target_fn=target_fn, stops=stops,
                    weighted=bool(np.isin(strategy, [WEIGHTED_CONFIDENCE, WEIGHTED_SCORE]).any()),
                    scores=bool(_reward_scorers(policy)), best=bool((strategy == BEST_OF_N).any()),
                    logprobs=_reads_logprobs(policy), charge_prompt=policy.budget.charge_prompt_tokens)
    return Lowered(config=config, arrays=arrays, objective=policy.objective)


# --------------------------------------------------------------------------- workloads

TABLE_MAX_TOKENS = 4096  # the cap a drawn table is logged under (as `ttc workload`'s)


def table_arrays(table, scorer: ir.Scorer | None = None, column: str | None = None) -> dict[str, np.ndarray]:
    """A samples table as the arrays :func:`simulator.fit` reads (``[Q, M]``, logged order).
    ``score``: the reward-model ``scorer``'s column (``column``, default the scorer's name) as the
    policy reads it (:func:`ttcdsl.features.scorers.as_read`); without a scorer, the table's only
    score column if it has exactly one."""
    from ttcdsl.curves.pool import QueryPool

    cut = np.ma.MaskedArray((np.asarray(table.finish_reason, dtype=object) == "length").astype(float))
    pool = QueryPool.from_table(table, extra={"\0cut": cut, "\0logprob": table.mean_logprob})
    tokens = pool.tokens
    is_cut = pool.scores["\0cut"] == 1.0
    known = np.isfinite(tokens)
    cap = float(np.nanmax(np.where(is_cut & known, tokens, np.nan))) if (is_cut & known).any() else (
        float(np.nanmax(tokens)) + 1.0 if known.any() else float(TABLE_MAX_TOKENS))
    scores = [v for k, v in pool.scores.items() if not k.startswith("\0")]
    if scorer is not None:
        from ttcdsl.features.scorers import as_read

        column = column or scorer.name
        if column not in pool.scores:
            raise UserError(f"the samples table has no scores of reward-model scorer '{scorer.name}' "
                            f"(column '{column}'), so its scores cannot be fitted",
                            hint=f"fit to a table with a '{column}' score column")
        scores = [as_read(scorer, pool.scores[column])]
    return {
        "answer": pool.answer, "correct": pool.correct, "valid": pool.valid, "tokens": tokens,
        "cut": is_cut | (known & (tokens >= cap)), "max_tokens": cap,
        "logprob": pool.scores["\0logprob"], "score": scores[0] if len(scores) == 1 else None,
        "prompt_tokens": _prompt_bounds(table, pool.query_ids),
        "query_ids": pool.query_ids,
    }


def _prompt_bounds(table, query_ids) -> np.ndarray | None:
    """``[Q]`` each query's prompt-token bound as a replay run is given it
    (:func:`ttcdsl.runtime.replay.prompt_bounds`), or None when some query has none."""
    from ttcdsl.runtime.replay import prompt_bounds

    bounds = prompt_bounds(table)
    if any(qid not in bounds for qid in query_ids):
        return None
    return np.asarray([bounds[qid] for qid in query_ids], np.int64)


def fit_table(table, policy: ir.Policy | None = None, *, empirical: bool = False,
              score_columns: Mapping[str, str] | None = None):
    """:func:`simulator.fit` on a samples table; the scores fitted are those of the policy's
    reward-model scorer, read from its column in ``score_columns`` (default: the scorer's name;
    refused when the table has none). ``empirical``: also the table's logged samples for the
    empirical mode (:mod:`simulator.empirical`): ``(fitted, logged)``, rows in the order of
    ``QueryPool.from_table(table).query_ids``."""
    from simulator.fit import fit

    if len(table) == 0:
        raise UserError("the samples table has no samples to fit")
    rewards = _reward_scorers(policy) if policy is not None else []
    scorer = rewards[0] if rewards else None
    a = table_arrays(table, scorer, None if scorer is None else (score_columns or {}).get(scorer.name))
    if not (a["valid"] & (a["answer"] >= 0)).any():
        # the fit would model answers from the labels alone, and simulate votes the table
        # never held (ttc plan, which reads the table itself, predicts accuracy 0)
        raise UserError("no sample of the table carries an answer, so no run on it has one to "
                        "give: there is nothing to fit",
                        hint="import the log with its answers extracted (ttc import --extract)")
    fitted = fit(a["answer"], a["correct"], a["valid"], a["tokens"], a["cut"], a["max_tokens"],
                 score=a["score"], logprob=a["logprob"], prompt_tokens=a["prompt_tokens"])
    if not empirical:
        return fitted
    from simulator.empirical import logged_samples

    return fitted, logged_samples(a["answer"], a["correct"], a["valid"], a["tokens"], fitted,
                                  score=a["score"], logprob=a["logprob"])


@dataclass(frozen=True)
class Workload:
    """Where simulated questions come from: the built-in parametric mixture, a fitted table, or
    (``logged``) a table's own samples in random orders, the fit past their depth."""

    name: str
    fitted: object | None = None  # simulator.fit.Fitted
    mixture: object | None = None  # simulator.model.Mixture (simulator.workloads); None: the built-in one
    logged: object | None = None  # simulator.empirical.Logged: the empirical mode
    tokens_known: bool = True  # False: fitted to a table without token counts (tokens unknown)
    tokens_counted: float = 1.0  # the share of the table's samples that logged a token count

    def draw(self, keys, n_queries: int):
        """``[S]`` independent draws of the questions (``[S, Q, ...]`` arrays); in the empirical
        mode ``(rows, questions)``: the table's rows each draw runs and their posteriors."""
        import jax

        if self.logged is not None:
            from simulator.empirical import draw_rows, posterior

            rows = draw_rows(keys, int(self.logged.answer.shape[0]), n_queries)
            return rows, posterior(keys, rows, self.fitted)
        if self.fitted is None:
            from simulator.model import default_mixture, draw_questions

            mixture = default_mixture() if self.mixture is None else self.mixture
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

    def questions(self, drawn):
        """The per-question response processes of a :meth:`draw` (what an oracle knows)."""
        return drawn[1] if self.logged is not None else drawn

    def simulate(self, keys, drawn, arrays, config):
        """The rollouts of ``arrays`` on a :meth:`draw`, one per key."""
        if self.logged is not None:
            from simulator.empirical import simulate

            return simulate(keys, drawn[0], self.logged, self.fitted, arrays, config)
        from simulator.rollout import simulate

        return simulate(keys, drawn, arrays, config)

    def simulate_bandit(self, keys, drawn, arrays, config):
        """The online bandit's runs (:func:`lower_bandit`'s arrays) on a :meth:`draw`, one per key."""
        if self.logged is not None:
            from simulator.empirical import simulate_bandit

            return simulate_bandit(keys, drawn[0], self.logged, self.fitted, arrays, config)
        from simulator.bandit import simulate_bandit

        return simulate_bandit(keys, drawn, arrays, config)


def draw_table(workload: Workload, n_queries: int, n_samples: int, *, seed: int = 0,
               scorer: ir.Scorer | None = None):
    """A samples table drawn from ``workload`` (answers ``"0"`` correct, ``"1".."D"`` wrong;
    logged under :data:`TABLE_MAX_TOKENS`). The verifier score is stored as the column of the
    reward-model ``scorer`` (default ``prm``); for a scorer declared ``logits`` as the logit of
    the simulated score, so that the policy reads (``sigmoid``) the score the simulator uses."""
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
    score = np.asarray(obs.score, np.float64)
    name = "prm" if scorer is None else scorer.name
    if scorer is not None and scorer.logits:
        with np.errstate(divide="ignore"):
            score = np.log(score) - np.log1p(-score)
    ids = np.array([f"sim-{i:05d}" for i in range(q)], dtype=object)
    full = np.zeros(q * m, dtype=bool)
    return SamplesTable.from_columns(
        meta=RunMeta(model="simulated", backend="simulator", seed=seed,
                     sampling={"n": n_samples, "max_tokens": TABLE_MAX_TOKENS},
                     source=f"simulator workload {workload.name} (queries={q}, samples={m}, seed={seed})"),
        query_id=np.repeat(ids, m),
        sample_index=np.tile(np.arange(m, dtype=np.int64), q),
        # every sample of a question is served its one prompt (simulator.model)
        prompt_tokens=np.ma.MaskedArray(np.repeat(np.asarray(questions.prompt_tokens, np.int64), m), mask=full),
        completion_tokens=np.ma.MaskedArray(tokens.ravel(), mask=full),
        finish_reason=np.where(cut, "length", "stop").astype(object).ravel(),
        answer=np.where(answer >= 0, answer.astype(str), None).astype(object).ravel(),
        correct=np.ma.MaskedArray((answer == 0).ravel(), mask=full),
        # a cut sample has no log-probability or score (ttcdsl.samples.truncation): masked
        mean_logprob=np.ma.masked_invalid(np.asarray(obs.logprob, np.float64).ravel()),
        scores={name: np.ma.masked_invalid(score.ravel())},
    )


# --------------------------------------------------------------------------- simulate

def _interval(values: np.ndarray, bounds: tuple[float, float] | None = None) -> dict:
    """Mean over seeds with its 95% interval: Student's t over the draws (``df`` = draws - 1;
    eight draws widen the normal's interval by a fifth, two by a factor of six), cut at
    ``bounds`` the figure cannot pass (a rate in [0, 1]: over two draws the t interval ran to
    146%); ``se`` stays the draws' own."""
    from ttcdsl.verdict import critical

    values = np.asarray(values, np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        nan = float("nan")
        return {"mean": mean, "se": nan, "df": 0, "lo": nan, "hi": nan}
    se = float(values.std(ddof=1) / math.sqrt(len(values)))
    df = len(values) - 1
    half = critical(df) * se
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return {"mean": mean, "se": se, "df": df, "lo": lo, "hi": hi}


RATE = (0.0, 1.0)
COUNT = (0.0, math.inf)


def _summary(out) -> dict:
    summary = {
        "accuracy": _interval(np.asarray(out.correct).mean(1), RATE),
        "coverage": _interval(np.asarray(out.covered).mean(1), RATE),
        "samples": _interval(np.asarray(out.samples).mean(1), COUNT),
        "tokens": _interval(np.asarray(out.tokens, np.float64).mean(1), COUNT),
        "max_samples": _interval(np.asarray(out.samples).max(1), COUNT),
        "max_tokens": _interval(np.asarray(out.tokens, np.float64).max(1), COUNT),
        "rounds": _interval(np.asarray(out.rounds), COUNT),
    }
    if hasattr(out, "extrapolated"):  # the empirical mode: samples past the logged depth
        summary["extrapolated"] = extrapolated_share(out)
    return summary


def _unknown_tokens(summary: dict, workload: Workload) -> dict:
    """Token figures nobody measured are unknown (None, ``tokens_unknown`` says why), not a
    stand-in: a workload fitted to a table that logged no token counts, or the empirical mode
    serving logged samples without one (their sum is NaN). Where the table logged counts for
    only some samples, the fit drew every length from those: ``tokens_counted`` is their share,
    so that the figure reads as the estimate it is (a run's ledger bills a sample without a
    count at ``max_tokens``, the plan's figures too)."""
    counted = workload.tokens_counted
    if not workload.tokens_known:
        summary["tokens"] = summary["max_tokens"] = None
        summary["tokens_unknown"] = "the table logged no completion token counts"
    elif not math.isfinite(summary["tokens"]["mean"]):
        summary["tokens"] = summary["max_tokens"] = None
        summary["tokens_unknown"] = (f"{1 - counted:.0%} of the table's samples logged no completion "
                                     "token count, and the draws serve logged samples as they are")
    elif counted < 1.0:
        summary["tokens_counted"] = counted
    return summary


def extrapolated_share(out) -> float:
    """The share of the simulated samples spent that the fitted model made (past a question's
    logged depth) rather than the table (the empirical mode; 0 when none was)."""
    spent = float(np.asarray(out.samples, np.float64).sum())
    return float(np.asarray(out.extrapolated, np.float64).sum()) / spent if spent else 0.0


def check_limits(policy: ir.Policy, lowered: Lowered, questions) -> None:
    """Refuse, as the runtime's executor does, a simulation whose ledger could not keep a
    declared limit: prompt tokens charged for questions without counts, or a probe whose worst
    case could break a bin-scoped limit (:func:`ttcdsl.runtime.ledger.probe_violations`)."""
    from ttcdsl.runtime.ledger import PROBE_OVERRUN_HINT, limits_from_policy, probe_violations

    charge = policy.budget.charge_prompt_tokens
    if charge and questions.prompt_tokens is None:
        raise UserError("the policy charges prompt tokens, but the workload has no prompt token "
                        "counts (the samples table logs none)",
                        hint="fit to a table with prompt token counts (ttc import --tokenizer)")
    n_queries = int(questions.p_correct.shape[-1])
    ids = [str(i) for i in range(n_queries)]
    limits = limits_from_policy(policy, n_queries)
    # one draw of the questions per seed: each is a batch the runtime would check
    draws = np.asarray(questions.prompt_tokens).reshape(-1, n_queries) if charge else [None]
    for prompts in draws:
        bounds = {} if prompts is None else {q: int(p) for q, p in zip(ids, prompts)}
        problems = probe_violations(limits, probe=lowered.config.probe,
                                    max_tokens=policy.sampling.max_tokens, prompt_bounds=bounds,
                                    query_ids=ids)
        if problems:
            break
    if problems:
        raise UserError("the run could exceed a declared limit: " + "; ".join(problems),
                        hint=PROBE_OVERRUN_HINT)


def unsharded_because(policy: ir.Policy, plan: Mapping, workload: Workload) -> str | None:
    """Why the simulation keeps the questions on one device (None: it splits them over the
    devices there are): the empirical mode's draws index one table; the rule of ``allocate per
    query`` is a host callback over the whole batch's probes (GSPMD cannot partition a rollout
    around it)."""
    if workload.logged is not None:
        return "the empirical mode draws rows of one table"
    if _per_query(policy, plan):
        return "the per-query rule reads the whole batch's probes"
    return None


# Seeds simulated per call when progress is reported: about this many sample positions per call
# (a few seconds on 2 CPU cores), so a long simulation reports every few seconds; a short one is
# one call, as without progress.
PROGRESS_POSITIONS = 1 << 23


def _by_seed_chunks(run, keys, drawn, *, chunk: int, place=lambda tree: tree, progress=None, label: str = ""):
    """``run(keys, drawn)`` over chunks of ``chunk`` seeds (``place``d, e.g. sharded, one chunk
    at a time), the outcomes concatenated: equal to one call, since each seed's run depends on
    its key and its draw only. The last chunk is padded with its last seed, so every call has
    one shape (one compile); ``progress`` is told after each chunk."""
    import jax
    import jax.numpy as jnp

    total = int(keys.shape[0])
    if chunk >= total:
        return run(keys, place(drawn))
    parts = []
    for start in range(0, total, chunk):
        rows = np.minimum(np.arange(start, start + chunk), total - 1)
        out = run(keys[rows], place(jax.tree.map(lambda x: x[rows], drawn)))
        parts.append(jax.tree.map(lambda x, n=min(chunk, total - start): x[:n], out))
        if progress is not None:
            progress(f"{label}{min(start + chunk, total)}/{total} draws")
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)


def simulate_plan(policy: ir.Policy, plan: Mapping, workload: Workload, *, n_queries: int,
                  seeds: int, seed: int = 0, progress=None, seed_chunk: int | None = None,
                  baselines: bool = True, per_query: bool = False) -> dict:
    """The plan's simulated accuracy, coverage and spend over ``seeds`` draws of ``n_queries``
    questions, next to uniform allocation at the same mean spend and the static oracle, on the
    same draws; and the verdict against uniform. ``progress`` (a callable taking a line) is
    told as the draws are simulated, in chunks of ``seed_chunk`` seeds (None: as many as hold
    about :data:`PROGRESS_POSITIONS` sample positions); the figures do not depend on it.
    ``baselines=False``: the policy alone (no uniform, oracle or verdict). ``per_query``: also
    ``per_query``, each simulated question's correct, covered, samples and tokens (``[S, Q]``)."""
    import jax

    from simulator.oracle import static_oracle
    from ttcdsl.planner.candidates import apply_plan_choices

    policy = apply_plan_choices(policy, plan)  # bins with candidates run the plan's choice
    from simulator.rollout import (
        BEST_OF_N,
        MAJORITY,
        WEIGHTED_CONFIDENCE,
        WEIGHTED_SCORE,
        simple_plan,
    )
    from ttcdsl.verdict import verdict

    online = isinstance(policy.allocation, ir.Bandit)
    lowering = lower_bandit if online else lower
    longest = lowering(policy, plan, n_queries).config.n_positions
    length = longest + 1  # room for uniform's ceil(spend): both run on the same sequences
    lowered = lowering(policy, plan, n_queries, length=length)
    keys = jax.random.split(jax.random.key(seed), seeds)
    k_questions = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    k_run = jax.vmap(lambda k: jax.random.fold_in(k, 2))(keys)
    drawn = workload.draw(k_questions, n_queries)
    place = lambda tree: tree  # noqa: E731
    if unsharded_because(policy, plan, workload) is None:
        from simulator.shard import shard_questions

        # split over the devices there are (one: unchanged); the rollouts' values do not change
        place = lambda tree: shard_questions(tree, n_queries)  # noqa: E731
    questions = workload.questions(drawn)
    chunk = seed_chunk or (seeds if progress is None else max(1, PROGRESS_POSITIONS // (n_queries * length)))

    def chunked(run, label: str):
        return _by_seed_chunks(run, k_run, drawn, chunk=chunk, place=place, progress=progress, label=label)

    if online:
        def bandit(lowered):
            return lambda k, d: workload.simulate_bandit(k, d, lowered.arrays, lowered.config)

        def more_room(length: int):
            """A bandit without a per-query cap had a question reach the drawn length: twice
            the room, up to what the simulator draws."""
            if length >= UNCAPPED_MAX:
                raise UserError(
                    f"a simulated question of policy '{policy.name}' took {UNCAPPED_MAX} samples "
                    "or more; the simulator draws at most that many per question",
                    hint="cap each question (`samples per query <= N` in the budget)")
            length = min(2 * length, UNCAPPED_MAX)
            if progress is not None:
                progress(f"a question came within a round of {lowered.config.cap} samples (the "
                         f"policy caps none): simulating again with room for {length}")
            return length, lowering(policy, plan, n_queries, length=length)

        if not lowered.config.capped and seeds > 1:
            # one draw first finds the room the questions need, so all the draws run once: an
            # uncapped bandit at a huge budget simulated every draw at every doubling, for
            # minutes, to find it could not be simulated
            first = lambda tree: jax.tree.map(lambda x: x[:1], tree)  # noqa: E731
            while near_stand_in_cap(bandit(lowered)(k_run[:1], place(first(drawn))), lowered.config):
                length, lowered = more_room(length)
        out = chunked(bandit(lowered), "policy: ")
        while near_stand_in_cap(out, lowered.config):  # another draw needed more room
            length, lowered = more_room(length)
            out = chunked(bandit(lowered), "policy: ")
    else:
        check_limits(policy, lowered, questions)
        out = chunked(lambda k, d: workload.simulate(k, d, lowered.arrays, lowered.config), "policy: ")
    policy_summary = _unknown_tokens(_summary(out), workload)
    outcomes = {name: np.asarray(getattr(out, name), np.float64)
                for name in ("correct", "covered", "samples", "tokens")} if per_query else None
    if not baselines:
        return {"policy": policy.name, "workload": workload.name, "queries": n_queries,
                "seeds": seeds, "objective": policy.objective, "simulated": policy_summary,
                "per_query": outcomes}

    # uniform answers as the policy's `answer` does (keep_probe: by majority). Best-of-n by a
    # gold scorer (an offline evaluation's bandit) picks a correct sample whenever there is one:
    # its accuracy is its coverage, so uniform votes and reads its coverage as its accuracy
    gold_best = _is_gold_best_of_n(policy, policy.answer)
    strategy = MAJORITY if policy.answer.kind == "keep_probe" or gold_best \
        else _strategy_code(policy, policy.answer)
    from simulator.rollout import Config

    def uniform_at(samples: float, positions: int):
        """Every question ``lo`` or ``lo + 1`` samples, mixed to spend ``samples`` per question,
        billed as the policy's ledger bills (prompt tokens where it charges them)."""
        lo = max(1, int(math.floor(samples)))
        theta = samples - lo if samples >= 1 else 0.0
        plan = simple_plan(1, positions, [lo + 1, lo], [theta, 1.0 - theta], strategy=strategy,
                           cap=policy.sampling.max_tokens)
        config = Config(positions, 0, 1, stops=False, weighted=strategy in (WEIGHTED_CONFIDENCE, WEIGHTED_SCORE),
                        scores=lowered.config.scores, best=strategy == BEST_OF_N,
                        logprobs=strategy == WEIGHTED_CONFIDENCE, charge_prompt=lowered.config.charge_prompt)
        return chunked(lambda k, d: workload.simulate(k, d, plan, config), "uniform: ")

    spend = policy_summary["samples"]["mean"]
    base = uniform_at(spend, length)
    equal = budget_unit(policy) if workload.tokens_known else "samples"
    if equal == "tokens":
        # uniform at the policy's billed tokens per question (ttcdsl.equal_spend), at the tokens
        # per sample uniform itself bills: one rescale matches them, uniform's tokens growing in
        # proportion to its samples
        per_sample = float(np.asarray(base.tokens, np.float64).sum() / np.asarray(base.samples, np.float64).sum())
        spend = uniform_samples(policy, spend, float(np.asarray(out.tokens, np.float64).mean()), per_sample)
        base = uniform_at(spend, max(length, math.ceil(spend) + 1))
    if gold_best:
        base = base._replace(correct=base.covered)
    uniform_summary = _unknown_tokens(_summary(base), workload)
    metric = "covered" if policy.objective == "coverage" else "correct"
    diff = np.asarray(getattr(out, metric)).mean(1) - np.asarray(getattr(base, metric)).mean(1)
    d = _interval(diff)
    oracle = static_oracle(
        jax.vmap(lambda k: jax.random.fold_in(k, 3))(keys), questions, spend,
        # room to concentrate: up to 4x the mean spend per question (at most 64 samples)
        n_positions=max(length, math.ceil(spend) + 1, min(64, 4 * math.ceil(spend))),
        cap=float(policy.sampling.max_tokens),
        objective="coverage" if policy.objective == "coverage" or gold_best else "accuracy",
        strategies=tuple(sorted({MAJORITY if s.strategy.kind == "keep_probe" or _is_gold_best_of_n(policy, s.strategy)
                                 else _strategy_code(policy, s.strategy) for s in policy.bins} | {strategy})),
        progress=None if progress is None or chunk >= seeds else (lambda done: progress(f"oracle: {done}/{seeds} draws")),
        # the empirical mode: the oracle draws the table's logged samples first, as the policy does
        logged=None if workload.logged is None else (workload.logged, workload.fitted, drawn[0]),
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
        # what uniform and the oracle spend as much of as the policy: its budget's unit
        "equal_spend": equal,
        "verdict": verdict(d["mean"], d["se"] if math.isfinite(d["se"]) else None, d["df"] or None),
        **({"per_query": outcomes} if per_query else {}),
    }
