"""A samples table from which every accuracy is 0 by construction (no sample carries an answer,
or none is labelled correct): said wherever such a table is read for figures, so that a broken
answer extraction or a mislabelled import is not read as a measured result."""

from __future__ import annotations

import numpy as np


def degenerate(table) -> str | None:
    """Why every figure from ``table`` is 0 by construction, or None when it is not."""
    if not len(table):
        return None
    if not any(a is not None for a in table.answer):
        return ("no sample carries an answer (was the answer extraction right?): every vote is "
                "empty, so accuracy is 0 by construction")
    labelled = ~np.ma.getmaskarray(table.correct)
    if labelled.any() and not np.ma.filled(table.correct, False).any():
        return ("no sample is labelled correct: accuracy and coverage are 0 by construction, "
                "whatever the policy")
    return None
