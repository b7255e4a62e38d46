"""Queries where one canonical answer is labelled both right and wrong.

A grader that disagrees with itself (two graders, a timed-out math check) or answers
canonicalised too coarsely leave a table whose labels are not a function of the answer. The
figures then disagree by construction: the exact curves of ``ttc plan`` and ``ttc compare``
credit a vote for such an answer as right when ANY of its samples is labelled right
(:class:`ttcdsl.curves.pool.QueryPool`), while a replay (``ttc run``) scores the label of the
sample it drew (:mod:`ttcdsl.runtime.aggregate`). ``ttc import``, ``ttc plan``, ``ttc compare``
and ``ttc run`` say so, with one example, from this one check.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ttcdsl.samples.schema import SamplesTable


class LabelConflict(NamedTuple):
    """One query's answer logged with both labels: how many samples say right and wrong."""

    query_id: str
    answer: str
    right: int
    wrong: int


def label_conflicts(table: SamplesTable) -> list[LabelConflict]:
    """Per query, the first answer (in sample order) whose labelled samples disagree; one per
    query, so the count is of queries. Unlabelled samples and samples without an answer are not
    compared."""
    labelled = ~np.ma.getmaskarray(table.correct)
    labels = np.ma.filled(table.correct, False)
    out = []
    for query_id, rows in table.by_query().items():
        tally: dict[str, list[int]] = {}
        for i in rows:
            answer = table.answer[i]
            if answer is None or not labelled[i]:
                continue
            tally.setdefault(str(answer), [0, 0])[0 if labels[i] else 1] += 1
        for answer, (right, wrong) in tally.items():
            if right and wrong:
                out.append(LabelConflict(str(query_id), answer, right, wrong))
                break
    return out


# The phrase every label-conflict warning carries: a command that already warned of a whole table
# (ttc compare) leaves out the same warning its per-policy plans repeat of their calibration part.
CONFLICT_PHRASE = "one answer is labelled both right and wrong"


def is_label_conflict_warning(warning: str) -> bool:
    return CONFLICT_PHRASE in warning


def label_conflict_warning(table: SamplesTable, name: str) -> str | None:
    """What a command says of ``table`` (named ``name``) when some answer carries both labels;
    None when none does."""
    found = label_conflicts(table)
    if not found:
        return None
    first = found[0]
    n_queries = len(table.by_query())
    return (f"in {len(found)} of {n_queries} queries of {name} {CONFLICT_PHRASE} "
            f"(e.g. {first.query_id!r}: answer {first.answer!r} on {first.right} "
            f"sample(s) labelled right, {first.wrong} labelled wrong; a grader that disagrees with "
            "itself, or answers canonicalised too coarsely): plan and compare count a vote for "
            "such an answer right when any of its samples is, a replay scores the label of the "
            "sample it drew, so predicted and replayed accuracy disagree there; fix the labels "
            "(one label per answer of a query) before trusting either figure")
