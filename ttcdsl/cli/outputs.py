"""The one rule for the files a command writes: checked before any work, so that a bad output
fails in a second rather than after the work, and so that no command destroys what it reads.

* an output that is one of the command's inputs is refused, even with --force: ``ttc plan
  p.ttc -c t.jsonl -o t.jsonl --force`` replaced the calibration table with the plan;
* two outputs that are one file are refused (the second write would replace the first);
* an existing output is replaced only with --force;
* a path no file can be written at is refused by name (:func:`check_destination`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ttcdsl.errors import UserError
from ttcdsl.samples.atomic import check_destination


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_outputs(outputs: Iterable[tuple[str, str | os.PathLike[str]]],
                  inputs: Iterable[str | os.PathLike[str]], *, force: bool) -> None:
    """``outputs``: (the option that names it, the path) for each file the command will write;
    ``inputs``: the files it reads."""
    named = [(flag, Path(path)) for flag, path in outputs]
    read = [Path(path) for path in inputs]
    for i, (flag, path) in enumerate(named):
        for source in read:
            if _same(path, source):
                raise UserError(f"{flag} {path}: is an input of this command ({source}); writing it "
                                "would destroy what the command reads", hint="choose another path")
        for other_flag, other in named[:i]:
            if _same(path, other):
                # one option naming two files (ttc split -o CALIB EVAL) names them both
                whose = (f"is given twice to {flag} ({other} and {path})" if other_flag == flag
                         else f"is also the file of {other_flag}")
                raise UserError(f"{flag} {path}: {whose}; each output needs its own file",
                                hint="choose another path")
        if path.exists() and not force:
            raise UserError(f"{flag} {path}: already exists", hint="pass --force to replace it")
        check_destination(path, probe=True)
