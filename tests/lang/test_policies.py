"""Every example policy: checks cleanly, matches its golden AST and IR, is canonically formatted."""

from __future__ import annotations

import pytest

import ttcdsl
from ttcdsl.lang.api import check_program, read_source
from ttcdsl.lang.dump import dump
from ttcdsl.lang.fmt import format_program
from ttcdsl.lang.parse import parse_source
from ttcdsl.lang.source import Source

from tests.lang.golden import assert_golden
from tests.paths import POLICIES

ids = [p.stem for p in POLICIES]


def test_there_are_at_least_five_example_policies_with_header_comments():
    assert len(POLICIES) >= 5
    for path in POLICIES:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# "), f"{path.name} must open with a comment saying what it does"


@pytest.mark.parametrize("path", POLICIES, ids=ids)
def test_policy_checks_without_errors_or_warnings(path):
    _, warnings = check_program(parse_source(read_source(path)))
    assert warnings == ()
    policy = ttcdsl.load_policy(path)
    assert policy.name == path.stem
    assert policy.sampling.max_tokens > 0
    assert len(policy.source_hash) == 64


@pytest.mark.parametrize("path", POLICIES, ids=ids)
def test_policy_ast_matches_golden(path):
    program = parse_source(read_source(path))
    assert_golden(f"{path.stem}.ast", dump(program.statements) + "\n")


@pytest.mark.parametrize("path", POLICIES, ids=ids)
def test_policy_ir_matches_golden(path):
    assert_golden(f"{path.stem}.ir", dump(ttcdsl.load_policy(path)) + "\n")


@pytest.mark.parametrize("path", POLICIES, ids=ids)
def test_policy_is_canonically_formatted_and_round_trips(path):
    source = read_source(path)
    program = parse_source(source)
    formatted = format_program(program)
    assert formatted == source.text, "run `ttc fmt` on the policy"
    again = parse_source(Source(name="again", text=formatted))
    assert dump(again.statements) == dump(program.statements)
    assert [c.text for c in again.comments] == [c.text for c in program.comments]
