"""Benchmark: how much a run could know, before it spends, about which CRUXEval queries are
solvable at all -- the knowledge the static oracle has and elimination lacks (issue 15's bar of
60% of the static oracle's coverage gain at mean budgets 3 and 4).

    python bench/solvability.py          # a few seconds; reads ../shared/data

With a gold scorer, elimination already serves every query round-robin until its first correct
sample (the dynamic oracle). Beyond that, a policy would have to tell, among the queries whose
samples so far all failed, the solvable ones from the hopeless ones. Two kinds of signal exist:

* the failed samples themselves: how many, and how many distinct answers they gave. The table
  below is the chance that the next sample is correct in each state (pooled over 20 random orders
  of every query): if it varied a lot between states of the same depth, a learned skip could
  rank queries by it;
* the prompt: the function's length and lines, the length of the side of the call it shows (and,
  for reference, of the answer, which no run knows in advance). Their AUC
  for "solvable within the 10 logged samples" says how well each ranks solvable above hopeless
  (0.5: no better than chance), over all queries and over those whose first sample failed.

Measured (CodeLlama-7B x10 pools): after a failure, the next sample succeeds 1-6% of the time in
every state, with little ordering between states of one depth; the prompt features' AUCs are
0.48-0.62. Neither separates the hopeless queries well enough to move a budget of 3-4 samples
per query toward the solvable ones, which is what the remaining 40% of the oracle's gain needs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ORDERS = 20


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """The chance that a positive outranks a negative (ties count half)."""
    ranks = np.argsort(np.argsort(score, kind="stable"), kind="stable") + 1.0
    # average ranks over ties
    for value in np.unique(score):
        tied = score == value
        ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main() -> int:
    pools, problems = DATA / "pools", DATA / "problems" / "cruxeval.jsonl"
    if not problems.is_file():
        print(f"solvability: the shared data is not here ({DATA}); nothing to measure", file=sys.stderr)
        return 0
    code = {}
    for line in problems.read_text().splitlines():
        row = json.loads(line)
        code[row["id"]] = row
    rng = np.random.default_rng(0)
    for task in ("input", "output"):
        doc = json.loads((pools / f"cruxeval_{task}_codellama7b_x10.json").read_text())
        ids = sorted(doc["raw_generations"])
        answers = [[a.strip() for a in doc["raw_generations"][q]] for q in ids]
        correct = np.array([doc["raw_scored_generations"][q] for q in ids], dtype=bool)
        solvable = correct.any(1)
        print(f"CRUXEval-{task}: {len(ids)} queries, {solvable.mean():.1%} solvable within "
              f"{correct.shape[1]} samples, pass@1 {correct.mean():.1%}")
        hits, seen = {}, {}
        for i in range(len(ids)):
            for _ in range(ORDERS):
                order = rng.permutation(correct.shape[1])
                for k in range(1, correct.shape[1]):
                    if correct[i, order[k - 1]]:
                        break
                    state = (k, min(3, len({answers[i][j] for j in order[:k]})))
                    seen[state] = seen.get(state, 0) + 1
                    hits[state] = hits.get(state, 0) + int(correct[i, order[k]])
        print("  P(next sample correct | k failed samples, distinct answers among them):")
        for k in range(1, 6):
            cells = [f"{d} distinct {hits[(k, d)] / seen[(k, d)]:.3f} (n {seen[(k, d)]})"
                     for d in (1, 2, 3) if seen.get((k, d))]
            print(f"    k={k}: " + "; ".join(cells))
        # the prompt shows the function and the other side of the call: the output when the
        # task predicts the input, the input when it predicts the output
        given = "output" if task == "input" else "input"
        features = {
            "code length": [len(code[q]["code"]) for q in ids],
            "code lines": [code[q]["code"].count("\n") for q in ids],
            f"{given} length (in the prompt)": [len(code[q][given]) for q in ids],
            f"{task} length (the answer: not known in advance)": [len(code[q][task]) for q in ids],
        }
        first_failed = ~correct[:, 0]
        print("  AUC of 'solvable' (shorter = easier; 0.5 = chance): all queries / first sample failed")
        for name, values in features.items():
            score = -np.asarray(values, dtype=float)
            print(f"    {name}: {auc(score, solvable):.3f} / "
                  f"{auc(score[first_failed], solvable[first_failed]):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
