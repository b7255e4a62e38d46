"""What ``max_tokens`` does to a logged sample: the one rule replay and calibration share.

A logged sample with more completion tokens than a request's ``max_tokens`` would have been cut
off there: it bills ``max_tokens`` tokens, ends with finish reason ``length``, and has no answer,
text, log-probability or scores (they belong to the full sample); where the log is labelled it
counts as wrong. A sample whose token count is unknown is never cut.
"""

from __future__ import annotations

import numpy as np


def is_cut(completion_tokens, max_tokens):
    """Whether a sample of ``completion_tokens`` tokens is cut at ``max_tokens`` (elementwise on
    arrays, where NaN means unknown; ``None`` for one unknown sample)."""
    if completion_tokens is None:
        return False
    if np.ndim(completion_tokens) == 0:
        value = float(completion_tokens)
        return bool(np.isfinite(value) and value > max_tokens)
    tokens = np.asarray(completion_tokens, dtype=np.float64)
    return np.isfinite(tokens) & (tokens > max_tokens)
