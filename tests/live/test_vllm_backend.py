"""The vllm backend on the real engine (vLLM's CPU build, SmolLM2-135M-Instruct): the conformance
suite, and each number checked against vLLM's own API called directly."""

from __future__ import annotations

import pytest

from tests.live.conftest import QUERIES
from tests.runtime.conformance import CHECKS
from ttcdsl.answers import is_correct, parse_answer
from ttcdsl.runtime import GenerationRequest, sample_seed
from ttcdsl.runtime.live import LiveQueries

pytestmark = pytest.mark.slow

MAX_TOKENS = 8


def backend(engine_options, engine, queries=QUERIES[:2], **kwargs):
    from ttcdsl.runtime.vllm_backend import VllmBackend

    return VllmBackend(engine_options, LiveQueries(queries), engine=engine, **kwargs)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_conformance(check, engine_options, engine) -> None:
    check(lambda: backend(engine_options, engine), QUERIES[:2], max_tokens=MAX_TOKENS, seed=0)


def _direct(engine, messages, seed, max_tokens, temperature=0.8, logprobs=None):
    """vLLM's own chat call for one seeded sample: what the backend must reproduce."""
    from vllm import SamplingParams

    params = SamplingParams(n=1, seed=seed, max_tokens=max_tokens, temperature=temperature,
                            top_p=1.0, top_k=0, logprobs=logprobs)
    return engine.chat([messages], [params], use_tqdm=False)[0]


def test_samples_are_vllms_own_for_their_seeds(engine_options, engine) -> None:
    """Each sample equals LLM.chat (the model's chat template) with the sample's seed; prompt
    and completion token counts are vLLM's; answers and labels are the dataset kind's."""
    b = backend(engine_options, engine, need_logprobs=True)
    reqs = [GenerationRequest(query_id=q.id, prompt=q.prompt or "", n=2, first_sample_index=3,
                              max_tokens=12, temperature=0.8, seed=7) for q in QUERIES[:2]]
    results = b.generate(reqs)
    for query, result in zip(QUERIES[:2], results, strict=True):
        assert [s.sample_index for s in result.samples] == [3, 4]
        for s in result.samples:
            seed = sample_seed(7, query.id, s.sample_index)
            assert s.seed == seed
            messages = [{"role": m.role, "content": m.content} for m in query.chat()]
            direct = _direct(engine, messages, seed, 12, logprobs=0)
            completion = direct.outputs[0]
            assert s.text == completion.text
            assert s.prompt_tokens == len(direct.prompt_token_ids)
            assert s.completion_tokens == len(completion.token_ids)
            assert s.finish_reason == completion.finish_reason
            logprobs = [p[t].logprob for t, p in zip(completion.token_ids, completion.logprobs)]
            # fp32 sums differ in the last digits with the batch a sample shares
            assert s.mean_logprob == pytest.approx(sum(logprobs) / len(logprobs), abs=1e-4)
            assert s.answer == parse_answer(completion.text, "math")
            assert s.correct == (s.answer is not None and is_correct(s.answer, query.gold, "math"))


def test_prompt_token_count_is_the_chat_templates(engine_options, engine, model_folder) -> None:
    """The prompt is the model's chat template applied to the query (a plain prompt is one user
    message): its token count is the template's, computed here by transformers itself."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_folder)
    b = backend(engine_options, engine)
    results = b.generate([GenerationRequest(query_id=q.id, n=1, max_tokens=1, seed=0)
                          for q in QUERIES[:2]])
    for query, result in zip(QUERIES[:2], results, strict=True):
        messages = [{"role": m.role, "content": m.content} for m in query.chat()]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert "<|im_start|>assistant" in text
        expected = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        assert result.samples[0].prompt_tokens == expected
    # the bound a policy charging prompt tokens gets before the first round is the same count
    counts = b.prompt_token_counts([q.id for q in QUERIES[:2]])
    assert counts == {q.id: r.samples[0].prompt_tokens for q, r in zip(QUERIES, results)}


def test_truncation_and_logprobs_only_when_asked(engine_options, engine) -> None:
    b = backend(engine_options, engine)
    (result,) = b.generate([GenerationRequest(query_id=QUERIES[0].id, n=3, max_tokens=2,
                                              temperature=1.0, seed=1)])
    assert b.capabilities.logprobs is False
    for s in result.samples:
        assert s.mean_logprob is None
        assert s.completion_tokens <= 2
        if s.completion_tokens == 2:
            assert s.finish_reason == "length"
    # A request that asks for logprobs gets them even when the policy does not read them.
    (asked,) = b.generate([GenerationRequest(query_id=QUERIES[0].id, n=1, max_tokens=2,
                                             seed=1, logprobs=1)])
    assert asked.samples[0].mean_logprob is not None


def test_unknown_query_is_a_shortfall_not_a_crash(engine_options, engine) -> None:
    b = backend(engine_options, engine)
    known, unknown = b.generate([
        GenerationRequest(query_id=QUERIES[0].id, n=1, max_tokens=2, seed=0),
        GenerationRequest(query_id="nobody", n=2, max_tokens=2, seed=0),
    ])
    assert len(known.samples) == 1 and known.shortfall == 0
    assert unknown.samples == () and unknown.shortfall == 2
    assert "not in the dataset" in unknown.reason


def test_greedy_is_greedy(engine_options, engine) -> None:
    """temperature 0 is passed through (vLLM's greedy decoding): every seed gives the same text."""
    b = backend(engine_options, engine)
    (result,) = b.generate([GenerationRequest(query_id=QUERIES[0].id, n=3, max_tokens=8,
                                              temperature=0.0, seed=3)])
    assert len({s.text for s in result.samples}) == 1


def _prompt_nll_by_transformers(model_folder, query) -> float:
    """The prompt's mean token NLL from a plain transformers forward pass of the same model on
    the chat template's tokens (position 0 has no prediction, so it is left out)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_folder)
    model = AutoModelForCausalLM.from_pretrained(model_folder, torch_dtype=torch.float32)
    messages = [{"role": m.role, "content": m.content} for m in query.chat()]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits[0, :-1]
    logprobs = torch.log_softmax(logits.double(), dim=-1)
    return float(-logprobs.gather(1, ids[0, 1:, None]).mean())


def test_the_prompt_nll_is_the_models_and_measured_once_per_request(engine_options, engine,
                                                                     model_folder) -> None:
    """With a policy that reads prompt_nll, the first sample of each request carries the
    prompt's mean token NLL, equal to a transformers forward pass; the others share the prompt
    and carry none (one prefill with prompt log-probabilities per query and round)."""
    b = backend(engine_options, engine, need_prompt_nll=True)
    results = b.generate([GenerationRequest(query_id=q.id, n=2, max_tokens=2, seed=0)
                          for q in QUERIES[:2]])
    for query, result in zip(QUERIES[:2], results, strict=True):
        first, second = result.samples
        assert first.prompt_nll == pytest.approx(
            _prompt_nll_by_transformers(model_folder, query), abs=1e-3)
        assert second.prompt_nll is None
    plain = backend(engine_options, engine).generate(
        [GenerationRequest(query_id=QUERIES[0].id, n=1, max_tokens=2, seed=0)])
    assert plain[0].samples[0].prompt_nll is None  # not asked, not measured


def test_each_request_is_handed_over_as_it_completes(engine_options, engine) -> None:
    """``on_result``: every request's result once, as soon as its last sample is done (here the
    short request's while the long ones still run), equal to what the round returns, and the
    samples are those of the round run without it (one ``LLM.generate`` call)."""
    b = backend(engine_options, engine, queries=QUERIES)
    reqs = [GenerationRequest(query_id=q.id, n=2, first_sample_index=1, temperature=0.9, seed=5,
                              max_tokens=1 if i == 0 else 24) for i, q in enumerate(QUERIES)]
    reqs.append(GenerationRequest(query_id="no-such-query", n=2, first_sample_index=0,
                                  max_tokens=4, temperature=0.9, seed=5))
    whole = b.generate(reqs)
    calls = []

    def arrived(i, result) -> None:
        calls.append((i, result, engine.llm_engine.has_unfinished_requests()))

    streamed = b.generate(reqs, on_result=arrived)
    assert streamed == whole
    assert sorted(i for i, _, _ in calls) == list(range(len(reqs)))
    assert all(result == streamed[i] for i, result, _ in calls)
    first_done = next(still for i, _, still in calls if i == 0)
    assert first_done, "the one-token request was handed over only after the round"
    assert streamed[-1].shortfall == 2 and not streamed[-1].samples
    assert not engine.llm_engine.has_unfinished_requests()
