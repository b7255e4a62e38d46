"""The budget ledger: what a run has spent, and how much of a round it can still afford.

The one promise: NO DECLARED LIMIT IS EVER EXCEEDED. Every rule below exists to keep it; where a
run cannot keep it, it is refused before anything is spent.

What is charged
    Every sample the backend returned, probes included: one sample, its completion tokens, and its
    prompt tokens when the policy says ``charge prompt tokens`` (per sample, as the planner
    counts them). A sample whose completion tokens are unknown is charged the request's
    ``max_tokens`` (the most it can have cost): unknown never counts as free. That charge is a
    worst-case BOUND, not a measurement: the report keeps the two apart (``billed`` tokens next
    to measured ones, unknown where a count is missing).

The prompt-token bound
    A round is fitted before its samples exist, so a query's prompt tokens need an upper bound
    known in advance. It is the per-query bound the run was given (replay: the LARGEST prompt
    count the table logs for the query, over all its samples, since the samples replay serves
    may have been logged with different prompts), and never less than a count already seen. A
    live backend sends the same prompt for every sample of a query, so its bound is that prompt's
    token count, which the runtime must know before the first sample (tokenize the prompt): the
    largest count seen SO FAR is not a bound (a later sample may be longer, and the first sample
    would have none), which is how ``total tokens <= 20000`` was once overspent. A query without
    a bound cannot be charged for prompts: the executor refuses to start.

Limits
    The policy's ``mean`` limits become caps of ``value x queries`` (the run's queries, or the
    bin's once bins are known), ``total`` limits caps of ``value``; ``per_query_max`` limits cap
    each query. ``per_query_min`` is the planner's business (a floor the plan already meets); the
    ledger cannot make a backend produce samples. Bin-scoped limits apply to a query from the
    moment its bin is known (after its probe: the bin is a function of the probe), and the probe's
    spend is then charged to the bin.

Bin-scoped limits and the probe
    The probe is spent before anyone knows the bin, so it must fit the limits of EVERY bin the
    query could fall into. :func:`probe_violations` checks, before the run spends anything, that
    the probe's worst case (``probe x (max_tokens + prompt bound)`` tokens, ``probe`` samples)
    fits: each bin-scoped per-query cap and each bin-scoped mean cap (per query: a bin of ``k``
    queries has a cap of ``value x k`` and the probe spends at most ``k`` worst cases), and each
    bin-scoped total cap with the whole batch in the bin (the worst case: binning may put every
    query there). A run whose probe could break one is refused (the planner prices the probe per
    bin, so a valid plan passes). During the probe :meth:`Ledger.fit` also counts an unbinned
    query under every bin-scoped per-query cap, so the guarantee does not rest on the check alone.
    After binning, a bin's batch caps see the probe's spend, so nothing more is granted beyond
    them.

The round's worst case
    Before each round the ledger is asked to :meth:`~Ledger.fit` the round's requests: the worst
    case of a request of ``n`` samples is ``n`` samples and ``n x (max_tokens + prompt tokens)``
    tokens. If every limit can absorb the round's worst case the round runs as asked; otherwise it
    is cut by WATER-FILLING: samples are granted one at a time to the requesting query with the
    fewest samples so far (counting those granted in this round), ties by the seeded rank of the
    query id; a query whose next sample would break one of its limits is skipped for the rest of
    the round. So a cut round keeps the queries furthest behind and drops samples from those
    already furthest along, and the result is a deterministic function of the spend and the seed
    (a resumed run cuts the same way). Since what is granted always fits the worst case, and the
    actual cost of a sample never exceeds its worst case, the budget is never exceeded.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ttcdsl.lang import ir

_EPS = 1e-9
BOUND_BASIS = "worst-case bound (token counts unknown)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit:
    """One enforced limit: ``kind`` is ``batch`` (a cap on the sum over the queries it covers) or
    ``per_query`` (a cap on each covered query); ``bin`` restricts it to one bin's queries."""

    label: str
    kind: str
    unit: str
    cap: float
    bin: str | None = None
    value: float = 0.0  # the policy's number (a mean limit's cap grows with the bin's count)
    mean: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Ask:
    """A request as the ledger sees it: ``n`` samples for ``query_id`` (in ``bin``, ``None`` until
    known) costing at most ``max_tokens + prompt_tokens`` tokens each."""

    query_id: str
    n: int
    max_tokens: int
    prompt_tokens: int = 0
    bin: str | None = None
    have: int = 0  # samples the query has so far (the water-filling level)
    rank: int = 0  # tie-break: the seeded rank of the query id


def enforced_limits(policy: ir.Policy) -> tuple[ir.BudgetLimit, ...]:
    """The policy's limits the ledger enforces, in order: :func:`limits_from_policy` makes one
    :class:`Limit` of each (``per_query_min`` is the planner's, module docstring)."""
    return tuple(limit for limit in policy.budget.limits if limit.kind != "per_query_min")


def limits_from_policy(policy: ir.Policy, n_queries: int) -> tuple[Limit, ...]:
    """The policy's enforceable limits for a batch of ``n_queries``, one per
    :func:`enforced_limits` entry, in its order."""
    limits = []
    for limit in enforced_limits(policy):
        scope = "" if limit.bin is None else f" in {limit.bin}"
        if limit.kind == "mean":
            limits.append(
                Limit(
                    label=f"mean {limit.unit} per query{scope} <= {limit.value:g}",
                    kind="batch", unit=limit.unit, cap=limit.value * n_queries,
                    bin=limit.bin, value=limit.value, mean=True,
                )
            )
        elif limit.kind == "total":
            limits.append(
                Limit(
                    label=f"total {limit.unit}{scope} <= {limit.value:g}",
                    kind="batch", unit=limit.unit, cap=limit.value, bin=limit.bin,
                    value=limit.value,
                )
            )
        elif limit.kind == "per_query_max":
            limits.append(
                Limit(
                    label=f"{limit.unit} per query{scope} <= {limit.value:g}",
                    kind="per_query", unit=limit.unit, cap=limit.value, bin=limit.bin,
                    value=limit.value,
                )
            )
    return tuple(limits)


class Ledger:
    """Spend per query, checked against :class:`Limit` values (module docstring).

    Mutable by design (it is the run's running account), but every change goes through
    :meth:`charge` and :meth:`set_bins`, and :meth:`fit` does not change it.
    """

    def __init__(self, limits: Sequence[Limit], query_ids: Sequence[str]) -> None:
        self.limits = tuple(limits)
        self._samples = {q: 0 for q in query_ids}
        self._tokens = {q: 0 for q in query_ids}
        self._bins: dict[str, str] = {}
        self._bin_counts: dict[str, int] = {}
        self._bounded: dict[str, int] = {q: 0 for q in query_ids}  # samples billed a bound

    # ---------------------------------------------------------------------------- state

    def set_bins(self, bins: Mapping[str, str]) -> None:
        """Record each query's bin; bin-scoped mean caps become ``value x bin count``."""
        self._bins.update(bins)
        counts: dict[str, int] = {}
        for name in self._bins.values():
            counts[name] = counts.get(name, 0) + 1
        self._bin_counts = counts

    def charge(self, query_id: str, samples: int, tokens: int, *, bounded: int = 0) -> None:
        """Charge a query; ``bounded``: how many of these samples were billed a worst-case
        bound because their token count is unknown (the report says so)."""
        self._samples[query_id] += samples
        self._tokens[query_id] += tokens
        self._bounded[query_id] += bounded

    def spent(self, unit: str, query_id: str | None = None, bin: str | None = None) -> int:
        """Spend in ``unit``: one query's, one bin's, or the batch's."""
        table = self._samples if unit == "samples" else self._tokens
        if query_id is not None:
            return table[query_id]
        if bin is not None:
            return sum(v for q, v in table.items() if self._bins.get(q) == bin)
        return sum(table.values())

    def room(self, unit: str) -> float | None:
        """What the tightest batch-wide limit in ``unit`` still allows (``None``: no such limit)."""
        rooms = [
            self.cap(lim) - self._batch_spent(lim)
            for lim in self.limits
            if lim.kind == "batch" and lim.unit == unit and lim.bin is None
        ]
        return max(0.0, min(rooms)) if rooms else None

    def cap(self, limit: Limit) -> float:
        if limit.mean and limit.bin is not None:
            return limit.value * self._bin_counts.get(limit.bin, 0)
        return limit.cap

    def covers(self, limit: Limit, query_id: str) -> bool:
        return limit.bin is None or self._bins.get(query_id) == limit.bin

    def summary(self) -> list[dict]:
        """Each limit with its cap and spend (for the report)."""
        out = []
        for limit in self.limits:
            covered = [q for q in self._samples if self.covers(limit, q)]
            # the largest single query's spend, for a batch limit too (not the batch's total)
            largest = max((self.spent(limit.unit, query_id=q) for q in covered), default=0)
            if limit.kind == "batch":
                spent = self.spent(limit.unit, bin=limit.bin) if limit.bin else self.spent(limit.unit)
                held = spent
            else:
                spent, held = None, largest
            bounded = limit.unit == "tokens" and any(
                self._bounded[q] for q in self._samples if self.covers(limit, q)
            )
            out.append(
                {"label": limit.label, "kind": limit.kind, "unit": limit.unit,
                 "cap": self.cap(limit), "spent": spent, "largest": largest,
                 "within": held <= self.cap(limit) + _EPS,
                 # billed, not measured, where any count is unknown (max_tokens charged)
                 "basis": BOUND_BASIS if bounded else "measured"}
            )
        return out

    # ---------------------------------------------------------------------------- rounds

    def fit(self, asks: Sequence[Ask]) -> list[int]:
        """How many of each ask's samples the round may take (same order), so that the round's
        worst case fits every limit (module docstring)."""
        counts = [max(0, a.n) for a in asks]
        if self._fits_whole(asks, counts):
            return counts
        batch = [lim for lim in self.limits if lim.kind == "batch"]
        room = {id(lim): self.cap(lim) - self._batch_spent(lim) for lim in batch}
        per_query = [lim for lim in self.limits if lim.kind == "per_query"]
        granted = [0] * len(asks)
        extra_samples = [0] * len(asks)
        extra_tokens = [0] * len(asks)
        heap = [(a.have, a.rank, a.query_id, i) for i, a in enumerate(asks) if a.n > 0]
        heapq.heapify(heap)
        while heap:
            level, rank, qid, i = heapq.heappop(heap)
            a = asks[i]
            cost_tokens = a.max_tokens + a.prompt_tokens
            ok = True
            for lim in batch:
                if self._covers_ask(lim, a):
                    need = 1 if lim.unit == "samples" else cost_tokens
                    if room[id(lim)] - need < -_EPS:
                        ok = False
                        break
            if ok:
                for lim in per_query:
                    if self._covers_ask(lim, a):
                        used = (
                            self._samples[qid] + extra_samples[i] + 1
                            if lim.unit == "samples"
                            else self._tokens[qid] + extra_tokens[i] + cost_tokens
                        )
                        if used - self.cap(lim) > _EPS:
                            ok = False
                            break
            if not ok:
                continue  # this query takes no more samples in this round
            granted[i] += 1
            extra_samples[i] += 1
            extra_tokens[i] += cost_tokens
            for lim in batch:
                if self._covers_ask(lim, a):
                    room[id(lim)] -= 1 if lim.unit == "samples" else cost_tokens
            if granted[i] < a.n:
                heapq.heappush(heap, (level + 1, rank, qid, i))
        return granted

    def _covers_ask(self, limit: Limit, ask: Ask) -> bool:
        if limit.bin is None or ask.bin == limit.bin:
            return True
        # a query not yet binned may end in any bin: each bin's per-query cap applies to it
        return ask.bin is None and limit.kind == "per_query"

    def _batch_spent(self, limit: Limit) -> int:
        return self.spent(limit.unit, bin=limit.bin) if limit.bin else self.spent(limit.unit)

    def _fits_whole(self, asks: Sequence[Ask], counts: Sequence[int]) -> bool:
        for lim in self.limits:
            if lim.kind == "batch":
                need = sum(
                    n if lim.unit == "samples" else n * (a.max_tokens + a.prompt_tokens)
                    for a, n in zip(asks, counts)
                    if self._covers_ask(lim, a)
                )
                if self._batch_spent(lim) + need - self.cap(lim) > _EPS:
                    return False
            else:
                for a, n in zip(asks, counts):
                    if n and self._covers_ask(lim, a):
                        used = (
                            self._samples[a.query_id] + n
                            if lim.unit == "samples"
                            else self._tokens[a.query_id] + n * (a.max_tokens + a.prompt_tokens)
                        )
                        if used - self.cap(lim) > _EPS:
                            return False
        return True


def token_count_unknown(
    completion_tokens: int | None, prompt_tokens: int | None, *, charge_prompt: bool
) -> bool:
    """Whether a sample's billed tokens are a bound rather than its measured count."""
    return completion_tokens is None or (charge_prompt and prompt_tokens is None)


def billed_tokens(
    completion_tokens: int | None, prompt_tokens: int | None, *, max_tokens: int,
    charge_prompt: bool, prompt_bound: int = 0,
) -> int:
    """Tokens one returned sample is charged (unknown completion: ``max_tokens``; unknown prompt
    when prompts are charged: the bound the round was fitted with)."""
    completion = max_tokens if completion_tokens is None else int(completion_tokens)
    if not charge_prompt:
        return completion
    return completion + (prompt_bound if prompt_tokens is None else int(prompt_tokens))



PROBE_OVERRUN_HINT = "lower the probe or max_tokens, or raise the bin's limit (and re-plan)"


def probe_violations(
    limits: Sequence[Limit], *, probe: int, max_tokens: int, prompt_bounds: Mapping[str, int],
    query_ids: Sequence[str],
) -> list[str]:
    """Bin-scoped limits the probe's worst case could break (module docstring), as sentences;
    empty when the run can guarantee them all."""
    return [sentence for _, sentence in probe_overruns(
        limits, probe=probe, max_tokens=max_tokens, prompt_bounds=prompt_bounds, query_ids=query_ids)]


def probe_overruns(
    limits: Sequence[Limit], *, probe: int, max_tokens: int, prompt_bounds: Mapping[str, int],
    query_ids: Sequence[str],
) -> list[tuple[int, str]]:
    """:func:`probe_violations` with the index in ``limits`` of each limit the probe could break
    (``ttc check --queries N`` and ``ttc plan`` point at its line)."""
    if probe <= 0 or not query_ids:
        return []
    worst = {q: probe * (max_tokens + int(prompt_bounds.get(q, 0))) for q in query_ids}
    biggest = max(worst.values())
    out = []
    for index, lim in enumerate(limits):
        if lim.bin is None:
            continue
        per_query = lim.kind == "per_query" or lim.mean
        if lim.unit == "samples":
            need = probe if per_query else probe * len(query_ids)
            what = f"{probe} probe samples" + ("" if per_query else f" x {len(query_ids)} queries")
        else:
            need = biggest if per_query else sum(worst.values())
            prompt = max(int(prompt_bounds.get(q, 0)) for q in query_ids)
            each = f"{probe} x ({max_tokens} max_tokens + {prompt} prompt tokens)"
            what = f"{need} tokens ({each}" + (")" if per_query else f" over {len(query_ids)} queries)")
        cap = lim.value
        if need - cap > _EPS:
            scope = "a query" if per_query else "the batch"
            out.append((
                index,
                f"`{lim.label}`: the probe's worst case for {scope} is {what}, over {cap:g}; the "
                f"bin is known only after the probe, so the run cannot guarantee the limit",
            ))
    return out
