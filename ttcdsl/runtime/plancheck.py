"""A plan must say what its policy says: every plan field a run reads is checked against it.

``load_plan`` checks a plan's shape; this checks its content against the policy whose sha256 the
plan records (``policy.source_sha256``) and whose allocation mode it has (both checked by ``ttc
run`` before this). A plan edited by hand (``probe:
40`` where the policy says 4, a bin renamed, an allocation above the policy's per-query maximum)
would otherwise be executed as written and spend what the policy forbids. What the policy alone
determines (probe, mode, objective, binning key/method/cuts, bins and their strategies, sampling
and stop rules, the bandit's settings) must be equal; what the planner chose (the binning edges of
quantile bins, the allocation, a bin's strategy and tuned thresholds among its candidates) must be
what the planner could have chosen (one of the listed candidates; sample counts the policy allows
in that bin; threshold edges equal to the thresholds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ttcdsl.errors import UserError
from ttcdsl.lang import ir
from ttcdsl.samples.errors import FileFormatError


def check_plan_against_policy(plan: Mapping[str, Any], policy: ir.Policy, plan_path) -> None:
    """Refuse ``plan`` (read from ``plan_path``) where a field disagrees with ``policy``; the
    error names the file and the field."""
    from ttcdsl.planner.report import sampling_fields, source_text

    def said(value: Any) -> str:
        return "nothing" if value is None else repr(value)  # a field one side lacks, not 'None'

    def fail(field: str, mine: Any, theirs: Any) -> None:
        raise FileFormatError(
            Path(plan_path),
            f"the plan says {said(mine)}, but the policy says {said(theirs)}",
            field=field,
            hint="the plan was edited by hand or made from another policy; re-plan with ttc plan",
        )

    def same(field: str, mine: Any, theirs: Any) -> None:
        if not _equal(mine, theirs):
            fail(field, mine, theirs)

    from ttcdsl.planner.build import allocation_mode

    same("policy.name", plan["policy"]["name"], policy.name)
    same("mode", plan["mode"], allocation_mode(policy))
    same("objective", plan["objective"], policy.objective)
    if "probe" in plan:  # plans made before the field existed run the policy's probe
        same("probe", plan["probe"], policy.probe)
    binning = plan.get("binning")
    if (binning is None) != (policy.binning is None):
        fail("binning", binning, None if policy.binning is None else policy.binning.key)
    if binning is not None:
        same("binning.key", binning["key"], policy.binning.key)
        same("binning.method", binning.get("method", policy.binning.method), policy.binning.method)
        same("binning.cuts", binning.get("cuts", list(policy.binning.cuts)), list(policy.binning.cuts))
        if policy.binning.method == "thresholds":
            same("binning.edges", binning["edges"], list(policy.binning.cuts))
    if "budget" in plan:
        # the run keeps the policy's limits; a plan whose budget says otherwise was edited and
        # showed limits (in the run directory's copy) that were never applied
        from ttcdsl.planner.report import budget_entries

        declared = [entry for _, entry in budget_entries(policy)]
        mine = plan["budget"] if isinstance(plan["budget"], list) else None
        if mine is None or len(mine) != len(declared):
            fail("budget", plan["budget"] if mine is None else [b.get("label") if isinstance(b, dict)
                 else b for b in mine], [d["label"] for d in declared])
        for k, (entry, theirs) in enumerate(zip(mine, declared)):
            if not isinstance(entry, dict):
                fail(f"budget[{k}]", entry, theirs["label"])
            for key in ("label", "kind", "unit", "bin", "value"):
                if key in entry:
                    same(f"budget[{k}].{key}", entry[key], theirs[key])
    bins = plan["bins"]
    if len(bins) != len(policy.bins):
        fail("bins", [b["name"] for b in bins], [b.name for b in policy.bins])
    from ttcdsl.planner.candidates import ChoiceError, apply_plan_choices

    try:
        # a bin with candidates runs the one the plan chose: it must be one the policy lists
        policy = apply_plan_choices(policy, plan)
    except ChoiceError as error:
        raise FileFormatError(
            Path(plan_path), str(error), field=error.field,
            hint="the plan was edited by hand or made from another policy; re-plan with ttc plan",
        ) from None
    allowed = _allowed_counts(policy, plan)
    uniform = plan.get("uniform_choice")
    if uniform is not None:
        # the planner chose uniform (ttcdsl.planner.choice): every bin runs the uniform counts,
        # which any count the policy's per-query bounds allow may be (a keep_probe bin's too),
        # and the policy's answer strategy
        answer = {"keep_probe": "majority_vote"}.get(policy.answer.kind, policy.answer.kind)
        same("uniform_choice.strategy", uniform.get("strategy"), answer)
        same("uniform_choice.scorer", uniform.get("scorer"), policy.answer.scorer)
        every = set().union(*_uniform_counts(policy, plan))
        allowed = [every for _ in policy.bins]
        options = uniform.get("allocation") if isinstance(uniform.get("allocation"), list) else []
        for j, option in enumerate(options):
            count = option.get("samples") if isinstance(option, dict) else option
            if count not in every:
                counts = sorted(every)
                raise FileFormatError(
                    Path(plan_path),
                    f"{count!r} samples per query, but the policy allows {counts[0]}..{counts[-1]}",
                    field=f"uniform_choice.allocation[{j}].samples",
                    hint="the plan was edited by hand; re-plan with ttc plan",
                )
    for i, (spec, mine) in enumerate(zip(policy.bins, bins)):
        where = f"bins[{i}]"
        same(f"{where}.name", mine["name"], spec.name)
        same(f"{where}.strategy", mine["strategy"], spec.strategy.kind)
        if "scorer" in mine:
            same(f"{where}.scorer", mine["scorer"], spec.strategy.scorer)
        theirs = sampling_fields(spec.sampling)
        for key, value in mine["sampling"].items():
            same(f"{where}.sampling.{key}", value, theirs.get(key))
        if "stop" in mine:
            same(f"{where}.stop", mine["stop"], [source_text(policy, r.span) for r in spec.stop])
        if plan["mode"] == "bandit":
            continue
        for j, option in enumerate(mine["allocation"]):
            if option["samples"] not in allowed[i]:
                counts = sorted(allowed[i])
                span = f"{counts[0]}..{counts[-1]}" if len(counts) > 1 else str(counts[0])
                raise FileFormatError(
                    Path(plan_path),
                    f"{option['samples']} samples per query, but the policy allows {span} in "
                    f"bin {spec.name!r}",
                    field=f"{where}.allocation[{j}].samples",
                    hint="the plan was edited by hand; re-plan with ttc plan",
                )
    if isinstance(policy.allocation, ir.Bandit) and plan.get("bandit") is not None:
        bandit = policy.allocation
        for key, theirs in (
            ("round_samples", bandit.round_samples),
            ("explore", bandit.explore),
            ("solved", [source_text(policy, c.span) for c in bandit.solved]),
            ("bill", bandit.bill),
        ):
            if key in plan["bandit"]:
                same(f"bandit.{key}", plan["bandit"][key], theirs)


def _allowed_counts(policy: ir.Policy, plan: Mapping) -> list[set[int]]:
    """Per bin, the samples per query the planner may choose (its own rule, not a copy): with
    or without the cut at the calibration table's depth (``ttc plan --extrapolate`` lifts it)."""
    from ttcdsl.planner.problem import _allowed, option_levels

    out = [set() for _ in policy.bins]
    calibration = plan.get("calibration") or {}
    depths = [None]
    if calibration.get("samples_per_query"):
        depths.append(int(calibration["samples_per_query"][0]))
    for depth in depths:
        try:
            levels = option_levels(policy, depth)
        except UserError:
            continue  # the policy's minimum is past that depth: only the uncut counts apply
        for counts, row in zip(out, _allowed(policy, levels)):
            counts.update(levels[row].tolist())
    return out


def _uniform_counts(policy: ir.Policy, plan: Mapping) -> list[set[int]]:
    """The counts uniform allocation may give a query: the policy's per-query range
    (:func:`ttcdsl.planner.uniform.uniform_choice`'s rule; the planner cuts it at the
    calibration table's depth unless it extrapolates)."""
    from ttcdsl.planner.problem import option_levels

    return [set(option_levels(policy, None).tolist())]


def _equal(a: Any, b: Any) -> bool:
    """Plan values are YAML: floats are written to six significant digits, tuples as lists."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b
