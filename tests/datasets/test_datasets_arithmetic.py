"""The built-in arithmetic question set: a pure function of (count, seed), levels as documented,
gold answers recomputed from the prompts' own text, and `ttc queries arithmetic`."""

from __future__ import annotations

import re

import pytest

from ttcdsl.cli import main
from ttcdsl.datasets import read_queries
from ttcdsl.datasets.arithmetic import arithmetic_questions


def _operands(prompt: str) -> tuple[int, int]:
    a, b = re.fullmatch(r"What is (\d+) \+ (\d+)\? Answer with a number\.", prompt).groups()
    return int(a), int(b)


def test_the_set_is_pinned_and_its_gold_is_the_sum() -> None:
    d = arithmetic_questions(60, seed=0)
    # Pinned: a change here changes every calibration made on the set.
    assert [q.prompt for q in d.queries[:3]] == [
        "What is 4 + 8? Answer with a number.",
        "What is 53 + 5? Answer with a number.",
        "What is 24 + 46? Answer with a number.",
    ]
    assert arithmetic_questions(60, seed=0) == d
    for i, q in enumerate(d):
        a, b = _operands(q.prompt)
        assert q.gold == str(a + b) and q.kind == "math" and q.id == f"arith-s0-{i:03d}"
        if i % 3 == 0:
            assert 1 <= a <= 9 and 1 <= b <= 9
        elif i % 3 == 1:
            assert 10 <= a <= 89 and 0 <= b <= 9 and a % 10 + b <= 9
        else:
            assert 10 <= a <= 89 and 10 <= b <= 89 and a % 10 + b % 10 >= 10


def test_seeds_give_other_questions_and_never_the_same_ids() -> None:
    one, two = arithmetic_questions(30, seed=0), arithmetic_questions(30, seed=1)
    assert not set(one.ids()) & set(two.ids())
    assert [q.prompt for q in one] != [q.prompt for q in two]
    with pytest.raises(ValueError, match="count"):
        arithmetic_questions(0)


def test_ttc_queries_arithmetic(tmp_path) -> None:
    out = tmp_path / "q.jsonl"
    assert main(["queries", "arithmetic", "--count", "7", "--seed", "3", "-o", str(out)]) == 0
    assert read_queries(out).ids() == arithmetic_questions(7, seed=3).ids()
