"""bptt_check: verify hand-derived backpropagation-through-time gradients.

The one obvious entry point::

    >>> import bptt_check
    >>> result = bptt_check.check("h_1.T @ (yhat_1 - y_1) + h_2.T @ (yhat_2 - y_2)", "dL/dW_hy")
    >>> result.verdict
    'equivalent'

``check`` returns a frozen :class:`CheckResult` (``str`` is the CLI's text,
``to_dict()`` its JSON). A :class:`Checker` computes the truth once for many
answers to one target; a :class:`Grader` adds rubrics and batches;
:mod:`bptt_check.testing` checks your own BPTT code with hypothesis.
"""

from typing import TYPE_CHECKING, Any

from .errors import (
    BpttCheckError,
    BudgetExceeded,
    ChainError,
    CircularError,
    ConfigError,
    ExpressionError,
    FileFormatError,
    InternalError,
    LimitError,
    ParseError,
    ShapeError,
    UnknownNameError,
)
from .model import RNN, Ref, Target

if TYPE_CHECKING:  # pragma: no cover
    from .compare import Checker, Settings, check
    from .language import Notation, parse, parse_target, to_latex, to_plain
    from .grading import GradeResult, Grader, Question, Rubric, Summary
    from .results import CheckResult, Counterexample, Diagnosis, Evidence

# The engine pulls in sympy and lark; load it on first use so that
# `import bptt_check` (and the pytest plugin) stays cheap.
_LAZY = {
    "check": "compare",
    "Checker": "compare",
    "Settings": "compare",
    "Notation": "language",
    "parse": "language",
    "parse_target": "language",
    "to_plain": "language",
    "to_latex": "language",
    "CheckResult": "results",
    "Counterexample": "results",
    "Diagnosis": "results",
    "Evidence": "results",
    "Grader": "grading",
    "Question": "grading",
    "Rubric": "grading",
    "GradeResult": "grading",
    "Summary": "grading",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bptt_check' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "check",
    "Checker",
    "Settings",
    "CheckResult",
    "Counterexample",
    "Diagnosis",
    "Evidence",
    "Grader",
    "Question",
    "Rubric",
    "GradeResult",
    "Summary",
    "RNN",
    "Ref",
    "Target",
    "Notation",
    "parse",
    "parse_target",
    "to_plain",
    "to_latex",
    "BpttCheckError",
    "BudgetExceeded",
    "ChainError",
    "CircularError",
    "ConfigError",
    "ExpressionError",
    "FileFormatError",
    "InternalError",
    "LimitError",
    "ParseError",
    "ShapeError",
    "UnknownNameError",
]
__version__ = "0.1.0"
