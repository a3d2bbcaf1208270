"""The expression language: its documented examples, the seed's Problem 3, names, shapes, chains, errors, printers."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bptt_check.errors import (
    BpttCheckError,
    ChainError,
    ConfigError,
    FileFormatError,
    LimitError,
    ParseError,
    ShapeError,
    UnknownNameError,
)
from bptt_check.language import (
    Apply,
    Binary,
    Call,
    Chain,
    Element,
    Expr,
    Name,
    Neg,
    Notation,
    Number,
    Parsed,
    Partial,
    Power,
    Transpose,
    parse,
    parse_target,
    to_latex,
    to_plain,
    walk,
)
from bptt_check.language.ast import children, postorder
from bptt_check.language.parser import lark_parser
from bptt_check.model import RNN, Ref, Target

M = RNN()  # the seed's model: T=2, D=H=O=2
M345 = RNN(input_size=3, hidden_size=4, output_size=5)  # shapes that can be told apart
SEED = Notation.SEED


def P(text: str, model: RNN = M345, **kw: object):  # type: ignore[no-untyped-def]
    return parse(text, model, **kw).expr  # type: ignore[arg-type]


def N(family: str, step: int | None = None, model: RNN = M345) -> Name:
    ref = Ref(family, step)
    return Name(ref, model.shape(ref))


def roundtrip(expr, model: RNN = M345) -> None:  # type: ignore[no-untyped-def]
    assert parse(to_plain(expr), model, syntax="plain").expr == expr, to_plain(expr)
    assert parse(to_latex(expr), model, syntax="latex").expr == expr, to_latex(expr)


# ---------------------------------------------------------------------------
# The grammar itself
# ---------------------------------------------------------------------------


def test_grammar_is_lalr_and_conflict_free() -> None:
    # built with strict=True: lark raises on any shift/reduce conflict
    parser = lark_parser()
    assert parser.options.parser == "lalr"
    assert parser.options.strict


# ---------------------------------------------------------------------------
# Plain syntax
# ---------------------------------------------------------------------------

PLAIN_SHAPES = [
    ("2", (1, 1)),
    ("0.5", (1, 1)),
    ("1e-3", (1, 1)),
    ("W_hy", (4, 5)),
    ("W_hy[0,0]", (1, 1)),
    ("h_1[1]", (1, 1)),
    ("(dL/dh_1 * (1 - h_1**2))[3]", (1, 1)),
    ("x_1 @ W_xh + h_0 @ W_hh", (1, 4)),
    ("x_1 W_xh + h_0 W_hh", (1, 4)),
    ("h_1 * h_2 - h_1 / h_2", (1, 4)),
    ("h_1 ** 2", (1, 4)),
    ("h_1.T", (4, 1)),
    ("h_1^T", (4, 1)),
    ("h_1.T @ h_2", (4, 4)),
    ("tanh(a_1)", (1, 4)),
    ("sigmoid(a_1)", (1, 4)),
    ("exp(z_1)", (1, 5)),
    ("log(yhat_1)", (1, 5)),
    ("softmax(z_1)", (1, 5)),
    ("sech(a_1)**2", (1, 4)),
    ("diag(h_1)", (4, 4)),
    ("diag(W_hh)", (1, 4)),
    ("sum(h_1)", (1, 1)),
    ("outer(h_1, z_1)", (4, 5)),
    ("ones(2, 3)", (2, 3)),
    ("ones(3)", (1, 3)),
    ("sum_{t=1}^{2} (L_t)", (1, 1)),
    ("sum_{t=1}^{T} (dL/dz_t.T @ h_t)", (5, 4)),
    ("sum_t (dL_t/dW_hy)", (4, 5)),
    ("dL/dW_hy", (4, 5)),
    ("∂L/∂W_hy", (4, 5)),
    ("d(L)/d(W_hy)", (4, 5)),
    ("dL/dW_hy[0,0]", (1, 1)),
    ("d(yhat_1[0])/d(z_1)", (1, 5)),
    ("dL/dh_2", (1, 4)),
    ("dh_2/dh_1", (4, 4)),
    ("dL/dh_2 * (1 - h_2**2) @ W_hh.T", (1, 4)),
    ("(yhat_2 - y_2).T @ h_2", (5, 4)),
    ("W_hh^2", (4, 4)),
    ("1 - h_2^2", (1, 4)),
    ("L_total", (1, 1)),
    ("h_{t-1}", None),  # unbound: see the error tests
]


@pytest.mark.parametrize("text,shape", [c for c in PLAIN_SHAPES if c[1] is not None])
def test_plain_examples_parse_with_their_shapes(text: str, shape: tuple[int, int]) -> None:
    parsed = parse(text, M345)
    assert parsed.syntax == "plain"
    assert parsed.expr.shape == shape
    roundtrip(parsed.expr)


def test_numbers_are_exact_fractions_from_their_digits() -> None:
    assert P("2") == Number(Fraction(2))
    assert P("0.5") == Number(Fraction(1, 2))
    assert P("1e-3") == Number(Fraction(1, 1000))
    assert P(".25") == Number(Fraction(1, 4))
    assert P("1.5E2") == Number(Fraction(150))
    assert P("0.1") == Number(Fraction(1, 10))  # not the float 0.1


def test_element_access_on_row_vectors_and_matrices() -> None:
    assert P("h_1[1]") == Element(N("h", 1), (0, 1))
    assert P("W_hy[2,3]") == Element(N("W_hy"), (2, 3))
    assert P("(h_1 @ W_hy)[4]") == Element(P("h_1 @ W_hy"), (0, 4))
    assert P("(h_1.T)[2]") == Element(P("h_1.T"), (2, 0))  # a column: [i] is row i


def test_sums_unroll_to_chains_of_plus() -> None:
    unrolled = P("L_1 + L_2")
    assert P("sum_{t=1}^{2} (L_t)") == unrolled
    assert P("sum_{t=1}^{T} (L_t)") == unrolled
    assert P("sum_t (L_t)") == unrolled
    assert P("sum_t L_t") == unrolled
    assert P("sum_{t=2}^{T} h_{t-1}") == N("h", 1)  # one step: no +
    three = RNN(steps=3)
    assert P("sum_t h_t", three) == P("h_1 + h_2 + h_3", three)  # left-associated chain
    assert P("sum_{t=1}^{T-1} h_{t+1}", three) == P("h_2 + h_3", three)


def test_sum_body_is_the_rest_of_its_product() -> None:
    assert P("2 * sum_t h_t @ W_hh + x_1 @ W_xh") == P("2 * (h_1 @ W_hh + h_2 @ W_hh) + x_1 @ W_xh")
    assert P("-sum_t L_t") == Neg(P("L_1 + L_2"), (1, 1))
    assert P("sum_t sum_{s=1}^{t} L_s") == P("L_1 + (L_1 + L_2)")


def test_juxtaposition_is_the_matrix_product_and_scalar_sides_multiply() -> None:
    assert P("x_1 W_xh") == P("x_1 @ W_xh")
    assert P("2 h_1") == Binary("*", Number(Fraction(2)), N("h", 1), (1, 4))
    assert P("L_1 @ h_1") == Binary("*", N("L", 1), N("h", 1), (1, 4))  # 1×1 @ anything is scalar ×
    assert P("h_1 @ W_hh @ W_hy").shape == (1, 5)


def test_precedence() -> None:
    assert P("-h_1**2") == Neg(Power(N("h", 1), Fraction(2), False, (1, 4)), (1, 4))
    assert P("h_1 + h_2 * h_1") == P("h_1 + (h_2 * h_1)")
    assert P("h_1 - h_2 - h_1") == P("(h_1 - h_2) - h_1")
    assert P("h_1 * h_2 @ W_hh") == P("(h_1 * h_2) @ W_hh")
    with pytest.raises(ParseError, match="exponent must be a number"):
        P("2 ** 3 ** 2")  # right-associative, and an exponent must be a literal
    assert P("h_1 @ W_hh.T") == P("h_1 @ (W_hh.T)")
    assert P("h_1**-1") == Power(N("h", 1), Fraction(-1), False, (1, 4))
    assert P("h_1**(1/2)") == Power(N("h", 1), Fraction(1, 2), False, (1, 4))


def test_powers_elementwise_or_matrix() -> None:
    assert P("h_1 ** 2") == Power(N("h", 1), Fraction(2), False, (1, 4))
    assert P("h_1 ^ 2") == Power(N("h", 1), Fraction(2), False, (1, 4))  # not square: elementwise
    assert P("W_hh ^ 2") == Power(N("W_hh"), Fraction(2), True, (4, 4))  # square: matrix power
    assert P("W_hh ** 2") == Power(N("W_hh"), Fraction(2), False, (4, 4))
    assert P("W_hy ^ 2", M).matrix is True  # 2×2 in the seed's model
    assert P("L_1 ^ 2") == Power(N("L", 1), Fraction(2), False, (1, 1))


def test_functions() -> None:
    h1 = N("h", 1)
    assert P("tanh(h_1)") == Call("tanh", (h1,), (1, 4))
    assert P("outer(h_1, y_1)") == Call("outer", (h1, N("y", 1)), (4, 5))
    assert P("ones(2, 3)") == Call("ones", (Number(Fraction(2)), Number(Fraction(3))), (2, 3))
    assert P("diag(1 - h_1**2)").shape == (4, 4)


# ---------------------------------------------------------------------------
# LaTeX syntax
# ---------------------------------------------------------------------------

LATEX_SAME_AS_PLAIN = [
    (r"\frac{\partial L_1}{\partial W_{hy}}", "dL_1/dW_hy"),
    (r"\frac{\partial L}{\partial W_{hy}^{00}}", "dL/dW_hy[0,0]"),
    (r"\frac{\partial L}{\partial W_{hy}^{0,3}}", "dL/dW_hy[0,3]"),
    (r"\frac{\partial L}{\partial W_{hy}[1,2]}", "dL/dW_hy[1,2]"),
    (r"\frac{dL}{dW_{hy}}", "dL/dW_hy"),
    (r"\frac{\mathrm{d} L}{\mathrm{d} W_{hy}}", "dL/dW_hy"),
    (r"\nabla_{h_2} L", "dL/dh_2"),
    (r"\nabla_{W_{hy}} L_1", "dL_1/dW_hy"),
    (r"\hat{y}_1 - y_1", "yhat_1 - y_1"),
    (r"\hat y_{1} - y_{1}", "yhat_1 - y_1"),
    (r"\hat{\mathbf{y}}_1", "yhat_1"),
    (r"\sum_{t=1}^{T} h_{t-1}", "h_0 + h_1"),
    (r"\sum_{t=1}^{2} L_t", "L_1 + L_2"),
    (r"\sum_t L_t", "L_1 + L_2"),
    (r"L_{total}", "L"),
    (r"L_{\text{total}}", "L"),
    (r"\mathcal{L}", "L"),
    (r"h_1^T", "h_1.T"),
    (r"h_1^\top", "h_1.T"),
    (r"h_1^{T}", "h_1.T"),
    (r"h_1^{\top}", "h_1.T"),
    (r"h_1 \odot h_2", "h_1 * h_2"),
    (r"h_1 \circ h_2", "h_1 * h_2"),
    (r"h_1 \cdot W_{hh}", "h_1 @ W_hh"),
    (r"h_1 \times W_{hh}", "h_1 @ W_hh"),
    (r"h_1 * W_{hh}", "h_1 @ W_hh"),  # in LaTeX * is the ordinary product
    (r"h_1 W_{hh}", "h_1 @ W_hh"),
    (r"2 \cdot h_1", "2 * h_1"),
    (r"\tanh(a_1)", "tanh(a_1)"),
    (r"\tanh a_1", "tanh(a_1)"),
    (r"\exp(z_1)", "exp(z_1)"),
    (r"\log \hat{y}_1", "log(yhat_1)"),
    (r"y_1 \log \hat{y}_1", "y_1 @ log(yhat_1)") if False else (r"\log(\hat{y}_1) \odot y_1", "log(yhat_1) * y_1"),
    (r"\operatorname{diag}(h_1)", "diag(h_1)"),
    (r"\mathrm{diag}(h_1)", "diag(h_1)"),
    (r"\operatorname{softmax}(z_1)", "softmax(z_1)"),
    (r"\sigma(a_1)", "sigmoid(a_1)"),
    (r"\operatorname{sech}^2(a_1)", "sech(a_1)**2"),
    (r"\tanh^2(a_1)", "tanh(a_1)**2"),
    (r"\left( h_1 + h_2 \right) W_{hh}", "(h_1 + h_2) @ W_hh"),
    (r"\left[ h_1 + h_2 \right] W_{hh}", "(h_1 + h_2) @ W_hh"),
    (r"\mathbf{h}_1 \boldsymbol{W}_{hh} \bm{W}_{hh}", "h_1 @ W_hh @ W_hh"),
    (r"\mathbf{h_1}", "h_1"),
    (r"\frac{1}{2} h_1", "1 / 2 * h_1"),
    (r"\frac{h_1}{h_2}", "h_1 / h_2"),
    (r"{h_1 + h_2}^T", "(h_1 + h_2).T"),
    (r"h_1 \, W_{hh} \; \! \quad", "h_1 @ W_hh"),
    (r"1 - h_2^2", "1 - h_2**2"),
    (r"W_{hh}^2", "W_hh^2"),
    (r"W_{hh}^{\circ 2}", "W_hh**2"),
    (r"W_{hh}^{-1}", "W_hh^(-1)"),
    (r"h^{(1)}", "h_1"),
    (r"\hat{y}^{(2)} - y^{(2)}", "yhat_2 - y_2"),
    (r"\nabla_{\mathbf{h}^{(1)}} L", "dL/dh_1"),
    (r"$h_1 + h_2$", "h_1 + h_2"),
    (r"&= h_1 + h_2 \\", "h_1 + h_2"),  # an align continuation line
    (r"& h_1 + h_2 \\", "h_1 + h_2"),
    (r"\begin{equation} h_1 + h_2 \end{equation}", "h_1 + h_2"),
    (r"h_1 + h_2.", "h_1 + h_2"),
    (r"\frac{\partial L}{\partial h_2} \odot (1 - h_2^2) W_{hh}^\top", "dL/dh_2 * (1 - h_2**2) @ W_hh.T"),
    (r"\sum_{t=1}^{T} (\hat{y}_t - y_t)^T h_t", "sum_{t=1}^{T} (yhat_t - y_t).T @ h_t"),
    (r"\left(\frac{\partial L}{\partial h_1}\right)[3]", "(dL/dh_1)[3]"),
    (r"W_{hy}[0,1]", "W_hy[0,1]"),
    (r"W_{hy}^{01}", "W_hy[0,1]"),
    (r"\frac{\partial L}{\partial z_1} W_{hy}^T", "dL/dz_1 @ W_hy.T"),
]


@pytest.mark.parametrize("latex,plain", LATEX_SAME_AS_PLAIN)
def test_latex_spellings_parse_to_the_plain_tree(latex: str, plain: str) -> None:
    parsed = parse(latex, M345, syntax="latex")
    if "\\" in latex:
        assert parse(latex, M345).syntax == "latex"  # auto-detected
    assert parsed.expr == P(plain)
    roundtrip(parsed.expr)


def test_syntax_detection_and_forcing() -> None:
    assert parse("$h_1$", M).syntax == "latex"
    with pytest.raises(ParseError, match="syntax='latex'"):
        parse("$h_1$", M, syntax="plain")
    assert parse("h_1 * h_2", M).syntax == "plain"
    assert parse(r"h_1 \odot h_2", M).syntax == "latex"
    assert parse("h_1 W_hh", M, syntax="latex").syntax == "latex"
    # forced LaTeX: * is the ordinary product
    assert parse("h_1 * W_hh", M, syntax="latex").expr == P("h_1 @ W_hh", M)
    with pytest.raises(ParseError, match="syntax='latex'"):
        parse(r"h_1 \cdot W_hh", M, syntax="plain")


def test_unicode_operator_spellings() -> None:
    assert P("h_1 ⊙ h_2") == P("h_1 * h_2")
    assert P("h_1 · W_hh") == P("h_1 @ W_hh")
    assert P("h_1 − h_2") == P("h_1 - h_2")
    assert P("h_1ᵀ") == P("h_1.T")
    assert P("ŷ_1") == P("yhat_1")
    assert P("∇_{h_1} L") == P("dL/dh_1")


# ---------------------------------------------------------------------------
# The seed homework, Problem 3 (transcribed verbatim from seeds/000_47d7b94be939491d.txt)
# ---------------------------------------------------------------------------

SEED_3A = [
    r"L_1 &= c_1 (s_1 (t_1 (x_1 \cdot W_{xh} + h_0 \cdot W_{hh}) * W_{hy})) \\",
    r"&\frac{\partial L_1}{\partial W_{hy}} = \frac{\partial L_1}{\partial c_1} \frac{\partial c_1}{\partial s_1} \frac{\partial s_1}{\partial W_{hy}} \\",
    r"L_2 &= c_2 (s_2 (t_2 (t_1 (x_1 \cdot W_{xh} + h_0 \cdot W_{hh}) \cdot W_{hh} + x_2 \cdot W_{xh}) \cdot W_{hy})) \\",
    r"&\frac{\partial L_2}{\partial W_{hy}} = \frac{\partial L_2}{\partial c_2} \frac{\partial c_2}{\partial s_2} \frac{\partial s_2}{\partial W_{hy}} \\",
    r"&\frac{\partial L_{total}}{\partial W_{hy}} = \frac{\partial L_1}{\partial c_1} \frac{\partial c_1}{\partial s_1} \frac{\partial s_1}{\partial W_{hy}} + \frac{\partial L_2}{\partial c_2} \frac{\partial c_2}{\partial s_2} \frac{\partial s_2}{\partial W_{hy}}",
]
SEED_3A_INLINE = [
    r"W_{hy} = W_{hy} - \frac{\partial L_{total}}{\partial W_{hy}}",
    r"\frac{\partial L_{total}}{\partial W_{hy}^{00}} = \frac{\partial L_{1}}{\partial W_{hy}^{00}} + \frac{\partial L_{2}}{\partial W_{hy}^{00}}",
]
SEED_3B_L2 = r"L_2 = c_2(s_2(t_1(x_1 \cdot W_{xh} + h_0 \cdot W_{hh}) \cdot W_{hh} + x_2 \cdot W_{xh}) \cdot W_{hu}))"
SEED_3B = [
    r"\frac{\partial L_2}{\partial W_{hy}} &= \frac{\partial L_2}{\partial c_2} \frac{\partial c_2}{\partial s_2} \frac{\partial s_2}{\partial W_{hy}} \\",
    r"\frac{\partial L_{total}}{\partial W_{hy}} &= \frac{\partial L_2}{\partial c_2} \frac{\partial c_2}{\partial s_2} \frac{\partial s_2}{\partial W_{hy}}",
]


def _seed_chain(step: int, model: RNN = M) -> Chain:
    L, yhat, W = Ref("L", step), Ref("yhat", step), Ref("W_hy")
    O, H = model.output_size, model.hidden_size
    return Chain(
        (
            Partial(L, L, (1, 1), ()),
            Partial(L, yhat, (1, O), (O,)),
            Partial(yhat, W, (O, H, O), (O, H, O)),
        ),
        (H, O),
        (H, O),
    )


def _seed_forward(step: int, model: RNN = M) -> Apply:
    def n(f: str, s: int | None = None) -> Name:
        return N(f, s, model)

    H, O = model.hidden_size, model.output_size
    h: object = None
    for t in range(1, step + 1):
        prev = n("h", 0) if t == 1 else h
        a = Binary(
            "+",
            Binary("@", n("x", 1), n("W_xh"), (1, H)) if t == 1 else Binary("@", prev, n("W_hh"), (1, H)),  # type: ignore[arg-type]
            Binary("@", prev, n("W_hh"), (1, H)) if t == 1 else Binary("@", n("x", t), n("W_xh"), (1, H)),  # type: ignore[arg-type]
            (1, H),
        )
        h = Apply(Ref("h", t), a, (1, H))
    z = Binary("@", h, n("W_hy"), (1, O))  # type: ignore[arg-type]
    return Apply(Ref("L", step), Apply(Ref("yhat", step), z, (1, O)), (1, 1))


@pytest.mark.parametrize("model", [M, M345], ids=["2-2-2", "3-4-5"])
def test_seed_3a_parses_as_written(model: RNN) -> None:
    l1, dl1, l2, dl2, dtotal = (parse(t, model, notation=SEED) for t in SEED_3A)
    for parsed in (l1, dl1, l2, dl2, dtotal):
        assert parsed.syntax == "latex"
    H, O = model.hidden_size, model.output_size
    # L_1 = c_1(s_1(t_1(x_1 W_xh + h_0 W_hh) W_hy)): nested node functions
    assert l1.lhs == N("L", 1, model)
    assert l1.expr == _seed_forward(1, model)
    assert l2.lhs == N("L", 2, model)
    assert l2.expr == _seed_forward(2, model)
    # the chains: ∂L_1/∂c_1 is ∂L_1/∂L_1 (c is L)
    assert dl1.lhs == Partial(Ref("L", 1), Ref("W_hy"), (H, O), (H, O))
    assert dl1.expr == _seed_chain(1, model)
    assert dl2.expr == _seed_chain(2, model)
    assert dtotal.lhs == Partial(Ref("L"), Ref("W_hy"), (H, O), (H, O))
    assert dtotal.expr == Binary("+", _seed_chain(1, model), _seed_chain(2, model), (H, O))
    assert [str(p.num) for p in dtotal.partials] == ["L_1", "L_1", "yhat_1", "L_2", "L_2", "yhat_2"]


def test_seed_3a_inline_equations() -> None:
    update, entry = (parse(t, M, notation=SEED) for t in SEED_3A_INLINE)
    assert update.lhs == N("W_hy", model=M)
    assert update.expr == Binary("-", N("W_hy", model=M), Partial(Ref("L"), Ref("W_hy"), (2, 2), (2, 2)), (2, 2))
    scalar = [Partial(Ref(*r), Ref("W_hy"), (1, 1), (), None, (0, 0)) for r in (("L",), ("L", 1), ("L", 2))]
    assert entry.lhs == scalar[0]
    assert entry.expr == Binary("+", scalar[1], scalar[2], (1, 1))


def test_seed_3a_plain_transcriptions() -> None:
    assert P("L_1 = c_1(s_1(t_1(x_1 W_xh + h_0 W_hh) W_hy))", M, notation=SEED) == _seed_forward(1)
    chains = P("dL_1/dc_1 * dc_1/ds_1 * ds_1/dW_hy + dL_2/dc_2 * dc_2/ds_2 * ds_2/dW_hy", M, notation=SEED)
    assert chains == Binary("+", _seed_chain(1), _seed_chain(2), (2, 2))


def test_seed_3b_w_hu_is_an_unknown_name_with_a_suggestion() -> None:
    with pytest.raises(UnknownNameError) as info:
        parse(SEED_3B_L2, M, notation=SEED)
    err = info.value
    assert err.message == "unknown name W_hu"
    assert err.hint is not None and err.hint.startswith("did you mean W_hy?")
    assert err.position == SEED_3B_L2.index("W_{hu}")
    assert "did you mean W_hy?" in str(err)
    caret = err.caret().splitlines()
    assert caret[1].index("^") == caret[0].index("W_{hu}")


def test_seed_3b_with_the_name_fixed_still_has_its_extra_parenthesis() -> None:
    fixed = SEED_3B_L2.replace("W_{hu}", "W_{hy}")
    with pytest.raises(ParseError, match="no matching opening bracket") as info:
        parse(fixed, M, notation=SEED)
    assert info.value.position == len(fixed) - 1


def test_seed_3b_chains() -> None:
    first, total = (parse(t, M, notation=SEED) for t in SEED_3B)
    assert first.expr == total.expr == _seed_chain(2)
    assert total.lhs == Partial(Ref("L"), Ref("W_hy"), (2, 2), (2, 2))


def test_seed_prose_sum_without_an_index_is_refused_with_a_hint() -> None:
    with pytest.raises(ParseError) as info:
        parse(r"L_{total} = \sum_{1}^{2} L_{i}", M)
    assert "name the index" in (info.value.hint or "")


# ---------------------------------------------------------------------------
# Names and notation
# ---------------------------------------------------------------------------


def test_canonical_names_and_spellings() -> None:
    assert P("W_xh") == N("W_xh")
    assert P(r"W_{xh}") == N("W_xh")
    assert P("yhat_2") == P("y_hat_2") == P(r"\hat{y}_2") == N("yhat", 2)
    assert P("L") == P("L_total") == P(r"L_{total}") == N("L")
    assert P("h_0") == N("h", 0)
    assert P("h_T") == N("h", 2)
    assert P("a_1").shape == (1, 4) and P("z_2").shape == (1, 5) and P("x_1").shape == (1, 3)


def test_biases_only_in_a_model_with_biases() -> None:
    with pytest.raises(UnknownNameError, match="no biases"):
        parse("b_h", M)
    assert parse("h_1 @ W_hy + b_y", RNN(biases=True)).expr.shape == (1, 2)


def test_seed_and_textbook_notations() -> None:
    assert P("t_1", notation=SEED) == N("h", 1)
    assert P("s_2", notation=SEED) == N("yhat", 2)
    assert P("c_1", notation=SEED) == N("L", 1)
    tb = Notation.TEXTBOOK
    assert P("U", notation=tb) == N("W_xh")
    assert P("W", notation=tb) == N("W_hh")
    assert P("V", notation=tb) == N("W_hy")
    assert P("o_1", notation=tb) == N("z", 1)
    assert P("W_hh", notation=tb) == N("W_hh")  # canonical names still work
    assert P("c", RNN(biases=True), notation=tb) == Name(Ref("b_y"), (1, 2))


def test_notation_from_table() -> None:
    n = Notation.from_table({"t": "h", "s": "yhat", "c": "L", "U": "W_xh"})
    assert n.aliases == {"U": "W_xh", "c": "L", "s": "yhat", "t": "h"}
    assert n == Notation.SEED | Notation.from_table({"U": "W_xh"})
    assert P("U", notation=n) == N("W_xh")


@pytest.mark.parametrize(
    "table,key",
    [
        ({"t": "hh"}, "t"),
        ({"1t": "h"}, "1t"),
        ({"tanh": "h"}, "tanh"),
        ({"h": "yhat"}, "h"),
        ({"t": 3}, "t"),
        ({"d": "h"}, "d"),
    ],
)
def test_notation_table_errors_name_the_key(table: dict, key: str) -> None:
    with pytest.raises(FileFormatError) as info:
        Notation.from_table(table, source="q.toml")
    assert f"q.toml: [notation] {key}:" in str(info.value)
    with pytest.raises(ConfigError) as info2:
        Notation.from_table(table)
    assert f"[notation] {key}:" in str(info2.value)


def test_notation_value_suggestion() -> None:
    with pytest.raises(ConfigError, match="did you mean 'yhat'"):
        Notation.from_table({"s": "y_hat"})


def test_unknown_names_suggest_the_nearest() -> None:
    cases = {"W_hu": "W_hy", "w_hy": "W_hy", "Whh": "W_hh", "yhat1": "yhat_1", "tanhh": "tanh"}
    for wrong, right in cases.items():
        with pytest.raises(UnknownNameError) as info:
            parse(wrong, M)
        assert info.value.message == f"unknown name {wrong}"
        assert (info.value.hint or "").startswith(f"did you mean {right}?"), info.value.hint
    with pytest.raises(UnknownNameError, match="did you mean t_1"):
        parse("tt_1", M, notation=SEED)
    with pytest.raises(UnknownNameError, match="the step l is not bound"):
        parse("t_l", M, notation=SEED)  # a letter subscript is a step index


def test_steps_out_of_range_say_which_steps_exist() -> None:
    with pytest.raises(UnknownNameError, match=r"h_3 is not a step of this model: h has steps 0\.\.2"):
        parse("h_3", M)
    with pytest.raises(UnknownNameError, match=r"y has steps 1\.\.2") as info:
        parse("y_0", M)
    assert "only h has a step 0" in (info.value.hint or "")
    assert P("sum_t h_{t-1}", M) == P("h_0 + h_1", M)  # h_{t-1} at t=1 is h_0: fine
    with pytest.raises(UnknownNameError, match=r"y_0 \(y_\{t-1\} with t = 1\)") as info:
        parse("sum_t y_{t-1}", M)
    assert info.value.position == len("sum_t ")
    with pytest.raises(UnknownNameError, match=r"t_3 \(= h_3\)"):
        parse("t_3", M, notation=SEED)


def test_unbound_step_index() -> None:
    with pytest.raises(UnknownNameError, match="the step t is not bound") as info:
        parse("h_{t-1}", M)
    assert "sum_{t=1}" in (info.value.hint or "")
    with pytest.raises(UnknownNameError, match="needs a step"):
        parse("h + 1", M)


# ---------------------------------------------------------------------------
# Node functions applied
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Partials and chains
# ---------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    "text",
    [
        "d(h_1 + h_2)/dW_hh",
        r"\frac{\partial (h_1 W_{hh})}{\partial W_{hh}}",
        r"\frac{\partial L}{\partial (W_{hh} + W_{hh})}",
        r"\frac{\partial^2 L}{\partial W_{hh}^2}",
        r"\frac{\partial}{\partial W_{hh}} L",
        "∂(h_1 @ W_hh)/∂W_hh",
    ],
)
def test_partials_of_non_names_are_parse_errors_with_a_hint(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text, M)
    assert info.value.hint


# ---------------------------------------------------------------------------
# Shape errors
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Parse errors: positions and hints
# ---------------------------------------------------------------------------


def test_prime_after_a_value_is_a_transpose_after_a_function_a_derivative() -> None:
    assert parse("W_hh @ h_1'", M).expr == parse("W_hh @ h_1.T", M).expr
    assert parse(r"h_1 W_{hh}'", M).expr == parse(r"h_1 W_{hh}^\top", M).expr
    assert parse("(h_1 @ W_hh)\u2032", M).expr == parse("(h_1 @ W_hh).T", M).expr
    assert parse("dL/dh_1'", M).expr == parse("(dL/dh_1).T", M).expr
    with pytest.raises(ParseError, match="prime"):
        parse(r"\tanh'(a_1)", M)
    with pytest.raises(ParseError, match="' is not a transpose") as info:
        parse("'h_1", M)
    assert info.value.position == 0


@pytest.mark.parametrize(
    "text,position,fragment",
    [
        ("h_1 +", 5, "ends too early"),
        ("(h_1 + h_2", 0, "never closed"),
        ("h_1 + h_2)", 9, "no matching opening"),
        ("(h_1]", 4, "does not match"),
        ("h_1 + * h_2", 6, "unexpected *"),
        ("h_1 = h_2 = h_1", 10, "unexpected ="),
        ("h_1 == h_2", 4, "== is not an operator"),
        ("h_1 ? h_2", 4, "unexpected character '?'"),
        ("W_hy[0:1]", 4, "[ must hold an index"),
        (r"\foo h_1", 0, r"unknown LaTeX command \foo"),
        (r"h_1 \\ h_2", 4, "line break"),
        ("tanh h_1", 0, "tanh needs parentheses"),
        ("outer(h_1)", 0, "outer takes 2 arguments"),
        ("   ", 0, "empty"),
        ("h_1 % 2", 4, "unexpected character '%'"),
        ("h_1\x00", 3, "control character U+0000"),
        ("L = h_1 ^ h_2", 10, "the exponent must be a number"),
    ],
)
def test_parse_errors_have_positions(text: str, position: int, fragment: str) -> None:
    with pytest.raises(BpttCheckError) as info:
        parse(text, M)
    err = info.value
    assert fragment in str(err)
    assert err.position == position, str(err)  # type: ignore[attr-defined]


def test_caret_display() -> None:
    with pytest.raises(ParseError) as info:
        parse("h_1 + * h_2", M)
    assert info.value.caret() == "  h_1 + * h_2\n        ^"
    assert "at column 7" in str(info.value)


def test_unknown_name_before_a_later_syntax_error() -> None:
    with pytest.raises(UnknownNameError):
        parse("h_1 + W_hu)", M)
    with pytest.raises(ParseError):
        parse("h_1 + ) W_hu", M)


# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------


def test_limits() -> None:
    with pytest.raises(LimitError, match="characters long"):
        parse("h_1 + " * 90_000, M)
    with pytest.raises(LimitError, match="nest more than 64"):
        parse("(" * 65 + "h_1" + ")" * 65, M)
    assert parse("(" * 64 + "h_1" + ")" * 64, M).expr == N("h", 1, M)
    with pytest.raises(LimitError, match="31 digits"):
        parse("1" * 31, M)
    parse("1" * 30, M)
    with pytest.raises(LimitError, match="too large or too small"):
        parse("1e31", M)
    with pytest.raises(LimitError, match="exponent 17"):
        parse("h_1 ** 17", M)
    parse("h_1 ** 16 + h_1 ** -16", M)
    with pytest.raises(LimitError, match="beyond the model's steps"):
        parse("sum_{t=1}^{3} h_t", M)
    with pytest.raises(LimitError, match="beyond the model's steps"):
        parse("sum_{t=0}^{T+1} h_t", M)
    with pytest.raises(UnknownNameError, match=r"L_0 \(L_t with t = 0\) is not a step"):
        parse("sum_{t=0}^{T} L_t", M)
    with pytest.raises(LimitError, match="more than 100000 nodes"):
        parse("sum_t " * 16 + "L_t", M)  # 2**16 terms
    with pytest.raises(LimitError, match="more than 50000 tokens"):
        parse("+".join(["1"] * 25_001), M)
    with pytest.raises(UnknownNameError, match=r"\(200 characters\)"):
        parse("x" * 200, M)
    with pytest.raises(LimitError, match="nests too deeply"):  # nesting as written: 2 levels per signed sum
        parse("sum_t -" * 101 + "h_t", RNN(steps=1))
    assert parse("sum_t -" * 99 + "h_t", RNN(steps=1)).expr.shape == (1, 2)
    with pytest.raises(LimitError, match="signs in a row"):
        parse("-" * 17 + "h_1", M)
    with pytest.raises(LimitError, match="transposes in a row"):
        parse("h_1" + ".T" * 17, M)
    assert parse("h_1" + ".T" * 16, M).expr.shape == (1, 2)
    assert parse(r"\frac{" * 40 + "1" + "}{2}" * 40, M).expr.shape == (1, 1)
    with pytest.raises(ParseError, match="exponent must be a number"):
        parse("9**9**9**9", M)


def test_parse_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        parse("h_1", M, syntax="markdown")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        parse("h_1", "model")  # type: ignore[arg-type]
    with pytest.raises(ParseError):
        parse(b"h_1", M)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,target",
    [
        ("dL/dW_hy", Target(Ref("L"), Ref("W_hy"))),
        ("dL/dW_hy[0,0]", Target(Ref("L"), Ref("W_hy"), (0, 0))),
        (r"\frac{\partial L}{\partial W_{hy}^{00}}", Target(Ref("L"), Ref("W_hy"), (0, 0))),
        ("dL_2/dW_hh", Target(Ref("L", 2), Ref("W_hh"))),
        ("dL/dh_1", Target(Ref("L"), Ref("h", 1))),
        ("dL/dx_1", Target(Ref("L"), Ref("x", 1))),
        ("dL/dh_0", Target(Ref("L"), Ref("h", 0))),
        ("L_2", Target(Ref("L", 2))),
        ("h_2", Target(Ref("h", 2))),
        ("h_2[1]", Target(Ref("h", 2), None, (0, 1))),
        ("dyhat_1/dW_hy", Target(Ref("yhat", 1), Ref("W_hy"))),  # a tensor target is allowed
        ("dc_1/dW_hy", Target(Ref("L", 1), Ref("W_hy"))),
    ],
)
def test_parse_target(text: str, target: Target) -> None:
    assert parse_target(text, M, notation=SEED) == target


@pytest.mark.parametrize("text", ["h_1 + h_2", "L_1 = L_1", "d(yhat_1[0])/dz_1", "dL/dh_1 * dh_1/dW_hh"])
def test_parse_target_rejects_non_targets(text: str) -> None:
    with pytest.raises(ParseError):
        parse_target(text, M)


# ---------------------------------------------------------------------------
# Printers
# ---------------------------------------------------------------------------


def test_printers_examples() -> None:
    e = P("L_1 = c_1(s_1(t_1(x_1 W_xh + h_0 W_hh) W_hy))", M, notation=SEED)
    assert to_plain(e) == "L_1(yhat_1(h_1(x_1 @ W_xh + h_0 @ W_hh) @ W_hy))"
    assert to_latex(e) == (
        r"L_{1}\left(\hat{y}_{1}\left(h_{1}\left(x_{1} \cdot W_{xh} + h_{0} \cdot W_{hh}\right)"
        r" \cdot W_{hy}\right)\right)"
    )
    chain = P("dL_1/dc_1 * dc_1/ds_1 * ds_1/dW_hy", M, notation=SEED)
    assert to_plain(chain) == "dL_1/dL_1 * dL_1/dyhat_1 * dyhat_1/dW_hy"
    assert to_latex(chain) == (
        r"\frac{\partial L_{1}}{\partial L_{1}} \frac{\partial L_{1}}{\partial \hat{y}_{1}}"
        r" \frac{\partial \hat{y}_{1}}{\partial W_{hy}}"
    )
    assert to_plain(P("h_1 - (h_2 - h_1)")) == "h_1 - (h_2 - h_1)"
    assert to_plain(P("(h_1 - h_2) - h_1")) == "h_1 - h_2 - h_1"
    assert to_plain(P("-(h_1 @ W_hh)")) == "-(h_1 @ W_hh)"
    assert to_plain(P("dL/dW_hy[0,1]")) == "dL/dW_hy[0,1]"
    assert to_plain(P("(dL/dh_1)[2]")) == "(dL/dh_1)[0,2]"
    assert to_plain(P("d(yhat_1[2])/dz_1")) == "d(yhat_1[0,2])/dz_1"
    assert to_latex(P("W_hh**2")) == r"W_{hh}^{\circ 2}"
    assert to_latex(P("h_1 / h_2")) == r"\frac{h_{1}}{h_{2}}"
    assert to_plain(P("1e-30 + 1e30")) == "1e-30 + 1e30"
    assert to_plain(P("0.125")) == "0.125"


def test_two_digit_power_of_a_name_keeps_its_meaning_in_latex() -> None:
    big = RNN(hidden_size=12)
    e = P("W_hh^10", big)
    assert e == Power(Name(Ref("W_hh"), (12, 12)), Fraction(10), True, (12, 12))
    assert to_latex(e) == r"{W_{hh}}^{10}"
    roundtrip(e, big)


@pytest.mark.parametrize("text", [t for t, s in PLAIN_SHAPES if s is not None] + [p for _, p in LATEX_SAME_AS_PLAIN])
def test_printers_round_trip_the_examples(text: str) -> None:
    roundtrip(P(text))


# ---------------------------------------------------------------------------
# Property: one meaning, two syntaxes (generated expressions)
# ---------------------------------------------------------------------------


def _leaves(model: RNN) -> dict[tuple[int, int], list[tuple[str, str]]]:
    D, H, O = model.sizes
    out: dict[tuple[int, int], list[tuple[str, str]]] = {}

    def add(shape: tuple[int, int], plain: str, latex: str) -> None:
        out.setdefault(shape, []).append((plain, latex))

    add((D, H), "W_xh", r"W_{xh}")
    add((H, H), "W_hh", r"\mathbf{W}_{hh}")
    add((H, O), "W_hy", r"W_{hy}")
    add((1, H), "h_0", r"h_{0}")
    add((1, 1), "L", r"L_{total}")
    add((1, 1), "2", "2")
    add((1, 1), "0.5", "0.5")
    for t in model.steps_range():
        add((1, D), f"x_{t}", rf"x_{{{t}}}")
        add((1, O), f"y_{t}", rf"y^{{({t})}}")
        add((1, H), f"a_{t}", rf"a_{t}")
        add((1, H), f"h_{t}", rf"\mathbf{{h}}_{{{t}}}")
        add((1, O), f"z_{t}", rf"z_{{{t}}}")
        add((1, O), f"yhat_{t}", rf"\hat{{y}}_{{{t}}}")
        add((1, 1), f"L_{t}", rf"L_{{{t}}}")
        add((1, H), f"dL/dh_{t}", rf"\frac{{\partial L}}{{\partial h_{{{t}}}}}")
        add((1, O), f"dL_{t}/dz_{t}", rf"\nabla_{{z_{{{t}}}}} L_{{{t}}}")
    add((H, O), "dL/dW_hy", r"\frac{\partial L}{\partial W_{hy}}")
    add((H, H), "dL/dW_hh", r"\nabla_{W_{hh}} L")
    add((1, 1), "dL/dW_hy[0,1]", r"\frac{\partial L}{\partial W_{hy}^{01}}")
    # composite leaves are parenthesized, like every composite the generator builds
    add((H, O), "(dL_1/dyhat_1 * dyhat_1/dW_hy)", r"\left(\frac{\partial L_1}{\partial \hat{y}_1} \frac{\partial \hat{y}_1}{\partial W_{hy}}\right)")
    add((1, H), "(sum_t (dL/dh_t))", r"{\sum_{t=1}^{T} \frac{\partial L}{\partial h_t}}")
    add((1, 1), "(sum_{t=1}^{T} L_t)", r"\left(\sum_t L_{t}\right)")
    return out


def _twins(model: RNN):  # type: ignore[no-untyped-def]
    """A strategy of (plain, latex) spellings of one expression, of a given shape."""
    D, H, O = model.sizes
    leaves = _leaves(model)
    partial_leaves = {pair for pairs in leaves.values() for pair in pairs if "/d" in pair[0]}

    def is_partial(pair: tuple[str, str]) -> bool:
        return pair in partial_leaves
    sizes = sorted({1, D, H, O})

    def group(draw, plain: str, latex: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        opener = draw(st.sampled_from([(r"\left(", r"\right)"), ("(", ")"), ("{", "}")]))
        return f"({plain})", f"{opener[0]}{latex}{opener[1]}"

    def not_two_partials(draw, left: tuple[str, str], right: tuple[str, str]) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        # Two partials side by side are a chain, not an ordinary product: keep them apart.
        if is_partial(left) and is_partial(right):
            return group(draw, f"2 * {right[0]}", rf"2 \cdot {right[1]}")
        return right

    @st.composite
    def expr(draw, shape: tuple[int, int], depth: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        r, c = shape
        options = ["leaf"]
        if depth > 0:
            options += ["add", "elem", "scale", "matmul", "transpose", "neg", "func", "power"]
            if shape == (1, 1):
                options += ["element", "sumall"]
            if r == 1 and c in (H, O):
                options += ["apply"]
            if r == 1:
                options += ["softmax"]
            if r == c and r > 1:
                options += ["diag", "matpow"]
            if r > 1 and c > 1:
                options += ["outer"]
        kind = draw(st.sampled_from(options))
        sub = depth - 1
        if kind == "leaf":
            choices = leaves.get(shape, [])
            if not choices or draw(st.integers(0, 5)) == 0:
                return f"ones({r}, {c})", rf"\operatorname{{ones}}({r}, {c})"
            return draw(st.sampled_from(choices))
        if kind == "add":
            (p1, l1), (p2, l2) = draw(expr(shape, sub)), draw(expr(shape, sub))
            op = draw(st.sampled_from(["+", "-"]))
            return group(draw, f"{p1} {op} {p2}", f"{l1} {op} {l2}")
        if kind == "elem":
            left, right = draw(expr(shape, sub)), draw(expr(shape, sub))
            (p1, l1), (p2, l2) = left, not_two_partials(draw, left, right)
            if draw(st.booleans()):
                return group(draw, f"{p1} * {p2}", f"{l1} \\odot {l2}")
            return group(draw, f"{p1} / {p2}", rf"\frac{{{l1}}}{{{l2}}}")
        if kind == "scale":
            left, right = draw(expr((1, 1), sub)), draw(expr(shape, sub))
            (p1, l1), (p2, l2) = left, not_two_partials(draw, left, right)
            return group(draw, f"{p1} * {p2}", f"{l1} \\cdot {l2}")
        if kind == "matmul":
            k = draw(st.sampled_from(sizes))
            left, right = draw(expr((r, k), sub)), draw(expr((k, c), sub))
            (p1, l1), (p2, l2) = left, not_two_partials(draw, left, right)
            op = draw(st.sampled_from([r"\cdot", r"\times", "*", " "]))
            if op == " " and (l2.startswith(("(", r"\left(")) or p2.startswith("(")):
                op = r"\cdot"  # a name followed by ( may be a node function applied
            return group(draw, f"{p1} @ {p2}", f"{l1} {op} {l2}")
        if kind == "transpose":
            p1, l1 = draw(expr((c, r), sub))
            sup = draw(st.sampled_from(["^T", r"^\top", "^{T}", r"^{\top}"]))
            return group(draw, f"{p1}.T", f"{l1}{sup}")
        if kind == "neg":
            p1, l1 = draw(expr(shape, sub))
            return group(draw, f"-{p1}", f"-{l1}")
        if kind == "func":
            p1, l1 = draw(expr(shape, sub))
            f, lf = draw(
                st.sampled_from(
                    [("tanh", r"\tanh"), ("exp", r"\exp"), ("log", r"\log"), ("sigmoid", r"\sigma"), ("sech", r"\operatorname{sech}")]
                )
            )
            return f"{f}({p1})", rf"{lf}\left({l1}\right)"
        if kind == "power":
            p1, l1 = draw(expr(shape, sub))
            k = draw(st.integers(-3, 4))
            if r == c and r > 1:
                return group(draw, f"{p1}**{k}", rf"{l1}^{{\circ {k}}}")
            return group(draw, f"{p1}**({k})", rf"{l1}^{{{k}}}")
        if kind == "matpow":
            p1, l1 = draw(expr(shape, sub))
            k = draw(st.integers(0, 3))
            return group(draw, f"{p1}^{k}", f"{l1}^{{{k}}}")
        if kind == "element":
            p, q = draw(st.sampled_from(sizes)), draw(st.sampled_from(sizes))
            p1, l1 = draw(expr((p, q), sub))
            i, j = draw(st.integers(0, p - 1)), draw(st.integers(0, q - 1))
            return f"({p1})[{i},{j}]", rf"\left({l1}\right)[{i},{j}]"
        if kind == "sumall":
            p, q = draw(st.sampled_from(sizes)), draw(st.sampled_from(sizes))
            p1, l1 = draw(expr((p, q), sub))
            return f"sum({p1})", rf"\operatorname{{sum}}\left({l1}\right)"
        if kind == "apply":
            # a node function applies to brackets that hold what its input is computed from; grouped,
            # since a postfix operator after h_1(u) may make it a product
            t = draw(st.integers(1, model.steps))
            k = draw(st.integers(1, 3))
            if c == O and (c != H or draw(st.booleans())):
                p1, l1 = draw(st.sampled_from([
                    (f"z_{t}", f"z_{{{t}}}"),
                    (f"{k} * (h_{t} @ W_hy)", rf"{k} \cdot (h_{{{t}}} \cdot W_{{hy}})"),
                ]))
                return group(draw, f"yhat_{t}({p1})", rf"\hat{{y}}_{{{t}}}\left({l1}\right)")
            p1, l1 = draw(st.sampled_from([
                (f"a_{t}", f"a_{{{t}}}"),
                (f"x_{t} @ W_xh + h_{t - 1} @ W_hh", rf"x_{{{t}}} W_{{xh}} + h_{{{t - 1}}} \cdot W_{{hh}}"),
                (f"{k} * (h_{t - 1} @ W_hh)", rf"{k} (h_{{{t - 1}}} W_{{hh}})"),
            ]))
            if draw(st.booleans()):
                return group(draw, f"h_{t}({p1})", rf"h_{{{t}}}\left({l1}\right)")
            return group(draw, f"h_{t}({p1})", rf"h_{{{t}}}({l1})")
        if kind == "softmax":
            p1, l1 = draw(expr(shape, sub))
            return f"softmax({p1})", rf"\operatorname{{softmax}}({l1})"
        if kind == "diag":
            p1, l1 = draw(expr((1, r), sub))
            return f"diag({p1})", rf"\operatorname{{diag}}\left({l1}\right)"
        if kind == "outer":
            (p1, l1), (p2, l2) = draw(expr((1, r), sub)), draw(expr((1, c), sub))
            return f"outer({p1}, {p2})", rf"\operatorname{{outer}}\left({l1}, {l2}\right)"
        raise AssertionError(kind)

    shapes = st.sampled_from([(a, b) for a in sizes for b in sizes])
    return shapes.flatmap(lambda s: expr(s, 3).map(lambda pl: (s, pl[0], pl[1])))


@pytest.mark.parametrize("model", [M345, M], ids=["3-4-5", "2-2-2"])
def test_plain_and_latex_spellings_parse_to_equal_trees(model: RNN) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_twins(model))
    def check(case: tuple[tuple[int, int], str, str]) -> None:
        shape, plain, latex = case
        a = parse(plain, model, syntax="plain")
        b = parse(latex, model, syntax="latex")
        assert a.expr == b.expr, (plain, latex)
        assert a.expr.shape == shape
        roundtrip(a.expr, model)

    check()


def test_parsed_partials_lists_every_partial() -> None:
    parsed = parse("dL_1/dyhat_1 * dyhat_1/dW_hy + dL/dW_hy", M)
    assert [(str(p.num), str(p.den)) for p in parsed.partials] == [("L_1", "yhat_1"), ("yhat_1", "W_hy"), ("L", "W_hy")]
    assert isinstance(parsed, Parsed)
    assert all(n.shape for n in walk(parsed.expr))


@pytest.mark.parametrize("text", [r"\exp^", r"\tanh^", r"\exp^-", "exp^"])
def test_a_superscript_at_the_end_is_a_clean_error(text):
    """Regression: past the end, "" counted as a minus sign and the lexer recursed forever."""
    from bptt_check import BpttCheckError, RNN
    from bptt_check.language import parse

    with pytest.raises(BpttCheckError):
        parse(text, RNN())


# ---------------------------------------------------------------------------
# Model breadth (issue 8): relu and step, Goodfellow's superscript steps,
# parameter copies, built-in notations by name, node functions of the model
# ---------------------------------------------------------------------------

COLUMN = RNN(steps=3, input_size=2, hidden_size=3, output_size=4, biases=True, convention="column")
TB = Notation.TEXTBOOK


def PC(text: str, **kw: object):  # type: ignore[no-untyped-def]
    """Parse in the textbook's column model with its notation."""
    return parse(text, COLUMN, notation=kw.pop("notation", TB), **kw).expr  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "relu(a_1)",
        r"\operatorname{relu}(a_1)",
        r"\operatorname{ReLU}(a_1)",
        r"\mathrm{ReLU}\left(a_1\right)",
        r"\text{relu}(a_1)",
        "ReLU(a_1)",
    ],
)
def test_relu_in_both_syntaxes(text: str) -> None:
    assert P(text) == Call("relu", (N("a", 1),), (1, 4))


@pytest.mark.parametrize("text", ["step(a_1)", r"\operatorname{step}(a_1)", r"\mathrm{step}\left(a_1\right)"])
def test_step_in_both_syntaxes(text: str) -> None:
    assert P(text) == Call("step", (N("a", 1),), (1, 4))


def test_relu_and_step_are_elementwise_and_round_trip() -> None:
    e = P("dL/dh_1 * step(a_1) + relu(a_1 @ W_hh.T @ W_hh)")
    assert e.shape == (1, 4)
    assert P("relu(W_hh)").shape == (4, 4) and P("step(W_xh)").shape == (3, 4)
    roundtrip(e)
    assert to_plain(P("relu(a_1)")) == "relu(a_1)"
    assert to_latex(P("step(a_1)")) == r"\operatorname{step}\left(a_{1}\right)"


def test_relu_and_step_are_reserved_words_and_suggested() -> None:
    with pytest.raises(ConfigError, match="reserved"):
        Notation.from_table({"relu": "h"})
    with pytest.raises(ConfigError, match="reserved"):
        Notation.from_table({"step": "h"})
    with pytest.raises(UnknownNameError, match="did you mean relu"):
        parse("rleu", M)
    with pytest.raises(ParseError, match="relu needs parentheses"):
        parse("relu a_1", M)


def test_max_points_to_relu() -> None:
    with pytest.raises(ParseError) as err:
        parse(r"\max(a_1, 0)", M)
    assert r"\operatorname{relu}" in str(err.value)


def test_sigma_is_the_sigmoid() -> None:
    assert P(r"\sigma(a_1)") == P("sigmoid(a_1)") == P(r"\operatorname{sigmoid}(a_1)")
    assert P(r"\sigma\left(a_1\right) \odot \left(1 - \sigma(a_1)\right)").shape == (1, 4)


def test_goodfellow_superscript_steps() -> None:
    assert PC(r"\boldsymbol{h}^{(2)}") == PC("h_2") == Name(Ref("h", 2), (3, 1))
    assert PC(r"\hat{\boldsymbol{y}}^{(3)}") == PC("yhat_3")
    assert PC(r"\boldsymbol{o}^{(1)}") == PC("z_1")
    assert PC(r"\boldsymbol{x}^{(1)}") == PC("x_1")
    assert PC(r"L^{(2)}") == PC("L_2")
    assert PC(r"\sum_{t=1}^{T} \boldsymbol{h}^{(t)}") == PC("h_1 + h_2 + h_3")
    assert PC(r"\sum_t \boldsymbol{h}^{(t-1)}") == PC("h_0 + h_1 + h_2")
    assert PC(r"\nabla_{\boldsymbol{h}^{(2)}} L") == PC("dL/dh_2")
    assert PC(r"\nabla_{\boldsymbol{o}^{(2)}} L") == PC("dL/dz_2")


@pytest.mark.parametrize(
    "text",
    [
        r"\boldsymbol{h}^{(1)\top}",
        r"h^{(1)T}",
        r"h^{(1)^\top}",
        r"h^{(1) \intercal}",
        r"h^{(1)\mathsf{T}}",
        r"\left(\boldsymbol{h}^{(1)}\right)^\top",
        r"{\boldsymbol{h}^{(1)}}^\top",
        r"\boldsymbol{h^{(1)\top}}",
    ],
)
def test_a_step_superscript_may_carry_the_transpose(text: str) -> None:
    assert PC(text) == Transpose(Name(Ref("h", 1), (3, 1)), (1, 3))


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


def test_tau_is_the_last_step() -> None:
    assert PC(r"\boldsymbol{h}^{(\tau)}") == PC("h_3") == PC(r"h_\tau") == PC(r"h_{\tau}")
    assert PC(r"h_{\tau - 1}") == PC("h_2")
    assert PC(r"\sum_{t=1}^{\tau} h_t") == PC(r"\sum_{t=1}^\tau h_t") == PC("h_1 + h_2 + h_3")
    assert PC(r"\nabla_{\boldsymbol{h}^{(\tau)}} L") == PC("dL/dh_3")


def test_a_transpose_inside_a_partial_is_refused() -> None:
    with pytest.raises(ParseError) as err:
        PC(r"\nabla_{\boldsymbol{h}^{(1)\top}} L")
    assert "transpose inside" in err.value.message and err.value.hint and "^\\top" in err.value.hint
    with pytest.raises(ParseError, match="transpose inside"):
        PC(r"\frac{\partial L}{\partial h^{(1)\top}}")


def test_a_step_superscript_out_of_range_or_unbound() -> None:
    with pytest.raises(UnknownNameError, match=r"h_4 \(h\^\{\(4\)\}\) is not a step"):
        PC(r"h^{(4)}")
    with pytest.raises(UnknownNameError, match=r"h\^\{\(t\)\}: the step t is not bound"):
        PC(r"h^{(t)}")
    with pytest.raises(UnknownNameError, match=r"unknown name hh\^\{\(2\)\} .*did you mean h_2"):
        PC(r"hh^{(2)}", notation=None)


def test_goodfellows_parameter_copies() -> None:
    # W^{(t)} is the W used at step t: its value is W's
    assert PC(r"\boldsymbol{W}^{(2)}") == PC("W_hh")
    assert PC(r"W_{hh}^{(1)}", notation=None) == PC("W_hh")
    # a partial with respect to a copy is read for a node of that step, as the immediate partial by definition
    copy = PC(r"\frac{\partial \boldsymbol{h}^{(2)}}{\partial \boldsymbol{b}^{(2)}}")
    assert copy == dataclasses.replace(PC("dh_2/db_h"), reading="immediate")
    assert PC("dh_2/db_h").reading is None  # the whole parameter: the reading policy decides
    chain = PC(r"\frac{\partial L}{\partial \boldsymbol{h}^{(2)}} \nabla_{\boldsymbol{W}^{(2)}} \boldsymbol{h}^{(2)}")
    assert isinstance(chain, Chain)
    plain = PC("dL/dh_2 * dh_2/dW_hh")
    assert isinstance(plain, Chain)
    assert chain.factors == (plain.factors[0], dataclasses.replace(plain.factors[1], reading="immediate"))
    with pytest.raises(ParseError) as err:
        PC(r"\frac{\partial \boldsymbol{h}^{(2)}}{\partial \boldsymbol{W}^{(1)}}")
    assert "copy of W used at step 1" in err.value.message
    with pytest.raises(ParseError, match="L is not a node of step 2"):
        PC(r"\nabla_{\boldsymbol{W}^{(2)}} L")
    with pytest.raises(UnknownNameError, match=r"the copies are W\^\{\(1\)\} … W\^\{\(3\)\}"):
        PC(r"W^{(4)}")
    with pytest.raises(ParseError):
        parse_target(r"\nabla_{W^{(2)}} L", COLUMN, notation=TB)


def test_the_textbook_notation_in_its_column_model() -> None:
    e = PC(r"\boldsymbol{c} + \boldsymbol{V} \boldsymbol{h}^{(2)}")
    assert e == PC("b_y + W_hy @ h_2") and e.shape == (4, 1)
    a = PC(r"\boldsymbol{b} + \boldsymbol{W} \boldsymbol{h}^{(1)} + \boldsymbol{U} \boldsymbol{x}^{(2)}")
    assert a == PC("b_h + W_hh @ h_1 + W_xh @ x_2") and a.shape == (3, 1)


def test_the_min_char_rnn_notation() -> None:
    mc = Notation.MINCHAR
    assert PC("Why @ hs_2 + by", notation=mc) == PC("W_hy @ h_2 + b_y")
    assert PC("tanh(Wxh @ xs_1 + Whh @ hs_0 + bh)", notation=mc) == PC("tanh(W_xh @ x_1 + W_hh @ h_0 + b_h)")
    assert PC("ps_2 - y_2", notation=mc) == PC("yhat_2 - y_2")
    assert PC("dL/dys_2", notation=mc) == PC("dL/dz_2")  # min-char-rnn's ys are the logits
    assert PC("sum_{t=1}^{T} (ps_t - y_t) @ hs_t.T", notation=mc).shape == (4, 3)
    with pytest.raises(UnknownNameError) as err:
        PC("hs[1]", notation=mc)
    assert "hs_t" in (err.value.hint or "")
    with pytest.raises(UnknownNameError) as err:
        PC("dWhy", notation=mc)
    assert "dL/dWhy" in (err.value.hint or "")


@pytest.mark.parametrize(
    "name, notation",
    [
        ("seed", Notation.SEED),
        ("SEED", Notation.SEED),
        ("textbook", Notation.TEXTBOOK),
        ("goodfellow", Notation.TEXTBOOK),
        ("min-char-rnn", Notation.MINCHAR),
        ("min_char_rnn", Notation.MINCHAR),
        ("minchar", Notation.MINCHAR),
    ],
)
def test_built_in_notations_by_name(name: str, notation: Notation) -> None:
    assert Notation.named(name) == notation
    assert Notation.from_table({"use": name}) == notation


def test_an_unknown_built_in_notation_suggests_the_nearest() -> None:
    with pytest.raises(ConfigError) as err:
        Notation.named("texbook")
    assert "did you mean 'textbook'" in (err.value.hint or "")
    assert "min-char-rnn" in (err.value.hint or "")


def test_a_notation_table_may_use_built_in_notations() -> None:
    n = Notation.from_table({"use": "textbook", "t": "h"})
    assert n == Notation.TEXTBOOK | Notation.from_table({"t": "h"})
    # a list, later ones winning; the table's own aliases win over all
    both = Notation.from_table({"use": ["seed", "textbook"]})
    assert both.get("c") == "b_y" and both.get("t") == "h" and both.get("U") == "W_xh"
    mine = Notation.from_table({"use": "textbook", "c": "L"})
    assert mine.get("c") == "L"
    with pytest.raises(FileFormatError, match=r"q.toml: \[notation\] use: 'textbok' is not a built-in notation"):
        Notation.from_table({"use": "textbok"}, source="q.toml")
    with pytest.raises(ConfigError, match="must name a built-in notation"):
        Notation.from_table({"use": 3})
    with pytest.raises(ConfigError, match="must name a built-in notation"):
        Notation.from_table({"use": []})
    with pytest.raises(ConfigError, match="reserved"):
        Notation((("use", "h"),))


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


@pytest.mark.parametrize(
    "text, fragment",
    [("max(a_1, 0)", "write relu(u)"), ("heaviside(a_1)", "write step(u)"), ("H (a_1)", "write step(u)")],
)
def test_functions_people_reach_for_point_to_relu_and_step(text: str, fragment: str) -> None:
    with pytest.raises(UnknownNameError) as err:
        parse(text, M)
    assert fragment in (err.value.hint or "")
    with pytest.raises(UnknownNameError) as plain:
        parse("H", M)
    assert "step(u)" not in (plain.value.hint or "")


def test_a_notation_may_be_given_by_name() -> None:
    assert parse("V h_1", COLUMN, notation="textbook").expr == PC("W_hy @ h_1")
    assert parse_target("dL/dWhy", COLUMN, notation="min-char-rnn") == Target(Ref("L"), Ref("W_hy"))
    with pytest.raises(ConfigError, match="not a built-in notation"):
        parse("h_1", M, notation="goodfelow")
    with pytest.raises(ConfigError, match="must be a Notation"):
        parse("h_1", M, notation=3)  # type: ignore[arg-type]


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


# ---------------------------------------------------------------------------
# Spellings people use (each a correct answer, checked against the truth)
# ---------------------------------------------------------------------------

COL = RNN(convention="column")


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


def test_a_convention_s_own_weight_names_in_the_other_convention_say_so() -> None:
    with pytest.raises(UnknownNameError, match="W_hx is the column convention's name for W_xh; this model uses row"):
        parse("W_hx", M)
    with pytest.raises(UnknownNameError, match="W_hq is the row convention's name for W_hy"):
        parse("W_hq", COL)
    # a notation table may still give the word its own meaning
    assert parse("W_hx", COL, notation=Notation.from_table({"W_hx": "W_hh"})).expr == parse("W_hh", COL).expr


def test_a_norm_must_be_squared_and_closed() -> None:
    with pytest.raises(ParseError, match="a norm must be squared") as info:
        parse(r"\|h_1\| + 1", M)
    assert info.value.position == 5
    with pytest.raises(ParseError, match="never closed"):
        parse(r"\|h_1", M)
    with pytest.raises(ParseError, match="absolute values"):
        parse(r"|h_1|", M)


def test_euler_e_needs_a_bracketed_exponent_and_yields_to_an_alias() -> None:
    with pytest.raises(ParseError, match="e\\^… needs its exponent"):
        parse(r"e^2", M)
    assert parse("e_1", M, notation=Notation.from_table({"e": "h"})).expr == parse("h_1", M).expr


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


# ---------------------------------------------------------------------------
# Node-function application: what the brackets hold decides
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Constants sized by their context: \mathbf{1} and I
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Long and deep trees (issue 13): nothing recurses over the AST
# ---------------------------------------------------------------------------


def _left_sum(n: int, model: RNN = M) -> Binary:
    """h_1 + h_2 + … as the parser builds it: left-deep, n - 1 levels of +."""
    acc = N("h", 1, model)
    for k in range(2, n + 1):
        acc = Binary("+", acc, N("h", (k - 1) % model.steps + 1, model), (1, 2))
    return acc


def test_deep_trees_compare_hash_and_repr_without_recursion() -> None:
    import copy
    import pickle

    a, b = _left_sum(5_000), _left_sum(5_000)
    assert a == b and not (a != b) and hash(a) == hash(b)
    assert {a: "x"}[b] == "x"
    c = Binary("-", a.left, a.right, a.shape)
    assert a != c and c != a
    assert a != Binary("+", a.left, N("h", 2), a.shape)  # differs in the last leaf only
    assert (a == "h_1") is False
    assert repr(_left_sum(3)) == (
        "Binary(op='+', left=Binary(op='+', left=Name(ref=Ref(family='h', step=1), shape=(1, 2)), "
        "right=Name(ref=Ref(family='h', step=2), shape=(1, 2)), shape=(1, 2)), "
        "right=Name(ref=Ref(family='h', step=1), shape=(1, 2)), shape=(1, 2))"
    )
    assert repr(a).startswith("Binary(op='+', left=Binary(") and repr(a).endswith("…")
    hash(a)
    back = pickle.loads(pickle.dumps(a))  # flat: pickle would otherwise recurse once per level
    assert back == a and "_hash" not in back.__dict__  # a hash depends on the process: never pickled
    assert copy.deepcopy(a) == a and copy.copy(a) is a
    shared = Binary("+", a, a, a.shape)
    again = pickle.loads(pickle.dumps(shared))
    assert again == shared and again.left is again.right


def test_equality_of_dags_compares_each_pair_once() -> None:
    """Two DAGs whose unfolded trees have 2**80 leaves: equal, unequal, and hashed, at once."""

    def dag(leaf: Name, levels: int) -> Binary:
        e: Binary | Name = leaf
        for _ in range(levels):
            e = Binary("*", e, e, (1, 2))
        assert isinstance(e, Binary)
        return e

    x, y = dag(N("h", 1, M), 80), dag(N("h", 1, M), 80)
    assert x == y and hash(x) == hash(y)
    assert x != dag(N("h", 2, M), 80)
    assert len(postorder(x)) == 81
    assert len(repr(x)) < 30_000


def test_postorder_lists_each_distinct_node_once_children_first() -> None:
    h = N("h", 1, M)
    shared = Binary("+", h, h, (1, 2))
    top = Binary("@", Transpose(shared, (2, 1)), shared, (2, 2))
    order = postorder(top)
    assert [type(n).__name__ for n in order] == ["Name", "Binary", "Transpose", "Binary"]
    position = {id(n): i for i, n in enumerate(order)}
    assert all(position[id(k)] < position[id(n)] for n in order for k in children(n))
    assert len(list(walk(top))) == 8  # walk unfolds the tree; postorder does not


def test_printers_print_each_shared_subtree_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from bptt_check.language import printer

    calls: list[object] = []
    original = printer._Printer.node

    def counting(self, e):  # type: ignore[no-untyped-def]
        calls.append(e)
        return original(self, e)

    monkeypatch.setattr(printer._Printer, "node", counting)
    e: Expr = N("h", 1, M)
    fresh: Expr = N("h", 1, M)
    for k in range(10):  # (((h_1 * h_1) @ …): the left side printed twice per level before
        e = Binary("@", Binary("*", e, e, (1, 2)), N("W_hh", None, M), (1, 2))
        fresh = Binary("@", Binary("*", fresh, _copy(fresh), (1, 2)), N("W_hh", None, M), (1, 2))
    for show in (to_plain, to_latex):
        calls.clear()
        text = show(e)
        assert len(calls) == len(postorder(e)) == 31
        assert text == show(fresh)
    assert parse(to_plain(e), M).expr == e == fresh
    assert parse(to_latex(e), M, syntax="latex").expr == e


def _copy(e: Expr) -> Expr:
    return parse(to_plain(e), M).expr


def test_long_sums_and_chains_parse_print_and_round_trip() -> None:
    T = 1000
    model = RNN(steps=T)
    unrolled = parse("sum_{t=1}^{T} h_t.T @ (yhat_t - y_t)", model).expr
    written = " + ".join(f"h_{t}.T @ (yhat_{t} - y_{t})" for t in range(1, T + 1))
    assert parse(written, model).expr == unrolled
    roundtrip(unrolled, model)
    chain_text = " * ".join(["dL/dh_500"] + [f"dh_{t}/dh_{t - 1}" for t in range(500, 1, -1)] + ["dh_1/dW_hh"])
    chain = parse(chain_text, model).expr
    assert isinstance(chain, Chain) and len(chain.factors) == 501
    roundtrip(chain, model)
    nested = "W_hh @ (" * 63 + "W_hh" + ")" * 63  # brackets as deep as the limit allows
    roundtrip(parse(nested, model).expr, model)


def test_a_node_function_before_a_postfix_operator_prints_in_brackets() -> None:
    """Regression: to_plain printed (yhat_1(ones(1, 2)))[0,0] as yhat_1(ones(1, 2))[0,0], a product.

    Such an application (its brackets hold nothing yhat_1's input is computed from) is built by
    code, not by the parser; printed, it keeps its brackets. Applications the parser builds need none.
    """
    ones = Call("ones", (Number(Fraction(1)), Number(Fraction(2))), (1, 2))
    yhat = Apply(Ref("yhat", 1), ones, (1, 2))
    assert to_plain(Element(yhat, (0, 0))) == "(yhat_1(ones(1, 2)))[0,0]"
    assert to_plain(Transpose(yhat, (2, 1))) == "(yhat_1(ones(1, 2))).T"
    assert to_plain(Power(yhat, Fraction(2), False, (1, 2))) == "(yhat_1(ones(1, 2)))**2"
    assert to_latex(Element(yhat, (0, 0))).startswith(r"\left(\hat{y}_{1}\left(")
    for text in ["h_1(x_1 @ W_xh).T", "h_1(x_1 @ W_xh)[0,1]", "h_1(x_1 @ W_xh)**2"]:
        e = parse(text, M).expr
        assert isinstance(children(e)[0], Apply) and to_plain(e) == text
        roundtrip(e, M)


def test_runs_of_signs_print_without_brackets_up_to_the_run_limit() -> None:
    assert to_plain(P("-(-(-h_1))")) == "- - -h_1"
    for text in ["-" * 16 + "h_1", "(-" * 40 + "h_1" + ")" * 40, "-(-dL/dh_1) * dh_1/dW_hy[0,0]", "-(-dL/dh_1 * dh_1/da_1)"]:
        roundtrip(P(text, M), M)
    with pytest.raises(LimitError, match="signs in a row"):
        parse("-+" * 9 + "h_1", M)
