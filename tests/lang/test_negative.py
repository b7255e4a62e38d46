"""Every check, as a short snippet with the code it must report and the text it must underline."""

from __future__ import annotations

import pytest

from tests.lang.helpers import diagnostics_of, underlined

OK_TAIL = "allocate fixed 4\n"


def policy(body: str, *, header: str = "policy t\n", sampling: str = "sampling { max_tokens 64 }\n",
           allocate: str = OK_TAIL) -> str:
    return header + sampling + body + ("\n" if body and not body.endswith("\n") else "") + allocate


BINS = "probe 2 samples\nfeature a = top_share(answers)\ndifficulty = 1 - a\n"
TWO_BINS = BINS + "bins by difficulty quantiles [0.5] as easy, hard\n"
BUDGET = "budget { mean samples per query <= 8 }\n"

# (id, code, underlined text, policy text)
CASES = [
    # -- syntax and input --
    ("stray-character", "TTC010", "$", policy("probe 2 samples $")),
    ("misspelt-statement", "TTC011", "budgte", policy("budgte { }")),
    ("misspelt-keyword", "TTC011", "sample", policy("probe 2 sample")),
    ("operator-twice", "TTC011", "*", policy("feature a = 1 +* 2")),
    ("missing-close-brace-at-end", "TTC012", "{", "policy t\nbudget { mean samples per query <= 8"),
    ("missing-close-brace", "TTC011", "{", policy("budget { mean samples per query <= 8\nprobe 2 samples")),
    ("unfinished-expression", "TTC012", "+", "policy t\nfeature a = 1 +"),
    ("unterminated-string", "TTC013", '"never closed', 'policy t "never closed\n'),
    ("bad-underscores", "TTC014", "1__0", policy("budget { mean samples per query <= 1__0 }")),
    ("infinite-number", "TTC014", "1e999", policy("feature a = 1e999\nstop { when a > 1 }")),
    ("number-too-large", "TTC014", "2000000G", policy("budget { total tokens <= 2000000G }")),
    # a bad suffix is the number's error, not "expected 'per'" at the closing brace
    ("number-suffix-twice", "TTC014", "8kk", policy("budget { mean samples per query <= 8kk }")),
    ("number-suffix-lower-case-m", "TTC014", "8m", policy("budget { total tokens <= 8m }")),
    # past Python's 4300-digit limit for reading an int: it crashed the checker
    ("number-of-5000-digits", "TTC014", "1" + "0" * 5000, policy("feature a = 1" + "0" * 5000 + "\nstop { when a > 1 }")),
    # -- names and definitions --
    ("no-header", "TTC100", "sampling { max_tokens 64 }", policy("answer majority_vote", header="")),
    ("header-not-first", "TTC100", "policy t",
     "sampling { max_tokens 64 }\npolicy t\nanswer majority_vote\n" + OK_TAIL),
    ("unknown-name", "TTC101", "agrement",
     policy("probe 2 samples\nfeature agreement = top_share(answers)\nstop { when agrement > 0.9 }")),
    ("bins-by-unknown-feature", "TTC101", "agrement",
     policy(BINS + "bins by agrement quantiles [0.5] as x, y\nanswer majority_vote")),
    ("duplicate-feature", "TTC102", "a",
     policy("feature a = samples\nfeature a = samples + 1\nstop { when a > 3 }")),
    ("duplicate-budget", "TTC102", BUDGET.strip(), policy(BUDGET + BUDGET)),
    ("duplicate-strategy", "TTC102", "easy",
     policy(TWO_BINS + "strategy easy = majority_vote\nstrategy hard = single\nstrategy easy = single")),
    ("duplicate-bin-name", "TTC102", "x",
     policy(BINS + "bins by difficulty quantiles [0.5] as x, x\nanswer majority_vote")),
    ("duplicate-budget-limit", "TTC102", "mean samples per query <= 6",
     policy("budget { mean samples per query <= 8  mean samples per query <= 6 }")),
    ("feature-named-difficulty", "TTC102", "difficulty",
     policy("probe 2 samples\nfeature difficulty = 1 - top_share(answers)\n"
            "bins by difficulty thresholds [0.5] as x, y\nanswer majority_vote")),
    ("sampling-setting-twice", "TTC102", "max_tokens 128",
     policy("", sampling="sampling { max_tokens 64  temperature 0.7  max_tokens 128 }\n")),
    ("feature-shadows-builtin", "TTC102", "tokens",
     policy("feature tokens = samples\nstop { when tokens > 3 }")),
    ("duplicate-fixed-count", "TTC102", "easy 3",
     policy(TWO_BINS + "answer majority_vote", allocate="allocate fixed { easy 2  hard 4  easy 3 }\n")),
    ("duplicate-bandit-round", "TTC102", "round 4 samples",
     policy(BUDGET, allocate="allocate bandit { round 2 samples  round 4 samples  solved when top_share >= 0.8 }\n")),
    ("unknown-function", "TTC103", "top_shar", policy("stop { when top_shar(answers) > 0.5 }")),
    ("strategy-as-function", "TTC103", "majority_vote", policy("stop { when majority_vote(answers) > 0.5 }")),
    ("unknown-strategy", "TTC104", "majority", policy("answer majority")),
    ("unknown-scorer-kind", "TTC105", "reward", policy('scorer s = reward "m"\nanswer best_of_n(s)')),
    ("unknown-sampling-parameter", "TTC106", "temprature",
     policy("", sampling="sampling { temprature 0.5  max_tokens 64 }\n")),
    ("unknown-unit", "TTC107", "sample", policy("budget { mean sample per query <= 8 }")),
    ("unknown-bill-unit", "TTC107", "dollars",
     policy(BUDGET, allocate="allocate bandit { round 2 samples  bill dollars  solved when top_share >= 0.8 }\n")),
    ("unknown-objective", "TTC108", "acuracy", policy("", allocate="allocate fixed 4 maximize acuracy\n")),
    ("unknown-explore-rule", "TTC108", "entropi",
     policy(BUDGET, allocate="allocate bandit { round 2 samples  explore entropi  solved when top_share >= 0.8 }\n")),
    ("feature-used-before-definition", "TTC109", "b",
     policy("feature a = b + 1\nfeature b = samples\nstop { when a > 3 }")),
    ("feature-refers-to-itself", "TTC109", "a", policy("feature a = a + 1\nstop { when a > 3 }")),
    ("sampling-for-unknown-bin", "TTC110", "hardd",
     policy(TWO_BINS + "answer majority_vote\nsampling hardd { temperature 1 }")),
    ("budget-for-unknown-bin", "TTC110", "hardd",
     policy(TWO_BINS + "answer majority_vote\nbudget { samples per query <= 8 for hardd }")),
    ("fixed-for-unknown-bin", "TTC110", "medium",
     policy(TWO_BINS + "answer majority_vote", allocate="allocate fixed { easy 2  hard 4  medium 3 }\n")),
    ("stop-for-unknown-bin", "TTC110", "medium",
     policy(TWO_BINS + "answer majority_vote\nstop medium { when samples >= 4 }")),
    ("unknown-scorer-in-strategy", "TTC111", "prm", policy("answer best_of_n(prm)")),
    ("unknown-scorer-in-condition", "TTC111", "prn",
     policy('scorer prm = reward_model "m"\nanswer best_of_n(prm)\nstop { when score(prn) > 0.5 }')),
    # -- types, arity, units, values --
    ("function-arity", "TTC200", "clip(samples, 1)", policy("stop { when clip(samples, 1) > 0.5 }")),
    ("strategy-needs-scorer", "TTC200", "best_of_n", policy("answer best_of_n")),
    ("strategy-takes-no-args", "TTC200", "majority_vote(x)", policy("answer majority_vote(x)")),
    ("mean-of-answers", "TTC201", "answers", policy("stop { when mean(answers) > 0.5 }")),
    ("top-share-of-numbers", "TTC201", "tokens", policy("stop { when top_share(tokens) > 0.5 }")),
    ("score-of-number", "TTC201", "1", policy("stop { when score(1) > 0.5 }")),
    ("scorer-as-value", "TTC201", "prm",
     policy('scorer prm = reward_model "m"\nanswer best_of_n(prm)\nstop { when prm > 0.5 }')),
    ("list-as-difficulty", "TTC202", "tokens",
     policy("probe 2 samples\ndifficulty = tokens\nbins by difficulty thresholds [1] as a, b\nanswer majority_vote")),
    ("list-in-arithmetic", "TTC202", "answers", policy("stop { when answers + 1 > 2 }")),
    ("charge-without-token-budget", "TTC203", "charge prompt tokens",
     policy("budget { mean samples per query <= 8  charge prompt tokens }")),
    ("top-p-out-of-range", "TTC204", "1.5", policy("", sampling="sampling { top_p 1.5  max_tokens 64 }\n")),
    ("negative-temperature", "TTC204", "-1", policy("", sampling="sampling { temperature -1  max_tokens 64 }\n")),
    ("unanimous-window-of-one", "TTC204", "1", policy("stop { when unanimous last 1 }")),
    ("unanimous-disjoint-window-of-one", "TTC204", "1", policy("stop { when unanimous window 1 }")),
    ("zero-rounds", "TTC204", "0", policy("budget { rounds <= 0 }")),
    ("zero-mean-budget", "TTC204", "0", policy("budget { mean samples per query <= 0 }")),
    ("zero-bandit-round", "TTC204", "0",
     policy(BUDGET, allocate="allocate bandit { round 0 samples  solved when top_share >= 0.8 }\n")),
    ("fractional-probe", "TTC205", "2.5", policy("probe 2.5 samples")),
    ("fractional-max-tokens", "TTC205", "10.5", policy("", sampling="sampling { max_tokens 10.5 }\n")),
    ("fractional-after", "TTC205", "1.5", policy("stop { when top_share > 0.5 after 1.5 }")),
    ("reward-model-without-model", "TTC206", "reward_model", policy("scorer s = reward_model\nanswer best_of_n(s)")),
    ("confidence-with-model", "TTC206", '"x"', policy('scorer s = confidence "x"\nanswer best_of_n(s)')),
    ("string-temperature", "TTC206", '"hot"', policy("", sampling='sampling { temperature "hot"  max_tokens 64 }\n')),
    ("division-by-constant-zero", "TTC207", "1024 - 1024",
     policy("stop { when mean(tokens) / (1024 - 1024) > 0.5 }")),
    ("division-by-zero-feature", "TTC207", "scale",
     policy("probe 2 samples\nfeature scale = 2 * (3 - 3)\nfeature length = mean(tokens) / scale\n"
            "difficulty = length\nbins by difficulty thresholds [1] as a, b\nanswer majority_vote")),
    ("division-by-zero-in-a-call", "TTC207", "0", policy("stop { when clip(samples / 0, 0, 1) > 0.5 }")),
    ("constant-overflow", "TTC207", " * ".join(["1e15"] * 21),  # 1e315: past the largest double
     policy("stop { when samples > " + " * ".join(["1e15"] * 21) + " }")),
    # -- bins and strategies --
    ("bin-without-strategy", "TTC300", "hard", policy(TWO_BINS + "strategy easy = majority_vote")),
    ("strategy-for-unknown-bin", "TTC301", "medum",
     policy(TWO_BINS + "answer majority_vote\nstrategy medum = single")),
    ("quantiles-not-increasing", "TTC302", "0.2",
     policy(BINS + "bins by difficulty quantiles [0.5, 0.2] as x, y, z\nanswer majority_vote")),
    ("quantile-outside-unit-interval", "TTC302", "1.5",
     policy(BINS + "bins by difficulty quantiles [0.5, 1.5] as x, y, z\nanswer majority_vote")),
    ("thresholds-not-increasing", "TTC303", "0.5",
     policy(BINS + "bins by difficulty thresholds [0.5, 0.5] as x, y, z\nanswer majority_vote")),
    ("bin-names-do-not-match-cuts", "TTC304", "x, y",
     policy(BINS + "bins by difficulty quantiles [0.3, 0.6] as x, y\nanswer majority_vote")),
    ("no-cuts", "TTC304", "x",
     policy(BINS + "bins by difficulty quantiles [] as x\nanswer majority_vote")),
    ("strategy-without-bins", "TTC305", "easy", policy("strategy easy = majority_vote")),
    ("budget-scope-without-bins", "TTC305", "easy",
     policy("answer majority_vote\nbudget { samples per query <= 8 for easy }")),
    ("bins-by-missing-difficulty", "TTC306", "difficulty",
     policy("probe 2 samples\nbins by difficulty quantiles [0.5] as x, y\nanswer majority_vote")),
    ("bins-without-probe", "TTC307", "bins by a thresholds [0.5] as x, y",
     policy("feature a = samples\nbins by a thresholds [0.5] as x, y\nanswer majority_vote")),
    ("keep-probe-as-answer", "TTC308", "keep_probe", policy("probe 2 samples\nanswer keep_probe")),
    # -- budgets --
    ("probe-above-mean", "TTC400", "2", policy("probe 4 samples\nbudget { mean samples per query <= 2 }")),
    ("range-minimum-above-mean", "TTC400", "3",
     policy("budget { mean samples per query <= 3  samples per query in 4..8 }")),
    ("probe-above-per-query-maximum", "TTC401", "4",
     policy("probe 8 samples\nbudget { samples per query in 1..4 }", allocate="allocate fixed 8\n")),
    ("probe-above-cap", "TTC401", "6",
     policy("probe 8 samples\nbudget { samples per query <= 6 }", allocate="allocate fixed 8\n")),
    ("empty-range", "TTC402", "8..4", policy("budget { samples per query in 8..4 }")),
    ("optimal-without-budget", "TTC403", "optimal", policy("answer majority_vote", allocate="allocate optimal\n")),
    ("bandit-without-budget", "TTC403", "bandit { round 2 samples  solved when top_share >= 0.8 }",
     policy("", allocate="allocate bandit { round 2 samples  solved when top_share >= 0.8 }\n")),
    ("no-max-tokens", "TTC404", "policy t", policy("answer majority_vote", sampling="sampling { temperature 1 }\n")),
    # -- observability --
    ("gold-in-stop-rule", "TTC500", "correct", policy("stop { when max(correct) >= 1 }")),
    ("gold-scorer-online", "TTC500", "scorer g = gold", policy("scorer g = gold\nanswer best_of_n(g)")),
    ("normalize-in-stop-rule", "TTC501", "normalize(samples)",
     policy("stop { when normalize(samples) > 0.5 }")),
    # -- allocation --
    ("fixed-misses-a-bin", "TTC600", "fixed { easy 2 }",
     policy(TWO_BINS + "answer majority_vote", allocate="allocate fixed { easy 2 }\n")),
    ("fixed-below-probe", "TTC601", "2", policy("probe 4 samples\nanswer majority_vote", allocate="allocate fixed 2\n")),
    ("bandit-with-bins", "TTC602", "bins by difficulty quantiles [0.5] as easy, hard",
     policy(TWO_BINS + BUDGET + "answer majority_vote",
            allocate="allocate bandit { round 2 samples  solved when top_share >= 0.8 }\n")),
    ("no-allocate", "TTC603", "policy t", policy("answer majority_vote", allocate="")),
    ("bandit-without-solved-rule", "TTC604", "bandit { round 2 samples }",
     policy(BUDGET, allocate="allocate bandit { round 2 samples }\n")),
    ("keep-probe-without-probe", "TTC605", "keep_probe",
     policy("feature a = samples\nbins by a thresholds [0.5] as x, y\nstrategy x = keep_probe\n"
            "strategy y = single")),
    # -- added later (kept at the end) --
    ("empty-file", "TTC016", "", ""),
    ("comments-only", "TTC016", "", "# a policy, some day\n\n   # not yet\n"),
    ("contest-rule-with-gold-solved-rule", "TTC610", "gap",
     policy("offline evaluation\nscorer g = gold\n" + BUDGET + "answer best_of_n(g)",
            allocate="allocate bandit { round 1 samples  explore gap  solved when score(g) >= 1 }"
                     " maximize coverage\n")),
    ("entropy-rule-with-max-correct", "TTC610", "entropy",
     policy("offline evaluation\n" + BUDGET + "answer majority_vote",
            allocate="allocate bandit { round 1 samples  explore entropy\n"
                     "  solved when max(correct) >= 1 }\n")),
    # candidates the planner chooses among
    ("candidate-strategy-twice", "TTC309", "majority_vote",
     policy(TWO_BINS + "strategy easy = majority_vote\n"
            "strategy hard = one of [majority_vote, best_of_n(s), majority_vote]\n"
            'scorer s = reward_model "m"')),
    ("candidate-threshold-twice", "TTC309", "0.90",
     policy("stop { when beta_confidence >= tuned [0.9, 0.95, 0.90] }\nanswer majority_vote")),
    ("one-candidate-strategy", "TTC310", "one of [majority_vote]",
     policy(TWO_BINS + "strategy easy = majority_vote\nstrategy hard = one of [majority_vote]")),
    ("one-candidate-threshold", "TTC310", "tuned [0.9]",
     policy("stop { when top_share >= tuned [0.9] }\nanswer majority_vote")),
    ("tuned-outside-range", "TTC606", "95",
     policy("stop { when beta_confidence >= tuned [0.9, 95] }\nanswer majority_vote")),
    ("tuned-outside-feature-range", "TTC606", "1.2",
     policy("probe 2 samples\nfeature agree = top_share(answers)\n"
            "stop { when agree >= tuned [0.5, 1.2] }\nanswer majority_vote")),
    # a plain threshold gets the tuned one's rule: `95` for `0.95` never fires
    ("threshold-outside-range", "TTC606", "95",
     policy("stop { when beta_confidence >= 95 }\nanswer majority_vote")),
    ("threshold-outside-range-on-the-left", "TTC606", "-1",
     policy("stop { when -1 >= answer_entropy(answers) }\nanswer majority_vote")),
    ("std-threshold-below-zero", "TTC606", "-1",
     policy("stop { when std(tokens) < -1 }\nanswer majority_vote")),
    ("solved-threshold-outside-range", "TTC606", "90",
     policy(BUDGET, allocate="allocate bandit { round 2 samples  solved when top_share >= 90 }\n")),
    ("tuned-in-bandit-solved-rule", "TTC607", "tuned [0.7, 0.8]",
     policy(BUDGET, allocate="allocate bandit { round 2 samples  solved when top_share >= tuned [0.7, 0.8] }\n")),
    ("per-query-without-probe", "TTC612", "per query",
     policy("feature a = top_share(answers)\n" + BUDGET + "answer majority_vote",
            allocate="allocate per query maximize accuracy\n")),
    ("per-query-without-features", "TTC613", "per query",
     policy("probe 2 samples\n" + BUDGET + "answer majority_vote",
            allocate="allocate per query\n")),
    ("per-query-with-bins", "TTC614", "bins by difficulty quantiles [0.5] as easy, hard",
     policy(TWO_BINS + BUDGET + "answer majority_vote", allocate="allocate per query\n")),
    ("per-query-with-token-limit", "TTC615", "total tokens <= 1M",
     policy(BINS + "budget { mean samples per query <= 8  total tokens <= 1M }\n"
            "answer majority_vote", allocate="allocate per query\n")),
    ("per-query-with-bin-limit-free-total", "TTC615", "total samples <= 800",
     policy(BINS + "budget { mean samples per query <= 8  total samples <= 800 }\n"
            "answer majority_vote", allocate="allocate per query\n")),
    ("per-query-normalized-feature", "TTC616", "normalize(mean(tokens))",
     policy(BINS + "feature n = normalize(mean(tokens))\n" + BUDGET + "answer majority_vote",
            allocate="allocate per query\n")),
    ("per-query-normalized-difficulty", "TTC616", "normalize(a)",
     policy("probe 2 samples\nfeature a = top_share(answers)\ndifficulty = 1 - normalize(a)\n"
            + BUDGET + "answer majority_vote", allocate="allocate per query\n")),
    ("per-query-without-budget", "TTC403", "per query",
     policy(BINS + "answer majority_vote", allocate="allocate per query\n")),
    # per-query bounds that leave no count: `ttc plan` refused them ("no sample count the policy
    # allows") after `ttc check` passed
    ("cap-below-range-minimum", "TTC402", "3",
     policy("budget { samples per query <= 3  samples per query in 5..8 }\nanswer majority_vote",
            allocate="allocate fixed 5\n")),
    ("batch-maximum-below-bin-minimum", "TTC402", "4",
     policy(TWO_BINS + "budget { mean samples per query <= 8  samples per query in 1..4\n"
            "  samples per query in 6..8 for hard }\nstrategy easy = majority_vote\nstrategy hard = majority_vote",
            allocate="allocate optimal\n")),
    ("fixed-above-per-query-maximum", "TTC608", "8",
     policy("budget { samples per query <= 3 }\nanswer majority_vote", allocate="allocate fixed 8\n")),
    ("fixed-below-per-query-minimum", "TTC608", "4",
     policy("budget { samples per query in 6..8 }\nanswer majority_vote", allocate="allocate fixed 4\n")),
    # absolute thresholds outside the key's range leave a bin no query reaches
    ("threshold-bin-above-the-keys-range", "TTC311", "1.5",
     policy(BINS + "bins by difficulty thresholds [0.5, 1.5] as easy, hard, impossible\nanswer majority_vote")),
    ("threshold-bin-below-the-keys-range", "TTC311", "0",
     policy(BINS + "bins by a thresholds [0, 0.5] as never, low, high\nanswer majority_vote")),
    # the range of an expression follows its arithmetic: 100 * a share lies in [0, 100]
    ("threshold-outside-an-arithmetic-range", "TTC606", "120",
     policy("probe 2 samples\nfeature pct = 100 * top_share(answers)\nstop { when pct >= 120 }\n"
            "answer majority_vote")),
    # a strict comparison at the end of the range, and a comparison of two numbers, never hold
    # (or hold at once): `top_share > 1` passed while `top_share > 1.01` was refused
    ("strict-comparison-at-the-top-of-the-range", "TTC606", "1",
     policy("stop { when top_share > 1 }\nanswer majority_vote")),
    ("strict-comparison-at-the-bottom-of-the-range", "TTC606", "0",
     policy("stop { when samples < 0 }\nanswer majority_vote")),
    ("tuned-strict-at-the-top", "TTC606", "1",
     policy("stop { when beta_confidence > tuned [0.9, 1] }\nanswer majority_vote")),
    ("constant-condition", "TTC606", "1 > 2", policy("stop { when 1 > 2 }\nanswer majority_vote")),
    ("constant-feature-condition", "TTC606", "k >= 3",
     policy("feature k = 2 + 2\nstop { when k >= 3 }\nanswer majority_vote")),
    # a rule that needs more samples than any query it applies to gets never holds
    ("unanimous-window-above-the-cap", "TTC609", "40",
     policy("budget { mean samples per query <= 8  samples per query <= 32 }\n"
            "stop { when unanimous last 40 }\nanswer majority_vote", allocate="allocate optimal\n")),
    ("after-past-the-fixed-count", "TTC609", "12",
     policy("stop { when top_share >= 0.8 after 12 }\nanswer majority_vote", allocate="allocate fixed 8\n")),
    ("samples-past-a-bins-cap", "TTC609", "20",
     policy(TWO_BINS + "budget { mean samples per query <= 8  samples per query <= 16 for hard }\n"
            "strategy easy = majority_vote\nstrategy hard = majority_vote\nstop hard { when samples >= 20 }",
            allocate="allocate optimal\n")),
    ("solved-rule-past-the-cap", "TTC609", "12",
     policy("budget { mean samples per query <= 8  samples per query in 1..10 }\nanswer majority_vote",
            allocate="allocate bandit { round 2 samples  solved when unanimous window 12 }\n")),
    # a keep_probe bin's count was ignored: it spent the probe (2), not the 8 written
    ("fixed-count-of-a-keep-probe-bin", "TTC608", "8",
     policy(TWO_BINS + "strategy easy = keep_probe\nstrategy hard = majority_vote",
            allocate="allocate fixed { easy 8  hard 4 }\n")),
    ("fixed-bin-count-above-its-cap", "TTC608", "8",
     policy(TWO_BINS + "answer majority_vote\nbudget { samples per query <= 3 for easy }",
            allocate="allocate fixed { easy 8  hard 4 }\n")),
]


@pytest.mark.parametrize(("code", "text", "source"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_reports_code_and_underlines_the_offending_text(code, text, source):
    diagnostics = diagnostics_of(source)
    matching = [d for d in diagnostics if d.code == code]
    assert matching, f"expected {code}, got {[(d.code, d.message) for d in diagnostics]}"
    assert text in [underlined(d) for d in matching]
    for diagnostic in matching:
        assert diagnostic.message and "\n" not in diagnostic.message
        assert diagnostic.help and "\n" not in diagnostic.help


def test_every_code_in_the_catalogue_has_a_negative_case_or_a_file_test():
    from ttcdsl.lang.codes import CODES

    # TTC611 is raised at plan time, on calibration data: tests/runtime/test_runtime_bandit.py;
    # TTC502 is the planner's (a candidate the calibration table cannot serve):
    # tests/planner/test_planner_candidates.py
    covered = {c[1] for c in CASES} | {"TTC001", "TTC002", "TTC003", "TTC015", "TTC017", "TTC150", "TTC502",
                                       "TTC611"}
    assert set(CODES) - covered == set()


def test_per_query_bounds_that_leave_a_count_pass_and_keep_probe_bins_ignore_the_minimum():
    # a keep_probe bin spends its probe whatever the minimum or the fixed count say
    source = policy(TWO_BINS + "budget { samples per query in 4..8  samples per query <= 2 for easy }\n"
                    "strategy easy = keep_probe\nstrategy hard = majority_vote",
                    allocate="allocate fixed { hard 6 }\n")
    assert [d.code for d in diagnostics_of(source)] == []
    probe_count = policy(TWO_BINS + "strategy easy = keep_probe\nstrategy hard = single",
                         allocate="allocate fixed { easy 2  hard 2 }\n")
    assert diagnostics_of(probe_count) == ()
    fine = policy("budget { samples per query <= 8  samples per query in 2..6 }\nanswer majority_vote",
                  allocate="allocate fixed 6\n")
    assert diagnostics_of(fine) == ()


def test_thresholds_inside_the_keys_range_reach_every_bin():
    # a key equal to a cut goes to the upper bin: a cut at the top of the range still fills it
    for cuts in ("[0.15, 0.45]", "[0.5, 1]", "[0.001]"):
        source = policy(BINS + f"bins by difficulty thresholds {cuts} as " + ", ".join(
            f"b{i}" for i in range(cuts.count(",") + 2)) + "\nanswer majority_vote")
        assert [d.code for d in diagnostics_of(source)] == [], cuts
    # a key of unknown range (a mean of token counts) is not judged
    unknown = policy("probe 2 samples\nfeature length = mean(tokens) / 1024\n"
                     "bins by length thresholds [-5, 100] as a, b, c\nanswer majority_vote")
    assert "TTC311" not in [d.code for d in diagnostics_of(unknown)]


def test_a_rule_one_bin_can_reach_or_an_unbounded_policy_passes():
    # the global stop block applies to every bin: one bin's count reaching it is enough
    source = policy(TWO_BINS + "budget { mean samples per query <= 8  samples per query <= 4 for easy }\n"
                    "strategy easy = majority_vote\nstrategy hard = majority_vote\nstop { when unanimous last 6 }",
                    allocate="allocate optimal\n")
    assert diagnostics_of(source) == ()
    unbounded = policy(BUDGET + "stop { when top_share >= 0.8 after 100 }\nanswer majority_vote",
                       allocate="allocate optimal\n")
    assert diagnostics_of(unbounded) == ()
    at_the_cap = policy("stop { when samples >= 8 }\nanswer majority_vote", allocate="allocate fixed 8\n")
    assert diagnostics_of(at_the_cap) == ()


def test_a_bandit_round_of_the_whole_cap_stays_the_plan_free_uniform_pass():
    # policies/live/calibrate.ttc: `round 8 samples` under `samples per query in 1..8` is how a
    # uniform calibration pass runs without a plan; a check refusing a round at the cap broke it
    source = policy("budget { mean samples per query <= 8  samples per query in 1..8 }\nanswer majority_vote",
                    allocate="allocate bandit { round 8 samples  explore all  solved when top_share >= 1 after 8 }\n")
    assert diagnostics_of(source) == ()


def test_per_query_allocation_uses_every_feature_and_checks_clean():
    # the predictor reads every feature, so none is "never used" (TTC150)
    source = policy(BINS + BUDGET + "answer majority_vote", allocate="allocate per query\n")
    assert [(d.code, underlined(d)) for d in diagnostics_of(source)] == []


def test_normalize_stays_allowed_where_bins_read_it():
    # binning a batch is relative to the batch by design (the run bins all its queries at once);
    # only the per-query predictor, fitted on the calibration's values, refuses it (TTC616)
    source = policy("probe 2 samples\nfeature a = top_share(answers)\ndifficulty = 1 - normalize(a)\n"
                    "bins by difficulty quantiles [0.5] as easy, hard\n" + BUDGET
                    + "strategy easy = majority_vote\nstrategy hard = majority_vote",
                    allocate="allocate optimal maximize accuracy\n")
    assert [d.code for d in diagnostics_of(source) if d.severity == "error"] == []


def test_a_percentage_threshold_names_the_fraction_and_in_range_thresholds_pass():
    (problem,) = diagnostics_of(policy("stop { when beta_confidence >= 95 }\nanswer majority_vote"))
    assert "[0, 1]" in problem.message and "0.95, not 95" in problem.help
    for fine in ("beta_confidence >= 0.95", "top_share <= 1", "samples >= 0", "prompt_nll < 3", "top_share >= 1",
                 "top_share < 1", "samples > 0", "1 - top_share > 0"):
        assert diagnostics_of(policy(f"stop {{ when {fine} }}\nanswer majority_vote")) == (), fine


def test_unused_definitions_are_warnings_not_errors():
    diagnostics = diagnostics_of(policy('feature a = samples\nscorer s = reward_model "m"\nanswer majority_vote'))
    assert [(d.code, d.severity, underlined(d)) for d in diagnostics] == [
        ("TTC150", "warning", "a"),
        ("TTC150", "warning", "s"),
    ]


def test_deep_nesting_is_a_diagnostic_not_a_crash():
    deep = policy("stop { when " + "-" * 5000 + "samples > 1 }")
    assert [d.code for d in diagnostics_of(deep)] == ["TTC015"]
    wide = policy("stop { when " + " + ".join(["samples"] * 5000) + " > 1 }")
    (too_deep,) = diagnostics_of(wide)
    assert too_deep.code == "TTC015" and "a chain like a + b + c" in too_deep.message
    parens = policy("stop { when " + "(" * 3000 + "samples" + ")" * 3000 + " > 1 }")
    assert [d.code for d in diagnostics_of(parens)] == []


def test_a_feature_chain_deeper_than_an_expression_may_be_is_refused_once_at_its_first_step():
    # each feature reads the previous one: to the evaluators, one expression as deep as the chain
    def chain(n):
        return policy("probe 2 samples\nfeature f0 = top_share(answers)\n"
                      + "".join(f"feature f{i} = f{i - 1} * 1\n" for i in range(1, n))
                      + f"stop {{ when f{n - 1} >= 0.9 }}\nanswer majority_vote")
    assert diagnostics_of(chain(100)) == ()  # f99 is 100 deep: as deep as TTC015 allows
    (problem,) = diagnostics_of(chain(1000))
    assert problem.code == "TTC017" and underlined(problem) == "f99 * 1"
    assert "feature 'f100' is 101 operations deep" in problem.message
    # a side of a condition counts the features it reads too
    (problem,) = diagnostics_of(chain(100).replace("when f99 >= 0.9", "when f99 + 1 >= 0.9"))
    assert problem.code == "TTC017" and underlined(problem) == "f99 + 1"


def test_all_errors_of_a_phase_are_reported_together():
    source = policy(
        "budget { mean sample per query <= 8 }\nstop { when top_shar(answers) > agrement }",
        allocate="allocate fixed 4 maximize acuracy\n",
    )
    codes = sorted(d.code for d in diagnostics_of(source))
    assert codes == ["TTC101", "TTC103", "TTC107", "TTC108"]


def test_syntax_errors_in_several_statements_are_reported_together():
    source = "policy t\nbudgte { }\nprobe 4 sample\nfeature a = 1 +* 2\nallocate fixed 4\n"
    assert [(d.code, d.span.line) for d in diagnostics_of(source)] == [
        ("TTC011", 2),
        ("TTC011", 3),
        ("TTC011", 4),
    ]


def test_batch_budget_needs_the_number_of_queries():
    from ttcdsl import parse_policy
    from ttcdsl.lang.feasibility import check_batch_budget

    text = policy("budget { total samples <= 100  samples per query in 2..8 }", allocate="allocate optimal\n")
    text = text.replace("policy t\n", "policy t\nanswer majority_vote\n")
    checked = parse_policy(text)
    assert check_batch_budget(checked, 50) == ()
    (problem,) = check_batch_budget(checked, 51)
    assert problem.code == "TTC400"
    assert underlined(problem) == "total samples <= 100"
    assert "102" in problem.message
    assert "lower the per-query minimum to 1 or less" in problem.help
    # under one sample per query a lower minimum serves nothing: the batch must shrink
    (problem,) = check_batch_budget(checked, 1000)
    assert "run at most 50 queries per batch" in problem.help and "minimum to 0" not in problem.help


def test_the_default_minimum_of_one_sample_per_query_is_checked_though_not_written():
    # the planner gives every query at least one sample under `allocate optimal`: a mean or a
    # batch total below that passed `ttc check` and was refused by `ttc plan`
    from ttcdsl import parse_policy
    from ttcdsl.lang.feasibility import check_batch_budget

    tiny = policy("budget { mean samples per query <= 0.5 }\nanswer majority_vote", allocate="allocate optimal\n")
    (problem,) = diagnostics_of(tiny)
    assert problem.code == "TTC400" and underlined(problem) == "0.5"
    assert [problem.source.text[n.span.start:n.span.end] for n in problem.notes] == ["allocate optimal"]
    # the bandit decides its spend online: no floor to check against
    bandit = policy("budget { mean samples per query <= 0.5 }\nanswer majority_vote",
                    allocate="allocate bandit { round 1 samples  solved when top_share >= 0.9 }\n")
    assert "TTC400" not in [d.code for d in diagnostics_of(bandit)]
    total = parse_policy(policy("answer majority_vote\nbudget { total samples <= 100 }", allocate="allocate optimal\n"))
    assert check_batch_budget(total, 100) == ()
    (problem,) = check_batch_budget(total, 101)
    assert problem.code == "TTC400" and "101 queries need at least 101 samples" in problem.message


PER_BIN_TOTAL = policy(
    "budget { mean samples per query <= 8  total samples <= 300 for medium  samples per query in 2..16 }\n"
    "probe 2 samples\nfeature agreement = top_share(answers)\ndifficulty = 1 - agreement\n"
    "bins by difficulty quantiles [0.4, 0.8] as easy, medium, hard\n"
    "strategy easy = majority_vote\nstrategy medium = majority_vote\nstrategy hard = majority_vote",
    allocate="allocate optimal\n")


def test_check_queries_refuses_a_probe_that_could_break_a_bins_limit_as_the_run_does():
    # the probe is spent before the bin is known: 200 queries x 2 probe samples may all land in
    # `medium`, over its 300; `ttc run` refused this after check --queries 200 and plan accepted
    from ttcdsl import parse_policy
    from ttcdsl.lang.feasibility import check_batch_budget

    checked = parse_policy(PER_BIN_TOTAL)
    assert check_batch_budget(checked, 150) == ()
    (problem,) = check_batch_budget(checked, 200)
    assert problem.code == "TTC400" and underlined(problem) == "total samples <= 300 for medium"
    assert "2 probe samples x 200 queries, over 300" in problem.message
    assert "lower the probe" in problem.help
    # a per-query token cap of a bin: 2 probe samples of up to 4096 tokens each
    capped = parse_policy(PER_BIN_TOTAL.replace("total samples <= 300 for medium",
                                                "tokens per query <= 3000 for hard")
                          .replace("max_tokens 64", "max_tokens 4096"))
    (problem,) = check_batch_budget(capped, 1)
    assert underlined(problem) == "tokens per query <= 3000 for hard" and "8192 tokens" in problem.message


def test_a_bad_number_suffix_names_the_valid_ones():
    (problem,) = diagnostics_of(policy("budget { mean samples per query <= 8m }"))
    assert problem.code == "TTC014" and "k (thousand), M (million), G (billion)" in problem.message
    assert "'m' is not 'M'" in problem.message
    (problem,) = diagnostics_of(policy("budget { mean samples per query <= 8kk }"))
    assert "'kk' after the digits" in problem.message and "'m' is not" not in problem.message
    for fine in ("8", "8k", "8K", "4M", "2G", "1e3", "1.5e-3", "4_000", "0.95"):
        assert diagnostics_of(policy(f"stop {{ when prompt_nll <= {fine} }}\nanswer majority_vote")) == (), fine


def test_a_stray_character_joined_condition_or_trailing_comma_says_what_was_likely_meant():
    # every stray character was told "names are ASCII letters ...; comments start with '#'"
    cases = {
        "feature a = samples;": "remove the ';'",
        "sampling { max_tokens: 64 }": "`max_tokens 1024`",
        "policy u 'quoted'": "double quotes",
        "policy u \u201cquoted\u201d": "plain double quotes",
        "stop { when top_share >= 90% }": "0.9, not 90%",
        "stop { when top_share >= \u22120.5 }": "plain minus",
        "stop {\u00a0when top_share >= 0.5 }": "invisible character (U+00A0)",
        "stop { when top_share >= \uff10.5 }": "ASCII digits",
        "stop { when top_share >= 0.9 && samples >= 4 }": "not joined with and/or/not",
        "stop { when top_share >= 0.9 and samples >= 4 }": "write `X after N`",
    }
    for text, help_part in cases.items():
        problems = [d for d in diagnostics_of(policy(text + "\nanswer majority_vote"))
                    if d.code in ("TTC010", "TTC011")]
        assert problems and help_part in problems[0].help, (text, [(d.code, d.help) for d in problems])
    for text in ("probe 2 samples\nfeature a = top_share(answers)\ndifficulty = 1 - a\n"
                 "bins by difficulty quantiles [0.5,] as x, y", "stop { when clip(samples, 0, 1,) > 0.5 }"):
        (problem,) = diagnostics_of(policy(text + "\nanswer majority_vote"))
        assert "lists take no trailing comma" in problem.help, text
    # `as x, y,` then `strategy x = ...`: the comma made `strategy` a bin name; the error is at `x`
    (problem,) = diagnostics_of(policy("probe 2 samples\nfeature a = top_share(answers)\ndifficulty = 1 - a\n"
                                       "bins by difficulty quantiles [0.5] as x, y,  # two bins\n"
                                       "strategy x = single\nstrategy y = majority_vote"))
    assert underlined(problem) == "x" and "remove the ',' before 'strategy'" in problem.help
    (letter,) = diagnostics_of(policy("feature gr\u00f6\u00dfe = samples\nanswer majority_vote"))
    assert "ASCII letters" in letter.help


def test_an_empty_or_comment_only_file_is_one_diagnostic_at_1_1():
    for text in ("", "\n \t\n", "# nothing here\n  # still nothing"):
        (diagnostic,) = diagnostics_of(text)
        assert diagnostic.code == "TTC016" and (diagnostic.span.line, diagnostic.span.column) == (1, 1)
    # A comment before a statement is not an empty file.
    assert "TTC016" not in [d.code for d in diagnostics_of("# note\n" + policy("answer majority_vote"))]
