"""Reading and writing a dataset as JSONL, one query per line.

    {"id": "test/precalculus/807.json", "kind": "math", "prompt": "Convert ...",
     "gold": "\\left( 3, \\frac{\\pi}{2} \\right)", "meta": {"level": "Level 2"}}
    {"id": "chat-1", "kind": "exact", "gold": null,
     "messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}]}

(shown wrapped; in the file each query is one line)

Problems are reported as ``FILE:LINE: field 'NAME': what is wrong``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ttcdsl.datasets.schema import Dataset, DatasetError, Query, dumps_query
from ttcdsl.errors import shown
from ttcdsl.samples.errors import FileFormatError
from ttcdsl.samples.json_lines import json_objects


def read_queries(path: str | os.PathLike[str], *, name: str | None = None) -> Dataset:
    """Load a dataset JSONL file; any bad line is reported as ``FILE:LINE: field: problem``."""
    path = Path(path)
    queries: list[Query] = []
    seen: dict[str, int] = {}
    for number, record in json_objects(path, what="query"):
        if not queries and not seen:  # the first record: is this a dataset at all?
            from ttcdsl.file_kinds import kind_of_record, misplaced

            kind = kind_of_record(record)
            if kind is not None and kind != "a dataset of queries":
                message, hint = misplaced(kind, "a dataset of queries")
                raise FileFormatError(path, message, hint=hint)
        try:
            query = Query.from_dict(record)
        except DatasetError as error:
            raise FileFormatError(path, error.message, line=number, field=error.field) from None
        if query.id in seen:
            raise FileFormatError(
                path,
                f"duplicate id {shown(query.id)} (first on line {seen[query.id]})",
                line=number,
                field="id",
            )
        seen[query.id] = number
        queries.append(query)
    return Dataset(name=name or path.stem, queries=tuple(queries), source=str(path))


def write_queries(dataset: Dataset, path: str | os.PathLike[str]) -> None:
    """Write ``dataset`` as JSONL, atomically."""
    from ttcdsl.samples.atomic import atomic_writer

    with atomic_writer(path) as handle:
        for query in dataset:
            handle.write(dumps_query(query) + "\n")

