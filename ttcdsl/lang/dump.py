"""A readable, span-free dump of AST and IR trees: golden files and structural equality."""

from __future__ import annotations

import dataclasses
from typing import Any

from ttcdsl.lang.source import Source, Span


# Fields that are empty unless the policy uses a feature (candidate lists): left out when empty,
# so a policy that does not use it dumps as before.
_OPTIONAL = frozenset({"candidates", "tuned"})


def dump(node: Any, *, indent: str = "") -> str:
    """One field per line; spans and source text left out, so the dump says what was meant,
    not where it was written."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        fields = [
            (f.name, getattr(node, f.name))
            for f in dataclasses.fields(node)
            if not isinstance(getattr(node, f.name), Span | Source) and f.name != "span"
            and not (f.name in _OPTIONAL and getattr(node, f.name) == ())
        ]
        simple = all(_is_leaf(v) for _, v in fields)
        if simple and len(fields) <= 3:
            inner = ", ".join(f"{k}={_leaf(v)}" for k, v in fields)
            return f"{type(node).__name__}({inner})"
        lines = [f"{type(node).__name__}("]
        for key, value in fields:
            lines.append(f"{indent}  {key}={dump(value, indent=indent + '  ')}")
        lines.append(f"{indent})")
        return "\n".join(lines)
    if isinstance(node, tuple | list):
        if not node:
            return "()"
        if all(_is_leaf(v) for v in node):
            return "(" + ", ".join(_leaf(v) for v in node) + ")"
        items = [f"{indent}  {dump(v, indent=indent + '  ')}" for v in node]
        return "(\n" + ",\n".join(items) + f"\n{indent})"
    return _leaf(node)


def _is_leaf(value: Any) -> bool:
    return not (dataclasses.is_dataclass(value) or isinstance(value, tuple | list)) or (
        isinstance(value, tuple | list) and not value
    )


def _leaf(value: Any) -> str:
    if isinstance(value, tuple | list) and not value:
        return "()"
    return repr(value)
