"""Import CRUXEval scored generations (``samples/evaluation_results`` of facebookresearch/cruxeval).

One JSON document::

    {"raw_generations": {"sample_0": ["'abc'", ...], ...},
     "raw_scored_generations": {"sample_0": [false, ...], ...},
     "pass_at_1": 34.21, "pass_at_5": 40.29}

Each problem id becomes a ``query_id`` (rows ordered by the number in the id), generation ``j``
becomes sample ``j``: ``text`` is the generation as logged, ``answer`` its canonical form (kind
``exact``: Python literals and calls normalised), and ``correct`` the logged boolean — for input
prediction several different answers can be right, so correctness is never re-derived from the
strings.
"""

from __future__ import annotations

import math
import os
import re
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
from ttcdsl.samples.json_lines import json_type, loads, open_log
from ttcdsl.samples.schema import SamplesTable

FORMAT = "cruxeval-scored"
_NUMBER = re.compile(r"(\d+)$")


def import_cruxeval_scored(
    path: str | os.PathLike[str], options: ImportOptions | None = None
) -> SamplesTable:
    """Read the scored generations at ``path`` into a samples table (round 0)."""
    options = options or ImportOptions()
    path = Path(path)
    document = _load(path)
    generations = _mapping(path, document, "raw_generations")
    scored = _mapping(path, document, "raw_scored_generations")
    if set(generations) != set(scored):
        extra = sorted(set(generations) ^ set(scored))[0]
        where = "raw_scored_generations" if extra in generations else "raw_generations"
        raise FileFormatError(path, f"has no entry for problem {extra!r}", field=where)
    if not generations:
        raise FileFormatError(path, "no problems", field="raw_generations")
    kind = options.answer_kind or "exact"
    canonical = canonicalizer(kind)
    query_id: list[str] = []
    sample_index: list[int] = []
    text: list[str] = []
    answer: list[str | None] = []
    correct: list[bool] = []
    for qid in sorted(generations, key=_natural):
        outputs, verdicts = generations[qid], scored[qid]
        if not isinstance(outputs, list):
            raise FileFormatError(
                path, "must be a list of strings", field=f"raw_generations[{qid!r}]"
            )
        if not outputs:  # the problem would vanish from the table without a word
            raise FileFormatError(
                path, "no samples: the list is empty", field=f"raw_generations[{qid!r}]"
            )
        if not isinstance(verdicts, list) or len(verdicts) != len(outputs):
            got = (f"a list of {len(verdicts)}" if isinstance(verdicts, list)
                   else f"a JSON {json_type(verdicts)}")
            raise FileFormatError(
                path,
                f"must be a list of {len(outputs)} booleans (one per generation), got {got}",
                field=f"raw_scored_generations[{qid!r}]",
            )
        for j, (output, verdict) in enumerate(zip(outputs, verdicts, strict=True)):
            if not isinstance(output, str):
                raise FileFormatError(
                    path,
                    f"must be a string, got {output!r}",
                    field=f"raw_generations[{qid!r}][{j}]",
                )
            if not isinstance(verdict, bool):
                raise FileFormatError(
                    path,
                    f"must be true or false, got {verdict!r}",
                    field=f"raw_scored_generations[{qid!r}][{j}]",
                )
            query_id.append(qid)
            sample_index.append(j)
            text.append(output)
            answer.append(canonical(output) if output.strip() else None)
            correct.append(verdict)
    notes: dict[str, Any] = {
        "format": FORMAT,
        "answers": answer_note(kind),
        "correct": "the log's raw_scored_generations booleans",
    }
    for key in ("pass_at_1", "pass_at_5"):
        value = document.get(key)
        # a logged figure, kept as a note; one that is not a finite number is not kept
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            notes[f"logged_{key}"] = value
    meta = make_meta(
        options, source=f"{FORMAT} {path.name}", notes=notes, counted=("completion_tokens",)
    )
    return SamplesTable.from_columns(
        meta=meta,
        query_id=query_id,
        sample_index=sample_index,
        completion_tokens=count_tokens(options, text),
        text=text if options.keep_text else None,
        answer=answer,
        correct=correct,
        temperature=[options.temperature] * len(query_id),
    )


def _natural(qid: str) -> tuple[str, int, str]:
    match = _NUMBER.search(qid)
    if match is None:
        return (qid, -1, qid)
    return (qid[: match.start()], int(match.group(1)), qid)


def _load(path: Path) -> dict[str, Any]:
    with open_log(path) as handle:
        document = loads(handle.read(), path, None)
    if not isinstance(document, dict):
        raise FileFormatError(
            path, "expected a JSON object with raw_generations and raw_scored_generations"
        )
    return document


def _mapping(path: Path, document: dict[str, Any], key: str) -> dict[str, Any]:
    if key not in document:
        raise FileFormatError(path, "missing", field=key)
    value = document[key]
    if not isinstance(value, dict):
        raise FileFormatError(path, "must map problem ids to lists", field=key)
    return value
