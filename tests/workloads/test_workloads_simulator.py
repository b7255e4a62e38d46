"""The synthetic response process of simulator.workload: determinism, prefix extension, the
mixture's spread, and the shape of tokens, verifier scores and confidences."""

from __future__ import annotations

import math
import subprocess
import sys
from statistics import NormalDist

import numpy as np
import pytest

from simulator import DEFAULT_MIX, TIERS, Draws, Workload, draw_samples, synthetic_workload
from simulator._normal import ndtr, ndtri
from tests.paths import REPO


@pytest.fixture(scope="module")
def big() -> tuple[Workload, Draws]:
    workload = synthetic_workload(2000, seed=3)
    return workload, draw_samples(workload, 16, seed=5)


def _same(a: tuple, b: tuple) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_workload_and_draws_are_deterministic_in_the_seed() -> None:
    assert _same(synthetic_workload(300, seed=1), synthetic_workload(300, seed=1))
    assert not np.array_equal(
        synthetic_workload(300, seed=1).p_correct, synthetic_workload(300, seed=2).p_correct
    )
    workload = synthetic_workload(300, seed=1)
    assert _same(draw_samples(workload, 8, seed=4), draw_samples(workload, 8, seed=4))
    assert not np.array_equal(
        draw_samples(workload, 8, seed=4).score, draw_samples(workload, 8, seed=5).score
    )


def test_more_samples_extend_fewer() -> None:
    workload = synthetic_workload(400, seed=2)
    few, many = draw_samples(workload, 5, seed=9), draw_samples(workload, 23, seed=9)
    for name in ("answer", "correct", "completion_tokens", "finish_reason_length", "score",
                 "mean_logprob"):  # fmt: skip
        assert np.array_equal(getattr(many, name)[:, :5], getattr(few, name)), name
    assert np.array_equal(few.prompt_tokens, many.prompt_tokens)
    # and the later columns are new draws, not copies
    assert not np.array_equal(many.score[:, 5:10], many.score[:, :5])
    empty = draw_samples(workload, 0, seed=9)
    assert empty.answer.shape == (400, 0) and empty.score.shape == (400, 0)


def test_mixture_shares_and_tier_ranges(big: tuple[Workload, Draws]) -> None:
    workload, _ = big
    shares = np.bincount(workload.tier, minlength=len(TIERS)) / workload.n_questions
    assert shares == pytest.approx([DEFAULT_MIX[t] for t in TIERS], abs=1e-3)
    assert np.mean(workload.p_correct == 0) == pytest.approx(DEFAULT_MIX["hopeless"], abs=1e-3)
    assert np.mean(workload.p_correct >= 0.85) == pytest.approx(DEFAULT_MIX["easy"], abs=1e-3)
    medium = workload.p_correct[workload.tier == TIERS.index("medium")]
    hard = workload.p_correct[workload.tier == TIERS.index("hard")]
    assert medium.min() >= 0.3 and medium.max() <= 0.7
    assert hard.min() >= 0.05 and hard.max() <= 0.3
    probs = workload.outcome_probs()
    assert np.all(probs >= 0) and np.allclose(probs.sum(1), 1.0)
    assert np.all(np.diff(workload.distractors, axis=1) <= 0)  # most likely distractor first
    # confidently wrong: on most hard questions the top distractor out-weighs the correct answer
    # (majority vote fails), on few medium ones, on no easy one
    beaten = probs[:, 1] > workload.p_correct
    share = [beaten[workload.tier == TIERS.index(t)].mean() for t in ("easy", "medium", "hard")]
    assert share[0] == 0 and share[1] < 0.25 and share[2] > 0.6


def test_custom_mix_and_bad_arguments() -> None:
    workload = synthetic_workload(100, mix={"easy": 3, "hopeless": 1})
    assert np.bincount(workload.tier, minlength=4).tolist() == [75, 0, 0, 25]
    with pytest.raises(ValueError, match="unknown tier 'trivial'"):
        synthetic_workload(10, mix={"trivial": 1.0})
    with pytest.raises(ValueError, match="non-negative"):
        synthetic_workload(10, mix={"easy": -1.0, "hard": 2.0})
    with pytest.raises(ValueError, match="n_questions"):
        synthetic_workload(-1)
    with pytest.raises(ValueError, match="seed"):
        draw_samples(workload, 4, seed=-1)
    with pytest.raises(ValueError, match="n_samples"):
        draw_samples(workload, -2, seed=0)


def test_sample_frequencies_follow_the_workload(big: tuple[Workload, Draws]) -> None:
    workload, draws = big
    assert np.array_equal(draws.correct, draws.answer == 0)
    assert draws.answer.min() >= -1 and draws.answer.max() <= workload.n_distractors
    n = draws.answer.size
    assert draws.correct.mean() == pytest.approx(workload.p_correct.mean(), abs=4 / math.sqrt(n))
    assert np.mean(draws.answer == -1) == pytest.approx(workload.p_none.mean(), abs=0.01)
    assert not draws.correct[workload.p_correct == 0].any()


def test_token_lengths_caps_and_finish_reasons(big: tuple[Workload, Draws]) -> None:
    workload, draws = big
    tokens, cap = draws.completion_tokens, workload.max_tokens[:, None]
    assert tokens.min() >= 1 and np.all(tokens <= cap)
    cut = draws.finish_reason_length
    assert 0.002 < cut.mean() < 0.05  # some, not many, samples run into the cap
    assert np.all(tokens[cut] == np.broadcast_to(cap, tokens.shape)[cut])
    assert np.all(draws.answer[cut] == -1)  # a cut sample has no answer
    assert np.all(tokens[~cut] < np.broadcast_to(cap, tokens.shape)[~cut])
    # wrong samples run longer than correct ones, and hard questions longer than easy ones
    wrong = draws.answer > 0
    assert np.median(tokens[wrong]) > 1.2 * np.median(tokens[draws.correct])
    easy = workload.tier == TIERS.index("easy")
    assert np.median(tokens[~easy]) > 1.5 * np.median(tokens[easy])


def test_verifier_separates_on_average_but_imperfectly(big: tuple[Workload, Draws]) -> None:
    _, draws = big
    score, right = draws.score, draws.correct
    assert np.all((score >= 0) & (score <= 1))
    assert score[right].mean() > score[~right].mean() + 0.25
    # imperfect: a fair share of wrong samples outscore the median correct one
    assert np.mean(score[~right] > np.median(score[right])) > 0.05
    # AUROC on pooled samples: good, not perfect
    pos, neg = score[right], score[~right]
    ranks = np.argsort(np.argsort(np.concatenate([pos, neg]))) + 1
    auroc = (ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
    assert 0.75 < auroc < 0.97


def test_confidence_is_higher_for_correct_and_easy(big: tuple[Workload, Draws]) -> None:
    workload, draws = big
    lp = draws.mean_logprob
    assert np.all(lp < 0) and np.all(np.isfinite(lp))
    assert lp[draws.correct].mean() > lp[draws.answer > 0].mean()
    easy = workload.tier == TIERS.index("easy")
    medium = workload.tier == TIERS.index("medium")
    assert lp[easy][draws.correct[easy]].mean() > lp[medium][draws.correct[medium]].mean()
    assert draws.prompt_tokens.shape == (workload.n_questions,) and draws.prompt_tokens.min() > 0


def test_normal_cdf_and_quantile_match_the_standard_library() -> None:
    x = np.linspace(-30, 8, 501)
    reference = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    assert np.allclose(ndtr(x), reference, rtol=1e-6, atol=0)
    p = np.concatenate(
        [np.logspace(-14, -1, 60), np.linspace(0.02, 0.98, 60), 1 - np.logspace(-10, -1, 60)]
    )
    reference = np.array([NormalDist().inv_cdf(v) for v in p])
    assert np.allclose(ndtri(p), reference, rtol=0, atol=1e-7)


def test_simulator_does_not_import_ttcdsl() -> None:
    code = (
        "import sys, simulator\n"
        "simulator.draw_samples(simulator.synthetic_workload(20), 4, seed=0)\n"
        "bad = sorted(m for m in sys.modules if m == 'ttcdsl' or m.startswith('ttcdsl.'))\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
