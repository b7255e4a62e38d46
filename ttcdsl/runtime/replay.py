"""The replay backend: serve logged samples as if they were being generated now.

Replay lets a policy run end to end without a GPU: the planner's curves assume each query's logged
samples are drawn uniformly without replacement, and replay draws them exactly so. Each query's
logged samples are put in a random order that is a pure function of ``(seed, query id)``; the
sample numbered ``k`` in the run is the ``k``-th of that order. So:

* a sample is never served twice for a query (distinct run indices are distinct logged samples);
* the ``k``-th sample is the same whatever the round structure (3 then 2 more = 5 at once), and a
  resumed run continues the same order;
* averaged over seeds, the first ``n`` samples are a uniform draw of ``n`` of the ``m`` logged ones,
  which is what :mod:`ttcdsl.curves.exact` computes its expectations over.

The order sorts a query's logged samples by a SHA-256 of ``(seed, query id, logged index)``: no
dependence on numpy's generator streams (which may change between versions), and adding samples to
a log keeps the relative order of the ones already there.

A request beyond the logged samples gets what is left and a shortfall with its reason; an unknown
query gets a shortfall too. Nothing is invented. A request with a stop test is served one sample
at a time and ends where the test holds: replay cancels exactly. A logged sample longer than the
request's ``max_tokens`` is served the way such a generation would have ended: cut at ``max_tokens`` with
finish reason ``length``, so without its text, answer, logprob and scores (they belong to the full
sample), and wrong where the log is labelled.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from ttcdsl.samples.truncation import is_cut

from ttcdsl.runtime.backend import (
    BackendCapabilities,
    BackendError,
    GeneratedSample,
    GenerationRequest,
    GenerationResult,
    StopTest,
)
from ttcdsl.samples.schema import SamplesTable

_ORDER_DOMAIN = "ttcdsl.replay.order.v1"


def prompt_bounds(table: SamplesTable) -> dict[str, int]:
    """Each query's prompt-token bound for the ledger of a replay of ``table``: the largest
    prompt token count its samples logged. A query whose samples logged none is absent (a
    policy that charges prompt tokens cannot run it: the executor refuses by name)."""
    counts = np.ma.MaskedArray(table.prompt_tokens)
    bounds = {}
    for qid, rows in table.by_query().items():
        known = counts[rows].compressed()
        if len(known):
            bounds[qid] = int(known.max())
    return bounds


def replay_order(seed: int, query_id: str, logged_indices: Sequence[int]) -> list[int]:
    """Positions into ``logged_indices`` in serving order for ``(seed, query_id)``.

    Each logged sample is ranked by the first 64 bits of a SHA-256 of the JSON list
    ``[domain, seed, query id]`` (self-delimiting), a newline and its logged index; ties
    (astronomically rare) fall back to the logged index, so the order is always total.
    """
    prefix = hashlib.sha256(json.dumps([_ORDER_DOMAIN, seed, query_id]).encode("utf-8") + b"\n")
    keys = []
    for position, logged in enumerate(logged_indices):
        h = prefix.copy()
        h.update(str(int(logged)).encode("ascii"))
        keys.append((int.from_bytes(h.digest()[:8], "big"), int(logged), position))
    keys.sort()
    return [position for _, _, position in keys]


class ReplayBackend:
    """Serves each query's logged samples of ``table`` in the seeded order (module docstring)."""

    def __init__(
        self,
        table: SamplesTable,
        *,
        seed: int,
        name: str = "replay",
        score_columns: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self._table = table
        self._seed = seed
        self._name = name
        self._rows: Mapping[str, np.ndarray] = table.by_query()
        self._orders: dict[str, np.ndarray] = {}
        self._columns = _python_columns(table)
        self._scores = _score_rows(table, score_columns or {})
        self._closed = False

        def known(column: np.ma.MaskedArray) -> bool:
            return bool(len(column)) and not bool(np.ma.getmaskarray(column).all())

        self._capabilities = BackendCapabilities(
            logprobs=known(table.mean_logprob),
            prompt_tokens=known(table.prompt_tokens),
            deterministic=True,
            max_batch=None,
            labelled=known(table.correct),
            answers=True,
        )

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        seed: int,
        name: str = "replay",
        score_columns: Mapping[str, str] | None = None,
    ) -> ReplayBackend:
        """Replay the samples table at ``path`` (``.jsonl`` or ``.parquet``). The loaders' own
        errors (missing or malformed file) pass through; a log with no samples is refused."""
        from ttcdsl.samples import load

        table = load(path)
        if not len(table):
            raise BackendError(
                f"{path}: the samples table has no samples to replay",
                hint="replay needs a table of logged samples (ttc import ..., or a finished run)",
            )
        return cls(table, seed=seed, name=name, score_columns=score_columns)

    # ----------------------------------------------------------------------------- protocol

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str | None:
        return self._table.meta.model

    @property
    def capabilities(self) -> BackendCapabilities:
        return self._capabilities

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def table(self) -> SamplesTable:
        return self._table

    def logged(self, query_id: str) -> int:
        """How many samples of ``query_id`` the log holds (0 for an unknown query)."""
        rows = self._rows.get(query_id)
        return 0 if rows is None else len(rows)

    def order(self, query_id: str) -> np.ndarray:
        """Row indices of ``query_id``'s logged samples in serving order (empty if unknown)."""
        cached = self._orders.get(query_id)
        if cached is None:
            rows = self._rows.get(query_id, np.zeros(0, dtype=np.int64))
            logged = self._table.sample_index[rows]
            cached = rows[replay_order(self._seed, query_id, logged.tolist())]
            cached.flags.writeable = False
            self._orders[query_id] = cached
        return cached

    def contradictions(self, rows: Iterable[Any], limit: int = 3) -> tuple[int, list[str]]:
        """Stored samples of a replay of this table that are not what it served: how many, and
        the first ``limit`` described. Replay serves a query's samples in order, each the logged
        sample at its position of the serving order, cut (no answer, wrong where labelled) where
        longer than the request's ``max_tokens``; so a stored sample whose answer or label is
        not its logged one's, or a query whose stored indices skip one, was edited after the
        run stored it (a crash only tears the last line)."""
        c = self._columns
        count, shown = 0, []

        def found(what: str) -> None:
            nonlocal count
            count += 1
            if len(shown) < limit:
                shown.append(what)

        held: dict[str, set[int]] = {}
        for row in rows:
            held.setdefault(row.query_id, set()).add(row.sample_index)
            order = self.order(row.query_id)
            where = f"query {row.query_id!r} sample {row.sample_index}"
            if row.sample_index >= len(order):
                found(f"{where}: the table logs only {len(order)} samples of it")
                continue
            logged = int(order[row.sample_index])
            cut = row.finish_reason == "length" and row.answer is None
            if row.answer != c["answer"][logged] and not cut:
                found(f"{where}: answer {row.answer!r}, the table's is {c['answer'][logged]!r}")
            elif row.correct != c["correct"][logged] and not (cut and row.correct in (False, None)):
                found(f"{where}: labelled {row.correct}, the table's label is {c['correct'][logged]}")
        for qid, indices in held.items():
            if len(indices) != max(indices) + 1:
                gap = min(set(range(max(indices) + 1)) - indices)
                found(f"query {qid!r}: sample {gap} is missing while later ones are stored")
        return count, shown

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        stops: Sequence[StopTest | None] | None = None,
    ) -> list[GenerationResult]:
        if self._closed:
            raise BackendError(f"backend {self._name!r} is closed")
        stops = stops or [None] * len(requests)
        if len(stops) != len(requests):
            raise ValueError(f"{len(stops)} stop tests for {len(requests)} requests")
        return [self._serve(request, test) for request, test in zip(requests, stops)]

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return (
            f"ReplayBackend({len(self._rows)} queries, {len(self._table)} samples, "
            f"seed={self._seed}, name={self._name!r})"
        )

    # ------------------------------------------------------------------------------ serving

    def _serve(self, request: GenerationRequest, test: StopTest | None = None) -> GenerationResult:
        qid = request.query_id
        if qid not in self._rows:
            return GenerationResult(
                query_id=qid,
                samples=(),
                shortfall=request.n,
                reason=f"query {qid!r}: not in the replayed samples table",
            )
        order = self.order(qid)
        start = min(request.first_sample_index, len(order))
        stop = min(request.first_sample_index + request.n, len(order))
        samples = tuple(
            self._sample(int(order[position]), position, request.max_tokens)
            for position in range(start, stop)
        )
        if test is not None:
            # a perfectly fast cancel: the samples are served one at a time, and none is served
            # past the count where the stop test holds
            for k in range(1, len(samples) + 1):
                if test(samples[:k]):
                    return GenerationResult(query_id=qid, samples=samples[:k],
                                            cancelled=request.n - k)
        shortfall = request.n - len(samples)
        reason = None
        if shortfall:
            wanted = request.first_sample_index + request.n
            reason = f"query {qid!r}: {len(order)} samples logged, {wanted} requested"
        return GenerationResult(query_id=qid, samples=samples, shortfall=shortfall, reason=reason)

    def _sample(self, row: int, position: int, max_tokens: int) -> GeneratedSample:
        c = self._columns
        completion = c["completion_tokens"][row]
        common = {
            "sample_index": position,
            "prompt_tokens": c["prompt_tokens"][row],
            "prompt_nll": c["prompt_nll"][row],  # the prompt's, known before generation
            "seed": c["seed"][row],
            "source_index": c["sample_index"][row],
            "logged": True,  # its row keeps the log's temperature, not the plan's
            "temperature": c["temperature"][row],
        }
        if is_cut(completion, max_tokens):  # the rule calibration applies too
            # The generation would have been cut off here: what the full sample said is unknown.
            label = c["correct"][row]
            return GeneratedSample(
                **common,
                completion_tokens=max_tokens,
                finish_reason="length",
                correct=None if label is None else False,
            )
        return GeneratedSample(
            **common,
            text=c["text"][row],
            answer=c["answer"][row],
            correct=c["correct"][row],
            completion_tokens=completion,
            finish_reason=c["finish_reason"][row],
            mean_logprob=c["mean_logprob"][row],
            scores=self._scores[row],
        )


def _python_columns(table: SamplesTable) -> dict[str, list[Any]]:
    """The columns a served sample reads, as Python lists with ``None`` where unknown (reading
    masked arrays element by element would dominate serving)."""

    def values(column: np.ndarray) -> list[Any]:
        if isinstance(column, np.ma.MaskedArray):
            data = column.data.tolist()
            return [None if m else v for v, m in zip(data, np.ma.getmaskarray(column).tolist())]
        return column.tolist()

    names = (
        "sample_index", "prompt_tokens", "completion_tokens", "finish_reason", "text", "answer",
        "correct", "mean_logprob", "prompt_nll", "seed", "temperature",
    )
    return {name: values(getattr(table, name)) for name in names}


def _score_rows(
    table: SamplesTable, score_columns: Mapping[str, str]
) -> list[Mapping[str, float]]:
    """Each row's scores by name: the table's columns, plus each mapped scorer under its own
    name (``score_columns``: scorer -> column), so the runtime reads a scorer by its name."""
    rows: list[dict[str, float]] = [{} for _ in range(len(table))]
    named = {**{name: name for name in table.scores}, **score_columns}
    for name, source in named.items():
        column = table.scores.get(source)
        if column is None:
            continue  # refused before the run (ttcdsl.observables); nothing to serve
        mask = np.ma.getmaskarray(column).tolist()
        for i, (value, masked) in enumerate(zip(column.data.tolist(), mask)):
            if not masked:
                rows[i][name] = value
    return [MappingProxyType(r) for r in rows]
