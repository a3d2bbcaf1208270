"""The evaluator: children before parents without recursion, each distinct node once, both backends alike."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from bptt_check.evaluate import FloatBackend, _Evaluator, Deadline, evaluate
from bptt_check.language.ast import Binary, Chain, Name, Neg, Number, Partial, Transpose, postorder
from bptt_check.model import RNN, Ref

P = 3
RNG = np.random.default_rng(0)


def _values(model: RNN) -> dict[Ref, np.ndarray]:
    return {ref: RNG.standard_normal((P, *model.shape(ref))) for ref in model.refs()}


def _no_partials(num: Ref, den: Ref, reading: str) -> np.ndarray:
    raise AssertionError("no partial is needed here")


def test_a_sum_thousands_of_terms_deep_evaluates_without_recursion() -> None:
    model = RNN(steps=1000)
    values = _values(model)
    acc = None
    for t in range(1, 1001):  # as the parser unrolls sum_t: a left-deep chain of 1000 +
        h = Name(Ref("h", t), (1, 2))
        term = Binary("@", Transpose(h, (2, 1)), Binary("-", Name(Ref("yhat", t), (1, 2)), Name(Ref("y", t), (1, 2)), (1, 2)), (2, 2))
        acc = term if acc is None else Binary("+", acc, term, (2, 2))
    assert acc is not None
    got = evaluate(acc, FloatBackend(values, _no_partials, model))
    want = sum(
        np.swapaxes(values[Ref("h", t)], 1, 2) @ (values[Ref("yhat", t)] - values[Ref("y", t)]) for t in range(1, 1001)
    )
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_deep_chain_of_signs_evaluates() -> None:
    model = RNN()
    values = _values(model)
    e = Name(Ref("h", 1), (1, 2))
    for _ in range(5001):
        e = Neg(e, (1, 2))
    np.testing.assert_array_equal(evaluate(e, FloatBackend(values, _no_partials, model)), -values[Ref("h", 1)])


def test_shared_subexpressions_are_evaluated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DAG whose unfolded tree has 2**60 leaves: one evaluation per distinct node."""
    model = RNN()
    values = _values(model)
    e = Name(Ref("h", 1), (1, 2))
    half = Number(Fraction(1, 2))
    for _ in range(60):
        e = Binary("-", e, Binary("*", half, e, (1, 2)), (1, 2))  # e - e/2
    calls: list[object] = []
    original = _Evaluator._eval

    def counting(self: _Evaluator, node: object) -> np.ndarray:
        calls.append(node)
        return original(self, node)  # type: ignore[arg-type]

    monkeypatch.setattr(_Evaluator, "_eval", counting)
    got = evaluate(e, FloatBackend(values, _no_partials, model))
    assert len(calls) == len(postorder(e)) == 1 + 2 * 60 + 1  # h_1, the number 1/2, two nodes per level
    np.testing.assert_allclose(got, values[Ref("h", 1)] * 2.0**-60)


def test_a_chain_of_partials_is_contracted_not_evaluated_factor_by_factor() -> None:
    """A chain's factors are read once each, by the contraction (a 500-factor chain included)."""
    model = RNN()
    values = _values(model)
    eye = np.broadcast_to(np.eye(2), (P, 2, 2))
    jac = {
        (Ref("L"), Ref("z", 1)): RNG.standard_normal((P, 2)),
        (Ref("z", 1), Ref("z", 1)): eye,
    }
    seen: list[tuple[Ref, Ref]] = []

    def partial(num: Ref, den: Ref, reading: str) -> np.ndarray:
        seen.append((num, den))
        return jac[(num, den)]

    first = Partial(Ref("L"), Ref("z", 1), (1, 2), (2,))
    ident = Partial(Ref("z", 1), Ref("z", 1), (2, 2), (2, 2))
    chain = Chain((first,) + (ident,) * 499, (1, 2), (2,))
    got = evaluate(chain, FloatBackend(values, partial, model))
    np.testing.assert_allclose(got, jac[(Ref("L"), Ref("z", 1))].reshape(P, 1, 2))
    assert len(seen) == 500


def test_the_deadline_is_checked_between_nodes() -> None:
    from bptt_check.errors import BudgetExceeded

    model = RNN()
    e = Name(Ref("h", 1), (1, 2))
    for _ in range(10):
        e = Neg(e, (1, 2))
    deadline = Deadline(0.0)
    deadline.end = 0.0  # already past
    with pytest.raises(BudgetExceeded):
        evaluate(e, FloatBackend(_values(model), _no_partials, model), deadline=deadline)
