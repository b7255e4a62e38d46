"""Loaders for the public question sets (the files under ``shared/data/problems`` and the Qwen pool).

Each loader reads the file as published and returns a :class:`Dataset` in the query format:

============================  ===========================  ==========  ===========================
name                          file                         kind        id
============================  ===========================  ==========  ===========================
``math500``                   math500_test.jsonl           math        ``unique_id`` (``test/algebra/1.json``)
``gsm8k``                     gsm8k_test_openai.jsonl      math        ``gsm8k/<line index>``
``aime24``, ``aime25``        aime24_qwq.jsonl, ...        math        ``aime24/<line index>``
``amc23``                     qwen25math_amc23_test.jsonl  math        ``amc23/<id>``
``cruxeval-output``           cruxeval.jsonl               exact       ``id`` (``sample_0``...)
``cruxeval-input``            cruxeval.jsonl               code        ``id``
``qwen25math-math100``        qwen25math_math100_x8.jsonl  math        ``idx`` as a string
============================  ===========================  ==========  ===========================

Math prompts ask for the final answer in ``\\boxed{}`` (the AIME files already do; the others get
:data:`BOXED_INSTRUCTION` appended unless ``instruction=None``). Gold answers are strings as
published (GSM8K: the number after ``####``; AMC23: ``27.0`` becomes ``27``). CRUXEval ids match
the keys of the CRUXEval pools, and the Qwen pool's ids match ``ttc import --format
qwen25math-eval``; ``meta`` keeps the rest of each record.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttcdsl.answers.canonical import number_text
from ttcdsl.datasets.schema import Dataset, DatasetError, Message, Query
from ttcdsl.samples.errors import FileFormatError
from ttcdsl.samples.json_lines import json_objects

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

CRUXEVAL_OUTPUT_TEMPLATE = (
    "Here is a Python function and an input to it. Execute the function on the input step by step "
    "and give the exact value it returns, as a Python literal, on the last line in the form\n"
    "[ANSWER]\n<literal>\n[/ANSWER]\n\n```python\n{code}\n```\n\nInput: f({input})"
)
CRUXEVAL_INPUT_TEMPLATE = (
    "Here is a Python function and the value it returned. Find an input for which it returns "
    "that value, and end your answer with the call alone in a code block:\n"
    "```python\nf(<arguments>)\n```\n\n```python\n{code}\n```\n\nReturned value: {output}"
)


def _field(
    path: Path, line: int, record: Mapping[str, Any], name: str, kinds: tuple[type, ...]
) -> Any:
    if name not in record:
        raise FileFormatError(path, "missing", line=line, field=name)
    value = record[name]
    if not isinstance(value, kinds) or isinstance(value, bool):
        expected = " or ".join(k.__name__ for k in kinds)
        raise FileFormatError(
            path, f"expected {expected}, got {type(value).__name__}", line=line, field=name
        )
    return value


def _with(prompt: str, instruction: str | None) -> str:
    return prompt if instruction is None else f"{prompt}\n{instruction}"


def _gold_text(value: int | float | str) -> str:
    return value if isinstance(value, str) else number_text(value)


def _build(path: Path, name: str, make: Callable[[int, dict[str, Any]], Query]) -> Dataset:
    queries = []
    for number, record in json_objects(path, what="problem"):
        try:
            queries.append(make(number, record))
        except DatasetError as error:
            raise FileFormatError(path, error.message, line=number, field=error.field) from None
    try:
        return Dataset(name=name, queries=tuple(queries), source=path.name)
    except DatasetError as error:
        raise FileFormatError(path, error.message, field=error.field) from None


def load_math500(
    path: str | os.PathLike[str], *, instruction: str | None = BOXED_INSTRUCTION
) -> Dataset:
    path = Path(path)

    def make(line: int, r: dict[str, Any]) -> Query:
        return Query(
            id=_field(path, line, r, "unique_id", (str,)),
            kind="math",
            prompt=_with(_field(path, line, r, "problem", (str,)), instruction),
            gold=_field(path, line, r, "answer", (str,)),
            meta={k: r[k] for k in ("level", "subject", "solution") if k in r},
        )

    return _build(path, "math500", make)


_GSM8K_FINAL = re.compile(r"\n####\s*(.+?)\s*$")


def load_gsm8k(
    path: str | os.PathLike[str], *, instruction: str | None = BOXED_INSTRUCTION
) -> Dataset:
    path = Path(path)

    def make(line: int, r: dict[str, Any]) -> Query:
        solution = _field(path, line, r, "answer", (str,))
        final = _GSM8K_FINAL.search(solution)
        if final is None:
            raise FileFormatError(path, "no final answer after '####'", line=line, field="answer")
        return Query(
            id=f"gsm8k/{line - 1}",
            kind="math",
            prompt=_with(_field(path, line, r, "question", (str,)), instruction),
            gold=final.group(1),
            meta={"solution": solution[: final.start()]},
        )

    return _build(path, "gsm8k", make)


def load_aime(path: str | os.PathLike[str], *, name: str | None = None) -> Dataset:
    """AIME 2024 or 2025 in the QwQ layout (``prompt`` already asks for ``\\boxed{}``)."""
    path = Path(path)
    label = name or _aime_name(path)

    def make(line: int, r: dict[str, Any]) -> Query:
        return Query(
            id=f"{label}/{line - 1}",
            kind="math",
            prompt=_field(path, line, r, "prompt", (str,)),
            gold=_gold_text(_field(path, line, r, "answer", (int, str))),
        )

    return _build(path, label, make)


def _aime_name(path: Path) -> str:
    match = re.search(r"aime\d+", path.name)
    return match.group(0) if match else path.stem


def load_amc23(
    path: str | os.PathLike[str], *, instruction: str | None = BOXED_INSTRUCTION
) -> Dataset:
    path = Path(path)

    def make(line: int, r: dict[str, Any]) -> Query:
        return Query(
            id=f"amc23/{_field(path, line, r, 'id', (int, str))}",
            kind="math",
            prompt=_with(_field(path, line, r, "question", (str,)), instruction),
            gold=_gold_text(_field(path, line, r, "answer", (int, float, str))),
            meta={"url": r["url"]} if isinstance(r.get("url"), str) else {},
        )

    return _build(path, "amc23", make)


def load_cruxeval(path: str | os.PathLike[str], *, task: str = "output") -> Dataset:
    """CRUXEval: ``task="output"`` (predict the returned value; gold = the output literal, kind
    ``exact``) or ``task="input"`` (find an input; several can be right, so kind ``code``: check
    by running ``assert <answer> == <output>``; gold = the published call ``f(<input>)``)."""
    if task not in ("output", "input"):
        raise DatasetError(f"task must be 'output' or 'input', got {task!r}", field="task")
    path = Path(path)

    def make(line: int, r: dict[str, Any]) -> Query:
        code = _field(path, line, r, "code", (str,))
        given_input = _field(path, line, r, "input", (str,))
        output = _field(path, line, r, "output", (str,))
        if task == "output":
            prompt = CRUXEVAL_OUTPUT_TEMPLATE.format(code=code, input=given_input)
            gold, kind = output, "exact"
        else:
            prompt = CRUXEVAL_INPUT_TEMPLATE.format(code=code, output=output)
            gold, kind = f"f({given_input})", "code"
        return Query(
            id=_field(path, line, r, "id", (str,)),
            kind=kind,
            prompt=prompt,
            gold=gold,
            meta={"code": code, "input": given_input, "output": output, "task": task},
        )

    return _build(path, f"cruxeval-{task}", make)


def load_qwen25math_pool_questions(path: str | os.PathLike[str]) -> Dataset:
    """The questions of a Qwen2.5-Math evaluation log, as the chat the model was given
    (``system`` then ``question``); gold ``gt``."""
    path = Path(path)

    def make(line: int, r: dict[str, Any]) -> Query:
        messages = [Message(role="user", content=_field(path, line, r, "question", (str,)))]
        system = r.get("system")
        if isinstance(system, str) and system:
            messages.insert(0, Message(role="system", content=system))
        return Query(
            id=str(_field(path, line, r, "idx", (int, str))),
            kind="math",
            messages=tuple(messages),
            gold=_gold_text(_field(path, line, r, "gt", (str, int, float))),
            meta={"level": r["level"]} if isinstance(r.get("level"), str) else {},
        )

    return _build(path, "qwen25math-math100", make)


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """A known question set: its file under the shared data directory and its loader."""

    name: str
    relative_path: str
    load: Callable[[Path], Dataset]
    description: str


SOURCES: Mapping[str, Source] = {
    s.name: s
    for s in (
        Source(name="math500", relative_path="problems/math500_test.jsonl", load=load_math500,
               description="MATH-500 (PRM800K split), 500 problems"),
        Source(name="gsm8k", relative_path="problems/gsm8k_test_openai.jsonl", load=load_gsm8k,
               description="GSM8K test, 1319 problems"),
        Source(name="aime24", relative_path="problems/aime24_qwq.jsonl",
               load=lambda p: load_aime(p, name="aime24"), description="AIME 2024, 30 problems"),
        Source(name="aime25", relative_path="problems/aime25_qwq.jsonl",
               load=lambda p: load_aime(p, name="aime25"), description="AIME 2025, 30 problems"),
        Source(name="amc23", relative_path="problems/qwen25math_amc23_test.jsonl", load=load_amc23,
               description="AMC 2023, 40 problems"),
        Source(name="cruxeval-output", relative_path="problems/cruxeval.jsonl",
               load=lambda p: load_cruxeval(p, task="output"),
               description="CRUXEval output prediction, 800 problems"),
        Source(name="cruxeval-input", relative_path="problems/cruxeval.jsonl",
               load=lambda p: load_cruxeval(p, task="input"),
               description="CRUXEval input prediction, 800 problems"),
        Source(name="qwen25math-math100", relative_path="pools/qwen25math_math100_x8.jsonl",
               load=load_qwen25math_pool_questions,
               description="the 100 MATH questions of the Qwen2.5-Math pool"),
    )
}  # fmt: skip


def load_source(name: str, data_dir: str | os.PathLike[str]) -> Dataset:
    """Load the known question set ``name`` from the shared data directory ``data_dir``."""
    from ttcdsl.errors import UserError

    source = SOURCES.get(name)
    if source is None:
        raise UserError(f"unknown question set {name!r}", hint=f"known sets: {', '.join(SOURCES)}")
    path = Path(data_dir) / source.relative_path
    if not path.is_file():
        raise UserError(
            f"{path}: no such file (the {name} questions)",
            hint="point data_dir at the shared data directory (it has problems/ and pools/)",
        )
    return source.load(path)
