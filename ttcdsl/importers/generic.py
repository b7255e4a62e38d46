"""Import any JSONL or CSV log with one sample per line, given which field holds what.

    mapping = FieldMapping(query_id="qid", answer="pred", correct="is_correct",
                           text="response", scores=(("rm", "reward"),))
    table = import_generic("log.jsonl", mapping)

Field names may be dotted paths into nested JSON objects (``"usage.completion_tokens"``); a key
that itself contains a dot is matched first. Only ``query_id`` is required. Without a
``sample_index`` field, samples are numbered 0, 1, ... per query in file order; without ``round``,
every row is round 0.

Values: ``query_id`` a string or integer; counts integers; ``correct`` a boolean, 0/1, or one of
true/false/yes/no (any case); scores and other reals numbers. In CSV every cell is text and is
parsed the same way; an empty cell is null. A mapped field that is missing on a line is an error
(a typo in the mapping must not quietly give a column of nulls); a JSON ``null`` is null. Token
counts come from the log's fields when mapped, else from the tokenizer (``completion_tokens`` from
the text field, ``prompt_tokens`` from the prompt field), else stay null.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttcdsl.importers.common import (
    ImportOptions,
    answer_note,
    canonicalizer,
    count_tokens,
    make_meta,
)
from ttcdsl.samples.errors import FileFormatError
from ttcdsl.samples.json_lines import decode_text, json_objects, open_bytes
from ttcdsl.samples.schema import SampleRow, SamplesTable, SchemaError

FORMAT = "generic"
_MISSING = object()
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


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
    temperature: str | None = None
    seed: str | None = None
    scores: tuple[tuple[str, str], ...] = ()

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
) -> SamplesTable:
    """Read a JSONL (``file_format="jsonl"``) or CSV (``"csv"``) log; by default the format
    follows the extension (``.jsonl``/``.ndjson`` or ``.csv``)."""
    options = options or ImportOptions()
    from ttcdsl.errors import UserError

    path = Path(path)
    fmt = file_format or _format_of(path)
    if fmt not in ("jsonl", "csv"):
        raise UserError(f"unknown generic input format {fmt!r}", hint="use jsonl or csv")
    canonical = canonicalizer(options.answer_kind)
    records = json_objects(path, what="sample") if fmt == "jsonl" else _csv_records(path)
    text_cells = fmt == "csv"

    rows: list[dict[str, Any]] = []
    texts: list[str | None] = []
    prompts: list[str | None] = []
    next_index: dict[str, int] = {}
    seen: dict[tuple[str, int], int] = {}
    for line, record in records:
        get = _Getter(path, line, record, text_cells)
        qid = get.query_id(mapping.query_id)
        if mapping.sample_index is not None:
            index = get.count(mapping.sample_index, required=True)
        else:
            index = next_index.get(qid, 0)
        next_index[qid] = max(next_index.get(qid, 0), index + 1)
        if (qid, index) in seen:
            raise FileFormatError(
                path,
                f"duplicate sample: query {qid!r} sample_index {index} already on line {seen[qid, index]}",
                line=line,
                field=mapping.sample_index or mapping.query_id,
            )
        seen[qid, index] = line
        answer = get.string(mapping.answer)
        text = get.string(mapping.text, keep_empty=True)
        texts.append(text)
        prompts.append(get.string(mapping.prompt, keep_empty=True))
        row = {
            "query_id": qid,
            "sample_index": index,
            "round": get.count(mapping.round, required=True) if mapping.round else 0,
            "prompt_tokens": get.count(mapping.prompt_tokens),
            "completion_tokens": get.count(mapping.completion_tokens),
            "finish_reason": get.string(mapping.finish_reason),
            "text": text if options.keep_text else None,
            "answer": canonical(answer) if answer is not None else None,
            "correct": get.boolean(mapping.correct),
            "mean_logprob": get.real(mapping.mean_logprob),
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
        raise FileFormatError(path, "no samples in the file")

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
        "answers": answer_note(options.answer_kind),
    }
    meta = make_meta(
        options, source=f"{FORMAT} {path.name}", notes=notes, counted=counted, logged=logged
    )
    names = list(dict.fromkeys(name for name, _ in mapping.scores))
    return SamplesTable.from_columns(
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
        scores={name: [r["scores"].get(name) for r in rows] for name in names},
        temperature=[r["temperature"] for r in rows],
        seed=[r["seed"] for r in rows],
    )


def _source_field(mapping: FieldMapping, column: str | None) -> str | None:
    """The input field that filled ``column`` (``scores.rm`` -> the rm score's field)."""
    if column is None:
        return None
    if column.startswith("scores."):
        return dict(mapping.scores).get(column[len("scores.") :], column)
    value = getattr(mapping, column, None) if column in mapping.__dataclass_fields__ else None
    return value if isinstance(value, str) else column


def _format_of(path: Path) -> str:
    from ttcdsl.errors import UserError

    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise UserError(
        f"{path}: cannot tell JSONL from CSV by the extension {suffix or '(none)'!r}",
        hint="name the file .jsonl or .csv, or pass --input-format jsonl|csv",
    )


def _csv_records(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    with open_bytes(path) as handle:
        text = decode_text(handle.read(), path, None)  # names the line of a bad byte
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
        if not cells:
            continue  # csv yields [] for an empty line
        if len(cells) != len(header):
            raise FileFormatError(
                path, f"{len(cells)} cells, the header has {len(header)}", line=start
            )
        yield start, dict(zip(header, cells, strict=True))


class _Getter:
    """Typed access to one record's fields; every problem names file, line and field."""

    __slots__ = ("cells", "line", "path", "record")

    def __init__(self, path: Path, line: int, record: Mapping[str, Any], cells: bool) -> None:
        self.path, self.line, self.record, self.cells = path, line, record, cells

    def error(self, field: str, message: str) -> FileFormatError:
        return FileFormatError(self.path, message, line=self.line, field=field)

    def raw(self, field: str) -> Any:
        if field in self.record:
            value = self.record[field]
        else:
            value = _MISSING
            node: Any = self.record
            for part in field.split("."):
                if not isinstance(node, Mapping) or part not in node:
                    break
                node = node[part]
            else:
                value = node
        if value is _MISSING:
            keys = ", ".join(sorted(self.record)[:12])
            raise self.error(field, f"missing on this line (it has: {keys})")
        if self.cells and value == "":
            return None
        return value

    def query_id(self, field: str) -> str:
        value = self.raw(field)
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
            raise self.error(field, f"expected a string, got {type(value).__name__}")
        text = value if isinstance(value, str) else json.dumps(value)
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
            try:
                return int(value.strip())
            except ValueError:
                raise self.error(field, f"expected an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"expected an integer, got {value!r}")
        return value

    def count(self, field: str | None, *, required: bool = False) -> int | None:
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
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(field, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise self.error(field, f"must be finite, got {value}")
        return float(value)

    def boolean(self, field: str | None) -> bool | None:
        if field is None:
            return None
        value = self.raw(field)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
        raise self.error(field, f"expected true/false (or 1/0, yes/no), got {value!r}")
