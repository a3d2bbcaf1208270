"""Long and deep answers through every stage: parse, print (plain and LaTeX), evaluate, compare and diagnose.

A real answer can be a sum of 1 000 terms, a chain of 500 partials or a product
nested as deep as the bracket limit: none of them is hostile, so none may hit a
cap or Python's recursion limit anywhere on the way to a verdict.

The model is small (T = 4) so that its truth is cheap; length comes from
spelling each step's term several ways and adding pairs of terms that cancel.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bptt_check.compare import Checker
from bptt_check.language import Chain, parse, to_latex, to_plain
from bptt_check.language.limits import MAX_NESTING
from bptt_check.model import RNN

pytestmark = pytest.mark.slow

T = 4
MODEL = RNN(steps=T)
MAX_TERMS = 1_000
MAX_CHAIN = 500
MAX_DEPTH = (MAX_NESTING - 2) // 2  # two brackets per level, and the term's own pair


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker("dL/dW_hy", model=MODEL)


def spell(t: int, kind: int, size: int) -> str:
    """Step t's term of dL/dW_hy = sum_t h_t.T @ (yhat_t - y_t), spelled one of five ways.

    ``size`` is the length of kind 3's chain (identity partials dz_t/dz_t) and the
    nesting depth of kind 4's products (0.5 * (2 * (…)), two brackets per level).
    """
    if kind == 0:
        return f"h_{t}.T @ (yhat_{t} - y_{t})"
    if kind == 1:
        return f"h_{t}.T @ dL/dz_{t}"
    if kind == 2:
        return f"dL/dz_{t} * dz_{t}/dW_hy"
    if kind == 3:
        return f"dL/dz_{t} * " + f"dz_{t}/dz_{t} * " * size + f"dz_{t}/dW_hy"
    depth = min(size, MAX_DEPTH)
    return "(0.5 * (2 * " * depth + f"h_{t}.T @ (yhat_{t} - y_{t})" + "))" * depth


@st.composite
def long_answers(draw: st.DrawFn) -> tuple[str, int | None]:
    """(answer, the step it misses or None): every step's term, and pairs ``+ X_s - Y_s`` that cancel."""
    pairs = draw(st.integers(0, (MAX_TERMS - T) // 2))
    missing = draw(st.none() | st.integers(1, T))
    kinds = st.integers(0, 4)
    long = st.integers(0, MAX_CHAIN)  # each step's own term: a chain of up to 500 partials
    short = st.integers(0, 3) | st.just(MAX_DEPTH)  # the many others: short, or nested to the limit
    terms = [("+", spell(t, draw(kinds), draw(long))) for t in range(1, T + 1) if t != missing]
    for _ in range(pairs):
        s = draw(st.integers(1, T))
        terms += [("+", spell(s, draw(kinds), draw(short))), ("-", spell(s, draw(kinds), draw(short)))]
    terms = draw(st.permutations(terms))
    text = " ".join(f"{sign} {term}" for sign, term in terms)
    return text.removeprefix("+ "), missing


def _longest(missing: int | None) -> tuple[str, int | None]:
    """The extremes, always run: 1 000 terms, chains of 500 partials, products nested to the bracket limit."""
    terms = [spell(t, 3, MAX_CHAIN) for t in range(1, T + 1) if t != missing]
    for i in range((MAX_TERMS - T) // 2):
        s = i % T + 1
        terms += [spell(s, i % 5, 2), "-" + spell(s, (i + 2) % 5, MAX_DEPTH if i % 50 == 0 else 1)]
    return " + ".join(terms).replace("+ -", "- "), missing


def _run_all_stages(checker: Checker, text: str, missing: int | None) -> None:
    parsed = parse(text, MODEL)
    expr = parsed.expr
    assert expr.shape == (2, 2)
    assert parse(to_plain(expr), MODEL, syntax="plain").expr == expr
    assert parse(to_latex(expr), MODEL, syntax="latex").expr == expr
    result = checker.check(text)  # evaluate (float and exact), compare, and diagnose a wrong answer
    if missing is None:
        assert result.verdict == "equivalent", result.message
    else:
        assert result.verdict == "not_equivalent", result.message
        assert "missing_term" in [d.code for d in result.diagnoses], result.message


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(long_answers())
@example(_longest(None))
@example(_longest(1))
def test_long_and_deep_answers_go_through_every_stage(checker: Checker, case: tuple[str, int | None]) -> None:
    text, missing = case
    _run_all_stages(checker, text, missing)


def test_a_chain_of_500_partials_is_one_chain(checker: Checker) -> None:
    text = spell(1, 3, MAX_CHAIN)
    expr = parse(text, MODEL).expr
    assert isinstance(expr, Chain) and len(expr.factors) == MAX_CHAIN + 2
    result = checker.check(" + ".join(spell(t, 3, MAX_CHAIN) for t in range(1, T + 1)))
    assert result.verdict == "equivalent", result.message


def test_nothing_needs_a_larger_recursion_limit() -> None:
    """The checks above run under Python's default limit: the package never raises it."""
    assert sys.getrecursionlimit() <= 1_000


def test_a_sum_over_300_steps_is_checked() -> None:
    """Past the old depth cap of 200: the canonical answer for dL/dW_hy at T = 300, proved right."""
    model = RNN(steps=300)
    result = Checker("dL/dW_hy", model=model).check("sum_{t=1}^{T} h_t.T @ (yhat_t - y_t)")
    assert result.verdict == "equivalent", result.message
