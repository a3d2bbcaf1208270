"""The matrix-form BPTT formulas equal the sympy truth, exactly and in floats."""

import numpy as np
import pytest

from bptt_check import RNN, Ref
from bptt_check import formulas
from bptt_check.evaluate import evaluate
from bptt_check.exact import residues
from bptt_check.model import L_TOTAL
from bptt_check.truth import truth_for

MODELS = [
    RNN(),
    RNN(loss_at="last"),
    RNN(steps=3, input_size=1, hidden_size=3, output_size=2),
    RNN(steps=3, loss_at="last", h0="zeros", input_size=2, hidden_size=2, output_size=3),
    RNN(steps=1),
]


def _wrts(model):
    yield from (Ref("W_xh"), Ref("W_hh"), Ref("W_hy"), Ref("h", 0))
    for t in model.steps_range():
        yield from (Ref("h", t), Ref("x", t), Ref("a", t))


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.describe())
def test_terms_sum_to_the_truth(model):
    truth = truth_for(model)
    for of in (L_TOTAL, Ref("L", model.steps)):
        for wrt in _wrts(model):
            expr = formulas.gradient(model, of, wrt)
            got = evaluate(expr, truth.float_backend())
            want = truth.symbolic.partial(of, wrt).evaluate(truth.values).reshape(got.shape)
            assert np.allclose(got, want, rtol=1e-12, atol=1e-14), (of, wrt)
            exact = evaluate(expr, truth.exact_backend())
            want_exact = truth.jacobian_exact(of, wrt).reshape(exact.shape)
            assert np.all(residues(exact) == residues(want_exact)), (of, wrt)


@pytest.mark.parametrize("model", MODELS[:4], ids=lambda m: m.describe())
def test_per_step_form_with_partials_is_the_truth(model):
    truth = truth_for(model)
    for wrt in (Ref("W_hh"), Ref("W_xh"), Ref("W_hy"), Ref("h", 1), Ref("x", 1)):
        parts = formulas.per_step(model, L_TOTAL, wrt)
        expr = formulas.Builder(model).total([e for _, e in parts])
        got = evaluate(expr, truth.float_backend())
        want = truth.jacobian(L_TOTAL, wrt).reshape(got.shape)
        assert np.allclose(got, want, rtol=1e-12, atol=1e-14), wrt


def test_paths_are_named_like_a_person_would():
    terms = formulas.terms(RNN(), L_TOTAL, Ref("W_hh"))
    assert [t.description for t in terms] == [
        "L_1 at step 1 (direct)",
        "L_2 back through h_1",
        "L_2 at step 2 (direct)",
    ]
    assert [t.recurrent for t in terms] == [False, True, False]


def test_forward_unrolls_to_the_leaves():
    model = RNN()
    truth = truth_for(model)
    for ref in (Ref("L", 2), Ref("h", 2), Ref("yhat", 1), L_TOTAL):
        got = evaluate(formulas.forward(model, ref), truth.float_backend())
        assert np.allclose(got, truth.values[ref], rtol=1e-12)
        exact = evaluate(formulas.forward(model, ref), truth.exact_backend())
        assert np.all(residues(exact) == residues(truth.exact.values[ref]))


@pytest.mark.parametrize("model", MODELS[:4], ids=lambda m: m.describe())
def test_chains_of_partials_are_right_under_the_immediate_reading(model):
    from bptt_check.compare import check
    from bptt_check.language import to_plain

    for wrt in (Ref("W_hh"), Ref("W_xh"), Ref("W_hy"), Ref("h", 0), Ref("x", 1)):
        text = " + ".join(to_plain(c) for _, c in formulas.chains(model, L_TOTAL, wrt))
        assert check(text, f"dL/d{wrt}", model=model, reading="immediate").verdict == "equivalent", text
