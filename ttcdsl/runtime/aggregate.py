"""A query's final answer from its samples, per bin strategy.

The rules are those the planner simulated (:func:`ttcdsl.curves.montecarlo.outcome`), so that
the accuracy a plan predicts is the accuracy of the answers the run gives:

``majority_vote``
    The canonical answer with the most samples; samples without an answer do not vote; a tie goes
    to the tied answer that appeared first. No answer at all: no answer.
``weighted_vote(s)``
    The answer with the largest sum of its samples' vote weights; ties to the answer that
    appeared first; only answers that occur compete. A weight is positive and increasing in the
    scorer's value (``exp`` of the mean log-probability for ``confidence``, the score itself for a
    reward model in [0, 1], the label for ``gold``; an unknown value weighs 0), so every extra
    sample adds to its answer: :func:`ttcdsl.features.weights.vote_weights`, the rule the curves
    and the planner use too.
``best_of_n(s)``
    The answer of the sample with the highest known score among samples that have an answer;
    ties to the earliest sample. A sample without an answer, or without a score, never wins.
``keep_probe``
    Majority vote over the probe's samples (the first ``probe``), as if nothing more were spent.
``single``
    The first sample's answer (possibly none).

Scorers: ``confidence`` reads the sample's mean token log-probability, ``gold`` its label
(1.0 / 0.0), a reward model the score of its name.

The answer is right when the chosen sample (for votes: the first sample with the winning answer)
is labelled correct; samples with the same canonical answer carry the same label.

No answer (no sample, or no sample with an answer) is WRONG when the source is labelled
(``labelled=True``: the table or dataset has gold labels), even if the query got no sample at
all: a query the budget starved must not drop out of the accuracy. Unlabelled, it is unknown;
so is coverage (and a missing answer's correctness) when a sample the query got with an answer
has no label. A sample without an answer is never right, labelled or not: a query whose samples
all lack an answer is wrong where the source is labelled, even if some of them are unlabelled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ttcdsl.features.scorers import as_read
from ttcdsl.features.weights import vote_weights
from ttcdsl.lang import ir
from ttcdsl.samples.schema import SampleRow

# The version of these rules, stored in each run report (``outcome_rules``): the audit of a
# finished run scores its stored samples again, and a run scored before a rule changed must be
# told apart from one whose figures were edited. 2: a sample without an answer is never right,
# labelled or not (before, unnumbered: an unlabelled one left its query's outcome unknown).
OUTCOME_RULES = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The final answer of one query: ``pick`` indexes the chosen sample (``None``: no answer);
    ``correct`` is ``None`` when the chosen sample is unlabelled; ``covered`` says whether any
    sample is labelled correct (``None`` when no sample is labelled)."""

    answer: str | None
    pick: int | None
    correct: bool | None
    covered: bool | None


def score_of(row: SampleRow, scorer: ir.Scorer | None) -> float:
    """Scorer value of one sample; NaN when unknown."""
    if scorer is None:
        return math.nan
    if scorer.kind == "confidence":
        value = row.mean_logprob
    elif scorer.kind == "gold":
        value = None if row.correct is None else float(row.correct)
    else:
        value = row.scores.get(scorer.name)
        if value is not None:
            value = as_read(scorer, float(value))
    return math.nan if value is None else float(value)


def _majority(rows: Sequence[SampleRow]) -> int | None:
    votes: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, row in enumerate(rows):
        if row.answer is not None:
            votes[row.answer] = votes.get(row.answer, 0) + 1
            first.setdefault(row.answer, i)
    if not votes:
        return None
    best = max(votes.values())
    return min(first[a] for a, v in votes.items() if v == best)


def _weighted(rows: Sequence[SampleRow], scorer: ir.Scorer | None) -> int | None:
    sums: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, row in enumerate(rows):
        if row.answer is None:
            continue
        weight = (
            0.0 if scorer is None
            else float(vote_weights(scorer.kind, score_of(row, scorer), scorer.name))
        )
        sums[row.answer] = sums.get(row.answer, 0.0) + weight
        first.setdefault(row.answer, i)
    if not sums:
        return None
    best = max(sums.values())
    return min(first[a] for a, v in sums.items() if v == best)


def _best(rows: Sequence[SampleRow], scorer: ir.Scorer | None) -> int | None:
    pick, best = None, -math.inf
    for i, row in enumerate(rows):
        s = score_of(row, scorer)
        if row.answer is None or not math.isfinite(s):
            continue
        if pick is None or s > best:
            pick, best = i, s
    return pick


def aggregate(
    strategy: ir.Strategy,
    rows: Sequence[SampleRow],
    *,
    scorers: Sequence[ir.Scorer] = (),
    probe: int = 0,
    labelled: bool = False,
) -> Outcome:
    """The final answer of one query's ``rows`` (in sample order) under ``strategy``;
    ``labelled``: the source has gold labels, so no answer is wrong (module docstring)."""
    scorer = next((s for s in scorers if s.name == strategy.scorer), None)
    if strategy.scorer is not None and scorer is None:
        raise ValueError(f"strategy {strategy.kind} names unknown scorer {strategy.scorer!r}")
    match strategy.kind:
        case "majority_vote":
            pick = _majority(rows)
        case "weighted_vote":
            pick = _weighted(rows, scorer)
        case "best_of_n":
            pick = _best(rows, scorer)
        case "keep_probe":
            pick = _majority(rows[:probe])
        case "single":
            pick = 0 if rows else None
        case other:
            raise ValueError(f"unknown strategy {other!r}")
    labels = [r.correct for r in rows if r.correct is not None]
    # a sample of unknown label may be the correct one: a query is uncovered (or answerless and
    # wrong) only when every sample it got is labelled, or has no answer (one cut at max_tokens
    # cannot be the right one, whatever its missing label would say: an answerless query with
    # such a sample read "unknown" under a report that says no answer counts as wrong)
    known = all(r.correct is not None or r.answer is None for r in rows)
    covered = True if any(labels) else (False if known and (labels or labelled) else None)
    if pick is None:
        wrong = known and (bool(labels) or labelled)
        return Outcome(answer=None, pick=None, correct=False if wrong else None, covered=covered)
    chosen = rows[pick]
    correct = chosen.correct
    if correct is None and chosen.answer is not None:
        # another sample with the same canonical answer may carry the label
        correct = next(
            (r.correct for r in rows if r.answer == chosen.answer and r.correct is not None), None
        )
    return Outcome(answer=chosen.answer, pick=pick, correct=correct, covered=covered)
