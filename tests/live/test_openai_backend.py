"""The openai backend against a real vLLM OpenAI-compatible server (started once per session),
directly and through a proxy that injects the failures of a cluster: the conformance suite, the
same samples as the in-process engine, retries, re-routing, and failures reported as shortfalls."""

from __future__ import annotations

import pytest

from tests.live.conftest import QUERIES
from tests.live.support import FaultyProxy, free_port
from tests.runtime.conformance import CHECKS
from ttcdsl.runtime import GenerationRequest
from ttcdsl.runtime.live import LiveQueries, parse_options

pytestmark = pytest.mark.slow


def openai(endpoints, queries=QUERIES[:2], options=(), **kwargs):
    from ttcdsl.runtime.openai_backend import OPTIONS, OpenAIBackend

    return OpenAIBackend(list(endpoints), parse_options(list(options), OPTIONS, "openai"),
                         LiveQueries(queries), **kwargs)


def requests(queries=QUERIES, n=3, first=0, seed=11, max_tokens=10):
    return [GenerationRequest(query_id=q.id, n=n, first_sample_index=first, max_tokens=max_tokens,
                              temperature=0.9, seed=seed) for q in queries]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_conformance(check, server) -> None:
    check(lambda: openai([server]), QUERIES[:2], max_tokens=8, seed=0)


def test_same_samples_as_the_in_process_engine(server, engine_options, engine) -> None:
    """Same seeds, same model, same settings: the server's samples are the in-process engine's,
    token for token, with the server's own usage counts."""
    from ttcdsl.runtime.vllm_backend import VllmBackend

    reqs = requests()
    over_http = openai([server], QUERIES, need_logprobs=True).generate(reqs)
    in_process = VllmBackend(engine_options, LiveQueries(QUERIES), engine=engine,
                             need_logprobs=True).generate(reqs)
    for a, b in zip(over_http, in_process, strict=True):
        assert a.shortfall == b.shortfall == 0
        for x, y in zip(a.samples, b.samples, strict=True):
            assert (x.sample_index, x.text, x.answer, x.correct, x.prompt_tokens,
                    x.completion_tokens, x.finish_reason, x.seed) == (
                    y.sample_index, y.text, y.answer, y.correct, y.prompt_tokens,
                    y.completion_tokens, y.finish_reason, y.seed)
            assert x.mean_logprob == pytest.approx(y.mean_logprob, abs=1e-4)


def test_faults_are_retried_and_every_sample_comes_once(server) -> None:
    """Dropped connections, 500s, 429s, stalls past the timeout, responses cut mid-body and
    delays: every sample arrives, once, and equals the one made without the proxy."""
    reference = openai([server], QUERIES).generate(requests(n=4))
    proxy = FaultyProxy(server)
    try:
        options = ["timeout=20", "backoff=0.05", "retries=4", "model=smollm2"]
        got = openai([proxy.url], QUERIES, options).generate(requests(n=4))
    finally:
        proxy.close()
    assert got == reference
    injected = {k: v for k, v in proxy.faults.items() if k != "pass"}
    assert sum(injected.values()) >= 5 and len(injected) >= 3, proxy.faults


def test_a_dead_endpoint_is_taken_out_and_its_queries_rerouted(server) -> None:
    from ttcdsl.runtime.openai_backend import _Endpoint

    reference = openai([server], QUERIES).generate(requests())
    # Affinity hashes the endpoint's URL, port included, so pick a dead port (nothing listens
    # there) that affinity sends some queries to first; with none of them this tests nothing.
    for _ in range(50):
        pool = openai([f"http://127.0.0.1:{free_port()}", server], QUERIES,
                      ["backoff=0.01", "model=smollm2"])
        endpoints = [_Endpoint(u) for u in pool.urls]
        if any(pool._route(endpoints, q.id).url == pool.urls[0] for q in QUERIES):
            break
    else:
        pytest.fail("no free port that affinity routes a query to in 50 tries")
    assert pool.generate(requests()) == reference


def test_a_request_that_keeps_failing_is_a_shortfall_with_its_reason(server) -> None:
    proxy = FaultyProxy(server, always="500")
    try:
        b = openai([proxy.url], QUERIES[:1], ["retries=2", "backoff=0", "model=smollm2"])
        (result,) = b.generate(requests(QUERIES[:1], n=2))
    finally:
        proxy.close()
    assert result.samples == () and result.shortfall == 2
    assert "HTTP 500" in result.reason and "3 attempts" in result.reason
    assert proxy.faults["500"] == 2 * 3


def test_a_refused_request_is_not_retried(server) -> None:
    """A 4xx other than 429 will not get better: one attempt each."""
    proxy = FaultyProxy(server, always="400")
    try:
        b = openai([proxy.url], QUERIES[:1], ["model=smollm2", "retries=3"])
        (result,) = b.generate(requests(QUERIES[:1], n=2))
    finally:
        proxy.close()
    assert result.shortfall == 2 and "refused" in result.reason and "400" in result.reason
    assert proxy.faults["400"] == 2


def refused_behind(server, proxy: dict, queries, options, *, n: int, match: str):
    """Generate ``n`` samples of ``queries`` through ``FaultyProxy(server, **proxy)``, which must
    end in a BackendError matching ``match``: the error, and what the proxy did."""
    from ttcdsl.runtime.backend import BackendError

    faulty = FaultyProxy(server, **proxy)
    try:
        b = openai([faulty.url], queries, options)
        with pytest.raises(BackendError, match=match) as caught:
            b.generate(requests(queries, n=n))
    finally:
        faulty.close()
    return caught.value, faulty.faults


@pytest.mark.parametrize("status", ["401", "403", "404"])
def test_a_status_every_request_would_meet_stops_the_round(server, status) -> None:
    """A 401, 403 or 404 is the key's, its rights', the URL's or the model's: every request
    would get it. The first one ends sending (one request in flight at a time here: exactly one
    is sent), and the round is an error naming the status and what to check, not a shortfall
    per query."""
    error, faults = refused_behind(
        server, {"always": status}, QUERIES,
        ["model=smollm2", "concurrency=1", "retries=3", "api_key_env=TTC_TEST_NO_SUCH_KEY"],
        n=3, match=f"HTTP {status}.*nothing more was sent")
    assert faults[status] == 1, faults
    if status == "404":
        assert "--endpoint" in error.hint
    else:
        assert "TTC_TEST_NO_SUCH_KEY (not set)" in error.hint


def test_credentials_refused_at_the_model_list_are_an_error_before_any_generation(server) -> None:
    """A named model skips nothing: a 401 on ``/v1/models`` is the credentials' and every
    generation request would meet it too."""
    _, faults = refused_behind(server, {"always": "401", "gets": True}, QUERIES[:1], ["model=smollm2"],
                               n=1, match="models: HTTP 401")
    assert faults == {"401": 1}, faults  # the listing alone


def test_a_model_the_server_does_not_serve_is_refused_before_anything_is_sent(server) -> None:
    """vLLM's server would refuse each request with a 404; the model list says so first."""
    _, faults = refused_behind(server, {"always": "500"}, QUERIES[:1], ["model=no-such-model"], n=1,
                               match="serves 'smollm2', not the model 'no-such-model'")
    assert faults["500"] == 0  # a POST would be counted here


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_prompt_token_counts_before_a_round_are_the_servers_usage(server, api) -> None:
    """The bound a policy that charges prompt tokens needs before the first round comes from the
    server's /tokenize and equals the prompt tokens the server then bills per sample."""
    queries = [q for q in QUERIES if api == "chat" or q.messages is None]
    b = openai([server], queries, [f"api={api}", "model=smollm2"])
    counts = b.prompt_token_counts([q.id for q in queries])
    results = b.generate(requests(queries, n=1, max_tokens=2))
    assert counts == {r.query_id: r.samples[0].prompt_tokens for r in results}
    assert all(count > 5 for count in counts.values())


def test_a_server_without_tokenize_is_refused_with_the_reason(server) -> None:
    from ttcdsl.runtime.backend import BackendError

    proxy = FaultyProxy(server, always="500")
    try:
        b = openai([proxy.url], QUERIES[:1], ["model=smollm2"])
        with pytest.raises(BackendError, match="could not count the prompt tokens"):
            b.prompt_token_counts([QUERIES[0].id])
    finally:
        proxy.close()


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_the_prompt_nll_over_http_is_the_in_process_engines(server, engine_options, engine,
                                                            api) -> None:
    """vLLM's prompt_logprobs extension gives the same prompt NLL as the in-process engine, for
    chat and plain prompts; only the first sample of each request carries it."""
    from ttcdsl.runtime.vllm_backend import VllmBackend

    queries = [q for q in QUERIES if q.messages is None][:2]
    reqs = requests(queries, n=2, max_tokens=2)
    over_http = openai([server], queries, [f"api={api}", "model=smollm2"],
                       need_prompt_nll=True).generate(reqs)
    options = {**engine_options, "chat": "on" if api == "chat" else "off"}
    in_process = VllmBackend(options, LiveQueries(queries), engine=engine,
                             need_prompt_nll=True).generate(reqs)
    for a, b in zip(over_http, in_process, strict=True):
        assert a.samples[0].prompt_nll == pytest.approx(b.samples[0].prompt_nll, abs=1e-3)
        assert a.samples[0].prompt_nll > 0 and a.samples[1].prompt_nll is None
