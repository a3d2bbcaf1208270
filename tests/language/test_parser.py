"""The parser (bptt_check.language.parser): the grammar, the documented examples, the seed's Problem 3, errors with positions, limits, targets."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bptt_check.errors import BpttCheckError, ConfigError, LimitError, ParseError, UnknownNameError
from bptt_check.language import (
    Apply,
    Binary,
    Call,
    Chain,
    Element,
    Name,
    Neg,
    Number,
    Parsed,
    Partial,
    Power,
    parse,
    parse_target,
    walk,
)
from bptt_check.language.parser import lark_parser
from bptt_check.model import RNN, Ref, Target

from .conftest import M, M345, N, P, PLAIN_SHAPES, roundtrip, SEED


def test_grammar_is_lalr_and_conflict_free() -> None:
    # built with strict=True: lark raises on any shift/reduce conflict
    parser = lark_parser()
    assert parser.options.parser == "lalr"
    assert parser.options.strict


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
