"""A backend that serves samples it already holds and generates only the rest.

A sample is a function of its request's parameters, the run seed, the query and its index
(:func:`~ttcdsl.runtime.backend.sample_seed`), never of the round it was asked in. So a second
pass over the same queries with the same parameters and seed (the uniform baseline of a live run,
:mod:`ttcdsl.runtime.live_baseline`) needs to generate only the samples the first pass did not
draw. :class:`ReuseBackend` wraps a live backend: for each requested index it serves the held row
where there is one, asks the inner backend for the others in ONE batched call (a request per
consecutive run of missing indices), and appends what was generated to its own store (fsynced)
before serving it, so a pass killed afterwards resumes without generating it again.

Held rows are served as the samples they are, never re-labelled; a held row whose seed is not the
one its index would get under the request's seed is not that sample, and is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence

from ttcdsl.runtime.backend import (
    Backend,
    BackendCapabilities,
    BackendError,
    GeneratedSample,
    GenerationRequest,
    GenerationResult,
    sample_seed,
)
from ttcdsl.samples.schema import SampleRow
from ttcdsl.samples.store import SampleStore

Hook = Callable[[str, int, Sequence[SampleRow]], None]


def as_sample(row: SampleRow) -> GeneratedSample:
    """A stored row as the sample a backend returned (everything a row keeps)."""
    return GeneratedSample(
        sample_index=row.sample_index, text=row.text, answer=row.answer, correct=row.correct,
        prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens,
        finish_reason=row.finish_reason, mean_logprob=row.mean_logprob,
        prompt_nll=row.prompt_nll, scores=row.scores, seed=row.seed,
        logged=True, temperature=row.temperature,  # drawn at the row's temperature, kept
    )


class ReuseBackend:
    """``inner`` with held rows served first (module docstring).

    ``held``: rows by query (a run's own samples drawn with the parameters this pass asks for,
    and what an interrupted pass already stored); ``store``: where generated samples go (``None``:
    nowhere, as for replay, which generates nothing new). Counts: ``reused`` samples served from
    ``held``, ``generated`` samples the inner backend returned.
    """

    def __init__(
        self,
        inner: Backend,
        held: Iterable[SampleRow],
        *,
        store: SampleStore | None = None,
        hook: Hook | None = None,
    ) -> None:
        self.inner = inner
        self.store = store
        self.hook = hook or (lambda event, round, rows: None)
        self.held: dict[str, dict[int, SampleRow]] = {}
        for row in held:
            by_index = self.held.setdefault(row.query_id, {})
            if row.sample_index in by_index:
                raise BackendError(
                    f"sample {row.sample_index} of query {row.query_id!r} is held twice "
                    "(the run's samples and the baseline's overlap)",
                    hint="the baseline store belongs to another run; delete it to regenerate",
                )
            by_index[row.sample_index] = row
        self.reused = 0
        self.generated = 0
        self.served: set[tuple[str, int]] = set()  # every (query, index) served so far
        self._calls = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def model(self) -> str | None:
        return self.inner.model

    @property
    def capabilities(self) -> BackendCapabilities:
        return self.inner.capabilities

    def close(self) -> None:
        self.inner.close()

    def missing(self, wanted: Mapping[str, int]) -> int:
        """How many of the samples ``0 .. wanted[q] - 1`` of each query are not held."""
        return sum(
            sum(1 for i in range(n) if i not in self.held.get(q, {})) for q, n in wanted.items()
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        asks: list[GenerationRequest] = []
        for request in requests:
            held = self.held.get(request.query_id, {})
            for index in request.sample_indices:
                if index in held:
                    self._check_seed(request, held[index])
            asks.extend(
                dataclasses.replace(request, first_sample_index=start, n=stop - start)
                for start, stop in missing_runs(request.sample_indices, held)
            )
        reasons: dict[str, str] = {}
        new_rows: list[SampleRow] = []
        if asks:
            for ask, result in zip(asks, self.inner.generate(asks), strict=True):
                expected = list(ask.sample_indices)[: len(result.samples)]
                if [s.sample_index for s in result.samples] != expected:
                    raise RuntimeError(f"backend {self.inner.name!r} misnumbered samples")
                for s in result.samples:
                    row = s.to_row(ask.query_id, round=self._calls, temperature=ask.temperature)
                    if ask.seed is not None:  # as the executor stores a run's rows
                        row = dataclasses.replace(
                            row, seed=sample_seed(ask.seed, ask.query_id, s.sample_index)
                        )
                    new_rows.append(row)
                if result.shortfall:
                    reasons.setdefault(ask.query_id, result.reason or "the backend ran short")
            if self.store is not None and new_rows:
                self.hook("append", self._calls, new_rows)
                self.store.append(new_rows)
                self.hook("appended", self._calls, new_rows)
            for row in new_rows:
                self.held.setdefault(row.query_id, {})[row.sample_index] = row
            self.generated += len(new_rows)
            self._calls += 1
        results = [self._serve(request, reasons.get(request.query_id)) for request in requests]
        fresh = {(row.query_id, row.sample_index) for row in new_rows}
        for result in results:
            for sample in result.samples:
                key = (result.query_id, sample.sample_index)
                self.served.add(key)
                self.reused += key not in fresh
        return results

    def _serve(self, request: GenerationRequest, reason: str | None) -> GenerationResult:
        """The request's samples from the held rows: the consecutive run from its first index
        (a shortfall of the inner backend ends it, with the inner backend's reason)."""
        held = self.held.get(request.query_id, {})
        samples = []
        for index in request.sample_indices:
            row = held.get(index)
            if row is None:
                break
            samples.append(as_sample(row))
        shortfall = request.n - len(samples)
        return GenerationResult(
            query_id=request.query_id, samples=tuple(samples), shortfall=shortfall,
            reason=(reason or "the backend ran short") if shortfall else None,
        )

    def _check_seed(self, request: GenerationRequest, row: SampleRow) -> None:
        if request.seed is None:
            return
        seed = sample_seed(request.seed, request.query_id, row.sample_index)
        if row.seed != seed:
            raise BackendError(
                f"held sample {row.sample_index} of query {row.query_id!r} has seed {row.seed}, "
                f"not {seed} (run seed {request.seed}): it is another run's sample",
                hint="the baseline store belongs to another run; delete it to regenerate",
            )


def missing_runs(indices: range, held: Mapping[int, object]) -> list[tuple[int, int]]:
    """The maximal runs ``[start, stop)`` of ``indices`` that ``held`` lacks, in order."""
    runs: list[tuple[int, int]] = []
    start = None
    for index in indices:
        if index in held:
            if start is not None:
                runs.append((start, index))
                start = None
        elif start is None:
            start = index
    if start is not None:
        runs.append((start, indices.stop))
    return runs
