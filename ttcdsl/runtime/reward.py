"""Reward-model scorers for live runs: every generated sample scored by the policy's declared
reward model, the score stored under the scorer's name (``samples.jsonl``'s ``scores``), where
features, stop rules and strategies read it as they read a replayed table's column.

A scorer is configured with ``--backend-option scorer.NAME.KEY=VALUE`` (:data:`OPTIONS`). The
reward model is served by vLLM's pooling runner, as a sequence classifier:

* ``vllm`` backend: a second in-process engine (``runner="pooling"``, ``convert="classify"``)
  for the model ``scorer.NAME.model`` (default: the policy's model string), loaded before the
  first round generates, so a model that does not load costs no generation.
* ``openai`` backend: ``POST /classify`` of the vLLM server at ``scorer.NAME.endpoint`` (started
  with ``--runner pooling --convert classify``), with the generation requests' timeout, retries,
  backoff and API key (one implementation: ``OpenAIBackend._call``).

What the reward model reads (``scorer.NAME.mode``):

``judge`` (default)
    LLM-as-judge: a chat model is asked :data:`JUDGE_TEMPLATE` (the query's question and the
    sample's text filled in) and its next-token logits for ``Yes`` and ``No`` become one class,
    ``P(Yes) = sigmoid(logit[Yes] - logit[No])`` (vLLM's ``classifier_from_token`` with
    ``from_2_way_softmax``). Any instruct model serves; it needs a chat template.
``classify``
    A trained outcome reward model (``*ForSequenceClassification``): it reads the conversation,
    the query's messages then the sample as the assistant's turn, through its chat template.

The score is the model's probability (vLLM's activation on), or its raw logit when the policy
declares the scorer with ``logits`` (the activation off: ``features.scorers.as_read`` reads it as
``sigmoid``, so both declarations read the same number for a one-class model). A model with
several classes needs ``scorer.NAME.label=INDEX``. A sample that cannot be scored (its judge
prompt does not fit ``max_model_len``, or a server request keeps failing) ends its query's
samples there, as a failed generation does: the samples before it are kept and the reason is the
query's shortfall. Scoring is not charged to the budget (the budget counts generated tokens).
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ttcdsl.errors import UserError
from ttcdsl.runtime.backend import BackendError, GenerationResult
from ttcdsl.runtime.live import LiveQueries, Option, parse_options

PREFIX = "scorer."

JUDGE_TEMPLATE = ("Question: {question}\nProposed answer: {answer}\n"
                  "Is the proposed answer correct? Answer Yes or No.")
"""The judge's question; ``{question}`` is the query's, ``{answer}`` the sample's whole text."""

JUDGE_TOKENS = ("No", "Yes")
"""vLLM's ``classifier_from_token`` for ``from_2_way_softmax``: the score is P(second)."""

OPTIONS: dict[str, Option] = {
    "model": Option(str, None, "vllm: the reward model's folder or Hugging Face id (default: the "
                    "policy's model string); openai: the served model name (default: the "
                    "server's first)"),
    "endpoint": Option(str, None, "openai: URL of a vLLM server running the reward model with "
                       "--runner pooling --convert classify"),
    "mode": Option(str, "judge", "judge (a chat model asked whether the answer is correct, "
                   "scored P(Yes)) or classify (a sequence-classification reward model)"),
    "template": Option(str, JUDGE_TEMPLATE.replace("\n", "\\n"),
                       "judge: the question asked, with {question} and {answer}; \\n is a newline"),
    "label": Option(int, None, "the class whose value is the score, for a model with several"),
    "max_model_len": Option(int, 2048, "vllm: the scorer engine's context length"),
    "kv_cache_memory_bytes": Option(int, None, "vllm: the scorer engine's KV cache; default 512M "
                                    "on CPU"),
    "gpu_memory_utilization": Option(float, None, "vllm: the scorer engine's GPU memory fraction"),
    "dtype": Option(str, None, "vllm: weights dtype; default float32 on CPU"),
}

_ENGINE_KEYS = ("max_model_len", "kv_cache_memory_bytes", "gpu_memory_utilization", "dtype")

# The options a score depends on (recorded with a run; a resume must score the same way).
SCORE_SETTINGS = ("model", "mode", "template", "label", "logits")


@dataclass(frozen=True, slots=True)
class ScorerSpec:
    """One reward-model scorer a live run serves: the policy's declaration and its options."""

    name: str
    options: Mapping[str, Any]
    logits: bool

    @property
    def judge(self) -> bool:
        return self.options["mode"] == "judge"

    @property
    def template(self) -> str:
        return self.options["template"].replace("\\n", "\n")

    @property
    def settings(self) -> dict[str, Any]:
        values = {**self.options, "logits": self.logits}
        return {f"{PREFIX}{self.name}.{k}": values[k] for k in SCORE_SETTINGS}


def split_options(items: Sequence[str]) -> tuple[list[str], list[str]]:
    """``--backend-option`` items: the backend's own, and the ``scorer.`` ones."""
    mine = [i for i in items if i.strip().startswith(PREFIX)]
    return [i for i in items if not i.strip().startswith(PREFIX)], mine


def scorer_specs(
    items: Sequence[str], policy, read: Sequence[str], backend: str
) -> list[ScorerSpec]:
    """The specs of the reward-model scorers the policy reads (``read``), from the ``scorer.``
    options; refused, before anything runs: an option for a scorer the policy does not read, an
    option the backend does not take, a scorer the backend cannot serve without one (openai:
    no endpoint), a bad mode or template."""
    declared = {s.name: s for s in policy.scorers if s.kind == "reward_model"}
    grouped: dict[str, list[str]] = {name: [] for name in read}
    for item in items:
        name, dot, rest = item.strip()[len(PREFIX):].partition(".")
        if not dot or not name:
            raise UserError(f"--backend-option {item!r}: expected scorer.NAME.KEY=VALUE")
        if name not in grouped:
            raise UserError(
                f"--backend-option {item!r}: the policy reads no reward-model scorer {name!r}",
                hint=f"the reward-model scorers it reads: {', '.join(read) or 'none'}",
            )
        grouped[name].append(rest)
    specs = []
    for name, own in grouped.items():
        options = parse_options(own, OPTIONS, f"scorer {name} of the {backend}")
        where = f"scorer {name} ({backend} backend)"
        if backend == "openai":
            given = sorted(k for k in _ENGINE_KEYS if options[k] != OPTIONS[k].default)
            if given:
                raise UserError(f"{where}: {given[0]} sizes an in-process engine",
                                hint="the server at scorer.NAME.endpoint sizes its own")
            if not options["endpoint"]:
                raise UserError(
                    f"the policy reads the reward model of scorer {name!r}, but no server "
                    "scores for it",
                    hint=f"--backend-option {PREFIX}{name}.endpoint=URL: a vLLM server of the "
                    "model started with --runner pooling --convert classify (README, live runs)",
                )
        else:
            if options["endpoint"]:
                raise UserError(f"{where}: endpoint is for --backend openai",
                                hint=f"{PREFIX}{name}.model=FOLDER loads the model in-process")
            if options["model"] is None:
                options["model"] = declared[name].model
            if not options["model"]:
                raise UserError(f"the policy reads scorer {name!r}, which names no reward model",
                                hint=f"--backend-option {PREFIX}{name}.model=FOLDER_OR_HF_ID")
        if options["mode"] not in ("judge", "classify"):
            raise UserError(f"--backend-option {PREFIX}{name}.mode={options['mode']!r}: "
                            "expected judge or classify")
        spec = ScorerSpec(name=name, options=options, logits=declared[name].logits)
        if spec.judge:
            _check_template(spec)
        specs.append(spec)
    return specs


def _check_template(spec: ScorerSpec) -> None:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(spec.template) if f is not None}
    except ValueError as error:
        raise UserError(f"--backend-option {PREFIX}{spec.name}.template: {error}",
                        hint="write a literal brace as {{ or }}") from None
    if fields != {"question", "answer"}:
        raise UserError(
            f"--backend-option {PREFIX}{spec.name}.template has fields {sorted(fields)}",
            hint="the judge template needs exactly {question} and {answer}",
        )


def question(queries: LiveQueries, query_id: str) -> str:
    """The question a judge sees: the query's prompt, or its chat's last user message."""
    users = [m["content"] for m in queries.messages(query_id) if m["role"] == "user"]
    return users[-1] if users else ""


def conversation(spec: ScorerSpec, queries: LiveQueries, query_id: str, text: str) -> list[dict]:
    """What the reward model reads of one sample (module docstring: ``mode``)."""
    if spec.judge:
        content = spec.template.format(question=question(queries, query_id), answer=text)
        return [{"role": "user", "content": content}]
    return [*queries.messages(query_id), {"role": "assistant", "content": text}]


def pick(spec: ScorerSpec, values: Sequence[float]) -> float:
    """The score among a classifier's outputs: its only class, or ``label``."""
    label = spec.options["label"]
    if label is None:
        if len(values) != 1:
            raise BackendError(
                f"scorer {spec.name}: the reward model has {len(values)} classes",
                hint=f"--backend-option {PREFIX}{spec.name}.label=INDEX: the class that is "
                "the score",
            )
        label = 0
    if label >= len(values):
        raise BackendError(f"scorer {spec.name}: label {label} of a model with {len(values)} "
                           "classes")
    value = float(values[label])
    if not math.isfinite(value):
        raise BackendError(f"scorer {spec.name}: the reward model returned {value}")
    return value


# ------------------------------------------------------------------------------ in-process


def engine_arguments(spec: ScorerSpec, *, cpu: bool) -> dict[str, Any]:
    """``vllm.LLM`` keyword arguments of the scorer's pooling engine: the CPU settings of the
    generation engine (``vllm_backend.engine_arguments``), a smaller KV cache (a judge prompt is
    short and nothing is decoded), and for a judge the Yes/No classifier made from the LM head."""
    options = spec.options
    args: dict[str, Any] = {"model": options["model"], "runner": "pooling", "convert": "classify",
                            "max_model_len": options["max_model_len"]}
    for key in ("dtype", "kv_cache_memory_bytes", "gpu_memory_utilization"):
        if options[key] is not None:
            args[key] = options[key]
    if spec.judge:
        args["hf_overrides"] = {"classifier_from_token": list(JUDGE_TOKENS),
                                "method": "from_2_way_softmax"}
    if cpu:
        args.setdefault("dtype", "float32")
        args["enforce_eager"] = True
        if "gpu_memory_utilization" not in args:
            args.setdefault("kv_cache_memory_bytes", 512 << 20)
        args["distributed_executor_backend"] = "uni"
    return args


class VllmScorer:
    """A scorer's in-process pooling engine (``engine``: an existing one, left running)."""

    def __init__(self, spec: ScorerSpec, queries: LiveQueries, *, engine: Any = None) -> None:
        self.spec, self.queries = spec, queries
        self._llm = engine
        self._owned = engine is None

    def ready(self) -> None:
        """Load the engine (before the first round generates: a model that does not load costs
        no generation)."""
        if self._llm is not None:
            return
        try:
            import vllm
            from vllm.platforms import current_platform
        except ImportError as error:
            raise BackendError(f"the reward-model scorer needs vLLM ({error})") from None
        cpu = current_platform.is_cpu()
        if cpu:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        model = self.spec.options["model"]
        try:
            self._llm = vllm.LLM(**engine_arguments(self.spec, cpu=cpu))
        except (OSError, ValueError) as error:
            raise BackendError(f"scorer {self.spec.name}: vLLM could not load {model!r} as a "
                               f"{self.spec.options['mode']} reward model: {error}") from None

    def prompt_ids(self, query_id: str, text: str) -> list[int]:
        """The token ids of one sample's conversation through the model's chat template."""
        self.ready()
        tokenizer = self._llm.get_tokenizer()
        if not getattr(tokenizer, "chat_template", None):
            raise BackendError(f"scorer {self.spec.name}: {self.spec.options['model']} has no "
                               "chat template to put the sample to it")
        rendered = tokenizer.apply_chat_template(
            conversation(self.spec, self.queries, query_id, text), tokenize=False,
            add_generation_prompt=self.spec.judge,
        )
        return list(tokenizer.encode(rendered, add_special_tokens=False))

    def score(self, items: Sequence[tuple[str, str]]) -> list[float | str]:
        """Each ``(query_id, text)``'s score, or why it has none."""
        from vllm import PoolingParams

        self.ready()
        limit = self.spec.options["max_model_len"]
        out: list[float | str] = []
        prompts, where = [], []
        for query_id, text in items:
            ids = self.prompt_ids(query_id, text)
            if len(ids) > limit:
                out.append(f"scorer {self.spec.name}: the sample's {len(ids)}-token scoring "
                           f"prompt exceeds max_model_len {limit}")
                continue
            where.append(len(out))
            out.append(math.nan)
            prompts.append({"prompt_token_ids": ids})
        if prompts:
            params = PoolingParams(use_activation=not self.spec.logits)
            outputs = self._llm.classify(prompts, pooling_params=params, use_tqdm=False)
            for i, output in zip(where, outputs, strict=True):
                out[i] = pick(self.spec, output.outputs.probs)
        return out

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is None or not self._owned:
            return
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm, core
        gc.collect()


# ---------------------------------------------------------------------------------- server


class HttpScorer:
    """A scorer served by a vLLM server's ``/classify`` (one request per sample, a chat
    request: the server applies the model's chat template, as the in-process scorer does)."""

    def __init__(self, spec: ScorerSpec, queries: LiveQueries, options: Mapping[str, Any]) -> None:
        from ttcdsl.runtime.openai_backend import OpenAIBackend

        self.spec, self.queries = spec, queries
        # The generation backend's timeout, retries, backoff and key; the scorer's model name.
        self._client = OpenAIBackend([spec.options["endpoint"]],
                                     {**options, "model": spec.options["model"]}, queries)

    def ready(self) -> None:
        # Discovers the served model: an unreachable server fails here, before generating.
        self._client.model  # noqa: B018

    def score(self, items: Sequence[tuple[str, str]]) -> list[float | str]:
        from ttcdsl.runtime.openai_backend import _Refused

        model = self._client.model
        bodies = [(query_id, {
            "model": model,
            "messages": conversation(self.spec, self.queries, query_id, text),
            "add_generation_prompt": self.spec.judge,
            "use_activation": not self.spec.logits,
        }) for query_id, text in items]

        def parse(payload):
            try:
                values = payload["data"][0]["probs"]
            except (KeyError, IndexError, TypeError) as error:
                raise _Refused(f"malformed /classify response ({type(error).__name__}: "
                               f"{error})") from None
            return pick(self.spec, values)

        outcomes = asyncio.run(self._client.post_all("/classify", bodies, parse))
        return [o if isinstance(o, str) else float(o) for o in outcomes]

    def close(self) -> None:
        """Nothing stays open between rounds."""


# --------------------------------------------------------------------------------- wrapper


class ScoringBackend:
    """A live backend whose samples come back scored by every scorer (``scorers``: name ->
    :class:`VllmScorer` or :class:`HttpScorer`); everything else is the inner backend's."""

    # not the inner backend's (__getattr__): samples are scored only once the whole round is
    # back, so no result is complete, and stored, before the round ends
    streams_results = False

    def __init__(self, inner, scorers: Mapping[str, Any]) -> None:
        self.inner = inner
        self.scorers = dict(scorers)
        self._ready = False

    def __getattr__(self, name: str):  # the rest of the backend (prompt_token_counts, ...)
        if name == "inner":  # not yet set (copying): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def model(self):
        return self.inner.model

    @property
    def capabilities(self):
        return self.inner.capabilities

    @property
    def settings(self) -> dict[str, Any]:
        out = dict(self.inner.settings)
        for scorer in self.scorers.values():
            out.update(scorer.spec.settings)
        return out

    def generate(self, requests, stops=None):
        # The stop tests are not passed on: a stop rule may read these scores, which exist only
        # once the round's samples are scored, so nothing is cancelled here; the executor still
        # finds each stop point and keeps the samples past it out of every decision.
        del stops
        if not self._ready:
            for scorer in self.scorers.values():
                scorer.ready()
            self._ready = True
        results = self.inner.generate(requests)
        items = [(r.query_id, s.text or "") for r in results for s in r.samples]
        scores = {name: scorer.score(items) for name, scorer in self.scorers.items()}
        return attach_scores(results, scores)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            for scorer in self.scorers.values():
                scorer.close()


def with_scorers(backend, specs: Sequence[ScorerSpec], queries: LiveQueries,
                 options: Mapping[str, Any]):
    """``backend`` scoring its samples with ``specs`` (itself when there are none): in-process
    engines for ``vllm``, the servers' ``/classify`` with the backend's ``options`` (timeout,
    retries, key) for ``openai``."""
    if not specs:
        return backend
    if backend.name == "vllm":
        scorers = {s.name: VllmScorer(s, queries) for s in specs}
    else:
        scorers = {s.name: HttpScorer(s, queries, options) for s in specs}
    return ScoringBackend(backend, scorers)


def attach_scores(results: Sequence[GenerationResult],
                  scores: Mapping[str, Sequence[float | str]]) -> list[GenerationResult]:
    """The results with each sample's scores (``scores[name]``: one per sample of ``results``,
    in order; a string is why that sample has none). A query's samples end at its first sample
    without a score, as at a failed generation: the reason becomes its shortfall's."""
    out, k = [], 0
    for result in results:
        kept, reason = [], None
        for sample in result.samples:
            values = {name: column[k] for name, column in scores.items()}
            k += 1
            if reason is not None:
                continue
            failed = [v for v in values.values() if isinstance(v, str)]
            if failed:
                reason = failed[0]
                continue
            kept.append(replace(sample, scores={**sample.scores, **values}))
        if reason is None:
            out.append(replace(result, samples=tuple(kept)))
        else:
            cut = len(result.samples) - len(kept)
            out.append(replace(result, samples=tuple(kept),
                               shortfall=result.shortfall + cut, reason=reason))
    return out
