"""A policy that reads an observable the samples table lacks is refused before anything is spent,
and a reward-model scorer mapped to a column (`--score prm=rm`) is read from that column by the
plan AND the run (the plan records the mapping).

Before this, `ttc run policies/bandit_entropy.ttc` on the Qwen MATH-100 pool (its reward model is
logged as `rm`) ran to the end with every answer null and reported accuracy 0, and a
`compute_optimal` plan made with `--score prm=rm` binned every query into its last bin at run time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.paths import REPO
from tests.runtime.runs import ttc, workload_files, write_policy
from ttcdsl.datasets import write_queries
from ttcdsl.datasets.sources import load_qwen25math_pool_questions
from ttcdsl.errors import UserError
from ttcdsl.importers import ImportOptions, import_qwen25math_eval
from ttcdsl.lang.api import load_policy
from ttcdsl.observables import policy_needs, require, score_maps
from ttcdsl.samples import save


@pytest.fixture(scope="module")
def qwen_files(shared_data: Path, tmp_path_factory):
    pool = shared_data / "pools" / "qwen25math_math100_x8.jsonl"
    table = import_qwen25math_eval(pool, ImportOptions(temperature=0.7))
    d = tmp_path_factory.mktemp("qwen")
    samples, queries = d / "qwen.jsonl", d / "queries.jsonl"
    save(table, samples)
    write_queries(load_qwen25math_pool_questions(pool), queries)
    return d, samples, queries


def _stored(run_dir: Path) -> dict[str, list[dict]]:
    by_query: dict[str, list[dict]] = {}
    for line in (run_dir / "samples.jsonl").read_text().splitlines()[1:]:
        row = json.loads(line)
        by_query.setdefault(row["query_id"], []).append(row)
    for rows in by_query.values():
        rows.sort(key=lambda r: r["sample_index"])
    return by_query


def test_needs_name_what_each_example_policy_reads() -> None:
    needs = {n.kind: n for n in policy_needs(load_policy(REPO / "policies" / "adaptive_vote.ttc"))}
    assert set(needs) == {"tokens", "logprobs"}
    assert "feature length" in needs["tokens"].reason
    # the first reader: the medium bin's candidate weighted_vote(conf)
    assert "strategy medium = weighted_vote(conf)" in needs["logprobs"].reason
    compute = load_policy(REPO / "policies" / "compute_optimal.ttc")
    (need,) = policy_needs(compute, {"prm": "rm"})
    assert (need.kind, need.column) == ("score", "rm")
    assert "feature verifier" in need.reason
    assert policy_needs(load_policy(REPO / "policies" / "self_consistency.ttc")) == ()


def test_needs_follow_a_long_feature_chain_without_recursing() -> None:
    # the checker keeps a chain within 100 levels (TTC017); this walk must not depend on it
    # (3000 features each reading the previous one hit the recursion limit in `ttc plan`)
    import dataclasses

    from ttcdsl.lang import ir

    base = load_policy(REPO / "policies" / "adaptive_vote.ttc")
    chain = [ir.Feature(name="c0", expr=ir.ObservableRef(name="prompt_nll", span=None), span=None)]
    for i in range(1, 3000):
        chain.append(ir.Feature(name=f"c{i}", span=None, expr=ir.Arith(
            op="*", left=ir.FeatureRef(name=f"c{i - 1}", span=None), right=ir.Const(value=1.0, span=None),
            span=None)))
    policy = dataclasses.replace(base, features=tuple(reversed(chain)) + base.features)
    needs = {n.kind: n for n in policy_needs(policy)}
    assert needs["prompt_nll"].reason == "feature c2999 (the policy)"
    assert {"tokens", "logprobs"} <= set(needs)


def test_prompt_nll_is_refused_where_the_table_has_none(tmp_path: Path) -> None:
    samples, _ = workload_files(tmp_path, n=6, m=4)
    policy = load_policy(write_policy(tmp_path, """\
policy nll "bins by prompt NLL"
budget { mean samples per query <= 4 }
sampling { max_tokens 512 }
probe 1 samples
feature hardness = prompt_nll
bins by hardness thresholds [1.0] as easy, hard
strategy easy = majority_vote
strategy hard = majority_vote
allocate optimal maximize accuracy
"""))
    from ttcdsl.samples import load

    with pytest.raises(UserError, match=r"prompt NLLs \(prompt log-probabilities\) \(read by feature hardness") as error:
        require(policy, load(samples), table_name="t")
    assert "--backend vllm or openai measures the prompt's NLL" in error.value.hint


def test_one_score_mapping_serves_a_batch_of_policies() -> None:
    policies = [load_policy(REPO / "policies" / f"{n}.ttc")
                for n in ("self_consistency", "compute_optimal")]
    assert score_maps(policies, {"prm": "rm"}) == [{}, {"prm": "rm"}]
    with pytest.raises(UserError, match="'prn', which no policy declares"):
        score_maps(policies, {"prn": "rm"})


def test_bandit_without_its_score_column_is_refused_before_anything_is_spent(qwen_files, capsys) -> None:
    d, samples, queries = qwen_files
    out = d / "refused"
    code = ttc("run", str(REPO / "policies" / "bandit_entropy.ttc"), "--queries", str(queries),
               "--samples", str(samples), "--out", str(out), "--quiet")
    err = capsys.readouterr().err
    assert code == 1
    assert "lacks the score column 'prm'" in err and "--score SCORER=COLUMN" in err
    assert "score columns: rm" in err
    assert not out.exists()


def test_bandit_with_a_mapped_score_column_answers_from_it(qwen_files) -> None:
    """The report's accuracy, recomputed from samples.jsonl with best-of-n over the logged `rm`
    scores (an independent implementation), is the run's; before the fix it was 0."""
    d, samples, queries = qwen_files
    out = d / "bandit"
    assert ttc("run", str(REPO / "policies" / "bandit_entropy.ttc"), "--queries", str(queries),
               "--samples", str(samples), "--out", str(out), "--score", "prm=rm", "--quiet") == 0
    report = json.loads((out / "report.json").read_text())
    right = 0
    stored = _stored(out)
    for qid, rows in stored.items():
        scored = [r for r in rows if r["answer"] is not None and r["scores"].get("rm") is not None]
        assert all(r["scores"]["prm"] == r["scores"]["rm"] for r in scored)
        best = max(scored, key=lambda r: (r["scores"]["rm"], -r["sample_index"]), default=None)
        right += bool(best and best["correct"])
    assert report["accuracy"] == pytest.approx(right / report["queries"])
    assert report["accuracy"] > 0.8  # the pool's RM best-of-8 is 0.94
    manifest = json.loads((out / "manifest.json").read_text())
    plan = (out / "plan.yaml").read_text()
    assert "prm: rm" in plan and manifest["score_columns"] == {"prm": "rm"}
    # a resume reads the run's own mapping and refuses another
    assert ttc("run", "--resume", str(out), "--score", "prm=rm", "--quiet") == 1
    assert ttc("run", "--resume", str(out), "--quiet") == 0


def test_a_plan_records_its_score_mapping_and_the_run_bins_with_it(qwen_files, capsys) -> None:
    d, samples, queries = qwen_files
    plans = d / "plans"
    # The pool's reward model logs logits, which a weighted vote refuses: the planner drops the
    # weighted_vote(prm) candidates (TTC502) and chooses among the others.
    compute = d / "compute_optimal.ttc"
    compute.write_text((REPO / "policies" / "compute_optimal.ttc").read_text())
    assert ttc("plan", str(compute),
               str(REPO / "policies" / "self_consistency.ttc"), "-c", str(samples),
               "--score", "prm=rm", "-o", str(plans), "--reps", "16", "--no-cross-check") == 0
    from ttcdsl.planner.plan import load_plan

    assert load_plan(plans / "compute_optimal.plan.yaml")["score_columns"] == {"prm": "rm"}
    assert load_plan(plans / "self_consistency.plan.yaml")["score_columns"] == {}
    out = d / "compute"
    assert ttc("run", str(plans / "compute_optimal.plan.yaml"), "--queries", str(queries),
               "--samples", str(samples), "--out", str(out), "--quiet") == 0
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    keys = [r["key"] for r in results]
    assert all(k is not None and math.isfinite(k) for k in keys)
    assert len({r["bin"] for r in results}) >= 4  # quantile bins of a real key, not one NaN bin


def test_plan_refuses_a_table_without_token_counts_naming_the_feature(qwen_files, capsys) -> None:
    d, samples, _ = qwen_files
    code = ttc("plan", str(REPO / "policies" / "token_budget.ttc"), "-c", str(samples))
    err = capsys.readouterr().err
    assert code == 1
    assert "lacks completion token counts (read by feature" in err
    assert "--tokenizer" in err


def test_a_weighted_vote_over_logits_is_refused_before_the_run_spends(qwen_files, capsys) -> None:
    """The weighting rule refuses reward-model scores outside [0, 1]; it must do so before the
    run, not when the votes are counted after the budget is spent."""
    d, samples, queries = qwen_files
    policy = d / "weighted.ttc"
    policy.write_text(
        'policy weighted "x"\nbudget { mean samples per query <= 4 }\nsampling { max_tokens 1024 }\n'
        'scorer prm = reward_model "m"\nanswer weighted_vote(prm)\n'
        "allocate bandit {\n  round 2 samples\n  explore all\n  solved when top_share >= 0.75 after 4\n} maximize accuracy\n"
    )
    out = d / "weighted-run"
    code = ttc("run", str(policy), "--queries", str(queries), "--samples", str(samples),
               "--out", str(out), "--score", "prm=rm", "--quiet")
    assert code == 1
    assert "reward-model scores in [0, 1]" in capsys.readouterr().err
    assert not out.exists()


def test_queries_without_a_key_are_reported_not_binned_silently(tmp_path: Path, capsys) -> None:
    """Token counts known for most queries but not all: the run goes on (a warning names the
    share), and the report says how many queries had no key and where they went."""
    from tests.runtime.runs import hand_plan
    from tests.runtime.tables import rewrite_rows

    samples, queries = workload_files(tmp_path, n=20, m=8)
    ids = [json.loads(line)["id"] for line in queries.read_text().splitlines()]
    blind = set(ids[:5])

    def forget(row: dict) -> dict:
        if row["query_id"] in blind:
            row["completion_tokens"] = None
        return row

    rewrite_rows(samples, forget)
    policy = write_policy(tmp_path, """\
policy by_length "bins by probe length"
budget { mean samples per query <= 4 }
sampling { max_tokens 8192 }
probe 2 samples
feature length = mean(tokens)
bins by length thresholds [400] as short, long
strategy short = majority_vote
strategy long = majority_vote
allocate optimal maximize accuracy
""")
    plan = hand_plan(policy, {"short": [{"samples": 3, "share": 1.0}],
                              "long": [{"samples": 4, "share": 1.0}]}, edges=[400])
    out = tmp_path / "run"
    assert ttc("run", str(plan), "--queries", str(queries), "--samples", str(samples),
               "--out", str(out), "--quiet") == 0
    assert "carry completion token counts" in capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    unkeyed = [r for r in results if r["key"] is None]
    assert {r["query_id"] for r in unkeyed} == blind
    assert all(r["bin"] == "long" for r in unkeyed)
    assert report["unkeyed"]["queries"] == 5 and "'long'" in report["unkeyed"]["how"]


LOGIT_POLICY = (
    'policy weighted_logits "weighted vote over an outcome reward model\'s logits"\n'
    "budget { mean samples per query <= 8 }\nsampling { max_tokens 4096 }\n"
    'scorer prm = reward_model "Qwen/Qwen2.5-Math-RM-72B" logits\n'
    "answer weighted_vote(prm)\nallocate fixed 8\n"
)


def _weighted_vote_with_sigmoid(rows: list[dict]) -> bool:
    """An independent weighted vote: each answer's weight is the sum of 1/(1+e^-rm) of its
    samples; ties go to the answer seen first."""
    weight: dict[str, float] = {}
    label: dict[str, bool] = {}
    for row in rows:
        if row["answer"] is None or row["scores"].get("rm") is None:
            continue
        weight.setdefault(row["answer"], 0.0)
        weight[row["answer"]] += 1.0 / (1.0 + math.exp(-row["scores"]["rm"]))
        label.setdefault(row["answer"], bool(row["correct"]))
    if not weight:
        return False
    best = max(weight.values())
    return label[next(a for a, w in weight.items() if w == best)]


def test_a_scorer_declared_with_logits_votes_with_their_sigmoid(qwen_files) -> None:
    """`scorer prm = reward_model "M" logits`: the pool's reward-model logits, refused as vote
    weights above, are read as sigmoid(logit). The run's accuracy is an independent weighted
    vote over the stored raw scores; the plan and `ttc compare` read the same values."""
    d, samples, queries = qwen_files
    policy = d / "weighted_logits.ttc"
    policy.write_text(LOGIT_POLICY)
    plan = d / "weighted_logits.plan.yaml"
    assert ttc("plan", str(policy), "-c", str(samples), "--score", "prm=rm", "-o", str(plan),
               "--reps", "16", "--no-cross-check") == 0
    out = d / "logits-run"
    assert ttc("run", str(plan), "--queries", str(queries),
               "--samples", str(samples), "--out", str(out), "--quiet") == 0
    report = json.loads((out / "report.json").read_text())
    stored = _stored(out)
    right = sum(_weighted_vote_with_sigmoid(rows) for rows in stored.values())
    assert report["accuracy"] == pytest.approx(right / report["queries"])
    # raw logits are stored (not their sigmoid): some lie outside [0, 1]
    assert any(not 0 <= r["scores"]["rm"] <= 1 for rows in stored.values() for r in rows
               if r["scores"].get("rm") is not None)
    assert report["accuracy"] >= 0.9  # maj@8 0.93, RM best-of-8 0.94 on this pool
    # the planner predicts the same fixed-8 vote on the same samples
    from ttcdsl.planner.plan import load_plan

    predicted = load_plan(plan)["predicted"]["accuracy"]
    assert predicted == pytest.approx(report["accuracy"], abs=0.02)


def test_logits_belong_to_reward_models_only(tmp_path: Path, capsys) -> None:
    path = write_policy(tmp_path, LOGIT_POLICY.replace(
        'reward_model "Qwen/Qwen2.5-Math-RM-72B" logits', "confidence logits"))
    assert ttc("check", str(path)) == 1
    assert "only a reward model's scores can be logits" in capsys.readouterr().err


def test_scores_outside_unit_range_read_as_probabilities_are_said(qwen_files) -> None:
    """Qwen's reward model logs logits (-4.3..6.1): `solved when score(prm) >= 0.7` retired
    nearly every query after one round without a word. A policy whose rules or features read
    the scores is warned (with the fix); best-of-n, which only ranks them, is not; a scorer
    declared `logits` reads sigmoid(score) and is not either."""
    from ttcdsl.samples import load

    _, samples, _ = qwen_files
    table = load(samples)
    bandit = load_policy(REPO / "policies" / "bandit_entropy.ttc")
    said: list[str] = []
    require(bandit, table, score_columns={"prm": "rm"}, table_name="T", warn=said.append)
    (warning,) = [w for w in said if "outside [0, 1]" in w]
    low, high = table.scores["rm"].min(), table.scores["rm"].max()
    assert f"ranges {low:.3g}..{high:.3g}" in warning and "logits" in warning

    said.clear()
    best = load_policy(REPO / "policies" / "best_of_n.ttc")
    require(best, table, score_columns={"prm": "rm"}, table_name="T", warn=said.append)
    assert not any("outside [0, 1]" in w for w in said)

    text = (REPO / "policies" / "bandit_entropy.ttc").read_text()
    declared = text.replace('reward_model "Qwen/Qwen2.5-Math-PRM-7B"',
                            'reward_model "Qwen/Qwen2.5-Math-PRM-7B" logits')
    assert declared != text
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "b.ttc"
        path.write_text(declared)
        said.clear()
        require(load_policy(path), table, score_columns={"prm": "rm"}, table_name="T",
                warn=said.append)
    assert not any("outside [0, 1]" in w for w in said)
