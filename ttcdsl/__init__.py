"""ttcdsl: spend LLM test-time compute where it pays.

The public entry point for the language is :func:`load_policy`; it returns the checked
:class:`~ttcdsl.lang.ir.Policy` or raises :class:`~ttcdsl.lang.diagnostics.DiagnosticError`
carrying every problem found. Names are imported lazily so that importing one part of the package
(the samples table, say) does not pay for the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "load_policy": "ttcdsl.lang.api",
    "parse_policy": "ttcdsl.lang.api",
    "Diagnostic": "ttcdsl.lang.diagnostics",
    "DiagnosticError": "ttcdsl.lang.diagnostics",
    "Policy": "ttcdsl.lang.ir",
}

__all__ = [*_LAZY, "__version__"]

if TYPE_CHECKING:
    from ttcdsl.lang.api import load_policy, parse_policy
    from ttcdsl.lang.diagnostics import Diagnostic, DiagnosticError
    from ttcdsl.lang.ir import Policy


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ttcdsl' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
