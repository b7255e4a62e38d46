"""What the two generating backends (``vllm``, ``openai``) share: the queries they serve, how a
generated text becomes an answer and a label, and ``--backend-option KEY=VALUE`` parsing.

A live backend generates text; the runtime stores answers and labels. So the backend knows the
run's dataset: a query's ``kind`` picks the extraction (:func:`ttcdsl.answers.parse_answer`), its
``gold`` labels the answer (:class:`~ttcdsl.importers.labels.GoldLabeller`: no gold, unknown; no
answer, wrong), and its chat ``messages`` are what is sent (a ``prompt`` is one user message).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ttcdsl.errors import UserError


class LiveQueries:
    """The dataset a live backend serves, by query id, with one labeller per answer kind."""

    def __init__(self, queries: Iterable[Any]) -> None:
        self.by_id = {q.id: q for q in queries}
        self._labellers: dict[str, Any] = {}

    def __contains__(self, query_id: str) -> bool:
        return query_id in self.by_id

    def get(self, query_id: str):
        return self.by_id.get(query_id)

    @property
    def labelled(self) -> bool:
        """Whether samples carry ``correct`` (some query has a gold answer)."""
        return any(q.gold is not None for q in self.by_id.values())

    def messages(self, query_id: str) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.by_id[query_id].chat()]

    def answer_and_label(self, query_id: str, text: str) -> tuple[str | None, bool | None]:
        """The canonical answer in ``text`` for the query's kind, and whether it equals the gold."""
        from ttcdsl.answers import parse_answer
        from ttcdsl.importers.labels import GoldLabeller

        query = self.by_id[query_id]
        answer = parse_answer(text, query.kind)
        labeller = self._labellers.get(query.kind)
        if labeller is None:
            labeller = self._labellers[query.kind] = GoldLabeller(query.kind)
        return answer, labeller(answer, query.gold)


def unknown_query_reason(query_id: str) -> str:
    return f"query {query_id!r} is not in the dataset this backend was given"


def mean_logprob(values: Sequence[float]) -> float | None:
    """The mean token log-probability of a completion (``None`` for an empty one: no tokens, no
    mean)."""
    return sum(values) / len(values) if values else None


def prompt_nll(values: Sequence[float | None]) -> float | None:
    """The prompt's mean token negative log-likelihood (nats) from the engine's prompt
    log-probabilities, one per prompt token: the first token has none (nothing precedes it), so
    the mean is over the others (``None`` for a one-token prompt)."""
    scored = [v for v in values[1:] if v is not None]
    if len(scored) != len(values) - 1 or not scored:
        return None  # a position without its log-probability: not measured, not guessed
    return -sum(scored) / len(scored)


# ------------------------------------------------------------------------------------- options


@dataclass(frozen=True, slots=True)
class Option:
    """One ``--backend-option``: its type and default, and what it means (shown in errors)."""

    kind: type
    default: Any
    help: str


def parse_options(
    items: Sequence[str], schema: Mapping[str, Option], backend: str
) -> dict[str, Any]:
    """``KEY=VALUE`` strings to typed values over the schema's defaults; an unknown key, a
    repeated key or a value of the wrong type is a :class:`UserError` naming the known keys."""
    values = {name: spec.default for name, spec in schema.items()}
    seen: set[str] = set()
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UserError(f"--backend-option {item!r}: expected KEY=VALUE")
        if key not in schema:
            raise UserError(
                f"--backend-option {key!r} is not an option of the {backend} backend",
                hint="options: " + ", ".join(f"{k} ({s.help})" for k, s in schema.items()),
            )
        if key in seen:
            raise UserError(f"--backend-option {key!r} is given twice")
        seen.add(key)
        values[key] = _convert(key, text.strip(), schema[key].kind)
    return values


_SIZE_SUFFIXES = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _convert(key: str, text: str, kind: type) -> Any:
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            # Sizes may say 1G / 512M (powers of 1024), as vLLM's own flags do.
            suffix = text[-1:].lower()
            if suffix in _SIZE_SUFFIXES:
                value = int(float(text[:-1]) * _SIZE_SUFFIXES[suffix])
            else:
                value = int(text)
            if value < 0:
                raise ValueError(text)
            return value
        if kind is float:
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(text)
            return value
        if not text:
            raise ValueError(text)
        return text
    except ValueError:
        expected = {bool: "true or false", int: "a non-negative integer (1G, 512M allowed)",
                    float: "a finite number"}.get(kind, "a non-empty string")
        raise UserError(f"--backend-option {key}={text!r}: expected {expected}") from None
