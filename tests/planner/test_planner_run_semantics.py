"""The planner simulates what a run does: stop checks from the per-query minimum, counts capped at
what the calibration table can replay, max_tokens cuts as replay serves them, a bin's probe
priced at its members' real probes, quantile ties reported, and the spend's standard errors.
Each expected number is recomputed here from the table by the run's rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ttcdsl.errors import UserError
from ttcdsl.features.stop_check import first_stop_check
from ttcdsl.lang.api import parse_policy
from ttcdsl.lang.diagnostics import DiagnosticError
from ttcdsl.planner.build import make_plan
from ttcdsl.runtime.replay import replay_order
from ttcdsl.samples.schema import RunMeta, SampleRow, SamplesTable
from ttcdsl.samples.truncation import is_cut


def table_of(samples: dict[str, list[tuple[str | None, bool, int]]]) -> SamplesTable:
    """Per query, its samples as (answer, correct, completion tokens) in logged order."""
    rows = [
        SampleRow(query_id=q, sample_index=j, answer=a, correct=c, completion_tokens=t)
        for q, items in samples.items()
        for j, (a, c, t) in enumerate(items)
    ]
    return SamplesTable.from_rows(rows, meta=RunMeta())


def served(qid: str, items: list, seed: int = 0) -> list:
    """A query's samples in the order a replay with ``seed`` serves them (the planner's probe is
    the first ``probe`` of them)."""
    return [items[i] for i in replay_order(seed, qid, list(range(len(items))))]


# ------------------------------------------------------------------ b. stop checks: first count


STOP_FROM_MINIMUM = """
policy t "test"
budget {
  mean samples per query <= 8
  samples per query in 6..16
}
sampling { temperature 0.7 max_tokens 512 }
probe 2 samples
feature agreement = top_share(answers)
bins by agreement thresholds [0.5] as split, agreed
strategy split = majority_vote
strategy agreed = majority_vote
stop {
  when unanimous last 2
}
allocate optimal maximize accuracy
"""


def test_stop_rules_are_first_checked_at_the_per_query_minimum():
    policy = parse_policy(STOP_FROM_MINIMUM)
    assert first_stop_check(policy) == 6 == first_stop_check(policy, "agreed")
    # every sample agrees: a rule checked from the probe on would stop every query at 2
    table = table_of({f"q{i}": [("7", True, 100)] * 8 for i in range(10)})
    plan = make_plan(policy, table, cross_check=False, reps=8).plan
    agreed = plan["bins"][1]
    assert agreed["queries"] == 10
    assert list(agreed["curve"]["levels"]) == [6, 7, 8]  # the table holds 8 per query
    assert list(agreed["curve"]["samples"]) == [6.0, 6.0, 6.0]
    assert plan["predicted"]["samples"] == 6.0


def test_first_stop_check_takes_the_largest_of_probe_and_minimums():
    policy = parse_policy(
        """
policy t "test"
budget {
  mean samples per query <= 8
  samples per query in 1..16
  samples per query in 5..16 for hard
}
sampling { temperature 0.7 max_tokens 512 }
probe 3 samples
feature agreement = top_share(answers)
bins by agreement thresholds [0.5] as hard, easy
strategy hard = majority_vote
strategy easy = majority_vote
stop {
  when unanimous last 2
}
allocate optimal maximize accuracy
"""
    )
    assert first_stop_check(policy, "easy") == 3
    assert first_stop_check(policy, "hard") == 5


# ------------------------------------------ 3(ii). counts capped at the table's depth, extrapolation


DEEP = """
policy t "test"
budget {
  mean samples per query <= 20
  samples per query in 1..32
}
sampling { temperature 0.7 max_tokens 512 }
answer majority_vote
allocate optimal maximize accuracy
"""


def _mixed_table(m: int = 8, queries: int = 12) -> SamplesTable:
    rng = np.random.default_rng(0)
    return table_of(
        {
            f"q{i}": [("7", True, 100) if rng.random() < 0.6 else ("3", False, 100) for _ in range(m)]
            for i in range(queries)
        }
    )


def test_counts_stop_at_what_the_table_can_replay():
    result = make_plan(parse_policy(DEEP), _mixed_table(), cross_check=False, reps=8)
    assert result.curves.levels.max() == 8
    assert result.plan["calibration"]["extrapolated_beyond"] is None
    assert any("counts stop at 8 samples per query" in w for w in result.plan["warnings"])


def test_extrapolation_is_asked_for_and_recorded():
    result = make_plan(
        parse_policy(DEEP), _mixed_table(), cross_check=False, reps=8, extrapolate=True
    )
    assert result.curves.levels.max() == 32
    assert result.plan["calibration"]["extrapolated_beyond"] == 8
    assert any("extrapolated by the Dirichlet model" in w for w in result.plan["warnings"])


def test_a_fixed_count_past_the_depth_is_cut_to_it_and_said():
    policy = parse_policy(
        """
policy t "test"
sampling { temperature 0.7 max_tokens 512 }
answer majority_vote
allocate fixed 40 maximize accuracy
"""
    )
    plan = make_plan(policy, _mixed_table(), cross_check=False, reps=8).plan
    assert [a["samples"] for a in plan["bins"][0]["allocation"]] == [8]
    assert any("fixed 40 samples per query are cut to 8" in w for w in plan["warnings"])


def test_a_minimum_past_the_depth_needs_extrapolation():
    policy = parse_policy(DEEP.replace("1..32", "10..32"))
    with pytest.raises(UserError, match="only 8 for some query"):
        make_plan(policy, _mixed_table(), cross_check=False, reps=8)


# ------------------------------------------------ e. max_tokens cuts samples as replay serves them


def _fixed(max_tokens: int) -> str:
    return f"""
policy t "test"
sampling {{ temperature 0.7 max_tokens {max_tokens} }}
answer majority_vote
allocate fixed 4 maximize accuracy
"""


def test_max_tokens_cuts_calibration_samples_like_replay():
    # 3 long right samples, 1 short wrong one: cut at 1024, the right ones lose their answer
    table = table_of({f"q{i}": [("7", True, 2000)] * 3 + [("3", False, 100)] for i in range(6)})
    long = make_plan(parse_policy(_fixed(4096)), table, cross_check=False, reps=8).plan
    short = make_plan(parse_policy(_fixed(1024)), table, cross_check=False, reps=8).plan
    assert is_cut(2000, 1024) and not is_cut(2000, 4096) and not is_cut(None, 10)
    assert long["predicted"]["accuracy"] == 1.0
    assert long["predicted"]["tokens"] == 3 * 2000 + 100
    assert short["predicted"]["accuracy"] == 0.0
    assert short["predicted"]["tokens"] == 3 * 1024 + 100


# ---------------------------------- 3(iii). the spend's standard errors for the run's z-score


def test_the_plan_states_spend_and_its_standard_errors():
    rng = np.random.default_rng(1)
    samples = {
        f"q{i}": [("7", True, int(t)) for t in rng.integers(50, 900, size=5)] for i in range(9)
    }
    plan = make_plan(parse_policy(_fixed(512).replace("fixed 4", "fixed 5")), table_of(samples),
                     cross_check=False, reps=8).plan
    # every query spends all 5 of its samples: tokens are exact sums of the cut counts
    per_query = np.array([sum(min(t, 512) for _, _, t in items) for items in samples.values()])
    predicted = plan["predicted"]
    assert predicted["samples"] == 5.0 and predicted["samples_se"] == 0.0
    assert predicted["tokens"] == pytest.approx(per_query.mean())
    assert predicted["tokens_se"] == pytest.approx(per_query.std(ddof=1) / math.sqrt(len(per_query)))
    assert plan["bins"][0]["predicted"]["samples_se"] == 0.0


def test_a_sample_of_unknown_length_is_billed_its_max_tokens_as_the_run_bills_it():
    samples = {f"q{i}": [("7", True, 100), ("7", True, None), ("7", True, 100), ("7", True, 100)]
               for i in range(5)}
    plan = make_plan(parse_policy(_fixed(512)), table_of(samples), cross_check=False, reps=8).plan
    from ttcdsl.runtime.ledger import billed_tokens

    run_bill = sum(billed_tokens(t, None, max_tokens=512, charge_prompt=False)
                   for _, _, t in samples["q0"])
    assert plan["predicted"]["tokens"] == run_bill == 3 * 100 + 512


def test_spend_standard_errors_are_null_without_token_counts():
    samples = {f"q{i}": [("7", True, None)] * 4 for i in range(5)}
    plan = make_plan(parse_policy(_fixed(512)), table_of(samples), cross_check=False, reps=8).plan
    assert plan["predicted"]["tokens"] is None and plan["predicted"]["tokens_se"] is None
    assert plan["predicted"]["samples_se"] == 0.0


# --------------------------------------------------------------------------- 6. quantile ties


def test_quantile_ties_are_reported_with_their_share_and_empty_bins():
    policy = parse_policy(
        """
policy t "test"
budget { mean samples per query <= 4 }
sampling { temperature 0.7 max_tokens 512 }
probe 2 samples
feature agreement = top_share(answers)
difficulty = 1 - agreement
bins by difficulty quantiles [0.3, 0.6] as low, mid, high
strategy low = majority_vote
strategy mid = majority_vote
strategy high = majority_vote
allocate optimal maximize accuracy
"""
    )
    # 8 of 10 queries agree in every sample (difficulty exactly 0); 2 never agree
    samples = {f"a{i}": [("7", True, 100)] * 6 for i in range(8)}
    samples |= {f"d{i}": [(str(j), j == 0, 100) for j in range(6)] for i in range(2)}
    result = make_plan(policy, table_of(samples), cross_check=False, reps=8)
    (tie,) = result.plan["binning"]["ties"]
    assert tie["value"] == 0.0 and tie["tied_share"] == 0.8
    assert tie["cuts"] == [0.3, 0.6] and tie["empty_bins"] == ["mid"]
    assert [b["queries"] for b in result.plan["bins"]] == [0, 0, 10]
    assert any("80.0% of the calibration queries" in w and "'mid'" in w
               for w in result.plan["warnings"])


# ----------------------------------------- d. a bin's probe is priced at its members' real probes


BY_LENGTH = """
policy t "test"
budget {
  mean samples per query <= 4
  samples per query in 2..6
  mean tokens per query <= 100000 for long
}
sampling { temperature 0.7 max_tokens 4096 }
probe 2 samples
feature length = mean(tokens)
bins by length thresholds [500] as short, long
strategy short = majority_vote
strategy long = keep_probe
allocate optimal maximize accuracy
"""


def _by_length() -> dict:
    rng = np.random.default_rng(2)
    return {
        f"q{i}": [("7", True, int(t)) for t in rng.choice([100, 1000], size=6)] for i in range(40)
    }


def test_a_bin_chosen_by_probe_length_is_priced_at_its_members_probes():
    samples = _by_length()
    result = make_plan(parse_policy(BY_LENGTH), table_of(samples), cross_check=False, reps=8)
    probe = {q: sum(t for _, _, t in served(q, items)[:2]) for q, items in samples.items()}
    long = [q for q in samples if probe[q] / 2 >= 500]
    long_bin = result.plan["bins"][1]
    assert long_bin["queries"] == len(long) > 0
    # keep_probe spends exactly the probe: its members' own (long), not the held-out mean
    assert long_bin["predicted"]["tokens"] == pytest.approx(np.mean([probe[q] for q in long]))
    spend = next(b for b in result.plan["budget"] if b["label"].startswith("mean tokens"))
    assert spend["spent"] == pytest.approx(np.mean([probe[q] for q in long]))


def test_a_per_query_bound_the_probe_alone_breaks_is_refused_with_the_reason():
    # the run refuses a bin's per-query cap below the probe's worst case (2 x max_tokens), as the
    # bin is known only after the probe; the plan refuses it by the same rule, naming it
    samples = _by_length()
    probe = {q: sum(t for _, _, t in served(q, items)[:2]) for q, items in samples.items()}
    worst = max(probe.values())
    policy = BY_LENGTH.replace("for long\n}", f"for long\n  tokens per query <= {worst - 1} for long\n}}")
    with pytest.raises(DiagnosticError, match=r"probe's worst case for a query is 8192 tokens"):
        make_plan(parse_policy(policy), table_of(samples), cross_check=False, reps=8)


def test_a_per_query_bound_holds_for_the_largest_member_not_the_mean():
    # the short bin's members differ: counts are allowed only while the member with the most
    # tokens per sample stays within the bound in expectation
    samples = _by_length()
    policy = BY_LENGTH.replace("for long\n}", "for long\n  tokens per query <= 2000 for short\n}")
    # a probe of 2 x 1000 max_tokens fits the cap in the worst case: a plan its run accepts (the
    # table's samples have at most 1000 tokens, so none is cut)
    policy = policy.replace("max_tokens 4096", "max_tokens 1000")
    result = make_plan(parse_policy(policy), table_of(samples), cross_check=False, reps=8)
    probe = {q: served(q, items)[:2] for q, items in samples.items()}
    short = [q for q in samples if sum(t for _, _, t in probe[q]) / 2 < 500]
    allowed = result.curves.levels[result.problem.allowed[0]]
    # a member's expected tokens at count n: its probe, plus n - 2 draws from its other samples
    def expected(q, n):
        rest = [t for _, _, t in served(q, samples[q])[2:]]
        return sum(t for _, _, t in probe[q]) + (n - 2) * np.mean(rest)
    assert list(allowed) == [n for n in range(2, 7) if max(expected(q, n) for q in short) <= 2000]
    assert 2 < allowed.max() < 6
    # the bin's mean member would allow one count more: the bound is per query
    mean_allowed = result.curves.levels[result.curves.tokens[0] <= 2000]
    assert mean_allowed.max() > allowed.max()


def test_a_key_a_cut_probe_cannot_read_sends_the_query_to_the_last_bin_like_the_run():
    policy = parse_policy(
        """
policy t "test"
budget { mean samples per query <= 3 }
sampling { temperature 0.7 max_tokens 512 }
probe 2 samples
scorer conf = confidence
feature sure = mean(scores(conf))
bins by sure thresholds [-0.5] as unsure, sure
strategy unsure = majority_vote
strategy sure = majority_vote
allocate optimal maximize accuracy
"""
    )
    rows = []
    for i in range(6):
        long = i < 2  # every sample of q0, q1 is longer than max_tokens: no log-probability left
        for j in range(4):
            rows.append(SampleRow(query_id=f"q{i}", sample_index=j, answer="7", correct=True,
                                  completion_tokens=900 if long else 100, mean_logprob=-0.1))
    result = make_plan(policy, SamplesTable.from_rows(rows, meta=RunMeta()), cross_check=False,
                       reps=8)
    from ttcdsl.runtime.assignment import assign_bins

    key = result.calibration.key
    assert np.isnan(key[:2]).all() and np.isfinite(key[2:]).all()
    assert result.calibration.bin_index.tolist() == assign_bins(key, [-0.5], 2).tolist()
    assert result.calibration.bin_index.tolist()[:2] == [1, 1]
    assert any("undefined for 2 calibration queries" in w for w in result.plan["warnings"])


def test_a_rounds_cap_that_asks_several_samples_per_round_is_said():
    # probe in round 0, then 3 rounds: a target of n takes ceil((n - 2) / 3) samples in the
    # first of them, so past 2 + 3 = 5 samples a round asks several. The run still checks the
    # stop rules after every sample (fire-and-cancel), so the plan is not said to be coarser
    # than its simulation; what is said is that a live backend may spend samples past a stop.
    policy = parse_policy(STOP_FROM_MINIMUM.replace("samples per query in 6..16", "samples per query in 2..16\n  rounds <= 4"))
    table = table_of({f"q{i}": [("7", True, 100)] * 8 for i in range(10)})
    warnings = make_plan(policy, table, cross_check=False, reps=8).plan["warnings"]
    said = [w for w in warnings if "rounds <= 4, counts above 5 take more than one sample" in w]
    assert len(said) == 1
    assert "still checked after every sample" in said[0] and "less often" not in said[0]
    policy = parse_policy(STOP_FROM_MINIMUM.replace("samples per query in 6..16", "samples per query in 2..16\n  rounds <= 7"))
    warnings = make_plan(policy, table, cross_check=False, reps=8).plan["warnings"]
    assert not any("rounds <=" in w for w in warnings)
