"""The importers on the real shared pools: row counts and the README's published figures."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ttcdsl.answers import canonicalize
from ttcdsl.importers import (
    ImportOptions,
    import_cruxeval_scored,
    import_qwen25math_eval,
    load_tokenizer,
)
from ttcdsl.samples import FileFormatError, SamplesTable

QWEN = "qwen25math_math100_x8.jsonl"


@pytest.fixture(scope="module")
def qwen(shared_data: Path) -> SamplesTable:
    return import_qwen25math_eval(shared_data / "pools" / QWEN, ImportOptions(temperature=0.7))


def _per_query_correct(table: SamplesTable) -> dict[str, np.ndarray]:
    return {q: table.correct.filled(False)[i] for q, i in table.by_query().items()}


def test_qwen_shape_and_any_of_8(qwen: SamplesTable) -> None:
    assert len(qwen) == 800 and len(qwen.query_ids()) == 100
    assert qwen.query_ids()[:3] == ("0", "1", "2")
    groups = qwen.by_query()
    assert all(qwen.sample_index[i].tolist() == list(range(8)) for i in groups.values())
    assert int(qwen.correct.sum()) == 728 and qwen.correct.count() == 800
    assert sum(c.any() for c in _per_query_correct(qwen).values()) == 96  # README: any-of-8 96/100


def test_qwen_majority_vote_and_reward_model_best_of_8(qwen: SamplesTable) -> None:
    majority = best_rm = 0
    for indices in qwen.by_query().values():
        answers = qwen.answer[indices].tolist()
        top = Counter(answers).most_common(1)[0][0]
        majority += bool(qwen.correct[indices][answers.index(top)])
        best_rm += bool(qwen.correct[indices][int(np.argmax(qwen.scores["rm"][indices]))])
    assert majority == 93  # README: maj@8 = 93/100
    assert best_rm == 94  # README: RM best-of-8 = 94/100


def test_pool_query_ids_match_the_question_sets(qwen: SamplesTable, shared_data: Path) -> None:
    from ttcdsl.datasets import load_source

    assert qwen.query_ids() == load_source("qwen25math-math100", shared_data).ids()
    crux = import_cruxeval_scored(shared_data / "pools" / "cruxeval_output_codellama7b_x10.json")
    assert crux.query_ids() == load_source("cruxeval-output", shared_data).ids()


def test_qwen_values_come_from_the_log(qwen: SamplesTable, shared_data: Path) -> None:
    first = json.loads((shared_data / "pools" / QWEN).open(encoding="utf-8").readline())
    rows = [qwen.row(i) for i in qwen.by_query()["0"]]
    assert [r.text for r in rows] == first["code"]
    assert [r.answer for r in rows] == [canonicalize(p, "math") for p in first["pred"]]
    assert [r.scores["rm"] for r in rows] == [s[0] for s in first["pred_score"]]
    assert all(r.temperature == 0.7 and r.completion_tokens is None for r in rows)
    assert qwen.meta.sampling == {"temperature": 0.7} and qwen.meta.tokenizer is None
    assert "unknown" in qwen.meta.notes["token_counts"]
    assert qwen.meta.notes["answers"].startswith("canonicalised")


@pytest.mark.parametrize(
    ("name", "pass_at_1", "pass_at_10"),
    [("output", 0.342125, 0.41875), ("input", 0.3595, 0.475)],
)
def test_cruxeval_pools(shared_data: Path, name: str, pass_at_1: float, pass_at_10: float) -> None:
    path = shared_data / "pools" / f"cruxeval_{name}_codellama7b_x10.json"
    table = import_cruxeval_scored(path)
    assert len(table) == 8000 and len(table.query_ids()) == 800
    assert table.query_ids()[:3] == ("sample_0", "sample_1", "sample_2")
    assert table.correct.mean() == pytest.approx(pass_at_1)  # README: 34.2% / 36.0%
    solved = np.mean([c.any() for c in _per_query_correct(table).values()])
    assert solved == pytest.approx(pass_at_10)  # README: pass@10 41.9% / 47.5%
    logged = json.loads(path.read_text())
    assert table.meta.notes["logged_pass_at_1"] == logged["pass_at_1"]
    rows = [table.row(i) for i in table.by_query()["sample_130"]]
    assert [r.text for r in rows] == logged["raw_generations"]["sample_130"]
    assert [r.correct for r in rows] == logged["raw_scored_generations"]["sample_130"]
    assert [r.answer for r in rows] == [
        canonicalize(t, "exact") for t in logged["raw_generations"]["sample_130"]
    ]


def _word_tokenizer(directory: Path, texts: list[str]) -> Path:
    """A real tokenizer.json (word level, whitespace/punctuation split) trained on ``texts``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    path = directory / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def test_token_counts_with_a_local_tokenizer(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("tokenizers", reason="the optional 'tokenizers' package is not installed")
    path = shared_data / "pools" / "cruxeval_output_codellama7b_x10.json"
    texts = import_cruxeval_scored(path).text.tolist()
    tokenizer_file = _word_tokenizer(tmp_path, texts[:500])
    for given in (tokenizer_file, tmp_path):  # the file, or a model folder holding it
        counter = load_tokenizer(given)
        table = import_cruxeval_scored(path, ImportOptions(tokenizer=counter, keep_text=False))
        # the Whitespace pre-tokenizer splits \w+ and runs of punctuation: an independent count
        expected = [len(re.findall(r"\w+|[^\w\s]+", t)) for t in texts]
        assert table.completion_tokens.tolist() == expected
        assert table.text.tolist() == [None] * len(table)
        assert table.meta.tokenizer == counter.description and "sha256" in counter.description
        assert "completion_tokens counted with" in table.meta.notes["token_counts"]
        assert "prompt_tokens unknown" in table.meta.notes["token_counts"]


def test_tokenizer_errors(tmp_path: Path) -> None:
    from ttcdsl.errors import UserError

    with pytest.raises(UserError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
    with pytest.raises(UserError, match="no such tokenizer"):
        load_tokenizer(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="not a tokenizers tokenizer.json"):
        load_tokenizer(tmp_path / "bad.json")


def _qwen_lines(shared_data: Path, n: int) -> list[dict]:
    with (shared_data / "pools" / QWEN).open(encoding="utf-8") as handle:
        return [json.loads(next(handle)) for _ in range(n)]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda r: r.update(score=r["score"][:7]), "score", "has 7 entries but code has 8"),
        (lambda r: r["score"].__setitem__(3, 1), "score", "[3] must be true or false"),
        (lambda r: r.pop("idx"), "idx", "missing"),
        (lambda r: r.update(idx=0), "idx", "again (first on line 1)"),
        (lambda r: r["pred_score"].__setitem__(2, ["x"]), "pred_score", "[2] must be a number"),
        (lambda r: r.pop("pred_score"), "pred_score", "missing here"),
        (lambda r: r.update(code="one response"), "code", "must be a list"),
    ],
)
def test_malformed_qwen_logs_name_file_line_field(
    shared_data: Path,
    tmp_path: Path,
    change,
    field: str,
    words: str,  # noqa: ANN001
) -> None:
    records = _qwen_lines(shared_data, 3)
    change(records[1])
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    with pytest.raises(FileFormatError) as caught:
        import_qwen25math_eval(path)
    error = caught.value
    assert (error.path, error.line, error.field) == (path, 2, field)
    assert words in error.message and error.message.startswith(f"{path}:2: field {field!r}")


def test_malformed_cruxeval_documents(tmp_path: Path) -> None:
    path = tmp_path / "scored.json"
    cases = [
        ({"raw_generations": {"s_0": ["1"]}}, "raw_scored_generations", "missing"),
        ({"raw_generations": {"s_0": ["1"]}, "raw_scored_generations": {"s_1": [True]}},
         "raw_scored_generations", "no entry for problem 's_0'"),
        ({"raw_generations": {"s_0": ["1", "2"]}, "raw_scored_generations": {"s_0": [True]}},
         "raw_scored_generations['s_0']", "must be a list of 2 booleans (one per generation), got a list of 1"),
        ({"raw_generations": {"s_0": ["1"]}, "raw_scored_generations": {"s_0": True}},
         "raw_scored_generations['s_0']", "got a JSON boolean"),
        ({"raw_generations": {"s_0": [1]}, "raw_scored_generations": {"s_0": [True]}},
         "raw_generations['s_0'][0]", "must be a string"),
        ({"raw_generations": {"s_0": ["1"]}, "raw_scored_generations": {"s_0": ["yes"]}},
         "raw_scored_generations['s_0'][0]", "true or false"),
        # a problem without samples would vanish from the table without a word
        ({"raw_generations": {"s_0": ["1"], "s_1": []}, "raw_scored_generations": {"s_0": [True], "s_1": []}},
         "raw_generations['s_1']", "the list is empty"),
    ]  # fmt: skip
    for document, field, words in cases:
        path.write_text(json.dumps(document))
        with pytest.raises(FileFormatError) as caught:
            import_cruxeval_scored(path)
        assert caught.value.field == field and words in caught.value.message
    path.write_text('{"raw_generations": {\n  "s_0": [1,]}}')
    with pytest.raises(FileFormatError, match="not valid JSON") as caught:
        import_cruxeval_scored(path)
    assert caught.value.line == 2
