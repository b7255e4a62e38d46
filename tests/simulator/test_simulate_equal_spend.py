"""`ttc simulate` compares a policy with uniform at equal spend, in the unit its budget is in.

A token-budgeted policy (`policies/token_budget.ttc`: a batch token limit, prompt tokens charged,
a bin with twice the max_tokens) used to be judged against uniform at equal SAMPLES, billed
without prompts: uniform then spent about two thirds of the policy's tokens and the verdict
compared unequal spends. Uniform is now matched on the policy's billed tokens per question.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttcdsl.cli import main

REPO = Path(__file__).resolve().parents[2]


def _simulate(name: str, capsys) -> dict:
    assert main(["simulate", str(REPO / "policies" / name), "--queries", "300", "--seeds", "4",
                 "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_token_budget_is_compared_with_uniform_at_equal_tokens(capsys) -> None:
    report = _simulate("token_budget.ttc", capsys)
    policy, uniform = report["simulated"], report["uniform"]
    assert report["equal_spend"] == "tokens"
    # uniform's tokens grow in proportion to its samples: one rescale matches the mean within
    # a per cent (its samples per question differ from the policy's: it spends them elsewhere)
    assert uniform["tokens"]["mean"] == pytest.approx(policy["tokens"]["mean"], rel=0.01)
    assert abs(uniform["samples"]["mean"] - policy["samples"]["mean"]) > 0.5
    # the oracle is offered uniform's samples; it spends what gains (no more than offered)
    assert report["oracle"]["offered"] == pytest.approx(uniform["samples"]["mean"], rel=2e-3)
    assert report["oracle"]["samples"] <= report["oracle"]["offered"] + 1e-9

    assert main(["simulate", str(REPO / "policies" / "token_budget.ttc"), "--queries", "300",
                 "--seeds", "4"]) == 0
    out = capsys.readouterr().out
    assert "equal spend is in tokens" in out
    assert f"{policy['tokens']['mean']:.0f} ±" in out


def test_a_sample_budget_is_compared_with_uniform_at_equal_samples(capsys) -> None:
    report = _simulate("early_stopping_sc.ttc", capsys)
    assert report["equal_spend"] == "samples"
    assert report["uniform"]["samples"]["mean"] == pytest.approx(report["simulated"]["samples"]["mean"], abs=0.02)
