"""Exact arithmetic mod p: field laws, degree bounds, and the atoms' identities."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from bptt_check import RNN, Ref
from bptt_check.exact import PRIME, Exact, Gated, NoExactForm, indicator_of, matmul, sample_exact
from bptt_check.model import L_TOTAL

residue = st.integers(min_value=1, max_value=PRIME - 1).map(Exact.atom)


@given(residue, residue, residue)
def test_field_laws(a, b, c):
    assert (a + b) * c == a * c + b * c
    assert (a / b) * b == a
    assert a - a == 0
    assert (a ** -2) * a * a == 1


def test_fractions_are_exact():
    half = Exact.lift(Fraction(1, 2))
    assert half + half == 1
    assert (Exact.lift(3) * Fraction(1, 3)) == 1


def test_degree_bound_tracks_common_denominators():
    x, y = Exact.atom(5), Exact.atom(7)
    r = (x * x - 1) / (x * x + 1)      # degree 2 over degree 2
    assert (r.num, r.den_degree) == (2, 2)
    s = r + r                           # same denominator: no growth
    assert s.den_degree == 2 and s.num == 2
    t = r + y / (y + 1)                 # different denominators multiply
    assert t.den_degree == 3 and t.num == 3


def test_non_integer_power_has_no_exact_form():
    with pytest.raises(NoExactForm):
        Exact.atom(3) ** Fraction(1, 2)


@pytest.mark.parametrize("model", [RNN(), RNN(steps=3, input_size=1, hidden_size=3, output_size=4, biases=True), RNN(h0="zeros")])
def test_atoms_satisfy_the_models_identities(model):
    pts = sample_exact(model, k=2, seed=3)
    v = pts.values
    for t in model.steps_range():
        y = v[Ref("y", t)]
        assert all(sum(y[i, 0]) == 1 for i in range(2))
        yhat = v[Ref("yhat", t)]
        assert all(sum(yhat[i, 0]) == 1 for i in range(2))
        # tanh(a_t) rewritten through the table is h_t
        e2 = pts.exp(v[Ref("a", t)]) ** 2
        assert np.all((e2 - 1) / (e2 + 1) == v[Ref("h", t)])
        # log(yhat) = z - ell and exp(log(yhat)) = yhat
        assert np.all(pts.exp(pts.log(yhat)) == yhat)
    total = sum(v[Ref("L", t)] for t in model.loss_steps)
    assert np.all(total == v[L_TOTAL])


def test_unknown_logarithm_is_refused():
    pts = sample_exact(RNN(), k=1, seed=0)
    with pytest.raises(NoExactForm):
        pts.exp(pts.values[Ref("W_hh")])


def test_degree_bound_of_a_common_multiple_takes_each_factor_once():
    x, y = Exact.atom(5), Exact.atom(7)
    r = 1 / (x + 1)
    s = r * r / (y + 1)
    total = r + s  # ((x+1)(y+1) + 1) / ((x+1)**2 (y+1)): degrees 2 over 3
    assert total.den_degree == 3 and total.num == 2
    assert (total * r).den_degree == 4  # exponents add in a product
    assert ((1 / (x + 1)) ** 3).den_degree == 3


def test_sigmoid_points_use_one_exponential_atom():
    model = RNN(activation="sigmoid")
    pts = sample_exact(model, k=2, seed=1)
    for t in model.steps_range():
        e = pts.exp(pts.values[Ref("a", t)])
        assert np.all(e / (e + 1) == pts.values[Ref("h", t)])


def test_relu_states_are_indicator_atoms_times_pre_activations():
    """h = s·a with s² = s: relu/step know a, h and -a; every identity holds in every activation region."""
    model = RNN(steps=3, hidden_size=4, activation="relu")
    pts = sample_exact(model, k=2, seed=2)
    for t in model.steps_range():
        a, h = pts.values[Ref("a", t)], pts.values[Ref("h", t)]
        s = pts.step(a)
        assert all(isinstance(e, Gated) and len(e.terms) == 1 for e in s.flat)
        assert np.all(s * s == s) and np.all(s * (1 - s) == 0)
        assert np.all(pts.relu(a) == h) and np.all(pts.relu(h) == h) and np.all(s * a == h)
        assert np.all(pts.step(h) == s) and np.all(pts.step(-a) == 1 - s)
        assert np.all(pts.relu(-a) == h - a)  # relu(-a) = (1 - s)(-a)
        assert not np.any(h == a) and not np.any(h == 0)  # neither one region's value
        assert np.all(indicators(h) == s)
    with pytest.raises(NoExactForm):
        pts.relu(pts.values[Ref("W_hh")])


def indicators(h):
    return np.vectorize(indicator_of, otypes=[object])(h)


def test_indicator_atoms_reduce_multilinearly():
    rs = (11, 13)
    s, u = Gated.indicator(0, rs), Gated.indicator(1, rs)
    x = Exact.atom(5)
    assert (s * x) * (s * x) == s * x * x          # s² = s
    assert s * u != u and s * u != s
    assert (1 - s) * s * x + s * x == s * x
    e = (s + u) * (s - u)                          # s - u, the product terms cancel
    assert e == s - u and set(e.terms) == {0b01, 0b10, 0b11}
    assert Gated.make({0: x}, rs) is x             # free of the indicators: a plain Exact
    with pytest.raises(NoExactForm):
        x / (s + 1)                                # a denominator that depends on the region
    assert (s * x) / x == s


def test_the_degree_bound_counts_each_indicator_once():
    rs = (3, 7, 9)
    x = Exact.atom(5)
    v = Gated.indicator(0, rs) * Gated.indicator(2, rs) * x * x
    assert v.degree == 4
    assert (v * Gated.indicator(0, rs)).degree == 4


def test_large_relu_models_have_no_exact_points():
    model = RNN(steps=40, hidden_size=3, activation="relu")
    pts = sample_exact(model, k=1, seed=0)
    assert pts.unavailable and Ref("h", 40) not in pts.values


def test_squared_error_points_have_free_targets():
    model = RNN(output_size=1, loss="squared_error")
    pts = sample_exact(model, k=2, seed=4)
    v = pts.values
    for t in model.steps_range():
        assert np.all(v[Ref("yhat", t)] == v[Ref("z", t)])
        d = v[Ref("z", t)] - v[Ref("y", t)]
        assert np.all(v[Ref("L", t)] == d * d * Fraction(1, 2))


def test_column_points_are_transposed():
    row, col = sample_exact(RNN(biases=True), k=1, seed=5), sample_exact(RNN(biases=True, convention="column"), k=1, seed=5)
    for ref, value in row.values.items():
        assert np.all(np.swapaxes(col.values[ref], 1, 2) == value)


@pytest.mark.parametrize("steps, sizes", [(6, (2, 3, 2)), (5, (2, 4, 2)), (8, (2, 4, 2))])
def test_relu_models_past_the_pattern_limit_fall_back_to_numbers_without_a_crash(steps, sizes):
    """The limit is reached inside numpy's object matmul, which wraps the error in a SystemError:
    an audit found every check of these models crashing with a traceback."""
    from bptt_check import check

    model = RNN(steps=steps, input_size=sizes[0], hidden_size=sizes[1], output_size=sizes[2], activation="relu")
    assert sample_exact(model, 2, seed=0).unavailable
    right = check("sum_t h_t.T @ (yhat_t - y_t)", "dL/dW_hy", model=model)
    assert right.verdict == "equivalent_numerically" and "too many activation patterns" in right.message
    wrong = check("h_1.T @ (yhat_1 - y_1)", "dL/dW_hy", model=model)
    assert wrong.verdict == "not_equivalent" and [d.code for d in wrong.diagnoses] == ["missing_term"]


def test_matmul_raises_no_exact_form_as_itself():
    class Boom:
        def __mul__(self, other):
            raise NoExactForm("boom")

        __rmul__ = __mul__

    a = np.empty((1, 2, 2), dtype=object)
    a[...] = Boom()
    with pytest.raises(NoExactForm, match="boom"):
        matmul(a, a)
