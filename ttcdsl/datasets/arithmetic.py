"""The built-in question set for live runs: addition questions with gold answers, made here.

A small instruct model (SmolLM2-135M-Instruct) has a real spread of success rates on them: sums
of single digits are mostly right, two-digit sums with a carry mostly wrong, so a calibration
pass sees easy and hard queries and an adaptive policy has something to allocate. The set is a
pure function of ``(count, seed)``: the operands come from SHA-256 of (seed, index), never from a
random generator whose algorithm could change between Python versions, and the query ids carry
the seed, so sets made with different seeds (a calibration set and an evaluation set) never
share an id.

Levels cycle by index: ``0`` one digit + one digit, ``1`` two digits + one digit without a carry,
``2`` two digits + two digits with a carry in the ones.
"""

from __future__ import annotations

import hashlib

from ttcdsl.datasets.schema import Dataset, Query

PROMPT = "What is {a} + {b}? Answer with a number."


def _draw(seed: int, index: int, what: str, low: int, high: int) -> int:
    digest = hashlib.sha256(f"ttcdsl.arithmetic.v1\0{seed}\0{index}\0{what}".encode()).digest()
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


def _operands(seed: int, index: int) -> tuple[int, int]:
    level = index % 3
    if level == 0:
        return _draw(seed, index, "a", 1, 9), _draw(seed, index, "b", 1, 9)
    if level == 1:  # no carry: the ones digits sum to at most 9
        a = _draw(seed, index, "a", 10, 89)
        return a, _draw(seed, index, "b", 0, 9 - a % 10)
    while True:  # a carry in the ones; redrawn (deterministically) until there is one
        a = _draw(seed, index, "a", 10, 89)
        b = _draw(seed, index, f"b{a}", 10, 89)
        if a % 10 + b % 10 >= 10:
            return a, b
        index += 3 * 1_000_003  # another draw for the same slot, still a function of the inputs


def arithmetic_questions(count: int = 30, seed: int = 0) -> Dataset:
    """``count`` addition questions (module docstring), kind ``math``, gold the sum."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    queries = []
    for i in range(count):
        a, b = _operands(seed, i)
        queries.append(Query(
            id=f"arith-s{seed}-{i:03d}", kind="math", prompt=PROMPT.format(a=a, b=b),
            gold=str(a + b), meta={"a": a, "b": b, "level": i % 3},
        ))
    return Dataset(name=f"arithmetic-s{seed}", queries=tuple(queries),
                   source=f"ttcdsl built-in arithmetic (count {count}, seed {seed})")
