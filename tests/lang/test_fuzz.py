"""No input, however broken, makes the front end raise anything but a DiagnosticError; whatever
parses formats to text that parses to the same tree."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttcdsl.lang.api import check_program, decode_source
from ttcdsl.lang.diagnostics import DiagnosticError
from ttcdsl.lang.dump import dump
from ttcdsl.lang.fmt import format_program
from ttcdsl.lang.parse import parse_source
from ttcdsl.lang.render import render_text, to_json
from ttcdsl.lang.source import Source

from tests.paths import POLICIES

CORPUS = [p.read_text(encoding="utf-8") for p in POLICIES]
TOKENS = [
    "policy", "budget", "{", "}", "(", ")", "[", "]", ",", "=", "..", "<=", ">=", "-", "*", "/",
    "samples", "tokens", "probe", "feature", "when", "stop", "bins", "quantiles", "as", "4", "0.5",
    "1e999", "1__0", '"', '"x"', "#", "\n", "allocate", "bandit", "fixed", "answer", "\x00", "é",
]

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def front_end(text: str) -> None:
    """Run everything a user can trigger on text; only DiagnosticError may escape."""
    source = Source(name="fuzz.ttc", text=text)
    try:
        program = parse_source(source)
    except DiagnosticError as error:
        _render(error)
        return
    formatted = format_program(program)
    again = parse_source(Source(name="formatted.ttc", text=formatted))
    assert dump(again.statements) == dump(program.statements)
    assert [c.text for c in again.comments] == [c.text for c in program.comments]
    assert format_program(again) == formatted
    try:
        check_program(program)
    except DiagnosticError as error:
        _render(error)


def _render(error: DiagnosticError) -> None:
    assert error.diagnostics
    render_text(error.diagnostics)
    for diagnostic in error.diagnostics:
        to_json(diagnostic)
        if diagnostic.span is not None:
            assert 0 <= diagnostic.span.start <= diagnostic.span.end <= len(diagnostic.source.text)


@st.composite
def mutated_policies(draw):
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "truncate", "duplicate"]))
        if action == "delete":
            length = draw(st.integers(1, 20))
            text = text[:position] + text[position + length :]
        elif action == "insert":
            text = text[:position] + " " + draw(st.sampled_from(TOKENS)) + " " + text[position:]
        elif action == "replace":
            text = text[:position] + draw(st.characters()) + text[position + 1 :]
        elif action == "truncate":
            text = text[:position]
        else:
            line = draw(st.sampled_from(text.splitlines() or [""]))
            text = text[:position] + "\n" + line + "\n" + text[position:]
    return text


@FUZZ
@given(mutated_policies())
def test_mutated_policies_never_crash(text):
    front_end(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_token_soup_never_crashes(text):
    front_end(text)


@FUZZ
@given(st.text(max_size=300))
def test_random_text_never_crashes(text):
    front_end(text)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data):
    try:
        source = decode_source("bytes.ttc", data)
    except DiagnosticError as error:
        assert error.diagnostics[0].code == "TTC002"
        _render(error)
        return
    front_end(source.text)
