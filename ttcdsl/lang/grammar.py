"""Finding the one grammar file and building the parser from it (once per process).

An installed wheel carries the grammar inside the package (`ttcdsl/grammar/ttc.lark`, mapped there
at build time); a source checkout or editable install reads `grammar/ttc.lark` at the top of the
repository. There is no second copy in the source tree.
"""

from __future__ import annotations

import functools
import threading
from importlib import resources
from pathlib import Path

from lark import Lark, Token

_REPOSITORY_GRAMMAR = Path(__file__).resolve().parents[2] / "grammar" / "ttc.lark"


def grammar_text() -> str:
    packaged = resources.files("ttcdsl").joinpath("grammar", "ttc.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    if _REPOSITORY_GRAMMAR.is_file():
        return _REPOSITORY_GRAMMAR.read_text(encoding="utf-8")
    raise FileNotFoundError(
        "the ttc grammar is missing: neither ttcdsl/grammar/ttc.lark (installed package) nor "
        "grammar/ttc.lark (source checkout) exists; reinstall ttcdsl"
    )


class _CommentSink(threading.local):
    """Comments are skipped by the parser; the lexer hands them here for the formatter."""

    def __init__(self) -> None:
        self.comments: list[Token] = []


comment_sink = _CommentSink()


def _collect_comment(token: Token) -> Token:
    comment_sink.comments.append(token)
    return token


def build_parser(*, strict: bool = False) -> Lark:
    """A fresh LALR parser; `strict=True` turns grammar conflicts into errors (used by the tests)."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        strict=strict,
        lexer_callbacks={"COMMENT": _collect_comment},
    )


@functools.cache
def parser() -> Lark:
    return build_parser()
