"""``compare``: every policy at every mean budget, beside uniform and the two oracles.

The evaluation queries are never the ones a policy was planned on. For each policy and budget
the rows hold (all over the evaluation queries, averaged over the R sample orders):

* the policy's accuracy, coverage, mean and max samples per query (tokens where known);
* its metric (the policy's objective: accuracy, or coverage for ``maximize coverage``) beside
  uniform's and the static oracle's at the policy's OWN mean spend (exact curves,
  :mod:`ttcdsl.compare.baselines`), and the dynamic oracle's on the same orders; all three on the
  samples as the policy's runs are served them: a logged sample longer than the policy's
  ``max_tokens`` is cut (no answer, wrong), the rule replay and the planner's baseline follow;
* ``oracle_share``: (policy - uniform) / (static oracle - uniform), the share of the oracle's gain
  over uniform the policy captures (None when the oracle gains nothing);
* ``efficiency``: uniform's smallest spend (one sample per query at least: 0 samples is no run)
  that reaches the policy's metric on its exact curve, divided by the policy's spend (None when
  uniform never reaches it within the logged samples). Where uniform's curve is flat or falls
  at the policy's spend, uniform matches the policy with fewer samples and the figure is below
  1 (samples that buy nothing), however well the policy allocates them. A policy whose results
  ARE uniform's at equal spend (every query, every order: the difference is exactly 0 with no
  spread) reads 1.00x: compared with uniform it is uniform, whatever uniform's own curve does;
  both read ``adjusted_value``, uniform plus the regression-adjusted difference below (the
  estimate the verdict reads), not the raw replay ``value``, which carries uniform's luck on
  the orders;
* the difference from uniform, regression-adjusted on the same orders: per query and order, the
  policy's value minus uniform's exact value at the run's spend, less ``c`` times uniform's own
  deviation from that exact value on the samples the same order serves (the run report's
  baseline, :func:`ttcdsl.runtime.report.uniform_baseline`), averaged over the orders; its
  standard error over queries, the 95% CI and :func:`ttcdsl.verdict.verdict`'s sentence.
  ``c`` (``uniform_adjustment``) is the least-squares slope of the run's deviations on uniform's:
  the share of an order's luck the two runs share. ``c = 1`` is plain pairing on the same orders
  (exactly 0 for a policy that IS uniform, and the fitted ``c`` is then 1); ``c = 0`` pairs with
  the exact curve alone. Plain pairing added uniform's luck on the orders whenever the policy's
  runs did not follow it (adaptive_vote at 8 samples: ``c`` about 0.3, and three orders on which
  uniform was lucky by 1.5 points turned a gain of +1.1 points into -0.5); the fitted ``c`` has
  the smallest variance of the family and keeps its expectation. ``uniform_same_orders`` is that
  uniform's value (its expectation over orders is the exact ``uniform``); ``repeat_sd`` the spread
  of the policy's metric across the orders alone.

A policy that cannot run (a table without its scorer, a budget its probe cannot meet, a policy
that does not check) gets a row with the reason; the others go on. So does a policy that hits a
bug in ttcdsl: its row says ``internal error`` (``"internal": true``) and the command exits 3
once the other rows are written, so a bug is neither hidden nor fatal to an hour of comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ttcdsl.compare.baselines import ExactCurves, dynamic_oracle, exact_curves, static_oracle
from ttcdsl.curves.pool import QueryPool
from ttcdsl.errors import UserError
from ttcdsl.features.scorers import as_read
from ttcdsl.samples.labels import is_label_conflict_warning
from ttcdsl.lang import ir
from ttcdsl.samples.schema import SamplesTable
from ttcdsl.verdict import Z95, verdict


@dataclass(frozen=True, slots=True, kw_only=True)
class Setup:
    """What a comparison runs on."""

    calibration: SamplesTable
    evaluation: SamplesTable
    split: str  # how the two were obtained, for the report
    budgets: tuple[float, ...]
    repeats: int
    score_columns: Mapping[str, str] = field(default_factory=dict)
    reps: int = 64  # Monte Carlo repetitions of the planner's curves (where they are not exact)
    unlabelled: int = 0  # queries left out for a sample of unknown correctness
    # a bandit's plan predicts its run by simulating it (ttc plan's forecast, tens of seconds of
    # compile per budget); without it a bandit's row has no planned figure
    predict_bandits: bool = True


def baseline_strategy(policy) -> tuple[str, str | None]:
    """(strategy, scorer) of the uniform allocation a policy is judged against: its own answer
    rule (``keep_probe`` answers by majority vote, as the run report's baseline does), or pass@n
    when the policy maximizes coverage."""
    if policy.objective == "coverage":
        return "pass_at_k", None
    kind = {"keep_probe": "majority_vote"}.get(policy.answer.kind, policy.answer.kind)
    return kind, policy.answer.scorer


_LOGPROB, _GOLD = "\0logprob", "\0gold"  # never a table's column name (those are non-empty text)


class Baselines:
    """Exact curves of the evaluation pool, computed once per (strategy, scorer)."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        table = setup.evaluation
        # a confidence scorer reads the samples' mean logprobs, a gold scorer their labels: the
        # pool carries both under reserved names, beside the table's score columns
        self.pool = QueryPool.from_table(table, extra={
            _LOGPROB: table.mean_logprob,
            _GOLD: np.ma.masked_array(table.correct.filled(False).astype(np.float64),
                                      mask=np.ma.getmaskarray(table.correct)),
        })
        self.query_ids = self.pool.query_ids
        self._curves: dict[tuple[str, str | None], ExactCurves] = {}
        self._orders: dict[int, tuple[list[np.ndarray], list[int]]] = {}

    def curves(
        self,
        strategy: str,
        scorer: str | None = None,
        scorer_kind: str | None = None,
        max_tokens: int | None = None,
        read: ir.Scorer | None = None,
    ) -> ExactCurves:
        """Uniform's exact curves, on the samples as a run under ``max_tokens`` is served them
        (a longer sample is cut: no answer, wrong; ``None``: as logged), with the scorer's
        column as the policy ``read``s it (sigmoid for a ``logits`` scorer; None: as logged)."""
        logits = read is not None and read.logits
        key = (strategy, scorer, max_tokens, logits)
        if key not in self._curves:
            if scorer is None:
                column = None
            elif scorer_kind in ("confidence", "gold"):
                column = _LOGPROB if scorer_kind == "confidence" else _GOLD
            else:
                column = self.setup.score_columns.get(scorer, scorer)
            if column is not None and column not in self.pool.scores:
                raise UserError(
                    f"the evaluation table has no score column {column!r} for scorer {scorer!r}",
                    hint="map the scorer to a column of the table with --score SCORER=COLUMN",
                )
            pool = self.pool
            if logits:
                scores = dict(pool.scores)
                scores[column] = as_read(read, scores[column])
                pool = pool._replace(scores=scores)
            if max_tokens is not None:
                from ttcdsl.planner.calibration import cut_pool

                pool, _ = cut_pool(pool, np.full(pool.answer.shape, np.nan), max_tokens)
            try:
                self._curves[key] = exact_curves(
                    pool, strategy, score=column, scorer_kind=scorer_kind
                )
            except ValueError as error:
                raise UserError(f"uniform {strategy}: {error}") from None
        return self._curves[key]

    def serving_orders(
        self, seed: int, max_tokens: int | None = None
    ) -> tuple[list[np.ndarray], list[int]]:
        """Each evaluation query's labels in the replay's serving order under ``seed`` (a sample
        cut at ``max_tokens`` is wrong), and its seeded rank: what the dynamic oracle sees."""
        if (seed, max_tokens) not in self._orders:
            from ttcdsl.runtime.assignment import rank_key
            from ttcdsl.runtime.replay import replay_order

            table = self.setup.evaluation
            by_query = table.by_query()
            labels = np.ma.filled(table.correct.astype(np.float64), 0.0) > 0
            if max_tokens is not None:
                from ttcdsl.samples.truncation import is_cut

                tokens = np.ma.filled(table.completion_tokens.astype(np.float64), np.nan)
                labels = labels & ~is_cut(tokens, max_tokens)
            index = np.asarray(table.sample_index)
            correct = []
            for qid in self.query_ids:
                rows = by_query[qid]
                rows = rows[np.argsort(index[rows], kind="stable")]
                order = replay_order(seed, qid, index[rows].tolist())
                correct.append(labels[rows][order])
            ranks = [rank_key(seed, q) for q in self.query_ids]
            self._orders[(seed, max_tokens)] = (correct, ranks)
        return self._orders[(seed, max_tokens)]

    def tokens_per_sample(self, max_tokens: int, charge_prompt: bool) -> float | None:
        """Uniform's billed tokens per sample on the evaluation pool as a run under
        ``max_tokens`` bills them (:func:`ttcdsl.equal_spend.tokens_per_sample`; prompts, at
        the bound a replay gives them, where charged); None when some count is unknown."""
        from ttcdsl.equal_spend import tokens_per_sample
        from ttcdsl.planner.calibration import cut_pool
        from ttcdsl.runtime.replay import prompt_bounds

        pool, _ = cut_pool(self.pool, np.full(self.pool.answer.shape, np.nan), max_tokens)
        prompt = None
        if charge_prompt:
            bounds = prompt_bounds(self.setup.evaluation)
            if any(q not in bounds for q in self.query_ids):
                return None
            prompt = np.array([bounds[q] for q in self.query_ids], dtype=np.float64)
        return tokens_per_sample(pool.tokens, pool.valid, prompt)

    def dynamic(self, spend: float, max_tokens: int | None = None) -> dict[str, float]:
        """The dynamic oracle's coverage and spend at mean ``spend``, averaged over the orders."""
        covered, spent = [], []
        for seed in range(self.setup.repeats):
            correct, ranks = self.serving_orders(seed, max_tokens)
            c, s = dynamic_oracle(correct, ranks, spend)
            covered.append(c.mean())
            spent.append(s.mean())
        return {"coverage": float(np.mean(covered)), "samples_per_query": float(np.mean(spent))}


def reference(base: Baselines, strategies: Sequence[tuple[str, str | None, str | None]]) -> list[dict]:
    """Uniform (each strategy) and both oracles at each compared budget, on the samples as logged
    (no ``max_tokens`` cut): the table's first rows."""
    out = []
    budgets = list(base.setup.budgets)
    for strategy, scorer, kind in strategies:
        curves = base.curves(strategy, scorer, kind)
        oracle = static_oracle(curves, budgets)
        for budget, o in zip(budgets, oracle, strict=True):
            out.append({
                "budget": budget, "strategy": strategy, "scorer": scorer,
                "uniform": curves.mean_at(budget), "static_oracle": float(o),
            })
    for budget in budgets:
        out.append({"budget": budget, "strategy": "dynamic_oracle", "scorer": None,
                    **base.dynamic(budget)})
    return out


def compare_policy(
    path: str,
    setup: Setup,
    base: Baselines,
    progress: Callable[[str], None],
) -> list[dict]:
    """Every row of one policy (one per budget it runs at); a failure is a row with ``error``."""
    from ttcdsl.compare.runs import at_budget, mean_budget_limit, plan_for, replay
    from ttcdsl.lang.api import load_policy
    from ttcdsl.lang.diagnostics import DiagnosticError

    name = path
    try:
        policy = load_policy(path)
        name = policy.name
        # this policy's share of --score (run_comparison checked each mapping has a taker)
        declared = {s.name for s in policy.scorers if s.kind == "reward_model"}
        columns = {k: v for k, v in setup.score_columns.items() if k in declared}
        strategy, scorer = baseline_strategy(policy)
        kind = policy.scorer_kind(scorer) if scorer else None
        read = next((s for s in policy.scorers if s.name == scorer), None)
        curves = base.curves(strategy, scorer, kind, policy.sampling.max_tokens, read)
    except DiagnosticError as error:  # not a valid policy: its row, and its diagnostics by line
        from ttcdsl.lang.render import render_text

        return [{**_error_row(name, path, None, error),
                 "diagnostics": render_text(error.diagnostics, color=False)}]
    except UserError as error:
        return [_error_row(name, path, None, error)]
    except Exception as error:  # a bug: reported in the row, the exit code says so
        return [_internal_row(name, path, None, error)]
    varied = mean_budget_limit(policy) is not None
    budgets: list[float | None] = list(setup.budgets) if varied else [None]
    rows = []
    for budget in budgets:
        label = "own budget" if budget is None else f"budget {budget:g}"
        try:
            run_policy = policy if budget is None else at_budget(policy, budget)
            progress(f"{name}: {label}: planning on {len(setup.calibration.query_ids())} "
                     "calibration queries")
            plan = plan_for(run_policy, setup.calibration, columns, reps=setup.reps,
                            progress=lambda message: None, predict_bandit=setup.predict_bandits)
            for warning in plan.get("warnings", []):  # the planner's, as ttc plan shows them
                if is_label_conflict_warning(warning):
                    continue  # ttc compare said it once of the whole table
                progress(f"{name}: {label}: warning: {warning}")
            progress(f"{name}: {label}: replaying {setup.repeats} sample order(s)")
            runs = replay(run_policy, plan, setup.evaluation, base.query_ids, columns,
                          range(setup.repeats))
        except (DiagnosticError, UserError) as error:
            rows.append(_error_row(name, path, budget, error))
            continue
        except Exception as error:  # a bug: reported in the row, the exit code says so
            rows.append(_internal_row(name, path, budget, error))
            continue
        row = _row(name, path, budget, policy, runs, curves, base)
        row.update(_planned(plan, row, runs))
        row["warnings"] = list(plan.get("warnings", []))
        rows.append(row)
    return rows


def _planned(plan: Mapping, row: dict, runs) -> dict:
    """The plan's own prediction of the run's metric (per query, on new queries) against the
    replay: the two are means over different query sets (calibration, evaluation), so they
    agree when their difference is within 1.96 standard errors of both means together."""
    predicted = plan.get("predicted") or {}
    value, se = predicted.get(row["metric"]), predicted.get(f"{row['metric']}_se")
    if value is None or se is None:
        return {"planned": None, "planned_se": None, "planned_agrees": None}
    per_query = np.stack([r.covered if row["metric"] == "coverage" else r.correct
                          for r in runs]).mean(0)
    q = len(per_query)
    run_se = float(per_query.std(ddof=1) / math.sqrt(q)) if q > 1 else 0.0
    both = math.sqrt(se**2 + run_se**2)
    return {
        "planned": float(value),
        "planned_se": float(se),
        "planned_agrees": bool(abs(row["value"] - value) <= Z95 * both),
    }


def _error_row(name: str, path: str, budget: float | None, error: Exception) -> dict:
    if hasattr(error, "diagnostics"):
        reason = "; ".join(d.message for d in error.diagnostics)
    else:
        reason = getattr(error, "message", str(error))
    return {"policy": name, "file": path, "budget": budget, "error": reason}


def _internal_row(name: str, path: str, budget: float | None, error: Exception) -> dict:
    import os
    import traceback

    from ttcdsl.errors import out_of_memory, out_of_memory_error

    if out_of_memory(error):  # the machine's limit, as ttc says of it elsewhere: not a bug
        said = out_of_memory_error(error)
        return _error_row(name, path, budget, UserError(f"{said.message}; {said.hint}"))
    if os.environ.get("TTC_DEBUG"):
        traceback.print_exception(error)
    return {
        "policy": name, "file": path, "budget": budget, "internal": True,
        "error": f"internal error (a bug in ttcdsl, not in the policy or the table): "
                 f"{type(error).__name__}: {error}",
    }


def _row(name, path, budget, policy, runs, curves: ExactCurves, base: Baselines) -> dict:
    metric = "coverage" if policy.objective == "coverage" else "accuracy"
    samples = np.stack([r.samples for r in runs]).astype(np.float64)  # [R, Q]
    correct = np.stack([r.correct for r in runs])
    covered = np.stack([r.covered for r in runs])
    tokens = np.stack([r.tokens for r in runs])
    values = covered if metric == "coverage" else correct
    paired = np.stack([r.uniform_covered if metric == "coverage" else r.uniform_correct
                       for r in runs])
    spend = float(samples.mean())
    # uniform's samples per query at each run's spend, in the unit of the policy's budget
    run_spend, matched = _uniform_spend(policy, samples, tokens, base)
    uniform_spend = float(run_spend.mean())
    uniform_q = curves.per_query_at(uniform_spend)
    # per query and order: the run minus uniform's exact value at the run's spend, less c times
    # uniform's own deviation from its exact value on the samples the same seed serves
    # (module docstring); averaged over the orders, the SE is over queries
    exact = np.stack([curves.per_query_at(float(s)) for s in run_spend])  # [R, Q]
    run_dev, uniform_dev = values - exact, paired - exact
    scale = float((uniform_dev * uniform_dev).sum())
    c = float((run_dev * uniform_dev).sum() / scale) if scale > 0 else 1.0
    diffs = (run_dev - c * uniform_dev).mean(0)
    q = len(diffs)
    diff = float(diffs.mean())
    se = float(diffs.std(ddof=1) / math.sqrt(q)) if q > 1 else None
    value = float(values.mean())
    uniform = float(uniform_q.mean())
    oracle = float(static_oracle(curves, [uniform_spend])[0])
    gain = oracle - uniform
    # the share of the oracle's gain and the efficiency read the paired, regression-adjusted
    # estimate of the policy's value (uniform plus the difference the verdict reads), not the
    # raw replay's: that holds uniform's luck on the orders, so a policy that IS uniform read
    # as 0.4x efficient and -28% of the oracle's gain beside its verdict of exactly +0.0
    adjusted = uniform + diff
    reach = curves.spend_to_reach(adjusted)
    if np.array_equal(values, paired):
        # the runs' results are uniform's own at equal spend on every query and order (a policy
        # that runs uniform): uniform matches it at exactly its spend (module docstring), even
        # where uniform's curve is flat or falls and a smaller spend would reach the same value
        reach = uniform_spend
    per_repeat = values.mean(1)
    return {
        "policy": name,
        "file": path,
        "budget": budget,
        "metric": metric,
        "baseline": curves.strategy,
        "accuracy": float(correct.mean()),
        "coverage": float(covered.mean()),
        "value": value,
        "samples_per_query": spend,
        "max_samples": int(samples.max()),
        "tokens_per_query": None if np.isnan(tokens).any() else float(tokens.mean()),
        # the spend uniform, the oracles and the verdict are at: the run's samples, or the
        # samples that bill the run's tokens where the budget is in tokens
        "equal_spend": matched,
        "uniform_samples_per_query": uniform_spend,
        "uniform": uniform,
        "static_oracle": oracle,
        "dynamic_oracle": base.dynamic(uniform_spend, policy.sampling.max_tokens)["coverage"],
        "max_tokens": policy.sampling.max_tokens,
        "uniform_same_orders": float(paired.mean()),
        "uniform_adjustment": c,
        "adjusted_value": adjusted,
        "oracle_share": (adjusted - uniform) / gain if gain > 1e-9 else None,
        "efficiency": None if reach is None or uniform_spend <= 0 else reach / uniform_spend,
        "diff": diff,
        "se": se,
        "ci": None if se is None else [diff - Z95 * se, diff + Z95 * se],
        "repeat_sd": float(per_repeat.std(ddof=1)) if len(runs) > 1 else None,
        "repeats": len(runs),
        "queries": q,
        "verdict": verdict(diff, se),
    }


def _uniform_spend(policy: ir.Policy, samples: np.ndarray, tokens: np.ndarray,
                   base: Baselines) -> tuple[np.ndarray, str]:
    """``([R], matched)``: uniform's mean samples per query at each run's spend, and the unit
    matched (:mod:`ttcdsl.equal_spend`). A budget in tokens gives uniform the samples that bill
    the run's tokens at uniform's own tokens per sample; where a count is unknown it stays at
    the run's samples, and ``matched`` says so."""
    from ttcdsl.equal_spend import budget_unit

    by_samples = samples.mean(1)
    if budget_unit(policy) == "samples":
        return by_samples, "samples"
    per_sample = base.tokens_per_sample(policy.sampling.max_tokens,
                                        policy.budget.charge_prompt_tokens)
    if per_sample is None or per_sample <= 0 or np.isnan(tokens).any():
        return by_samples, "samples, NOT the tokens the budget is in: some token count is unknown"
    return tokens.mean(1) / per_sample, "tokens"


def _tell_apart_same_names(rows: list[dict]) -> None:
    """Two files that declare one policy name (an edited copy, say) would give rows, plot lines
    and JSON entries no reader could tell apart: their ``policy`` gains the file's path."""
    files: dict[str, set[str]] = {}
    for row in rows:
        files.setdefault(row["policy"], set()).add(row["file"])
    for row in rows:
        if len(files[row["policy"]]) > 1:
            row["policy"] = f"{row['policy']} ({row['file']})"


def run_comparison(
    policies: Sequence[str], setup: Setup, progress: Callable[[str], None]
) -> dict[str, Any]:
    """The whole comparison as one JSON-able document."""
    _check_score_maps(policies, setup.score_columns)
    base = Baselines(setup)
    strategies = [("majority_vote", None, None), ("pass_at_k", None, None)]
    for scorer, column in setup.score_columns.items():
        if column in base.pool.scores:
            strategies.append(("best_of_n", scorer, None))
    progress(f"exact baselines on {len(base.query_ids)} evaluation queries")
    shallow = _shallow(base, setup.budgets)
    for budget, count in shallow.items():
        progress(f"warning: {count} of {len(base.query_ids)} evaluation queries hold fewer than "
                 f"{budget:g} samples: at that budget they get only what they hold, in every "
                 "column (uniform, the oracles and the policies' runs); uniform and the static "
                 "oracle give the samples they cannot take to the other queries, so they spend "
                 "what they are said to")
    ref = reference(base, strategies)
    rows = []
    for number, path in enumerate(policies, 1):
        rows.extend(compare_policy(
            path, setup, base,
            lambda message, n=number: progress(f"[{n}/{len(policies)}] {message}"),
        ))
    _tell_apart_same_names(rows)
    return {
        "split": setup.split,
        "calibration_queries": len(setup.calibration.query_ids()),
        "evaluation_queries": len(base.query_ids),
        "unlabelled_left_out": setup.unlabelled,
        "logged_per_query": int(base.pool.n_samples.max(initial=0)),
        "fewest_logged": int(base.pool.n_samples.min()) if len(base.pool.n_samples) else 0,
        # per compared budget: evaluation queries whose log holds fewer samples than it
        "shallow_queries": {f"{budget:g}": count for budget, count in shallow.items()},
        "budgets": list(setup.budgets),
        "repeats": setup.repeats,
        "score_columns": dict(setup.score_columns),
        "reference": ref,
        "rows": rows,
        "curves": {s: _curve_document(base.curves(s, sc)) for s, sc, _ in strategies},
    }


def _check_score_maps(paths: Sequence[str], mapping: Mapping[str, str]) -> None:
    """Refuse a ``--score`` mapping that no compared policy declares (a typo in a scorer's
    name), once for the whole comparison: a policy that does not declare it simply does not
    use it. Files that do not load get their own rows later."""
    if not mapping:
        return
    from ttcdsl.lang.api import load_policy
    from ttcdsl.lang.diagnostics import DiagnosticError
    from ttcdsl.observables import score_maps

    loaded = []
    for path in paths:
        try:
            loaded.append(load_policy(path))
        except (DiagnosticError, UserError):  # reported in the policy's own row
            continue
    if loaded:
        score_maps(loaded, dict(mapping))


def _shallow(base: Baselines, budgets: Sequence[float]) -> dict[float, int]:
    """Budgets at which some evaluation query holds fewer samples than the budget asks: a
    replay cannot serve it more, and the exact curves hold at its last logged count."""
    held = base.pool.n_samples
    out = {}
    for budget in budgets:
        count = int((held < math.ceil(budget)).sum())
        if count:
            out[float(budget)] = count
    return out


def _curve_document(curves: ExactCurves) -> dict[str, list[float]]:
    """Uniform's exact mean curve and the static oracle's, on a grid of mean spends (the plot)."""
    grid = np.linspace(0.0, float(curves.levels), 4 * curves.levels + 1)
    return {
        "spend": grid.tolist(),
        "uniform": [curves.mean_at(s) for s in grid],
        "static_oracle": static_oracle(curves, grid).tolist(),
    }
