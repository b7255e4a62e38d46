"""Generation: sampling parameters (known, in range, max_tokens explicit) and the probe size."""

from __future__ import annotations

from ttcdsl.lang import ast
from ttcdsl.lang.checks.context import CheckContext
from ttcdsl.lang.checks.twice import given_twice
from ttcdsl.lang.checks.values import check_range
from ttcdsl.lang.diagnostics import did_you_mean
from ttcdsl.lang.vocabulary import SAMPLING_PARAMS


def check_sampling(program: ast.Program, ctx: CheckContext) -> ast.Program:
    diagnostics = ctx.diagnostics
    global_max_tokens = False
    header = next((s for s in program.statements if isinstance(s, ast.PolicyDecl)), None)
    for statement in program.statements:
        if not isinstance(statement, ast.SamplingBlock):
            continue
        seen: dict[str, ast.Setting] = {}
        for setting in statement.settings:
            if setting.name.text in seen:
                # the last one won, silently: `max_tokens 512 ... max_tokens 4096` ran at 4096
                given_twice(ctx, f"{setting.name.text} is set twice in this sampling block", setting.span,
                            seen[setting.name.text].span, first_label="first set here")
                continue
            seen[setting.name.text] = setting
            param = SAMPLING_PARAMS.get(setting.name.text)
            if param is None:
                diagnostics.error(
                    "TTC106",
                    f"unknown sampling parameter '{setting.name.text}'",
                    setting.name.span,
                    label="not a sampling parameter",
                    help=did_you_mean(setting.name.text, SAMPLING_PARAMS)
                    or "parameters: " + ", ".join(SAMPLING_PARAMS),
                )
                continue
            if isinstance(setting.value, ast.String):
                diagnostics.error(
                    "TTC206",
                    f"{param.name} takes a number, not a string",
                    setting.value.span,
                    label="a string",
                    help=f"write e.g. `{param.name} 1`",
                )
                continue
            check_range(
                ctx,
                setting.value,
                what=param.name,
                integer=param.integer,
                low=param.low,
                high=param.high,
                low_open=param.low_open,
            )
            if param.name == "max_tokens" and statement.bin is None:
                global_max_tokens = True
    probe = ctx.symbols.probe
    if probe is not None:
        check_range(ctx, probe.count, what="the probe", integer=True, low=1)
    if not global_max_tokens and header is not None:
        diagnostics.error(
            "TTC404",
            "max_tokens is not set",
            header.span,
            label="this policy never says how long a completion may be",
            help="add `max_tokens N` to the sampling block, e.g. `sampling { max_tokens 1024 }`",
        )
    return program
