"""Helpers that rewrite a samples table on disk (JSONL) for the runtime's number tests: varied
prompt lengths, unknown token counts, fewer logged samples for some queries."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path


def rewrite_rows(path: Path, change: Callable[[dict], dict | None]) -> None:
    """Apply ``change`` to every sample row of the table at ``path`` (``None`` drops the row)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        row = change(json.loads(line))
        if row is not None:
            out.append(json.dumps(row))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def vary_prompts(path: Path, seed: int, low: int = 10, high: int = 3000) -> None:
    """Give every sample its own prompt length (a table logged with several prompts)."""
    rng = random.Random(seed)

    def change(row: dict) -> dict:
        row["prompt_tokens"] = rng.randint(low, high)
        return row

    rewrite_rows(path, change)


def forget_tokens(path: Path) -> None:
    """Remove every token count (a table imported without a tokenizer)."""

    def change(row: dict) -> dict:
        row["completion_tokens"] = None
        row["prompt_tokens"] = None
        return row

    rewrite_rows(path, change)


def keep_first(path: Path, logged: Callable[[str], int]) -> None:
    """Keep only the first ``logged(query_id)`` samples of each query."""

    def change(row: dict) -> dict | None:
        return row if row["sample_index"] < logged(row["query_id"]) else None

    rewrite_rows(path, change)


def stored_samples(run_dir: Path) -> list[dict]:
    """The rows of a run's ``samples.jsonl`` (its header left out)."""
    lines = (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()[1:]
    return [json.loads(line) for line in lines]
