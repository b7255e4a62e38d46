"""The executor: runs an ``optimal`` or ``fixed`` plan round by round against a backend
(the ``bandit`` mode reuses it: :mod:`ttcdsl.runtime.bandit`).

Round 0 is the probe
    Every query asks for ``plan["probe"]`` samples (the round is skipped when the probe is 0).
    When every query has its probe (or its backend ran short), the probe's features give the
    binning key, the key gives the bin (:mod:`ttcdsl.runtime.assignment`), and the bin's
    allocation gives each query a total target (probe included). ``keep_probe`` bins spend nothing
    more. All queries are binned at once because ``normalize`` is relative to the batch.

Later rounds
    Each query still running asks for more samples, up to its target: ONE sample per round in a
    bin with stop rules (the planner simulated a check after every sample from the end of the
    probe on, ``plan["stop_check"]``), unless the policy's ``rounds <= R`` leaves fewer rounds than
    that needs, in which case the step is ``ceil(remaining / rounds left)``; everything remaining
    in one round in a bin without stop rules. Stop rules are evaluated with
    :func:`ttcdsl.features.holds` on each query's samples so far, features as expressions over the
    same samples (as the planner's :func:`~ttcdsl.features.first_stop` does), at EVERY sample count
    from :func:`~ttcdsl.features.stop_check.first_stop_check` on (``max(1, probe, per-query
    minimum)``: a stop rule never takes a query below the policy's floor) below the target, also
    inside a round that asks several samples; a query retires at its stop point, the first count
    where a rule holds. The budget ledger cuts each
    round to what its worst case can afford (:mod:`ttcdsl.runtime.ledger`); the run ends when no
    query wants more, the ledger affords nothing more, or the policy's rounds are used up. Each
    round is ONE batched ``backend.generate`` call; its samples are appended (fsynced) to
    ``samples.jsonl`` request by request as each comes back where the backend hands results over
    as they complete (``streams_results``: ``openai`` and ``vllm``), else in ONE append at the
    round's end (replay, and runs scored by a reward model, whose samples are scored as a round).

A query whose backend returns fewer samples than asked (a shortfall: a replay log ran out) is
retired with the reason; nothing is retried or invented.

Fire-and-cancel
    A round that asks several samples of a query in a stop bin gives the backend a stop test
    (:data:`~ttcdsl.runtime.backend.StopTest`, the same evaluation as above on the contiguous
    prefix of the returned samples): the backend cancels the query's samples past the stop point.
    Samples that came back before the cancel took effect were generated: they are stored, billed
    and counted (``QueryResult.past_stop``), but the answer and every decision read only the
    samples up to the stop point, so a run's answers equal a per-sample check's (the planner's
    simulation). ``QueryResult.cancelled``: samples asked in the round where the query stopped
    and not generated. A cancelled request's partial generation is not measured or billed.

Resumption
    Every decision above (bins, targets, steps, stops, the ledger's cuts) is a deterministic
    function of the samples stored so far and the run seed. So a resumed run replays the
    decisions round by round over the stored rows (each row carries its ``round``): for every
    round before the last stored one, the stored rows ARE the round's result (fewer than asked is
    a recorded shortfall, or cancelled requests where the stop point falls in the round); for the
    last stored round, only the samples missing from it are asked for (a crash may have cut the
    round's append short, or come before every request of the round was back and stored),
    unless the stop point already falls in the stored ones; then the run
    goes on. Nothing is
    generated twice and, with a deterministic backend, the answers equal an uninterrupted run's.
    Stored rows the replayed decisions did not ask for mean the samples file belongs to another
    plan, seed or dataset: the resume is refused.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ttcdsl.errors import UserError
from ttcdsl.features.stop_check import first_stop_check
from ttcdsl.lang import ir
from ttcdsl.runtime.aggregate import Outcome, aggregate
from ttcdsl.runtime.assignment import assign_bins, assign_targets, rank_key
from ttcdsl.runtime.backend import Backend, GeneratedSample, GenerationRequest, sample_seed
from ttcdsl.runtime.ledger import (
    Ask,
    PROBE_OVERRUN_HINT,
    Ledger,
    billed_tokens,
    limits_from_policy,
    probe_violations,
    token_count_unknown,
)
from ttcdsl.samples.schema import SampleRow
from ttcdsl.samples.store import SampleStore


class ResumeMismatch(UserError):
    """The stored samples are not what this plan, seed and dataset would have asked for."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSpec:
    """What to run: the policy (checked against the plan), the plan, the queries in batch order
    and their prompts, the run seed, and per-query prompt-token bounds (only read when the policy
    charges prompt tokens)."""

    policy: ir.Policy
    plan: Mapping
    query_ids: tuple[str, ...]
    prompts: Mapping[str, str]
    seed: int
    prompt_bounds: Mapping[str, int] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryResult:
    """One query's end state (a line of ``results.jsonl``).

    ``tokens`` is MEASURED (completion tokens, plus prompt tokens where the policy charges them)
    and ``None`` when any sample's count is unknown; ``billed_tokens`` is what the ledger charged
    (an unknown count billed as its worst case), ``tokens_unknown`` the samples billed so.
    ``available``: samples the backend could serve the query (replay: the logged count; ``None``
    when unbounded). ``samples`` counts every sample generated; ``past_stop`` of them came back
    past the stop point before a cancel took effect (stored and billed, not used); ``cancelled``:
    samples asked in the round where the query stopped and not generated."""

    query_id: str
    bin: str | None
    key: float | None
    target: int | None
    samples: int
    tokens: int | None
    billed_tokens: int
    tokens_unknown: int
    available: int | None
    truncated: int | None  # samples that ended at max_tokens; None: some finish reason unknown
    stopped: bool
    exhausted: str | None
    budget_cut: bool
    answer: str | None
    correct: bool | None
    covered: bool | None
    past_stop: int = 0
    cancelled: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    results: tuple[QueryResult, ...]
    budget: tuple[dict, ...]
    rounds: int
    generated: int  # samples generated by this process
    reused: int  # samples found stored (a resume)
    end: str  # why the run ended: done | budget | rounds | interrupted (a partial replay)
    provisional_bins: bool = False  # bins from incomplete probes (only in a partial replay)


class _Query:
    """Mutable per-query state inside one execution (never leaves this module)."""

    __slots__ = ("qid", "rows", "drawn_with", "bin", "target", "stopped", "exhausted", "checked",
                 "tokens", "key", "extra", "cancelled")

    def __init__(self, qid: str) -> None:
        self.qid = qid
        self.rows: list[SampleRow] = []  # the samples decisions read: up to the stop point
        self.extra: list[SampleRow] = []  # generated past the stop point (stored, billed, unused)
        # sample index -> the sampling it was requested with (rows and extra alike)
        self.drawn_with: dict[int, ir.Sampling] = {}
        self.cancelled = 0
        self.bin: int | None = None
        self.target: int | None = None
        self.stopped = False
        self.exhausted: str | None = None
        self.checked = -1
        self.tokens = 0
        self.key: float | None = None


Hook = Callable[[str, int, Sequence[SampleRow]], None]


class Executor:
    """Runs (or resumes) one ``optimal`` or ``fixed`` plan; see the module docstring. The
    ``bandit`` mode is :class:`ttcdsl.runtime.bandit.BanditExecutor`, which reuses the rounds,
    the store, the ledger and the resume logic and replaces the decisions."""

    MODES: tuple[str, ...] = ("optimal", "fixed")
    BINS_AFTER_PROBE = True  # the probe is spent before a query's bin is known

    def __init__(
        self,
        spec: RunSpec,
        backend: Backend,
        store: SampleStore,
        *,
        progress: Callable[[str], None] | None = None,
        hook: Hook | None = None,
    ) -> None:
        self.spec = spec
        self.policy = spec.policy
        self.plan = spec.plan
        self.backend = backend
        self.store = store
        self.progress = progress or (lambda message: None)
        self.hook = hook or (lambda event, round, rows: None)
        self.probe = int(self.plan.get("probe", self.policy.probe) or 0)
        # the planner chose uniform over the policy's allocation (ttcdsl.planner.choice): every
        # query gets its count, the policy's sampling and answer strategy, no stop rule
        self.uniform = self.plan.get("uniform_choice")
        if self.plan.get("mode") not in self.MODES:
            raise RuntimeError(
                f"{type(self).__name__} runs {'/'.join(self.MODES)} plans, not "
                f"{self.plan.get('mode')!r}: use ttcdsl.runtime.executors.executor_for()"
            )
        names = [b["name"] for b in self.plan["bins"]]
        if names != [b.name for b in self.policy.bins]:
            raise UserError(
                f"the plan's bins {names} are not the policy's {[b.name for b in self.policy.bins]}"
            )
        self.queries = {q: _Query(q) for q in spec.query_ids}
        self.order = list(spec.query_ids)
        self.ranks = {q: rank_key(spec.seed, q) for q in spec.query_ids}
        self.ledger = Ledger(limits_from_policy(self.policy, len(self.order)), self.order)
        self.binned = False
        self.generate = True
        self.interrupted = False
        self._started = time.monotonic()
        self._generated = 0
        self.charge_prompt = self.policy.budget.charge_prompt_tokens
        self.stop_features = {f.name: f.expr for f in self.policy.features}
        self._check_limits()

    def _check_limits(self) -> None:
        """Refuse, before anything is spent, a run that could not keep a declared limit
        (:mod:`ttcdsl.runtime.ledger`): prompt tokens charged without a bound for some query, or
        a probe whose worst case could break a bin-scoped limit."""
        if self.charge_prompt:
            lacking = [q for q in self.order if q not in self.spec.prompt_bounds]
            if lacking:
                raise UserError(
                    f"the policy charges prompt tokens, but {len(lacking)} queries have no prompt "
                    f"token bound (e.g. {lacking[0]!r}): the ledger cannot fit a round without one",
                    hint="give the backend prompt token counts (ttc import --tokenizer)",
                )
        if not self.BINS_AFTER_PROBE:
            return
        problems = probe_violations(
            self.ledger.limits, probe=self.probe, max_tokens=self.policy.sampling.max_tokens,
            prompt_bounds=self.spec.prompt_bounds if self.charge_prompt else {},
            query_ids=self.order,
        )
        if problems:
            raise UserError(
                "the run could exceed a declared limit: " + "; ".join(problems),
                hint=PROBE_OVERRUN_HINT,
            )

    # ------------------------------------------------------------------------------- run

    def run(self, *, generate: bool = True) -> RunOutcome:
        """Run to the end; with ``generate=False`` only replay the stored rounds (nothing is
        asked of the backend) and stop where the stored samples end: a partial run's state,
        with ``end`` = ``"interrupted"`` if the run would go on."""
        self.generate = generate
        stored = self._stored_by_round()
        last_stored = max(stored, default=-1)
        reused = sum(len(rows) for by_q in stored.values() for rows in by_q.values())
        generated = 0
        r = 0
        end = "done"
        rounds_cap = self.policy.budget.rounds
        while True:
            self._settle()
            if rounds_cap is not None and r >= rounds_cap:
                end = "rounds" if self._wanting() else "done"
                break
            asks = self._asks(r)
            if not asks:
                break
            if not generate and r > last_stored:
                end = "interrupted"
                break
            granted = self.ledger.fit([a for a, _ in asks])
            chosen = [(a, s, g) for (a, s), g in zip(asks, granted) if g > 0]
            if not chosen:
                end = "budget"
                break
            generated += self._round(r, chosen, stored.pop(r, {}), final=r >= last_stored)
            r += 1
        if stored:
            raise ResumeMismatch(
                f"{self.store.path}: holds samples of round {min(stored)}, which this plan, "
                "seed and dataset never reach",
                hint="the run directory belongs to another run; start a new one with --out",
            )
        self.interrupted = end == "interrupted"  # queries still running are not budget-cut
        provisional = not self.binned  # interrupted before every probe was complete
        if provisional:
            self._bin()
        return RunOutcome(
            provisional_bins=provisional,
            results=tuple(self._result(self.queries[q]) for q in self.order),
            budget=tuple(self.ledger.summary()),
            rounds=r,
            generated=generated,
            reused=reused,
            end=end,
        )

    # ------------------------------------------------------------------------ decisions

    def _wanting(self) -> bool:
        return any(self._want(q) > 0 for q in self.queries.values())

    def _want(self, q: _Query) -> int:
        if q.exhausted or q.stopped:
            return 0
        if not self.binned:
            return max(0, self.probe - len(q.rows))
        return max(0, (q.target or 0) - len(q.rows))

    def _asks(self, r: int) -> list[tuple[Ask, ir.Sampling]]:
        asks = []
        rounds_cap = self.policy.budget.rounds
        for qid in self.order:
            q = self.queries[qid]
            want = self._want(q)
            if want <= 0:
                continue
            if self.binned:
                spec = self.policy.bins[q.bin]
                sampling = spec.sampling if self.uniform is None else self.policy.sampling
                if spec.stop and self.uniform is None:
                    step = 1
                    if rounds_cap is not None:
                        step = max(1, math.ceil(want / max(1, rounds_cap - r)))
                    want = min(want, step)
                bin_name = spec.name
            else:
                sampling, bin_name = self.policy.sampling, None
            asks.append(
                (
                    Ask(
                        query_id=qid, n=want, max_tokens=sampling.max_tokens,
                        prompt_tokens=self._prompt_bound(q), bin=bin_name,
                        have=len(q.rows), rank=self.ranks[qid],
                    ),
                    sampling,
                )
            )
        return asks

    def _prompt_bound(self, q: _Query) -> int:
        """An upper bound on one sample's prompt tokens (ledger docstring): the run's bound for
        the query, never below a count already seen. Not the largest seen so far alone: a later
        sample may have a longer prompt (replay of a table logged with several prompts)."""
        if not self.charge_prompt:
            return 0
        seen = max((r.prompt_tokens for r in q.rows if r.prompt_tokens is not None), default=0)
        return max(int(self.spec.prompt_bounds[q.qid]), int(seen))

    def _settle(self) -> None:
        """Bin once every probe is complete, then check stop rules on new sample counts."""
        if not self.binned:
            if any(self._want(q) > 0 for q in self.queries.values()):
                return
            self._bin()
        self._check_stops()

    def _bin(self) -> None:
        binning = self.plan.get("binning")
        qs = [self.queries[q] for q in self.order]
        if binning is None:
            bins = np.zeros(len(qs), dtype=np.int64)
        else:
            from ttcdsl.features import evaluate_features

            batch = self._batch([q.rows[: self.probe] for q in qs])
            features = evaluate_features(self.policy, batch)
            key = np.asarray(features[binning["key"]], dtype=np.float64)
            bins = assign_bins(key, binning["edges"], len(self.policy.bins))
            for q, k in zip(qs, key.tolist()):
                q.key = None if math.isnan(k) else float(k)
        for q, b in zip(qs, bins.tolist()):
            q.bin = int(b)
        if self.uniform is not None:
            # one ranking over the batch, as the run report's uniform baseline ranks it
            targets = assign_targets(self.uniform["allocation"], self.order, self.spec.seed)
            for qid, target in targets.items():
                self.queries[qid].target = target
        for b, spec in enumerate(self.policy.bins):
            members = [q.qid for q in qs if q.bin == b]
            if not members or self.uniform is not None:
                continue
            if spec.strategy.kind == "keep_probe":
                targets = {qid: self.probe for qid in members}
            else:
                targets = assign_targets(self.plan["bins"][b]["allocation"], members, self.spec.seed)
            for qid, target in targets.items():
                self.queries[qid].target = target
        self.ledger.set_bins({q.qid: self.policy.bins[q.bin].name for q in qs})
        self.binned = True
        counts = np.bincount(bins, minlength=len(self.policy.bins)).tolist()
        self.progress(
            "bins: " + ", ".join(f"{s.name} {c}" for s, c in zip(self.policy.bins, counts))
        )

    def _stop_bin(self, q: _Query) -> int | None:
        """The bin whose stop rules ``q`` follows, or None (not binned yet, no stop rules, or the
        planner's uniform choice)."""
        if q.bin is None or self.uniform is not None or not self.policy.bins[q.bin].stop:
            return None
        return q.bin

    def _stop_points(
        self, items: Sequence[tuple[_Query, Sequence[SampleRow], int]]
    ) -> list[int | None]:
        """For each ``(q, rows, after)``: the first sample count of ``rows`` (``q``'s samples in
        index order) past ``after`` at which a stop rule of ``q``'s bin holds, or None; every
        count from the bin's first check up to (not at) the target is a check. The one rule of
        where a query stops: the executor's own check after a round and the backends' stop
        tests both come here. One evaluation per bin over every prefix to check."""
        from ttcdsl.features import holds

        points: list[int | None] = [None] * len(items)
        for b, spec in enumerate(self.policy.bins):
            prefixes, owners, counts = [], [], []
            for i, (q, rows, after) in enumerate(items):
                if self._stop_bin(q) != b:
                    continue
                low = max(first_stop_check(self.policy, spec.name), after + 1)
                for c in range(low, min(len(rows), (q.target or 0) - 1) + 1):
                    prefixes.append(rows[:c])
                    owners.append(i)
                    counts.append(c)
            if not prefixes:
                continue
            batch = self._batch(prefixes)
            hit = np.zeros(len(prefixes), dtype=bool)
            for rule in spec.stop:
                hit |= holds(rule.condition, batch, self.stop_features)
            for i, c, h in zip(owners, counts, hit.tolist()):
                if h and points[i] is None:  # counts come in increasing order per query
                    points[i] = c
        return points

    def _check_stops(self) -> None:
        """Retire each query at its stop point; samples past it move aside (``extra``)."""
        due = [
            q for q in (self.queries[x] for x in self.order)
            if not q.stopped and not q.exhausted and self._stop_bin(q) is not None
        ]
        points = self._stop_points([(q, q.rows, q.checked) for q in due])
        for q, point in zip(due, points):
            q.checked = max(q.checked, min(len(q.rows), (q.target or 0) - 1))
            if point is not None:
                q.stopped = True
                q.extra[:0] = q.rows[point:]
                del q.rows[point:]
            elif q.extra:
                # rows past a gap are only ever samples that came back after a stop
                raise ResumeMismatch(
                    f"{self.store.path}: query {q.qid!r} holds samples "
                    f"{[r.sample_index for r in q.extra]} past a gap in its numbering, but its "
                    "stop rule does not hold before the gap",
                    hint="the run directory belongs to another plan, seed or dataset",
                )

    def _stop_test(self, q: _Query, base: list[SampleRow], sampling: ir.Sampling, r: int, n: int):
        """The backend's stop test for a request of ``n`` samples of ``q`` in round ``r`` that
        follow ``base`` (its samples so far, none of which stops it), or None where nothing
        could be cancelled."""
        if n < 2 or self._stop_bin(q) is None:
            return None
        tested = [len(base)]  # counts up to this one are known not to stop

        def test(samples: Sequence[GeneratedSample]) -> bool:
            rows = base + [s.to_row(q.qid, round=r, temperature=sampling.temperature)
                           for s in samples]
            if len(rows) <= tested[0]:
                return False
            (point,) = self._stop_points([(q, rows, max(q.checked, tested[0]))])
            tested[0] = len(rows)
            return point is not None

        return test

    def _batch(self, rows: Sequence[Sequence[SampleRow]]):
        """The samples of several queries as a SampleBatch with every scorer resolved."""
        return sample_batch(self.policy, rows)

    # ---------------------------------------------------------------------------- rounds

    def _round(
        self,
        r: int,
        chosen: list[tuple[Ask, ir.Sampling, int]],
        stored: dict[str, list[SampleRow]],
        *,
        final: bool,
    ) -> int:
        """Run (or re-read) round ``r``; returns how many samples were generated."""
        requests: list[GenerationRequest] = []
        meta: list[tuple[_Query, ir.Sampling, int]] = []
        stops = []
        got: dict[str, list[SampleRow]] = {}
        short: dict[str, str] = {}  # fewer samples than asked, and why (unless the query stops)
        for ask, sampling, n in chosen:
            q = self.queries[ask.query_id]
            first = len(q.rows)
            have = stored.pop(q.qid, [])
            indices = [row.sample_index for row in have]
            # increasing, inside the asked range; a gap only past a stop point (_check_stops)
            if indices != sorted(set(indices)) or any(not first <= i < first + n for i in indices):
                raise ResumeMismatch(
                    f"{self.store.path}: round {r} of query {q.qid!r} holds samples {indices}, "
                    f"but this run asks for {n} from index {first}",
                    hint="the run directory belongs to another plan, seed or dataset",
                )
            got[q.qid] = list(have)
            missing = n - len(have)
            if not final:
                if missing:
                    short[q.qid] = "the backend returned fewer samples than asked (recorded)"
                continue
            contiguous = _contiguous(have, first)
            # the stop point already falls in the stored samples: the rest were cancelled
            done = contiguous < len(have) or self._stop_points(
                [(q, q.rows + have, q.checked)])[0] is not None
            if missing and not done and self.generate:
                request = GenerationRequest.from_sampling(
                    sampling, query_id=q.qid, n=missing, first_sample_index=first + len(have),
                    prompt=self.spec.prompts.get(q.qid, ""),
                )
                requests.append(dataclasses.replace(request, seed=self.spec.seed))
                meta.append((q, sampling, n))
                stops.append(self._stop_test(q, q.rows + have, sampling, r, missing))
        if stored:
            qid = sorted(stored)[0]
            raise ResumeMismatch(
                f"{self.store.path}: round {r} holds samples of query {qid!r}, which this run "
                "does not ask for in that round",
                hint="the run directory belongs to another plan, seed or dataset",
            )
        new_rows: list[SampleRow] = []
        cancelled = 0
        if requests:
            stored_rows: dict[int, list[SampleRow]] = {}  # request -> its rows, once stored

            def rows_of(k: int, result) -> list[SampleRow]:
                request, (q, sampling, _), test = requests[k], meta[k], stops[k]
                indices = [s.sample_index for s in result.samples]
                asked = request.sample_indices
                # a gap only where a stop test may have cancelled (_check_stops checks that the
                # stop point falls before it)
                if (
                    indices != sorted(set(indices)) or any(i not in asked for i in indices)
                    or (indices != list(asked)[: len(indices)] and test is None)
                ):
                    raise RuntimeError(f"backend {self.backend.name!r} misnumbered samples")
                return [
                    dataclasses.replace(
                        s.to_row(q.qid, round=r, temperature=sampling.temperature),
                        seed=sample_seed(self.spec.seed, q.qid, s.sample_index),
                    )
                    for s in result.samples
                ]

            def store(rows: list[SampleRow]) -> None:
                self.hook("append", r, rows)
                self.store.append(rows)
                self.hook("appended", r, rows)

            def arrived(i: int, result) -> None:
                # A request's samples are stored as soon as it is complete, so a kill later in
                # the round loses none of them: the resume asks only for what each query of its
                # last stored round lacks. Whole requests only: a query's stored samples of a
                # round must be a prefix, or what its stop test left (a gap reads as a stop).
                rows = rows_of(i, result)
                stored_rows[i] = rows
                if rows:
                    store(rows)

            streams = {"on_result": arrived} if getattr(
                self.backend, "streams_results", False) else {}
            if any(stop is not None for stop in stops):
                results = self.backend.generate(requests, stops, **streams)
            else:  # a backend that never cancels may not take stop tests
                results = self.backend.generate(requests, **streams)
            if len(results) != len(requests):
                raise RuntimeError(
                    f"backend {self.backend.name!r} returned {len(results)} results "
                    f"for {len(requests)} requests"
                )
            late: list[SampleRow] = []  # a backend that hands over results only at the end
            for i, (result, (q, _, _)) in enumerate(zip(results, meta)):
                rows = stored_rows.get(i)
                if rows is None:
                    rows = rows_of(i, result)
                    late.extend(rows)
                got[q.qid].extend(rows)
                new_rows.extend(rows)
                cancelled += result.cancelled
                if result.shortfall:
                    short[q.qid] = result.reason or "the backend ran short"
            if late or not stored_rows:
                store(late)
        for ask, sampling, _ in chosen:
            q = self.queries[ask.query_id]
            rows = got[q.qid]
            contiguous = _contiguous(rows, len(q.rows))
            for i, row in enumerate(rows):
                # every generated sample is billed; those past a gap are past the stop point
                (q.rows if i < contiguous else q.extra).append(row)
                q.drawn_with[row.sample_index] = sampling
                tokens = billed_tokens(
                    row.completion_tokens, row.prompt_tokens, max_tokens=sampling.max_tokens,
                    charge_prompt=self.charge_prompt, prompt_bound=ask.prompt_tokens,
                )
                q.tokens += tokens
                unknown = token_count_unknown(
                    row.completion_tokens, row.prompt_tokens, charge_prompt=self.charge_prompt
                )
                self.ledger.charge(q.qid, 1, tokens, bounded=int(unknown))
        self._stops_after_round()
        for ask, _, n in chosen:
            q = self.queries[ask.query_id]
            if q.stopped:  # it stopped inside this round: what it asked and never got
                q.cancelled = n - len(got[q.qid])
            elif q.qid in short:
                q.exhausted = short[q.qid]
        self._report_round(r, chosen, len(new_rows), cancelled)
        return len(new_rows)

    def _stops_after_round(self) -> None:
        """Find the stop points that fall inside the round just read (so that the samples a
        stop cancelled are not taken for a shortfall)."""
        if self.binned:
            self._check_stops()

    def _report_round(self, r: int, chosen, generated: int, cancelled: int = 0) -> None:
        """One progress line: a bar of retired queries, the spend against the sample budget,
        and an ETA from this process's generation rate and the samples still wanted."""
        self._generated += generated
        retired = sum(1 for q in self.queries.values() if self.binned and self._want(q) == 0)
        total = len(self.order)
        filled = round(20 * retired / total) if total else 20
        spent = self.ledger.spent("samples")
        room = self.ledger.room("samples")
        cap = "" if room is None else f" of {spent + room:g}"
        remaining = self._remaining()
        elapsed = time.monotonic() - self._started
        if remaining == 0:
            # nothing more will be generated: because every query is served, or because the
            # budget is spent while queries still want samples (the report says "ended: budget")
            eta = "budget spent" if self._wanting() else "done"
        elif remaining is None or not self._generated or elapsed <= 0:
            eta = "ETA ?"
        else:
            eta = f"ETA ~{_duration(remaining * elapsed / self._generated)}"
        self.progress(
            f"round {r}: [{'#' * filled}{'.' * (20 - filled)}] retired {retired}/{total}; "
            f"{sum(g for _, _, g in chosen)} samples for {len(chosen)} queries ({generated} "
            f"generated{f', {cancelled} cancelled at a stop' if cancelled else ''}); spent {spent}{cap} samples, {self.ledger.spent('tokens')} tokens billed; {eta}"
        )

    def _remaining(self) -> int | None:
        """Samples the run may still generate (an upper bound), or None when unknown (probes
        still running, so no targets yet)."""
        if not self.binned:
            return None
        wanted = sum(max(0, (q.target or 0) - len(q.rows)) for q in self.queries.values()
                     if not q.stopped and not q.exhausted)
        room = self.ledger.room("samples")
        return wanted if room is None else int(min(wanted, room))

    def _stored_by_round(self) -> dict[int, dict[str, list[SampleRow]]]:
        out: dict[int, dict[str, list[SampleRow]]] = {}
        known = set(self.order)
        for row in self.store.load().rows():
            if row.query_id not in known:
                raise ResumeMismatch(
                    f"{self.store.path}: holds samples of query {row.query_id!r}, which is not "
                    "in the dataset",
                    hint="the run directory belongs to another dataset",
                )
            out.setdefault(row.round, {}).setdefault(row.query_id, []).append(row)
        for by_q in out.values():
            for rows in by_q.values():
                rows.sort(key=lambda row: row.sample_index)
        return out

    def rows_drawn_with(self, sampling: ir.Sampling) -> dict[str, list[SampleRow]]:
        """Each query's samples so far that were requested with exactly ``sampling`` (the seed
        aside: every request carries the run seed). A sample is a function of its parameters,
        the run seed, the query and its index, so another request with those parameters and that
        seed gets the same sample (the live uniform baseline reuses them:
        :mod:`ttcdsl.runtime.reuse`)."""
        wanted = dataclasses.replace(sampling, seed=None)
        return {
            q.qid: sorted(
                (row for row in q.rows + q.extra
                 if dataclasses.replace(q.drawn_with[row.sample_index], seed=None) == wanted),
                key=lambda row: row.sample_index,
            )
            for q in (self.queries[x] for x in self.order)
        }

    # --------------------------------------------------------------------------- results

    def _result(self, q: _Query) -> QueryResult:
        if q.bin is None:
            raise RuntimeError("a query was never binned")
        strategy = self.policy.bins[q.bin].strategy
        if self.uniform is not None:
            strategy = ir.Strategy(kind=self.uniform["strategy"], scorer=self.uniform["scorer"])
        outcome: Outcome = aggregate(
            strategy, q.rows, scorers=self.policy.scorers, probe=self.probe,
            labelled=self.backend.capabilities.labelled,
        )
        generated = q.rows + q.extra  # what was spent; the answer reads q.rows only
        unknown = [
            token_count_unknown(r.completion_tokens, r.prompt_tokens, charge_prompt=self.charge_prompt)
            for r in generated
        ]
        measured = None if any(unknown) else sum(
            (r.completion_tokens or 0) + ((r.prompt_tokens or 0) if self.charge_prompt else 0)
            for r in generated
        )
        logged = getattr(self.backend, "logged", None)
        # A query the backend gave no sample at all (it failed, or a replay table holds none)
        # has no outcome to score: unknown, not wrong. Counted as wrong, a dead server read
        # as "accuracy 0". A query the policy or the budget left without samples stays wrong;
        # one an interrupted run had not reached yet is unknown too (a run killed before its
        # first sample was stored reported "accuracy 0 over 1500 of 1500 queries").
        unserved = not generated and (q.exhausted is not None or self.interrupted)
        return QueryResult(
            query_id=q.qid,
            bin=self.policy.bins[q.bin].name,
            key=q.key,
            target=q.target,
            samples=len(generated),
            tokens=measured,
            billed_tokens=q.tokens,
            tokens_unknown=sum(unknown),
            available=None if logged is None else int(logged(q.qid)),
            truncated=None if any(r.finish_reason is None for r in generated)
            else sum(1 for r in generated if r.finish_reason == "length"),
            stopped=q.stopped,
            exhausted=q.exhausted,
            budget_cut=not self.interrupted and not q.stopped and not q.exhausted
            and len(q.rows) < (q.target or 0),
            answer=outcome.answer,
            correct=None if unserved else outcome.correct,
            covered=None if unserved else outcome.covered,
            past_stop=len(q.extra),
            cancelled=q.cancelled,
        )


def _contiguous(rows: Sequence[SampleRow], first: int) -> int:
    """How many of ``rows`` (in index order) are numbered ``first, first + 1, ...`` without a
    gap."""
    k = 0
    while k < len(rows) and rows[k].sample_index == first + k:
        k += 1
    return k


def sample_batch(policy: ir.Policy, rows: Sequence[Sequence[SampleRow]]):
    """The samples of several queries as a SampleBatch with every scorer of ``policy`` resolved
    (the input of stop and solved rules)."""
    from ttcdsl.features import SampleBatch, resolve_scorers

    reward = [s.name for s in policy.scorers if s.kind == "reward_model"]
    batch = SampleBatch.from_lists(
        [[r.answer for r in rs] for rs in rows],
        tokens=[[r.completion_tokens for r in rs] for rs in rows],
        logprob=[[r.mean_logprob for r in rs] for rs in rows],
        correct=[[None if r.correct is None else float(r.correct) for r in rs] for rs in rows],
        scores={n: [[r.scores.get(n) for r in rs] for rs in rows] for n in reward},
        prompt_nll=[prompt_nll(rs) for rs in rows],
    )
    return resolve_scorers(batch, policy.scorers)


def prompt_nll(rows: Sequence[SampleRow]) -> float | None:
    """A query's prompt NLL: the mean over its samples that carry one (every sample shares the
    prompt, so in practice they agree; the planner takes the same mean,
    :func:`ttcdsl.planner.calibration.per_query_mean`). None when no sample carries one."""
    known = [r.prompt_nll for r in rows if r.prompt_nll is not None]
    return sum(known) / len(known) if known else None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"


def print_progress(message: str) -> None:
    print(f"ttc run: {message}", file=sys.stderr, flush=True)
