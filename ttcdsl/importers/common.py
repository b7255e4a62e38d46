"""What the importers share: options, answer canonicalisation, metadata, token columns."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ttcdsl.importers.tokens import TokenCounter
from ttcdsl.samples.schema import RunMeta

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportOptions:
    """Choices every importer takes.

    ``model``, ``backend``, ``seed`` and ``temperature`` describe the run that produced the log
    (``temperature`` also fills each row's ``temperature``); ``tokenizer`` counts tokens of the
    logged texts; ``keep_text=False`` drops the response texts from the table (token counts are
    still taken from them first); ``answer_kind`` overrides the kind used to canonicalise answers.
    """

    model: str | None = None
    backend: str | None = None
    seed: int | None = None
    temperature: float | None = None
    tokenizer: TokenCounter | None = None
    keep_text: bool = True
    answer_kind: str | None = None
    notes: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


def canonicalizer(kind: str | None) -> Callable[[str], str | None]:
    """``ttcdsl.answers.canonical_vote`` for ``kind``; when ``kind`` is ``None`` the answer as
    logged less its surrounding whitespace (a spreadsheet's "5" and " 5" split one answer's
    votes three ways). Either way None when nothing is left: no answer, not a vote."""
    if kind is None:
        return lambda answer: answer.strip() or None
    from ttcdsl.answers import canonical_vote
    from ttcdsl.answers.kinds import check_kind
    from ttcdsl.errors import UserError

    try:
        check_kind(kind)
    except ValueError as error:
        raise UserError(str(error)) from None
    return lambda answer: canonical_vote(answer, kind)


# The serving APIs' names for "the generation hit its token limit" and "it ended by itself".
# A table keeps the OpenAI names, which the runtime reads: "length" is a sample cut at max_tokens.
_CUT = frozenset({"length", "max_tokens", "max_length", "max_new_tokens", "max_output_tokens"})
_ENDED = frozenset({"stop", "end_turn", "stop_sequence", "eos", "eos_token"})


def finish_reason(logged: str | None, unknown: dict[str, int]) -> str | None:
    """A logged finish reason in the table's terms: Anthropic's ``max_tokens``, Gemini's
    ``MAX_TOKENS`` and the like are ``"length"`` (cut at max_tokens), their natural ends
    ``"stop"``; any other reason is kept as logged and counted in ``unknown`` (the import says
    so: only ``"length"`` counts as cut)."""
    if logged is None:
        return None
    key = logged.strip().lower()
    if key in _CUT:
        return "length"
    if key in _ENDED:
        return "stop"
    unknown[logged] = unknown.get(logged, 0) + 1
    return logged


def answer_note(kind: str | None) -> str:
    if kind is None:
        return "as logged, surrounding whitespace stripped (not canonicalised)"
    return f"canonicalised with ttcdsl.answers.canonicalize(kind={kind!r})"


def count_tokens(options: ImportOptions, texts: Sequence[str | None]) -> list[int | None]:
    """Token counts of ``texts`` (``None`` where there is no text or no tokenizer)."""
    if options.tokenizer is None:
        return [None] * len(texts)
    present = [i for i, t in enumerate(texts) if t is not None]
    counts = options.tokenizer.count([texts[i] for i in present])  # type: ignore[misc]
    result: list[int | None] = [None] * len(texts)
    for i, n in zip(present, counts, strict=True):
        result[i] = n
    return result


def make_meta(
    options: ImportOptions,
    *,
    source: str,
    notes: Mapping[str, Any],
    counted: Sequence[str] = (),
    logged: Sequence[str] = (),
) -> RunMeta:
    """The metadata of an imported table. ``counted`` names the token columns the tokenizer
    filled and ``logged`` those taken from the log (both recorded in ``notes["token_counts"]``)."""
    all_notes = dict(notes)
    said = []
    if logged:
        said.append(f"{' and '.join(logged)} as logged")
    if options.tokenizer is not None and counted:
        said.append(
            f"{' and '.join(counted)} counted with {options.tokenizer.description} from the logged "
            "text, without special tokens"
        )
    filled = set(logged) | (set(counted) if options.tokenizer is not None else set())
    missing = [c for c in ("prompt_tokens", "completion_tokens") if c not in filled]
    if missing:
        said.append(f"{' and '.join(missing)} unknown (null)")
    all_notes["token_counts"] = "; ".join(said)
    all_notes.update(options.notes)
    sampling = {} if options.temperature is None else {"temperature": options.temperature}
    return RunMeta(
        model=options.model,
        backend=options.backend or "import",
        seed=options.seed,
        sampling=sampling,
        source=source,
        tokenizer=options.tokenizer.description if options.tokenizer and counted else None,
        notes=all_notes,
    )
