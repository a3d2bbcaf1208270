"""Exact arithmetic mod p: field laws, degree bounds, and the atoms' identities."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from bptt_check import RNN, Ref
from bptt_check.exact import PRIME, Exact, NoExactForm, sample_exact
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
