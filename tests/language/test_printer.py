"""The printers (bptt_check.language.printer): to_plain and to_latex, round trips, brackets, shared subtrees."""

from __future__ import annotations

from fractions import Fraction

import pytest

from bptt_check.errors import LimitError
from bptt_check.language import (
    Apply,
    Binary,
    Call,
    Element,
    Expr,
    Name,
    Number,
    Power,
    Transpose,
    parse,
    to_latex,
    to_plain,
)
from bptt_check.language.ast import children, postorder
from bptt_check.model import RNN, Ref

from .conftest import LATEX_SAME_AS_PLAIN, M, N, P, PLAIN_SHAPES, roundtrip, SEED


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
