"""Logs of the common evaluation tools, imported as a user would (`ttc import`): GSM8K solutions
as gold, MMLU's option index as gold, spreadsheet answers with stray spaces, lm-evaluation-
harness's "[invalid]" marker, and DeepSeek-R1 samples cut off while thinking. Each gave wrong
labels or votes with exit 0 before."""

from __future__ import annotations

import json
from pathlib import Path

from ttcdsl.cli import main
from ttcdsl.samples import load


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _import(log: Path, *flags: str) -> tuple[int, Path]:
    out = log.with_name(log.stem + ".table.jsonl")
    return main(["import", str(log), "-f", "generic", "-o", str(out), "--force", *flags]), out


def test_a_gsm8k_solution_as_gold_labels_by_its_final_answer(tmp_path: Path) -> None:
    log = _write(tmp_path / "samples_gsm8k.jsonl", [
        {"doc_id": 1, "doc": {"answer": "He has 11*20 = <<11*20=220>>220 pencils in boxes.\n#### 1220"},
         "resps": [["So 1220 in all.\n#### 1220", "11*20 = 220\n#### 220"]]},
    ])
    rc, out = _import(log, "--explode", "--query-id-field", "doc_id", "--text-field", "resps.0",
                      "--extract", "math", "--gold-field", "doc.answer")
    assert rc == 0
    table = load(out)
    assert dict(zip(table.answer, table.correct.tolist())) == {"1220": True, "220": False}


def test_mmlu_gold_written_as_the_option_index_is_refused_by_line(tmp_path: Path, capsys) -> None:
    log = _write(tmp_path / "mmlu.jsonl", [
        {"question_id": "geo/0", "answer": 2, "letter": "C", "responses": ["The answer is (C)", "**C**"]},
    ])
    flags = ("--explode", "--query-id-field", "question_id", "--text-field", "responses",
             "--extract", "multiple_choice")
    rc, out = _import(log, *flags, "--gold-field", "answer")
    err = capsys.readouterr().err
    assert rc == 1 and "mmlu.jsonl:1" in err and "'answer'" in err and "not an option letter" in err
    assert not out.exists()
    rc, out = _import(log, *flags, "--gold-field", "letter")
    assert rc == 0 and load(out).correct.tolist() == [True, True]


def test_answers_as_logged_lose_their_surrounding_spaces(tmp_path: Path) -> None:
    log = tmp_path / "sheet.csv"
    log.write_text("qid,answer,correct\nq1,5,TRUE\nq1, 5,TRUE\nq1,5 ,TRUE\nq1,6,FALSE\nq1,6,FALSE\n",
                   encoding="utf-8")
    rc, out = _import(log, "--query-id-field", "qid", "--answer-field", "answer",
                      "--correct-field", "correct")
    assert rc == 0
    assert load(out).answer.tolist() == ["5", "5", "5", "6", "6"]  # one answer, three votes


def test_lm_eval_invalid_marker_is_no_answer(tmp_path: Path, capsys) -> None:
    log = _write(tmp_path / "samples_gsm8k.jsonl", [
        {"doc_id": 0, "target": "18", "filtered_resps": [["18", "[invalid]", "[invalid]", "[invalid]", "18"]]},
    ])
    rc, out = _import(log, "--explode", "--query-id-field", "doc_id", "--answer-field",
                      "filtered_resps.0", "--answer-kind", "math", "--gold-field", "target")
    assert rc == 0
    table = load(out)
    assert table.answer.tolist() == ["18", None, None, None, "18"]
    assert table.correct.tolist() == [True, False, False, False, True]
    assert "3 answers were '[invalid]'" in capsys.readouterr().err


def test_r1_samples_cut_off_while_thinking_have_no_answer(tmp_path: Path) -> None:
    log = _write(tmp_path / "r1.jsonl", [
        {"id": "p1", "gold": "42", "finish_reason": "length",
         "response": "<think>\nMaybe the answer is \\boxed{42}? Wait, let me double-check"},
        {"id": "p1", "gold": "42", "finish_reason": "stop",
         "response": "<think>\n\\boxed{40}? No.\n</think>\n\nThe final answer is 42."},
    ])
    rc, out = _import(log, "--query-id-field", "id", "--text-field", "response", "--extract",
                      "math", "--gold-field", "gold", "--finish-reason-field", "finish_reason")
    assert rc == 0
    table = load(out)
    assert table.answer.tolist() == [None, "42"]
    assert table.correct.tolist() == [False, True]


def test_a_json_array_or_pretty_printed_log_is_told_to_be_json_lines(tmp_path: Path, capsys) -> None:
    """`json.dump(outputs, f)` of vLLM's outputs is one JSON array, not JSON Lines."""
    array = tmp_path / "vllm_outputs.json"
    array.write_text(json.dumps([{"request_id": "0", "outputs": [{"text": "4"}]}]), encoding="utf-8")
    pretty = tmp_path / "pretty.jsonl"
    pretty.write_text(json.dumps({"request_id": "0", "answer": "4"}, indent=2), encoding="utf-8")
    for log in (array, pretty):
        rc, _ = _import(log, "--input-format", "jsonl", "--query-id-field", "request_id",
                        "--answer-field", "answer")
        err = capsys.readouterr().err
        assert rc == 1 and f"{log.name}:1" in err and "must be JSON Lines" in err, err


def test_a_spreadsheets_empty_rows_are_skipped(tmp_path: Path) -> None:
    log = tmp_path / "sheet.csv"
    log.write_bytes("\ufeffQuestion ID,Model Answer,Is Correct\r\nq1,5,TRUE\r\n,,\r\nq1,6,FALSE\r\n,,\r\n,,\r\n"
                    .encode("utf-8"))
    rc, out = _import(log, "--query-id-field", "Question ID", "--answer-field", "Model Answer",
                      "--correct-field", "Is Correct")
    assert rc == 0 and load(out).answer.tolist() == ["5", "6"]


def test_summed_logprobs_mapped_as_the_mean_are_warned_about(tmp_path: Path, capsys) -> None:
    """vLLM's `outputs.cumulative_logprob` (-43.6) was stored as a mean token log-probability."""
    lines = [{"request_id": "r0", "outputs": [{"text": "4", "cumulative_logprob": -43.6},
                                               {"text": "5", "cumulative_logprob": -61.2}]}]
    log = _write(tmp_path / "vllm.jsonl", lines)
    flags = ("--explode", "--query-id-field", "request_id", "--answer-field", "outputs.text")
    rc, _ = _import(log, *flags, "--mean-logprob-field", "outputs.cumulative_logprob")
    assert rc == 0 and "look like sums" in capsys.readouterr().err
    lines[0]["outputs"] = [{"text": "4", "lp": -0.31}, {"text": "5", "lp": -1.2}]
    rc, _ = _import(_write(log, lines), *flags, "--mean-logprob-field", "outputs.lp")
    assert rc == 0 and "look like sums" not in capsys.readouterr().err


def test_failed_openai_batch_requests_are_skipped_and_counted(tmp_path: Path, capsys) -> None:
    """A Batch API output holds a line per request; a failed one (`error` set, or a 4xx/5xx
    response) generated no sample. The import stopped at it ("response is null"), and no option
    could skip it."""
    ok = {"status_code": 200, "body": {"choices": [{"message": {"content": "\\boxed{4}"}}],
                                       "usage": {"completion_tokens": 7}}}
    log = _write(tmp_path / "batch_output.jsonl", [
        {"custom_id": "q1", "response": ok, "error": None},
        {"custom_id": "q1", "response": None,
         "error": {"code": "rate_limit_exceeded", "message": "Too many requests"}},
        {"custom_id": "q2", "response": {"status_code": 500, "body": {"error": {
            "message": "The server had an error", "type": "server_error"}}}, "error": None},
        {"custom_id": "q2", "response": ok, "error": None},
    ])
    flags = ("--query-id-field", "custom_id", "--extract", "math",
             "--text-field", "response.body.choices.0.message.content",
             "--completion-tokens-field", "response.body.usage.completion_tokens")
    rc, out = _import(log, *flags)
    err = capsys.readouterr().err
    assert rc == 0, err
    table = load(out)
    assert table.query_id.tolist() == ["q1", "q2"] and table.completion_tokens.tolist() == [7, 7]
    assert "2 lines are failed requests (e.g. line 2: 'rate_limit_exceeded: Too many requests')" in err
    assert "fewer samples" in err

    only_failures = _write(tmp_path / "all_failed.jsonl", [
        {"custom_id": "q1", "response": {"status_code": 429, "body": {"error": {
            "code": "rate_limit_exceeded", "message": "slow down"}}}, "error": None},
    ])
    rc, out = _import(only_failures, *flags)
    err = capsys.readouterr().err
    assert rc == 1 and "every line is a failed request" in err and "slow down" in err


def test_token_counts_written_as_lists_quoted_or_grouped_are_counted(tmp_path: Path) -> None:
    """vLLM's RequestOutput holds `token_ids` (a list), some JSON writers quote integers and a
    spreadsheet shows 1715 as "1,715": each was refused as "expected an integer"."""
    log = _write(tmp_path / "vllm_dump.jsonl", [
        {"id": "a", "text": "4", "token_ids": [11, 12, 13]},
        {"id": "a", "text": "5", "token_ids": "1715"},
    ])
    rc, out = _import(log, "--query-id-field", "id", "--answer-field", "text",
                      "--completion-tokens-field", "token_ids")
    assert rc == 0 and load(out).completion_tokens.tolist() == [3, 1715]

    sheet = tmp_path / "sheet.csv"
    sheet.write_text('id,answer,tokens\na,4,"1,715"\na,5,"12"\n', encoding="utf-8")
    rc, out = _import(sheet, "--input-format", "csv", "--query-id-field", "id",
                      "--answer-field", "answer", "--completion-tokens-field", "tokens")
    assert rc == 0 and load(out).completion_tokens.tolist() == [1715, 12]

    sheet.write_text('id,answer,tokens\na,4,"1,5"\n', encoding="utf-8")  # a decimal comma
    rc, out = _import(sheet, "--input-format", "csv", "--query-id-field", "id",
                      "--answer-field", "answer", "--completion-tokens-field", "tokens")
    assert rc == 1


def test_a_spreadsheets_padded_query_ids_are_one_query(tmp_path: Path) -> None:
    """"1", " 1" and "1 " in a hand-written CSV became three queries, without a word."""
    sheet = tmp_path / "padded.csv"
    sheet.write_text('id,answer\n1,4\n 1,4\n1 ,5\n2,4\n', encoding="utf-8")
    rc, out = _import(sheet, "--input-format", "csv", "--query-id-field", "id", "--answer-field", "answer")
    assert rc == 0 and sorted(set(load(out).query_id.tolist())) == ["1", "2"]


def test_answers_that_canonicalise_to_nothing_do_not_vote(tmp_path: Path) -> None:
    # five empty boxes and three 5s: the empty string was an answer and won the vote, accuracy 0
    log = _write(tmp_path / "boxed.jsonl", [
        {"id": "q1", "pred": pred, "ok": pred == "5"} for pred in ["\\boxed{}", "  ", "$$", "\\text{}", "\\boxed{}"]
        + ["5", "5", "5"]
    ])
    rc, out = _import(log, "--query-id-field", "id", "--answer-field", "pred", "--correct-field", "ok",
                      "--answer-kind", "math")
    assert rc == 0
    assert load(out).answer.tolist() == [None] * 5 + ["5"] * 3


def test_a_csv_r_wrote_says_na_for_a_missing_answer(tmp_path: Path, capsys) -> None:
    """R's write.csv writes NA where an answer is missing: read as text, the NAs voted for one
    answer "NA" (three of them beat two right answers). Refused by line and column unless the
    user says how the log writes a missing value."""
    log = tmp_path / "r.csv"
    log.write_text('"qid","pred","tokens"\n"q1",NA,12\n"q1",NA,NA\n"q1",NA,9\n"q1","7",11\n"q1","7",10\n',
                   encoding="utf-8")
    flags = ("--query-id-field", "qid", "--answer-field", "pred", "--completion-tokens-field", "tokens",
             "--answer-kind", "math")
    rc, out = _import(log, *flags)
    err = capsys.readouterr().err
    assert rc == 1 and "r.csv:2" in err and "'pred'" in err and "'NA'" in err and "--na NA" in err, err
    assert not out.exists()

    rc, out = _import(log, *flags, "--na", "NA")
    assert rc == 0
    table = load(out)
    assert table.answer.tolist() == [None, None, None, "7", "7"]
    assert table.completion_tokens.tolist() == [12, None, 9, 11, 10]  # a missing count is unknown, not 0

    rc, out = _import(log, "--query-id-field", "qid", "--answer-field", "pred", "--na", "")
    assert rc == 0 and load(out).answer.tolist() == ["NA", "NA", "NA", "7", "7"]  # as written, said so


def test_na_applies_to_a_csv_log(tmp_path: Path, capsys) -> None:
    log = _write(tmp_path / "log.jsonl", [{"qid": "q1", "pred": "7"}])
    try:
        rc, _ = _import(log, "--query-id-field", "qid", "--answer-field", "pred", "--na", "NA")
    except SystemExit as exit_:
        rc = exit_.code
    assert rc == 2 and "--na applies to a CSV log" in capsys.readouterr().err
