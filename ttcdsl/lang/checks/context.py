"""What every check pass receives besides the program: the diagnostics bag and the symbols."""

from __future__ import annotations

from dataclasses import dataclass, field

from ttcdsl.lang import ast
from ttcdsl.lang.diagnostics import Diagnostics


@dataclass(slots=True)
class Symbols:
    """Definitions collected once from the program (first definition wins; duplicates are the
    structure pass's business)."""

    features: dict[str, ast.FeatureDecl] = field(default_factory=dict)
    feature_order: dict[str, int] = field(default_factory=dict)  # statement index
    scorers: dict[str, ast.ScorerDecl] = field(default_factory=dict)
    bins: dict[str, ast.Name] = field(default_factory=dict)
    bins_decl: ast.BinsDecl | None = None
    strategies: dict[str, ast.StrategyDecl] = field(default_factory=dict)  # bin -> strategy
    difficulty: ast.DifficultyDecl | None = None
    probe: ast.ProbeDecl | None = None
    offline: ast.OfflineDecl | None = None
    allocate: ast.AllocateDecl | None = None
    answer: ast.AnswerDecl | None = None
    budget: ast.BudgetBlock | None = None

    @classmethod
    def collect(cls, program: ast.Program) -> Symbols:
        symbols = cls()
        for index, statement in enumerate(program.statements):
            match statement:
                case ast.FeatureDecl(name=name):
                    if name.text not in symbols.features:
                        symbols.features[name.text] = statement
                        symbols.feature_order[name.text] = index
                case ast.ScorerDecl(name=name):
                    symbols.scorers.setdefault(name.text, statement)
                case ast.BinsDecl(names=names) if symbols.bins_decl is None:
                    symbols.bins_decl = statement
                    for bin_name in names:
                        symbols.bins.setdefault(bin_name.text, bin_name)
                case ast.StrategyDecl(bin=bin_name):
                    symbols.strategies.setdefault(bin_name.text, statement)
                case ast.DifficultyDecl() if symbols.difficulty is None:
                    symbols.difficulty = statement
                case ast.ProbeDecl() if symbols.probe is None:
                    symbols.probe = statement
                case ast.OfflineDecl() if symbols.offline is None:
                    symbols.offline = statement
                case ast.AllocateDecl() if symbols.allocate is None:
                    symbols.allocate = statement
                case ast.AnswerDecl() if symbols.answer is None:
                    symbols.answer = statement
                case ast.BudgetBlock() if symbols.budget is None:
                    symbols.budget = statement
        return symbols


@dataclass(slots=True)
class CheckContext:
    diagnostics: Diagnostics
    symbols: Symbols
    # the budget limits that passed their own checks (set by the budget pass, read by the
    # allocation pass: fixed counts against the per-query bounds)
    budget_limits: list[ast.BudgetItem] = field(default_factory=list)
