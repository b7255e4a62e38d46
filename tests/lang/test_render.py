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
