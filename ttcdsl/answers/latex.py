"""Small helpers over LaTeX strings: balanced-brace groups and macro unwrapping."""

from __future__ import annotations


def group_end(s: str, start: int) -> int | None:
    """Index just past the brace group opening at ``s[start] == '{'``, or None if unbalanced."""
    if start >= len(s) or s[start] != "{":
        return None
    depth = 0
    i = start
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def last_macro_argument(s: str, macros: tuple[str, ...]) -> str | None:
    """The braced argument of the last occurrence of any of ``macros`` (e.g. ``\\boxed``)."""
    best: tuple[int, str] | None = None
    for macro in macros:
        pos = s.rfind(macro)
        while pos != -1:
            j = pos + len(macro)
            while j < len(s) and s[j] == " ":
                j += 1
            end = group_end(s, j)
            if end is not None:
                if best is None or pos > best[0]:
                    best = (pos, s[j + 1 : end - 1])
                break
            pos = s.rfind(macro, 0, pos)
    return None if best is None else best[1]


def unwrap_macro(s: str, macro: str, keep: bool = True) -> str:
    """Replace every ``macro{X}`` by ``X`` (``keep``) or by nothing; unbalanced uses stay."""
    out: list[str] = []
    i = 0
    while True:
        pos = s.find(macro, i)
        if pos == -1:
            out.append(s[i:])
            return "".join(out)
        after = pos + len(macro)
        if after < len(s) and s[after].isalpha():  # \textbf is not \text
            out.append(s[i:after])
            i = after
            continue
        j = after
        while j < len(s) and s[j] == " ":
            j += 1
        end = group_end(s, j)
        if end is None:
            out.append(s[i:after])
            i = after
            continue
        out.append(s[i:pos])
        if keep:
            out.append(s[j + 1 : end - 1])
        i = end


def strip_outer(s: str, macros: tuple[str, ...]) -> str:
    """Remove wrappers such as ``\\boxed{...}`` that enclose the whole string, repeatedly."""
    changed = True
    while changed:
        changed = False
        for macro in macros:
            if s.startswith(macro):
                j = len(macro)
                while j < len(s) and s[j] == " ":
                    j += 1
                end = group_end(s, j)
                if end == len(s):
                    s = s[j + 1 : end - 1].strip()
                    changed = True
    return s
