"""What a policy reads from its samples, and whether a samples table can provide it.

A policy's features, difficulty, stop rules, bandit ``solved when`` rules and answer strategies
read observables of the samples: answers (always there, possibly null), completion token counts,
mean token log-probabilities, correctness labels, a reward model's scores, the prompt's NLL. A
rule that reads an observable nobody measured does not fail: it quietly evaluates to NaN, and
``best_of_n`` over unknown scores picks nothing, so a run reports accuracy 0 as if it had been
measured. So every reader of a policy asks this module first, and refuses before anything is spent:

* :func:`policy_needs` lists what the policy reads, each with the statement that reads it;
* :func:`require` checks a samples table (a calibration table, a replay log) against that list and
  raises one :class:`~ttcdsl.errors.UserError` naming everything missing;
* :func:`score_maps` applies ``--score SCORER=COLUMN`` mappings to the policies that declare the
  scorer (a batch of policies can share one mapping).

A reward-model scorer ``prm`` reads the score column ``prm`` unless a mapping names another column
(the Qwen MATH pool logs its reward model as ``rm``). The planner records the mapping in the plan
(``score_columns``) and the runtime reads it from there, so a plan runs on the columns it was
calibrated on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ttcdsl.errors import UserError
from ttcdsl.lang import ir


@dataclass(frozen=True, slots=True, kw_only=True)
class Need:
    """One observable the policy reads: ``kind`` is ``tokens``, ``logprobs``, ``correct``,
    ``prompt_nll`` or ``score`` (then ``column`` is the score column); ``reason`` names the
    statement that reads it, with its line."""

    kind: str
    reason: str
    column: str | None = None

    @property
    def what(self) -> str:
        return {
            "tokens": "completion token counts",
            "logprobs": "mean token log-probabilities",
            "correct": "correctness labels (gold answers)",
            "prompt_nll": "prompt NLLs (prompt log-probabilities)",
            "score": f"the score column {self.column!r}",
        }[self.kind]


# Observables whose values come from a table column (the others derive from the answers).
_COLUMN_OF_OBSERVABLE = {"tokens": "tokens", "logprobs": "logprobs", "correct": "correct",
                         "prompt_nll": "prompt_nll"}
_COLUMN_OF_SCORER_KIND = {"confidence": "logprobs", "gold": "correct"}


def score_maps(
    policies: Sequence[ir.Policy], mapping: Mapping[str, str]
) -> list[dict[str, str]]:
    """Each policy's share of ``mapping``: the entries for scorers it declares as reward models.

    A mapping no policy can use is a mistake (a typo in the scorer's name): refused."""
    out = []
    used: set[str] = set()
    for policy in policies:
        mine = {s.name for s in policy.scorers if s.kind == "reward_model"}
        out.append({k: v for k, v in mapping.items() if k in mine})
        used |= mine & set(mapping)
    unused = sorted(set(mapping) - used)
    if unused:
        declared = sorted({s.name for p in policies for s in p.scorers if s.kind == "reward_model"})
        names = ", ".join(repr(u) for u in unused)
        which = "the policy declares" if len(policies) == 1 else "the policies declare"
        raise UserError(
            f"--score maps {names}, which no policy declares as a reward-model scorer",
            hint=f"reward-model scorers {which}: {', '.join(declared) or 'none'}",
        )
    return out


def policy_needs(
    policy: ir.Policy, score_columns: Mapping[str, str] | None = None
) -> tuple[Need, ...]:
    """What ``policy`` reads that a table may lack, each once, with the first statement that reads
    it (module docstring)."""
    score_columns = dict(score_columns or {})
    scorers = {s.name: s for s in policy.scorers}
    features = {f.name: f for f in policy.features}
    found: dict[tuple[str, str | None], Need] = {}

    def add(kind: str, reason: str, column: str | None = None) -> None:
        found.setdefault((kind, column), Need(kind=kind, reason=reason, column=column))

    def add_scorer(name: str, reason: str) -> None:
        scorer = scorers.get(name)
        if scorer is None:
            return  # the checker reports unknown scorers; nothing to read here
        if scorer.kind == "reward_model":
            add("score", reason, score_columns.get(name, name))
        else:
            add(_COLUMN_OF_SCORER_KIND[scorer.kind], reason)

    # Iterative, and each feature's expression read once for the whole policy: a chain of
    # thousands of features, each reading the previous one, must neither hit the recursion limit
    # nor be re-read from every later feature. A feature read before has added its needs already,
    # with an earlier statement as the reason, which is the one kept.
    expanded: set[str] = set()

    def walk(expr: ir.Expr, reason: str) -> None:
        pending = [expr]
        while pending:
            for node in _nodes(pending.pop()):
                match node:
                    case ir.ObservableRef(name=name) if name in _COLUMN_OF_OBSERVABLE:
                        add(_COLUMN_OF_OBSERVABLE[name], reason)
                    case ir.ScorerRef(name=name):
                        add_scorer(name, reason)
                    case ir.FeatureRef(name=name) if name in features and name not in expanded:
                        expanded.add(name)
                        pending.append(features[name].expr)

    def at(span) -> str:
        return f"line {span.line}" if span is not None else "the policy"

    for feature in policy.features:
        if feature.name not in expanded:
            expanded.add(feature.name)
            walk(feature.expr, f"feature {feature.name} ({at(feature.span)})")
    if policy.difficulty is not None:
        walk(policy.difficulty, "the difficulty expression")
    for spec in policy.bins:
        for rule in spec.stop:
            for expr in _condition_exprs(rule.condition):
                walk(expr, f"a stop rule ({at(rule.span)})")
    if isinstance(policy.allocation, ir.Bandit):
        for condition in policy.allocation.solved:
            for expr in _condition_exprs(condition):
                walk(expr, f"a `solved when` rule ({at(condition.span)})")
    strategies = [(policy.answer, "the answer strategy")]
    if policy.binning is not None:  # without bins, the one bin's strategy is the answer's
        # every candidate of `one of [...]` (the planner drops those a table cannot serve first)
        strategies = [
            (strategy, f"strategy {spec.name}")
            for spec in policy.bins
            for strategy in (spec.candidates or (spec.strategy,))
        ] + strategies
    for strategy, where in strategies:
        if strategy.scorer is not None:
            add_scorer(strategy.scorer, f"{where} = {strategy.kind}({strategy.scorer})")
    return tuple(found.values())


def _condition_exprs(condition: ir.Condition) -> Iterator[ir.Expr]:
    if isinstance(condition, ir.Threshold):
        yield condition.left
        yield condition.right


def _nodes(expr: ir.Expr) -> Iterator[ir.Expr]:
    stack = [expr]
    while stack:  # iterative: a deeply nested expression must not hit the recursion limit
        node = stack.pop()
        yield node
        match node:
            case ir.Apply(args=args):
                stack.extend(args)
            case ir.Arith(left=left, right=right):
                stack.extend((left, right))
            case ir.Neg(operand=operand):
                stack.append(operand)


def known_share(need: Need, table, rows: np.ndarray | None = None) -> float:
    """The share of ``table``'s samples (``rows`` of them, default all) that carry ``need``'s
    observable. A sample that was cut at ``max_tokens`` legitimately lacks scores and logprobs,
    but a column no sample has is missing altogether."""
    if need.kind == "score":
        column = table.scores.get(need.column)
        if column is None:
            return 0.0
    else:
        column = {"tokens": table.completion_tokens, "logprobs": table.mean_logprob,
                  "correct": table.correct, "prompt_nll": table.prompt_nll}[need.kind]
    mask = np.ma.getmaskarray(column)
    if rows is not None:
        mask = mask[rows]
    return float((~mask).mean()) if len(mask) else 0.0


def require(
    policy: ir.Policy,
    table,
    *,
    score_columns: Mapping[str, str] | None = None,
    table_name: str,
    query_ids: Iterable[str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> None:
    """Refuse ``policy`` on ``table`` (restricted to ``query_ids``) when the table lacks an
    observable the policy reads; ``warn`` about observables only some samples carry."""
    needs = policy_needs(policy, score_columns)
    if not needs:
        return
    rows = None
    if query_ids is not None:
        wanted = set(query_ids)
        rows = np.flatnonzero([q in wanted for q in table.query_id.tolist()])
    missing, partial = [], []
    for need in needs:
        share = known_share(need, table, rows)
        if share == 0.0:
            missing.append(need)
        elif share < 1.0:
            partial.append((need, share))
    if missing:
        lines = [f"{need.what} (read by {need.reason})" for need in missing]
        raise UserError(
            f"{table_name} cannot serve policy {policy.name!r}: it lacks " + "; ".join(lines),
            hint=_hint(missing, table),
        )
    _check_vote_weights(policy, table, dict(score_columns or {}), rows)
    if warn is not None:
        _warn_unit_scores(policy, table, dict(score_columns or {}), rows, table_name, warn)
    for need, share in partial:
        if warn is not None:
            warn(
                f"{table_name}: only {share:.0%} of the samples carry {need.what} (read by "
                f"{need.reason}); the others count as unknown"
            )


def _warn_unit_scores(policy: ir.Policy, table, score_columns: Mapping[str, str], rows,
                      table_name: str, warn: Callable[[str], None]) -> None:
    """A reward model's scores are read as probabilities (``score(s) >= 0.7``, a mean of
    scores as a difficulty): a column of raw logits (Qwen's RM: -4.3..6.1) passes such a
    threshold with most samples, silently. Said, with the fix (``logits``); weighted votes on
    such scores are refused elsewhere (:func:`_check_vote_weights`)."""
    # a best-of-n only ranks the scores: their scale matters where an expression reads them
    exprs = [f.expr for f in policy.features]
    exprs += [policy.difficulty] if policy.difficulty is not None else []
    conditions = [rule.condition for spec in policy.bins for rule in spec.stop]
    if isinstance(policy.allocation, ir.Bandit):
        conditions += list(policy.allocation.solved)
    exprs += [e for condition in conditions for e in _condition_exprs(condition)]
    compared = {node.name for e in exprs for node in _nodes(e) if isinstance(node, ir.ScorerRef)}
    for scorer in policy.scorers:
        if scorer.kind != "reward_model" or scorer.logits or scorer.name not in compared:
            continue
        column = score_columns.get(scorer.name, scorer.name)
        if column not in table.scores:
            continue
        values = np.ma.MaskedArray(table.scores[column])
        if rows is not None:
            values = values[rows]
        known = values.compressed()
        if len(known) and (known.min() < 0 or known.max() > 1):
            warn(f"{table_name}: score column {column!r} of reward model {scorer.name!r} ranges "
                 f"{known.min():.3g}..{known.max():.3g}, outside [0, 1], but the policy reads "
                 "its scores as probabilities (thresholds, features); if they are logits, "
                 f"declare it `scorer {scorer.name} = reward_model ... logits` to read "
                 "sigmoid(score)")


def _hint(missing: Sequence[Need], table) -> str:
    hints = []
    for need in missing:
        if need.kind == "score":
            have = ", ".join(sorted(table.scores)) or "none"
            hints.append(
                f"map the scorer to a column the table has with --score SCORER=COLUMN "
                f"(its score columns: {have})"
            )
        elif need.kind == "tokens":
            hints.append("import the log with token counts (ttc import --tokenizer)")
        elif need.kind == "logprobs":
            hints.append("use samples generated with logprobs, or another scorer")
        elif need.kind == "correct":
            hints.append("gold labels exist only for offline evaluation on labelled samples")
        elif need.kind == "prompt_nll":
            hints.append("generate the samples with a live backend (ttc run --backend vllm or "
                         "openai measures the prompt's NLL for policies that read it), or import "
                         "a log with a prompt_nll field")
    return "; ".join(dict.fromkeys(hints))


def _check_vote_weights(policy: ir.Policy, table, score_columns: dict[str, str], rows) -> None:
    """A weighted vote over reward-model scores that are no probabilities is refused by the
    weighting rule (:func:`ttcdsl.features.weights.vote_weights`) when the votes are counted:
    at the END of a run, after the budget is spent. Apply the same rule to the table first."""
    from ttcdsl.features.scorers import as_read
    from ttcdsl.features.weights import vote_weights

    scorers = {s.name: s for s in policy.scorers}
    voted = {
        s.scorer for b in policy.bins for s in (b.candidates or (b.strategy,))
        if s.kind == "weighted_vote"
    }
    if policy.answer.kind == "weighted_vote":
        voted.add(policy.answer.scorer)
    for name in sorted(n for n in voted if n in scorers and scorers[n].kind == "reward_model"):
        column = table.scores.get(score_columns.get(name, name))
        if column is None:
            continue
        values = as_read(scorers[name], np.ma.masked_array(column).astype(np.float64).filled(np.nan))
        vote_weights("reward_model", values if rows is None else values[rows], name)
