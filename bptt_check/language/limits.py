"""Safety limits of the expression language: every one is checked before any heavy work."""

MAX_TEXT_LENGTH = 20_000
"""Characters in one expression."""

MAX_NESTING = 64
"""Brackets ( [ { open at once; counted before parsing so that nothing recurses deeply."""

MAX_NUMBER_DIGITS = 30
"""Digits of a number's mantissa."""

MAX_EXPONENT_DIGITS = 3
MAX_NUMBER_EXPONENT = 30
"""A number's decimal exponent (1e-3) must lie within ±30."""

MAX_POWER = 16
"""|k| of a power's literal exponent (h**2, W_hh^{-1})."""

MAX_NODES = 5_000
"""AST nodes after sums are unrolled."""

MAX_TOKENS = 5_000
"""Tokens of the text (operands, operators, brackets). A token makes about one AST node, so this is
the node limit applied before parsing: long texts are refused before lark does the work."""

MAX_RUN = 16
"""Consecutive prefix or postfix operators of one kind (signs, transposes, indices, sums, functions)."""

MAX_NAME_LENGTH = 64
"""Names longer than this are shown truncated in messages and get no suggestions."""

MAX_DEPTH = 200
"""Depth of the AST (after unrolling) and of the parse tree: deeper trees are refused, so that
consumers that recurse over the tree (equality, hashing, printing, evaluation) stay safe."""
