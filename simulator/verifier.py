"""The imperfect verifier, once for both generators: per question a Beta score distribution for
correct samples and one for the rest.

``ttc workload`` (:mod:`simulator.workload`, NumPy) and the JAX workload model
(:mod:`simulator.model`) both call :func:`verifier_beta`, so a reward-model score means the same
thing in a drawn table and in a simulated rollout. Per question, in logit space, a centre and a
separation between the two classes' mean scores; the separation is weaker on hard questions and
on confidently wrong ones (a consistent wrong derivation fools a reward model too), and, by the
normal term, reversed on about 1 medium question in 10; the concentration ``a + b`` is uniform
on [4, 10]. Tuned so best-of-8 beats maj@8 by a few points on the default workload.
"""

from __future__ import annotations


def verifier_beta(xp, hard, dominant, z_separation, z_centre, u_concentration):
    """``(score_a, score_b)``, each ``[Q, 2]`` (column 0 correct samples, 1 the rest): the Beta
    parameters of each question's scores, from its difficulty ``hard`` (1 - P(correct)), whether
    one wrong answer dominates (``dominant``, 0/1), two standard normal draws and one uniform
    draw per question. ``xp``: ``numpy`` or ``jax.numpy``."""
    separation = 1.8 - 1.2 * hard - 0.8 * dominant + 0.9 * z_separation
    centre = 0.2 - 0.8 * hard + 0.5 * z_centre
    shift = xp.stack([0.5 * separation, -0.5 * separation], axis=1)
    means = 1.0 / (1.0 + xp.exp(-(centre[:, None] + shift)))
    concentration = (4.0 + 6.0 * u_concentration)[:, None]
    return concentration * means, concentration * (1.0 - means)
