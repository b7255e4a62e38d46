"""The bandit's learned skip: what one more round is worth for a query, learned on calibration.

A query's *state* is its sample count ``n``, the agreement of its answers so far
(``unanimous``: every sample gives the same answer; ``majority``: the leading answer has more than
half the samples; ``split``: anything else, and a query with no answer) and, when a solved rule
reads a scorer other than ``gold``, the level of its best signal so far (the signal of
:func:`signal`): ``low``, ``mid`` or ``high`` against the terciles of that best signal over the
calibration's draws (stored in the plan). The *gain* of a state is the expected change of the
policy's objective for that query from one more round of ``round K samples`` (fewer at the
per-query cap), given that the query is still active in that state: for ``maximize coverage``, P(the round brings its first correct sample); for ``maximize
accuracy``, P(the round turns the policy's answer right) - P(it turns it wrong), the answer rule
being the policy's ``answer`` strategy. The *retire* probability is P(a solved rule holds, or
the cap is reached, after that round).

:func:`fit` estimates both on a calibration table (``ttc plan``; ``ttc compare`` on its
calibration half) by replaying every calibration query in several seeded sample orders through
the same first round, solved rules and cap as the runtime: each time a replayed query is active
at a count it is a draw of its state's gain (the objective after the round minus before it) and
retire indicator. A state's estimate is shrunk toward the mean over every state at the same count
with one pseudo-draw, so a rare state does not decide on one or two draws; that mean is stored
too (state ``any``).

:func:`skipped` is the runtime's decision (:mod:`ttcdsl.runtime.bandit`): with ``R`` samples left
after the queries still in their first round, each active query's future rounds are projected:
round ``m`` worth ``S_m * gain_m / K`` per sample, ``gain_0`` its current state's gain and
``gain_m`` for later rounds that of state ``any`` at ``n + m K`` (its later answers are not known
yet), ``S_m`` the probability it is still active then (the product of ``1 - retire`` over the
rounds before). A rising run of these values is replaced by its mean (a later round can only be
bought after the earlier ones). The ``R`` samples buy the most valuable of all projected rounds
(a water-filling of the budget); the threshold ``tau`` is the per-sample value of the last round
bought. A query is skipped this round when its next round is worth less than ``tau`` even at
the upper end of the 95% interval of its state's gain (gain + 1.96 standard errors, over its
draws and pseudo-draw): the rest of the batch offers more per sample, and the calibration is
sure of it (where a state says little, as the answers' agreement under a gold scorer, nothing is
skipped and the run is plain elimination). A query whose state the calibration never saw is
never skipped (nothing says it is worth less), and when the budget affords every projected
round, or less than one round, nobody is skipped. Values are per sample, under ``bill tokens``
too.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from ttcdsl.lang import ir
from ttcdsl.samples.schema import SampleRow

AGREEMENT = ("unanimous", "majority", "split")
ANY = "any"  # the mean over every agreement state at a count
ORDERS = 8  # seeded sample orders per calibration query
PSEUDO = 1.0  # pseudo-draws of the count's mean in each state's estimate
Z95 = 1.959964  # the skip's two-sided 95% normal quantile


def agreement(rows: Sequence[SampleRow]) -> str:
    """``unanimous``, ``majority`` or ``split`` (module docstring)."""
    votes: dict[str, int] = {}
    for row in rows:
        if row.answer is not None:
            votes[row.answer] = votes.get(row.answer, 0) + 1
    top = max(votes.values(), default=0)
    if rows and top == len(rows):
        return "unanimous"
    return "majority" if 2 * top > len(rows) else "split"


def state_key(n: int, agreed: str, level: str | None = None) -> str:
    return f"{n}:{agreed}" if level is None else f"{n}:{agreed}:{level}"


def signal(row: SampleRow, scorer: ir.Scorer) -> float:
    """A sample's signal in [0, 1] under ``scorer`` (a ``confidence`` scorer's mean
    log-probability p as exp(p)); NaN when unknown."""
    from ttcdsl.runtime.aggregate import score_of

    value = score_of(row, scorer)
    if math.isnan(value):
        return value
    if scorer.kind == "confidence":
        value = math.exp(value)
    return min(1.0, max(0.0, value))


def signal_scorer(policy: ir.Policy) -> ir.Scorer | None:
    """The first scorer a solved rule reads (UCB's per-sample signal), if any."""
    by_name = {s.name: s for s in policy.scorers}
    bandit = policy.allocation
    assert isinstance(bandit, ir.Bandit)
    for condition in bandit.solved:
        if isinstance(condition, ir.Threshold):
            for node in (*_nodes(condition.left), *_nodes(condition.right)):
                if isinstance(node, ir.ScorerRef) and node.name in by_name:
                    return by_name[node.name]
    return None


def _nodes(expr: ir.Expr) -> Iterator[ir.Expr]:
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        match node:
            case ir.Apply(args=args):
                stack.extend(reversed(args))
            case ir.Arith(left=left, right=right):
                stack.extend((right, left))
            case ir.Neg(operand=operand):
                stack.append(operand)


def level_scorer(policy: ir.Policy) -> ir.Scorer | None:
    """The scorer whose best signal enters the state: the signal scorer, unless it is ``gold``
    (a query still active under a gold solved rule has only wrong samples: no level to read)."""
    scorer = signal_scorer(policy)
    return None if scorer is None or scorer.kind == "gold" else scorer


def best_signal(rows: Sequence[SampleRow], scorer: ir.Scorer) -> float:
    values = [v for v in (signal(r, scorer) for r in rows) if not math.isnan(v)]
    return max(values, default=0.0)


def level(best: float, edges: tuple[float, float]) -> str:
    return "low" if best < edges[0] else "mid" if best < edges[1] else "high"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The bandit's round structure, read from the policy the same way for the fit and the run."""

    round_samples: int
    first: int  # the first round's samples per query
    first_check: int  # the first count at which solved rules are checked
    cap: float  # samples per query at most (inf: none)


def bound(policy: ir.Policy, kind: str) -> float | None:
    """The batch-wide per-query sample bound of ``kind`` (per_query_min: the largest,
    per_query_max: the smallest), or None."""
    values = [
        limit.value for limit in policy.budget.limits
        if limit.kind == kind and limit.unit == "samples" and limit.bin is None
    ]
    if not values:
        return None
    return max(values) if kind == "per_query_min" else min(values)


def settings(policy: ir.Policy) -> Settings:
    from ttcdsl.features.stop_check import first_stop_check

    bandit = policy.allocation
    assert isinstance(bandit, ir.Bandit)
    minimum = int(bound(policy, "per_query_min") or 0)
    cap = bound(policy, "per_query_max")
    return Settings(
        round_samples=bandit.round_samples,
        first=max(int(policy.probe or 0), bandit.round_samples, minimum),
        first_check=first_stop_check(policy),
        cap=math.inf if cap is None else int(cap),
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class GainTable:
    """Per state key: (gain of one more round, P(retire after it), draws, standard error of
    the gain)."""

    states: Mapping[str, tuple[float, float, int, float]]
    orders: int
    score_edges: tuple[float, float] | None = None  # terciles of the best signal (None: no level)

    def key(self, rows: Sequence[SampleRow], scorer: ir.Scorer | None) -> str:
        """The state key of a query's samples so far."""
        if self.score_edges is None or scorer is None:
            return state_key(len(rows), agreement(rows))
        return state_key(len(rows), agreement(rows),
                         level(best_signal(rows, scorer), self.score_edges))

    def to_doc(self) -> dict:
        return {
            "orders": self.orders,
            "score_edges": None if self.score_edges is None
            else [round(e, 6) for e in self.score_edges],
            "states": {k: [round(g, 6), round(r, 6), int(c), round(e, 6)]
                       for k, (g, r, c, e) in self.states.items()},
        }

    @classmethod
    def from_doc(cls, doc: Mapping) -> GainTable:
        """The table of a plan's ``bandit.gain``; a malformed one (a plan edited by hand) is
        the user's mistake, said as such."""
        from ttcdsl.errors import UserError

        try:
            edges = doc.get("score_edges")
            table = cls(
                states={str(k): (float(g), float(r), int(c), float(e))
                        for k, (g, r, c, e) in doc["states"].items()},
                orders=int(doc["orders"]),
                score_edges=None if edges is None else (float(edges[0]), float(edges[1])),
            )
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as error:
            raise UserError(
                f"the plan's bandit.gain table is malformed ({type(error).__name__}: {error})",
                hint="the plan was edited by hand; re-plan with ttc plan",
            ) from None
        if not all(math.isfinite(v) for g, r, _, e in table.states.values() for v in (g, r, e)):
            raise UserError("the plan's bandit.gain table holds a value that is not finite",
                            hint="the plan was edited by hand; re-plan with ttc plan")
        return table


def objective_metric(policy: ir.Policy) -> Callable[[Sequence[SampleRow]], float]:
    """The policy's objective for one query's samples: covered (coverage) or the answer rule's
    correctness (accuracy); 0 where unknown."""
    from ttcdsl.runtime.aggregate import aggregate

    if policy.objective == "coverage":
        return lambda rows: 1.0 if any(r.correct for r in rows) else 0.0
    strategy = policy.bins[0].strategy

    def correct(rows: Sequence[SampleRow]) -> float:
        outcome = aggregate(strategy, rows, scorers=policy.scorers, probe=policy.probe,
                            labelled=True)
        return 1.0 if outcome.correct else 0.0

    return correct


def solved_mask(policy: ir.Policy, rows: Sequence[Sequence[SampleRow]]) -> np.ndarray:
    """Whether any of the bandit's solved rules holds on each query's ``rows`` (the runtime's
    check and the fit's, one rule)."""
    from ttcdsl.features import holds
    from ttcdsl.runtime.executor import sample_batch

    bandit = policy.allocation
    assert isinstance(bandit, ir.Bandit)
    batch = sample_batch(policy, rows)
    features = {f.name: f.expr for f in policy.features}
    hit = np.zeros(len(rows), dtype=bool)
    for condition in bandit.solved:
        hit |= holds(condition, batch, features)
    return hit


def fit(
    policy: ir.Policy,
    rows_by_query: Mapping[str, Sequence[SampleRow]],
    *,
    seed: int = 0,
    orders: int = ORDERS,
) -> GainTable:
    """The gain table of ``policy`` on the calibration samples (module docstring)."""
    s = settings(policy)

    def solved(rows: list[Sequence[SampleRow]]) -> np.ndarray:
        return solved_mask(policy, rows)

    metric = objective_metric(policy)
    rng = np.random.default_rng(seed)
    sequences = [
        [rows_by_query[q][i] for i in rng.permutation(len(rows_by_query[q]))]
        for _ in range(orders) for q in sorted(rows_by_query)
    ]
    scorer = level_scorer(policy)
    draws: list[tuple[int, str, float, float, float]] = []  # n, agreement, best, gain, retire
    n = s.first
    active = [seq for seq in sequences if len(seq) >= n]
    while active and n < s.cap:
        if n >= s.first_check:
            hit = solved([seq[:n] for seq in active])
            active = [seq for seq, h in zip(active, hit.tolist()) if not h]
        step = int(min(s.round_samples, s.cap - n))
        active = [seq for seq in active if len(seq) >= n + step]  # the round must be logged
        if not active:
            break
        after = [seq[: n + step] for seq in active]
        retire = (
            solved(after) if n + step >= s.first_check else np.zeros(len(after), dtype=bool)
        ) | (n + step >= s.cap)
        for seq, longer, gone in zip(active, after, retire.tolist()):
            now = seq[:n]
            best = 0.0 if scorer is None else best_signal(now, scorer)
            draws.append((n, agreement(now), best, metric(longer) - metric(now), float(gone)))
        n += step
    edges = None
    if scorer is not None and draws:
        low, high = np.quantile([d[2] for d in draws], [1 / 3, 2 / 3]).tolist()
        edges = (float(low), float(high))
    sums: dict[str, list[float]] = {}  # key -> [gain sum, retire sum, draws, gain^2 sum]
    by_count: dict[int, list[float]] = {}
    for count, agreed, best, gain, gone in draws:
        key = state_key(count, agreed, None if edges is None else level(best, edges))
        for acc in (sums.setdefault(key, [0.0, 0.0, 0, 0.0]),
                    by_count.setdefault(count, [0.0, 0.0, 0, 0.0])):
            acc[0] += gain
            acc[1] += gone
            acc[2] += 1
            acc[3] += gain * gain
    states = {state_key(count, ANY): _estimate(g, r, c, g2, None)
              for count, (g, r, c, g2) in by_count.items()}
    for key, (g, r, c, g2) in sums.items():
        states[key] = _estimate(g, r, c, g2, by_count[int(key.split(":")[0])])
    return GainTable(states=dict(sorted(states.items())), orders=orders, score_edges=edges)


def _estimate(g: float, r: float, c: int, g2: float, prior: list[float] | None):
    """(gain, retire, draws, standard error) from sums over ``c`` draws, shrunk toward the
    count's mean (``prior``: its sums) with PSEUDO pseudo-draws."""
    if prior is None:
        mean_g, mean_r, weight = g / c, r / c, float(c)
        second = g2 / c
    else:
        pg, pr, pc, pg2 = prior
        weight = c + PSEUDO
        mean_g = (g + PSEUDO * pg / pc) / weight
        mean_r = (r + PSEUDO * pr / pc) / weight
        second = (g2 + PSEUDO * pg2 / pc) / weight
    variance = max(0.0, second - mean_g * mean_g)
    return (mean_g, mean_r, int(c), math.sqrt(variance / weight))


def skipped(
    table: GainTable,
    s: Settings,
    scorer: ir.Scorer | None,
    active: Sequence[tuple[str, Sequence[SampleRow], float]],
    room: int | None,
) -> set[str]:
    """The active queries (id, samples, tie rank) past their first round that this round skips,
    given ``room`` samples left for them (None: unbounded) and the policy's signal scorer
    (module docstring)."""
    if room is None or not active:
        return set()
    rounds: list[tuple[float, float, int, str]] = []  # (-value per sample, rank, cost, id)
    now: dict[str, float] = {}
    for qid, rows, rank in active:
        projected, next_value = outlook(table, s, table.key(rows, scorer), len(rows))
        if next_value is not None:
            now[qid] = next_value
        rounds.extend((-value, rank, cost, qid) for value, cost in projected)
    rounds.sort()
    spent, tau = 0, None
    for negative, _, cost, _ in rounds:
        if spent + cost > room:
            break
        spent += cost
        tau = -negative
    if tau is None or spent == sum(cost for _, _, cost, _ in rounds):
        return set()
    return {qid for qid, value in now.items() if value < tau}


def outlook(table: GainTable, s: Settings, key: str, n: int) -> tuple[list[tuple[float, int]], float | None]:
    """A query's projected rounds (value per sample, samples; ironed) in state ``key`` at ``n``
    samples, and the value its next round is judged by (None: no projection, never skipped).
    The runtime's :func:`skipped` and the simulator's tables (``ttcdsl.simulate_bandit``) both
    read it."""
    projected = _ironed(_projection(table, s, key, n))
    if not projected:
        return projected, None
    # skip only when even the upper end of the 95% interval of this round's gain is worth less
    # than what the budget buys elsewhere
    gain, _, _, error = table.states[key]
    upper = (gain + Z95 * error) / min(s.round_samples, s.cap - n)
    return projected, max(projected[0][0], upper)


def fit_table(
    policy: ir.Policy, table, score_columns: Mapping[str, str] | None = None, *, seed: int = 0
) -> GainTable:
    """:func:`fit` on a calibration SamplesTable, each mapped scorer read from its column
    (``score_columns``: scorer -> column), as the replay backend serves it."""
    mapped = dict(score_columns or {})
    by_query: dict[str, list[SampleRow]] = {}
    for row in table.rows():
        if mapped:
            scores = dict(row.scores)
            for name, column in mapped.items():
                if column in row.scores:
                    scores[name] = row.scores[column]
            row = dataclasses.replace(row, scores=scores)
        by_query.setdefault(row.query_id, []).append(row)
    for rows in by_query.values():
        rows.sort(key=lambda r: r.sample_index)
    refuse_contest_without_repeats(policy, by_query)
    return fit(policy, by_query, seed=seed)


def refuse_contest_without_repeats(
    policy: ir.Policy, rows_by_query: Mapping[str, Sequence[SampleRow]]
) -> None:
    """Refuse (TTC611) ``explore gap`` or ``explore entropy`` on calibration data where no query
    ever gives the same answer twice: every query's answers are then equally contested (entropy
    ln n, gap index 1), so the rule has no signal to rank by."""
    from ttcdsl.lang import ast
    from ttcdsl.lang.diagnostics import DiagnosticError, Diagnostics
    from ttcdsl.lang.parse import parse_source

    bandit = policy.allocation
    if not isinstance(bandit, ir.Bandit) or bandit.explore not in ("gap", "entropy"):
        return
    for rows in rows_by_query.values():
        answers = [r.answer for r in rows if r.answer is not None]
        if len(set(answers)) < len(answers):
            return  # some query repeats an answer: the contest varies
    span = None
    program = parse_source(policy.source)
    for statement in program.statements:
        if isinstance(statement, ast.AllocateDecl) and isinstance(statement.allocation, ast.Bandit):
            span = next((i.rule.span for i in statement.allocation.items
                         if isinstance(i, ast.BanditExplore)), statement.span)
    diagnostics = Diagnostics(policy.source)
    samples = sum(len(rows) for rows in rows_by_query.values())
    diagnostics.error(
        "TTC611",
        f"`explore {bandit.explore}` ranks by the contest between a query's answers, but no "
        f"calibration query repeats an answer ({len(rows_by_query)} queries, {samples} samples)",
        span,
        label="no signal in this data",
        help="every query's answers are equally split; use `explore all` or `explore ucb`, or "
        "check the answer extraction",
    )
    raise DiagnosticError(diagnostics.sorted())


def _projection(table: GainTable, s: Settings, key: str, n: int) -> list[tuple[float, int]]:
    """The query's future rounds: (value per sample, samples), the next one in the query's
    state ``key``, the later ones (whose answers are not known yet) in the mean state of an
    active query at that count, until the cap or the first count the calibration never saw."""
    alive = 1.0
    out: list[tuple[float, int]] = []
    while n < s.cap:
        entry = table.states.get(key if not out else state_key(n, ANY))
        if entry is None:
            break
        gain, retire, _, _ = entry
        step = int(min(s.round_samples, s.cap - n))
        out.append((alive * gain / step, step))
        alive *= 1.0 - retire
        n += step
    return out


def _ironed(rounds: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """``rounds`` with each run of rising values replaced by its cost-weighted mean (pool
    adjacent violators), so the values never rise: a later round can only be bought after the
    earlier ones, so the first round is worth the best mean rate of any run of rounds from now."""
    blocks: list[list[float]] = []  # [value sum (value x cost), cost, rounds]
    for value, cost in rounds:
        blocks.append([value * cost, cost, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
            total, weight, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += weight
            blocks[-1][2] += count
    out: list[tuple[float, int]] = []
    position = 0
    for total, weight, count in blocks:
        out.extend((total / weight, cost) for _, cost in rounds[position: position + int(count)])
        position += int(count)
    return out
