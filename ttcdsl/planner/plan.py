"""The plan artifact: what the planner decided and why, as versioned, human-readable YAML.

A plan is read by people (``ttc plan --explain``, code review of a checked-in plan) and by the
runtime (``ttc run PLAN``), so it holds plain values only — numbers, strings, lists, mappings —
and :func:`load_plan` checks every field it relies on, naming the field when one is wrong.

Layout (``ttcdsl_plan: 1``)::

    policy:       name, file, source_sha256
    calibration:  table, content_sha256, queries, dropped, samples_per_query, probe_split,
                  extrapolated_beyond (samples per query past which counts are modelled; null:
                  every count can be replayed from the table)
    objective, mode (optimal | per_query | fixed | bandit), batch_size, stop_check
    binning:      key, method, cuts, edges (absolute values of the key), ties (cuts that fell
                  on a tied key value: value, tied_share, cuts, empty_bins), or null for one bin
    bins:         per bin: name, share, queries, key_range, strategy, scorer, sampling, stop,
                  allocation [{samples, share, queries}], predicted {accuracy, accuracy_se,
                  coverage, samples, samples_se, tokens, tokens_se}, curve {levels, value,
                  samples, tokens, extrapolated}; a bin with candidates (`one of`, `tuned`) also
                  has tuned (the chosen threshold of each tuned stop rule, in order; strategy and
                  scorer are the chosen ones) and candidates {considered, spend, spend_unit,
                  chosen {strategy, thresholds, value}, runner_up (the best other choice's value
                  at the same spend, or null), dropped (candidates the table cannot serve)}
    budget:       per limit: label, kind, unit, bin, value, bound, spent, binding, multiplier
    predicted:    accuracy, accuracy_se, coverage, samples, samples_se, tokens, tokens_se (per
                  query, probe included; tokens null when the table has no token counts)
    baseline:     uniform allocation at equal spend (the policy's answer strategy), the paired
                  difference on the calibration queries, and cross_fitted: the same difference
                  out of fold (:mod:`ttcdsl.planner.crossfit`), which the choice below reads
    uniform_choice: present when the plan runs uniform instead of the policy's allocation
                  (:mod:`ttcdsl.planner.choice`): strategy, scorer, samples, allocation, and the
                  policy's own policy_predicted and policy_baseline
    solver:       name, status, seconds, relaxation, dual_bound, gap, objective, rounding_loss,
                  cross_checks [{solver, status, objective, seconds}]
    bandit:       round_samples, explore, solved, bill (bandit mode only)
    candidate_search: method (enumeration | widened relaxation), assignments (of one choice per
                  bin) — only for a policy with candidates
    per_query:    rule, budget, multiplier, predicted_flat, probe_only, predictor {version,
                  model, features, neighbours, center, scale, fill, levels, points, count,
                  value, samples} (per_query mode only; :mod:`ttcdsl.planner.predictor`); the
                  one bin's allocation is then the calibration queries' histogram of counts
    timings, warnings, created_by
    plan_sha256:  the sha256 of everything above as written (:func:`content_digest`): a plan
                  edited after ``ttc plan`` wrote it no longer matches, and a run says its
                  predictions describe the plan as it was made, not as it runs
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ttcdsl.samples.atomic import atomic_writer
from ttcdsl.samples.errors import FileFormatError

PLAN_VERSION = 1
MODES = ("optimal", "per_query", "fixed", "bandit")


def bin_runs(plan: Mapping[str, Any], spec: Mapping[str, Any]) -> tuple[str, bool]:
    """The answer strategy a plan's bin ``spec`` runs, as a label (``weighted_vote(prm)``), and
    whether it is the plan's uniform choice: a plan that runs uniform (``uniform_choice``) still
    bins the queries, but every bin runs uniform's strategy, not the bin's own."""
    uniform = plan.get("uniform_choice")
    source = spec if uniform is None else uniform
    label = source["strategy"] + (f"({source['scorer']})" if source.get("scorer") else "")
    return label, uniform is not None


def dump_plan(plan: Mapping[str, Any]) -> str:
    """The plan as YAML text (keys in the order given, floats rounded for reading)."""
    return yaml.dump(
        _plain(plan), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )


DIGEST_FIELD = "plan_sha256"


def content_digest(plan: Mapping[str, Any]) -> str:
    """The sha256 of a plan's content as read back from its YAML (every field but the digest,
    keys sorted): a plan re-formatted by hand keeps it, a plan whose values changed does not."""
    import hashlib
    import json

    body = {k: v for k, v in plan.items() if k != DIGEST_FIELD}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def save_plan(plan: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write atomically (a crash never leaves half a plan behind), with its content digest,
    computed on the plan as it will be read back (floats rounded as written)."""
    text = dump_plan(with_digest(plan))
    with atomic_writer(path) as handle:
        handle.write(text)


def edited_after_planning(plan: Mapping[str, Any]) -> bool | None:
    """Whether a loaded plan's content differs from what ``ttc plan`` wrote; None where it
    cannot be told: a plan without its digest (removed by hand, or from before it was recorded)
    is not taken for unedited, since removing the digest is an edit that hides the others."""
    recorded = plan.get(DIGEST_FIELD)
    if recorded is None:
        return None
    return recorded != content_digest(plan)


def with_digest(plan: Mapping[str, Any]) -> dict[str, Any]:
    """``plan`` with its digest, as :func:`save_plan` writes it (for a plan made in memory)."""
    body = {k: v for k, v in plan.items() if k != DIGEST_FIELD}
    return {**body, DIGEST_FIELD: content_digest(yaml.safe_load(dump_plan(body)))}


def load_plan(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a plan file; every problem names the file and the field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(path, "no such plan file") from None
    except IsADirectoryError:
        raise FileFormatError(path, "a directory, not a plan file") from None
    except OSError as error:
        raise FileFormatError(path, f"cannot read the plan: {error}") from None
    from ttcdsl.file_kinds import misplaced_file
    from ttcdsl.samples.json_lines import decode_text

    found = misplaced_file(path, "a plan")
    if found is not None:
        raise FileFormatError(path, found[0], hint=found[1])
    text = decode_text(raw, path, None)  # a bad byte by its line and column
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise FileFormatError(path, f"not valid YAML: {getattr(error, 'problem', error)}", line=line) from None
    except RecursionError:  # yaml recurses once per nesting level; no plan nests deeply
        raise FileFormatError(path, "not a plan: YAML nested too deeply to read") from None
    validate_plan(data, path)
    return data


def validate_plan(data: Any, path: str | os.PathLike[str] = "<plan>") -> None:
    check = _Checker(Path(path))
    check.mapping(data, "")
    version = data.get("ttcdsl_plan")
    if version is None:
        raise FileFormatError(path, "not a ttcdsl plan (no 'ttcdsl_plan' version field)")
    if version != PLAN_VERSION:
        raise FileFormatError(
            path,
            f"plan format version {version!r}; this ttc reads version {PLAN_VERSION}",
            field="ttcdsl_plan",
            hint="re-create the plan with this version: ttc plan POLICY --calibration SAMPLES",
        )
    policy = check.mapping(data.get("policy"), "policy")
    check.string(policy.get("name"), "policy.name")
    check.string(policy.get("source_sha256"), "policy.source_sha256")
    if policy.get("file") is not None and not isinstance(policy["file"], str):  # "" when unnamed
        check.fail("policy.file", f"must be a path, got {_kind(policy['file'])}")
    # the sections the run and the simulator read by key: each of its kind, or absent
    check.count(data.get("probe"), "probe", low=0)
    if data.get("batch_size") is not None:
        check.count(data.get("batch_size"), "batch_size", low=1)
    for section in ("predicted", "baseline", "uniform_choice", "bandit", "calibration"):
        if data.get(section) is not None:
            check.mapping(data[section], section)
    # what a run reads back from the plan: checked here, before it spends anything (a report
    # reading a hand-edited "accuracy: high" crashed after the whole budget was spent)
    _check_figures(check, data.get("predicted"), "predicted")
    calibration = data.get("calibration") or {}
    if calibration.get("samples_per_query") is not None:
        depth = check.sequence(calibration["samples_per_query"], "calibration.samples_per_query")
        if len(depth) != 2:
            check.fail("calibration.samples_per_query", f"must be [fewest, most], got {depth!r}")
        for i, value in enumerate(depth):
            check.count(value, f"calibration.samples_per_query[{i}]", low=0)
    uniform = data.get("uniform_choice")
    if uniform is not None:
        check.string(uniform.get("strategy"), "uniform_choice.strategy")
        _check_allocation(check, uniform.get("allocation"), "uniform_choice.allocation")
    if data.get("mode") not in MODES:
        check.fail("mode", f"must be one of {', '.join(MODES)}, got {data.get('mode')!r}")
    if data.get("objective") not in ("accuracy", "coverage"):
        check.fail("objective", f"must be accuracy or coverage, got {data.get('objective')!r}")
    score_columns = data.get("score_columns")
    if score_columns is not None:
        for scorer, column in check.mapping(score_columns, "score_columns").items():
            check.string(scorer, "score_columns")
            check.string(column, f"score_columns.{scorer}")
    binning = data.get("binning")
    if binning is not None:
        check.mapping(binning, "binning")
        check.string(binning.get("key"), "binning.key")
        edges = check.numbers(binning.get("edges"), "binning.edges")
        if any(b < a for a, b in zip(edges, edges[1:])):
            check.fail("binning.edges", "must be non-decreasing")
    bins = check.sequence(data.get("bins"), "bins")
    if not bins:
        check.fail("bins", "a plan has at least one bin")
    n_bins = 1 if binning is None else len(binning["edges"]) + 1
    if len(bins) != n_bins:
        check.fail("bins", f"{len(bins)} bins, but the binning has {n_bins}")
    for i, spec in enumerate(bins):
        where = f"bins[{i}]"
        check.mapping(spec, where)
        check.string(spec.get("name"), f"{where}.name")
        check.string(spec.get("strategy"), f"{where}.strategy")
        if "tuned" in spec:  # the chosen threshold of each tuned stop rule, in order
            check.numbers(spec["tuned"], f"{where}.tuned")
        sampling = check.mapping(spec.get("sampling"), f"{where}.sampling")
        tokens = sampling.get("max_tokens")
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
            check.fail(f"{where}.sampling.max_tokens", f"must be a positive integer, got {tokens!r}")
        if spec.get("predicted") is not None:
            _check_figures(check, check.mapping(spec["predicted"], f"{where}.predicted"),
                           f"{where}.predicted")
        if data["mode"] != "bandit":
            _check_allocation(check, spec.get("allocation"), f"{where}.allocation")
    if data["mode"] == "per_query":
        from ttcdsl.planner.predictor import CurvePredictor

        section = check.mapping(data.get("per_query"), "per_query")
        check.number(section.get("budget"), "per_query.budget")
        try:
            CurvePredictor.from_plan(section.get("predictor"))
        except ValueError as error:
            field, message = error.args
            check.fail("per_query.predictor" + (f".{field}" if field else ""), message)


def _check_allocation(check: _Checker, value: Any, where: str) -> None:
    """A mix of sample counts: options of ``samples`` and ``share``, the shares summing to 1."""
    allocation = check.sequence(value, where)
    if not allocation:
        check.fail(where, "is empty")
    total = 0.0
    for j, option in enumerate(allocation):
        at = f"{where}[{j}]"
        check.mapping(option, at)
        check.count(option.get("samples"), f"{at}.samples", low=0)
        share = check.number(option.get("share"), f"{at}.share")
        if not 0 <= share <= 1:
            check.fail(f"{at}.share", f"must be in [0, 1], got {share}")
        total += share
    if abs(total - 1) > 1e-6:
        check.fail(where, f"shares sum to {total:.6g}, not 1")


# A prediction's figures: rates in [0, 1], spends and standard errors at least 0; each a finite
# number or null (unknown).
_RATES = ("accuracy", "coverage", "tokens_unknown_share")
_SPENDS = ("samples", "tokens", "accuracy_se", "coverage_se", "samples_se", "tokens_se")


def _check_figures(check: _Checker, section: Mapping | None, where: str) -> None:
    if not section:
        return
    for name in (*_RATES, *_SPENDS):
        value = section.get(name)
        if value is None:
            continue
        number = check.number(value, f"{where}.{name}")
        if name in _RATES and not 0 <= number <= 1:
            check.fail(f"{where}.{name}", f"must be in [0, 1], got {value!r}")
        if name in _SPENDS and number < 0:
            check.fail(f"{where}.{name}", f"must be at least 0, got {value!r}")


COUNT_MAX = 2**31 - 1  # the most samples, queries or probe samples a plan may name


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, message: str) -> None:
        raise FileFormatError(self.path, message, field=field or None)

    def mapping(self, value: Any, field: str) -> dict:
        if not isinstance(value, dict):
            self.fail(field, f"must be a mapping, got {_kind(value)}")
        return value

    def sequence(self, value: Any, field: str) -> list:
        if not isinstance(value, list):
            self.fail(field, f"must be a list, got {_kind(value)}")
        return value

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(field, f"must be a non-empty string, got {_kind(value)}")
        return value

    def count(self, value: Any, field: str, *, low: int) -> int:
        """A whole number from ``low`` to :data:`COUNT_MAX` (a count no run could reach)."""
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= COUNT_MAX:
            self.fail(field, f"must be a whole number from {low} to {COUNT_MAX}, got {value!r}")
        return value

    def number(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(field, f"must be a finite number, got {value!r}")
        return float(value)

    def numbers(self, value: Any, field: str) -> list[float]:
        return [self.number(v, f"{field}[{i}]") for i, v in enumerate(self.sequence(value, field))]


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]


def _plain(value: Any) -> Any:
    """numpy scalars and arrays, tuples and floats made YAML-plain (NaN becomes null)."""
    import numpy as np

    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return v
        return float(f"{v:.6g}")  # six significant digits: plans are read by people
    return value


class _Dumper(yaml.SafeDumper):
    """Safe YAML with short lists of numbers kept on one line."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = bool(data) and all(isinstance(v, (int, float, bool, type(None))) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def plan_score_columns(plan: Mapping[str, Any]) -> dict[str, str]:
    """The reward-model scorer -> score column mapping the plan was calibrated with (``{}``: each
    scorer reads the column of its own name; plans made before the field existed have none)."""
    return dict(plan.get("score_columns") or {})
