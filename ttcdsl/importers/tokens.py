"""Counting tokens of logged texts with a local tokenizer (the ``tokenizers`` package).

Logged pools rarely carry token counts. When the user names the model's tokenizer — a
``tokenizer.json`` file, or a local Hugging Face model folder holding one — the importers count
the tokens of the logged texts with it and say so in the table's metadata. Without one, counts stay
null: they are never guessed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttcdsl.errors import UserError

_BATCH = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenCounter:
    """A loaded tokenizer. ``description`` names it for the metadata (file name and a short hash
    of its content, so two tables can be told apart by the tokenizer that counted them)."""

    description: str
    _tokenizer: Any

    def count(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens of each text, without special tokens (no BOS/EOS added)."""
        counts: list[int] = []
        for start in range(0, len(texts), _BATCH):
            batch = list(texts[start : start + _BATCH])
            try:
                encodings = self._tokenizer.encode_batch(batch, add_special_tokens=False)
            except Exception as error:  # noqa: BLE001 - tokenizers raises plain Exception
                raise UserError(
                    f"the tokenizer {self.description} cannot encode the logged text ({error})",
                    hint="use the tokenizer.json of the model that generated the samples",
                ) from None
            counts.extend(len(e.ids) for e in encodings)
        return counts


def load_tokenizer(path: str | os.PathLike[str]) -> TokenCounter:
    """Load ``path``: a ``tokenizer.json`` file or a folder that holds one."""
    given = Path(path)
    if given.is_dir():
        file = given / "tokenizer.json"
        if not file.is_file():
            raise UserError(
                f"{given}: no tokenizer.json in this folder",
                hint="pass a tokenizer.json file, or a local Hugging Face model folder that has one",
            )
    elif given.is_file():
        file = given
    else:
        raise UserError(f"{given}: no such tokenizer file or folder")
    try:
        from tokenizers import Tokenizer
    except ModuleNotFoundError:
        raise UserError(
            "counting tokens needs the 'tokenizers' package",
            hint="pip install 'ttcdsl[tokenize]'  (or: pip install tokenizers)",
        ) from None
    content = file.read_bytes()
    try:
        tokenizer = Tokenizer.from_str(content.decode("utf-8"))
    except Exception as error:  # noqa: BLE001 - the library raises plain Exception for bad files
        raise UserError(f"{file}: not a tokenizers tokenizer.json ({error})") from None
    digest = hashlib.sha256(content).hexdigest()[:16]
    name = given.name if given.is_dir() else file.name
    return TokenCounter(
        description=f"{name} (tokenizer.json sha256 {digest})", _tokenizer=tokenizer
    )
