"""The backend conformance suite: what every backend (replay, vllm, openai) must do, written once.

Each check is a plain function ``check(make_backend, queries, *, max_tokens, seed)``:
``make_backend()`` returns a fresh backend (called more than once where a check needs two
independent instances), ``queries`` are two or more :class:`~ttcdsl.datasets.Query` values the
backend can serve, at least 5 samples each and no more queries than its ``max_batch`` (their
prompt is sent; replay ignores it), ``max_tokens`` is a budget at which the backend returns
ordinary samples, ``seed`` the run seed. A backend's test module runs them all::

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_conformance(check): check(factory, queries, max_tokens=..., seed=0)

Checks that compare samples for equality need ``capabilities.deterministic`` and skip (saying so)
for a backend without it. Each check closes the backends it makes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pytest

from ttcdsl.datasets import Query
from ttcdsl.runtime import (
    Backend,
    BackendCapabilities,
    GeneratedSample,
    GenerationRequest,
    GenerationResult,
)

BackendFactory = Callable[[], Backend]


@contextmanager
def opened(make_backend: BackendFactory) -> Iterator[Backend]:
    backend = make_backend()
    try:
        yield backend
    finally:
        backend.close()


def request(
    query: Query, n: int, first: int = 0, *, max_tokens: int, seed: int
) -> GenerationRequest:
    return GenerationRequest(
        query_id=query.id,
        prompt=query.prompt or "",
        n=n,
        first_sample_index=first,
        max_tokens=max_tokens,
        temperature=1.0,
        seed=seed,
    )


def assert_well_formed(
    requests: Sequence[GenerationRequest], results: Sequence[GenerationResult]
) -> None:
    """One result per request, in order; samples numbered from ``first_sample_index``
    consecutively; ``n`` of them unless a shortfall (with a reason) accounts for the rest."""
    assert isinstance(results, list), f"generate returned {type(results).__name__}, not a list"
    assert len(results) == len(requests), f"{len(requests)} requests, {len(results)} results"
    for req, res in zip(requests, results, strict=True):
        assert isinstance(res, GenerationResult)
        assert res.query_id == req.query_id, f"result for {res.query_id!r} where {req.query_id!r}"
        assert all(isinstance(s, GeneratedSample) for s in res.samples)
        indices = [s.sample_index for s in res.samples]
        assert indices == list(req.sample_indices[: len(indices)]), (
            f"{req.query_id}: sample indices {indices}, expected from {req.first_sample_index} on"
        )
        assert len(res.samples) + res.shortfall == req.n, (
            f"{req.query_id}: asked {req.n}, got {len(res.samples)} with shortfall {res.shortfall}"
        )
        if res.shortfall:
            assert res.reason, f"{req.query_id}: a shortfall without a reason"


def assert_full(results: Sequence[GenerationResult]) -> None:
    for res in results:
        assert res.shortfall == 0, f"{res.query_id}: unexpected shortfall: {res.reason}"


def require_deterministic(backend: Backend) -> None:
    if not backend.capabilities.deterministic:
        pytest.skip(f"backend {backend.name!r} is not deterministic: samples cannot be compared")


# ---------------------------------------------------------------------------------- the checks


def check_protocol(
    make_backend: BackendFactory, queries: Sequence[Query], *, max_tokens: int, seed: int
) -> None:
    """The backend is a :class:`Backend`, names itself, states capabilities, takes an empty round,
    and can be closed twice."""
    backend = make_backend()
    assert isinstance(backend, Backend)
    assert isinstance(backend.name, str) and backend.name
    assert backend.model is None or isinstance(backend.model, str)
    assert isinstance(backend.capabilities, BackendCapabilities)
    assert backend.generate([]) == []
    backend.close()
    backend.close()


def check_results_follow_requests(
    make_backend: BackendFactory, queries: Sequence[Query], *, max_tokens: int, seed: int
) -> None:
    """Results come one per request in request order (the batch is given reversed, with mixed
    counts and starting indices, so order cannot line up by accident)."""
    reqs = [
        request(q, n=1 + i % 3, first=(2 * i) % 3, max_tokens=max_tokens, seed=seed)
        for i, q in enumerate(reversed(queries))
    ]
    with opened(make_backend) as backend:
        results = backend.generate(reqs)
    assert_well_formed(reqs, results)
    assert_full(results)


def check_capabilities_hold(
    make_backend: BackendFactory, queries: Sequence[Query], *, max_tokens: int, seed: int
) -> None:
    """A field the capabilities deny is never filled; one they promise appears somewhere."""
    reqs = [request(q, n=3, max_tokens=max_tokens, seed=seed) for q in queries]
    with opened(make_backend) as backend:
        caps = backend.capabilities
        results = backend.generate(reqs)
    assert_well_formed(reqs, results)
    samples = [s for r in results for s in r.samples]
    assert samples, "no samples at all"
    for flag, attribute in (
        (caps.logprobs, "mean_logprob"),
        (caps.prompt_tokens, "prompt_tokens"),
        (caps.labelled, "correct"),
    ):
        present = [getattr(s, attribute) is not None for s in samples]
        if flag:
            assert any(present), f"capabilities promise {attribute}, no sample has it"
        else:
            assert not any(present), f"capabilities deny {attribute}, yet samples carry it"
    if not caps.answers:
        assert all(s.answer is None for s in samples), "answers are not promised, yet given"


def check_deterministic(
    make_backend: BackendFactory, queries: Sequence[Query], *, max_tokens: int, seed: int
) -> None:
    """Same requests, same samples: twice on one backend and once on a fresh one."""
    reqs = [request(q, n=3, first=1, max_tokens=max_tokens, seed=seed) for q in queries]
    with opened(make_backend) as backend:
        require_deterministic(backend)
        first = backend.generate(reqs)
        again = backend.generate(reqs)
    with opened(make_backend) as fresh:
        other = fresh.generate(reqs)
    assert_well_formed(reqs, first)
    assert first == again, "the same requests gave different samples on the same backend"
    assert first == other, "the same requests gave different samples on a fresh backend"


def check_extension(
    make_backend: BackendFactory, queries: Sequence[Query], *, max_tokens: int, seed: int
) -> None:
    """3 samples, then 2 more from index 3, are the 5 samples asked for at once; and a query's
    samples do not depend on which other queries share its batch."""
    whole = [request(q, n=5, max_tokens=max_tokens, seed=seed) for q in queries]
    head = [request(q, n=3, max_tokens=max_tokens, seed=seed) for q in queries]
    tail = [request(q, n=2, first=3, max_tokens=max_tokens, seed=seed) for q in queries]
    with opened(make_backend) as backend:
        require_deterministic(backend)
        at_once = backend.generate(whole)
        in_rounds = [
            h.samples + t.samples
            for h, t in zip(backend.generate(head), backend.generate(tail), strict=True)
        ]
    with opened(make_backend) as fresh:
        alone = [fresh.generate([req])[0] for req in reversed(whole)][::-1]
    assert_well_formed(whole, at_once)
    assert_full(at_once)
    for res, split, single in zip(at_once, in_rounds, alone, strict=True):
        assert res.samples == split, f"{res.query_id}: 3 + 2 samples differ from 5 at once"
        assert res.samples == single.samples, f"{res.query_id}: samples depend on the batch"


def check_max_tokens(
    make_backend: BackendFactory, queries: Sequence[Query], *, max_tokens: int, seed: int
) -> None:
    """Where completion tokens are known, a sample stays within ``max_tokens`` or ended for
    ``length``: at the given budget and at an eighth of it."""
    for budget in (max_tokens, max(1, max_tokens // 8)):
        reqs = [request(q, n=4, max_tokens=budget, seed=seed) for q in queries]
        with opened(make_backend) as backend:
            results = backend.generate(reqs)
        assert_well_formed(reqs, results)
        for res in results:
            for s in res.samples:
                if s.completion_tokens is not None:
                    assert s.completion_tokens <= budget or s.finish_reason == "length", (
                        f"{res.query_id}#{s.sample_index}: {s.completion_tokens} tokens past "
                        f"max_tokens {budget} (finish reason {s.finish_reason!r})"
                    )


def check_rows(
    make_backend: BackendFactory, queries: Sequence[Query], *, max_tokens: int, seed: int
) -> None:
    """Every sample becomes a valid samples-table row (the schema checks each value)."""
    reqs = [request(q, n=2, max_tokens=max_tokens, seed=seed) for q in queries]
    with opened(make_backend) as backend:
        results = backend.generate(reqs)
    for res in results:
        for s in res.samples:
            row = s.to_row(res.query_id, round=0, temperature=1.0)
            assert (row.query_id, row.sample_index) == (res.query_id, s.sample_index)


CHECKS: tuple[Callable[..., None], ...] = (
    check_protocol,
    check_results_follow_requests,
    check_capabilities_hold,
    check_deterministic,
    check_extension,
    check_max_tokens,
    check_rows,
)
