"""`ttc compare` judges a policy against uniform at equal spend in its budget's unit: a policy
whose batch budget is in tokens is compared with uniform at the samples that bill its tokens,
and one that charges prompt tokens runs on a table that logs them (as `ttc run` does)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.paths import REPO
from ttcdsl.cli import main
from ttcdsl.compare.baselines import exact_curves
from ttcdsl.curves.pool import QueryPool
from ttcdsl.datasets.split import split_ids
from ttcdsl.samples import load, save

POLICIES = REPO / "policies"


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    from ttcdsl.workloads import builtin_workload

    table, _ = builtin_workload(n_queries=400, n_samples=16, seed=5)
    path = tmp_path_factory.mktemp("w") / "workload.jsonl"
    save(table, path)
    return path


def _compare(policy, table, tmp_path, *flags) -> dict:
    out = tmp_path / "cmp"
    assert main(["compare", str(policy), "--samples", str(table), "--repeats", "2",
                 "--out", str(out), "--format", "json", "--no-simulate", *flags]) == 0
    (row,) = json.loads((out / "compare.json").read_text())["rows"]
    return row


def _evaluation(path):
    table = load(path)
    _, evaluation = split_ids(table.query_ids(), fraction=0.5, seed=0)
    return table.where(query_ids=evaluation)


@pytest.mark.slow
def test_a_token_budget_is_compared_with_uniform_at_equal_tokens(workload, tmp_path):
    """token_budget (total tokens, prompts charged) runs (it was refused: compare gave the
    replay no prompt bounds), and uniform's samples are the run's billed tokens over uniform's
    own billed tokens per sample, recomputed here from the table's columns."""
    row = _compare(POLICIES / "token_budget.ttc", workload, tmp_path)
    assert "error" not in row, row.get("error")
    assert row["equal_spend"] == "tokens"

    table = _evaluation(workload)
    max_tokens = 2048  # token_budget's global max_tokens: uniform is served under it
    per_query = {}
    for qid, rows in table.by_query().items():
        completion = np.minimum(np.asarray(table.completion_tokens[rows], float), max_tokens)
        prompt = int(np.ma.MaskedArray(table.prompt_tokens[rows]).max())
        per_query[qid] = completion.mean() + prompt
    per_sample = float(np.mean(list(per_query.values())))
    expected = row["tokens_per_query"] / per_sample
    assert row["uniform_samples_per_query"] == pytest.approx(expected, rel=1e-9)
    # the policy sends long-answer queries more samples: uniform gets more samples than it
    assert row["uniform_samples_per_query"] > row["samples_per_query"] + 0.5

    pool = QueryPool.from_table(table)
    from ttcdsl.planner.calibration import cut_pool

    cut, _ = cut_pool(pool, np.full(pool.answer.shape, np.nan), max_tokens)
    curves = exact_curves(cut, "majority_vote")
    # over the two orders the run's tokens differ a little: uniform's value is at their mean
    assert row["uniform"] == pytest.approx(curves.mean_at(row["uniform_samples_per_query"]), abs=2e-3)
    assert curves.mean_at(row["uniform_samples_per_query"]) > curves.mean_at(row["samples_per_query"])


def test_the_table_shows_where_uniform_was_matched_in_tokens():
    from ttcdsl.compare.render import row_cells

    base = {"policy": "p", "budget": None, "samples_per_query": 6.0, "max_samples": 12,
            "tokens_per_query": 8000.0, "accuracy": 0.7, "coverage": 0.8, "metric": "accuracy",
            "uniform": 0.69, "uniform_same_orders": 0.70, "static_oracle": 0.8,
            "dynamic_oracle": 0.9, "oracle_share": 0.1, "efficiency": 1.1, "diff": 0.01,
            "ci": [-0.01, 0.03], "verdict": "no better than uniform at equal spend: +1.0 points"}
    tokens = row_cells({**base, "equal_spend": "tokens", "uniform_samples_per_query": 7.96})
    assert tokens[6] == "0.690 / 0.700 at 7.96 (equal tokens)"
    unknown = row_cells({**base, "equal_spend": "samples, NOT the tokens the budget is in",
                         "uniform_samples_per_query": 6.0})
    assert unknown[6].endswith("(equal samples: token counts unknown)")
    assert row_cells({**base, "equal_spend": "samples", "uniform_samples_per_query": 6.0})[6] \
        == "0.690 / 0.700"


@pytest.mark.slow
def test_a_token_budget_without_token_counts_stays_at_equal_samples_and_says_so(tmp_path):
    """An evaluation table that logged no completion token counts (the calibration table did):
    uniform cannot be matched in tokens, so it is matched in samples, and the row says that
    this is not the budget's unit."""
    import dataclasses

    from ttcdsl.workloads import builtin_workload

    table, _ = builtin_workload(n_queries=300, n_samples=8, seed=2)
    calibration_ids, evaluation_ids = split_ids(table.query_ids(), fraction=0.5, seed=0)
    calibration = tmp_path / "calibration.jsonl"
    save(table.where(query_ids=calibration_ids), calibration)
    evaluation = table.where(query_ids=evaluation_ids)
    unknown = np.ma.masked_all(len(evaluation.query_id), dtype=np.int64)
    path = tmp_path / "no_tokens.jsonl"
    save(dataclasses.replace(evaluation, completion_tokens=unknown), path)
    text = (POLICIES / "token_budget.ttc").read_text()
    # a key that reads no token counts, so the evaluation table can serve the policy
    text = text.replace("feature length = mean(tokens) / 2048", "feature length = 0")
    policy = tmp_path / "tokens_unread.ttc"
    policy.write_text(text)
    row = _compare(policy, path, tmp_path, "--calibration", str(calibration))
    assert "error" not in row, row.get("error")
    assert row["tokens_per_query"] is None
    assert row["equal_spend"].startswith("samples, NOT the tokens")
    assert row["uniform_samples_per_query"] == pytest.approx(row["samples_per_query"])
