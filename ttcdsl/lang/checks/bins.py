"""Bins, their cuts, and one strategy per bin; references to bins from anywhere."""

from __future__ import annotations

from ttcdsl.lang import ast
from ttcdsl.lang.checks.context import CheckContext
from ttcdsl.lang.checks.twice import given_twice
from ttcdsl.lang.diagnostics import Note, did_you_mean
from ttcdsl.lang.vocabulary import STRATEGIES


def check_bins(program: ast.Program, ctx: CheckContext) -> ast.Program:
    symbols = ctx.symbols
    diagnostics = ctx.diagnostics
    decl = symbols.bins_decl
    if decl is not None:
        _check_key(decl, ctx)
        _check_cuts(decl, ctx)
        seen: dict[str, ast.Name] = {}
        for name in decl.names:
            if name.text in seen:
                given_twice(ctx, f"bin '{name.text}' is named twice", name.span, seen[name.text].span,
                            label="second use of this name", help="give every bin its own name",
                            first_label="first named here")
            seen.setdefault(name.text, name)
        if symbols.probe is None:
            diagnostics.error(
                "TTC307",
                "bins are computed from probe samples, but the policy has no probe",
                decl.span,
                label="needs `probe N samples`",
                help="add `probe 4 samples` (the probe is spent on every query first)",
            )

    strategies: dict[str, ast.StrategyDecl] = {}
    for statement in program.statements:
        match statement:
            case ast.StrategyDecl(bin=bin_name, options=options):
                if check_bin_reference(bin_name, ctx, code="TTC301", what="strategy"):
                    strategies.setdefault(bin_name.text, statement)
                for invocation in options:
                    check_invocation(invocation, ctx, aggregation_only=False)
            case ast.AnswerDecl(aggregation=invocation):
                check_invocation(invocation, ctx, aggregation_only=True)
            case ast.SamplingBlock(bin=bin_name) | ast.StopBlock(bin=bin_name) if bin_name:
                check_bin_reference(bin_name, ctx, code="TTC110", what="block")

    if decl is not None and symbols.answer is None and not _is_bandit(ctx):
        for name in decl.names:
            if name.text not in strategies:
                diagnostics.error(
                    "TTC300",
                    f"bin '{name.text}' has no strategy",
                    name.span,
                    label="no `strategy` for this bin",
                    help=f"add `strategy {name.text} = majority_vote`, or an `answer` statement "
                    "as the default for every bin",
                )
    return program


def _is_bandit(ctx: CheckContext) -> bool:
    allocate = ctx.symbols.allocate
    return allocate is not None and isinstance(allocate.allocation, ast.Bandit)


def check_bin_reference(name: ast.Name, ctx: CheckContext, *, code: str, what: str) -> bool:
    """Reports TTC305 (no bins at all) or `code` (no such bin); True when the bin exists."""
    bins = ctx.symbols.bins
    if ctx.symbols.bins_decl is None:
        ctx.diagnostics.error(
            "TTC305",
            f"this {what} names bin '{name.text}', but the policy declares no bins",
            name.span,
            label="no bins declared",
            help="add `bins by difficulty quantiles [...] as ...`, or drop the bin name",
        )
        return False
    if name.text not in bins:
        ctx.diagnostics.error(
            code,
            f"there is no bin named '{name.text}'",
            name.span,
            label="unknown bin",
            help=did_you_mean(name.text, bins) or "bins: " + ", ".join(bins),
        )
        return False
    return True


def check_invocation(invocation: ast.Invocation, ctx: CheckContext, *, aggregation_only: bool) -> None:
    diagnostics = ctx.diagnostics
    name = invocation.name.text
    kind = STRATEGIES.get(name)
    if kind is None:
        diagnostics.error(
            "TTC104",
            f"unknown {'aggregation' if aggregation_only else 'strategy'} '{name}'",
            invocation.name.span,
            label="no such strategy",
            help=did_you_mean(name, STRATEGIES) or "strategies: " + ", ".join(STRATEGIES),
        )
        return
    if aggregation_only and not kind.is_aggregation:
        diagnostics.error(
            "TTC308",
            f"'{name}' is a spending strategy, not a way to aggregate answers",
            invocation.name.span,
            label="not an aggregation",
            help="use majority_vote, best_of_n(scorer) or weighted_vote(scorer)",
        )
        return
    expected = 1 if kind.takes_scorer else 0
    if len(invocation.args) != expected:
        usage = f"{name}(scorer)" if kind.takes_scorer else name
        diagnostics.error(
            "TTC200",
            f"{name} takes {'one scorer' if expected else 'no arguments'}, "
            f"{len(invocation.args)} given",
            invocation.span,
            label="wrong number of arguments",
            help=f"write `{usage}`",
        )
        return
    if kind.takes_scorer:
        arg = invocation.args[0]
        if not isinstance(arg, ast.Name):
            diagnostics.error(
                "TTC201",
                f"{name} expects a scorer name",
                arg.span,
                label="not a scorer name",
                help=f"declare a scorer and pass its name: {name}(prm)",
            )
        elif arg.text not in ctx.symbols.scorers:
            diagnostics.error(
                "TTC111",
                f"unknown scorer '{arg.text}'",
                arg.span,
                label="no scorer of this name",
                help=did_you_mean(arg.text, ctx.symbols.scorers)
                or f'declare it: `scorer {arg.text} = reward_model "MODEL"`',
            )
    if name == "keep_probe" and ctx.symbols.probe is None:
        diagnostics.error(
            "TTC605",
            "keep_probe answers from the probe, but the policy has no probe",
            invocation.span,
            label="no probe to keep",
            help="add `probe N samples`, or choose another strategy",
        )


def _check_key(decl: ast.BinsDecl, ctx: CheckContext) -> None:
    key = decl.key
    if key.text == "difficulty":
        if ctx.symbols.difficulty is None:
            ctx.diagnostics.error(
                "TTC306",
                "bins by difficulty, but the policy defines no difficulty",
                key.span,
                label="no `difficulty = ...` statement",
                help="add `difficulty = EXPR`, or bin by a feature name",
            )
    elif key.text not in ctx.symbols.features:
        ctx.diagnostics.error(
            "TTC101",
            f"unknown feature '{key.text}'",
            key.span,
            label="bins must be by difficulty or a feature",
            help=did_you_mean(key.text, [*ctx.symbols.features, "difficulty"])
            or "define it with `feature NAME = EXPR`",
        )


def _check_cuts(decl: ast.BinsDecl, ctx: CheckContext) -> None:
    cuts, names = decl.cuts, decl.names
    if not cuts or len(names) != len(cuts) + 1:
        ctx.diagnostics.error(
            "TTC304",
            f"{len(cuts)} cut{'s' if len(cuts) != 1 else ''} make {len(cuts) + 1} bins, "
            f"but {len(names)} name{'s are' if len(names) != 1 else ' is'} given",
            decl.names[0].span.cover(decl.names[-1].span),
            label=f"expected {len(cuts) + 1} names" if cuts else "at least one cut is needed",
            help="give one more name than there are cuts",
        )
    quantiles = decl.method.text == "quantiles"
    previous: ast.Number | None = None
    for cut in cuts:
        if quantiles and not 0 < cut.value < 1:
            ctx.diagnostics.error(
                "TTC302",
                f"quantile {cut.literal} is not strictly between 0 and 1",
                cut.span,
                label="outside (0, 1)",
                help="quantiles are fractions of the batch, e.g. [0.3, 0.6, 0.9]",
            )
        elif previous is not None and cut.value <= previous.value:
            ctx.diagnostics.error(
                "TTC302" if quantiles else "TTC303",
                f"{decl.method.text} must be strictly increasing: "
                f"{cut.literal} comes after {previous.literal}",
                cut.span,
                label="not larger than the previous cut",
                help="list the cuts from smallest to largest, without repeats",
            )
            return
        previous = cut
    if not quantiles and len(names) == len(cuts) + 1:
        _check_reachable(decl, ctx)


def _check_reachable(decl: ast.BinsDecl, ctx: CheckContext) -> None:
    """TTC311: absolute thresholds outside the range the key can take leave a bin no query
    reaches (`bins by agreement thresholds [0.5, 3]` on a share in [0, 1]). A query goes to the
    bin of the cuts at or below its key (a key equal to a cut goes up)."""
    from ttcdsl.lang.checks.candidates import value_range
    from ttcdsl.lang.numbers import format_number

    if decl.key.text == "difficulty":
        source = ctx.symbols.difficulty
    else:
        source = ctx.symbols.features.get(decl.key.text)
    reach = value_range(source.expr, ctx) if source is not None else None
    if reach is None:
        return
    low, high, _ = reach
    what = "the difficulty" if decl.key.text == "difficulty" else f"feature '{decl.key.text}'"
    bounds = (f"[{format_number(low)}, {format_number(high)}]" if low is not None and high is not None
              else f">= {format_number(low)}" if low is not None else f"<= {format_number(high)}")
    cuts = decl.cuts
    for index, name in enumerate(decl.names):
        below = cuts[index] if index < len(cuts) else None  # the bin's keys are < this cut
        above = cuts[index - 1] if index > 0 else None  # ... and >= this one
        if above is not None and high is not None and above.value > high:
            cut, side = above, f"from {above.literal} up, above every value it can take"
        elif below is not None and low is not None and below.value <= low:
            cut, side = below, f"below {below.literal}, under every value it can take"
        else:
            continue
        ctx.diagnostics.error(
            "TTC311",
            f"no query can reach bin '{name.text}': {what} lies in {bounds}, and the bin takes "
            f"values {side}",
            cut.span,
            label=f"outside {bounds}",
            help=f"put the thresholds inside {bounds}, or drop the bin",
            notes=(Note(span=source.span, message=f"{what} is defined here"),),
        )
