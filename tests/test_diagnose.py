"""Diagnosis: each mistake kind is named, with its code, where it sits, and partial credit."""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bptt_check import RNN, Ref
from bptt_check import formulas
from bptt_check.compare import Checker, check
from bptt_check.language import to_plain
from bptt_check.model import L_TOTAL

ALL, LAST, T3 = RNN(), RNN(loss_at="last"), RNN(steps=3)
SIG, RELU, SE = RNN(activation="sigmoid"), RNN(activation="relu"), RNN(loss="squared_error")
COL, COL_LAST = RNN(convention="column"), RNN(convention="column", loss_at="last")


def codes(result):
    return [d.code for d in result.diagnoses]


@pytest.mark.parametrize(
    "model, target, answer, code",
    [
        # a missing time-step term: only the step-2 term of the sum over t
        (ALL, "dL/dW_hh", "h_1.T @ (dL/dh_2 * (1 - h_2**2))", "missing_term"),
        (ALL, "dL/dW_xh", "x_2.T @ (dL/dh_2 * (1 - h_2**2))", "missing_term"),
        (ALL, "dL/dW_hy", "h_2.T @ (yhat_2 - y_2)", "missing_term"),
        # a missing recurrent path: only the direct dependence of h_2 on W_hh
        (LAST, "dL/dW_hh", "h_1.T @ ((yhat_2 - y_2) @ W_hy.T * (1 - h_2**2))", "missing_path"),
        (LAST, "dL/dW_xh", "x_2.T @ ((yhat_2 - y_2) @ W_hy.T * (1 - h_2**2))", "missing_path"),
        (ALL, "dL/dh_1", "(yhat_1 - y_1) @ W_hy.T", "missing_path"),
        # 3(a) answered with 3(b)'s sum
        (ALL, "dL/dW_hh", "h_0.T @ (dL_2/dh_1 * (1 - h_1**2)) + h_1.T @ (dL_2/dh_2 * (1 - h_2**2))", "missing_term"),
        # an extra term: L_1 in a last-step-only question
        (LAST, "dL/dW_hy", "h_1.T @ (yhat_1 - y_1) + h_2.T @ (yhat_2 - y_2)", "extra_term"),
        # sign flip
        (ALL, "dL/dW_hy", "h_1.T @ (y_1 - yhat_1) + h_2.T @ (y_2 - yhat_2)", "sign_flip"),
        (T3, "dL/dW_hy", "sum_{t=1}^{T} (h_t.T @ (y_t - yhat_t))", "sign_flip"),
        # the activation derivative
        (ALL, "dL/dW_hh", "h_0.T @ (dL/dh_1 * (1 - h_1)) + h_1.T @ (dL/dh_2 * (1 - h_2))", "wrong_activation_derivative"),
        (LAST, "dL/dW_hh", "h_0.T @ (dL/dh_1 * h_1) + h_1.T @ (dL/dh_2 * h_2)", "wrong_activation_derivative"),
        (T3, "dL/dW_xh", "sum_{t=1}^{T} (x_t.T @ (dL/dh_t * (1 - h_t)))", "wrong_activation_derivative"),
        (ALL, "dL/dW_xh", "x_1.T @ dL/dh_1 + x_2.T @ dL/dh_2", "missing_activation_derivative"),
        # off by one step
        (ALL, "dL/dW_hh", "h_1.T @ (dL/dh_1 * (1 - h_1**2)) + h_2.T @ (dL/dh_2 * (1 - h_2**2))", "off_by_one"),
        (T3, "dL/dW_hh", "sum_{t=1}^{T} (h_t.T @ (dL/dh_t * (1 - h_t**2)))", "off_by_one"),
        # W_hh where W_hh.T belongs
        (ALL, "dL/dh_1", "(yhat_1 - y_1) @ W_hy.T + (dL/dh_2 * (1 - h_2**2)) @ W_hh", "missing_transpose"),
        # yhat - y replaced
        (ALL, "dL/dW_hy", "h_1.T @ yhat_1 + h_2.T @ yhat_2", "wrong_output_error"),
        (LAST, "dL/dW_hy", "-(h_2.T @ y_2)", "wrong_output_error"),
        # the transposed outer product in one term (square W_hh)
        (ALL, "dL/dW_hh", "(dL/dh_1 * (1 - h_1**2)).T @ h_0 + h_1.T @ (dL/dh_2 * (1 - h_2**2))", "transposed_factor"),
        # an index swapped in an element target
        (RNN(hidden_size=2, output_size=3), "dL/dW_hy[0,1]", "h_1[1] * (yhat_1[0] - y_1[0]) + h_2[1] * (yhat_2[0] - y_2[0])", "swapped_index"),
        # the sigmoid's derivative, the softmax Jacobian forgotten, the wrong step, weight or input
        (ALL, "dL/dW_hh", "h_0.T @ (dL/dh_1 * h_1 * (1 - h_1)) + h_1.T @ (dL/dh_2 * h_2 * (1 - h_2))", "wrong_activation_derivative"),
        (ALL, "dL/dW_hy", "h_1.T @ (-y_1 / yhat_1) + h_2.T @ (-y_2 / yhat_2)", "wrong_output_error"),
        (ALL, "dL/dW_hy", "h_0.T @ (yhat_1 - y_1) + h_1.T @ (yhat_2 - y_2)", "off_by_one"),
        (ALL, "dL/dh_1", "(yhat_1 - y_1) @ W_hy.T + (dL/dh_2 * (1 - h_1**2)) @ W_hh.T", "off_by_one"),
        (ALL, "dL/dx_1", "(dL/dh_1 * (1 - h_1**2)) @ W_hh.T", "wrong_weight"),
        (ALL, "dL/dW_xh", "h_0.T @ (dL/dh_1 * (1 - h_1**2)) + h_1.T @ (dL/dh_2 * (1 - h_2**2))", "wrong_input"),
        # the seed's 3(b): L_2 without the tanh of step 2
        (LAST, "L_2", "-sum(y_2 * log(softmax((h_1 @ W_hh + x_2 @ W_xh) @ W_hy)))", "missing_activation"),
    ],
)
def test_each_mistake_kind_is_named(model, target, answer, code):
    result = check(answer, target, model=model)
    assert result.verdict == "not_equivalent", str(result)
    assert code in codes(result), str(result)
    assert 0.0 <= result.score < 1.0


def test_missing_path_says_where():
    result = check("h_1.T @ ((yhat_2 - y_2) @ W_hy.T * (1 - h_2**2))", "dL/dW_hh", model=LAST)
    (d,) = result.diagnoses
    assert d.message == "drops the path from L_2 back through h_1 (where the gradient reaches step 1)"
    assert result.score == pytest.approx(0.5)


def test_seed_3b_missing_tanh_is_explained():
    result = check(
        # the seed's grouping with its stray parenthesis closed where t_2( was dropped
        r"c_2(s_2((t_1(x_1 \cdot W_{xh} + h_0 \cdot W_{hh}) \cdot W_{hh} + x_2 \cdot W_{xh}) \cdot W_{hy}))",
        "L_2",
        model=LAST,
        notation=__import__("bptt_check.language", fromlist=["Notation"]).Notation.SEED,
    )
    assert result.verdict == "not_equivalent"
    assert result.diagnoses[0].code == "missing_activation"
    assert "is missing the tanh of step 2" in result.diagnoses[0].message


def test_partial_credit_is_proportional_to_the_terms_right():
    one_of_three = check("h_1.T @ (dL/dh_2 * (1 - h_2**2))", "dL/dW_hh")  # keeps 1 of 3 path terms
    assert one_of_three.score == pytest.approx(1 / 3)
    assert check("h_1.T @ (y_1 - yhat_1) + h_2.T @ (y_2 - yhat_2)", "dL/dW_hy").score == 0.0


# -- the variant generator is its own oracle ------------------------------------------

_small = dict(
    steps=st.integers(1, 3),
    input_size=st.integers(1, 3),
    hidden_size=st.integers(2, 3),
    output_size=st.integers(2, 3),
    loss_at=st.sampled_from(["all", "last"]),
)
models = st.builds(RNN, **_small)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=models, data=st.data())
def test_generated_mistakes_are_diagnosed(model, data):
    wrt = data.draw(st.sampled_from([Ref("W_hh"), Ref("W_xh"), Ref("W_hy"), Ref("h", 1)]))
    checker = Checker(f"dL/d{wrt}", model=model)
    variants = checker.diagnoser.variants
    if not variants:
        return
    found = 0
    for v in variants:
        result = checker.check(to_plain(v.expr))
        assert result.verdict != "equivalent"
        if result.verdict == "transposed" and v.code in ("transposed_factor", "missing_transpose"):
            found += 1
            continue
        # the named mistake, or one whose values are the same (an equivalent mistake)
        same = [w.code for w in variants if checker.diagnoser._close(w.values, v.values)]
        found += any(c in codes(result) for c in same + [v.code])
    assert found / len(variants) >= 0.95


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=models, data=st.data())
def test_correct_answers_are_never_called_wrong(model, data):
    wrt = data.draw(st.sampled_from([Ref("W_hh"), Ref("W_xh"), Ref("W_hy"), Ref("h", 0)]))
    expr = formulas.gradient(model, L_TOTAL, wrt)
    result = check(to_plain(expr), f"dL/d{wrt}", model=model)
    assert result.verdict == "equivalent" and not result.diagnoses


# -- the model's options: activations, squared error, column vectors -------------------------


@pytest.mark.parametrize(
    "model, target, answer, code, words",
    [
        # the activation derivative, named by the model's activation
        (SIG, "dL/dW_xh", "x_1.T @ dL/dh_1 + x_2.T @ dL/dh_2", "missing_activation_derivative",
         "drops the sigmoid derivative h_t * (1 - h_t) (at every step)"),
        (SIG, "dL/dW_xh", "x_1.T @ (dL/dh_1 * h_1 * (1 - h_1)) + x_2.T @ dL/dh_2", "missing_activation_derivative",
         "drops the sigmoid derivative h_2 * (1 - h_2) at step 2"),
        (RELU, "dL/dW_xh", "x_1.T @ dL/dh_1 + x_2.T @ dL/dh_2", "missing_activation_derivative",
         "drops the relu derivative step(a_t) (at every step)"),
        (SIG, "dL/dW_hh", "h_0.T @ (dL/dh_1 * (1 - h_1**2)) + h_1.T @ (dL/dh_2 * (1 - h_2**2))",
         "wrong_activation_derivative", "uses the tanh's derivative 1 - h_t**2 where sigmoid's h_t * (1 - h_t) belongs"),
        (RELU, "dL/dW_hh", "h_0.T @ (dL/dh_1 * (1 - h_1**2)) + h_1.T @ (dL/dh_2 * (1 - h_2**2))",
         "wrong_activation_derivative", "uses the tanh's derivative 1 - h_t**2 where relu's step(a_t) belongs"),
        (SIG, "dL/dW_hh", "h_0.T @ (dL/dh_1 * h_1) + h_1.T @ (dL/dh_2 * h_2)",
         "wrong_activation_derivative", "uses h_t = sigmoid(a_t) where its derivative h_t * (1 - h_t) belongs"),
        (SIG, "dL/dW_hh", "h_0.T @ (dL/dh_1 * (1 - h_1)) + h_1.T @ (dL/dh_2 * (1 - h_2))",
         "wrong_activation_derivative", "uses 1 - h_t where the sigmoid derivative h_t * (1 - h_t) belongs"),
        (SIG, "dL/dh_1", "(yhat_1 - y_1) @ W_hy.T + (dL/dh_2 * h_1 * (1 - h_1)) @ W_hh.T", "off_by_one",
         "uses the sigmoid derivative of step 1 (h_1 * (1 - h_1)) where step 2's h_2 * (1 - h_2) belongs"),
        # squared error with a linear output
        (SE, "dL/dW_hy", "h_1.T @ (y_1 - yhat_1) + h_2.T @ (y_2 - yhat_2)", "sign_flip", "opposite sign"),
        (SE, "dL/dW_hy", "h_1.T @ (2 * (yhat_1 - y_1)) + h_2.T @ (2 * (yhat_2 - y_2))", "extra_factor",
         "the 1/2 of L_t = 1/2 sum (yhat_t - y_t)**2 cancels the 2 of the square"),
        (SE, "dL/dW_hy", "h_1.T @ (2 * (yhat_1 - y_1)) + h_2.T @ (yhat_2 - y_2)", "extra_factor",
         "uses 2 * (yhat_1 - y_1) where yhat_1 - y_1 belongs (step 1)"),
        (SE, "dL/dW_hy", "h_1.T @ yhat_1 + h_2.T @ yhat_2", "wrong_output_error", "the squared error of a linear output"),
        # column vectors: every mistake seen in the textbook's layout
        (COL, "dL/dW_hy", "h_1 @ (yhat_1 - y_1).T + (yhat_2 - y_2) @ h_2.T", "transposed_factor",
         "writes the outer product with h_1 the wrong way round (h_1 @ (…).T instead of (…) @ h_1.T)"),
        (COL_LAST, "dL/dW_hh", "(W_hy.T @ (yhat_2 - y_2) * (1 - h_2**2)) @ h_1.T", "missing_path",
         "drops the path from L_2 back through h_1 (where the gradient reaches step 1)"),
        (COL, "dL/dW_hh", "(dL/dh_2 * (1 - h_2**2)) @ h_1.T", "missing_term",
         "misses the term of step 1 of the sum over t (dL/da_1 @ h_0.T)"),
        (COL, "dL/dh_1", "W_hy.T @ (yhat_1 - y_1) + W_hh @ (dL/dh_2 * (1 - h_2**2))", "missing_transpose",
         "multiplies by W_hh where W_hh.T belongs"),
        (COL, "dL/dW_hh", "(dL/dh_1 * (1 - h_1**2)) @ h_1.T + (dL/dh_2 * (1 - h_2**2)) @ h_2.T", "off_by_one",
         "uses h_t where h_{t-1} belongs"),
        (COL.replace(activation="sigmoid"), "dL/dW_xh", "(dL/dh_1 * (1 - h_1**2)) @ x_1.T + (dL/dh_2 * (1 - h_2**2)) @ x_2.T",
         "wrong_activation_derivative", "where sigmoid's h_t * (1 - h_t) belongs"),
        (COL.replace(loss="squared_error"), "dL/dW_hy", "(y_1 - yhat_1) @ h_1.T + (y_2 - yhat_2) @ h_2.T", "sign_flip",
         "opposite sign"),
        # the forward pass
        (SIG.replace(loss_at="last"), "L_2", "-sum(y_2 * log(softmax((h_1 @ W_hh + x_2 @ W_xh) @ W_hy)))",
         "missing_activation", "is missing the sigmoid of step 2: a_2 stands where h_2 = sigmoid(a_2) belongs"),
        (COL_LAST, "L_2", "-sum(y_2 * log(softmax(W_hy @ (W_hh @ h_1 + W_xh @ x_2))))", "missing_activation",
         "is missing the tanh of step 2"),
    ],
)
def test_each_mistake_is_named_for_the_models_options(model, target, answer, code, words):
    result = check(answer, target, model=model)
    assert result.verdict == "not_equivalent", str(result)
    assert code in codes(result), str(result)
    assert any(words in d.message for d in result.diagnoses), str(result)
    assert 0.0 <= result.score < 1.0
    text = " ".join(d.message for d in result.diagnoses)
    if model.activation != "tanh":
        assert "tanh derivative" not in text and "tanh of" not in text
    if model.loss == "squared_error":
        assert "softmax" not in text


def test_messages_never_name_another_activation_or_loss():
    for model in (SIG, RELU, SE, COL.replace(activation="relu", loss="squared_error")):
        for wrt in ("W_hh", "W_hy"):
            for v in Checker(f"dL/d{wrt}", model=model).diagnoser.variants:
                if v.code == "missing_activation_derivative" or "its derivative" in v.message:
                    assert model.activation in v.message, v.message
                if model.activation != "tanh":
                    assert "tanh" not in v.message.replace("the tanh's derivative", ""), v.message
                if model.loss == "squared_error":
                    assert "softmax" not in v.message and "-y_1 / yhat_1" not in v.message, v.message


def test_column_variants_are_written_in_the_column_convention():
    checker = Checker("dL/dW_hy", model=COL)
    flips = [v for v in checker.diagnoser.variants if v.code == "transposed_factor"]
    assert flips and all(v.expr.shape == COL.shape(Ref("W_hy")) for v in flips)
    assert "h_1 @ (yhat_1.T - y_1.T)" in to_plain(flips[0].expr)


option_models = st.builds(
    RNN,
    **_small,
    biases=st.booleans(),
    convention=st.sampled_from(["row", "column"]),
    activation=st.sampled_from(["tanh", "sigmoid", "relu"]),
    loss=st.sampled_from(["cross_entropy", "squared_error"]),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=option_models, data=st.data())
def test_generated_mistakes_are_diagnosed_for_every_option(model, data):
    test_generated_mistakes_are_diagnosed.hypothesis.inner_test(model=model, data=data)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=option_models, data=st.data())
def test_correct_answers_are_never_called_wrong_for_every_option(model, data):
    test_correct_answers_are_never_called_wrong.hypothesis.inner_test(model=model, data=data)


one_relu_unit = st.builds(
    RNN,
    **{**_small, "hidden_size": st.just(1)},
    h0=st.sampled_from(["input", "zeros"]),
    biases=st.booleans(),
    convention=st.sampled_from(["row", "column"]),
    activation=st.just("relu"),
    loss=st.sampled_from(["cross_entropy", "squared_error"]),
)


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=one_relu_unit, data=st.data())
def test_generated_mistakes_are_diagnosed_with_one_relu_unit(model, data):
    """One unit: a step can be inactive only where it cuts every path through it (issue 14, finding 1).

    No variant is ever equivalent or an internal error; with h_0 an input the mistakes are named as
    for any model (with h_0 = 0 a wrong input h_0 is read as a zero answer instead).
    """
    if model.h0 == "input":
        test_generated_mistakes_are_diagnosed.hypothesis.inner_test(model=model, data=data)
        return
    wrt = data.draw(st.sampled_from([Ref("W_hh"), Ref("W_xh"), Ref("W_hy"), Ref("h", 1)]))
    checker = Checker(f"dL/d{wrt}", model=model)
    for v in checker.diagnoser.variants:
        assert checker.check(to_plain(v.expr)).verdict not in ("equivalent", "equivalent_numerically")
# -- long sequences: the structured fit and the vectorized path values ------------------

LONG = RNN(steps=12)  # 78 paths for a weight: more than half the 20 values of a 2×2 gradient at 5 points


@pytest.mark.parametrize(
    "model",
    [RNN(steps=4), RNN(steps=4, loss_at="last", convention="column"), RNN(steps=3, activation="relu", biases=True),
     RNN(steps=3, activation="sigmoid", loss="squared_error", convention="column", input_size=1, hidden_size=3)],
    ids=lambda m: m.describe(),
)
def test_path_values_of_the_backward_pass_are_the_terms_values(model):
    import numpy as np

    wrts = [Ref("W_hh"), Ref("W_xh"), Ref("h", 0), Ref("h", 2), Ref("x", 1), Ref("a", 2), Ref("W_hy")]
    if model.biases:
        wrts.append(Ref("b_h"))
    for wrt in wrts:
        d = Checker(f"dL/d{wrt}", model=model).diagnoser
        every = model.replace(loss_at="all")
        trees = formulas.terms(every, L_TOTAL, wrt)
        assert len(trees) == len(d.candidates)
        seen = 0
        for idx, vals in d.path_values():
            for i, v in zip(idx, vals):
                assert np.allclose(v, d._value(trees[i].expr), rtol=1e-12, atol=1e-14), (wrt, trees[i].description)
                seen += 1
        assert seen == len(trees)


@pytest.mark.parametrize(
    "model, answer, code, words",
    [
        (LONG, "sum_{t=2}^{T} (h_{t-1}.T @ (dL/dh_t * (1 - h_t**2)))", "missing_term",
         "misses the term of step 1 of the sum over t"),
        (LONG, "sum_{t=1}^{T-1} (h_{t-1}.T @ (dL/dh_t * (1 - h_t**2)))", "missing_term",
         "misses the term of step 12 of the sum over t"),
        (LONG, "sum_{t=6}^{T} (h_{t-1}.T @ (dL/dh_t * (1 - h_t**2)))", "missing_term",
         "misses the terms of steps 1 … 5 of the sum over t"),
        (LONG, "sum_{t=1}^{T} (h_{t-1}.T @ ((yhat_t - y_t) @ W_hy.T * (1 - h_t**2)))", "missing_path",
         "drops every recurrent path (66 paths)"),
        (LONG, "sum_{t=1}^{T} (h_{t-1}.T @ (dL_12/dh_t * (1 - h_t**2)))", "missing_term",
         "misses the contributions of L_1 … L_11, the losses at steps 1 … 11 (it keeps only the loss of step 12)"),
        (LONG, "-sum_{t=1}^{T} (h_{t-1}.T @ (dL/dh_t * (1 - h_t**2)))", "sign_flip", "opposite sign"),
        (LONG, "2 * sum_{t=2}^{T} (h_{t-1}.T @ (dL/dh_t * (1 - h_t**2))) + h_0.T @ (dL/dh_1 * (1 - h_1**2))",
         "extra_term", "counts the terms of steps 2 … 12 of the sum over t more than once"),
        (RNN(steps=12, loss_at="last"), "sum_{t=1}^{T} (h_t.T @ (yhat_t - y_t))", "extra_term",
         "adds the terms of L_1 … L_11, which are not part of L"),
        (LONG, "sum_{t=1}^{T} (h_{t-1}.T @ (dL/dh_t * (1 - h_t)))", "wrong_activation_derivative", "at every step"),
        (LONG, "sum_{t=1}^{T} (h_t.T @ (dL/dh_t * (1 - h_t**2)))", "off_by_one", ""),
    ],
)
def test_long_sequences_are_diagnosed_by_groups_of_terms(model, answer, code, words):
    target = "dL/dW_hy" if "yhat_t - y_t))" in answer and "W_hy.T" not in answer else "dL/dW_hh"
    result = check(answer, target, model=model)
    assert result.verdict == "not_equivalent", str(result)
    assert code in codes(result), str(result)
    assert words in str(result), str(result)
    assert len(result.diagnoses) <= 3, str(result)


def test_truncated_backprop_is_named_by_its_length():
    d = Checker("dL/dW_hh", model=LONG).diagnoser
    import numpy as np

    kept = sum(vals[[i for i, (j) in enumerate(idx) if d.candidates[j].loss_step - d.candidates[j].step < 3]].sum(axis=0)
               for idx, vals in d.path_values())
    finding = d.diagnose(np.asarray(kept))
    assert [x.code for x in finding.diagnoses] == ["missing_path"]
    assert "drops every path that runs back 3 or more steps" in finding.diagnoses[0].message
    assert "stops after 2 steps" in finding.diagnoses[0].message
