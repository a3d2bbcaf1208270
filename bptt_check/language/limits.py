"""Safety limits of the expression language: every one is checked before any heavy work.

They stop hostile input (huge texts, brackets nested thousands deep, sums of sums
of sums), not long answers: a sum written out over 1 000 steps, ``sum_{t=1}^{T}``
at T = 1 000 or a chain of 500 partials is ordinary. Nothing downstream recurses
over the tree (equality, hashing, printing and evaluation walk it with explicit
stacks), so the tree's depth after unrolling is not limited.
"""

MAX_TEXT_LENGTH = 500_000
"""Characters in one expression (a 1 000-term sum written out in LaTeX is 100 000 to 300 000)."""

MAX_NESTING = 64
"""Brackets ( [ { open at once; counted before parsing so that nothing recurses deeply."""

MAX_NUMBER_DIGITS = 30
"""Digits of a number's mantissa."""

MAX_EXPONENT_DIGITS = 3
MAX_NUMBER_EXPONENT = 30
"""A number's decimal exponent (1e-3) must lie within ±30."""

MAX_POWER = 16
"""|k| of a power's literal exponent (h**2, W_hh^{-1})."""

MAX_NODES = 100_000
"""AST nodes after sums are unrolled: a double sum ∑_t ∑_{k≤t} of chains fits up to T ≈ 180 (refusing a hostile
sum of sums at this limit costs about 2 s of CPU)."""

MAX_TOKENS = 50_000
"""Tokens of the text (operands, operators, brackets). A token makes about one AST node, so this is
the node limit applied before parsing: long texts are refused before lark does the work."""

MAX_RUN = 16
"""Consecutive prefix or postfix operators of one kind (signs, transposes, indices, sums, functions)."""

MAX_NAME_LENGTH = 64
"""Names longer than this are shown truncated in messages and get no suggestions."""

MAX_DEPTH = 200
"""Nesting of the text as written: levels of the parse tree (brackets, prefix operators, function
calls), which the resolver walks recursively. A flat sum or product of any length is one level;
a sum unrolled over T steps adds no level. 64 brackets, each holding an operator, fit."""
