"""Questions and rubrics (bptt_check.grading.question): question files, rubric scores, cited partials, model options."""

from __future__ import annotations

from pathlib import Path

import pytest

from bptt_check.errors import ConfigError, FileFormatError
from bptt_check.grading import Grader, Question, Rubric
from bptt_check.model import RNN
from bptt_check.results import CheckResult, Diagnosis

from .conftest import CORRECT, WRITTEN


ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "examples" / "grading"


# -- question files ---------------------------------------------------------------------------


def test_the_example_question_file_loads():
    q = Question.from_file(EXAMPLES / "hw2_dW_hh.toml")
    assert q.target == "dL/dW_hh" and q.model == RNN(steps=2, loss_at="all")
    assert q.rubric.max_score == 4 and q.rubric.transposed == 0.5 and q.rubric.diagnoses == {"sign_flip": 0.5}
    assert q.name.startswith("HW2")


@pytest.mark.parametrize(
    "text, key",
    [
        ('title = "x"', "target"),
        ('target = "dL/dW_hh"\ncolour = "red"', "colour"),
        ('target = 3', "target"),
        ('target = "dL/dW_hh"\n[rubric]\ntransposed = "half"', "rubric.transposed"),
        ('target = "dL/dW_hh"\n[rubric]\ntransposed = 1.5', "rubric.transposed"),
        ('target = "dL/dW_hh"\n[rubric]\nreadings = "total"', "rubric.readings"),
        ('target = "dL/dW_hh"\n[rubric]\nreading = "both"', "rubric.reading"),
        ('target = "dL/dW_hh"\n[rubric]\npoints = 2.5', "rubric.points"),
        ('target = "dL/dW_hh"\n[rubric]\nbudget = 0', "rubric.budget"),
        ('target = "dL/dW_hh"\n[rubric]\nwork = 0', "rubric.work"),
        ('target = "dL/dW_hh"\n[rubric]\ncite = "states"', "rubric.cite"),
        ('target = "dL/dW_hh"\n[rubric]\nmax_score = true', "rubric.max_score"),
        ('target = "dL/dW_hh"\n[rubric]\npartial_credit = "yes"', "rubric.partial_credit"),
        ('target = "dL/dW_hh"\n[rubric.diagnoses]\nsign_flip = "half"', "rubric.diagnoses.sign_flip"),
        ('target = "dL/dW_hh"\n[model]\nsteps = "two"', "model.steps"),
        ('target = "dL/dW_hh"\n[model]\nlayers = 2', "model.layers"),
        ('target = "dL/dW_hh"\n[model]\nsizes = { input = 2, hiden = 3 }', "model.sizes.hiden"),
        ('target = "dL/dW_hh"\n[model]\nloss_at = "first"', "model.loss_at"),
        ('target = "dL/dW_hu"', "target"),
        ('target = "dL/dW_hh"\nmodel = 3', "model"),
        ('target = "dL/dW_hh"\n[rubric\n', "TOML"),
    ],
)
def test_a_bad_question_file_names_the_file_and_the_key(tmp_path: Path, text: str, key: str):
    path = tmp_path / "q.toml"
    path.write_text(text)
    with pytest.raises(FileFormatError) as err:
        Question.from_file(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_questions_and_rubrics_are_checked_in_python_too():
    with pytest.raises(ConfigError, match="rubric.transposed"):
        Rubric(transposed=2)
    with pytest.raises(ConfigError, match="target"):
        Question("")
    assert Question("dL/dW_hh").with_budget(0.5).rubric.budget == 0.5


def test_a_question_says_which_true_partials_an_answer_may_cite():
    # Issue 14, finding 8: citing the target's own pieces earned full marks with no derivation.
    loophole = "dL_1/dW_hh + dL_2/dW_hh"
    strict = Grader(Question("dL/dW_hh"))  # the grading default: state gradients only
    assert Rubric().cite == "state_gradients"
    refused = strict.grade(loophole)
    assert (refused.verdict, refused.codes, refused.score) == ("invalid", ("cited_partial",), 0.0)
    assert "the answer cites ∂L_1/∂W_hh, a gradient with respect to a parameter, not a state" in refused.message
    assert strict.grade(CORRECT[0]).verdict == "equivalent"  # dL/dh_t may be cited
    anything = Grader(Question.from_toml('target = "dL/dW_hh"\n[rubric]\ncite = "any"'))
    assert anything.grade(loophole).verdict == "equivalent"
    closed = Grader(Question.from_toml('target = "dL/dW_hh"\n[rubric]\ncite = "none"'))
    assert closed.grade(CORRECT[0]).codes == ("cited_partial",)
    assert closed.grade(WRITTEN).verdict == "equivalent"
    itself = Grader(Question("L_2", rubric=Rubric(cite="any"))).grade("L_2")
    assert (itself.verdict, itself.codes) == ("invalid", ("circular",))


# -- the rubric ---------------------------------------------------------------------------------


def _result(verdict: str, score: float = 0.0, *codes: str) -> CheckResult:
    return CheckResult(verdict=verdict, target="dL/dW_hh", answer="", score=score, message="m",  # type: ignore[arg-type]
                       diagnoses=tuple(Diagnosis(c, c) for c in codes))


def test_the_rubric_scores_verdicts_diagnoses_and_partial_credit():
    r = Rubric(max_score=4)
    assert r.score(_result("equivalent", 1.0)) == 4
    assert r.score(_result("equivalent_numerically", 1.0)) == 4
    assert r.score(_result("transposed", 0.5, "transposed")) == 2
    assert r.score(_result("not_equivalent", 0.0)) == 0
    assert r.score(_result("not_equivalent", 0.5, "missing_term")) == 2  # the engine's partial credit
    assert r.score(_result("invalid", 0.0, "parse_error")) == 0
    assert Rubric(max_score=4, partial_credit=False).score(_result("not_equivalent", 0.5, "missing_term")) == 0
    assert Rubric(transposed=0).score(_result("transposed", 0.5, "transposed")) == 0  # the instructor's word
    overrides = Rubric(max_score=4, diagnoses={"sign_flip": 0.75, "missing_term": 0.25})
    assert overrides.score(_result("not_equivalent", 0.5, "sign_flip")) == 3
    assert overrides.score(_result("not_equivalent", 0.5, "missing_term", "sign_flip")) == 3  # the best override
    assert overrides.score(_result("not_equivalent", 0.5, "missing_term")) == 1
    assert Rubric(not_equivalent=0.25).score(_result("not_equivalent", 0.1, "extra_term")) == 0.25


# -- model options in question files and on the command line (issue 8) ---------------------------------

COLUMN_QUESTION = '''
title = "dL/dW in the textbook's names"
target = '\\nabla_{W} L'

[model]
steps = 3
convention = "column"
biases = true
activation = "tanh"
loss = "cross-entropy"

[notation]
use = "textbook"
'''

COLUMN_RIGHT = r"\sum_t \operatorname{diag}\left(1 - \left(h^{(t)}\right)^2\right) \left(\nabla_{h^{(t)}} L\right) h^{(t-1)\top}"
COLUMN_ROW_LAYOUT = "sum_{t=1}^{T} h_{t-1} @ (dL/dh_t * (1 - h_t**2)).T"


def test_a_question_in_the_column_convention_grades_column_answers():
    q = Question.from_toml(COLUMN_QUESTION, source="col.toml")
    assert q.model == RNN(steps=3, convention="column", biases=True)
    assert q.notation == {"use": "textbook"}
    g = Grader(q)
    try:
        right = g.grade(COLUMN_RIGHT, id="book")
        assert (right.verdict, right.score) == ("equivalent", 1.0), right.message
        row = g.grade(COLUMN_ROW_LAYOUT, id="row")  # the row convention's layout: the transpose
        assert row.verdict == "transposed", row.message
        tanh_dropped = g.grade(r"\sum_t \left(\nabla_{h^{(t)}} L\right) h^{(t-1)\top}", id="slip")
        assert tanh_dropped.verdict == "not_equivalent"
        assert "missing_activation_derivative" in tanh_dropped.codes
    finally:
        g.close()


@pytest.mark.parametrize(
    "model, key",
    [
        ('convention = "col"', "model.convention"),
        ('activation = "swish"', "model.activation"),
        ('loss = "mse"', "model.loss"),
    ],
)
def test_a_bad_model_option_in_a_question_names_the_key(tmp_path: Path, model: str, key: str):
    path = tmp_path / "q.toml"
    path.write_text(f'target = "dL/dW_hh"\n[model]\n{model}\n')
    with pytest.raises(FileFormatError) as err:
        Question.from_file(path)
    assert str(path) in str(err.value) and key in str(err.value)
