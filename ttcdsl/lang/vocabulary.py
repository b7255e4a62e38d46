"""Every name the language gives meaning to, with its signature: the single source of truth for
the checker, the lowering, `ttc explain` texts and the runtime's evaluators."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Type(enum.Enum):
    NUMBER = "a number"
    NUMBERS = "a list of numbers (one per sample)"
    ANSWERS = "the answers of the samples"
    LIST = "a list (answers or numbers)"  # parameter only: accepts NUMBERS or ANSWERS
    SCORER = "a scorer name"

    def accepts(self, actual: Type) -> bool:
        if self is Type.LIST:
            return actual in (Type.NUMBERS, Type.ANSWERS)
        return self is actual


@dataclass(frozen=True, slots=True, kw_only=True)
class Function:
    name: str
    params: tuple[Type, ...]
    result: Type
    doc: str
    batch_relative: bool = False  # depends on the whole batch, not just one query


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function(name="top_share", params=(Type.ANSWERS,), result=Type.NUMBER,
                 doc="share of samples that gave the most common answer"),
        Function(name="answer_entropy", params=(Type.ANSWERS,), result=Type.NUMBER,
                 doc="entropy (nats) of the answer distribution"),
        Function(name="distinct", params=(Type.ANSWERS,), result=Type.NUMBER,
                 doc="number of distinct answers"),
        Function(name="mean", params=(Type.NUMBERS,), result=Type.NUMBER, doc="the mean of a list of numbers"),
        Function(name="min", params=(Type.NUMBERS,), result=Type.NUMBER, doc="the smallest of a list of numbers"),
        Function(name="max", params=(Type.NUMBERS,), result=Type.NUMBER, doc="the largest of a list of numbers"),
        Function(name="std", params=(Type.NUMBERS,), result=Type.NUMBER,
                 doc="the population standard deviation of a list of numbers"),
        Function(name="count", params=(Type.LIST,), result=Type.NUMBER, doc="the number of items in a list"),
        Function(name="clip", params=(Type.NUMBER, Type.NUMBER, Type.NUMBER), result=Type.NUMBER,
                 doc="clip(x, lo, hi): x limited to [lo, hi]"),
        Function(name="normalize", params=(Type.NUMBER,), result=Type.NUMBER,
                 doc="min-max rescaling of x over the batch to [0, 1]", batch_relative=True),
        Function(name="score", params=(Type.SCORER,), result=Type.NUMBER,
                 doc="best score of any sample so far under the scorer"),
        Function(name="scores", params=(Type.SCORER,), result=Type.NUMBERS,
                 doc="the scorer's score of each sample"),
    )
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Observable:
    name: str
    type: Type
    doc: str
    needs_gold: bool = False


# Bare names readable in expressions: per-sample observables and per-query metrics.
OBSERVABLES: dict[str, Observable] = {
    o.name: o
    for o in (
        Observable(name="answers", type=Type.ANSWERS, doc="extracted, canonical answers"),
        Observable(name="tokens", type=Type.NUMBERS, doc="completion tokens of each sample"),
        Observable(name="logprobs", type=Type.NUMBERS, doc="mean token log-probability of each sample"),
        Observable(name="correct", type=Type.NUMBERS, doc="1 if the sample matches the gold answer, else 0",
                   needs_gold=True),
        Observable(name="prompt_nll", type=Type.NUMBER, doc="mean negative log-likelihood of the prompt tokens"),
        Observable(name="top_share", type=Type.NUMBER, doc="top_share(answers)"),
        Observable(name="beta_confidence", type=Type.NUMBER,
                   doc="Adaptive-Consistency: posterior probability that the leading answer stays ahead"),
        Observable(name="samples", type=Type.NUMBER, doc="number of samples so far"),
    )
}


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyKind:
    name: str
    takes_scorer: bool
    is_aggregation: bool  # may be used in `answer`
    doc: str


STRATEGIES: dict[str, StrategyKind] = {
    s.name: s
    for s in (
        StrategyKind(name="majority_vote", takes_scorer=False, is_aggregation=True,
                     doc="most common canonical answer; ties to the earliest first occurrence"),
        StrategyKind(name="best_of_n", takes_scorer=True, is_aggregation=True,
                     doc="answer of the highest-scoring sample"),
        StrategyKind(name="weighted_vote", takes_scorer=True, is_aggregation=True,
                     doc="answer with the largest sum of vote weights (exp of a confidence, a score in [0, 1])"),
        StrategyKind(name="keep_probe", takes_scorer=False, is_aggregation=False,
                     doc="spend nothing beyond the probe; majority vote over the probe"),
        StrategyKind(name="single", takes_scorer=False, is_aggregation=False,
                     doc="one sample, its answer"),
    )
}

# What the observables and functions whose values are bounded can reach (None: unbounded), for
# the check of stop and solved-rule thresholds, tuned or plain (TTC606): (low, high).
VALUE_RANGES: dict[str, tuple[float | None, float | None]] = {
    "top_share": (0.0, 1.0),
    "beta_confidence": (0.0, 1.0),
    "answer_entropy": (0.0, None),
    "distinct": (0.0, None),
    "count": (0.0, None),
    "samples": (0.0, None),
    "prompt_nll": (0.0, None),  # a negative log-likelihood: log-probabilities are <= 0
    "std": (0.0, None),  # a standard deviation
    "normalize": (0.0, 1.0),  # min-max rescaled over the batch
}

SCORER_KINDS = {
    "reward_model": "a reward model scoring each sample (needs the model name or path)",
    "confidence": "mean token log-probability of the sample, from the backend's logprobs",
    "gold": "1 if the sample matches the gold answer (offline evaluation only)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SamplingParam:
    name: str
    integer: bool
    low: float | None
    high: float | None
    low_open: bool = False  # low excluded
    doc: str = ""


SAMPLING_PARAMS: dict[str, SamplingParam] = {
    p.name: p
    for p in (
        SamplingParam(name="temperature", integer=False, low=0, high=None),
        SamplingParam(name="top_p", integer=False, low=0, high=1, low_open=True),
        SamplingParam(name="top_k", integer=True, low=-1, high=None, doc="-1 disables"),
        SamplingParam(name="min_p", integer=False, low=0, high=1),
        SamplingParam(name="max_tokens", integer=True, low=1, high=None),
        SamplingParam(name="logprobs", integer=True, low=0, high=20),
        SamplingParam(name="seed", integer=True, low=0, high=2**63 - 1),
        SamplingParam(name="presence_penalty", integer=False, low=-2, high=2),
        SamplingParam(name="frequency_penalty", integer=False, low=-2, high=2),
        SamplingParam(name="repetition_penalty", integer=False, low=0, high=None, low_open=True),
    )
}

# Under `allocate optimal` and `allocate per query` the planner gives every query at least this
# many samples, probe or not, unless `samples per query in LO..HI` asks for more: a query with
# no sample has no answer. The checker (TTC400) and the planner share it.
DEFAULT_MIN_SAMPLES = 1

UNITS = ("samples", "tokens")
OBJECTIVES = ("accuracy", "coverage")
EXPLORE_RULES = ("all", "ucb", "gap", "entropy")
BIN_METHODS = ("quantiles", "thresholds")
