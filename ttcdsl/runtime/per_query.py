"""The executor of ``per_query`` plans: the planned executor with per-query targets.

Everything but the targets is the planned executor's (:class:`ttcdsl.runtime.executor.Executor`):
the probe round, the rounds after it, the stop rules, the ledger and resumption. When every probe
is complete, instead of bins and their allocations, each query's probe features (the policy's
features, evaluated as calibration evaluated them) go through the plan's predictor
(:class:`ttcdsl.planner.predictor.CurvePredictor`), and the plan's rule
(:func:`ttcdsl.planner.per_query.allocate_counts`, the one the planner valued) turns the predicted
curves into each query's target under the budget that remains. The decision is a deterministic
function of the stored probes, so a resumed run decides as the interrupted one did.
"""

from __future__ import annotations

import numpy as np

from ttcdsl.runtime.executor import Executor


class PerQueryExecutor(Executor):
    MODES = ("per_query",)

    def __init__(self, spec, backend, store, **kwargs) -> None:
        super().__init__(spec, backend, store, **kwargs)
        from ttcdsl.planner.predictor import CurvePredictor

        self.predictor = CurvePredictor.from_plan(self.plan["per_query"]["predictor"])

    def _bin(self) -> None:
        from ttcdsl.features import evaluate_features
        from ttcdsl.planner.per_query import allocate_counts, mean_budget
        from ttcdsl.planner.predictor import feature_matrix

        qs = [self.queries[q] for q in self.order]
        batch = self._batch([q.rows[: self.probe] for q in qs])
        features = evaluate_features(self.policy, batch)
        value, samples = self.predictor.predict(feature_matrix(self.predictor.names, features))
        levels = self.predictor.levels
        have = np.array([len(q.rows) for q in qs], dtype=np.float64)
        # a query whose backend ran short during the probe can get nothing more
        allowed = np.ones(value.shape, dtype=bool)
        short = np.array([q.exhausted is not None for q in qs])
        allowed[short] = False
        allowed[short, 0] = True
        choice, _ = allocate_counts(
            value, samples, levels, mean_budget(self.policy), have, allowed=allowed,
            order=np.array([self.ranks[q.qid] for q in qs], dtype=np.uint64),
        )
        gains = value.max(1) - value[:, 0]
        for q, k, gain in zip(qs, choice.tolist(), gains.tolist()):
            q.bin = 0
            q.target = max(int(levels[k]), len(q.rows))
            q.key = float(gain)  # the predicted gain of its best count over the probe
        self.ledger.set_bins({q.qid: self.policy.bins[0].name for q in qs})
        self.binned = True
        only_probe = sum(1 for q in qs if q.target <= self.probe)
        self.progress(
            f"per-query targets: mean {np.mean([q.target for q in qs]):.3g} samples; "
            f"{only_probe} of {len(qs)} queries keep only the probe"
        )
