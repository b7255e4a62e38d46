"""The grammar: one file, conflict-free LALR(1), found from a source checkout."""

from __future__ import annotations

from ttcdsl.lang.grammar import build_parser, grammar_text

from tests.paths import REPO


def test_grammar_builds_without_conflicts_in_strict_mode():
    # strict=True turns shift/reduce conflicts and terminal collisions into errors.
    parser = build_parser(strict=True)
    assert parser.options.parser == "lalr"


def test_the_repository_grammar_is_the_only_grammar():
    grammars = [p for p in REPO.rglob("*.lark") if ".venv" not in p.parts and "build" not in p.parts]
    assert [p.relative_to(REPO).as_posix() for p in grammars] == ["grammar/ttc.lark"]
    assert grammar_text() == (REPO / "grammar" / "ttc.lark").read_text(encoding="utf-8")


def test_keywords_stay_usable_as_names_where_no_keyword_fits():
    # `samples` is a keyword after `probe 4` but an ordinary name in an expression.
    from ttcdsl import parse_policy

    policy = parse_policy(
        "policy p\nsampling { max_tokens 8 }\nprobe 2 samples\n"
        "stop { when samples >= 6 }\nanswer majority_vote\nallocate fixed 8\n"
    )
    assert policy.bins[0].stop[0].condition.left.name == "samples"


def test_unanimous_window_is_the_disjoint_form_and_window_stays_a_name():
    from ttcdsl import parse_policy
    from ttcdsl.lang import ir
    from ttcdsl.lang.fmt import format_program
    from ttcdsl.lang.parse import parse_source
    from ttcdsl.lang.source import Source

    text = (
        "policy p\nsampling { max_tokens 8 }\nprobe 2 samples\nfeature window = top_share\n"
        "stop {\n  when unanimous window 4\n  when unanimous last 3\n  when window >= 0.5\n}\n"
        "answer majority_vote\nallocate fixed 8\n"
    )
    rules = [r.condition for r in parse_policy(text).bins[0].stop]
    assert rules[0] == ir.UnanimousWindow(last=4, disjoint=True, span=rules[0].span)
    assert rules[1] == ir.UnanimousWindow(last=3, disjoint=False, span=rules[1].span)
    assert isinstance(rules[2], ir.Threshold) and rules[2].left.name == "window"
    formatted = format_program(parse_source(Source(name="p.ttc", text=text)))
    assert "when unanimous window 4" in formatted and "when unanimous last 3" in formatted


def test_the_language_reference_names_every_builtin():
    from ttcdsl.lang.vocabulary import (
        EXPLORE_RULES,
        FUNCTIONS,
        OBSERVABLES,
        SAMPLING_PARAMS,
        SCORER_KINDS,
        STRATEGIES,
    )

    reference = (REPO / "grammar" / "README.md").read_text(encoding="utf-8")
    names = [*FUNCTIONS, *OBSERVABLES, *SAMPLING_PARAMS, *SCORER_KINDS, *STRATEGIES, *EXPLORE_RULES]
    missing = [name for name in names if f"`{name}" not in reference and f" {name}" not in reference]
    assert missing == []


CANDIDATES = (
    "policy p\nsampling { max_tokens 8 }\nprobe 2 samples\nscorer s = confidence\n"
    "feature one = top_share(answers)\nfeature tuned = one\n"
    "bins by one thresholds [0.5] as lo, hi\n"
    "strategy lo = one of [majority_vote, weighted_vote(s), best_of_n(s)]\n"
    "strategy hi = majority_vote\n"
    "stop {\n  when beta_confidence >= tuned [0.8, 0.9, 0.95, 0.99] after 3\n  when tuned >= 0.9\n}\n"
    "budget { mean samples per query <= 4 }\nallocate optimal\n"
)


def test_candidate_lists_parse_to_the_ir_and_one_and_tuned_stay_names_elsewhere():
    from ttcdsl import parse_policy
    from ttcdsl.lang import ir

    policy = parse_policy(CANDIDATES)
    lo, hi = policy.bins
    assert lo.candidates == (
        ir.Strategy(kind="majority_vote"),
        ir.Strategy(kind="weighted_vote", scorer="s"),
        ir.Strategy(kind="best_of_n", scorer="s"),
    )
    assert lo.strategy == lo.candidates[0] and hi.candidates == () and lo.tuned and hi.tuned
    tuned, plain = lo.stop[0].condition, lo.stop[1].condition
    assert tuned.tuned == (0.8, 0.9, 0.95, 0.99) and tuned.after == 3
    assert plain.tuned == () and plain.left.name == "tuned"  # a feature called `tuned`


def test_fmt_round_trips_candidate_lists_and_is_idempotent():
    from ttcdsl.lang.dump import dump
    from ttcdsl.lang.fmt import format_program
    from ttcdsl.lang.parse import parse_source
    from ttcdsl.lang.source import Source

    messy = CANDIDATES.replace("one of [majority_vote, ", "one   of[ majority_vote ,").replace(
        "tuned [0.8, 0.9,", "tuned[0.8,0.9 ,"
    )
    once = format_program(parse_source(Source(name="p.ttc", text=messy)))
    assert "strategy lo = one of [majority_vote, weighted_vote(s), best_of_n(s)]" in once
    assert "when beta_confidence >= tuned [0.8, 0.9, 0.95, 0.99] after 3" in once
    assert format_program(parse_source(Source(name="p.ttc", text=once))) == once
    assert dump(parse_source(Source(name="a", text=once)).statements) == dump(
        parse_source(Source(name="a", text=CANDIDATES)).statements
    )


def test_a_reward_model_scorer_may_be_declared_logits_and_logits_stays_a_name():
    from ttcdsl import parse_policy
    from ttcdsl.lang.fmt import format_program
    from ttcdsl.lang.parse import parse_source
    from ttcdsl.lang.source import Source

    text = (
        'policy p\nsampling { max_tokens 8 }\nprobe 2 samples\n'
        'scorer rm = reward_model "orm" logits\nscorer prm = reward_model "prm"\n'
        "feature logits = mean(scores(rm))\nfeature p = mean(scores(prm))\n"
        "difficulty = logits + p\nbins by difficulty quantiles [0.5] as a, b\n"
        "strategy a = weighted_vote(rm)\nstrategy b = best_of_n(prm)\nallocate fixed 4\n"
    )
    policy = parse_policy(text)
    assert [(s.name, s.logits) for s in policy.scorers] == [("rm", True), ("prm", False)]
    formatted = format_program(parse_source(Source(name="p.ttc", text=text)))
    assert 'scorer rm = reward_model "orm" logits\n' in formatted
    assert 'scorer prm = reward_model "prm"\n' in formatted
    assert [s.logits for s in parse_policy(formatted).scorers] == [True, False]
