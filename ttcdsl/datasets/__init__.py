"""Query datasets: the questions of a batch, with optional gold answers and a task kind.

* :class:`Query`, :class:`Message`, :class:`Dataset` — the format (:mod:`~ttcdsl.datasets.schema`).
* :func:`read_queries` / :func:`write_queries` — JSONL, one query per line.
* :func:`load_source` and the ``load_*`` functions — the public question sets
  (:mod:`~ttcdsl.datasets.sources`).
"""

from ttcdsl.datasets.jsonl import read_queries, write_queries
from ttcdsl.datasets.schema import TASK_KINDS, Dataset, DatasetError, Message, Query
from ttcdsl.datasets.sources import (
    BOXED_INSTRUCTION,
    SOURCES,
    load_aime,
    load_amc23,
    load_cruxeval,
    load_gsm8k,
    load_math500,
    load_qwen25math_pool_questions,
    load_source,
)

__all__ = [
    "BOXED_INSTRUCTION",
    "SOURCES",
    "TASK_KINDS",
    "Dataset",
    "DatasetError",
    "Message",
    "Query",
    "load_aime",
    "load_amc23",
    "load_cruxeval",
    "load_gsm8k",
    "load_math500",
    "load_qwen25math_pool_questions",
    "load_source",
    "read_queries",
    "write_queries",
]
