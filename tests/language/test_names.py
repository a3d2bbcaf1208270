"""Names (bptt_check.language.names): canonical spellings, notations, steps, reserved words and suggestions."""

from __future__ import annotations

import dataclasses

import pytest

from bptt_check.errors import ConfigError, FileFormatError, ParseError, UnknownNameError
from bptt_check.language import Chain, Name, Notation, parse, parse_target
from bptt_check.model import RNN, Ref, Target

from .conftest import COL, COLUMN, M, N, P, PC, SEED, TB


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


def test_tau_is_the_last_step() -> None:
    assert PC(r"\boldsymbol{h}^{(\tau)}") == PC("h_3") == PC(r"h_\tau") == PC(r"h_{\tau}")
    assert PC(r"h_{\tau - 1}") == PC("h_2")
    assert PC(r"\sum_{t=1}^{\tau} h_t") == PC(r"\sum_{t=1}^\tau h_t") == PC("h_1 + h_2 + h_3")
    assert PC(r"\nabla_{\boldsymbol{h}^{(\tau)}} L") == PC("dL/dh_3")


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


def test_a_convention_s_own_weight_names_in_the_other_convention_say_so() -> None:
    with pytest.raises(UnknownNameError, match="W_hx is the column convention's name for W_xh; this model uses row"):
        parse("W_hx", M)
    with pytest.raises(UnknownNameError, match="W_hq is the row convention's name for W_hy"):
        parse("W_hq", COL)
    # a notation table may still give the word its own meaning
    assert parse("W_hx", COL, notation=Notation.from_table({"W_hx": "W_hh"})).expr == parse("W_hh", COL).expr
