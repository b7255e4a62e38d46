"""Whether a samples table's labels agree with the gold answers of its queries.

A table carries each sample's label as its log gave it; replay scores by that label and never
reads a queries file's gold. Where the two disagree, either the queries file is another task's
(ids such as "0", "1", ... collide across datasets) or the log's own grader erred (a Qwen2.5-Math
log marks "10000" wrong against the gold "10{,}000"). Either way the accuracy a replay reports
is the table's, and a user should hear of it: ``ttc import`` and ``ttc run`` say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ttcdsl.answers.canonical import canonicalize
from ttcdsl.answers.extract import gold_answer
from ttcdsl.samples.schema import SamplesTable


def gold_conflicts(table: SamplesTable, queries: Sequence[Any]) -> tuple[list[tuple[str, str]], bool]:
    """Queries whose gold answer contradicts the table's labels, with what contradicts it, and
    whether every query was checked (False: the math checks ran out, so there may be more).

    A sample whose answer is the gold (the same canonical form) labelled wrong contradicts it
    for every kind; a sample labelled right whose answer is not the gold does only where the
    canonical form is the whole rule (``multiple_choice``, ``exact``): a math checker may rule
    ``1/2`` and ``0.5`` equal, and code is judged by running it. For math such a sample is
    held to the gold by the math checker (``ttcdsl.answers.equivalent``), for at most
    ``MATH_CHECKS`` queries: a queries file of another math task is found from its first ones.
    Unlabelled samples, samples without an answer and queries without a string gold are not
    compared."""
    from ttcdsl.answers.correct import equivalent

    rows = table.by_query()
    forms: dict[tuple[str, str], str] = {}

    def form(answer: str, kind: str) -> str:
        if (answer, kind) not in forms:
            forms[(answer, kind)] = canonicalize(answer, kind)
        return forms[(answer, kind)]

    conflicts = []
    math_checks, complete = 0, True
    for query in queries:
        if not isinstance(query.gold, str) or query.kind == "code" or query.id not in rows:
            continue
        gold = form(gold_answer(query.gold, query.kind), query.kind)
        for i in rows[query.id]:
            answer, label = table.answer[i], table.correct[i]
            if answer is None or label is np.ma.masked:
                continue
            is_gold = form(str(answer), query.kind) == gold
            if is_gold and not label:
                conflicts.append((query.id, f"gold {query.gold!r}, yet a sample answering "
                                  f"{answer!r} is labelled wrong"))
                break
            if label and not is_gold:
                if query.kind == "math":
                    if math_checks >= MATH_CHECKS:
                        complete = False
                        continue
                    math_checks += 1
                    if equivalent(gold, str(answer), "math"):
                        continue
                conflicts.append((query.id, f"gold {query.gold!r}, yet a sample answering "
                                  f"{answer!r} is labelled right"))
                break
    return conflicts, complete


MATH_CHECKS = 20  # math-checker comparisons per call (each may take a worker round trip)
