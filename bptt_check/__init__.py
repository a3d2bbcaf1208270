"""bptt_check: verify hand-derived backpropagation-through-time gradients."""

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
from .model import RNN, Ref, Target

__all__ = [
    "RNN",
    "Ref",
    "Target",
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
