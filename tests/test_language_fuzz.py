"""Fuzzing the expression language: every input parses or raises the package's own error, executing nothing.

How fast hostile input is refused is measured in ``benchmarks/bench_language.py``, not here:
a test must not depend on the speed of the machine it runs on.
"""

from __future__ import annotations

import builtins
from contextlib import contextmanager
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bptt_check.errors import BpttCheckError
from bptt_check.language import Notation, parse, parse_target, to_latex, to_plain
from bptt_check.model import RNN

MODELS = [
    RNN(),
    RNN(input_size=3, hidden_size=4, output_size=5, steps=3, biases=True),
    RNN(input_size=2, hidden_size=3, output_size=4, steps=3, biases=True, convention="column", activation="relu",
        loss="squared_error"),
]

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(autouse=True, scope="module")
def _warm() -> None:
    """Load lark's tables (an import and a compile, once per process) before anything runs under nothing_executed."""
    for model in MODELS:
        parse("h_1", model)


def _forbidden(*args: object, **kwargs: object) -> None:
    raise AssertionError("the parser must never evaluate, compile or import while parsing")


@contextmanager
def nothing_executed() -> Iterator[None]:
    """eval, exec, compile and __import__ fail while parsing."""
    saved = {name: getattr(builtins, name) for name in ("eval", "exec", "compile", "__import__")}
    for name in saved:
        setattr(builtins, name, _forbidden)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(builtins, name, value)


def check_one(text: str) -> None:
    """Parse with every syntax and model: a Parsed or a BpttCheckError; parsed trees print back."""
    for model in MODELS:
        for syntax in ("auto", "plain", "latex"):
            with nothing_executed():
                try:
                    parsed = parse(text, model, notation=Notation.SEED, syntax=syntax)  # type: ignore[arg-type]
                except BpttCheckError as err:
                    str(err), err.caret() if hasattr(err, "caret") else None  # the messages render
                    parsed = None
            if parsed is not None:
                e = parsed.expr
                assert parse(to_plain(e), model, syntax="plain").expr == e
                assert parse(to_latex(e), model, syntax="latex").expr == e


# ---------------------------------------------------------------------------
# Arbitrary text
# ---------------------------------------------------------------------------


@FUZZ
@given(st.text(max_size=80))
def test_arbitrary_text(text: str) -> None:
    check_one(text)


@FUZZ
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=60))
def test_arbitrary_ascii(text: str) -> None:
    check_one(text)


# ---------------------------------------------------------------------------
# Grammar-shaped soup: pieces of both syntaxes in random order
# ---------------------------------------------------------------------------

PIECES = [
    # names
    "h_1", "h_2", "h_0", "h_t", "h_{t-1}", "h_{t+1}", "x_1", "y_2", "a_1", "z_2", "yhat_1", "L", "L_1", "L_total",
    "W_xh", "W_hh", "W_hy", "W_{hy}", "W_{hu}", "W_hu", "b_h", "t_1", "s_2", "c_1", r"\hat{y}_1", r"\hat y_{2}",
    r"\mathbf{h}_1", r"L_{total}", "h^{(1)}", "W_{hy}^{00}", "T", "t", "d", "dL", "tanhh",
    # numbers
    "0", "1", "2", "0.5", "1e-3", "1e99", "9" * 31, ".5", "3.",
    # operators
    " + ", " - ", "*", "**", "@", "/", "^", "^T", ".T", "^2", "^{-1}", "^{10}", r"^\top", "'", "=", "==", ",",
    r"\cdot", r"\odot", r"\circ", r"\times", " ", "  ", "&", r"\\", "$", "⊙", "·", "−", "ᵀ", "²",
    # brackets
    "(", ")", "[", "]", "{", "}", "[0,0]", "[1]", "[0:1]", r"\left(", r"\right)", r"\left[", r"\right]", r"\left.",
    # partials and sums
    "dL/dW_hy", "dL_1/dc_1", "dc_1/ds_1", "ds_1/dW_hy", "d(yhat_1[0])/d(z_1)", "∂L/∂h_1", "d(", ")/d(",
    r"\frac{\partial L}{\partial W_{hy}}", r"\frac{\partial L_1}{\partial c_1}", r"\frac{", "}{", r"\partial ",
    r"\nabla_{h_1} L", r"\nabla_", "sum_t", "sum_{t=1}^{T}", "sum_{t=1}^{3}", r"\sum_{t=1}^{2}", r"\sum", "sum_{k=1}^{t}",
    # functions
    "tanh(", "sigmoid(", "exp(", "log(", "softmax(", "sech(", "diag(", "sum(", "outer(", "ones(", r"\tanh", r"\log",
    r"\operatorname{diag}", r"\mathrm{softmax}", r"\sigma", r"\exp", "tanh",
    "relu(", "step(", "ReLU", r"\operatorname{relu}", r"\mathrm{ReLU}", r"\operatorname{step}", r"\max",
    # Goodfellow's superscript steps, tau and parameter copies
    "h^{(t)}", r"h^{(t-1)\top}", r"\boldsymbol{h}^{(2)T}", "^{(2)}", "^{(t)}", r"^{(1)\top}", r"\tau", r"h^{(\tau)}",
    r"h_\tau", "W^{(1)}", "W_{hh}^{(2)}", r"\nabla_{W_{hh}^{(1)}} h_1", r"\nabla_{h^{(1)\top}} L", "^{(", ")}",
    # spellings read since issue 14: transposes before subscripts, primes, Unicode, norms, e^, ones, identity
    r"W^\top_{hh}", "W^T_hh", r"\mathbf{h}^\top_t", "h_1'", "′", "⋅", "⊤", "^⊤", "h₁", "hₜ₋₁", "Wₕₕ", "₂",
    r"\|", r"\|^2", r"\|_2^2", r"\lVert", r"\rVert", r"\left\|", r"\right\|", r"\Vert",
    r"\mathbf{1}", r"\mathbf{1}^\top", r"\mathbb{1}", "I", r"\mathbf{I}", "e^{", "e^(", "e**(", "e", "e^",
    "W_{hx}", "W_yh", "W_qh", "W_hq", "sum_{t=0}^{T-1}", r"\sum_{t=0}^{T}", r"\ast",
    # junk
    "__import__('os')", ".system('x')", "lambda", "\x00", "\u2603", "\ud7ff", "\\", r"\foo", r"\begin{split}",
]


@FUZZ
@given(st.lists(st.sampled_from(PIECES), max_size=25).map("".join))
def test_grammar_shaped_soup(text: str) -> None:
    check_one(text)


@FUZZ
@given(st.lists(st.sampled_from(PIECES), max_size=12).map(" ".join))
def test_grammar_shaped_soup_spaced(text: str) -> None:
    check_one(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=8).map("".join))
def test_targets_never_crash(text: str) -> None:
    with nothing_executed():
        try:
            parse_target(text, MODELS[0], notation=Notation.SEED)
        except BpttCheckError:
            pass


# ---------------------------------------------------------------------------
# Hostile inputs
# ---------------------------------------------------------------------------

HOSTILE = [
    "__import__('os').system('x')",
    "exec('import os')",
    "eval('1')",
    "9**9**9**9",
    "9^9^9^9",
    "2**99999999",
    "(" * 100_000 + "h_1" + ")" * 100_000,
    "(" * 9_000 + "h_1" + ")" * 9_000,
    "h_1 + " * 200_000 + "h_1",
    "h_1\x00",
    "\x00" * 1000,
    "\u202e\u200b\ufeff h_1",
    "h_1 + " + "\U0001f600" * 100,
    "1" * 10_000,
    "-" * 19_000 + "h_1",
    "h_1" + ".T" * 6_000,
    "sum_t " * 3_000 + "h_1",
    r"\frac{" * 80 + "1" + "}{2}" * 80,
    r"\left(" * 65 + "h_1" + r"\right)" * 65,
    "1+" * 30_000 + "1",
    "h_1 + " * 40_000,
    "(h_1)" * 4_000,
    "h_1 " * 4_999,
    r"\hat{" * 60 + "y" + "}" * 60 + "_1",
    r"\mathbf{" * 70 + "h" + "}" * 70 + "_1",
    "h_{" + "1" * 19_000 + "}",
    "sum_{t=1}^{" + "9" * 19_000 + "} h_t",
    "W_{" + "h" * 19_000 + "}",
    "x" * 20_000,
    r"h^{(1)\top}" * 1_800,
    "h" + "^{(1)}" * 3_000,
    r"h_{\tau" + "-1" * 9_000 + "}",
    "relu(" * 70 + "a_1" + ")" * 70,
    r"\hat" * 3_000 + " y_1",  # the lexer read a run of \hat commands recursively: RecursionError
    r"\hat\mathbf" * 2_000 + " y_1",
    "tanh^" + "-" * 3_000 + "2(a_1)",  # and the signs of a function's exponent
    r"\tanh^" + "-" * 3_000 + "2 a_1",
    "-+" * 20_000 + "h_1",  # alternating signs nest without limit of a run: one level, read in a loop
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_inputs_are_refused_with_our_error(text: str) -> None:
    with nothing_executed():
        with pytest.raises(BpttCheckError):
            parse(text, RNN())
