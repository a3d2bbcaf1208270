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

from .compare import Checker, Settings, check
from .errors import (
    BpttCheckError,
    BudgetExceeded,
    ChainError,
    ConfigError,
    ExpressionError,
    FileFormatError,
    InternalError,
    LimitError,
    ParseError,
    ShapeError,
    UnknownNameError,
)
from .language import Notation, parse, parse_target, to_latex, to_plain
from .model import RNN, Ref, Target
from .results import CheckResult, Counterexample, Diagnosis, Evidence

__all__ = [
    "check",
    "Checker",
    "Settings",
    "CheckResult",
    "Counterexample",
    "Diagnosis",
    "Evidence",
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
