"""Hypothesis strategies: random rows of samples and random expressions from the vocabulary.

Numbers are drawn on exact binary grids (whole token counts, logprobs and scores in sixteenths)
so that sums are exact and the reference and the evaluator can only differ by the rounding of a
final division or square root, never by summation order.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tests.features.reference import NAN, Row
from ttcdsl.features.batch import SampleBatch
from ttcdsl.lang import ir
from ttcdsl.lang.source import Span
from ttcdsl.lang.vocabulary import FUNCTIONS, OBSERVABLES, Type

SPAN = Span(start=0, end=0, line=1, column=1, end_line=1, end_column=1)
SCORERS = ("prm", "conf")
ANSWERS = ("a", "b", "c", 7, None)


def maybe(values: st.SearchStrategy[float]) -> st.SearchStrategy[float]:
    return st.one_of(st.just(NAN), values)


TOKENS = maybe(st.integers(0, 4096).map(float))
LOGPROB = maybe(st.integers(-64, 0).map(lambda k: k / 16))
CORRECT = maybe(st.sampled_from([0.0, 1.0]))
SCORE = maybe(st.integers(0, 16).map(lambda k: k / 16))
PROMPT_NLL = maybe(st.integers(0, 40).map(lambda k: k / 8))


@st.composite
def rows(draw: st.DrawFn, max_samples: int = 9) -> Row:
    n = draw(st.integers(0, max_samples))

    def column(values: st.SearchStrategy[float]) -> list[float]:
        return draw(st.lists(values, min_size=n, max_size=n))

    return Row(
        answers=draw(st.lists(st.sampled_from(ANSWERS), min_size=n, max_size=n)),
        tokens=column(TOKENS),
        logprob=column(LOGPROB),
        correct=column(CORRECT),
        scores={name: column(SCORE) for name in SCORERS},
        prompt_nll=draw(PROMPT_NLL),
    )


def batch_of(data: list[Row], width: int | None = None) -> SampleBatch:
    return SampleBatch.from_lists(
        [r.answers for r in data],
        tokens=[r.tokens for r in data],
        logprob=[r.logprob for r in data],
        correct=[r.correct for r in data],
        scores={name: [r.scores[name] for r in data] for name in SCORERS},
        prompt_nll=[r.prompt_nll for r in data],
        width=width,
    )


def scramble(batch: SampleBatch, seed: int) -> SampleBatch:
    """The same samples with sparse, row-specific answer ids and garbage in the padding: the
    evaluator must only read valid columns and only compare ids within a row."""
    rng = np.random.default_rng(seed)
    n_rows, width = batch.answer.shape
    mapping = (
        rng.permutation(10_000)[: n_rows * (width + 1)].reshape(n_rows, width + 1) + 100
    )
    ids = np.take_along_axis(
        mapping, np.maximum(batch.answer, 0).astype(np.int64), axis=1
    )
    real = batch.valid & (batch.answer >= 0)
    pad = ~batch.valid
    garbage = rng.integers(-1, 50, size=batch.answer.shape)
    answer = np.where(real, ids, np.where(pad, garbage, -1)).astype(np.int32)

    def dirty(values: np.ndarray) -> np.ndarray:
        return np.where(pad, rng.normal(size=values.shape) * 1e6, values)

    return SampleBatch(
        answer=answer,
        valid=batch.valid,
        tokens=dirty(batch.tokens),
        logprob=dirty(batch.logprob),
        correct=dirty(batch.correct),
        scores={name: dirty(values) for name, values in batch.scores.items()},
        prompt_nll=batch.prompt_nll,
    )


# ---- expressions --------------------------------------------------------------------------


def obs(name: str) -> ir.ObservableRef:
    return ir.ObservableRef(name=name, span=SPAN)


def apply(function: str, *args: ir.Expr) -> ir.Apply:
    return ir.Apply(function=function, args=args, span=SPAN)


def const(value: float) -> ir.Const:
    return ir.Const(value=value, span=SPAN)


NUMBER_LISTS = st.one_of(
    st.sampled_from([obs(n) for n, o in OBSERVABLES.items() if o.type is Type.NUMBERS]),
    st.sampled_from(
        [apply("scores", ir.ScorerRef(name=s, span=SPAN)) for s in SCORERS]
    ),
)
ANSWER_LISTS = st.just(obs("answers"))
CONSTANTS = st.sampled_from(
    [-1.0, 0.0, 0.25, 0.5, 0.75, 0.95, 1.0, 2.0, 3.0, 1024.0]
).map(const)


def number_leaves(feature_names: tuple[str, ...]) -> st.SearchStrategy[ir.Expr]:
    by_param = {
        Type.ANSWERS: ANSWER_LISTS,
        Type.NUMBERS: NUMBER_LISTS,
        Type.LIST: st.one_of(ANSWER_LISTS, NUMBER_LISTS),
        Type.SCORER: st.sampled_from(SCORERS).map(
            lambda s: ir.ScorerRef(name=s, span=SPAN)
        ),
    }
    calls = [
        st.tuples(*(by_param[p] for p in f.params)).map(
            lambda args, name=f.name: apply(name, *args)
        )
        for f in FUNCTIONS.values()
        if f.result is Type.NUMBER and Type.NUMBER not in f.params
    ]
    observables = st.sampled_from(
        [obs(n) for n, o in OBSERVABLES.items() if o.type is Type.NUMBER]
    )
    leaves = [CONSTANTS, observables, *calls]
    if feature_names:
        leaves.append(
            st.sampled_from(feature_names).map(
                lambda n: ir.FeatureRef(name=n, span=SPAN)
            )
        )
    return st.one_of(*leaves)


def numbers(
    feature_names: tuple[str, ...] = (), *, batch_relative: bool = True
) -> st.SearchStrategy[ir.Expr]:
    """NUMBER-typed expressions: every number-valued function and observable, arithmetic, clip
    and (unless excluded) normalize."""

    def extend(inner: st.SearchStrategy[ir.Expr]) -> st.SearchStrategy[ir.Expr]:
        options = [
            st.tuples(st.sampled_from("+-*/"), inner, inner).map(
                lambda t: ir.Arith(op=t[0], left=t[1], right=t[2], span=SPAN)
            ),
            inner.map(lambda e: ir.Neg(operand=e, span=SPAN)),
            st.tuples(inner, inner, inner).map(lambda t: apply("clip", *t)),
        ]
        if batch_relative:
            options.append(inner.map(lambda e: apply("normalize", e)))
        return st.one_of(*options)

    return st.recursive(number_leaves(feature_names), extend, max_leaves=6)


def conditions(
    feature_names: tuple[str, ...] = (), *, batch_relative: bool = True
) -> st.SearchStrategy[ir.Condition]:
    expr = numbers(feature_names, batch_relative=batch_relative)
    threshold = st.builds(
        lambda left, op, right, after: ir.Threshold(
            left=left, op=op, right=right, after=after, span=SPAN
        ),
        expr,
        st.sampled_from([">=", "<=", ">", "<", "==", "!="]),
        st.one_of(CONSTANTS, expr),
        st.one_of(st.none(), st.integers(1, 6)),
    )
    window = st.builds(
        lambda k, disjoint: ir.UnanimousWindow(last=k, disjoint=disjoint, span=SPAN),
        st.integers(1, 5),
        st.booleans(),
    )
    return st.one_of(threshold, window)


def same_numbers(mine: np.ndarray, reference: list[float], rtol: float = 1e-9) -> bool:
    """Equal up to a last-digit rounding, NaN equal to NaN, infinities equal."""
    expected = np.array(reference, dtype=np.float64)
    return mine.shape == expected.shape and bool(
        np.all(
            np.isclose(mine, expected, rtol=rtol, atol=1e-12, equal_nan=True)
            | (mine == expected)
        )
    )
