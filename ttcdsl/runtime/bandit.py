"""The online bandit: elimination across queries under a global budget (Zuo & Zhu, ICLR 2026).

A ``bandit`` plan fixes no per-query counts; every round the executor decides online which
queries get more samples. Queries are the arms: pulling one generates ``round K samples`` for it.

First round
    Every query asks for ``max(probe, K, per-query minimum)`` samples.

Elimination
    After every round, a query with new samples whose count has reached
    :func:`~ttcdsl.features.stop_check.first_stop_check` (probe and per-query minimum) is
    checked against the ``solved when`` rules (:func:`ttcdsl.features.holds` on all its samples,
    the same semantics as stop rules); if any holds, it is SOLVED and retires. A query also
    retires when it reaches the per-query sample cap (``samples per query <= N``) or the backend
    runs short. The others stay active.

Exploration (which active queries the next round serves, and in which order)
    Every rule serves every active query each round, K samples each (elimination: no active
    query is starved), except the ones the learned skip below holds back. The rule decides the
    ORDER of the round, which decides who gets samples when the budget cuts a round (they go one
    at a time in that order). (Serving only the better-ranked half of the active queries, as
    these rules once did, starved queries that one more sample would have solved: on CRUXEval
    with a gold scorer every ranked rule fell below plain elimination, and the entropy rule below
    uniform on the built-in workload.) Ranks come from an index per query, computed on its
    samples so far (higher is served first):

    ``all``      no index: the seeded rank of the query id.
    ``ucb``      the UCB1 index ``mean(signal) + sqrt(2 ln N / n)``, N the samples of all queries
                 so far and n the query's. A sample's signal is its score in [0, 1] under the
                 first scorer a solved rule reads (``score(prm)``; a ``confidence`` scorer's
                 mean log-probability p enters as exp(p)), else 1 if its answer is the query's
                 current leading answer (so the mean is the top share). Queries that look
                 solvable, and those sampled least, come first.
    ``gap``      ``1 - (v1 - v2) / n`` with v1 >= v2 the votes of the two leading answers: the
                 most contested votes first, where one more round is most likely to change the
                 majority answer.
    ``entropy``  the entropy (nats) of the query's answer distribution: the most uncertain first.

    ``gap`` and ``entropy`` read the answers' contest; under a solved rule that retires a query
    at its first correct sample (a gold scorer's ``score``, ``max(correct)``) every active
    query's answers are all wrong and the contest says nothing, so ``ttc check`` refuses them
    there (TTC610, :mod:`ttcdsl.lang.checks.allocation`); ``ttc plan`` and ``ttc compare``
    refuse them on calibration data where no query repeats an answer (TTC611,
    :func:`ttcdsl.runtime.bandit_gain.refuse_contest_without_repeats`).

Learned skip (plans made on calibration data: ``ttc plan``, ``ttc compare``)
    The plan's ``bandit.gain`` table (:mod:`ttcdsl.runtime.bandit_gain`) estimates, per state
    (sample count; whether the answers so far are unanimous, a majority or split; and, when a
    solved rule reads a scorer other than gold, the tercile of the best signal so far), what
    one more round adds to the objective for a query still active in that state, and how likely
    it is to retire after it. Each round, the samples left after the queries still in their
    first round buy the most valuable projected rounds of the batch; a query whose next round is
    worth less per sample than the last round bought, even at the upper end of its gain's 95%
    interval, waits (it is served again once the rest of the batch offers less). A state the
    calibration never saw is never skipped; a plan without the table (``ttc run POLICY.ttc``)
    skips nothing.

    ``bill tokens`` ranks by value per token instead: each index is divided by the query's mean
    billed tokens per sample relative to the mean over the batch, so at equal index a long-winded
    query waits. Ties go by the seeded rank of the query id (:func:`~ttcdsl.runtime.assignment.rank_key`).

Budget
    The ledger charges and cuts rounds as in every mode (:mod:`ttcdsl.runtime.ledger`); when a
    round does not fit, samples go one at a time in the rule's order. The run ends when no query
    is active, the budget affords nothing more, or the policy's ``rounds`` are used up.

Every decision is a function of the stored samples and the run seed, so a killed bandit run
resumes exactly as a planned one does (see :mod:`ttcdsl.runtime.executor`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ttcdsl.lang import ir
from ttcdsl.runtime.bandit_gain import (
    GainTable, settings, signal, signal_scorer, skipped, solved_mask,
)
from ttcdsl.runtime.executor import Executor, QueryResult, _Query
from ttcdsl.runtime.ledger import Ask


class BanditExecutor(Executor):
    """Runs (or resumes) a ``bandit`` plan; see the module docstring."""

    MODES = ("bandit",)
    BINS_AFTER_PROBE = False  # one bin, known from the start

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        bandit = self.policy.allocation
        if not isinstance(bandit, ir.Bandit):
            raise RuntimeError("a bandit plan needs a policy with `allocate bandit`")
        self.bandit = bandit
        self.settings = settings(self.policy)
        self.round_samples = self.settings.round_samples
        self.cap = self.settings.cap
        self.first = max(self.probe, self.settings.first)
        self.first_check = self.settings.first_check  # the one rule stop checks follow
        self.signal_scorer = signal_scorer(self.policy)
        # The learned skip: present when the plan was fitted on calibration data (ttc plan,
        # ttc compare), absent in a plan-free run.
        learned = (self.plan.get("bandit") or {}).get("gain")
        self.gain = None if learned is None else GainTable.from_doc(learned)
        # One bin, `all`, known from the start: no probe decides anything here.
        for q in self.queries.values():
            q.bin = 0
        self.ledger.set_bins({q: self.policy.bins[0].name for q in self.order})
        self.binned = True

    # ------------------------------------------------------------------------ decisions

    def _want(self, q: _Query) -> int:
        if q.exhausted or q.stopped or len(q.rows) >= self.cap:
            return 0
        have = len(q.rows)
        want = self.first - have if have < self.first else self.round_samples
        return int(max(0, min(want, self.cap - have)))

    def _settle(self) -> None:
        due = [
            q for q in (self.queries[x] for x in self.order)
            if not q.stopped and not q.exhausted and q.rows
            and len(q.rows) != q.checked and len(q.rows) >= self.first_check
        ]
        if not due:
            return
        hit = solved_mask(self.policy, [q.rows for q in due])
        for q, h in zip(due, hit.tolist()):
            q.checked = len(q.rows)
            q.stopped = bool(h)

    # A bandit round of K samples is the arm pull the plan simulates: the solved rules are checked
    # after it, on all its samples (_settle), never inside it, so nothing is cancelled.
    def _stop_test(self, q, base, sampling, r, n):
        return None

    def _stops_after_round(self) -> None:
        return None

    def _asks(self, r: int) -> list[tuple[Ask, ir.Sampling]]:
        active = [self.queries[x] for x in self.order if self._want(self.queries[x]) > 0]
        if not active:
            return []
        served = self._ranked(active)
        if self.gain is not None:
            fresh = [q for q in served if len(q.rows) < self.first]
            room = self._remaining()
            if room is not None:
                room -= sum(self._want(q) for q in fresh)
            skip = skipped(
                self.gain, self.settings, self.signal_scorer,
                [(q.qid, q.rows, self.ranks[q.qid]) for q in served if len(q.rows) >= self.first],
                room,
            )
            served = [q for q in served if q.qid not in skip]
        sampling = self.policy.bins[0].sampling
        name = self.policy.bins[0].name
        return [
            (
                Ask(
                    query_id=q.qid, n=self._want(q), max_tokens=sampling.max_tokens,
                    prompt_tokens=self._prompt_bound(q), bin=name,
                    have=0, rank=position,  # a cut round follows the rule's order
                ),
                sampling,
            )
            for position, q in enumerate(served)
        ]

    def _ranked(self, active: list[_Query]) -> list[_Query]:
        """Active queries, the rule's best first; ties (and ``explore all``) by seeded rank."""
        if self.bandit.explore == "all":
            return sorted(active, key=lambda q: (self.ranks[q.qid], q.qid))
        index = self.indices(active)
        return [
            q for _, _, _, q in sorted(
                ((-value, self.ranks[q.qid], q.qid, q) for q, value in zip(active, index)),
                key=lambda item: item[:3],
            )
        ]

    def indices(self, queries: list[_Query]) -> list[float]:
        """The exploration rule's index of each query (module docstring); higher is served first."""
        rule = self.bandit.explore
        total = sum(len(q.rows) for q in self.queries.values())
        values = []
        for q in queries:
            n = len(q.rows)
            if n == 0:
                values.append(math.inf)
                continue
            votes = sorted(_votes(q).values(), reverse=True)
            if rule == "ucb":
                value = _mean_signal(q, votes, self.signal_scorer) + math.sqrt(
                    2.0 * math.log(max(total, 2)) / n
                )
            elif rule == "gap":
                v1 = votes[0] if votes else 0
                v2 = votes[1] if len(votes) > 1 else 0
                value = 1.0 - (v1 - v2) / n
            elif rule == "entropy":
                answered = sum(votes)
                value = -sum((v / answered) * math.log(v / answered) for v in votes) if answered else 0.0
            else:
                raise RuntimeError(f"unknown exploration rule {rule!r}")
            values.append(value)
        if self.bandit.bill == "tokens":
            values = self._per_token(queries, values)
        return values

    def _per_token(self, queries: list[_Query], values: list[float]) -> list[float]:
        per_sample = {q.qid: q.tokens / len(q.rows) for q in self.queries.values() if q.rows}
        if not per_sample:
            return values
        mean = sum(per_sample.values()) / len(per_sample)
        if mean <= 0:
            return values
        out = []
        for q, value in zip(queries, values):
            cost = per_sample.get(q.qid)
            out.append(value if cost is None or cost <= 0 else value / (cost / mean))
        return out

    def _remaining(self) -> int | None:
        """Samples the bandit may still generate: the sample budget's room, or every active
        query up to its cap; None when neither bounds it."""
        room = self.ledger.room("samples")
        active = [q for q in self.queries.values() if self._want(q) > 0]
        wanted = None if math.isinf(self.cap) else sum(self.cap - len(q.rows) for q in active)
        if room is None:
            return wanted
        return int(room if wanted is None else min(room, wanted))

    # --------------------------------------------------------------------------- results

    def _result(self, q: _Query) -> QueryResult:
        result = super()._result(q)
        capped = len(q.rows) >= self.cap
        return dataclasses.replace(
            result,
            target=None,
            budget_cut=not self.interrupted and not q.stopped and not q.exhausted and not capped,
        )


def _votes(q: _Query) -> dict[str, int]:
    votes: dict[str, int] = {}
    for row in q.rows:
        if row.answer is not None:
            votes[row.answer] = votes.get(row.answer, 0) + 1
    return votes


def _mean_signal(q: _Query, votes: list[int], scorer: ir.Scorer | None) -> float:
    if scorer is None:
        return (votes[0] if votes else 0) / len(q.rows)
    values = [signal(row, scorer) for row in q.rows]
    return sum(v for v in values if not math.isnan(v)) / len(q.rows)
