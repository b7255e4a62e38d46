"""The generic JSONL/CSV importer: the mapping, value parsing, and errors naming file:line:field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ttcdsl.errors import UserError
from ttcdsl.importers import (
    Extractor,
    FieldMapping,
    ImportOptions,
    import_cruxeval_scored,
    import_generic,
    import_generic_queries,
    import_qwen25math_eval,
)
from ttcdsl.samples import FileFormatError


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


RECORDS = [
    {
        "qid": "a",
        "out": {"text": "so 4", "answer": "4"},
        "ok": True,
        "reward": [0.9],
        "usage": {"n": 3},
    },
    {
        "qid": "b",
        "out": {"text": "maybe 5", "answer": "5"},
        "ok": 0,
        "reward": 0.1,
        "usage": {"n": 7},
    },
    {
        "qid": "a",
        "out": {"text": "so 3", "answer": None},
        "ok": None,
        "reward": None,
        "usage": {"n": None},
    },
    {"qid": 7, "out": {"text": "", "answer": ""}, "ok": "Yes", "reward": -2, "usage": {"n": 0}},
]
MAPPING = FieldMapping(
    query_id="qid", text="out.text", answer="out.answer", correct="ok",
    completion_tokens="usage.n", scores=(("rm", "reward"),),
)  # fmt: skip


def test_jsonl_mapping_with_nested_fields(tmp_path: Path) -> None:
    table = import_generic(_jsonl(tmp_path / "log.jsonl", RECORDS), MAPPING)
    assert table.query_id.tolist() == ["a", "b", "a", "7"]
    assert table.sample_index.tolist() == [0, 0, 1, 0]  # numbered per query in file order
    assert table.answer.tolist() == ["4", "5", None, None]  # "" is no answer
    assert table.text.tolist() == ["so 4", "maybe 5", "so 3", ""]
    assert table.correct.tolist() == [True, False, None, True]
    assert table.scores["rm"].tolist() == [0.9, 0.1, None, -2.0]
    assert table.completion_tokens.tolist() == [3, 7, None, 0]
    assert table.meta.notes["mapping"]["answer"] == "out.answer"
    assert table.meta.notes["mapping"]["scores"] == {"rm": "reward"}
    assert "completion_tokens as logged" in table.meta.notes["token_counts"]
    assert table.meta.notes["answers"] == "as logged, surrounding whitespace stripped (not canonicalised)"


def test_answer_kind_canonicalises(tmp_path: Path) -> None:
    records = [{"q": "x", "a": "\\boxed{\\frac12}"}, {"q": "x", "a": " 0.5 "}]
    table = import_generic(
        _jsonl(tmp_path / "l.jsonl", records),
        FieldMapping(query_id="q", answer="a"),
        ImportOptions(answer_kind="math"),
    )
    from ttcdsl.answers import canonicalize

    assert table.answer.tolist() == [
        canonicalize("\\boxed{\\frac12}", "math"),
        canonicalize(" 0.5 ", "math"),
    ]


def test_csv_with_explicit_indices_rounds_and_scores(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "query,k,r,pred,correct,resp,prm,lp,stop\n"
        'q1,1,0,42,true,"line one\nline two",0.5,-0.25,stop\n'
        "q1,0,0,41,FALSE,x,,,length\n"
        "q2,0,1,,,y,1e-3,,\n",
        encoding="utf-8",
    )
    mapping = FieldMapping(
        query_id="query", sample_index="k", round="r", answer="pred", correct="correct",
        text="resp", scores=(("prm", "prm"),), mean_logprob="lp", finish_reason="stop",
    )  # fmt: skip
    table = import_generic(path, mapping, ImportOptions(temperature=1.0))
    assert table.sample_index.tolist() == [1, 0, 0] and table.round.tolist() == [0, 0, 1]
    assert table.answer.tolist() == ["42", "41", None]
    assert table.correct.tolist() == [True, False, None]
    assert table.text[0] == "line one\nline two"
    assert table.scores["prm"].tolist() == [0.5, None, 0.001]
    assert table.mean_logprob.tolist() == [-0.25, None, None]
    assert table.finish_reason.tolist() == ["stop", "length", None]
    assert table.temperature.tolist() == [1.0, 1.0, 1.0]
    assert table.by_query()["q1"].tolist() == [1, 0]


def test_prompt_and_completion_tokens_from_a_tokenizer(tmp_path: Path) -> None:
    tokenizers = pytest.importorskip(
        "tokenizers", reason="the optional 'tokenizers' package is not installed"
    )
    from ttcdsl.importers import load_tokenizer

    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.train_from_iterator(["what is two plus two ? four"], tokenizers.trainers.WordLevelTrainer())
    tok.save(str(tmp_path / "tokenizer.json"))
    records = [
        {"q": "x", "p": "what is two plus two?", "t": "four"},
        {"q": "x", "p": "what?", "t": None},
    ]
    table = import_generic(
        _jsonl(tmp_path / "l.jsonl", records),
        FieldMapping(query_id="q", prompt="p", text="t"),
        ImportOptions(tokenizer=load_tokenizer(tmp_path / "tokenizer.json")),
    )
    assert table.prompt_tokens.tolist() == [6, 2]
    assert table.completion_tokens.tolist() == [1, None]  # no text: unknown, not zero
    assert (
        "completion_tokens and prompt_tokens counted with tokenizer.json"
        in table.meta.notes["token_counts"]
    )


SECOND = {"qid": "a", "ans": "4", "ok": True, "rw": 0.5, "n": 2, "k": 1}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"qid": None}, "qid", "missing on this line (it has: ans, k, n, ok, rw)"),
        ({"ok": "maybe"}, "ok", "expected true/false"),
        ({"ok": 2}, "ok", "expected true/false"),
        ({"ans": {"v": 4}}, "ans", "expected a string"),
        ({"ans": float("nan")}, "ans", "expected a string, got NaN"),  # was the answer "NaN"
        ({"ans": float("inf")}, "ans", "expected a string, got an infinite number"),
        ({"rw": "high"}, "rw", "expected a number"),
        ({"n": -1}, "n", "must be >= 0"),
        ({"n": 1.5}, "n", "expected an integer"),
        ({"qid": ""}, "qid", "non-empty string"),
        ({"k": 0}, "k", "duplicate sample: query 'a' sample_index 0 already on line 1"),
    ],
)
def test_bad_values_name_file_line_and_field(
    tmp_path: Path, change: dict, field: str, words: str
) -> None:
    first = {"qid": "a", "ans": "3", "ok": False, "rw": 1.0, "n": 5, "k": 0}
    second = {k: v for k, v in {**SECOND, **change}.items() if not (k == "qid" and v is None)}
    path = _jsonl(tmp_path / "log.jsonl", [first, second])
    mapping = FieldMapping(
        query_id="qid", answer="ans", correct="ok", scores=(("rm", "rw"),),
        completion_tokens="n", sample_index="k",
    )  # fmt: skip
    with pytest.raises(FileFormatError) as caught:
        import_generic(path, mapping)
    assert (caught.value.line, caught.value.field) == (2, field)
    assert words in caught.value.message
    assert caught.value.message.startswith(f"{path}:2: field {field!r}: ")


def test_a_spreadsheets_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text("qid,pred,ok\nq1,42,true\nq1,41,false\n", encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    table = import_generic(path, FieldMapping(query_id="qid", answer="pred", correct="ok"), ImportOptions())
    assert table.query_ids() == ("q1",) and table.correct.tolist() == [True, False]


@pytest.mark.parametrize("column", ["completion_tokens", "prompt_tokens"])
def test_a_zero_token_count_for_a_text_with_characters_is_refused(tmp_path: Path, column: str) -> None:
    # a usage block left zeroed: the plan billed those samples nothing, and halved the tokens
    usage = {"completion_tokens": 40, "prompt_tokens": 12, column: 0}
    path = _jsonl(tmp_path / "log.jsonl", [
        {"q": "a", "p": "What is 2+2?", "t": "", "usage": {"completion_tokens": 0, "prompt_tokens": 12}},
        {"q": "a", "p": "What is 2+2?", "t": "It is 4.", "usage": usage},
    ])
    mapping = FieldMapping(query_id="q", prompt="p", text="t", completion_tokens="usage.completion_tokens",
                           prompt_tokens="usage.prompt_tokens")
    with pytest.raises(FileFormatError, match="0 tokens for a .* of [0-9]+ characters") as caught:
        import_generic(path, mapping)  # line 1's empty response has 0 tokens indeed
    assert (caught.value.line, caught.value.field) == (2, f"usage.{column}")
    assert "unmapped" in (caught.value.hint or "")


def test_a_gold_written_as_nan_is_refused_not_matched_as_text(tmp_path: Path) -> None:
    # json.dumps of a pandas row with a missing gold: every sample was labelled wrong against "NaN"
    path = _jsonl(tmp_path / "log.jsonl", [{"q": "a", "t": "so 4", "gold": "4"},
                                           {"q": "b", "t": "so 5", "gold": float("nan")}])
    assert "NaN" in path.read_text()
    with pytest.raises(FileFormatError, match="expected a string, got NaN") as caught:
        import_generic(path, FieldMapping(query_id="q", text="t", gold="gold"), extractor=Extractor(kind="math"))
    assert (caught.value.line, caught.value.field) == (2, "gold")
    assert "null" in (caught.value.hint or "")


def test_a_byte_order_mark_before_the_first_json_line_or_document_is_read_past(tmp_path: Path) -> None:
    # PowerShell's Out-File -Encoding utf8 and Notepad write one; it was "not valid JSON" on line 1
    log = tmp_path / "log.jsonl"
    log.write_text('{"qid": "q1", "pred": "42", "ok": true}\n{"qid": "q1", "pred": "41", "ok": false}\n',
                   encoding="utf-8-sig")
    table = import_generic(log, FieldMapping(query_id="qid", answer="pred", correct="ok"))
    assert table.query_ids() == ("q1",) and table.correct.tolist() == [True, False]
    qwen = tmp_path / "qwen.jsonl"
    qwen.write_text(json.dumps({"idx": 0, "code": ["so 4"], "pred": ["4"], "score": [True]}) + "\n",
                    encoding="utf-8-sig")
    assert import_qwen25math_eval(qwen).answer.tolist() == ["4"]
    crux = tmp_path / "crux.json"
    crux.write_text(json.dumps({"raw_generations": {"sample_0": ["'a'"]},
                                "raw_scored_generations": {"sample_0": [True]}}), encoding="utf-8-sig")
    assert import_cruxeval_scored(crux).correct.tolist() == [True]


def test_a_byte_order_mark_past_the_first_line_is_still_refused(tmp_path: Path) -> None:
    log = tmp_path / "cat.jsonl"  # two files concatenated: the second one's mark is mid-file
    log.write_text('{"qid": "q1"}\n\ufeff{"qid": "q2"}\n', encoding="utf-8")
    with pytest.raises(FileFormatError, match="not valid JSON") as caught:
        import_generic(log, FieldMapping(query_id="qid"))
    assert caught.value.line == 2


def test_a_csv_cell_longer_than_the_csv_modules_limit_is_read(tmp_path: Path) -> None:
    # a reasoning trace of 150,000 characters in one cell was "bad CSV (field larger than field limit)"
    import csv

    path = tmp_path / "r1.csv"
    trace = "wait, " * 25_000 + "so \\boxed{4}"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["qid", "response", "ok"], ["q1", trace, "true"], ["q1", "5", "false"]])
    limit = csv.field_size_limit()
    table = import_generic(path, FieldMapping(query_id="qid", text="response", correct="ok"))
    assert table.text.tolist() == [trace, "5"] and table.correct.tolist() == [True, False]
    assert csv.field_size_limit() == limit  # the process's limit is left as it was


def test_csv_structure_errors(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("q,a\nx,1\ny,2,3\n")
    with pytest.raises(FileFormatError, match="3 cells, the header has 2") as caught:
        import_generic(path, FieldMapping(query_id="q"))
    assert caught.value.line == 3
    path.write_text("q,q\nx,1\n")
    with pytest.raises(FileFormatError, match="appears twice"):
        import_generic(path, FieldMapping(query_id="q"))
    path.write_text("")
    with pytest.raises(FileFormatError, match="no header"):
        import_generic(path, FieldMapping(query_id="q"))
    path.write_text("q,a\n")
    with pytest.raises(FileFormatError, match="no samples"):
        import_generic(path, FieldMapping(query_id="q"))


def test_format_and_mapping_mistakes(tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text("{}\n")
    with pytest.raises(UserError, match="cannot tell JSONL from CSV"):
        import_generic(tmp_path / "log.txt", FieldMapping(query_id="q"))
    with pytest.raises(UserError, match="mapped twice"):
        FieldMapping(query_id="q", scores=(("rm", "a"), ("rm", "b")))
    with pytest.raises(UserError):
        FieldMapping(query_id="")
    path = _jsonl(tmp_path / "l.jsonl", [{"q": "x"}])
    with pytest.raises(UserError, match="unknown answer kind"):
        import_generic(
            path, FieldMapping(query_id="q", answer="q"), ImportOptions(answer_kind="essay")
        )
    (tmp_path / "bad.jsonl").write_text('{"q": "x"}\n\n{"q": "y"}\n')
    with pytest.raises(FileFormatError, match="blank line") as caught:
        import_generic(tmp_path / "bad.jsonl", FieldMapping(query_id="q"))
    assert caught.value.line == 2


def test_a_prompt_nll_field_is_the_querys_and_a_policy_bins_on_it(tmp_path: Path) -> None:
    """--prompt-nll-field: under --explode it is the line's (its query's, shared by the samples);
    the planner's binning key is that value."""
    from ttcdsl.cli import main

    log = tmp_path / "log.jsonl"
    lines = []
    for q in range(8):
        nll = 0.5 + q * 0.25
        answers = ["1"] * (8 - q) + ["2"] * q  # harder prompts, less agreement
        lines.append(json.dumps({"id": f"q{q}", "nll": nll, "answers": answers,
                                 "ok": [a == "1" for a in answers]}))
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table_path = tmp_path / "t.jsonl"
    assert main(["import", str(log), "-f", "generic", "-o", str(table_path), "--explode",
                 "--query-id-field", "id", "--answer-field", "answers", "--correct-field", "ok",
                 "--prompt-nll-field", "nll"]) == 0
    from ttcdsl.samples import load

    table = load(table_path)
    by_query = table.by_query()
    assert table.prompt_nll[by_query["q3"]].tolist() == [1.25] * 8
    policy = tmp_path / "nll.ttc"
    policy.write_text(
        'policy nll "bins by prompt NLL"\nbudget { mean samples per query <= 4 }\n'
        "sampling { max_tokens 512 }\nprobe 1 samples\nfeature hardness = prompt_nll\n"
        "bins by hardness thresholds [1.3] as easy, hard\nstrategy easy = majority_vote\n"
        "strategy hard = majority_vote\nallocate optimal maximize accuracy\n")
    from ttcdsl.lang.api import load_policy
    from ttcdsl.planner.calibration import calibrate

    calibration = calibrate(load_policy(policy), table)
    keys = dict(zip(calibration.query_ids, calibration.key.tolist()))
    assert keys == {f"q{q}": 0.5 + q * 0.25 for q in range(8)}
    bins = dict(zip(calibration.query_ids, calibration.bin_index.tolist()))
    assert [bins[f"q{q}"] for q in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]  # 1.25 < 1.3 <= 1.5


def test_a_numeric_gold_is_compared_as_the_number_it_is(tmp_path: Path) -> None:
    """JSON reads 0.00001 as a float, whose text was Python's "1e-05" (and 1e21's "1e+21"):
    the right answers "0.00001" and "1000000000000000000000" were labelled wrong."""
    from ttcdsl.importers.labels import Extractor

    log = _jsonl(tmp_path / "log.jsonl", [
        {"q": "a", "p": "x", "gold": 0.00001, "t": "\\boxed{0.00001}"},
        {"q": "b", "p": "y", "gold": 1e21, "t": "\\boxed{1000000000000000000000}"},
        {"q": "c", "p": "z", "gold": 2.0, "t": "\\boxed{2}"},
        {"q": "d", "p": "w", "gold": -0.25, "t": "\\boxed{-\\frac{1}{4}}"},
    ])  # fmt: skip
    mapping = FieldMapping(query_id="q", prompt="p", text="t", gold="gold")
    table = import_generic(log, mapping, extractor=Extractor(kind="math"))
    assert table.correct.tolist() == [True, True, True, True]


def test_lines_of_one_query_must_agree_on_its_question_and_gold(tmp_path: Path) -> None:
    """Two logs concatenated, each numbering its queries from 0: query 'a' of the second log
    merged into the first's, its samples labelled against either gold. This was checked only
    when the queries were written too (--queries-out)."""
    from ttcdsl.importers.labels import Extractor

    log = _jsonl(tmp_path / "log.jsonl", [
        {"q": "a", "p": "2+2?", "gold": "4", "t": "\\boxed{4}"},
        {"q": "a", "p": "3+3?", "gold": "6", "t": "\\boxed{6}"},
    ])  # fmt: skip
    with pytest.raises(FileFormatError, match=r"log.jsonl:2: field 'gold': query 'a' has another gold"):
        import_generic(log, FieldMapping(query_id="q", prompt="p", text="t", gold="gold"),
                       extractor=Extractor(kind="math"))
    with pytest.raises(FileFormatError, match=r"log.jsonl:2: field 'p': query 'a' has another prompt"):
        import_generic_queries(log, FieldMapping(query_id="q", prompt="p", text="t", gold="gold"),
                               extractor=Extractor(kind="math"))
    # a prompt may vary per sample (few-shot examples): counted and said, not refused
    table = import_generic(log, FieldMapping(query_id="q", prompt="p", text="t"),
                           extractor=Extractor(kind="math"))
    assert "1 query has lines with another prompt" in table.meta.notes["prompts_differ"]


def test_a_regex_answer_is_the_first_group_that_took_part_in_the_match() -> None:
    """With alternatives, group 1 is None when another alternative matched: the import crashed
    with exit 3 (AttributeError on None.strip())."""
    from ttcdsl.importers.labels import Extractor

    extract = Extractor(pattern=r"(?:Answer: (\d+))|(?:Final: (\d+))")
    assert extract("Final: 42") == "42"
    assert extract("Answer: 7, then Final: 8") == "8"  # the last match
    assert extract("Answer: 7") == "7"
    assert Extractor(pattern=r"Answer: \d+")("so Answer: 5 ") == "Answer: 5"  # no group: the match
    assert extract("nothing") is None


def test_dotted_paths_pick_list_entries_and_take_a_key_from_each(tmp_path: Path) -> None:
    """An OpenAI batch output line holds its text at response.body.choices.0.message.content,
    and vLLM's dump a list of outputs: the import said "missing on this line", listing only the
    top-level keys."""
    from ttcdsl.importers.labels import Extractor

    batch = _jsonl(tmp_path / "batch.jsonl", [
        {"custom_id": "q1", "response": {"body": {
            "choices": [{"message": {"content": "so \\boxed{4}"}, "finish_reason": "stop"}],
            "usage": {"completion_tokens": 7}}}},
    ])  # fmt: skip
    table = import_generic(batch, FieldMapping(
        query_id="custom_id", text="response.body.choices.0.message.content",
        finish_reason="response.body.choices.0.finish_reason",
        completion_tokens="response.body.usage.completion_tokens",
    ), extractor=Extractor(kind="math"))  # fmt: skip
    assert (table.answer.tolist(), table.finish_reason.tolist()) == (["4"], ["stop"])
    assert table.completion_tokens.tolist() == [7]

    dump = _jsonl(tmp_path / "vllm.jsonl", [
        {"id": "a", "gold": "4", "outputs": [{"text": "\\boxed{4}", "n": 5}, {"text": "\\boxed{5}", "n": 9}]},
    ])  # fmt: skip
    table = import_generic(dump, FieldMapping(query_id="id", text="outputs.text", gold="gold",
                                              completion_tokens="outputs.n"),
                           explode=True, extractor=Extractor(kind="math"))
    assert table.answer.tolist() == ["4", "5"] and table.correct.tolist() == [True, False]
    assert table.completion_tokens.tolist() == [5, 9]


@pytest.mark.parametrize("field, message", [
    ("response.body.choices.2.text", "response.body.choices is a list of 1 entry; there is no entry 2"),
    ("response.body.choice", "response.body has no 'choice' (it has: choices)"),
    ("response.code.x", "response.code is an int, which has no field 'x'"),
    ("respons", "missing on this line (it has: id, response)"),
])
def test_a_path_that_does_not_lead_anywhere_says_where_it_stops(tmp_path: Path, field, message) -> None:
    log = _jsonl(tmp_path / "l.jsonl", [{"id": "a", "response": {"code": 200, "body": {"choices": [{"text": "x"}]}}}])
    with pytest.raises(FileFormatError, match=re.escape(f"l.jsonl:1: field {field!r}: {message}")):
        import_generic(log, FieldMapping(query_id="id", text=field))


def test_a_long_read_says_how_far_it_has_got(tmp_path: Path, monkeypatch) -> None:
    """200,000 samples with answer extraction took three minutes without a word."""
    from ttcdsl.importers import generic

    monkeypatch.setattr(generic._Heartbeat, "EVERY", 0.0)
    log = _jsonl(tmp_path / "l.jsonl", [{"q": f"q{i % 7}", "a": "1"} for i in range(2500)])
    said: list[str] = []
    table = import_generic(log, FieldMapping(query_id="q", answer="a"), progress=said.append)
    assert len(table) == 2500
    assert said == ["read 1,000 lines, 999 samples", "read 2,000 lines, 1,999 samples"]


def test_whole_floats_are_counts_and_labels_as_spreadsheets_and_lm_eval_write_them(tmp_path: Path) -> None:
    """pandas writes an integer column with a gap as 512.0, lm-eval an exact match as 1.0: both
    were refused ("expected an integer", "expected true/false")."""
    log = _jsonl(tmp_path / "l.jsonl", [
        {"q": "a", "n": 512.0, "ok": 1.0}, {"q": "a", "n": None, "ok": 0.0}, {"q": "b", "n": 3, "ok": "1.0"},
    ])  # fmt: skip
    table = import_generic(log, FieldMapping(query_id="q", completion_tokens="n", correct="ok"))
    assert table.completion_tokens.tolist() == [512, None, 3]
    assert table.correct.tolist() == [True, False, True]
    csv_log = tmp_path / "l.csv"
    csv_log.write_text("q,n,ok\na,512.0,1.0\nb,7,0\n", encoding="utf-8")
    table = import_generic(csv_log, FieldMapping(query_id="q", completion_tokens="n", correct="ok"))
    assert table.completion_tokens.tolist() == [512, 7] and table.correct.tolist() == [True, False]
    for bad in ({"q": "a", "n": 2.5}, {"q": "a", "ok": 0.5}):
        with pytest.raises(FileFormatError):
            import_generic(_jsonl(tmp_path / "bad.jsonl", [bad]),
                           FieldMapping(query_id="q", completion_tokens="n" if "n" in bad else None,
                                        correct="ok" if "ok" in bad else None))


def test_finish_reasons_are_read_in_the_tables_terms(tmp_path: Path) -> None:
    """Anthropic's "max_tokens" and Gemini's "MAX_TOKENS" were stored as logged, so a sample cut
    at max_tokens counted as not cut (only "length" is); an unknown reason is kept and said."""
    log = _jsonl(tmp_path / "l.jsonl", [
        {"q": "a", "f": "max_tokens"}, {"q": "a", "f": "MAX_TOKENS"}, {"q": "a", "f": "end_turn"},
        {"q": "a", "f": "STOP"}, {"q": "a", "f": "length"}, {"q": "a", "f": "SAFETY"}, {"q": "a", "f": None},
    ])  # fmt: skip
    table = import_generic(log, FieldMapping(query_id="q", finish_reason="f"))
    assert table.finish_reason.tolist() == ["length", "length", "stop", "stop", "length", "SAFETY", None]
    assert "'SAFETY' (1)" in table.meta.notes["finish_reasons_unknown"]


def test_a_gzip_log_is_read_decompressed_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    """A .jsonl.gz log got "cannot tell JSONL from CSV" (or "not valid UTF-8" with the format
    given), with no word of decompressing it."""
    import gzip

    body = "".join(json.dumps({"q": f"q{i}", "a": str(i)}) + "\n" for i in range(50)).encode()
    log = tmp_path / "log.jsonl.gz"
    log.write_bytes(gzip.compress(body))
    table = import_generic(log, FieldMapping(query_id="q", answer="a"))
    assert len(table) == 50 and table.answer.tolist()[:2] == ["0", "1"]
    csv_log = tmp_path / "log.csv.gz"
    csv_log.write_bytes(gzip.compress(b"q,a\nx,1\n"))
    assert import_generic(csv_log, FieldMapping(query_id="q", answer="a")).answer.tolist() == ["1"]
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(body)[:60])
    with pytest.raises(FileFormatError, match="cut.jsonl.gz: a damaged gzip file"):
        import_generic(cut, FieldMapping(query_id="q", answer="a"))
    plain = tmp_path / "plain.jsonl.gz"  # named .gz, never compressed: said so, not just "bad JSON"
    plain.write_bytes(b"hello\n")
    with pytest.raises(FileFormatError) as error:
        import_generic(plain, FieldMapping(query_id="q", answer="a"), file_format="jsonl")
    assert "not gzip-compressed" in (error.value.hint or "")


def test_a_csv_separated_by_semicolons_is_told_so(tmp_path: Path) -> None:
    log = tmp_path / "l.csv"
    log.write_text("qid;idx;pred;ok\na;0;4;1\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="field 'qid': missing on this line") as caught:
        import_generic(log, FieldMapping(query_id="qid"))
    assert "separates its columns with them" in caught.value.hint


def test_a_query_id_written_as_a_number_and_as_text_is_one_query_and_said(tmp_path: Path) -> None:
    log = _jsonl(tmp_path / "l.jsonl", [{"q": 1, "a": "x"}, {"q": "1", "a": "y"}, {"q": "2", "a": "z"}])
    table = import_generic(log, FieldMapping(query_id="q", answer="a"))
    assert table.query_id.tolist() == ["1", "1", "2"]
    assert "1 query id is written both as a number and as text (first: '1', line 2)" \
        in table.meta.notes["query_ids_mixed"]
    assert "query_ids_mixed" not in import_generic(
        _jsonl(tmp_path / "m.jsonl", [{"q": 1}, {"q": 1}]), FieldMapping(query_id="q")).meta.notes


def test_quoted_reals_are_read_as_quoted_integers_are(tmp_path: Path) -> None:
    """A JSON log that quotes its numbers ("0.7", "-1e-2") is read as a CSV's cells are; it was
    refused ("expected a number, got '0.7'") while a quoted count was read. Text that is no plain
    number stays refused, and a list of numbers where one belongs says what to do."""
    log = _jsonl(tmp_path / "l.jsonl", [
        {"q": "a", "lp": "-0.25", "t": " 0.7 ", "rm": "-1e-2"}, {"q": "a", "lp": -0.5, "t": "1", "rm": ".5"},
    ])  # fmt: skip
    mapping = FieldMapping(query_id="q", mean_logprob="lp", temperature="t", scores=(("rm", "rm"),))
    table = import_generic(log, mapping)
    assert table.mean_logprob.tolist() == [-0.25, -0.5]
    assert table.temperature.tolist() == [0.7, 1.0]
    assert table.scores["rm"].tolist() == [-0.01, 0.5]
    for value, said in (("abc", "expected a number, got 'abc'"), ("nan", "expected a number, got 'nan'"),
                        ("1.2.3", "expected a number, got '1.2.3'"),
                        ([-0.1, -0.2], "expected a number, got a list of 2 numbers")):
        with pytest.raises(FileFormatError, match=re.escape(said)) as caught:
            import_generic(_jsonl(tmp_path / "bad.jsonl", [{"q": "a", "lp": value}]),
                           FieldMapping(query_id="q", mean_logprob="lp"))
        if isinstance(value, list):
            assert "per-token log-probabilities" in str(caught.value.hint)
