"""Budget checks that need the batch size: a per-query minimum times the number of queries
must fit in every total limit, and the probe's worst case must fit every bin-scoped limit (the
run's own refusal, :func:`ttcdsl.runtime.ledger.probe_violations`). The checker cannot know the
batch; `ttc check --queries N` calls this with it, and the planner calls :func:`check_probe_budget`
with its batch (it checks totals against the minimum on the calibration set itself)."""

from __future__ import annotations

from ttcdsl.lang import ast, ir
from ttcdsl.lang.diagnostics import Diagnostic, Diagnostics, Note
from ttcdsl.lang.numbers import format_number
from ttcdsl.lang.vocabulary import DEFAULT_MIN_SAMPLES


def default_min_samples(allocation: ast.Allocation | ir.Allocation) -> int:
    """The per-query floor of samples the planner keeps though no budget line writes it: one
    sample under `allocate optimal` and `allocate per query` (DEFAULT_MIN_SAMPLES); none where
    the written counts (`fixed`, which may give a bin 0) or the bandit decide."""
    if isinstance(allocation, ast.Optimal | ast.PerQuery | ir.Optimal | ir.PerQuery):
        return DEFAULT_MIN_SAMPLES
    return 0


def check_batch_budget(policy: ir.Policy, num_queries: int) -> tuple[Diagnostic, ...]:
    diagnostics = Diagnostics(policy.source)
    budget = policy.budget
    for total in (l for l in budget.limits if l.kind == "total" and l.bin is None):
        low = budget.find("per_query_min", total.unit)
        minimum = low.value if low else 0
        reason = low.span if low else None
        what = "per-query minimum"
        if total.unit == "samples" and default_min_samples(policy.allocation) > minimum:
            minimum, reason = default_min_samples(policy.allocation), None
        if total.unit == "samples" and policy.probe > minimum:
            minimum = policy.probe
            reason = None  # the probe; its span is not kept in the IR budget
            what = "probe"
        needed = minimum * num_queries
        if needed > total.value:
            affordable = int(total.value // num_queries) if num_queries else 0
            # a minimum of 0 serves no query: below one per query, the batch must shrink instead
            instead = (f"lower the {what} to {format_number(affordable)} or less" if affordable >= 1
                       else f"run at most {format_number(int(total.value // minimum))} queries per batch")
            diagnostics.error(
                "TTC400",
                f"{num_queries} queries need at least {format_number(needed)} {total.unit} "
                f"({format_number(minimum)} each), but the total is {format_number(total.value)}",
                total.span,
                label="too small for this batch",
                help=f"raise the total to at least {format_number(needed)}, or {instead}",
                notes=(Note(span=reason, message="the per-query minimum is set here"),) if reason else (),
            )
    _probe_budget(policy, num_queries, diagnostics)
    return diagnostics.sorted()


def check_probe_budget(policy: ir.Policy, num_queries: int) -> tuple[Diagnostic, ...]:
    """TTC400 for each bin-scoped limit the probe's worst case could break on a batch of
    ``num_queries``: the probe is spent before a query's bin is known, so the run refuses such a
    policy before it spends anything; this is that rule (the ledger's), applied before planning.
    Prompt token counts are unknown here: counted as 0, so only a certain overrun is reported."""
    diagnostics = Diagnostics(policy.source)
    _probe_budget(policy, num_queries, diagnostics)
    return diagnostics.sorted()


def _probe_budget(policy: ir.Policy, num_queries: int, diagnostics: Diagnostics) -> None:
    if isinstance(policy.allocation, ir.Bandit):  # one bin, known from the start: no such risk
        return
    # the run's own rule, imported here only: the rest of the language needs no runtime
    from ttcdsl.runtime.ledger import PROBE_OVERRUN_HINT, enforced_limits, limits_from_policy, probe_overruns

    declared = enforced_limits(policy)
    overruns = probe_overruns(
        limits_from_policy(policy, num_queries), probe=policy.probe,
        max_tokens=policy.sampling.max_tokens, prompt_bounds={},
        query_ids=[str(i) for i in range(num_queries)],
    )
    for index, sentence in overruns:
        diagnostics.error(
            "TTC400",
            f"with {num_queries} queries, {sentence}",
            declared[index].span,
            label="the probe alone may break this",
            help=PROBE_OVERRUN_HINT,
        )
