"""The protocol every generation backend speaks: requests in, samples out, one batch per round.

The runtime executes a plan round by round. Each round it hands the backend ONE list of
:class:`GenerationRequest` values (one per query still running) and gets back one
:class:`GenerationResult` per request, in request order. Keeping the whole round in one call lets
``vllm`` batch every query's samples together and lets ``openai`` spread them over its server pool.

Samples of a query are numbered ``0, 1, 2, ...`` across rounds; a request says where its samples
start (``first_sample_index``), so a round that asks for 2 more samples of a query that already has
3 gets samples 3 and 4. Per-sample seeds are a function of ``(run seed, query id, sample index)``
(:func:`sample_seed`), never of the round structure, so a larger allocation extends a smaller one
and a resumed run continues where it stopped.

A backend never invents samples: when it cannot produce what was asked (a replay log ran out, a
query it does not know) it returns fewer and says so in :attr:`GenerationResult.shortfall` and
:attr:`GenerationResult.reason`.

Fire-and-cancel: a round may ask several samples of a query whose stop rule is checked after
every sample. The runtime then passes ``stops`` to ``generate``: per request, ``None`` or a
:data:`StopTest`, called with the CONTIGUOUS prefix of the request's samples returned so far (in
sample-index order, from ``first_sample_index``) each time it grows; once it answers ``True`` the
rule holds within that prefix and the backend cancels the request's samples not made yet (not
sent, or aborted in flight) and says how many in :attr:`GenerationResult.cancelled`. Samples that
came back before the cancel took effect were generated: they are returned (the runtime stores and
bills them, and uses only the prefix up to the stop point), so past the stop point the returned
indices may have gaps. A backend that cannot cancel may ignore ``stops``; the runtime finds the
stop point itself after the round either way. A cancelled request is not a sample: nothing of its
partial generation is returned or measured.

A backend whose ``streams_results`` is true also takes ``on_result``: ``generate`` calls
``on_result(i, result)`` on the calling thread as soon as request ``i``'s result is complete, before
the round ends, so the runtime stores each request's samples as they come back (a kill later in
the round loses none of them). The others' results are stored when ``generate`` returns.

This module imports nothing heavy (no jax, no vllm): the concrete backends live in their own modules.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ttcdsl.errors import UserError
from ttcdsl.lang.vocabulary import SAMPLING_PARAMS
from ttcdsl.samples.schema import SampleRow

if TYPE_CHECKING:
    from ttcdsl.lang.ir import Sampling

_EMPTY: Mapping[str, float] = MappingProxyType({})
_SEED_DOMAIN = "ttcdsl.sample_seed.v1"
SEED_BITS = 63
"""Seeds are non-negative and fit a signed 64-bit integer (vLLM, the OpenAI API, the samples
table's ``seed`` column all accept that range)."""


class BackendError(UserError):
    """A backend failed in a way the user can act on (a missing log, an unreachable server, a model
    that does not load). Programming errors in the runtime's requests are ``ValueError``."""


def sample_seed(run_seed: int, query_id: str, sample_index: int) -> int:
    """The seed of sample ``sample_index`` of ``query_id`` in a run seeded ``run_seed``.

    A SHA-256 of the three values (JSON-encoded, so no two triples share an encoding), cut to
    :data:`SEED_BITS` bits. Python's ``hash()`` is salted per process and would break resumption
    across processes; this is the same on every machine and every version.
    """
    for name, value in (("run_seed", run_seed), ("sample_index", sample_index)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if not isinstance(query_id, str):
        raise ValueError(f"query_id must be a string, got {query_id!r}")
    if sample_index < 0:
        raise ValueError(f"sample_index must be >= 0, got {sample_index}")
    payload = json.dumps([_SEED_DOMAIN, run_seed, query_id, sample_index], ensure_ascii=False)
    digest = hashlib.sha256(payload.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - SEED_BITS)


# ------------------------------------------------------------------------------------ requests

_OPTIONAL_SAMPLING = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "logprobs",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
)


def _check_param(name: str, value: Any) -> None:
    """Range-check a sampling parameter against the policy language's own table of ranges, so a
    request can hold exactly what a policy can say."""
    if value is None:
        return
    spec = SAMPLING_PARAMS[name]
    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_real = is_int or isinstance(value, float)
    if (spec.integer and not is_int) or not is_real or not math.isfinite(value):
        kind = "an integer" if spec.integer else "a finite number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    low_ok = spec.low is None or (value > spec.low if spec.low_open else value >= spec.low)
    high_ok = spec.high is None or value <= spec.high
    if not (low_ok and high_ok):
        low = "" if spec.low is None else f"{spec.low} {'<' if spec.low_open else '<='} "
        high = "" if spec.high is None else f" <= {spec.high}"
        raise ValueError(f"{name} must satisfy {low}{name}{high}, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """``n`` more samples of one query, numbered from ``first_sample_index``.

    The sampling fields mirror :class:`ttcdsl.lang.ir.Sampling` (``None``: the backend's default;
    ``max_tokens`` is always given, because budgets are counted in tokens). ``seed`` is the RUN
    seed; the per-sample seeds are :attr:`seeds`. ``prompt`` may be empty for backends that do not
    generate (replay).
    """

    query_id: str
    n: int
    max_tokens: int
    first_sample_index: int = 0
    prompt: str = ""
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    logprobs: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.query_id, str) or not self.query_id:
            raise ValueError(f"query_id must be a non-empty string, got {self.query_id!r}")
        if not isinstance(self.prompt, str):
            raise ValueError(f"prompt must be a string, got {type(self.prompt).__name__}")
        for name, low in (("n", 1), ("first_sample_index", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in ("max_tokens", "seed", *_OPTIONAL_SAMPLING):
            if name == "max_tokens" and self.max_tokens is None:
                raise ValueError("max_tokens is required")
            _check_param(name, getattr(self, name))

    @property
    def sample_indices(self) -> range:
        """The indices the returned samples get: ``first_sample_index .. + n - 1``."""
        return range(self.first_sample_index, self.first_sample_index + self.n)

    @property
    def seeds(self) -> tuple[int, ...] | None:
        """Per-sample seeds (:func:`sample_seed`), or ``None`` when the run has no seed."""
        if self.seed is None:
            return None
        return tuple(sample_seed(self.seed, self.query_id, i) for i in self.sample_indices)

    @property
    def sampling(self) -> dict[str, Any]:
        """The sampling parameters that are set (the backend's defaults fill the rest)."""
        names = ("max_tokens", *_OPTIONAL_SAMPLING)
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}

    @classmethod
    def from_sampling(
        cls,
        sampling: Sampling,
        *,
        query_id: str,
        n: int,
        first_sample_index: int = 0,
        prompt: str = "",
    ) -> GenerationRequest:
        """A request with a bin's merged sampling parameters (its ``seed`` is the run seed)."""
        params = {f.name: getattr(sampling, f.name) for f in fields(sampling)}
        unknown = sorted(set(params) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"sampling parameter {unknown[0]!r} has no request field")
        return cls(
            query_id=query_id,
            n=n,
            first_sample_index=first_sample_index,
            prompt=prompt,
            **params,
        )


# ------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneratedSample:
    """One sample as a backend returns it.

    ``answer`` is the canonical answer when the backend knows it (replay: the logged one) and
    ``None`` otherwise; whether ``None`` means "no answer" or "extract it from ``text``" is said by
    :attr:`BackendCapabilities.answers`. ``correct`` is ``None`` unless the backend knows the label
    (replay from a labelled log). Unknown token counts and logprobs are ``None``, never guessed.
    ``source_index`` is provenance: for replay, the logged ``sample_index`` this sample was.
    ``logged``: the sample was served from a log, not drawn for this request, so its row carries
    the log's ``temperature`` (None where the log kept none), never the request's: a replayed
    sample was not drawn at the plan's temperature, and its row must not say it was.
    Values are checked once, by the samples schema, when the runtime turns the sample into a row
    (:meth:`to_row`); serving stays cheap.
    """

    sample_index: int
    text: str | None = None
    answer: str | None = None
    correct: bool | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    mean_logprob: float | None = None
    prompt_nll: float | None = None  # the prompt's mean token NLL (nats), where measured
    scores: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    seed: int | None = None
    source_index: int | None = None
    logged: bool = False
    temperature: float | None = None  # the log's (read only when ``logged``)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", MappingProxyType(dict(self.scores)))

    def to_row(
        self, query_id: str, *, round: int, temperature: float | None = None
    ) -> SampleRow:
        """The samples-table row of this sample (the schema checks every value here);
        ``temperature``: the request's, which a logged sample replaces with its log's."""
        return SampleRow(
            query_id=query_id,
            sample_index=self.sample_index,
            round=round,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            finish_reason=self.finish_reason,
            text=self.text,
            answer=self.answer,
            correct=self.correct,
            mean_logprob=self.mean_logprob,
            prompt_nll=self.prompt_nll,
            scores=self.scores,
            temperature=self.temperature if self.logged else temperature,
            seed=self.seed,
        )


StopTest = Callable[[Sequence[GeneratedSample]], bool]
"""Whether a query's stop rule holds at some sample count within the contiguous prefix of a
request's returned samples (module docstring: fire-and-cancel)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationResult:
    """The samples of one request. ``shortfall`` samples of those asked for could not be produced,
    for the ``reason`` given (required when ``shortfall > 0``). ``cancelled``: samples asked for
    but not made because the request's stop test held (module docstring)."""

    query_id: str
    samples: tuple[GeneratedSample, ...]
    shortfall: int = 0
    reason: str | None = None
    cancelled: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", tuple(self.samples))
        for name in ("shortfall", "cancelled"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.shortfall and not self.reason:
            raise ValueError("a shortfall needs a reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendCapabilities:
    """What the runtime may rely on from a backend.

    ``logprobs``: samples carry ``mean_logprob``. ``prompt_tokens``: samples carry prompt token
    counts. ``deterministic``: the same requests give the same samples (same seeds, same outputs).
    ``max_batch``: the most requests one ``generate`` call takes (``None``: no limit).
    ``labelled``: samples carry ``correct``. ``answers``: samples carry canonical answers, so
    ``answer=None`` means no answer and the runtime must not extract one from the text.
    """

    logprobs: bool
    prompt_tokens: bool
    deterministic: bool
    max_batch: int | None = None
    labelled: bool = False
    answers: bool = False

    def __post_init__(self) -> None:
        if self.max_batch is not None and (
            isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int)
            or self.max_batch < 1
        ):
            raise ValueError(f"max_batch must be a positive integer or None, got {self.max_batch!r}")


@runtime_checkable
class Backend(Protocol):
    """A source of samples: ``vllm`` (in-process engine), ``openai`` (HTTP server pool) or
    ``replay`` (logged samples).

    ``generate`` takes one round's requests and returns one result per request, in request order;
    a result's samples are numbered ``request.first_sample_index`` onwards, consecutively, and there
    are ``request.n`` of them unless ``shortfall`` says why not, or a stop test of ``stops`` held
    (``cancelled``; the module docstring). The runtime passes ``stops`` only when some request
    has a test, so a backend that never cancels may leave it out of its signature. ``close``
    releases the engine or the connections; it may be called more than once.
    """

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str | None: ...

    @property
    def capabilities(self) -> BackendCapabilities: ...

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        stops: Sequence[StopTest | None] | None = None,
    ) -> list[GenerationResult]: ...

    def close(self) -> None: ...
