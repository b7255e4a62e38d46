"""What kind of ttcdsl file a misplaced one is, from its first record: a samples table given as
a plan, a dataset given as a samples table. Each loader names what it got instead of a parse
error about the wrong format ("not valid YAML", "unknown field 'ttc_samples'")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# where each kind is read, for the hint
WHERE = {
    "a samples table": "with --calibration (ttc plan), --samples (ttc run, ttc compare) or --fit "
                       "(ttc simulate)",
    "a dataset of queries": "with --queries (ttc run, ttc split)",
    "a plan": "as ttc run PLAN (or ttc simulate --check PLAN)",
}


def kind_of_record(record: Any) -> str | None:
    """The kind of file whose first record ``record`` is, where it is one of ttcdsl's."""
    if not isinstance(record, dict):
        return None
    if "ttc_samples" in record:
        return "a samples table"
    if "ttcdsl_plan" in record:
        return "a plan"
    if "id" in record and ("prompt" in record or "messages" in record):
        return "a dataset of queries"
    return None


def kind_of_line(first: bytes) -> str | None:
    """The kind of ttcdsl file whose first line is ``first``: a JSON record, or a plan's YAML
    (``ttcdsl_plan: 1``)."""
    try:
        return kind_of_record(json.loads(first))
    except (ValueError, RecursionError):
        pass
    if not first.startswith(b"ttcdsl_plan:"):
        return None
    import yaml

    try:
        return kind_of_record(yaml.safe_load(first))
    except (yaml.YAMLError, ValueError, RecursionError):
        return None


def kind_of_file(path: Path) -> str | None:
    """The kind of ttcdsl file ``path`` is, from its first line (None: not one, or not
    readable: the caller's own error stands)."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(1 << 20)
    except OSError:
        return None
    return kind_of_line(first)


def misplaced_file(path: Path, wanted: str) -> tuple[str, str] | None:
    """The message and hint for ``path`` when it is a ttcdsl file of another kind than
    ``wanted`` (:func:`misplaced`); None when it is not (or not one of ttcdsl's)."""
    kind = kind_of_file(path)
    return misplaced(kind, wanted) if kind is not None and kind != wanted else None


def require_file(path: str | Path, noun: str, *, hint: str | None = None) -> None:
    """``path`` is a file, or the user's error: "no such NOUN", or "is a directory, not a NOUN"
    (a directory was "no such samples table", though it is there)."""
    from ttcdsl.errors import UserError

    path = Path(path)
    if not path.is_file():
        what = f"is a directory, not a {noun}" if path.is_dir() else f"no such {noun}"
        raise UserError(f"{path}: {what}", hint=hint)


def misplaced(kind: str, wanted: str) -> tuple[str, str]:
    """The message and hint for a file of ``kind`` given where ``wanted`` belongs."""
    return f"{kind}, not {wanted}", f"{kind} is read {WHERE[kind]}"
