"""Text -> AST. The one place where lark's exceptions are translated into diagnostics.

After a syntax error the parser resumes at the next line that starts (in column 1) with a
statement keyword, so one run reports the errors of several statements, not just the first.
"""

from __future__ import annotations

import re
from typing import Any

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.visitors import Transformer_NonRecursive, v_args

from ttcdsl.lang import ast
from ttcdsl.lang.diagnostics import Diagnostics, did_you_mean
from ttcdsl.lang.grammar import comment_sink, parser
from ttcdsl.lang.numbers import NumberError, parse_number
from ttcdsl.lang.source import Source, Span

MAX_EXPRESSION_DEPTH = 100
MAX_SYNTAX_ERRORS = 10

STATEMENT_KEYWORDS = (
    "policy",
    "offline",
    "budget",
    "sampling",
    "probe",
    "feature",
    "difficulty",
    "bins",
    "strategy",
    "scorer",
    "stop",
    "allocate",
    "answer",
)
_STATEMENT_START = re.compile(rf"^(?:{'|'.join(STATEMENT_KEYWORDS)})\b", re.MULTILINE)

_BRACE_SCAN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[{}]')

# How the terminals that are not plain strings read in a message.
_TERMINAL_WORDS = {"NAME": "a name", "NUMBER": "a number", "STRING": "a string", "$END": "end of file"}


def parse_source(source: Source) -> ast.Program:
    """Parse a whole policy file; raises DiagnosticError with every syntax error found."""
    diagnostics = Diagnostics(source)
    if _is_blank(source.text):
        # Said once, where the file starts, instead of every missing statement without a place.
        diagnostics.error(
            "TTC016",
            "the policy file has only comments"
            if "#" in source.text
            else "the policy file is empty",
            source.span(0, 0),
            label="no statements",
            help='start with `policy my_policy "what it does"`, then e.g. `allocate fixed 8`',
        )
        diagnostics.raise_if_errors()
    tree = _parse_with_recovery(source, diagnostics)
    diagnostics.raise_if_errors()
    assert tree is not None
    program = _ToAst(source, diagnostics).transform(tree)
    diagnostics.raise_if_errors()
    return program


def _is_blank(text: str) -> bool:
    """No statements: only whitespace and comments (a comment runs from `#` to the line end)."""
    blank = " \t\f\r"  # the grammar's whitespace, besides the line end
    return all(line.lstrip(blank)[:1] in ("", "#") for line in text.split("\n"))


def _parse_with_recovery(source: Source, diagnostics: Diagnostics) -> Tree | None:
    text = source.text
    resumed_at = 0
    attempt = text
    while True:
        comment_sink.comments = []
        try:
            tree = parser().parse(attempt)
        except UnexpectedInput as error:
            offset = _report_syntax_error(error, source, diagnostics)
        else:
            if not len(diagnostics):
                tree.comments = list(comment_sink.comments)  # type: ignore[attr-defined]
                return tree
            return None
        resume = _next_statement_start(text, after=max(offset, resumed_at + 1))
        if resume is None or len(diagnostics) >= MAX_SYNTAX_ERRORS:
            return None
        resumed_at = resume
        # Blank out what came before (keeping newlines) so positions in the rest stay right.
        attempt = re.sub(r"[^\n]", " ", text[:resume]) + text[resume:]


def _next_statement_start(text: str, *, after: int) -> int | None:
    match = _STATEMENT_START.search(text, after)
    return match.start() if match else None


def _report_syntax_error(error: UnexpectedInput, source: Source, diagnostics: Diagnostics) -> int:
    """Adds one diagnostic for a lark error; returns the offset where the problem is."""
    if isinstance(error, UnexpectedCharacters):
        offset = error.pos_in_stream
        char = source.text[offset] if offset < len(source.text) else ""
        if char == '"':
            line_end = source.text.find("\n", offset)
            end = len(source.text) if line_end < 0 else line_end
            diagnostics.error(
                "TTC013",
                "unterminated string",
                source.span(offset, end),
                label="this string has no closing quote on its line",
                help='end the string with `"` before the end of the line',
            )
        else:
            diagnostics.error(
                "TTC010",
                f"unexpected character {_show_char(char)}",
                source.span(offset, offset + 1),
                label="not part of the language",
                help=_character_help(char),
            )
        return offset

    if isinstance(error, UnexpectedToken) and error.token.type != "$END":
        token: Token = error.token
        start = token.start_pos or 0
        line_start = source.text.rfind("\n", 0, start) + 1
        brace = _unclosed_brace(source.text, line_start)
        if brace is not None and _STATEMENT_START.match(source.text, line_start):
            # `budget {` ... then a new statement: the usual cause is a missing `}`.
            line = source.position(line_start)[0]
            diagnostics.error(
                "TTC011",
                "this block is not closed before the next statement",
                source.span(brace, brace + 1),
                label="this `{` has no matching `}`",
                help=f"add `}}` before line {line}",
            )
            return line_start
        expected = _describe_expected(error.expected)
        hint = None
        if token.type == "NAME" or str(token).isidentifier():
            keywords = [e.strip("'") for e in expected if e.startswith("'")]
            hint = did_you_mean(str(token), keywords)
        if str(token) in ("and", "or", "not"):
            hint = _JOINED_CONDITIONS
        trailing = _TRAILING_COMMA.search(_without_comments(source.text[max(0, start - 400):start]))
        if trailing and str(token) in ("]", ")"):
            hint = f"remove the ',' before '{token}': lists take no trailing comma"
        elif trailing and trailing.group(1):
            # `as easy, hard,` then `strategy easy = ...`: the comma made `strategy` a bin name
            hint = (f"remove the ',' before '{trailing.group(1)}': it made '{trailing.group(1)}' one more "
                    "name of the list, and the statement after it lost its keyword")
        start = token.start_pos or 0
        diagnostics.error(
            "TTC011",
            f"unexpected {_describe_token(token)}",
            source.span(start, token.end_pos or start + len(str(token))),
            label="expected " + _join_alternatives(expected),
            help=hint or "expected " + _join_alternatives(expected),
        )
        return start

    # End of input in the middle of a statement (UnexpectedToken on $END, or UnexpectedEOF).
    brace = _unclosed_brace(source.text, len(source.text))
    if brace is not None:
        diagnostics.error(
            "TTC012",
            "unexpected end of file: a block is not closed",
            source.span(brace, brace + 1),
            label="this `{` has no matching `}`",
            help="add `}` at the end of the block",
        )
        return len(source.text)
    expected_names = getattr(error, "expected", ()) or ()
    expected = _describe_expected(expected_names)
    span = _last_token_span(source)
    diagnostics.error(
        "TTC012",
        "unexpected end of file",
        span,
        label="the statement is not finished",
        help="expected " + _join_alternatives(expected) if expected else "finish the statement",
    )
    return len(source.text)


def _unclosed_brace(text: str, end: int) -> int | None:
    """Offset of the innermost `{` still open at `end` (strings and comments skipped)."""
    open_braces: list[int] = []
    for match in _BRACE_SCAN.finditer(text, 0, end):
        token = match.group()
        if token == "{":
            open_braces.append(match.start())
        elif token == "}" and open_braces:
            open_braces.pop()
    return open_braces[-1] if open_braces else None


def _last_token_span(source: Source) -> Span:
    stripped = source.text.rstrip()
    if not stripped:
        return source.end_span()
    end = len(stripped)
    start = end - 1
    while start > 0 and not source.text[start - 1].isspace():
        start -= 1
    return source.span(start, end)


def _describe_token(token: Token) -> str:
    text = str(token)
    if token.type == "NUMBER":
        return f"number {text}"
    if token.type == "STRING":
        return f"string {text[:40]}"
    return f"'{text}'"


def _describe_expected(names: Any) -> list[str]:
    terminals = {t.name: t for t in parser().terminals}
    words = set()
    for name in names:
        if name in _TERMINAL_WORDS:
            words.add(_TERMINAL_WORDS[name])
        elif name in terminals and terminals[name].pattern.type == "str":
            words.add(f"'{terminals[name].pattern.value}'")
        else:
            words.add(name.lower())
    # Keywords first (they are what people mistype), then the general classes.
    return sorted(words, key=lambda w: (not w.startswith("'"), w))


def _join_alternatives(words: list[str], limit: int = 8) -> str:
    if not words:
        return "something else"
    if len(words) > limit:
        words = [*words[:limit], "..."]
    if len(words) == 1:
        return words[0]
    return "one of " + ", ".join(words)


_TRAILING_COMMA = re.compile(rf",\s*(?:({'|'.join(STATEMENT_KEYWORDS)})\s*)?$")


def _without_comments(text: str) -> str:
    return re.sub(r"#[^\n]*", "", text)


_JOINED_CONDITIONS = (
    "conditions are not joined with and/or/not: each `when` rule stops the query on its own (write "
    "one rule per condition for 'or'); for `X and samples >= N` write `X after N`"
)

# What a user most likely meant by a character the language does not have.
_CHARACTER_HELP = {
    ";": "statements need no terminator; remove the ';'",
    ":": "a setting or limit has no ':'; write e.g. `max_tokens 1024`",
    "'": 'strings are in double quotes: "..."',
    "\u2018": 'strings are in plain double quotes: "..."',
    "\u2019": 'strings are in plain double quotes: "..."',
    "\u201c": 'strings are in plain double quotes ("), not typographic ones',
    "\u201d": 'strings are in plain double quotes ("), not typographic ones',
    "%": "write a share as a fraction: 0.9, not 90%",
    "&": _JOINED_CONDITIONS,
    "|": _JOINED_CONDITIONS,
    "!": "the only operators are + - * / and the comparisons >= <= > < == !=",
    "\u2212": "use the plain minus '-'",
    "\u2013": "use the plain minus '-'",
    "\u2014": "use the plain minus '-'",
    "\u2264": "write '<=' for \u2264",
    "\u2265": "write '>=' for \u2265",
    "\u2260": "write '!=' for \u2260",
}


def _character_help(char: str) -> str:
    import unicodedata

    if char in _CHARACTER_HELP:
        return _CHARACTER_HELP[char]
    if char and (char.isspace() or unicodedata.category(char) in ("Cf", "Zs", "Cc")):
        return f"an invisible character ({_show_char(char)}): replace it with a plain space, or delete it"
    if char.isdigit():
        return "numbers are written with the ASCII digits 0-9"
    return "names are ASCII letters (a-z, A-Z), digits and '_'; comments start with '#'"


def _show_char(char: str) -> str:
    if char == "":
        return "end of file"
    if char.isprintable():
        return f"'{char}'"
    return f"U+{ord(char):04X}"


def _span_of(positioned: Any) -> Span:
    """Lark tokens and rule metadata carry the same position attributes."""
    return Span(
        start=positioned.start_pos,
        end=positioned.end_pos,
        line=positioned.line,
        column=positioned.column,
        end_line=positioned.end_line,
        end_column=positioned.end_column,
    )


# ---- tree -> AST -----------------------------------------------------------------------------


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """Builds AST nodes bottom-up without recursion (deep inputs cannot overflow the stack)."""

    def __init__(self, source: Source, diagnostics: Diagnostics) -> None:
        super().__init__()
        self.source = source
        self.diagnostics = diagnostics
        self.depth: dict[int, int] = {}  # id(expression node) -> nesting depth
        self.too_deep_reported = False

    # -- helpers --
    def _span(self, meta: Any) -> Span:
        if getattr(meta, "empty", False):
            return self.source.span(0, 0)
        return _span_of(meta)

    def _token_span(self, token: Token) -> Span:
        return _span_of(token)

    def _name(self, token: Token | None) -> ast.Name | None:
        if token is None:
            return None
        return ast.Name(text=str(token), span=self._token_span(token))

    def _number(self, token: Token, *, negative: bool = False, span: Span | None = None) -> ast.Number:
        literal = str(token)
        try:
            value = parse_number(literal)
        except NumberError as error:
            self.diagnostics.error(
                "TTC014",
                str(error),
                self._token_span(token),
                label="invalid number",
                help="write it like 8, 0.95, 4_000_000, 1e-3, 8k or 4M",
            )
            value = 0
        if negative:
            value, literal = -value, "-" + literal
        return ast.Number(value=value, literal=literal, span=span or self._token_span(token))

    def _expr(self, node: Any, children: tuple[Any, ...]) -> Any:
        depth = 1 + max((self.depth.get(id(c), 0) for c in children), default=0)
        self.depth[id(node)] = depth
        if depth > MAX_EXPRESSION_DEPTH and not self.too_deep_reported:
            self.too_deep_reported = True
            self.diagnostics.error(
                "TTC015",
                # a flat chain (a + b + c ...) is as deep as it has operators: "nested" alone
                # told the writer of a long sum of nothing they could see in it
                f"expression more than {MAX_EXPRESSION_DEPTH} operations deep (each operator of "
                "a chain like a + b + c counts, as each nested operation does)",
                node.span,
                label="too deep",
                help="split the expression into several features",
            )
        return node

    # -- program --
    def start(self, meta: Any, children: list[Any]) -> ast.Program:
        return ast.Program(statements=tuple(children), comments=(), source=self.source)

    def transform(self, tree: Tree) -> ast.Program:  # type: ignore[override]
        program = super().transform(tree)
        comments = tuple(
            ast.Comment(text=str(t).rstrip(), span=self._token_span(t))
            for t in getattr(tree, "comments", ())
        )
        return ast.Program(statements=program.statements, comments=comments, source=self.source)

    def policy_decl(self, meta: Any, c: list[Any]) -> ast.PolicyDecl:
        return ast.PolicyDecl(name=self._name(c[0]), description=c[1], span=self._span(meta))

    def offline_decl(self, meta: Any, c: list[Any]) -> ast.OfflineDecl:
        return ast.OfflineDecl(span=self._span(meta))

    # -- budget --
    def budget_block(self, meta: Any, c: list[Any]) -> ast.BudgetBlock:
        return ast.BudgetBlock(items=tuple(c), span=self._span(meta))

    def mean_limit(self, meta: Any, c: list[Any]) -> ast.MeanLimit:
        return ast.MeanLimit(
            unit=self._name(c[0]), value=self._number(c[1]), bin=c[2], span=self._span(meta)
        )

    def total_limit(self, meta: Any, c: list[Any]) -> ast.TotalLimit:
        return ast.TotalLimit(
            unit=self._name(c[0]), value=self._number(c[1]), bin=c[2], span=self._span(meta)
        )

    def range_limit(self, meta: Any, c: list[Any]) -> ast.RangeLimit:
        return ast.RangeLimit(
            unit=self._name(c[0]),
            low=self._number(c[1]),
            high=self._number(c[2]),
            bin=c[3],
            span=self._span(meta),
        )

    def cap_limit(self, meta: Any, c: list[Any]) -> ast.CapLimit:
        return ast.CapLimit(
            unit=self._name(c[0]), value=self._number(c[1]), bin=c[2], span=self._span(meta)
        )

    def rounds_limit(self, meta: Any, c: list[Any]) -> ast.RoundsLimit:
        return ast.RoundsLimit(value=self._number(c[0]), span=self._span(meta))

    def charge_prompt(self, meta: Any, c: list[Any]) -> ast.ChargePrompt:
        return ast.ChargePrompt(span=self._span(meta))

    def bin_scope(self, meta: Any, c: list[Any]) -> ast.Name:
        return self._name(c[0])

    # -- generation --
    def sampling_block(self, meta: Any, c: list[Any]) -> ast.SamplingBlock:
        return ast.SamplingBlock(bin=self._name(c[0]), settings=tuple(c[1:]), span=self._span(meta))

    def setting(self, meta: Any, c: list[Any]) -> ast.Setting:
        return ast.Setting(name=self._name(c[0]), value=c[1], span=self._span(meta))

    def signed_number(self, meta: Any, c: list[Any]) -> ast.Number:
        minus, token = c
        return self._number(token, negative=minus is not None, span=self._span(meta))

    def string(self, meta: Any, c: list[Any]) -> ast.String:
        literal = str(c[0])
        value = re.sub(r"\\(.)", r"\1", literal[1:-1])
        return ast.String(value=value, literal=literal, span=self._span(meta))

    def probe_decl(self, meta: Any, c: list[Any]) -> ast.ProbeDecl:
        return ast.ProbeDecl(count=self._number(c[0]), span=self._span(meta))

    # -- difficulty --
    def feature_decl(self, meta: Any, c: list[Any]) -> ast.FeatureDecl:
        return ast.FeatureDecl(name=self._name(c[0]), expr=c[1], span=self._span(meta))

    def difficulty_decl(self, meta: Any, c: list[Any]) -> ast.DifficultyDecl:
        return ast.DifficultyDecl(expr=c[0], span=self._span(meta))

    def bins_decl(self, meta: Any, c: list[Any]) -> ast.BinsDecl:
        key, method, cuts, names = c
        return ast.BinsDecl(
            key=key, method=method, cuts=tuple(cuts or ()), names=names, span=self._span(meta)
        )

    def difficulty_key(self, meta: Any, c: list[Any]) -> ast.Name:
        return ast.Name(text="difficulty", span=self._span(meta))

    def feature_key(self, meta: Any, c: list[Any]) -> ast.Name:
        return self._name(c[0])

    def bin_method(self, meta: Any, c: list[Any]) -> ast.Name:
        return self._name(c[0])

    def cuts(self, meta: Any, c: list[Any]) -> tuple[ast.Number, ...]:
        return tuple(c)

    def bin_names(self, meta: Any, c: list[Any]) -> tuple[ast.Name, ...]:
        return tuple(self._name(t) for t in c)

    def strategy_decl(self, meta: Any, c: list[Any]) -> ast.StrategyDecl:
        return ast.StrategyDecl(bin=self._name(c[0]), strategy=c[1], span=self._span(meta))

    def scorer_decl(self, meta: Any, c: list[Any]) -> ast.ScorerDecl:
        return ast.ScorerDecl(
            name=self._name(c[0]), kind=self._name(c[1]), model=c[2], logits=c[3],
            span=self._span(meta),
        )

    def logits(self, meta: Any, c: list[Any]) -> ast.Span:
        return self._span(meta)

    def answer_decl(self, meta: Any, c: list[Any]) -> ast.AnswerDecl:
        return ast.AnswerDecl(aggregation=c[0], span=self._span(meta))

    def one_of(self, meta: Any, c: list[Any]) -> ast.OneOf:
        return ast.OneOf(options=tuple(c), span=self._span(meta))

    def tuned(self, meta: Any, c: list[Any]) -> ast.Tuned:
        return ast.Tuned(values=tuple(c[0]), span=self._span(meta))

    def invocation(self, meta: Any, c: list[Any]) -> ast.Invocation:
        return ast.Invocation(name=self._name(c[0]), args=tuple(c[1] or ()), span=self._span(meta))

    def arguments(self, meta: Any, c: list[Any]) -> tuple[Any, ...]:
        return tuple(c)

    def name_arg(self, meta: Any, c: list[Any]) -> ast.Name:
        return self._name(c[0])

    # -- stopping and allocation --
    def stop_block(self, meta: Any, c: list[Any]) -> ast.StopBlock:
        return ast.StopBlock(bin=self._name(c[0]), rules=tuple(c[1:]), span=self._span(meta))

    def stop_rule(self, meta: Any, c: list[Any]) -> ast.StopRule:
        return ast.StopRule(condition=c[0], span=self._span(meta))

    def comparison(self, meta: Any, c: list[Any]) -> ast.Comparison:
        left, op, right, after = c
        return ast.Comparison(left=left, op=op, right=right, after=after, span=self._span(meta))

    def comparator(self, meta: Any, c: list[Any]) -> str:
        return str(c[0])

    def after(self, meta: Any, c: list[Any]) -> ast.Number:
        return self._number(c[0])

    def unanimous_last(self, meta: Any, c: list[Any]) -> ast.Unanimous:
        return ast.Unanimous(last=self._number(c[0]), disjoint=False, span=self._span(meta))

    def unanimous_window(self, meta: Any, c: list[Any]) -> ast.Unanimous:
        return ast.Unanimous(last=self._number(c[0]), disjoint=True, span=self._span(meta))

    def allocate_decl(self, meta: Any, c: list[Any]) -> ast.AllocateDecl:
        return ast.AllocateDecl(allocation=c[0], objective=c[1], span=self._span(meta))

    def objective(self, meta: Any, c: list[Any]) -> ast.Name:
        return self._name(c[0])

    def optimal(self, meta: Any, c: list[Any]) -> ast.Optimal:
        return ast.Optimal(span=self._span(meta))

    def per_query(self, meta: Any, c: list[Any]) -> ast.PerQuery:
        return ast.PerQuery(span=self._span(meta))

    def fixed_uniform(self, meta: Any, c: list[Any]) -> ast.FixedUniform:
        return ast.FixedUniform(count=self._number(c[0]), span=self._span(meta))

    def fixed_per_bin(self, meta: Any, c: list[Any]) -> ast.FixedPerBin:
        return ast.FixedPerBin(items=tuple(c), span=self._span(meta))

    def fixed_item(self, meta: Any, c: list[Any]) -> ast.FixedItem:
        return ast.FixedItem(bin=self._name(c[0]), count=self._number(c[1]), span=self._span(meta))

    def bandit(self, meta: Any, c: list[Any]) -> ast.Bandit:
        return ast.Bandit(items=tuple(c), span=self._span(meta))

    def bandit_round(self, meta: Any, c: list[Any]) -> ast.BanditRound:
        return ast.BanditRound(count=self._number(c[0]), span=self._span(meta))

    def bandit_explore(self, meta: Any, c: list[Any]) -> ast.BanditExplore:
        return ast.BanditExplore(rule=self._name(c[0]), span=self._span(meta))

    def bandit_solved(self, meta: Any, c: list[Any]) -> ast.BanditSolved:
        return ast.BanditSolved(condition=c[0], span=self._span(meta))

    def bandit_bill(self, meta: Any, c: list[Any]) -> ast.BanditBill:
        return ast.BanditBill(unit=self._name(c[0]), span=self._span(meta))

    # -- expressions --
    def number(self, meta: Any, c: list[Any]) -> ast.Number:
        return self._expr(self._number(c[0]), ())

    def ref(self, meta: Any, c: list[Any]) -> ast.Ref:
        name = self._name(c[0])
        return self._expr(ast.Ref(name=name, span=name.span), ())

    def call(self, meta: Any, c: list[Any]) -> ast.Call:
        args = tuple(a for a in c[1:] if a is not None)
        node = ast.Call(function=self._name(c[0]), args=args, span=self._span(meta))
        return self._expr(node, args)

    def _binary(self, op: str, meta: Any, c: list[Any]) -> ast.Binary:
        node = ast.Binary(op=op, left=c[0], right=c[1], span=self._span(meta))
        return self._expr(node, (c[0], c[1]))

    def add(self, meta: Any, c: list[Any]) -> ast.Binary:
        return self._binary("+", meta, c)

    def sub(self, meta: Any, c: list[Any]) -> ast.Binary:
        return self._binary("-", meta, c)

    def mul(self, meta: Any, c: list[Any]) -> ast.Binary:
        return self._binary("*", meta, c)

    def div(self, meta: Any, c: list[Any]) -> ast.Binary:
        return self._binary("/", meta, c)

    def neg(self, meta: Any, c: list[Any]) -> ast.Negate:
        return self._expr(ast.Negate(operand=c[0], span=self._span(meta)), (c[0],))
