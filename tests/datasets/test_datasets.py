"""The query dataset format and the loaders of the public question sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttcdsl.datasets import (
    BOXED_INSTRUCTION,
    SOURCES,
    Dataset,
    DatasetError,
    Message,
    Query,
    load_aime,
    load_amc23,
    load_cruxeval,
    load_gsm8k,
    load_math500,
    load_source,
    read_queries,
    write_queries,
)
from ttcdsl.errors import UserError
from ttcdsl.samples import FileFormatError


def test_math500(shared_data: Path) -> None:
    data = load_math500(shared_data / "problems" / "math500_test.jsonl")
    assert len(data) == 500 and {q.kind for q in data} == {"math"}
    first = data.queries[0]
    assert first.id == "test/precalculus/807.json"
    assert first.gold == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert first.prompt.startswith("Convert the point $(0,3)$") and first.prompt.endswith(
        BOXED_INSTRUCTION
    )
    assert first.meta["level"] == "Level 2" and first.meta["subject"] == "Precalculus"
    bare = load_math500(shared_data / "problems" / "math500_test.jsonl", instruction=None)
    assert (
        bare.queries[0].prompt
        == json.loads((shared_data / "problems" / "math500_test.jsonl").open().readline())[
            "problem"
        ]
    )


def test_gsm8k_gold_is_the_number_after_the_marks(shared_data: Path) -> None:
    data = load_gsm8k(shared_data / "problems" / "gsm8k_test_openai.jsonl")
    assert len(data) == 1319
    assert data.queries[0].id == "gsm8k/0" and data.queries[0].gold == "18"
    assert data.queries[1].gold == "3"
    assert all("####" not in q.gold and q.gold for q in data)
    assert data.queries[0].meta["solution"].startswith("Janet sells 16 - 3 - 4")


@pytest.mark.parametrize(("name", "first_gold"), [("aime24", "204"), ("aime25", "70")])
def test_aime(shared_data: Path, name: str, first_gold: str) -> None:
    data = load_aime(shared_data / "problems" / f"{name}_qwq.jsonl")
    assert data.name == name and len(data) == 30
    assert data.queries[0].id == f"{name}/0" and data.queries[0].gold == first_gold
    assert all(q.prompt.rstrip().endswith("\\boxed{}.") and q.gold.isdigit() for q in data)


def test_amc23_numbers_become_plain_text(shared_data: Path) -> None:
    data = load_amc23(shared_data / "problems" / "qwen25math_amc23_test.jsonl")
    assert len(data) == 40
    assert [q.gold for q in data][:5] == ["27", "36", "45", "3159", "36"]
    assert data.by_id()["amc23/17"].gold == "-1"  # ids are the file's, not line numbers
    assert data.queries[0].meta["url"].startswith("https://artofproblemsolving.com")


def test_cruxeval_both_tasks(shared_data: Path) -> None:
    path = shared_data / "problems" / "cruxeval.jsonl"
    output = load_cruxeval(path, task="output")
    assert len(output) == 800 and output.queries[0].id == "sample_0"
    first = output.queries[0]
    assert (
        first.kind == "exact" and first.gold == "[(4, 1), (4, 1), (4, 1), (4, 1), (2, 3), (2, 3)]"
    )
    assert "def f(nums):" in first.prompt and "f([1, 1, 3, 1, 3, 1])" in first.prompt
    inputs = load_cruxeval(path, task="input")
    assert inputs.queries[0].kind == "code" and inputs.queries[0].gold == "f([1, 1, 3, 1, 3, 1])"
    assert inputs.queries[0].meta["output"] == first.gold
    with pytest.raises(DatasetError):
        load_cruxeval(path, task="both")


def test_cruxeval_ids_match_the_pools(shared_data: Path) -> None:
    pool = json.loads((shared_data / "pools" / "cruxeval_output_codellama7b_x10.json").read_text())
    ids = set(load_source("cruxeval-output", shared_data).ids())
    assert ids == set(pool["raw_generations"])


def test_qwen_pool_questions_are_the_chat_the_model_saw(shared_data: Path) -> None:
    data = load_source("qwen25math-math100", shared_data)
    assert len(data) == 100 and data.ids()[:3] == ("0", "1", "2")
    system, user = data.queries[0].messages
    assert system.role == "system" and "\\boxed{}" in system.content
    assert user.role == "user" and user.content.startswith("What is $10.0000198")
    assert data.queries[0].gold == "420"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_known_set_round_trips_through_jsonl(
    shared_data: Path, tmp_path: Path, name: str
) -> None:
    data = load_source(name, shared_data)
    write_queries(data, tmp_path / "q.jsonl")
    again = read_queries(tmp_path / "q.jsonl", name=data.name)
    assert again.queries == data.queries and again.name == data.name


def test_unknown_set_and_missing_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown question set"):
        load_source("mmlu", tmp_path)
    with pytest.raises(UserError, match="no such file"):
        load_source("gsm8k", tmp_path)


def test_query_rules() -> None:
    with pytest.raises(DatasetError) as caught:
        Query(id="a", kind="math")
    assert caught.value.field == "prompt"
    with pytest.raises(DatasetError):
        Query(id="a", kind="math", prompt="p", messages=(Message(role="user", content="m"),))
    with pytest.raises(DatasetError) as caught:
        Query(id="a", kind="essay", prompt="p")
    assert caught.value.field == "kind"
    with pytest.raises(DatasetError):
        Message(role="robot", content="x")
    with pytest.raises(DatasetError):
        Dataset(name="d", queries=(Query(id="a", kind="math", prompt="p"),) * 2)
    chat = Query(id="a", kind="exact", prompt="hi").chat()
    assert chat == (Message(role="user", content="hi"),)
    query = Query(id="a", kind="math", prompt="p", meta={"tags": ["x", {"y": 1}]})
    assert Query.from_dict(json.loads(json.dumps(query.to_dict()))) == query


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ('{"id": "b", "kind": "math"', None, "not valid JSON"),
        # read "Invalid control character at at column 10"
        ('{"id": "b\x01"}', None, "not valid JSON (Invalid control character at column 10)"),
        ('{"id": "b", "kind": "math", "prompt": "p", "answer": "3"}', "answer", "unknown field"),
        ('{"kind": "math", "prompt": "p"}', "id", "missing"),
        ('{"id": "b", "kind": "proof", "prompt": "p"}', "kind", "one of"),
        ('{"id": "b", "kind": "math", "prompt": "p", "gold": 3}', "gold", "string"),
        (
            '{"id": "b", "kind": "math", "messages": [{"role": "user"}]}',
            "messages",
            "role and content",
        ),
        ('{"id": "a", "kind": "math", "prompt": "p"}', "id", "duplicate id 'a' (first on line 1)"),
        ('\n{"id": "c", "kind": "math", "prompt": "p"}', None, "blank line"),  # not at the end
    ],
)
def test_bad_dataset_lines_name_file_line_field(
    tmp_path: Path, line: str, field: str | None, words: str
) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "kind": "math", "prompt": "p"}\n' + line + "\n")
    with pytest.raises(FileFormatError) as caught:
        read_queries(path)
    assert caught.value.line == 2 and caught.value.field == field and words in caught.value.message


def test_a_cut_off_last_line_is_said_in_plain_words(tmp_path: Path) -> None:
    """A dataset whose last line was cut off read "Unterminated string starting at at column 8"."""
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "kind": "math", "prompt": "p"}\n{"id": "b')
    with pytest.raises(FileFormatError) as caught:
        read_queries(path)
    assert caught.value.line == 2
    assert "not valid JSON (Unterminated string starting at column 8)" in caught.value.message


def test_blank_lines_at_the_end_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "kind": "math", "prompt": "p"}\n\n  \n')
    assert [q.id for q in read_queries(path)] == ["a"]


def test_loader_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "gsm8k.jsonl"
    path.write_text(
        '{"question": "q", "answer": "so 4\\n#### 4"}\n{"question": "q", "answer": "none"}\n'
    )
    with pytest.raises(FileFormatError) as caught:
        load_gsm8k(path)
    assert (caught.value.line, caught.value.field) == (2, "answer")
    path.write_text('{"problem": "p", "answer": 3, "unique_id": "u"}\n')
    with pytest.raises(FileFormatError, match="expected str, got int") as caught:
        load_math500(path)
    assert caught.value.field == "answer"
