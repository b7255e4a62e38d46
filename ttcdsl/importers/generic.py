"""Import any JSONL or CSV log with one sample per line, given which field holds what.

    mapping = FieldMapping(query_id="qid", answer="pred", correct="is_correct",
                           text="response", scores=(("rm", "reward"),))
    table = import_generic("log.jsonl", mapping)

Field names may be dotted paths into nested JSON objects (``"usage.completion_tokens"``); a
number picks a list's entry (``"response.body.choices.0.message.content"``, an OpenAI batch output
line), and a key applied to a list of objects takes it from each (``"outputs.text"`` of vLLM's
``outputs: [{"text": ...}, ...]``, for ``explode``); a key that itself contains a dot is matched
first. Only ``query_id`` is required. Without a
``sample_index`` field, samples are numbered 0, 1, ... per query in file order; without ``round``,
every row is round 0.

Values: ``query_id`` a string or integer; counts integers; ``correct`` a boolean, 0/1, or one of
true/false/yes/no (any case); scores and other reals numbers. In CSV every cell is text and is
parsed the same way; an empty cell is null, and so is a cell holding one of the ``na`` texts
(``--na NA`` for a log R wrote). Without ``na``, a cell holding what R, spreadsheets or databases
write for a missing value (:data:`MISSING_MARKERS`) is refused: read as text, ``NA`` is an
answer every such sample votes for. A mapped field that is missing on a line is an error
(a typo in the mapping must not quietly give a column of nulls); a JSON ``null`` is null. Token
counts come from the log's fields when mapped, else from the tokenizer (``completion_tokens`` from
the text field, ``prompt_tokens`` from the prompt field), else stay null.

Logs with one line per query and lists of samples (``{"idx": 3, "code": [8 responses],
"score": [8 booleans], "gt": "42"}``) are read with ``explode=True``: the per-sample fields
(:data:`PER_SAMPLE_COLUMNS` and the scores) hold equally long lists, entry ``j`` being sample
``j``; the others are the query's. With an :class:`~ttcdsl.importers.labels.Extractor` answers
are extracted from the text field, and with a ``gold`` field ``correct`` is labelled against it
by ``ttcdsl.answers.is_correct``; the table's notes record the extractor and the labelling.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttcdsl.answers.canonical import number_text
from ttcdsl.datasets.schema import Dataset, Query
from ttcdsl.errors import UserError, shown
from ttcdsl.file_kinds import kind_of_record
from ttcdsl.importers.common import (
    ImportOptions,
    answer_note,
    canonicalizer,
    count_tokens,
    finish_reason,
    make_meta,
)
from ttcdsl.importers.labels import Extractor, GoldLabeller
from ttcdsl.samples.errors import FileFormatError
from ttcdsl.samples.json_lines import decode_text, json_objects, open_log
from ttcdsl.samples.schema import SampleRow, SamplesTable, SchemaError

FORMAT = "generic"

# How tools write a missing value in CSV (R, spreadsheets, databases, pandas' na_rep): a cell
# holding one is refused unless the user says how the log writes missing values (``na``).
# Not "None", "null" or "nan": those are real outputs of a program (a CRUXEval answer).
MISSING_MARKERS = frozenset({"NA", "N/A", "#N/A", "NaN", "NULL"})
# Under `explode` these columns come from lists (entry j: sample j); the others (query_id, prompt,
# prompt_tokens, prompt_nll, round, temperature, gold) describe the line's query and are shared
# by its samples.
PER_SAMPLE_COLUMNS = (
    "sample_index", "answer", "correct", "text", "finish_reason", "completion_tokens",
    "mean_logprob", "seed",
)  # fmt: skip
_TRUE = {"true", "yes", "1", "1.0"}
_FALSE = {"false", "no", "0", "0.0"}


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldMapping:
    """Which input field fills which column (``None``: not in the log)."""

    query_id: str
    sample_index: str | None = None
    round: str | None = None
    answer: str | None = None
    correct: str | None = None
    text: str | None = None
    prompt: str | None = None
    finish_reason: str | None = None
    prompt_tokens: str | None = None
    completion_tokens: str | None = None
    mean_logprob: str | None = None
    prompt_nll: str | None = None
    temperature: str | None = None
    seed: str | None = None
    gold: str | None = None
    scores: tuple[tuple[str, str], ...] = ()

    def per_sample(self) -> tuple[str, ...]:
        """The mapped input fields that hold one value per sample (lists, under ``explode``)."""
        names = [getattr(self, n) for n in PER_SAMPLE_COLUMNS] + [f for _, f in self.scores]
        return tuple(dict.fromkeys(n for n in names if n is not None))

    def __post_init__(self) -> None:
        from ttcdsl.errors import UserError

        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "scores":
                names = [n for n, _ in value]
                if len(set(names)) != len(names):
                    raise UserError(
                        f"scorer {sorted(n for n in names if names.count(n) > 1)[0]!r} mapped twice"
                    )
                for scorer, source in value:
                    if not scorer or not source:
                        raise UserError(
                            "a score mapping needs a scorer name and a field: NAME=FIELD"
                        )
            elif value is not None and (not isinstance(value, str) or not value):
                raise UserError(f"the {name} field name must be a non-empty string")


def import_generic(
    path: str | os.PathLike[str],
    mapping: FieldMapping,
    options: ImportOptions | None = None,
    *,
    file_format: str | None = None,
    explode: bool = False,
    extractor: Extractor | None = None,
    progress: Callable[[str], None] | None = None,
    na: tuple[str, ...] | None = None,
) -> SamplesTable:
    """Read a JSONL (``file_format="jsonl"``) or CSV (``"csv"``) log; by default the format
    follows the extension (``.jsonl``/``.ndjson`` or ``.csv``). See :func:`import_generic_queries`
    for ``explode`` and ``extractor``."""
    return _read(Path(path), mapping, options, file_format, explode, extractor, queries=False,
                 progress=progress, na=na)[0]


def import_generic_queries(
    path: str | os.PathLike[str],
    mapping: FieldMapping,
    options: ImportOptions | None = None,
    *,
    file_format: str | None = None,
    explode: bool = False,
    extractor: Extractor | None = None,
    progress: Callable[[str], None] | None = None,
    na: tuple[str, ...] | None = None,
) -> tuple[SamplesTable, Dataset]:
    """The table, and the log's queries as a dataset: ``mapping.prompt`` is each query's
    question and the answer kind (below) their kind; every line of a query must agree on its
    prompt and gold.

    ``explode``: each JSONL line is one query whose per-sample fields (see
    :data:`PER_SAMPLE_COLUMNS`) hold equally long lists, entry ``j`` being sample ``j``.
    ``extractor``: answers are extracted from ``mapping.text`` (``mapping.answer`` must be unset).
    With ``mapping.gold``, ``correct`` is labelled with ``ttcdsl.answers.is_correct`` against it
    (``mapping.correct`` must be unset), in the answer kind: ``options.answer_kind``, else the
    extractor's kind. ``progress`` is told every few seconds how far the read has got. ``na``:
    the texts a CSV cell holds for a missing value, besides the empty cell (module docstring).
    """
    read = (mapping, options, file_format, explode, extractor)
    table, dataset = _read(Path(path), *read, queries=True, progress=progress, na=na)
    assert dataset is not None
    return table, dataset


def _read(
    path: Path,
    mapping: FieldMapping,
    options: ImportOptions | None,
    file_format: str | None,
    explode: bool,
    extractor: Extractor | None,
    *,
    queries: bool,
    progress: Callable[[str], None] | None = None,
    na: tuple[str, ...] | None = None,
) -> tuple[SamplesTable, Dataset | None]:
    options = options or ImportOptions()
    heartbeat = _Heartbeat(progress)
    from ttcdsl.errors import UserError

    fmt = file_format or generic_format(path)
    if fmt not in ("jsonl", "csv"):
        raise UserError(f"unknown generic input format {fmt!r}", hint="use jsonl or csv")
    kind = answer_kind_for(mapping, options, fmt, explode, extractor)
    canonical = canonicalizer(kind)
    if queries and (mapping.prompt is None or kind is None):
        raise UserError(
            "the queries of a log need the prompt field and an answer kind",
            hint="map the prompt, and give the answer kind or extract answers by kind",
        )
    labeller = GoldLabeller(kind) if mapping.gold is not None and kind is not None else None
    per_sample = frozenset(mapping.per_sample()) if explode else frozenset()
    records = json_objects(path, what="sample") if fmt == "jsonl" else _csv_records(path)
    text_cells = fmt == "csv"
    missing = None if na is None else frozenset(na)

    rows: list[dict[str, Any]] = []
    texts: list[str | None] = []
    prompts: list[str | None] = []
    next_index: dict[str, int] = {}
    seen: dict[tuple[str, int], int] = {}
    questions: dict[str, tuple[int, str | None, str | None]] = {}
    prompts_differ: dict[str, int] = {}  # query -> a line whose prompt is not its first line's
    odd_reasons: dict[str, int] = {}  # finish reasons of no known meaning -> samples
    id_kinds: dict[str, type] = {}  # query id -> the JSON type it was first written as
    mixed_ids: dict[str, int] = {}  # query id -> a line that wrote it as the other type
    invalid = 0  # answers that were lm-evaluation-harness's no-answer marker
    failed: dict[int, str] = {}  # line -> why its request failed (no sample was generated)
    for line, record in records:
        heartbeat(line, len(rows))
        if not rows and not failed and kind_of_record(record) in ("a samples table", "a plan"):
            # not a dataset: a log's records may well hold an id and a prompt
            raise UserError(f"{path}: {kind_of_record(record)}, not a log of samples",
                            hint="a samples table needs no import: pass it as it is (or "
                                 "-f samples to check it and convert its format)")
        if not text_cells and (why := _failed_request(record)) is not None:
            failed[line] = why
            continue
        base = _Getter(path, line, record, text_cells, missing)
        qid = base.query_id(mapping.query_id)
        kind_of_id = type(base.raw(mapping.query_id))
        if id_kinds.setdefault(qid, kind_of_id) is not kind_of_id:
            mixed_ids.setdefault(qid, line)  # 1 and "1": one query id as text, said below
        prompt = base.string(mapping.prompt, keep_empty=True)
        gold = base.string(mapping.gold)
        # always, not only for --queries-out: two logs concatenated, each numbering its queries
        # from 0, would otherwise merge into queries whose samples are labelled against either gold
        _same_query(path, line, questions, qid, prompt, gold, mapping, prompts_differ,
                    prompts_must_agree=queries)
        getters = [base]
        if explode:
            getters = [base.element(j, per_sample) for j in range(_samples_on(base, per_sample))]
        for get in getters:
            if mapping.sample_index is not None:
                index = get.count(mapping.sample_index, required=True)
            else:
                index = next_index.get(qid, 0)
            next_index[qid] = max(next_index.get(qid, 0), index + 1)
            if (qid, index) in seen:
                raise FileFormatError(
                    path,
                    f"duplicate sample: query {qid!r} sample_index {index} already on line "
                    f"{seen[qid, index]}",
                    line=line,
                    field=mapping.sample_index or mapping.query_id,
                )
            seen[qid, index] = line
            text = get.string(mapping.text, keep_empty=True)
            if extractor is not None:
                answer = extractor(text) if text is not None else None
            else:
                answer = get.string(mapping.answer)
            if answer is not None and answer.strip() == LM_EVAL_NO_ANSWER:
                invalid += 1  # lm-evaluation-harness's filters found no answer: not a vote
                answer = None
            answer = canonical(answer) if answer is not None else None
            texts.append(text)
            prompts.append(prompt)
            row = {
                "query_id": qid,
                "sample_index": index,
                "round": get.count(mapping.round, required=True) if mapping.round else 0,
                "prompt_tokens": _text_count(get, mapping.prompt_tokens, prompt, "prompt"),
                "completion_tokens": _text_count(get, mapping.completion_tokens, text, "response"),
                "finish_reason": finish_reason(get.string(mapping.finish_reason), odd_reasons),
                "text": text if options.keep_text else None,
                "answer": answer,
                "correct": _label(labeller, answer, gold, path, line, mapping.gold)
                if labeller else get.boolean(mapping.correct),
                "mean_logprob": get.real(mapping.mean_logprob),
                "prompt_nll": get.real(mapping.prompt_nll),
                "scores": {
                    name: value
                    for name, source in mapping.scores
                    if (value := get.real(source)) is not None
                },
                "temperature": get.real(mapping.temperature),
                "seed": get.integer(mapping.seed),
            }
            if row["temperature"] is None:
                row["temperature"] = options.temperature
            try:
                SampleRow.from_dict(row)  # the schema's own checks, named by line
            except SchemaError as error:
                source = _source_field(mapping, error.field)
                raise FileFormatError(path, error.message, line=line, field=source) from None
            rows.append(row)
    if not rows:
        raise FileFormatError(
            path, "no samples in the file" if not failed else
            f"no samples in the file: every line is a failed request ({_failed_said(failed)})")

    counted: list[str] = []
    if mapping.completion_tokens is None and mapping.text is not None and options.tokenizer:
        for row, n in zip(rows, count_tokens(options, texts), strict=True):
            row["completion_tokens"] = n
        counted.append("completion_tokens")
    if mapping.prompt_tokens is None and mapping.prompt is not None and options.tokenizer:
        for row, n in zip(rows, count_tokens(options, prompts), strict=True):
            row["prompt_tokens"] = n
        counted.append("prompt_tokens")
    logged = [c for c in ("prompt_tokens", "completion_tokens") if getattr(mapping, c) is not None]
    notes: dict[str, Any] = {
        "format": f"{FORMAT} {fmt}",
        "mapping": {
            name: getattr(mapping, name)
            for name in mapping.__dataclass_fields__
            if name != "scores" and getattr(mapping, name) is not None
        }
        | ({"scores": dict(mapping.scores)} if mapping.scores else {}),
        "answers": answer_note(kind),
    }
    if failed:
        notes["failed_requests"] = (
            f"{len(failed)} {'line is a failed request' if len(failed) == 1 else 'lines are failed requests'}"
            f" ({_failed_said(failed)}): no sample was generated for "
            f"{'it' if len(failed) == 1 else 'them'}, so none is in the table and their queries "
            "hold fewer samples"
        )
    if invalid:
        notes["no_answer_marker"] = (
            f"{invalid} answers were {LM_EVAL_NO_ANSWER!r}, lm-evaluation-harness's mark of a "
            "response its filter found no answer in: kept as no answer"
        )
    if explode:
        notes["explode"] = f"one line per query; lists in {', '.join(sorted(per_sample))}"
    if extractor is not None:
        notes["extractor"] = extractor.describe(mapping.text or "")
        notes["answers"] = f"extracted with {notes['extractor']}; {answer_note(kind)}"
    if labeller is not None:
        notes.update(labeller.note(mapping.gold or ""))
    if odd_reasons:
        shown = ", ".join(f"{r!r} ({n})" for r, n in sorted(odd_reasons.items(), key=lambda x: -x[1])[:5])
        notes["finish_reasons_unknown"] = (
            f"finish reasons of no known meaning, kept as logged: {shown}; only 'length' (and "
            "max_tokens and its other names) counts as a sample cut at max_tokens"
        )
    logprobs = [row["mean_logprob"] for row in rows if row["mean_logprob"] is not None]
    if logprobs and sorted(logprobs)[len(logprobs) // 2] < SUMMED_LOGPROB:
        # vLLM's cumulative_logprob (and OpenAI's summed token logprobs) mapped as a mean: a
        # confidence-weighted vote then weighs long answers down by orders of magnitude
        notes["logprobs_look_summed"] = (
            f"the median of {mapping.mean_logprob!r} is {sorted(logprobs)[len(logprobs) // 2]:.3g}: "
            "a per-token mean log-probability that low is a token probability under 1%, so "
            "these look like sums over the response (e.g. vLLM's cumulative_logprob); "
            "--mean-logprob-field takes the mean, the sum divided by the completion tokens"
        )
    if mixed_ids:
        qid, line = next(iter(mixed_ids.items()))
        notes["query_ids_mixed"] = (
            f"{len(mixed_ids)} query {'id is' if len(mixed_ids) == 1 else 'ids are'} written both "
            f"as a number and as text (first: {qid!r}, line {line}); each is one query"
        )
    if prompts_differ:
        qid, line = next(iter(prompts_differ.items()))
        notes["prompts_differ"] = (
            f"{len(prompts_differ)} {'query has' if len(prompts_differ) == 1 else 'queries have'} "
            "lines with another prompt than their first line's "
            f"(first: query {qid!r}, line {line} vs line {questions[qid][0]})"
        )
    meta = make_meta(
        options, source=f"{FORMAT} {path.name}", notes=notes, counted=counted, logged=logged
    )
    names = list(dict.fromkeys(name for name, _ in mapping.scores))
    table = SamplesTable.from_columns(
        meta=meta,
        query_id=[r["query_id"] for r in rows],
        sample_index=[r["sample_index"] for r in rows],
        round=[r["round"] for r in rows],
        prompt_tokens=[r["prompt_tokens"] for r in rows],
        completion_tokens=[r["completion_tokens"] for r in rows],
        finish_reason=[r["finish_reason"] for r in rows],
        text=[r["text"] for r in rows],
        answer=[r["answer"] for r in rows],
        correct=[r["correct"] for r in rows],
        mean_logprob=[r["mean_logprob"] for r in rows],
        prompt_nll=[r["prompt_nll"] for r in rows],
        scores={name: [r["scores"].get(name) for r in rows] for name in names},
        temperature=[r["temperature"] for r in rows],
        seed=[r["seed"] for r in rows],
    )
    return table, _dataset(path, questions, kind) if queries and kind else None


def answer_kind_for(
    mapping: FieldMapping,
    options: ImportOptions,
    fmt: str,
    explode: bool,
    extractor: Extractor | None,
) -> str | None:
    """The answer kind (canonical forms, labels, the queries' kind); refuses mappings that
    cannot mean anything (each rule says why)."""
    from ttcdsl.errors import UserError

    if explode and fmt != "jsonl":
        raise UserError("explode needs JSONL input", hint="CSV cells cannot hold lists")
    if explode and not mapping.per_sample():
        raise UserError(
            "explode needs a per-sample field holding the lists",
            hint="map e.g. the response texts (text) or the answers (answer)",
        )
    kind = options.answer_kind
    if extractor is not None:
        if mapping.text is None:
            raise UserError("extracting answers needs the text field", hint="e.g. --text-field")
        if mapping.answer is not None:
            raise UserError("answers are either extracted from the text or mapped, not both")
        if extractor.kind is not None:
            if kind is not None and kind != extractor.kind:
                raise UserError(
                    f"answers extracted as {extractor.kind} cannot be canonicalised as {kind}"
                )
            kind = extractor.kind
    if mapping.gold is not None:
        if mapping.correct is not None:
            raise UserError("correctness is either labelled against gold or mapped, not both")
        if kind is None:
            raise UserError(
                "labelling against the gold answer needs an answer kind",
                hint="give the answer kind (math, multiple_choice, exact), or extract by kind",
            )
    return kind


def _same_query(
    path: Path,
    line: int,
    questions: dict[str, tuple[int, str | None, str | None]],
    qid: str,
    prompt: str | None,
    gold: str | None,
    mapping: FieldMapping,
    prompts_differ: dict[str, int],
    *,
    prompts_must_agree: bool,
) -> None:
    """Remember the query's prompt and gold; a later line of the same query must have the same
    gold, and the same prompt where the queries are written (one question per query). Without
    them, prompts that differ are counted (``prompts_differ``), since a log may vary a query's
    prompt per sample (few-shot examples, say)."""
    first = questions.setdefault(qid, (line, prompt, gold))
    if prompt != first[1] and not prompts_must_agree:
        prompts_differ.setdefault(qid, line)
        prompt = first[1]
    for name, value, before in (("prompt", prompt, first[1]), ("gold", gold, first[2])):
        if value != before:
            raise FileFormatError(
                path,
                f"query {qid!r} has another {name} than on line {first[0]}",
                line=line,
                field=getattr(mapping, name),
                hint="the lines of one query id must be samples of one question; a log made of "
                "several runs that number their queries alike needs ids that tell them apart",
            )


def _dataset(
    path: Path, questions: dict[str, tuple[int, str | None, str | None]], kind: str
) -> Dataset:
    queries = []
    for qid, (line, prompt, gold) in questions.items():
        if prompt is None:
            raise FileFormatError(path, f"query {qid!r} has no prompt", line=line)
        queries.append(Query(id=qid, kind=kind, prompt=prompt, gold=gold))
    return Dataset(name=path.stem, queries=tuple(queries), source=path.name)


class _Heartbeat:
    """Says every ``EVERY`` seconds how far the read has got (a large log with answer
    extraction takes minutes); checks the clock every 1000 lines only."""

    EVERY = 10.0

    def __init__(self, say: Callable[[str], None] | None) -> None:
        self.say, self.last = say, time.monotonic()

    def __call__(self, line: int, samples: int) -> None:
        if self.say is None or line % 1000:
            return
        now = time.monotonic()
        if now - self.last >= self.EVERY:
            self.last = now
            self.say(f"read {line:,} lines, {samples:,} samples")


def _text_count(get: _Getter, field: str | None, text: str | None, what: str) -> int | None:
    """The logged token count of ``text``; 0 for a text that has characters is refused: it is a
    count the log did not keep, written as 0 (a usage block some servers leave zeroed), and a
    plan would bill those samples nothing."""
    count = get.count(field)
    if count == 0 and text is not None and text.strip():
        raise get.error(
            field or "",
            f"0 tokens for a {what} of {len(text):,} characters: a count the log did not keep?",
            hint="leave the field unmapped: the counts then stay unknown, or are counted from the "
            "text with --tokenizer",
        )
    return count


def _samples_on(get: _Getter, per_sample: frozenset[str]) -> int:
    """The number of samples on an exploded line: the common length of its per-sample lists."""
    first: tuple[str, int] | None = None
    for name in sorted(per_sample):
        value = get.raw(name)
        if not isinstance(value, list):
            raise get.error(
                name, f"must be a list, one entry per sample, got {type(value).__name__}"
            )
        if first is None:
            first = (name, len(value))
        elif len(value) != first[1]:
            raise get.error(name, f"has {len(value)} entries but {first[0]!r} has {first[1]}")
    assert first is not None
    if first[1] == 0:
        raise get.error(first[0], "no samples: the lists are empty")
    return first[1]


def _source_field(mapping: FieldMapping, column: str | None) -> str | None:
    """The input field that filled ``column`` (``scores.rm`` -> the rm score's field)."""
    if column is None:
        return None
    if column.startswith("scores."):
        return dict(mapping.scores).get(column[len("scores.") :], column)
    value = getattr(mapping, column, None) if column in mapping.__dataclass_fields__ else None
    return value if isinstance(value, str) else column


def generic_format(path: Path) -> str:
    from ttcdsl.errors import UserError

    suffix = path.suffix.lower()
    if suffix == ".gz":  # log.jsonl.gz: read decompressed (open_log)
        suffix = Path(path.stem).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise UserError(
        f"{path}: cannot tell JSONL from CSV by the extension {suffix or '(none)'!r}",
        hint="name the file .jsonl or .csv, or pass --input-format jsonl|csv",
    )


def _csv_records(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    with open_log(path) as handle:
        # names the line of a bad byte, and drops a spreadsheet's byte-order mark
        text = decode_text(handle.read(), path, None)
    # csv refuses a cell over 128 KiB (its field_size_limit), and a reasoning model's response is
    # often longer; the whole file is in memory already, so no cell can be larger than it
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, min(len(text), 2**31 - 1)))
    try:
        yield from _csv_rows(path, text)
    finally:
        csv.field_size_limit(limit)


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise FileFormatError(path, "empty file: no header row") from None
    except csv.Error as error:
        raise FileFormatError(path, f"bad CSV ({error})", line=reader.line_num) from None
    if len(set(header)) != len(header):
        dup = sorted(h for h in header if header.count(h) > 1)[0]
        raise FileFormatError(
            path, "column name appears twice in the header", line=1, field=dup
        )
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise FileFormatError(path, f"bad CSV ({error})", line=start) from None
        if not any(cell.strip() for cell in cells):
            # csv yields [] for an empty line; a spreadsheet exports its empty rows as ",,,,"
            continue
        if len(cells) != len(header):
            raise FileFormatError(
                path, f"{len(cells)} cells, the header has {len(header)}", line=start
            )
        yield start, dict(zip(header, cells, strict=True))


class _Getter:
    """Typed access to one record's fields; every problem names file, line and field. An
    element getter reads entry ``index`` of the ``lists`` fields (an exploded line's sample)."""

    __slots__ = ("cells", "found", "index", "line", "lists", "missing", "path", "record")

    def __init__(self, path: Path, line: int, record: Mapping[str, Any], cells: bool,
                 missing: frozenset[str] | None = None) -> None:
        """``missing``: the texts a cell holds for a missing value (None: not said)."""
        self.path, self.line, self.record, self.cells = path, line, record, cells
        self.missing = missing
        self.index: int | None = None
        self.lists: frozenset[str] = frozenset()
        self.found: dict[str, Any] = {}  # field -> its value on this line (shared by elements)

    def element(self, index: int, lists: frozenset[str]) -> _Getter:
        get = _Getter(self.path, self.line, self.record, self.cells, self.missing)
        get.index, get.lists, get.found = index, lists, self.found
        return get

    def error(self, field: str, message: str, hint: str | None = None) -> FileFormatError:
        if self.index is not None and field in self.lists:
            field = f"{field}[{self.index}]"
        return FileFormatError(self.path, message, line=self.line, field=field, hint=hint)

    def raw(self, field: str) -> Any:
        if field in self.found:
            value = self.found[field]
        else:
            value = self.record[field] if field in self.record else self._walk(field)
            self.found[field] = value
        if self.index is not None and field in self.lists:
            value = value[self.index]  # a list of the line's length (checked by _samples_on)
        if self.cells and isinstance(value, str):
            if value == "" or (self.missing is not None and value in self.missing):
                return None
            if self.missing is None and value in MISSING_MARKERS:
                raise self.error(
                    field, f"the cell holds {value!r}, how R, spreadsheets and databases write a "
                    "missing value; read as text it is a value like any other (as an answer, one "
                    "that every such sample votes for)",
                    hint=f"pass --na {value} to read such cells as missing, or --na '' to take "
                         "them as written")
        return value

    def _walk(self, field: str) -> Any:
        """A dotted path's value: keys of objects, a number picks a list's entry
        (``choices.0.text``), and a key applied to a list is applied to each of its entries
        (``outputs.text`` of ``outputs: [{"text": ...}, ...]`` is the list of texts)."""

        def walk(node: Any, parts: list[str], done: list[str]) -> Any:
            for i, part in enumerate(parts):
                where = ".".join(done + parts[:i]) or "the line"
                if isinstance(node, list):
                    if part.isdigit():
                        if int(part) >= len(node):
                            raise self.error(field, f"{where} is a list of {len(node)} "
                                             f"{'entry' if len(node) == 1 else 'entries'}; "
                                             f"there is no entry {part}")
                        node = node[int(part)]
                        continue
                    return [walk(entry, parts[i:], done + parts[:i] + [str(j)])
                            for j, entry in enumerate(node)]
                if not isinstance(node, Mapping):
                    raise self.error(field, f"{where} is {_kind(node)}, which has no field {part!r}")
                if part not in node:
                    keys = ", ".join(sorted(map(str, node))[:12])
                    what = "missing on this line" if not done and i == 0 else f"{where} has no {part!r}"
                    raise self.error(field, f"{what} (it has: {keys})", hint=self._separator_hint())
                node = node[part]
            return node

        return walk(self.record, field.split("."), [])

    def _separator_hint(self) -> str | None:
        """A CSV whose header is one column holding ; or tabs was written with another
        separator (a spreadsheet in a comma-decimal locale writes ;)."""
        if not self.cells or len(self.record) != 1:
            return None
        (name,) = self.record
        for separator, said in ((";", "semicolons"), ("\t", "tabs")):
            if separator in str(name):
                return (f"the header is one column that holds {said}: this file separates its "
                        "columns with them; save it as comma-separated CSV")
        return None

    def _nested_hint(self, field: str, value: Any) -> str | None:
        """lm-evaluation-harness logs ``resps: [[8 responses]]``, one list per request: exploded
        as ``resps``, its one sample is the whole list."""
        if not (isinstance(value, list) and self.index is not None and field in self.lists):
            return None
        if len(self.found[field]) != 1:
            return None
        return (f"map {field}.0: {field!r} holds one entry, a list of {len(value)} whose entries "
                "are the samples (lm-evaluation-harness's shape)")

    def query_id(self, field: str) -> str:
        value = self.raw(field)
        if isinstance(value, str) and self.cells:
            # a spreadsheet pads cells (" 1", "1 "): one query, not three
            value = value.strip()
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise self.error(
                field, f"a query id must be a non-empty string or an integer, got {value!r}"
            )
        return str(value)

    def string(self, field: str | None, *, keep_empty: bool = False) -> str | None:
        if field is None:
            return None
        value = self.raw(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(field, f"expected a string, got {type(value).__name__}",
                             hint=self._nested_hint(field, value))
        if isinstance(value, float) and not math.isfinite(value):
            # json.dumps of a pandas row writes its missing values as NaN: read as text it was
            # the answer (or gold) "NaN", one vote for all of them, every sample wrong against it
            if math.isnan(value):
                raise self.error(field, "expected a string, got NaN",
                                 hint="a missing value is null in JSON (pandas: df.to_json, or "
                                      "json.dumps after df.replace({np.nan: None}))")
            raise self.error(field, "expected a string, got an infinite number")
        text = value if isinstance(value, str) else number_text(value)
        return text if (text or keep_empty) else None

    def integer(self, field: str | None, *, required: bool = False) -> int | None:
        if field is None:
            return None
        value = self.raw(field)
        if value is None:
            if required:
                raise self.error(field, "must not be empty")
            return None
        if isinstance(value, str) and self.cells:
            value = _cell_number(value.strip())
        elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
            value = int(value)  # a JSON log that quotes its integers ("512"): one reading only
        # a whole float is the integer it holds: pandas writes an integer column that has a
        # missing value as floats (512.0), and lm-eval logs counts the same way
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"expected an integer, got {shown(value)}")
        if not -(2**63) <= value < 2**63:  # a table's integers are 64-bit
            raise self.error(field, f"out of range, got {shown(value)}")
        return value

    def count(self, field: str | None, *, required: bool = False) -> int | None:
        # a list of token ids (vLLM's RequestOutput .token_ids) or of tokens (OpenAI's
        # logprobs.tokens) is counted by its length: that is the number of tokens it bills
        listed = self.raw(field) if field is not None else None
        if isinstance(listed, list) and all(
                isinstance(t, str) or (isinstance(t, int) and not isinstance(t, bool)) for t in listed):
            return len(listed)
        value = self.integer(field, required=required)
        if value is not None and value < 0:
            raise self.error(field or "", f"must be >= 0, got {value}")
        return value

    def real(self, field: str | None) -> float | None:
        if field is None:
            return None
        value = self.raw(field)
        if value is None:
            return None
        if isinstance(value, list) and len(value) == 1:  # e.g. a reward model's [score]
            value = value[0]
        if isinstance(value, str) and self.cells:
            try:
                value = float(value)
            except ValueError:
                raise self.error(field, f"expected a number, got {value!r}") from None
        elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
            value = float(value)  # a JSON log that quotes its numbers ("0.7"), as it may its integers
        if isinstance(value, list) and value and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            raise self.error(field, f"expected a number, got a list of {len(value)} numbers",
                             hint="per-token log-probabilities or per-step scores? the table takes "
                                  "one number per sample (their mean, or the reduction the scorer "
                                  "means): compute it before importing")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(field, f"expected a number, got {value!r}")
        try:
            number = float(value)  # an integer literal past float's range overflows
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.error(field, f"must be finite, got {shown(value)}")
        return number

    def boolean(self, field: str | None) -> bool | None:
        if field is None:
            return None
        value = self.raw(field)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):  # lm-eval's exact_match: 1.0
            return bool(value)
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
        raise self.error(field, f"expected true/false (or 1/0, yes/no), got {value!r}")


_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# 1,715 as a spreadsheet shows an integer: commas between groups of three digits. Only integer
# fields read cells this way, and a comma-decimal locale's 1,715 (one and a fraction) is no
# integer, so 1715 is the one reading; 1,5 or 1,71 stay refused
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+")


def _failed_request(record: Mapping[str, Any]) -> str | None:
    """Why a line of an OpenAI Batch API output (or a log in its shape) holds no sample: its
    request failed (``"error": {"code", "message"}``, or a response whose status code is 4xx or
    5xx). ``None`` for a line that holds a response."""
    error, response = record.get("error"), record.get("response")
    status = response.get("status_code") if isinstance(response, dict) else None
    if isinstance(status, int) and not isinstance(status, bool) and status >= 400:
        body = response.get("body")
        detail = body.get("error") if isinstance(body, dict) else None
        error = detail if isinstance(detail, dict) else error or {"code": f"HTTP {status}"}
    elif not (isinstance(error, dict) and ("message" in error or "code" in error)):
        return None
    if not isinstance(error, dict):
        return str(error)[:80]
    said = ": ".join(str(error[k]) for k in ("code", "message") if error.get(k) is not None)
    return said[:80] or "an error"


def _failed_said(failed: Mapping[int, str]) -> str:
    line, why = next(iter(failed.items()))
    return f"e.g. line {line}: {why!r}"


def _cell_number(text: str) -> int | float | str:
    """A CSV cell's number (``12``, ``12.0``, ``1,715``); the text itself when it is none."""
    if _GROUPED.fullmatch(text):
        return int(text.replace(",", ""))
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def _kind(value: object) -> str:
    name = type(value).__name__
    return "null" if value is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


LM_EVAL_NO_ANSWER = "[invalid]"
SUMMED_LOGPROB = -5.0  # a median "mean" log-probability below this (p < 0.7%) is a sum


def _label(labeller: GoldLabeller, answer: str | None, gold: str | None, path: Path, line: int,
           field: str | None) -> bool | None:
    """The labeller's verdict; a gold it cannot judge against is named by line and field."""
    try:
        return labeller(answer, gold)
    except FileFormatError:
        raise
    except UserError as error:
        raise FileFormatError(path, error.message, line=line, field=field, hint=error.hint) from None
