"""The lexer (bptt_check.language.lexer): LaTeX and Unicode spellings, syntax detection, primes, superscripts, norms, Euler's e."""

from __future__ import annotations

import pytest

from bptt_check.errors import BpttCheckError, ParseError
from bptt_check.language import Call, Name, Notation, Transpose, parse
from bptt_check.model import RNN, Ref

from .conftest import LATEX_SAME_AS_PLAIN, M, M345, N, P, PC, roundtrip


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


@pytest.mark.parametrize("text", [r"\exp^", r"\tanh^", r"\exp^-", "exp^"])
def test_a_superscript_at_the_end_is_a_clean_error(text):
    """Regression: past the end, "" counted as a minus sign and the lexer recursed forever."""
    from bptt_check import BpttCheckError, RNN
    from bptt_check.language import parse

    with pytest.raises(BpttCheckError):
        parse(text, RNN())


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


def test_a_transpose_inside_a_partial_is_refused() -> None:
    with pytest.raises(ParseError) as err:
        PC(r"\nabla_{\boldsymbol{h}^{(1)\top}} L")
    assert "transpose inside" in err.value.message and err.value.hint and "^\\top" in err.value.hint
    with pytest.raises(ParseError, match="transpose inside"):
        PC(r"\frac{\partial L}{\partial h^{(1)\top}}")


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
