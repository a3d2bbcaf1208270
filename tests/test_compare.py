"""The comparison engine: verdicts, exact proofs, counterexamples, readings, consistency."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bptt_check import RNN, InternalError, Ref
from bptt_check import formulas
from bptt_check.compare import Checker, Settings, check
from bptt_check.diagnose import _rebuild
from bptt_check.language.ast import Binary, Call, walk
from bptt_check.language import Notation, to_latex, to_plain
from bptt_check.model import L_TOTAL

SEED = Notation.SEED
CORRECT_W_HH = "h_0.T @ (dL/dh_1 * (1 - h_1**2)) + h_1.T @ (dL/dh_2 * (1 - h_2**2))"


@pytest.mark.parametrize(
    "answer, target, notation",
    [
        # the language's partials and the seed's 3(a) chains
        ("dL_1/dc_1 * dc_1/ds_1 * ds_1/dW_hy + dL_2/dc_2 * dc_2/ds_2 * ds_2/dW_hy", "dL/dW_hy", SEED),
        (r"\frac{\partial L_1}{\partial c_1} \frac{\partial c_1}{\partial s_1} \frac{\partial s_1}{\partial W_{hy}}"
         r" + \frac{\partial L_2}{\partial c_2} \frac{\partial c_2}{\partial s_2} \frac{\partial s_2}{\partial W_{hy}}", "dL/dW_hy", SEED),
        (r"\frac{\partial L_{1}}{\partial W_{hy}^{00}} + \frac{\partial L_{2}}{\partial W_{hy}^{00}}", r"\frac{\partial L_{total}}{\partial W_{hy}^{00}}", SEED),
        ("h_1.T @ (yhat_1 - y_1) + h_2.T @ (yhat_2 - y_2)", "dL/dW_hy", None),
        ("sum_{t=1}^{2} (h_t.T @ (yhat_t - y_t))", "dL/dW_hy", None),
        (r"\sum_{t=1}^{T} h_t^T (\hat{y}_t - y_t)", "dL/dW_hy", None),
        ("h_1[0] * (yhat_1[0] - y_1[0]) + h_2[0] * (yhat_2[0] - y_2[0])", "dL/dW_hy[0,0]", None),
        (CORRECT_W_HH, "dL/dW_hh", None),
        ("sum_{t=1}^{T} (h_{t-1}.T @ (dL/dh_t * (1 - h_t**2)))", "dL/dW_hh", None),
        ("sum_{t=1}^{T} (x_t.T @ (dL/dh_t * sech(a_t)**2))", "dL/dW_xh", None),
        ("(yhat_1 - y_1) @ W_hy.T + (dL/dh_2 * (1 - h_2**2)) @ W_hh.T", "dL/dh_1", None),
        ("(dL/dh_1 * (1 - tanh(a_1)**2)) @ W_hh.T", "dL/dh_0", None),
        ("(dL/dh_1 * (1 - h_1**2)) @ W_xh.T", "dL/dx_1", None),
        ("(softmax(z_2) - y_2) @ W_hy.T", "dL_2/dh_2", None),
        ("(exp(z_2) / sum(exp(z_2)) - y_2) @ W_hy.T", "dL_2/dh_2", None),
        # forward targets, the seed's nested form
        (r"c_1 (s_1 (t_1 (x_1 \cdot W_{xh} + h_0 \cdot W_{hh}) * W_{hy}))", "L_1", SEED),
        (r"c_2 (s_2 (t_2 (t_1 (x_1 \cdot W_{xh} + h_0 \cdot W_{hh}) \cdot W_{hh} + x_2 \cdot W_{xh}) \cdot W_{hy}))", "L_2", SEED),
        ("-sum(y_2 * log(yhat_2))", "L_2", None),
        ("tanh(x_2 @ W_xh + tanh(x_1 @ W_xh + h_0 @ W_hh) @ W_hh)", "h_2", None),
    ],
)
def test_correct_answers_are_proved_exactly(answer, target, notation):
    result = check(answer, target, notation=notation)
    assert result.verdict == "equivalent", str(result)
    assert result.score == 1.0
    assert result.evidence.false_positive_bound is not None and result.evidence.false_positive_bound < 1e-12


def test_equation_names_its_own_target():
    result = check("dL/dh_1 = (yhat_1 - y_1) @ W_hy.T + (dL/dh_2 * (1 - h_2**2)) @ W_hh.T")
    assert result.verdict == "equivalent" and result.target == "dL/dh_1"
    wrong_side = check("dL/dh_2 = (yhat_2 - y_2) @ W_hy.T", "dL/dh_1")
    assert wrong_side.verdict == "invalid" and "left-hand side" in wrong_side.message


def test_no_exact_form_falls_back_to_numeric_agreement():
    # (h**4)**(1/2) is h**2, but a fractional power has no exact rewriting.
    result = check("h_0.T @ (dL/dh_1 * (1 - (h_1**4)**(1/2))) + h_1.T @ (dL/dh_2 * (1 - h_2**2))", "dL/dW_hh")
    assert result.verdict == "equivalent_numerically", str(result)
    assert "no exact proof" in result.message


def test_wrong_answer_has_a_counterexample_with_three_values():
    result = check("h_1.T @ (y_1 - yhat_1) + h_2.T @ (y_2 - yhat_2)", "dL/dW_hy")
    assert result.verdict == "not_equivalent"
    cx = result.counterexample
    assert cx is not None
    assert abs(cx.sympy - cx.jax) < 1e-12
    assert abs(cx.answer - cx.sympy) > cx.tolerance
    assert set(cx.point) >= {"W_xh", "W_hh", "W_hy", "x_1", "y_1"}
    assert "|answer - truth|" in str(result)


def test_transposed_answer_is_reported_apart():
    model = RNN(input_size=2, hidden_size=3, output_size=4)
    result = check("(yhat_1 - y_1).T @ h_1 + (yhat_2 - y_2).T @ h_2", "dL/dW_hy", model=model)
    assert result.verdict == "transposed" and result.score == 0.5
    assert result.diagnoses[0].code == "transposed"


@pytest.mark.parametrize(
    "answer, code",
    [
        ("W_hu", "unknown_name"),
        ("h_1 @ (yhat_1 - y_1)", "shape_error"),
        ("h_1.T @ (yhat_1 - y_1", "parse_error"),
        ("dL_1/dc_1 * ds_2/dW_hy", "chain_break"),
        ("h_1.T", "shape_error"),
        ("dL/dW_hy", "circular"),
        ("2 * dL/dW_hy - dL/dW_hy", "circular"),
    ],
)
def test_invalid_answers_name_the_problem(answer, code):
    result = check(answer, "dL/dW_hy", notation=SEED)
    assert result.verdict == "invalid"
    assert result.diagnoses[0].code == code, str(result)


@pytest.mark.parametrize(
    "answer, code",
    [
        ("dL/dW_hh + ) = h_1", "parse_error"),  # the left side does not parse: no target to head it
        ("dL/dW_qq = h_1", "unknown_name"),
        ("h_1.T @ (yhat_1 - y_1)", "invalid"),  # no target at all
    ],
)
def test_an_answer_without_a_readable_target_keeps_its_errors_code(answer, code):
    result = check(answer, None)
    assert (result.verdict, result.target) == ("invalid", "?")
    assert result.diagnoses[0].code == code, str(result)


def test_ambiguous_partials_report_both_readings():
    chain = "dL_2/dh_2 * dh_2/dW_hh"
    total = check(chain, "dL_2/dW_hh")
    assert total.verdict == "equivalent"
    (reading,) = total.readings
    assert reading.total_right and not reading.immediate_right
    assert "misses the path through h_1" in reading.message
    demanded = check(chain, "dL_2/dW_hh", reading="immediate")
    assert demanded.verdict == "not_equivalent"
    assert demanded.diagnoses[0].code == "wrong_reading"
    either = check(chain, "dL_2/dW_hh", reading="either")
    assert either.verdict == "equivalent"


def test_truths_that_disagree_are_an_internal_error(monkeypatch):
    checker = Checker("dL/dW_hy", model=RNN(steps=1))
    truth = checker.truth
    monkeypatch.setattr(truth, "_jax", {})
    monkeypatch.setattr(truth, "_jax_grads", {})
    monkeypatch.setattr(truth, "_agreement", {})
    real = truth.numeric.gradients
    monkeypatch.setattr(truth.numeric, "gradients", lambda *a, **k: {r: g * 1.001 for r, g in real(*a, **k).items()})
    with pytest.raises(InternalError, match="truths disagree"):
        truth.agreement(L_TOTAL, Ref("W_hh"))
    real_partial = truth.numeric.partial
    monkeypatch.setattr(truth.numeric, "partial", lambda *a, **k: real_partial(*a, **k) * 1.001)
    with pytest.raises(InternalError, match="truths disagree"):
        truth.agreement(Ref("h", 1), Ref("W_hh"))


def test_result_serialises_per_spec():
    d = check("h_1.T @ (y_1 - yhat_1) + h_2.T @ (y_2 - yhat_2)", "dL/dW_hy").to_dict()
    assert {"verdict", "target", "score", "diagnoses", "counterexample", "message"} <= set(d)
    assert d["counterexample"]["expected_sympy"] == pytest.approx(d["counterexample"]["expected_jax"])


# -- properties -------------------------------------------------------------

small_models = st.builds(
    RNN,
    steps=st.integers(1, 3),
    input_size=st.integers(1, 3),
    hidden_size=st.integers(1, 3),
    output_size=st.integers(2, 3),
    loss_at=st.sampled_from(["all", "last"]),
    h0=st.sampled_from(["input", "zeros"]),
)


def _wrts(model):
    return [Ref("W_xh"), Ref("W_hh"), Ref("W_hy"), Ref("h", 1), Ref("x", model.steps)]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=small_models, data=st.data())
def test_the_truths_own_printed_form_is_equivalent(model, data):
    wrt = data.draw(st.sampled_from(_wrts(model)))
    expr = formulas.gradient(model, L_TOTAL, wrt)
    target = f"dL/d{wrt}"
    for text, syntax in ((to_plain(expr), "plain"), (to_latex(expr), "latex")):
        result = check(text, target, model=model, syntax=syntax)
        assert result.verdict == "equivalent", (text, str(result))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=small_models.filter(lambda m: m.hidden_size > 1).map(lambda m: m.replace(h0="input")), data=st.data())
def test_perturbations_of_the_truth_are_never_equivalent(model, data):
    wrt = data.draw(st.sampled_from([Ref("W_hh"), Ref("W_hy"), Ref("W_xh")]))
    terms = formulas.terms(model, L_TOTAL, wrt)
    b = formulas.Builder(model)
    kind = data.draw(st.sampled_from(["drop", "flip", "transpose", "index"]))
    exprs = [t.expr for t in terms]
    i = data.draw(st.integers(0, len(exprs) - 1))
    if kind == "drop" and len(exprs) > 1:
        exprs.pop(i)
    elif kind == "flip":
        exprs[i] = b.neg(exprs[i])
    elif kind == "transpose" and exprs[i].shape[0] == exprs[i].shape[1]:
        exprs[i] = b.T(exprs[i])
    text = to_plain(b.total(exprs))
    if kind == "index":
        r, c = model.shape(wrt)
        result = check(f"({text})[{r - 1},{c - 1}]", f"dL/d{wrt}[0,0]", model=model) if (r, c) != (1, 1) else None
        if result is not None:
            assert result.verdict != "equivalent"
        return
    result = check(text, f"dL/d{wrt}", model=model)
    if text != to_plain(formulas.gradient(model, L_TOTAL, wrt)):
        assert result.verdict not in ("equivalent", "equivalent_numerically"), text


# -- every reading policy is total over every answer (issue 14, finding 2) ------------------------

MISSING_STEP_1 = "h_1.T @ (dL/dh_2 * (1 - h_2**2))"  # no ambiguous partial: every reading is the same


@pytest.mark.parametrize("reading", ["total", "immediate", "either"])
def test_every_reading_policy_diagnoses_an_answer_without_ambiguous_partials(reading):
    wrong = check(MISSING_STEP_1, "dL/dW_hh", reading=reading)
    assert wrong.verdict == "not_equivalent" and wrong.diagnoses[0].code == "missing_term", str(wrong)
    right_w_hy = "h_1.T @ (yhat_1 - y_1) + h_2.T @ (yhat_2 - y_2)"
    right = check(right_w_hy, "dL/dW_hy", reading=reading)
    assert right.verdict == "equivalent" and not right.readings
    flipped = check(f"({right_w_hy}).T", "dL/dW_hy", reading=reading)
    assert flipped.verdict == "transposed", str(flipped)


def test_immediate_policy_in_grading_and_verify_gives_verdicts_not_errors(tmp_path):
    from bptt_check import Grader, Question, Rubric
    from bptt_check.derivations import verify

    result = Grader(Question("dL/dW_hh", rubric=Rubric(reading="immediate"))).grade(MISSING_STEP_1)
    assert (result.verdict, result.internal_error) == ("not_equivalent", False)
    f = tmp_path / "d.toml"
    f.write_text(f'[[claim]]\nname = "w"\ntarget = "dL/dW_hh"\nexpr = "{MISSING_STEP_1}"\n'
                 'expect = "not_equivalent"\nreading = "immediate"\n', encoding="utf-8")
    assert verify([f]).ok


# -- API validation (issue 14, finding 7) ---------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(exact_points=0), "Settings.exact_points = 0"),
        (dict(points=0), "Settings.points = 0"),
        (dict(points=2.5), "Settings.points = 2.5"),
        (dict(rtol=float("inf")), "Settings.rtol = inf"),
        (dict(atol=float("nan")), "Settings.atol = nan"),
        (dict(atol=-1e-9), "Settings.atol"),
        (dict(rtol=1.0), "Settings.rtol = 1.0"),
        (dict(seed=-1), "Settings.seed = -1"),
        (dict(reading="bogus"), "Settings.reading = 'bogus' is not a reading policy"),
    ],
)
def test_settings_are_validated_on_construction(kwargs, fragment):
    from bptt_check import ConfigError

    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        Settings(**kwargs)


def test_public_arguments_are_refused_with_the_packages_own_errors():
    from bptt_check import ConfigError, Target

    with pytest.raises(ConfigError, match="did you mean 'either'"):
        check("h_1", "h_1", reading="eithr")
    with pytest.raises(ConfigError, match="syntax"):
        check("h_1", "h_1", syntax="python")
    with pytest.raises(ConfigError, match="outside the 2×2 shape"):
        check("h_1", Target(Ref("L"), Ref("W_hy"), (5, 5)))
    with pytest.raises(ConfigError, match="h_5 is not a name of this model"):
        Checker(Target(Ref("h", 5)))
    with pytest.raises(ConfigError, match="not a bptt_check.RNN"):
        check("h_1", "h_1", model="T=2")
    assert check("tanh(x_1 @ W_xh + h_0 @ W_hh)", "h_1", reading="Either").verdict == "equivalent"
    # A target written as text is the user's input: an invalid result with the reason, not an exception.
    text = check("h_1", "dh_2/dh_1[0,1]")
    assert text.verdict == "invalid" and "needs a scalar numerator" in text.message

# -- relu: a proof holds in every activation region ---------------------------------

ONE_UNIT = RNN(input_size=3, hidden_size=1, output_size=2, loss_at="last", activation="relu")


@pytest.mark.parametrize("seed", range(6))
def test_a_dropped_relu_derivative_with_one_unit_is_never_proved(seed):
    """Issue 14 finding 1: dL/dW_xh without step(a_1) was 'equivalent' (or an internal error) by a coin flip."""
    wrong = "x_1.T @ (dL/dh_2 * step(a_2)) @ W_hh.T + x_2.T @ (dL/dh_2 * step(a_2))"
    result = check(wrong, "dL/dW_xh", model=ONE_UNIT, settings=Settings(seed=seed))
    assert result.verdict == "not_equivalent"
    assert "step(a_1)" in result.message  # the float points see a_1 < 0 with the path through step 2 open
    right = "x_1.T @ ((dL/dh_2 * step(a_2)) @ W_hh.T * step(a_1)) + x_2.T @ (dL/dh_2 * step(a_2))"
    proved = check(right, "dL/dW_xh", model=ONE_UNIT, settings=Settings(seed=seed))
    assert proved.verdict == "equivalent" and "in every activation region (exact proof)" in proved.message


def test_a_region_no_sample_point_reaches_is_named():
    """T·H above the points: a_1 < 0 with every later step active is at no float point; the exact check sees it."""
    model = RNN(steps=6, input_size=3, hidden_size=1, output_size=2, loss_at="last", activation="relu")
    truth = to_plain(formulas.gradient(model, L_TOTAL, Ref("W_xh")))
    wrong = truth.replace(" * step(a_1)", "", 1)
    assert wrong != truth
    result = check(wrong, "dL/dW_xh", model=model)
    assert result.verdict == "not_equivalent"
    assert "a_1 is negative and every other pre-activation positive" in result.message
    assert result.evidence is not None and result.evidence.exact.startswith("refuted")
    cx = result.counterexample  # a float point drawn in that region shows it
    assert cx is not None and abs(cx.answer - cx.sympy) > cx.tolerance and cx.sympy == pytest.approx(cx.jax)
    p = {k: np.array(v) for k, v in cx.point.items()}
    assert (p["x_1"] @ p["W_xh"] + p["h_0"] @ p["W_hh"]).item() < 0  # a_1 < 0 there


def _drop_step_sites(expr):
    """Every way to drop one ``* step(a_k)`` factor from ``expr``: (k, mutated expression)."""
    for site in walk(expr):
        if isinstance(site, Binary) and site.op == "*" and isinstance(site.right, Call) and site.right.func == "step":
            yield site.right.args[0], _rebuild(expr, lambda n, site=site: site.left if n is site else None)


relu_models = st.builds(
    RNN,
    steps=st.integers(1, 3),
    input_size=st.integers(1, 3),
    hidden_size=st.integers(1, 3),
    output_size=st.integers(2, 3),
    loss_at=st.sampled_from(["all", "last"]),
    h0=st.sampled_from(["input", "zeros"]),
    biases=st.booleans(),
    convention=st.sampled_from(["row", "column"]),
    loss=st.sampled_from(["cross_entropy", "squared_error"]),
    activation=st.just("relu"),
)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=relu_models, data=st.data())
def test_an_answer_without_one_step_factor_is_never_equivalent(model, data):
    """Over relu models with T ≤ 3, H ≤ 3: drop one step(a_k) from a correct formula: never equivalent, never exit 3."""
    wrt = data.draw(st.sampled_from([Ref("W_xh"), Ref("W_hh"), Ref("h", 1), Ref("x", 1)] + ([Ref("b_h")] if model.biases else [])))
    seed = data.draw(st.integers(0, 3))
    b = formulas.Builder(model)
    terms = [t.expr for t in formulas.terms(model, L_TOTAL, wrt)]
    candidates = [
        (i, mutated)
        for i, term in enumerate(terms)
        # a term through h_0 = 0 is zero with or without its factors
        if not (model.h0 == "zeros" and any(getattr(n, "ref", None) == Ref("h", 0) for n in walk(term)))
        for _, mutated in _drop_step_sites(term)
    ]
    if not candidates:
        return
    i, mutated = data.draw(st.sampled_from(candidates))
    answer = to_plain(b.total(terms[:i] + [mutated] + terms[i + 1 :]))
    result = check(answer, f"dL/d{wrt}", model=model, settings=Settings(seed=seed))  # no InternalError
    assert result.verdict not in ("equivalent", "equivalent_numerically"), (answer, str(result))


# -- Goodfellow's per-step copies W^{(t)} (issue 14, finding 4) -------------------------------------

GOODFELLOW = RNN(steps=3, hidden_size=3, output_size=4, biases=True, convention="column")


@pytest.mark.parametrize("reading", ["total", "immediate", "either"])
def test_a_per_step_copy_is_the_immediate_partial_under_every_policy(reading):
    # ∇_{W^{(t)}} h^{(t)} holds the other steps' copies fixed by definition; ∂L/∂h^{(t)} follows the policy.
    tb = Notation.TEXTBOOK
    eq_10_25 = r"\sum_t \frac{\partial L}{\partial \boldsymbol{h}^{(t)}} \nabla_{\boldsymbol{W}^{(t)}} \boldsymbol{h}^{(t)}"
    result = check(eq_10_25, "dL/dW_hh", model=GOODFELLOW, notation=tb, reading=reading)
    if reading == "immediate":  # ∂L/∂h^{(t)} read as immediate misses the later steps
        assert result.verdict == "not_equivalent" and result.diagnoses[0].code == "wrong_reading", str(result)
    else:
        assert result.verdict == "equivalent", str(result)
        assert all("W" not in r.partial for r in result.readings)  # the copy's partial is not a reading question
    # Its bias form, transposed into the column layout: the same.
    eq_10_23 = r"\sum_t \left(\frac{\partial \boldsymbol{h}^{(t)}}{\partial \boldsymbol{b}^{(t)}}\right)^\top \nabla_{\boldsymbol{h}^{(t)}} L"
    assert check(eq_10_23, "dL/db_h", model=GOODFELLOW, notation=tb, reading=reading).ok == (reading != "immediate")


def test_the_whole_parameter_in_place_of_its_copy_counts_earlier_steps_again():
    whole = r"\sum_t \frac{\partial L}{\partial \boldsymbol{h}^{(t)}} \nabla_{\boldsymbol{W}} \boldsymbol{h}^{(t)}"
    result = check(whole, "dL/dW_hh", model=GOODFELLOW, notation=Notation.TEXTBOOK)
    assert result.verdict == "not_equivalent" and result.diagnoses[0].code == "wrong_reading"
    assert check(whole, "dL/dW_hh", model=GOODFELLOW, notation=Notation.TEXTBOOK, reading="either").ok

# ---------------------------------------------------------------------------
# A node name before brackets: the rule's reading, the other one checked too, and a note
# ---------------------------------------------------------------------------

SIG1 = RNN(input_size=1, hidden_size=1, output_size=2, activation="sigmoid", loss_at="last")
TANH1 = RNN(input_size=1, hidden_size=1, output_size=2, loss_at="last")


def test_the_sigmoid_derivative_by_juxtaposition_is_equivalent_with_a_note() -> None:
    result = check("dL/dh_1 h_1 (1 - h_1)", "dL/da_1", model=SIG1)
    assert result.verdict == "equivalent", str(result)
    assert result.notes and result.notes[0].startswith("read h_1 (1 - h_1) as the product h_1 · (…)")
    assert "note:    read h_1 (1 - h_1) as the product" in str(result)
    assert result.to_dict()["notes"] == list(result.notes)
    result = check("h_0 (1 - h_1**2) dL/dh_1 + h_1 (1 - h_2**2) dL/dh_2", "dL/dW_hh", model=TANH1)
    assert result.verdict == "equivalent", str(result)


def test_the_other_reading_earns_the_verdict_when_the_rule_s_is_wrong_and_says_so() -> None:
    # h_2 (W_hh) holds a value h_2 is computed from, so the rule reads sigmoid(W_hh); the product is right
    result = check("dL/dh_2 (1 - h_2) h_2 (W_hh)", "dL/dh_1", model=SIG1)
    assert result.verdict == "equivalent", str(result)
    assert result.notes == ("read h_2 (W_hh) as the product h_2 · (…): the other reading of what is written,"
                            " as h_2 (W_hh) as sigmoid(…) it is not right",)
    # neither reading right: the rule's verdict, and the note says both were tried
    wrong = check("h_1 (1 - h_2**2) dL/dh_2", "dL/da_1", model=TANH1)
    assert wrong.verdict == "not_equivalent"
    assert wrong.notes == ("read h_1 (1 - h_2**2) as the product h_1 · (…); also checked h_1 (1 - h_2**2) as tanh(…):"
                           " not right either",)
    # the rule's reading right: no second check, the note names the reading
    right = check("h_2(h_1 W_hh + x_2 W_xh)", "h_2", model=TANH1)
    assert right.verdict == "equivalent" and right.notes[0].startswith("read h_2(h_1 W_hh + x_2 W_xh) as tanh(…)")


def test_a_jacobian_times_a_gradient_in_the_column_convention_is_a_missing_transpose() -> None:
    col = RNN(convention="column", loss_at="last")
    result = check(r"\frac{\partial h_2}{\partial h_1} \frac{\partial L}{\partial h_2}", "dL/dh_1", model=col)
    assert result.verdict == "not_equivalent", str(result)
    assert result.diagnoses[0].code == "missing_transpose"
    assert "multiplies ∂h_2/∂h_1 by ∂L/∂h_2 where its transpose belongs" in result.message
    right = check(r"\left(\frac{\partial h_2}{\partial h_1}\right)^\top \frac{\partial L}{\partial h_2}", "dL/dh_1", model=col)
    assert right.verdict == "equivalent"
    # with one hidden unit the product is right as written (scalars commute)
    scalar = RNN(convention="column", loss_at="last", input_size=1, hidden_size=1)
    assert check("dh_2/dh_1 * dL/dh_2", "dL/dh_1", model=scalar).verdict == "equivalent"


@pytest.mark.parametrize(
    "answer, target, verdict",
    [
        ("relu(x_1 @ W_xh + h_0 @ W_hh)", "h_1", "equivalent"),
        ("step(a_1) * a_1", "h_1", "equivalent"),
        ("(h_1 * step(h_1)) @ W_hy", "z_1", "equivalent"),  # h = h·step(h) (h_1 for h_1 itself is circular)
        ("a_1 + relu(-a_1)", "h_1", "equivalent"),  # relu(a) - relu(-a) = a
        ("a_1", "h_1", "not_equivalent"),  # right only where the unit is active
        ("x_2.T @ (dL/dh_2 * step(h_2)) + x_1.T @ ((dL/dh_2 * step(a_2)) @ W_hh.T * step(a_1) ** 2)",
         "dL/dW_xh", "equivalent"),
        ("x_2.T @ (dL/dh_2 * step(h_2)) + x_1.T @ ((dL/dh_2 * step(a_2)) @ W_hh.T * (1 - step(-a_1)))",
         "dL/dW_xh", "equivalent"),
        ("x_2.T @ (dL/dh_2 * step(h_2)) + x_1.T @ ((dL/dh_2 * step(a_2)) @ W_hh.T * step(-a_1))",
         "dL/dW_xh", "not_equivalent"),
    ],
)
def test_relu_spellings_are_proved_in_every_region(answer, target, verdict):
    result = check(answer, target, model=ONE_UNIT)
    assert result.verdict == verdict, str(result)


@pytest.mark.parametrize(
    "answer, target, model",
    [
        (r"\exp(z_1)/\mathbf{1}^\top\exp(z_1)", "yhat_1", RNN(convention="column")),
        (r"e^{z_1} / (e^{z_1} \mathbf{1})", "yhat_1", RNN()),
        (r"(I - \operatorname{diag}(h_2^2)) \frac{\partial L}{\partial h_2}", "dL/da_2", RNN(convention="column", loss_at="last")),
        (r"\frac{\partial L}{\partial h_2} \odot (\mathbf{1} - h_2^{2})", "dL/da_2", RNN(loss_at="last")),
        (r"\frac{\partial L}{\partial a_2} W_{hh}^\top I", "dL/dh_1", RNN(loss_at="last")),
    ],
)
def test_ones_and_identity_sized_by_context_check_equivalent(answer: str, target: str, model: RNN) -> None:
    result = check(answer, target, model=model)
    assert result.verdict == "equivalent", str(result)


# -- what an answer may cite (issue 14, finding 8) ------------------------------------------------


def test_a_forward_target_answered_with_itself_is_circular():
    for answer, target in (("L_2", "L_2"), ("h_1[0]", "h_1[0]"), ("2 * h_1 - h_1", "h_1")):
        result = check(answer, target)
        assert result.verdict == "invalid" and result.diagnoses[0].code == "circular", answer
    assert check("-sum(y_2 * log(yhat_2))", "L_2").verdict == "equivalent"  # other nodes may be used


@pytest.mark.parametrize(
    "answer, target, allowed",
    [
        # (answer, target, the policies under which it may be checked)
        (CORRECT_W_HH, "dL/dW_hh", {"state_gradients", "any"}),
        ("dL_1/dW_hh + dL_2/dW_hh", "dL/dW_hh", {"any"}),
        ("dL_1/dh_1 + dL_2/dh_1", "dL/dh_1", {"any"}),
        ("(yhat_1 - y_1) @ W_hy.T + dL/dh_2 @ dh_2/dh_1", "dL/dh_1", {"any"}),
        ("(yhat_1 - y_1) @ W_hy.T + (dL/da_2) @ W_hh.T", "dL/dh_1", {"state_gradients", "any"}),
        ("h_1.T @ (yhat_1 - y_1) + h_2.T @ (yhat_2 - y_2)", "dL/dW_hy", {"none", "state_gradients", "any"}),
        ("(dL/dh_1 * (1 - h_1**2)) @ W_xh.T", "dL/dx_1", {"state_gradients", "any"}),
        ("dL/dx_1 + 0 * dL/dh_1", "dL/dx_1", set()),  # the target itself: never
    ],
)
def test_the_cite_policy_decides_which_true_partials_an_answer_may_use(answer, target, allowed):
    for policy in ("none", "state_gradients", "any"):
        result = check(answer, target, settings=Settings(cite=policy))
        if policy in allowed:
            assert result.verdict == "equivalent", (policy, str(result))
        else:
            assert result.verdict == "invalid", (policy, str(result))
            assert result.diagnoses[0].code in ("cited_partial", "circular")


def test_a_refused_citation_names_the_partial_and_the_rule():
    result = check("dL_1/dW_hh + dL_2/dW_hh", "dL/dW_hh", settings=Settings(cite="state_gradients"))
    assert result.diagnoses[0].code == "cited_partial"
    assert "the answer cites ∂L_1/∂W_hh, a gradient with respect to a parameter, not a state" in result.message
    assert "only the loss's gradients with respect to states (such as ∂L/∂h_t) may be cited" in result.message
    piece = check("dL_1/dh_1 + dL_2/dh_1", "dL/dh_1", settings=Settings(cite="state_gradients"))
    assert "a piece of the target dL/dh_1 itself" in piece.message and "states other than h_1" in piece.message
    assert check("dL_1/dW_hh + dL_2/dW_hh", "dL/dW_hh").ok  # check's own default stays "any"
    from bptt_check import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'state_gradients'"):
        Settings(cite="state_gradient")


def test_a_partial_with_no_path_is_named_zero_once():
    result = check("dL_1/dh_2 + 2 * dL_1/dh_2", "dL/dh_2")
    zero = [d.message for d in result.diagnoses if d.code == "zero_partial"]
    assert zero == ["∂L_1/∂h_2 is zero: L_1 does not depend on h_2"]
