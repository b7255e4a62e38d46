"""Answers as real evaluation logs write them: reasoning models' <think> blocks, GSM8K's
`#### N` (in responses and in gold solutions), and multiple-choice letters in markdown or with
the option's text. Each case below was a wrong answer or a wrong label before."""

from __future__ import annotations

import pytest

from ttcdsl.answers import extract, is_correct
from ttcdsl.answers.extract import after_reasoning, gold_answer


@pytest.mark.parametrize(("text", "answer"), [
    # thoughts try answers on the way; the one stated after </think> counts
    ("<think>\nMaybe \\boxed{40}? No, recount... 42.\n</think>\n\nThe final answer is 42.", "42"),
    # a chat template that opens the block in the prompt leaves only its end in the response
    ("Let me think, 3 + 4 = 7, so\n</think>\nThe answer is \\boxed{7}", "7"),
    # cut off while thinking: no answer was stated, whatever the thoughts tried
    ("<think>\nLet me try. Maybe the answer is \\boxed{42}? Wait, I should double-check", None),
    ("<think>\nif the term were 17 then", None),
    # a block closed with nothing after it states nothing
    ("<think>the answer is 5</think>\n", None),
])
def test_reasoning_blocks(text: str, answer: str | None) -> None:
    assert extract(text, "math") == answer


def test_reasoning_blocks_are_set_aside_for_every_kind() -> None:
    assert extract("<think>(A) or (B)?</think>The answer is (C)", "multiple_choice") == "C"
    assert extract("<think>```python\nx = 1\n```", "code") is None
    assert after_reasoning("no tags at all") == "no tags at all"


@pytest.mark.parametrize(("text", "answer"), [
    ("11*20 = 220 pencils in boxes, 1220 in all.\n#### 1220", "1220"),
    # a model that runs on past its answer into a new question: the #### line is the answer
    ("3 + 28 = 31\n#### 31\n\nQuestion: How many? Answer: 1", "31"),
    ("#### $1,220.", "1,220"),
])
def test_gsm8k_final_answer_line(text: str, answer: str) -> None:
    assert extract(text, "math") == answer


@pytest.mark.parametrize(("gold", "answer"), [
    ("He has 11*20 = <<11*20=220>>220 pencils in boxes.\n#### 1220", "1220"),
    ("The total cost is 3 * 4 = <<3*4=12>>12. Half of that is 6 dollars.\n#### 6", "6"),
    ("So the sum is $2 + 3 = \\boxed{5}$.", "5"),
    ("42", "42"),
])
def test_a_solution_given_as_gold_is_held_to_its_final_answer(gold: str, answer: str) -> None:
    assert gold_answer(gold, "math") == answer
    assert is_correct(answer, gold, "math")
    # the intermediate number the solution passes through is not the answer
    if "####" in gold:
        assert not is_correct("220" if answer == "1220" else "12", gold, "math")


def test_gold_of_other_kinds_is_taken_as_written() -> None:
    assert gold_answer("#### C", "multiple_choice") == "#### C"


@pytest.mark.parametrize("text", [
    "The answer is (C)", "**C**", "C.", "c", "The correct option is C: Paris", "C) Paris",
    "C: Paris", "The answer is **C**.", "Reasoning first.\n\n(C)", "My choice is C",
])
def test_multiple_choice_letters_as_models_write_them(text: str) -> None:
    assert extract(text, "multiple_choice") == "C"


@pytest.mark.parametrize("text", ["I think so", "A lot of thought\nI am unsure", "Paris",
                                  "The best option is a mix of both.", "My choice is a guess"])
def test_multiple_choice_text_without_a_letter_has_no_answer(text: str) -> None:
    assert extract(text, "multiple_choice") is None
