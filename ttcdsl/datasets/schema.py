"""The query dataset: what a batch asks, with optional gold answers.

A :class:`Query` has an ``id`` (matching ``query_id`` in the samples table), either a ``prompt``
(one user message) or chat ``messages``, an optional ``gold`` answer, and the task ``kind`` that
decides how answers are extracted, canonicalised and checked (``"math"``, ``"multiple_choice"``,
``"exact"``, ``"code"`` — the kinds of :mod:`ttcdsl.answers`). ``meta`` keeps whatever else the
source had (level, subject, the CRUXEval function, ...), JSON values only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ttcdsl.errors import shown

TASK_KINDS: tuple[str, ...] = ("math", "multiple_choice", "exact", "code")
ROLES: tuple[str, ...] = ("system", "user", "assistant")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class DatasetError(ValueError):
    """A value breaks the dataset schema; ``field`` names the offending field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One chat message."""

    role: str
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise DatasetError(
                f"a message role must be one of {', '.join(ROLES)}, got {self.role!r}",
                field="messages",
            )
        if not isinstance(self.content, str):
            raise DatasetError("a message's content must be a string", field="messages")


MAX_META_DEPTH = 64
"""How deeply ``meta`` may nest: far more than any source needs, far less than the stack allows."""


def _freeze_json(value: Any, where: str, depth: int = 0) -> Any:
    """Check ``value`` is JSON data; return it with mappings made read-only, lists as tuples."""
    if depth > MAX_META_DEPTH:
        raise DatasetError(f"{where} nests more than {MAX_META_DEPTH} levels deep", field="meta")
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise DatasetError(f"{where} must be finite", field="meta")
        return value
    if isinstance(value, list | tuple):
        return tuple(_freeze_json(v, where, depth + 1) for v in value)
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise DatasetError(f"{where} must have string keys", field="meta")
        return MappingProxyType(
            {k: _freeze_json(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
        )
    raise DatasetError(f"{where} holds a {type(value).__name__}, not JSON data", field="meta")


def _thaw_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _thaw_json(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """One query of a dataset (see the module docstring)."""

    id: str
    kind: str
    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    gold: str | None = None
    meta: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise DatasetError(f"id must be a non-empty string, got {self.id!r}", field="id")
        if self.kind not in TASK_KINDS:
            raise DatasetError(
                f"kind must be one of {', '.join(TASK_KINDS)}, got {self.kind!r}", field="kind"
            )
        if (self.prompt is None) == (self.messages is None):
            raise DatasetError(
                "a query has exactly one of prompt and messages",
                field="prompt" if self.prompt is None else "messages",
            )
        if self.prompt is not None and not isinstance(self.prompt, str):
            raise DatasetError(
                f"prompt must be a string, got {type(self.prompt).__name__}", field="prompt"
            )
        if self.messages is not None:
            messages = tuple(self.messages)
            if not messages or not all(isinstance(m, Message) for m in messages):
                raise DatasetError(
                    "messages must be a non-empty list of messages", field="messages"
                )
            object.__setattr__(self, "messages", messages)
        if self.gold is not None and not isinstance(self.gold, str):
            raise DatasetError(
                f"gold must be a string or null, got {type(self.gold).__name__}", field="gold"
            )
        if not isinstance(self.meta, Mapping):
            raise DatasetError("meta must be a JSON object", field="meta")
        object.__setattr__(self, "meta", _freeze_json(self.meta, "meta"))

    def chat(self) -> tuple[Message, ...]:
        """The query as chat messages (a prompt becomes one user message)."""
        if self.messages is not None:
            return self.messages
        return (Message(role="user", content=self.prompt or ""),)

    def to_dict(self) -> dict[str, Any]:
        """The JSONL form: ``id, kind, prompt | messages, gold, meta`` (absent parts left out)."""
        record: dict[str, Any] = {"id": self.id, "kind": self.kind}
        if self.prompt is not None:
            record["prompt"] = self.prompt
        else:
            record["messages"] = [
                {"role": m.role, "content": m.content} for m in self.messages or ()
            ]
        record["gold"] = self.gold
        if self.meta:
            record["meta"] = _thaw_json(self.meta)
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Query:
        known = ("id", "kind", "prompt", "messages", "gold", "meta")
        unknown = sorted(set(record) - set(known))
        if unknown:
            raise DatasetError(f"unknown field (a query has: {', '.join(known)})", field=unknown[0])
        for required in ("id", "kind"):
            if required not in record:
                raise DatasetError("missing required field", field=required)
        messages = record.get("messages")
        if messages is not None:
            if not isinstance(messages, list):
                raise DatasetError(
                    "messages must be a list of {role, content} objects", field="messages"
                )
            parsed = []
            for message in messages:
                if not isinstance(message, Mapping) or set(message) != {"role", "content"}:
                    raise DatasetError(
                        "each message must be an object with exactly role and content",
                        field="messages",
                    )
                parsed.append(Message(role=message["role"], content=message["content"]))
            messages = tuple(parsed)
        return cls(
            id=record["id"],
            kind=record["kind"],
            prompt=record.get("prompt"),
            messages=messages,
            gold=record.get("gold"),
            meta=record.get("meta") or {},
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    """An ordered set of queries with unique ids, and where it came from."""

    name: str
    queries: tuple[Query, ...]
    source: str | None = None

    def __post_init__(self) -> None:
        queries = tuple(self.queries)
        seen: set[str] = set()
        for query in queries:
            if not isinstance(query, Query):
                raise DatasetError(f"a dataset holds Query values, got {type(query).__name__}")
            if query.id in seen:
                raise DatasetError(f"duplicate query id {shown(query.id)}", field="id")
            seen.add(query.id)
        object.__setattr__(self, "queries", queries)

    def __len__(self) -> int:
        return len(self.queries)

    def __iter__(self) -> Iterator[Query]:
        return iter(self.queries)

    def ids(self) -> tuple[str, ...]:
        return tuple(q.id for q in self.queries)

    def by_id(self) -> Mapping[str, Query]:
        return MappingProxyType({q.id: q for q in self.queries})

    def subset(self, ids: Iterable[str]) -> Dataset:
        """The queries with the given ids, in dataset order; an unknown id is an error."""
        wanted = set(ids)
        missing = wanted - set(self.ids())
        if missing:
            raise DatasetError(
                f"unknown query id {shown(sorted(missing)[0])} in {self.name}", field="id"
            )
        return Dataset(
            name=self.name,
            queries=tuple(q for q in self.queries if q.id in wanted),
            source=self.source,
        )


def dumps_query(query: Query) -> str:
    """One JSONL line (without the line end)."""
    return json.dumps(query.to_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
