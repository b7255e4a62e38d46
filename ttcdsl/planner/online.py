"""The plan of a bandit policy made without calibration data.

A bandit allocates online (:mod:`ttcdsl.runtime.bandit`): its plan needs no response curves, only
the policy's settings. ``ttc run POLICY.ttc`` on a bandit policy writes this plan into the run
directory, so a user with no calibration table can still run one. ``ttc plan`` on the same policy
with a calibration table gives the same settings plus the calibration's record.
"""

from __future__ import annotations

from typing import Any

from ttcdsl.errors import UserError
from ttcdsl.lang import ir
from ttcdsl.planner.plan import PLAN_VERSION


def online_plan(
    policy: ir.Policy, *, policy_file: str, score_columns: dict[str, str] | None = None
) -> dict[str, Any]:
    """The plan document of a bandit ``policy`` (refused for other allocation modes), reading
    its reward-model scorers from ``score_columns`` (``ttc run --score``)."""
    from ttcdsl import __version__
    from ttcdsl.planner.report import budget_entries, sampling_fields, source_text

    bandit = policy.allocation
    if not isinstance(bandit, ir.Bandit):
        raise UserError(
            f"{policy_file}: only a bandit policy runs without a plan; this one allocates "
            f"{type(bandit).__name__.lower()}",
            hint=f"plan it first: ttc plan {policy_file} --calibration SAMPLES -o plan.yaml",
        )
    (spec,) = policy.bins
    return {
        "ttcdsl_plan": PLAN_VERSION,
        "policy": {
            "name": policy.name,
            "description": policy.description,
            "file": policy_file,
            "source_sha256": policy.source_hash,
        },
        "calibration": None,
        "objective": policy.objective,
        "mode": "bandit",
        "batch_size": None,
        "probe": policy.probe,
        "stop_check": "bandit: solved rules after every round",
        "binning": None,
        "bins": [
            {
                "name": spec.name,
                "share": 1.0,
                "queries": None,
                "key_range": None,
                "strategy": spec.strategy.kind,
                "scorer": spec.strategy.scorer,
                "sampling": sampling_fields(spec.sampling),
                "stop": [],
            }
        ],
        "budget": [entry for _, entry in budget_entries(policy)],
        "predicted": None,
        "baseline": None,
        "solver": None,
        "bandit": {
            "round_samples": bandit.round_samples,
            "explore": bandit.explore,
            "solved": [source_text(policy, c.span) for c in bandit.solved],
            "bill": bandit.bill,
        },
        "timings": {},
        "warnings": [],
        "created_by": f"ttc {__version__} (run without calibration)",
        "score_columns": dict(score_columns or {}),
    }
