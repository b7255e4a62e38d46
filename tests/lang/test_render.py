"""Rendered diagnostics read like the feature: golden text for people, stable JSON for machines."""

from __future__ import annotations

import json

from ttcdsl.cli import main
from ttcdsl.lang.render import render_text

from tests.lang.golden import assert_golden
from tests.lang.helpers import diagnostics_of

BROKEN = """\
policy broken "several mistakes"
budget {
  mean sample per query <= 8
}
sampling { temperature 0.8  max_tokens 1024 }
probe 4 samples
feature agreement = top_share(answers)
difficulty = 1 - agrement
bins by difficulty quantiles [0.6, 0.3] as easy, hard
strategy easy = majority_vote
strategy hard = best_of_n(prm)
allocate optimal maximize accuracy
"""

SYNTAX = """\
policy broken
budget {
  mean samples per query <= 8
probe 4 samples
allocate fixed 4 @
"""


def test_rendered_semantic_errors_match_golden():
    assert_golden("diagnostics_semantic.txt", render_text(diagnostics_of(BROKEN, "broken.ttc")) + "\n")


def test_rendered_syntax_errors_match_golden():
    assert_golden("diagnostics_syntax.txt", render_text(diagnostics_of(SYNTAX, "syntax.ttc")) + "\n")


def test_check_json_output_names_file_line_column_and_code(tmp_path, capsys):
    path = tmp_path / "broken.ttc"
    path.write_text(BROKEN, encoding="utf-8")
    assert main(["check", "--format", "json", str(path)]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False
    (entry,) = payload["files"]
    assert entry["file"] == str(path) and entry["policy"] is None
    first = entry["diagnostics"][0]
    assert set(first) >= {"file", "line", "column", "end_line", "end_column", "code", "message", "help"}
    assert (first["code"], first["line"], first["column"]) == ("TTC107", 3, 8)


def _long_line_policy(terms: int, tail: str) -> str:
    return BROKEN.replace("difficulty = 1 - agrement",
                          "difficulty = " + " + ".join(["agreement"] * terms) + tail)


def _caret_under(rendered: str, needle: str) -> tuple[str, str]:
    """The source line of the snippet of the diagnostic that says ``needle``, and the text its
    underline marks."""
    block = next(b for b in rendered.split("\n\n") if needle in b.splitlines()[0])
    lines = block.splitlines()
    source = next(line for line in lines if line.lstrip().startswith("8 |"))
    underline = lines[lines.index(source) + 1]
    at = underline.index("^")
    width = len(underline[at:].split(" ")[0])
    return source, source[at:at + width]


def test_a_long_line_is_shown_as_a_window_around_the_span():
    """A generated policy's line of thousands of terms was echoed whole (240,000 characters for a
    20,000-term sum); the snippet is a window around the span, cut with "...", and the underline
    still marks the span's own text."""
    from ttcdsl.lang.render import SNIPPET_WIDTH

    rendered = render_text(diagnostics_of(_long_line_policy(50, " + agrement"), "long.ttc"))
    source, marked = _caret_under(rendered, "agrement")
    assert len(source) <= len("   8 | ") + SNIPPET_WIDTH + 6
    assert source.rstrip().endswith("agrement") and "| ..." in source
    assert marked.startswith("agrement")
    # an error at the line's start: cut at the end only
    rendered = render_text(diagnostics_of(_long_line_policy(20000, ""), "deep.ttc"))
    source, marked = _caret_under(rendered, "TTC015")
    assert source.endswith("...") and "| ..." not in source and marked.startswith("agreement + ")
    assert len(source) <= len("   8 | ") + SNIPPET_WIDTH + 6
