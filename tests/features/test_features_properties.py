"""Vectorised evaluator == the plain-Python reference, on random batches and random expressions;
first_stop == a loop over rows and checkpoints."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.features import reference
from tests.features.strategies import (
    SPAN,
    apply,
    batch_of,
    conditions,
    const,
    numbers,
    obs,
    rows,
    same_numbers,
    scramble,
)
from ttcdsl.features import NEVER, evaluate, first_stop, holds
from ttcdsl.lang import ir
from ttcdsl.lang.vocabulary import OBSERVABLES, Type

FEATURE_NAMES = ("agreement", "probe_len")
AGREEMENT = ir.Apply(
    function="top_share", args=(ir.ObservableRef(name="answers", span=SPAN),), span=SPAN
)

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def cases(
    draw: st.DrawFn, max_rows: int = 6
) -> tuple[list[reference.Row], dict, dict, int]:
    """Rows, the reference's features, the evaluator's features, extra padding columns."""
    data = draw(st.lists(rows(), min_size=0, max_size=max_rows))
    probe = draw(
        st.lists(
            st.integers(0, 64).map(lambda k: k / 4),
            min_size=len(data),
            max_size=len(data),
        )
    )
    ref_features = {"agreement": AGREEMENT, "probe_len": probe}
    features = {"agreement": AGREEMENT, "probe_len": np.array(probe, dtype=np.float64)}
    return data, ref_features, features, draw(st.integers(0, 2))


@SETTINGS
@given(case=cases(), expr=numbers(FEATURE_NAMES), seed=st.integers(0, 2**32 - 1))
def test_expressions_match_the_reference(case, expr, seed):
    data, ref_features, features, pad = case
    batch = batch_of(data, width=max((len(r.answers) for r in data), default=0) + pad)
    expected = [reference.number(expr, data, i, ref_features) for i in range(len(data))]
    got = evaluate(expr, batch, features)
    assert got.dtype == np.float64 and got.shape == (len(data),)
    assert same_numbers(got, expected), (expr, got, expected)
    # Sparse, row-specific ids and garbage padding change nothing (up to the order in which an
    # entropy adds its terms).
    again = evaluate(expr, scramble(batch, seed), features)
    assert same_numbers(again, got.tolist(), rtol=1e-12), (expr, again, got)


def _reference_is_ambiguous(condition, data, i, ref_features, batch, features) -> bool:
    """True when the two sides are equal within rounding and the evaluator's values differ from
    the reference's in the last digits: the comparison could then legitimately go either way."""
    if not isinstance(condition, ir.Threshold):
        return False
    a = reference.number(condition.left, data, i, ref_features)
    b = reference.number(condition.right, data, i, ref_features)
    mine_a = evaluate(condition.left, batch, features)[i]
    mine_b = evaluate(condition.right, batch, features)[i]
    exact = (a == mine_a or (math.isnan(a) and math.isnan(mine_a))) and (
        b == mine_b or (math.isnan(b) and math.isnan(mine_b))
    )
    close = not (math.isnan(a) or math.isnan(b)) and math.isclose(
        a, b, rel_tol=1e-9, abs_tol=1e-12
    )
    return close and not exact


@SETTINGS
@given(
    case=cases(), condition=conditions(FEATURE_NAMES), seed=st.integers(0, 2**32 - 1)
)
def test_conditions_match_the_reference(case, condition, seed):
    data, ref_features, features, pad = case
    batch = batch_of(data, width=max((len(r.answers) for r in data), default=0) + pad)
    got = holds(condition, batch, features)
    assert got.dtype == np.bool_ and got.shape == (len(data),)
    for i in range(len(data)):
        if _reference_is_ambiguous(condition, data, i, ref_features, batch, features):
            continue
        assert bool(got[i]) == reference.holds(condition, data, i, ref_features), (
            condition,
            i,
        )
    np.testing.assert_array_equal(
        holds(condition, scramble(batch, seed), features), got
    )


@st.composite
def stop_cases(draw: st.DrawFn):
    data = draw(st.lists(rows(max_samples=12), min_size=0, max_size=12))
    width = max((len(r.answers) for r in data), default=0) + draw(st.integers(0, 2))
    rules = draw(
        st.lists(
            conditions(("agreement",), batch_relative=False), min_size=1, max_size=3
        )
    )
    every = st.just(list(range(width + 1)))
    checkpoints = draw(
        st.one_of(every, st.lists(st.integers(0, width + 2), min_size=1, max_size=8))
    )
    return data, width, rules, checkpoints


def loop_first_stop(rules, batch, checkpoints, features) -> np.ndarray:
    """first_stop the slow way: every row alone, every checkpoint in turn, holds on the prefix."""
    out = np.full(batch.n_rows, NEVER, dtype=np.int64)
    for b in range(batch.n_rows):
        row = batch.take([b])
        for t in sorted(set(checkpoints)):
            if t > row.lengths[0]:
                continue
            if any(bool(holds(rule, row.prefix(t), features)[0]) for rule in rules):
                out[b] = t
                break
    return out


@settings(SETTINGS, max_examples=500)
@given(case=stop_cases(), seed=st.integers(0, 2**32 - 1))
def test_first_stop_matches_a_loop_over_rows_and_checkpoints(case, seed):
    data, width, rules, checkpoints = case
    batch = scramble(batch_of(data, width=width), seed)
    features = {"agreement": AGREEMENT}
    got = first_stop(rules, batch, checkpoints, features)
    assert got.dtype == np.int64 and got.shape == (len(data),)
    np.testing.assert_array_equal(
        got, loop_first_stop(rules, batch, checkpoints, features)
    )


def _per_query_leaves() -> list[ir.Expr]:
    """Every number a per-query condition can read directly: observables and functions."""
    prm = ir.ScorerRef(name="prm", span=SPAN)
    return [
        *(obs(n) for n, o in OBSERVABLES.items() if o.type is Type.NUMBER),
        *(
            apply(f, obs("answers"))
            for f in ("top_share", "distinct", "answer_entropy", "count")
        ),
        *(apply(f, obs("tokens")) for f in ("mean", "min", "max", "std", "count")),
        apply("score", prm),
        apply("mean", apply("scores", prm)),
    ]


@pytest.mark.parametrize("leaf", _per_query_leaves(), ids=lambda e: _render(e))
def test_first_stop_of_every_statistic_matches_the_loop(leaf):
    """Each statistic alone, on a random batch with thresholds at its own quantiles: the running
    vote counts and the row compaction of first_stop must agree with recounting every prefix."""
    rng = np.random.default_rng(zlib.crc32(_render(leaf).encode()))
    data = [
        reference.Row(
            answers=[
                rng.choice(["a", "b", "c", None], p=[0.55, 0.2, 0.1, 0.15])
                for _ in range(n)
            ],
            tokens=[float(rng.integers(0, 100)) for _ in range(n)],
            logprob=[-rng.integers(0, 32) / 16 for _ in range(n)],
            correct=[float(rng.random() < 0.3) for _ in range(n)],
            scores={
                s: [rng.integers(0, 17) / 16 for _ in range(n)] for s in ("prm", "conf")
            },
            prompt_nll=float(rng.integers(0, 8)),
        )
        for n in rng.integers(0, 13, size=120)
    ]
    batch = scramble(batch_of(data), int(rng.integers(2**32)))
    values = evaluate(leaf, batch)
    cuts = (
        np.unique(np.nanquantile(values, [0.2, 0.5, 0.8]))
        if not np.isnan(values).all()
        else [0.5]
    )
    for cut in cuts:
        for op in (">=", "<=", "==", "!="):
            rule = ir.Threshold(
                left=leaf, op=op, right=const(float(cut)), after=None, span=SPAN
            )
            checkpoints = range(batch.width + 1)
            got = first_stop([rule], batch, checkpoints)
            np.testing.assert_array_equal(
                got, loop_first_stop([rule], batch, checkpoints, {})
            )


def _render(expr: ir.Expr) -> str:
    match expr:
        case ir.ObservableRef(name=name) | ir.ScorerRef(name=name):
            return name
        case ir.Apply(function=function, args=args):
            return f"{function}({', '.join(_render(a) for a in args)})"
    return type(expr).__name__


@settings(max_examples=100, deadline=None)
@given(
    data=st.lists(rows(max_samples=12), min_size=1, max_size=12),
    rule=conditions(batch_relative=False),
)
def test_first_stop_agrees_with_the_reference_on_whole_rows(data, rule):
    """One checkpoint per sample count, against the reference's per-row prefixes (no rounding
    ambiguity arises for rules that the reference decides with a margin)."""
    batch = batch_of(data)
    got = first_stop([rule], batch, range(batch.width + 1))
    for b, row in enumerate(data):
        stops = [
            t
            for t in range(len(row.answers) + 1)
            if reference.holds(rule, [row.prefix(t)], 0, {})
        ]
        if stops and isinstance(rule, ir.Threshold):
            # Skip rows where any prefix sits on the threshold within rounding.
            near = False
            for t in range(len(row.answers) + 1):
                a = reference.number(rule.left, [row.prefix(t)], 0, {})
                c = reference.number(rule.right, [row.prefix(t)], 0, {})
                near |= (
                    not (math.isnan(a) or math.isnan(c))
                    and a != c
                    and math.isclose(a, c, rel_tol=1e-9, abs_tol=1e-12)
                )
            if near:
                continue
        assert got[b] == (stops[0] if stops else NEVER), (rule, row)
