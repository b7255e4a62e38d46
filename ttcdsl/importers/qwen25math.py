"""Import a Qwen2.5-Math evaluation log (``evaluation/`` of QwenLM/Qwen2.5-Math).

One JSON object per line and question; the per-sample lists are parallel:

* ``idx`` — the question's index: becomes ``query_id`` (as a string);
* ``code[j]`` — the full response of sample ``j``: ``text``;
* ``pred[j]`` — the extracted answer: ``answer``, canonicalised as kind ``math``
  (an empty prediction is "no answer", null);
* ``score[j]`` — correct vs the gold answer ``gt``: ``correct``;
* ``pred_score[j]`` — the reward model's score (``[x]`` or ``x``): ``scores["rm"]``
  (optional; the scorer name can be changed).

The log has no token counts and no finish reasons: they stay null unless a tokenizer is given
(then ``completion_tokens`` are counted from ``code[j]``; prompt tokens stay null because the
exact prompt template is not in the log).
"""

from __future__ import annotations

import math
import os
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
from ttcdsl.samples.json_lines import json_objects
from ttcdsl.samples.schema import SamplesTable

FORMAT = "qwen25math-eval"


def import_qwen25math_eval(
    path: str | os.PathLike[str],
    options: ImportOptions | None = None,
    *,
    score_name: str = "rm",
) -> SamplesTable:
    """Read the log at ``path`` into a samples table (one row per sample, round 0)."""
    options = options or ImportOptions()
    path = Path(path)
    kind = options.answer_kind or "math"
    canonical = canonicalizer(kind)
    columns: dict[str, list[Any]] = {
        name: [] for name in ("query_id", "sample_index", "text", "answer", "correct", "rm")
    }
    seen: dict[str, int] = {}
    has_scores = None
    for number, record in json_objects(path, what="problem"):
        qid = _query_id(path, number, record)
        if qid in seen:
            raise FileFormatError(
                path,
                f"question {qid!r} again (first on line {seen[qid]})",
                line=number,
                field="idx",
            )
        seen[qid] = number
        texts = _list(path, number, record, "code", None)
        n = len(texts)
        if n == 0:  # the table and its queries file would disagree on the question
            raise FileFormatError(path, "no samples: the list is empty", line=number, field="code")
        preds = _list(path, number, record, "pred", n)
        scores = _list(path, number, record, "score", n)
        rm = _list(path, number, record, "pred_score", n) if "pred_score" in record else None
        if has_scores is None:
            has_scores = rm is not None
        elif has_scores != (rm is not None):
            raise FileFormatError(
                path,
                "missing here but present on other lines"
                if has_scores
                else "present only on some lines",
                line=number,
                field="pred_score",
            )
        for j in range(n):
            where = f"[{j}]"
            text = texts[j]
            if not isinstance(text, str):
                raise FileFormatError(path, f"{where} must be a string", line=number, field="code")
            pred = preds[j]
            if pred is not None and not isinstance(pred, str):
                raise FileFormatError(path, f"{where} must be a string", line=number, field="pred")
            correct = scores[j]
            if not isinstance(correct, bool):
                raise FileFormatError(
                    path,
                    f"{where} must be true or false, got {correct!r}",
                    line=number,
                    field="score",
                )
            columns["query_id"].append(qid)
            columns["sample_index"].append(j)
            columns["text"].append(text)
            columns["answer"].append(canonical(pred) if pred else None)
            columns["correct"].append(correct)
            columns["rm"].append(None if rm is None else _score(path, number, rm[j], where))
    if not seen:
        raise FileFormatError(path, "no questions in the file")

    completion = count_tokens(options, columns["text"])
    n_rows = len(columns["query_id"])
    meta = make_meta(
        options,
        source=f"{FORMAT} {path.name}",
        notes={
            "format": FORMAT,
            "answers": answer_note(kind),
            "correct": "the log's score (vs gold gt)",
            **({"scores": f"{score_name}: the log's pred_score"} if has_scores else {}),
        },
        counted=("completion_tokens",),
    )
    return SamplesTable.from_columns(
        meta=meta,
        query_id=columns["query_id"],
        sample_index=columns["sample_index"],
        completion_tokens=completion,
        text=columns["text"] if options.keep_text else None,
        answer=columns["answer"],
        correct=columns["correct"],
        scores={score_name: columns["rm"]} if has_scores else {},
        temperature=[options.temperature] * n_rows,
    )


def _query_id(path: Path, line: int, record: dict[str, Any]) -> str:
    if "idx" not in record:
        raise FileFormatError(path, "missing", line=line, field="idx")
    value = record["idx"]
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise FileFormatError(
            path, f"must be an integer or a string, got {value!r}", line=line, field="idx"
        )
    return str(value)


def _list(path: Path, line: int, record: dict[str, Any], name: str, n: int | None) -> list[Any]:
    if name not in record:
        raise FileFormatError(path, "missing", line=line, field=name)
    value = record[name]
    if not isinstance(value, list):
        raise FileFormatError(
            path, f"must be a list, got {type(value).__name__}", line=line, field=name
        )
    if n is not None and len(value) != n:
        raise FileFormatError(
            path, f"has {len(value)} entries but code has {n}", line=line, field=name
        )
    return value


def _score(path: Path, line: int, value: Any, where: str) -> float:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FileFormatError(
            path,
            f"{where} must be a number or [number], got {value!r}",
            line=line,
            field="pred_score",
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise FileFormatError(path, f"{where} must be finite, got {value!r}", line=line,
                              field="pred_score")
    return number
