from __future__ import annotations

import json
from pathlib import Path

from ttcdsl.answers import canonicalize, extract, parse_answer


def test_math_prefers_last_boxed() -> None:
    text = "First \\boxed{3}, then on reflection \\boxed{\\frac{1}{2}}."
    assert extract(text, "math") == "\\frac{1}{2}"


def test_math_boxed_with_nested_braces() -> None:
    assert extract("so \\boxed{\\frac{\\sqrt{3}}{2}} holds", "math") == "\\frac{\\sqrt{3}}{2}"


def test_math_the_answer_is() -> None:
    assert extract("Adding up, the final answer is $42$.\nThanks", "math") == "42"
    assert extract("Answer: 17/4", "math") == "17/4"


def test_math_last_number_fallback() -> None:
    assert extract("We get 3 apples and then 1,250 pears.", "math") == "1,250"
    assert parse_answer("We get 3 apples and then 1,250 pears.", "math") == "1250"
    assert extract("no digits at all", "math") is None


def test_multiple_choice() -> None:
    assert extract("Looking at the options, the answer is (C).", "multiple_choice") == "C"
    assert extract("Both (A) and (D) look plausible, but (D) is right", "multiple_choice") == "D"
    assert extract("Therefore \\boxed{\\text{(B)}}", "multiple_choice") == "\\text{(B)}"
    assert parse_answer("Therefore \\boxed{\\text{(B)}}", "multiple_choice") == "B"
    assert extract("reasoning...\nb", "multiple_choice") == "B"
    assert extract("I am not sure.", "multiple_choice") is None


def test_exact_cruxeval_prompt_formats() -> None:
    assert extract("[ANSWER]\nf([1, 2])\n[/ANSWER]", "exact") == "f([1, 2])"
    assert extract("```python\n'abc'\n```", "exact") == "'abc'"
    assert extract("  [1, 2]  ", "exact") == "[1, 2]"
    assert extract("   ", "exact") is None


def test_code_takes_last_fence() -> None:
    text = "Try:\n```python\nprint(1)\n```\nBetter:\n```python\ndef f(x):\n    return x\n```\n"
    assert extract(text, "code") == "def f(x):\n    return x\n"
    assert extract("", "code") is None


def _qwen(shared_data: Path) -> list[dict]:
    path = shared_data / "pools" / "qwen25math_math100_x8.jsonl"
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_qwen_pool_extraction_matches_logged_predictions(shared_data: Path) -> None:
    """All 800 responses of the Qwen MATH-100 pool: our answer equals the logged ``pred``."""
    rows = _qwen(shared_data)
    mismatches = [
        (row["idx"], i, pred)
        for row in rows
        for i, (code, pred) in enumerate(zip(row["code"], row["pred"], strict=True))
        if parse_answer(code, "math") != canonicalize(pred, "math")
    ]
    assert mismatches == []
    # The time answers ("4:30 \\text{ p.m.}") are where the unit stripping earns its keep.
    units = [parse_answer(c, "math") for r in rows for c in r["code"] if "p.m.}}" in c]
    assert units and set(units) == {"4:30"}


def test_qwen_pool_votes_merge_real_variants(shared_data: Path) -> None:
    rows = _qwen(shared_data)
    forms = {canonicalize(p, "math") for r in rows for p in r["pred"] if "99" in p and "9999" in p}
    # 9999\frac{6}{7} (mixed number) and the long decimal 9999.857142857143 stay distinct votes.
    assert "\\frac{69999}{7}" in forms and "9999.857142857143" in forms
