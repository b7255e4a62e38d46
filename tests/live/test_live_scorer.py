"""Live reward-model scoring on the real engine: `ttc run --backend vllm|openai` of a best-of-N
policy whose scorer is SmolLM2 as an LLM-as-judge classifier (a second, pooling engine in
process; a vLLM pooling server's /classify). Every stored score equals P(Yes) of a plain
transformers forward pass over the same judge prompt, and best-of-N answers with the
highest-scored sample. (SmolLM2's judgements are not discriminative: this tests the plumbing
and the numbers, not the judge.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.live.conftest import ENGINE_OPTIONS, QUERIES, sample_rows
from tests.live.test_live_run import ttc
from tests.runtime.runs import hand_plan, write_policy

pytestmark = pytest.mark.slow

JUDGED = """\
policy judged "3 samples per query, the best by an LLM judge"

sampling { temperature 0.9  max_tokens 10 }

scorer prm = reward_model "smollm2-judge"
answer best_of_n(prm)
allocate fixed 3 maximize accuracy
"""

RUN_QUERIES = QUERIES[:3]  # a prompt and a chat query among them


def judge_prompt(question: str, text: str) -> list[dict]:
    """The judge conversation, spelt out here (not taken from ttcdsl.runtime.reward)."""
    content = (f"Question: {question}\nProposed answer: {text}\n"
               "Is the proposed answer correct? Answer Yes or No.")
    return [{"role": "user", "content": content}]


@pytest.fixture(scope="module")
def reference(model_folder):
    """P(Yes) and logit[Yes] - logit[No] of SmolLM2 at the end of a judge prompt, from a plain
    transformers forward pass (fp32), independent of vLLM."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_folder)
    model = AutoModelForCausalLM.from_pretrained(model_folder, dtype=torch.float32).eval()
    (no,) = tokenizer.encode("No", add_special_tokens=False)
    (yes,) = tokenizer.encode("Yes", add_special_tokens=False)
    questions = {q.id: q.prompt or q.messages[-1].content for q in QUERIES}

    def judge(query_id: str, text: str) -> tuple[float, float]:
        ids = tokenizer.apply_chat_template(judge_prompt(questions[query_id], text),
                                            add_generation_prompt=True, tokenize=True,
                                            return_dict=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**ids).logits[0, -1].double()
        pair = torch.softmax(logits[[no, yes]], dim=0)
        return float(pair[1]), float(logits[yes] - logits[no])

    yield judge
    del model


@pytest.fixture(scope="module")
def plan_and_queries(tmp_path_factory, queries_file) -> tuple[Path, Path]:
    from ttcdsl.datasets import Dataset, write_queries

    d = tmp_path_factory.mktemp("judged")
    plan = hand_plan(write_policy(d, JUDGED), allocation={"all": [{"samples": 3, "share": 1.0}]},
                     edges=None, mode="fixed")
    queries = d / "queries.jsonl"
    write_queries(Dataset(name="judged", queries=RUN_QUERIES), queries)
    return plan, queries


def check_run(run_dir: Path, reference, *, logits: bool) -> None:
    """Every sample scored once, equal to the reference to 1e-4 (a raw logit difference read
    through sigmoid when the scorer is declared with `logits`), and each query's answer the
    highest-scored sample's."""
    rows = sample_rows(run_dir)
    assert sorted({r["query_id"] for r in rows}) == sorted(q.id for q in RUN_QUERIES)
    assert len(rows) == 3 * len(RUN_QUERIES)
    for row in rows:
        prob, diff = reference(row["query_id"], row["text"])
        stored = row["scores"]["prm"]
        if logits:
            assert stored == pytest.approx(diff, abs=1e-3)  # a logit: 1e-4 of a probability
            stored = 1 / (1 + math.exp(-stored))
        assert 0 < stored < 1 and stored == pytest.approx(prob, abs=1e-4), row
    results = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    for result in results:
        mine = [r for r in rows if r["query_id"] == result["query_id"] and r["answer"] is not None]
        best = max(mine, key=lambda r: r["scores"]["prm"], default=None)
        assert result["answer"] == (best and best["answer"]), (result, mine)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert any("scorer.prm" in part for part in manifest["command"])


def test_a_vllm_run_scores_every_sample_with_the_judge(model_folder, plan_and_queries,
                                                       reference, tmp_path) -> None:
    plan, queries = plan_and_queries
    out = tmp_path / "run"
    args = ["run", str(plan), "--queries", str(queries), "--out", str(out), "--quiet",
            "--backend", "vllm", "--backend-option", f"model={model_folder}",
            "--backend-option", f"scorer.prm.model={model_folder}",
            "--backend-option", "scorer.prm.kv_cache_memory_bytes=128M"]
    for option in ENGINE_OPTIONS:
        args += ["--backend-option", option]
    done = ttc(args)
    assert done.returncode == 0, done.stderr[-3000:]
    check_run(out, reference, logits=False)
    settings = json.loads((out / "samples.jsonl").read_text().splitlines()[0])
    assert settings["meta"]["notes"]["backend_settings"]["scorer.prm.mode"] == "judge"


def test_an_openai_run_scores_through_a_pooling_server(server, judge_server, plan_and_queries,
                                                       reference, tmp_path) -> None:
    """The scorer declared with `logits`: the server returns the raw logit difference
    (use_activation false), stored as is and read as sigmoid."""
    plan, queries = plan_and_queries
    policy = Path(plan).with_name("judged-logits.ttc")
    policy.write_text(JUDGED.replace('"smollm2-judge"', '"smollm2-judge" logits'))
    plan = hand_plan(policy, allocation={"all": [{"samples": 3, "share": 1.0}]}, edges=None,
                     mode="fixed")
    out = tmp_path / "run"
    done = ttc(["run", str(plan), "--queries", str(queries), "--out", str(out), "--quiet",
                "--backend", "openai", "--endpoint", server,
                "--backend-option", f"scorer.prm.endpoint={judge_server}"])
    assert done.returncode == 0, done.stderr[-3000:]
    check_run(out, reference, logits=True)


def test_scoring_requests_are_retried_through_injected_faults(judge_server) -> None:
    """The scorer's /classify requests go through the generation requests' retry loop: dropped
    connections, 500s, 429s, stalls past the timeout and responses cut mid-body still give every
    sample the score it gets without the proxy."""
    from tests.live.support import FaultyProxy
    from ttcdsl.runtime.live import LiveQueries, parse_options
    from ttcdsl.runtime.openai_backend import OPTIONS
    from ttcdsl.runtime.reward import OPTIONS as SCORER_OPTIONS
    from ttcdsl.runtime.reward import HttpScorer, ScorerSpec

    queries = LiveQueries(RUN_QUERIES)
    items = [(q.id, text) for q in RUN_QUERIES for text in ("5", "20", "I do not know")]

    def scorer(endpoint: str) -> HttpScorer:
        spec = ScorerSpec(name="prm", logits=False, options=parse_options(
            [f"endpoint={endpoint}", "model=smollm2-judge"], SCORER_OPTIONS, "scorer"))
        options = parse_options(["timeout=20", "backoff=0.05", "retries=4"], OPTIONS, "openai")
        return HttpScorer(spec, queries, options)

    direct = scorer(judge_server).score(items)
    proxy = FaultyProxy(judge_server)
    try:
        through = scorer(proxy.url).score(items)
    finally:
        proxy.close()
    assert all(isinstance(v, float) for v in direct + through)
    assert through == pytest.approx(direct, abs=1e-5)  # the batches a server forms may differ
    assert sum(n for fate, n in proxy.faults.items() if fate != "pass") > 0
