"""The weighted-vote rule: what one sample's scorer value is worth as a vote.

``weighted_vote(s)`` picks the answer with the largest sum of its samples' weights, so a weight
must be positive and increasing in the scorer's confidence: then every extra sample of an answer
adds to it, and a surer sample adds more. Raw mean log-probabilities are negative, and summing
them made every extra vote LOWER an answer's total (three samples at -0.2 lost to one at -0.5).
This is the one place the rule lives; the runtime's aggregation, the exact and Monte Carlo
curves and the planner's stop simulation all call :func:`vote_weights`.

Per scorer kind:

``confidence``
    ``exp(mean token log-probability)``: the geometric mean of the sample's token probabilities,
    in (0, 1].
``gold``
    The label, 1.0 or 0.0 (offline evaluation only).
``reward_model``
    The score itself, which must be a probability in [0, 1] (a PRM's or a verifier's P(correct)).
    Scores outside [0, 1] (an outcome reward model's logits, which are often negative) are refused:
    there is no way to tell from the numbers alone what they are worth as votes, and summing
    negative scores has the same fault as summing log-probabilities. If they are logits of
    P(correct), declare the scorer with ``logits`` (``scorer rm = reward_model "M" logits``):
    every reading of its scores is then ``sigmoid(score)``
    (:func:`ttcdsl.features.scorers.as_read`); or use ``best_of_n``, which only compares scores.

An unknown value (NaN: no log-probabilities, an unscored sample, no label) weighs 0: the sample
is counted for nothing, as before.
"""

from __future__ import annotations

import numpy as np

from ttcdsl.errors import UserError

SCORER_KINDS = ("confidence", "gold", "reward_model")


def vote_weights(kind: str, values: np.ndarray | float, name: str | None = None) -> np.ndarray:
    """``float64`` vote weights (same shape as ``values``), all >= 0; NaN gives 0.

    Raises :class:`~ttcdsl.errors.UserError` for reward-model scores outside [0, 1] (naming the
    scorer ``name`` when given) and ``ValueError`` for an unknown scorer kind."""
    x = np.asarray(values, dtype=np.float64)
    known = ~np.isnan(x)
    match kind:
        case "confidence":
            weight = np.exp(np.where(known, x, -np.inf))
        case "gold":
            weight = np.where(known, x, 0.0)
        case "reward_model":
            outside = known & ~((x >= 0.0) & (x <= 1.0))
            if outside.any():
                bad = x[outside]
                scorer = f" of scorer '{name}'" if name else ""
                raise UserError(
                    f"weighted_vote needs reward-model scores in [0, 1] (probabilities), but "
                    f"{bad.size} score(s){scorer} lie outside, from {bad.min():g} to "
                    f"{bad.max():g}",
                    hint="if they are logits of P(correct), declare the scorer with `logits` "
                    "(scorer NAME = reward_model \"MODEL\" logits) to read sigmoid(score); or "
                    "use best_of_n, which only compares scores",
                )
            weight = np.where(known, x, 0.0)
        case _:
            raise ValueError(
                f"unknown scorer kind {kind!r}; expected one of {', '.join(SCORER_KINDS)}"
            )
    return weight


def check_vote_weights(weight: np.ndarray) -> np.ndarray:
    """``weight`` as float64 with NaN read as 0, after checking that every weight is finite and
    >= 0 (a raw log-probability or logit passed by mistake fails here instead of voting)."""
    w = np.asarray(weight, dtype=np.float64)
    w = np.where(np.isnan(w), 0.0, w)
    if not np.all(np.isfinite(w) & (w >= 0.0)):
        raise ValueError(
            "weighted-vote weights must be finite and >= 0; turn scorer values into weights "
            "with ttcdsl.features.weights.vote_weights"
        )
    return w
