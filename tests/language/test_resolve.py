"""Resolution (bptt_check.language.resolve): shapes, chains, partials, node-function application, spellings, ones and identity."""

from __future__ import annotations

from fractions import Fraction

import pytest

from bptt_check.errors import ChainError, ShapeError
from bptt_check.language import (
    Apply,
    Binary,
    Chain,
    Neg,
    Notation,
    Number,
    Partial,
    Power,
    Transpose,
    parse,
    to_latex,
    to_plain,
    walk,
)
from bptt_check.model import RNN, Ref

from .conftest import COL, M, M345, N, P, PC, roundtrip, SEED


def test_node_function_application_is_decided_by_shape() -> None:
    h1 = N("h", 1)
    assert P("t_1(a_1)", notation=SEED) == Apply(Ref("h", 1), N("a", 1), (1, 4))
    assert P("s_1(z_1)", notation=SEED) == Apply(Ref("yhat", 1), N("z", 1), (1, 5))
    assert P("c_1(yhat_1)", notation=SEED) == Apply(Ref("L", 1), N("yhat", 1), (1, 1))
    assert P("h_1(a_1)") == Apply(Ref("h", 1), N("a", 1), (1, 4))
    # other shapes: the product
    assert P("h_1 (W_hh)") == Binary("@", h1, N("W_hh"), (1, 4))
    assert P("L_1 (h_1)") == Binary("*", N("L", 1), h1, (1, 4))  # 1×1: scalar product
    assert P("h_0 (W_hh)") == Binary("@", N("h", 0), N("W_hh"), (1, 4))  # h_0 is an input, not a node
    assert P("W_hh (h_1 + h_2)^T") == P("W_hh @ ((h_1 + h_2).T)")  # postfix binds to the group
    assert P("t_1(a_1)^T", notation=SEED) == Transpose(Apply(Ref("h", 1), N("a", 1), (1, 4)), (4, 1))


def test_node_function_with_the_wrong_argument_explains_both_readings() -> None:
    with pytest.raises(ShapeError) as info:
        parse("s_1(h_1)", M345, notation=SEED)
    hint = info.value.hint or ""
    assert "s_1(…) applies softmax to a 1×5 argument (the shape of z_1), but this one is 1×4" in hint


def test_partial_shapes_follow_jacobian_shape() -> None:
    assert P("dL/dW_hy") == Partial(Ref("L"), Ref("W_hy"), (4, 5), (4, 5))
    assert P("dL/dh_1") == Partial(Ref("L"), Ref("h", 1), (1, 4), (4,))
    assert P("dh_2/dh_1") == Partial(Ref("h", 2), Ref("h", 1), (4, 4), (4, 4))
    assert P("dL/dW_hy[1,2]") == Partial(Ref("L"), Ref("W_hy"), (1, 1), (), None, (1, 2))
    assert P("d(yhat_1[2])/d(z_1)") == Partial(Ref("yhat", 1), Ref("z", 1), (1, 5), (5,), (0, 2), None)
    assert P("dz_1/dW_hy[0,0]") == Partial(Ref("z", 1), Ref("W_hy"), (1, 5), (5,), None, (0, 0))


def test_dA_over_dB_is_one_unit() -> None:
    chain = P("dL_1/dc_1 * dc_1/ds_1 * ds_1/dW_hy", M, notation=SEED)
    assert isinstance(chain, Chain) and len(chain.factors) == 3
    assert P("dL/dh_1 / 2") == Binary("/", P("dL/dh_1"), Number(Fraction(2)), (1, 4))
    assert P("2 / dL/dh_1") == Binary("/", Number(Fraction(2)), P("dL/dh_1"), (1, 4))


def test_chain_products_all_mean_the_same() -> None:
    spellings = [
        "dL_1/dyhat_1 * dyhat_1/dW_hy",
        "dL_1/dyhat_1 @ dyhat_1/dW_hy",
        "dL_1/dyhat_1 dyhat_1/dW_hy",
        r"\frac{\partial L_1}{\partial \hat{y}_1} \cdot \frac{\partial \hat{y}_1}{\partial W_{hy}}",
        r"\frac{\partial L_1}{\partial \hat{y}_1} \times \frac{\partial \hat{y}_1}{\partial W_{hy}}",
        r"\frac{\partial L_1}{\partial \hat{y}_1} \frac{\partial \hat{y}_1}{\partial W_{hy}}",
        "(dL_1/dyhat_1) * (dyhat_1/dW_hy)",
    ]
    trees = {P(s) for s in spellings}
    assert len(trees) == 1
    (chain,) = trees
    assert isinstance(chain, Chain) and chain.shape == (4, 5) and chain.tensor_shape == (4, 5)


def test_a_leading_sign_negates_the_chain_it_starts() -> None:
    chain = P("dL_1/dyhat_1 * dyhat_1/dW_hy")
    assert P("-dL_1/dyhat_1 * dyhat_1/dW_hy") == Neg(chain, (4, 5))
    assert P(r"-\frac{\partial L_1}{\partial \hat{y}_1} \frac{\partial \hat{y}_1}{\partial W_{hy}}") == Neg(chain, (4, 5))
    assert P("h_1 - dL_1/dyhat_1 * dyhat_1/dz_1 @ W_hy.T").shape == (1, 4)
    assert P("-dL/dh_1 * h_1") == Binary("*", Neg(P("dL/dh_1"), (1, 4)), N("h", 1), (1, 4))  # no chain: as usual


def test_chains_regroup_with_parentheses_and_scalars() -> None:
    flat = P("dL_1/dyhat_1 * dyhat_1/dz_1 * dz_1/dW_hy")
    assert P("(dL_1/dyhat_1 * dyhat_1/dz_1) * dz_1/dW_hy") == flat
    assert P("dL_1/dyhat_1 * (dyhat_1/dz_1 * dz_1/dW_hy)") == flat  # the inner chain is 3-axis: fine inside
    assert P("2 * dL_1/dyhat_1 * dyhat_1/dW_hy") == Binary("*", Number(Fraction(2)), P("dL_1/dyhat_1 * dyhat_1/dW_hy"), (4, 5))


def test_chain_break_names_the_break() -> None:
    with pytest.raises(ChainError) as info:
        parse("dL_1/dc_1 * ds_2/dW_hy", M, notation=SEED)
    assert info.value.message == "chain breaks between ∂L_1/∂c_1 and ∂s_2/∂W_hy: c_1 is not s_2"
    assert info.value.position == len("dL_1/dc_1 ")
    with pytest.raises(ChainError, match=r"∂L_1/∂c_1 and ∂s_2/∂W_hy: c_1 is not s_2"):
        parse(r"\frac{\partial L_1}{\partial c_1} \frac{\partial s_2}{\partial W_{hy}}", M, notation=SEED)


def test_partial_times_an_ordinary_expression_follows_the_ordinary_rules() -> None:
    assert P("dL/dz_1 @ W_hy.T") == Binary("@", P("dL/dz_1"), P("W_hy.T"), (1, 4))
    assert P("dL/dh_2 * (1 - h_2**2)").shape == (1, 4)
    assert P("dL/dh_1.T") == Transpose(P("dL/dh_1"), (4, 1))


def test_jacobians_without_matrix_form_only_inside_chains() -> None:
    with pytest.raises(ShapeError) as info:
        parse("ds_1/dW_hy", M, notation=SEED)
    assert info.value.message == "∂s_1/∂W_hy is a 3-axis Jacobian (2×2×2); use it inside a chain of partials"
    with pytest.raises(ShapeError, match="3-axis"):
        parse("2 * dyhat_1/dW_hy", M)
    with pytest.raises(ShapeError, match="3-axis"):
        parse("dyhat_1/dz_1 * dz_1/dW_hy", M)  # the chain itself is 3-axis
    with pytest.raises(ShapeError, match="4-axis"):
        parse("dW_hh/dW_hy + 1", M)


def test_elementwise_shape_error_suggests_matmul() -> None:
    with pytest.raises(ShapeError) as info:
        parse("h_1 * W_hh", M)
    err = info.value
    assert err.message == "shape mismatch in * (elementwise): 1×2 * 2×2"
    assert err.hint == "did you mean @ (matrix product)?"
    assert err.position == 4
    with pytest.raises(ShapeError, match=r"did you mean \\cdot"):
        parse(r"h_1 \odot W_{hh}", M)


def test_matmul_shape_error_suggests_a_transpose() -> None:
    with pytest.raises(ShapeError) as info:
        parse("h_1 @ h_1", M)
    err = info.value
    assert err.message == "shape mismatch in @ (matrix product): 1×2 @ 1×2"
    assert "transpose one side (h_1.T @ …" in (err.hint or "")
    assert (err.hint or "").endswith("or use * for elementwise")
    assert err.position == 4
    with pytest.raises(ShapeError, match=r"juxtaposition \(matrix product\): 1×3 · 1×4") as info2:
        parse("x_1 h_1", M345)
    assert info2.value.position == 4  # no operator: the right operand
    with pytest.raises(ShapeError, match="inner sizes differ"):
        parse("x_1 @ W_hy", M345)


def test_other_shape_errors() -> None:
    with pytest.raises(ShapeError, match="out of range"):
        parse("h_1[5]", M)
    with pytest.raises(ShapeError, match="one index is not enough"):
        parse("W_hh[1]", M)
    with pytest.raises(ShapeError, match="softmax of a 2×2 matrix"):
        parse("softmax(W_hh)", M)
    with pytest.raises(ShapeError, match="different shapes"):
        parse("h_1 = W_hh", M)
    with pytest.raises(ShapeError, match="whole-number exponent"):
        parse("W_hh^0.5", M)
    with pytest.raises(ShapeError, match=r"\+"):
        parse("h_1 + W_hh", M)


def test_relu_and_step_are_elementwise_and_round_trip() -> None:
    e = P("dL/dh_1 * step(a_1) + relu(a_1 @ W_hh.T @ W_hh)")
    assert e.shape == (1, 4)
    assert P("relu(W_hh)").shape == (4, 4) and P("step(W_xh)").shape == (3, 4)
    roundtrip(e)
    assert to_plain(P("relu(a_1)")) == "relu(a_1)"
    assert to_latex(P("step(a_1)")) == r"\operatorname{step}\left(a_{1}\right)"


def test_the_books_outer_products_with_transposed_superscripts() -> None:
    e = PC(r"\sum_t \left(\nabla_{\boldsymbol{h}^{(t)}} L\right) \boldsymbol{h}^{(t-1)\top}")
    assert e == PC("dL/dh_1 @ h_0.T + dL/dh_2 @ h_1.T + dL/dh_3 @ h_2.T")
    assert e.shape == (3, 3)
    # a transposed name followed by parentheses is a product, not a node function
    assert PC(r"\boldsymbol{h}^{(1)\top}(\boldsymbol{h}^{(2)})") == PC("h_1.T @ h_2")


def test_diag_of_one_minus_h_squared_is_elementwise_on_a_vector() -> None:
    e = PC(r"\operatorname{diag}\left(1 - \left(\boldsymbol{h}^{(2)}\right)^2\right)")
    assert e == PC("diag(1 - h_2**2)")
    assert e.shape == (3, 3)
    power = next(n for n in walk(e) if isinstance(n, Power))
    assert not power.matrix and power.exponent == 2


@pytest.mark.parametrize(
    "changes, node, func",
    [
        ({"activation": "sigmoid"}, "t_1", "sigmoid"),
        ({"activation": "relu"}, "t_1", "relu"),
        ({"loss": "squared_error"}, "s_1", "identity"),
        ({"loss": "squared_error"}, "c_1", "squared_error"),
        ({}, "c_1", "cross_entropy"),
    ],
)
def test_node_function_application_follows_the_model(changes: dict, node: str, func: str) -> None:
    model = M345.replace(**changes)
    assert model.node_function({"t": "h", "s": "yhat", "c": "L"}[node[0]]) == func
    arg = {"t": "a_1", "s": "z_1", "c": "yhat_1"}[node[0]]
    e = parse(f"{node}({arg})", model, notation=SEED).expr
    assert isinstance(e, Apply) and e.node == {"t": Ref("h", 1), "s": Ref("yhat", 1), "c": Ref("L", 1)}[node[0]]
    assert to_plain(e) == f"{e.node}({arg})"
    if node[0] != "c":  # L_1(anything else) is a scalar times it
        # a wrong argument shape: the message names the model's function
        with pytest.raises(ShapeError) as err:
            parse(f"{node}(W_xh)", model, notation=SEED)
        assert f"applies {func} to a" in (err.value.hint or "")


def test_node_functions_in_the_column_convention() -> None:
    e = parse("t_1(W_xh @ x_1 + W_hh @ h_0)", RNN(convention="column"), notation=SEED).expr
    assert isinstance(e, Apply) and e.shape == (2, 1)


def test_a_node_name_before_brackets_is_a_product_when_nothing_in_them_feeds_the_node() -> None:
    """h_t (yhat_t - y_t)^T is the column outer product, even where H = O would let tanh apply."""
    col = RNN(convention="column")
    outer = parse(r"h_2 (\hat{y}_2 - y_2)^\top", col).expr
    assert to_plain(outer) == "h_2 @ (yhat_2 - y_2).T" and outer.shape == (2, 2)
    assert to_plain(parse("h_2(W_xh @ x_2 + W_hh @ h_1)", col).expr) == "h_2(W_xh @ x_2 + W_hh @ h_1)"
    # nothing feeds a_2 here either, and a product would have no shape: neither reading, an error
    with pytest.raises(ShapeError, match=r"h_2\(…\) is neither tanh applied nor a product: its brackets hold nothing h_2's input is computed from"):
        parse("h_2(y_2)", col)
    assert to_plain(parse("t_1(x_1 W_xh + h_0 W_hh)", RNN(), notation="seed").expr) == "h_1(x_1 @ W_xh + h_0 @ W_hh)"


@pytest.mark.parametrize(
    "text,same,model",
    [
        (r"W^\top_{hh}", r"W_{hh}^\top", M),
        (r"W^{\top}_{hh} + W^T_{hh}", r"W_{hh}^\top + W_{hh}^T", M),
        ("W^T_hh", "W_hh.T", M),
        (r"\sum_{t=1}^{1} \mathbf{h}^\top_t", r"h_1^\top", M),
        (r"W_{hh}' h_1'", r"W_{hh}^\top h_1^\top", M),
        ("h_1 ⋅ W_hh", "h_1 @ W_hh", M),
        ("h_1^⊤ + h_1⊤ + h_1^{⊤}", "h_1.T + h_1.T + h_1.T", M),
        ("h₁ @ W_hh + sum_{t=2}^{2} hₜ₋₁ @ Wₕₕ", "h_1 @ W_hh + h_1 @ W_hh", M),
        (r"e^{z_1} + e^{-a_1 \cdot W_{hy}}", r"\exp(z_1) + \exp(-a_1 \cdot W_{hy})", M),
        ("e**(z_1) + e^(z_1)", "exp(z_1) + exp(z_1)", M),
        (r"\|\hat y_1 - y_1\|^2 + \left\| h_1 \right\|_2^{2} + \lVert W_{hh} \rVert_F^2", r"\operatorname{sum}((\hat y_1 - y_1)^{\circ 2}) + \operatorname{sum}(h_1^{\circ 2}) + \operatorname{sum}(W_{hh}^{\circ 2})", M),
        (r"\frac{\partial L}{\partial h_2} * (1 - h_2^2)", r"\frac{\partial L}{\partial h_2} \odot (1 - h_2^2)", M),
        (r"\mathbf{W}_{hh} * W_{hh}", r"W_{hh} \cdot W_{hh}", M),  # square: still the matrix product
        (r"\sum_{t=0}^{T-1} h_{t+1}", "h_1 + h_2", M),
        (r"W_{hx} + W_{yh}^\top + W_{qh}^\top", r"W_{xh} + W_{hy}^\top + W_{hy}^\top", COL),
        ("W_hq", "W_hy", M),
    ],
)
def test_spellings_parse_to_the_canonical_tree(text: str, same: str, model: RNN) -> None:
    assert parse(text, model).expr == parse(same, model).expr


SQ = RNN(loss="squared_error")


@pytest.mark.parametrize(
    "answer,target,model",
    [
        (r"\frac{\partial L}{\partial a_2} W^\top_{hh}", "dL/dh_1", RNN(loss_at="last")),
        (r"\sum_t \mathbf{h}^\top_t (\hat y_t - y_t)", "dL/dW_hy", M),
        ("sum_t h_t' @ (yhat_t - y_t)", "dL/dW_hy", M),
        (r"\frac{\partial L}{\partial a_2} W_{hh}'", "dL/dh_1", RNN(loss_at="last")),
        (r"\frac{\partial L}{\partial h_2} * (1 - h_2^2)", "dL/da_2", RNN(loss_at="last")),
        (r"e^{z_1} \odot \frac{1}{\operatorname{sum}(e^{z_1})}", "yhat_1", M),
        (r"\frac{1}{2}\|\hat y_1 - y_1\|^2", "L_1", SQ),
        (r"\sum_{t=0}^{T-1} h_{t+1}^\top (\hat y_{t+1} - y_{t+1})", "dL/dW_hy", M),
        ("dL/da_2 ⋅ W_hh^⊤", "dL/dh_1", RNN(loss_at="last")),
        ("h₁ᵀ @ (ŷ₁ - y₁) + h₂⊤ @ (ŷ₂ - y₂)", "dL/dW_hy", M),
        (r"\sum_t (\hat y_t - y_t) h_t^\top", "dL/dW_{yh}", COL),
        (r"\sum_t (\hat y_t - y_t) h_t^\top", "dL/dW_{qh}", COL),
        (r"\sum_t \frac{\partial L}{\partial a_t} x_t^\top", r"\frac{\partial L}{\partial W_{hx}}", COL),
        (r"W_{yh}^\top (\hat y_2 - y_2)", "dL_2/dh_2", COL),
    ],
)
def test_spellings_check_equivalent(answer: str, target: str, model: RNN) -> None:
    from bptt_check.compare import check

    result = check(answer, target, model=model)
    assert result.verdict == "equivalent", str(result)


SCALAR = RNN(input_size=1, hidden_size=1, output_size=2, activation="sigmoid", loss_at="last")


def test_brackets_holding_the_node_itself_or_later_values_are_a_product() -> None:
    parsed = parse("h_1 (1 - h_1)", SCALAR)
    assert parsed.expr == parse("h_1 @ (1 - h_1)", SCALAR).expr
    assert [(a.text, a.applied) for a in parsed.ambiguous] == [("h_1 (1 - h_1)", False)]
    assert parsed.other is not None and isinstance(parsed.other.expr, Apply)  # the other reading, for the checker
    assert parse("h_1 (1 - h_2**2) dL/dh_2", SCALAR).expr == parse("h_1 @ (1 - h_2**2) @ dL/dh_2", SCALAR).expr
    # a partial, a value computed from the node, or nothing its input is computed from: a product
    for text in ("h_1 (dL/dh_1)", "h_1 (y_1)", "h_1 (2)", "h_1 (h_1 + x_1 W_xh)", "h_1 (a_2)", "h_1 (z_1)"):
        assert not isinstance(parse(text, SCALAR).expr, Apply), text
    # neither reading: not the softmax's input, and 1×2 · 1×2 has no shape
    with pytest.raises(ShapeError, match=r"yhat_1\(…\) is neither softmax applied nor a product: its brackets hold yhat_1 itself"):
        parse("yhat_1 (yhat_1 - y_1)", SCALAR)


def test_brackets_holding_what_the_input_is_computed_from_apply_the_function() -> None:
    for text, node in [
        ("h_1(x_1 @ W_xh + h_0 @ W_hh)", "h_1"),
        ("h_2(a_2)", "h_2"),
        ("h_2(x_1 W_xh)", "h_2"),  # an input of another step: applied (a slip to diagnose, not a product)
        ("h_1(x_2 W_xh + h_0 W_hh)", "h_1"),
        ("yhat_1(h_1 @ W_hy)", "yhat_1"),
        ("L_1(yhat_1)", "L_1"),
    ]:
        parsed = parse(text, SCALAR)
        assert isinstance(parsed.expr, Apply) and str(parsed.expr.node) == node, text
    parsed = parse("h_1(x_1 @ W_xh + h_0 @ W_hh)", SCALAR)
    assert [(a.text, a.applied) for a in parsed.ambiguous] == [("h_1(x_1 @ W_xh + h_0 @ W_hh)", True)]
    assert parsed.other is not None and parsed.other.expr == parse("h_1 @ (x_1 @ W_xh + h_0 @ W_hh)", SCALAR).expr
    # only the application has a shape (H = 2), and the seed's nested form: no ambiguity
    seed = parse(r"c_2(s_2(t_1(x_1 W_{xh} + h_0 W_{hh}) W_{hh} + x_2 W_{xh}) W_{hy})", M, notation=SEED)
    assert seed.other is None and seed.ambiguous == ()


def test_a_sum_flips_every_step_of_an_ambiguous_bracket_together() -> None:
    parsed = parse("sum_t h_t (1 - h_t) @ dL/dh_t", SCALAR)
    assert len(parsed.ambiguous) == 1 and parsed.other is not None
    assert [str(e.node) for e in walk(parsed.other.expr) if isinstance(e, Apply)] == ["h_1", "h_2"]
    # a scalar node before a vector: the product has another shape than the node, so only the rule reads it
    assert parse("L_1 (yhat_1)", SCALAR).other is None


def test_partials_linking_right_to_left_are_a_matrix_product_with_a_named_repair() -> None:
    col = RNN(convention="column", loss_at="last")
    parsed = parse(r"\frac{\partial h_2}{\partial h_1} \frac{\partial L}{\partial h_2}", col)
    assert isinstance(parsed.expr, Binary) and parsed.expr.op == "@" and parsed.expr.shape == (2, 1)
    [(code, message, repaired)] = parsed.repairs
    assert code == "missing_transpose" and message.startswith("multiplies ∂h_2/∂h_1 by ∂L/∂h_2 where its transpose belongs")
    assert repaired.expr == parse(r"\left(\frac{\partial h_2}{\partial h_1}\right)^\top \frac{\partial L}{\partial h_2}", col).expr
    # row vectors: the shapes do not fit, so it stays a chain break
    with pytest.raises(ChainError, match="chain breaks between ∂h_2/∂h_1 and ∂L/∂h_2"):
        parse("dh_2/dh_1 * dL/dh_2", M)
    # linking left to right: a chain, nothing to repair
    assert parse("dL/dh_2 * dh_2/dh_1", col).repairs == ()


@pytest.mark.parametrize(
    "text,same,model",
    [
        (r"\exp(z_1)/\mathbf{1}^\top\exp(z_1)", "exp(z_1) / (ones(2, 1).T @ exp(z_1))", COL),
        (r"\exp(z_1)/(\exp(z_1)\mathbf{1})", "exp(z_1) / (exp(z_1) @ ones(2, 1))", M),
        (r"\mathbf{1} - h_1^{\circ 2}", "ones(1, 2) - h_1**2", M),  # a bare vector of ones takes the row's orientation
        (r"\boldsymbol{1} - h_1^{\circ 2}", "ones(2, 1) - h_1**2", COL),
        (r"-\mathbb{1}^\top h_1", "-ones(2, 1).T @ h_1", COL),
        (r"(I - \operatorname{diag}(h_2)^2) W_{hh}", "(diag(ones(1, 2)) - diag(h_2)^2) @ W_hh", COL),
        ("I @ W_hh - 2 * I", "diag(ones(1, 2)) @ W_hh - 2 * diag(ones(1, 2))", M),
        (r"\mathbf{I} W_{xh}", "diag(ones(1, 2)) @ W_xh", M),
        (r"\mathbf{1} - h_1^2", "ones(1, 1) - h_1**2", RNN(input_size=1, hidden_size=1)),  # only 1×1 around it
    ],
)
def test_ones_and_identity_take_their_size_from_their_context(text: str, same: str, model: RNN) -> None:
    assert parse(text, model).expr == parse(same, model).expr


@pytest.mark.parametrize(
    "text,fragment",
    [
        (r"\mathbf{1}", r"the size of \mathbf{1} is not fixed here"),
        ("I", "the size of I is not fixed here"),
        (r"\exp(2\mathbf{1})", r"the size of \mathbf{1} is not fixed here"),
        (r"\mathbf{1} \mathbf{1}^\top", "is not fixed here"),
        (r"\mathbf{1}^\top \exp(z_1)", r"\mathbf{1}^T would be 1×1 here, beside a 1×2 operand"),  # a row: never silently the scalar 1
        ("I + h_1", "I (square) cannot match a 1×2 operand"),
    ],
)
def test_ones_and_identity_are_never_silently_scalars(text: str, fragment: str) -> None:
    with pytest.raises(ShapeError) as info:
        parse(text, M)
    assert fragment in str(info.value)


def test_an_inline_fraction_s_denominator_runs_on_only_when_left_to_right_has_no_shape() -> None:
    assert P("h_1 / 2 W_hh", M) == P("(h_1 / 2) @ W_hh", M)
    assert P(r"\exp(z_1)/\mathbf{1}^\top\exp(z_1)", COL) == P(r"\exp(z_1)/(\mathbf{1}^\top\exp(z_1))", COL)
    with pytest.raises(ShapeError, match=r"shape mismatch in / \(elementwise division\): 1×2 / 2×2"):
        parse("h_1 / W_hh h_1", M)  # neither grouping has a shape: the left-to-right error
    assert parse("I", M, notation=Notation.from_table({"I": "W_hh"})).expr == parse("W_hh", M).expr  # a name wins
