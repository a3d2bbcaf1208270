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


def test_paths_name_and_order_the_terms_without_building_them():
    model = RNN(steps=4, loss_at="last")
    for wrt in (Ref("W_hh"), Ref("h", 2), Ref("h", 0), Ref("x", 3), Ref("W_hy"), Ref("yhat", 4)):
        terms = formulas.terms(model, L_TOTAL, wrt)
        assert [(t.loss_step, t.step, t.kind) for t in terms] == list(formulas.paths(model, L_TOTAL, wrt))
        assert formulas.terms_of(model, L_TOTAL, wrt, formulas.paths(model, L_TOTAL, wrt)[-1:]) == terms[-1:]
    terms = formulas.terms(model, L_TOTAL, Ref("h", 2))
    assert [t.description for t in terms] == ["L_4 back through h_3"]
    assert terms[0].through == (Ref("h", 3), Ref("h", 2))


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


# -- the model's options: convention × activation × loss × biases ----------------------------

OPTIONS = [
    RNN(steps=2, input_size=2, hidden_size=3, output_size=2, convention=c, activation=a, loss=lo, biases=bias)
    for c in ("row", "column")
    for a in ("tanh", "sigmoid", "relu")
    for lo in ("cross_entropy", "squared_error")
    for bias in (False, True)
]


def _option_wrts(model):
    yield from model.parameters()
    yield Ref("h", 0)
    for t in model.steps_range():
        yield from (Ref("h", t), Ref("x", t), Ref("a", t), Ref("z", t), Ref("yhat", t))


@pytest.mark.parametrize("model", OPTIONS, ids=lambda m: m.describe())
def test_terms_sum_to_the_truth_for_every_option(model):
    truth = truth_for(model)
    for of in (L_TOTAL, Ref("L", 1)):
        for wrt in _option_wrts(model):
            expr = formulas.gradient(model, of, wrt)
            assert expr.shape == model.shape(wrt), (of, wrt)
            got = evaluate(expr, truth.float_backend())
            want = truth.jacobian(of, wrt).reshape(got.shape)  # sympy, cross-checked against jax
            assert np.allclose(got, want, rtol=1e-12, atol=1e-14), (of, wrt)
    for wrt in (Ref("W_hh"), Ref("W_hy"), Ref("h", 0)):
        exact = evaluate(formulas.gradient(model, L_TOTAL, wrt), truth.exact_backend())
        want_exact = truth.jacobian_exact(L_TOTAL, wrt).reshape(exact.shape)
        assert np.all(residues(exact) == residues(want_exact)), wrt


@pytest.mark.parametrize("model", OPTIONS[::3], ids=lambda m: m.describe())
def test_per_step_form_and_forward_pass_for_every_option(model):
    truth = truth_for(model)
    for wrt in (Ref("W_hh"), Ref("W_xh"), Ref("W_hy"), Ref("h", 1), Ref("h", 0), Ref("x", 2)):
        expr = formulas.Builder(model).total([e for _, e in formulas.per_step(model, L_TOTAL, wrt)])
        got = evaluate(expr, truth.float_backend())
        assert np.allclose(got, truth.jacobian(L_TOTAL, wrt).reshape(got.shape), rtol=1e-12, atol=1e-14), wrt
    for ref, expr in formulas.hidden_recursion(model, L_TOTAL):
        got = evaluate(expr, truth.float_backend())
        assert np.allclose(got, truth.jacobian(L_TOTAL, ref).reshape(got.shape), rtol=1e-12, atol=1e-14), ref
    for ref in (Ref("L", 2), Ref("h", 2), Ref("yhat", 1), L_TOTAL):
        expr = formulas.forward(model, ref)
        assert expr.shape == model.shape(ref)
        got = evaluate(expr, truth.float_backend())
        assert np.allclose(got, truth.values[ref], rtol=1e-12), ref


@pytest.mark.parametrize("model", [m for m in OPTIONS if m.column][::5], ids=lambda m: m.describe())
def test_column_chains_are_right_under_the_immediate_reading(model):
    from bptt_check.compare import check
    from bptt_check.language import to_plain

    for wrt in (Ref("W_hh"), Ref("W_hy"), Ref("h", 0)):
        text = " + ".join(to_plain(c) for _, c in formulas.chains(model, L_TOTAL, wrt))
        assert check(text, f"dL/d{wrt}", model=model, reading="immediate").verdict == "equivalent", text


def test_column_formulas_read_like_the_textbook():
    from bptt_check.language import parse, to_plain

    col = RNN(convention="column")
    assert to_plain(formulas.gradient(col, L_TOTAL, Ref("W_hy"))) == "(yhat_1 - y_1) @ h_1.T + (yhat_2 - y_2) @ h_2.T"
    last = formulas.terms(col, L_TOTAL, Ref("W_hh"))[-1]
    assert last.description == "L_2 at step 2 (direct)"
    assert last.expr == parse("(W_hy.T @ (yhat_2 - y_2) * (1 - h_2**2)) @ h_1.T", col).expr
    # * inside @ (and @ inside *) is bracketed, although left-to-right reading would not need it
    assert to_plain(last.expr) == "((W_hy.T @ (yhat_2 - y_2)) * (1 - h_2**2)) @ h_1.T"
    assert [to_plain(e) for _, e in formulas.per_step(col, L_TOTAL, Ref("W_xh"))] == [
        "(dL/dh_1 * (1 - h_1**2)) @ x_1.T",
        "(dL/dh_2 * (1 - h_2**2)) @ x_2.T",
    ]
    assert to_plain(formulas.gradient(col, L_TOTAL, Ref("h", 2))) == "W_hy.T @ (yhat_2 - y_2)"
    assert to_plain(formulas.forward(col, Ref("z", 1))) == "W_hy @ h_1(W_xh @ x_1 + W_hh @ h_0)"
    assert to_plain(formulas.gradient(col.replace(activation="sigmoid"), L_TOTAL, Ref("x", 2))) == (
        "W_xh.T @ ((W_hy.T @ (yhat_2 - y_2)) * (h_2 * (1 - h_2)))"
    )
    relu = RNN(activation="relu", loss="squared_error", loss_at="last", steps=1)
    assert to_plain(formulas.gradient(relu, L_TOTAL, Ref("a", 1))) == "((yhat_1 - y_1) @ W_hy.T) * step(a_1)"
    assert to_plain(formulas.gradient(relu, L_TOTAL, Ref("yhat", 1))) == "yhat_1 - y_1"
    assert to_plain(formulas.gradient(RNN(steps=1), L_TOTAL, Ref("yhat", 1))) == "-(y_1 / yhat_1)"


def test_to_convention_pushes_transposes_to_the_leaves():
    from bptt_check.language import parse, to_plain

    row, col = RNN(hidden_size=3, output_size=4), RNN(hidden_size=3, output_size=4, convention="column")
    cases = {
        "h_1.T @ (yhat_1 - y_1)": "(yhat_1 - y_1) @ h_1.T",
        "(yhat_1 - y_1).T @ h_1": "h_1 @ (yhat_1.T - y_1.T)",
        "-(x_1 @ W_xh).T": "-(x_1.T @ W_xh.T)",
        "(x_1 @ W_xh + h_0 @ W_hh) @ W_hy": "W_hy @ (W_xh @ x_1 + W_hh @ h_0)",
        "tanh(h_0 @ W_hh) * (1 - h_1**2)": "tanh(W_hh @ h_0) * (1 - h_1**2)",
        "diag(h_1) @ W_hy": "W_hy @ diag(h_1)",
        "h_1[0,2] * W_hy": "h_1[2,0] * W_hy",
        "dL/dh_1 @ W_hh.T": "W_hh.T @ dL/dh_1",
        "(dL/dh_1).T @ h_0": "h_0 @ (dL/dh_1).T",
        "dh_2/dh_1 @ W_hh": "W_hh @ (dh_2/dh_1).T",
    }
    for text, want in cases.items():
        converted = formulas.to_convention(parse(text, row).expr, col)
        assert to_plain(converted) == want, text
        assert converted == parse(want, col).expr, text
    e = parse("h_1.T @ (yhat_1 - y_1)", row).expr
    assert formulas.to_convention(e, row) is e


def test_to_convention_keeps_the_value_transposed():
    """At the transposed point, a converted expression's value is the transpose of the row expression's."""
    from bptt_check.evaluate import FloatBackend
    from bptt_check.language import parse
    from bptt_check.model import squeeze_shape

    row = RNN(hidden_size=3, output_size=4)
    col = row.replace(convention="column")
    truth = truth_for(row)

    def col_partial(num, den, reading):  # the row truth's tensor with each matrix side's axes swapped
        t = truth.symbolic.partial(num, den, reading).evaluate(truth.values)
        nn, nd = len(squeeze_shape(row.shape(num))), len(squeeze_shape(row.shape(den)))
        axes = list(range(t.ndim))
        for start, n in ((1, nn), (1 + nn, nd)):
            if n == 2:
                axes[start], axes[start + 1] = axes[start + 1], axes[start]
        return np.transpose(t, axes)

    col_backend = FloatBackend({r: np.swapaxes(v, 1, 2) for r, v in truth.values.items()}, col_partial, col)
    texts = [
        "h_1.T @ (yhat_1 - y_1) * 2 - (h_0.T @ h_1) @ W_hh @ W_hy / 3",
        "diag(h_1) @ W_hh.T @ dh_2/dh_1",
        "outer(h_1, y_2) + W_hy ** 2",
        "(dh_2/dh_1)[0,1] * h_1[0,2] + tanh(h_0 @ W_hh)[0,1]",
        "dL/dW_hh @ W_hh + (dL/dh_1).T @ h_0",
        "dL/dL_2 * dL_2/dz_2 * dz_2/dh_2 * dh_2/da_2 * da_2/dW_hh",
        "sigmoid(-(x_2 @ W_xh)) * h_2 ** 2",
    ]
    for text in texts:
        e = parse(text, row).expr
        got = evaluate(formulas.to_convention(e, col), col_backend)
        want = np.swapaxes(evaluate(e, truth.float_backend()), 1, 2)
        assert np.allclose(got, want, rtol=1e-12, atol=1e-14), text


def test_long_sequences_need_no_recursion_in_building_converting_or_transposing():
    import sys

    from bptt_check.language.ast import Transpose

    col = RNN(steps=400, convention="column")
    assert sys.getrecursionlimit() <= 10_000
    forward = formulas.forward(col, L_TOTAL)  # built up from step 1, then converted to columns
    assert forward.shape == (1, 1)
    terms = formulas.per_step(col, L_TOTAL, Ref("W_hh"))
    assert len(terms) == 400
    recursion = formulas.hidden_recursion(col, L_TOTAL)
    deep = recursion[0][1]
    for _ in range(3000):  # a tree 3000 levels deep
        deep = formulas.Builder(col).add(deep, recursion[1][1])
    flipped = formulas.transpose(deep)
    assert flipped.shape == deep.shape[::-1]
    assert formulas.transpose(Transpose(deep, deep.shape[::-1])) is deep
