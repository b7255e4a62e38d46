"""Vectorised evaluator == the plain-Python reference, on random batches and random expressions;
first_stop == a loop over rows and checkpoints."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.features import reference
from tests.features.strategies import (
    SPAN,
    batch_of,
    conditions,
    numbers,
    rows,
    same_numbers,
    scramble,
)
from ttcdsl.features import NEVER, evaluate, first_stop, holds
from ttcdsl.lang import ir

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
            conditions(("agreement",), batch_relative=False), min_size=0, max_size=3
        )
    )
    checkpoints = draw(st.lists(st.integers(0, width + 2), max_size=8))
    return data, width, rules, checkpoints


@SETTINGS
@given(case=stop_cases(), seed=st.integers(0, 2**32 - 1))
def test_first_stop_matches_a_loop_over_rows_and_checkpoints(case, seed):
    data, width, rules, checkpoints = case
    batch = scramble(batch_of(data, width=width), seed)
    features = {"agreement": AGREEMENT}
    got = first_stop(rules, batch, checkpoints, features)
    assert got.dtype == np.int64 and got.shape == (len(data),)
    for b in range(len(data)):
        expected = NEVER
        row = batch.take([b])
        for t in sorted(set(checkpoints)):
            if t > len(data[b].answers):
                continue
            prefix = row.prefix(t)
            if any(bool(holds(rule, prefix, features)[0]) for rule in rules):
                expected = t
                break
        assert got[b] == expected, (b, rules, checkpoints)


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
