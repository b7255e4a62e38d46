"""The check passes, in order. Each is `check_x(program, ctx) -> program`: it reads the AST,
reports into `ctx.diagnostics` and returns the program unchanged (no pass mutates its input).
All passes run, so a file's every problem is reported at once."""

from __future__ import annotations

from collections.abc import Callable

from ttcdsl.lang import ast
from ttcdsl.lang.checks.allocation import check_allocation
from ttcdsl.lang.checks.bins import check_bins
from ttcdsl.lang.checks.budget import check_budget
from ttcdsl.lang.checks.candidates import check_candidates
from ttcdsl.lang.checks.constants import check_constants
from ttcdsl.lang.checks.context import CheckContext, Symbols
from ttcdsl.lang.checks.definitions import check_definitions
from ttcdsl.lang.checks.expressions import check_expressions
from ttcdsl.lang.checks.observability import check_observability
from ttcdsl.lang.checks.sampling import check_sampling
from ttcdsl.lang.checks.structure import check_structure
from ttcdsl.lang.diagnostics import Diagnostics

Check = Callable[[ast.Program, CheckContext], ast.Program]

CHECKS: tuple[Check, ...] = (
    check_structure,
    check_definitions,
    check_expressions,
    check_constants,
    check_sampling,
    check_bins,
    check_budget,
    check_allocation,
    check_candidates,
    check_observability,
)


def run_checks(program: ast.Program) -> tuple[ast.Program, Diagnostics]:
    """Runs every check; returns the program and the diagnostics (errors and warnings)."""
    ctx = CheckContext(diagnostics=Diagnostics(program.source), symbols=Symbols.collect(program))
    for check in CHECKS:
        program = check(program, ctx)
    return program, ctx.diagnostics
