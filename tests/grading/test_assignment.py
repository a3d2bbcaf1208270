"""Assignments and labelled student files (bptt_check.grading.assignment): loading, answers in tex/md/txt/toml, feedback, budgets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bptt_check.errors import FileFormatError
from bptt_check.grading.assignment import (
    Assignment,
    derivation_steps,
    feedback_text,
    parse_labelled,
    read_answers,
)

from .conftest import COURSE, FIVE, NAMES, SUBS


# -- assignments and labelled submissions -----------------------------------------------------------


def test_the_course_assignment_loads_with_points_visibility_and_feedback():
    a = Assignment.load(COURSE)  # the folder's assignment.toml
    assert a.names == NAMES and a.max_score == 10
    assert [(i.points, i.visibility, i.feedback) for i in a] == [
        (4, "visible", "full"), (2, "visible", "diagnoses"), (4, "after_due_date", "diagnoses")]
    assert a.item("dW_hy").question.model.loss_at == "last"


def test_a_folder_of_question_files_and_inline_questions(tmp_path: Path):
    folder = tmp_path / "hw"
    folder.mkdir()
    shutil.copy(COURSE / "questions" / "dW_hh.toml", folder / "a.toml")
    (folder / "b.toml").write_text('target = "dL/dW_hy"\n[rubric]\nmax_score = 3\n')
    a = Assignment.load(folder)
    assert a.names == ("a", "b") and a.max_score == 4
    one = tmp_path / "one.toml"
    one.write_text(
        'title = "quiz"\n[model]\nsteps = 3\n'
        '[[question]]\nname = "x"\ntarget = "dL/dW_hh"\npoints = 2\nvisibility = "hidden"\n'
        '[[question]]\nname = "y"\ntarget = "dL/dW_hy"\nfeedback = "score"\n[question.model]\nloss_at = "last"\n'
    )
    b = Assignment.load(one)
    assert b.title == "quiz" and [(i.name, i.points, i.visibility, i.feedback) for i in b] == [
        ("x", 2, "hidden", "full"), ("y", 1, "visible", "score")]
    assert b.item("x").question.model.steps == 3 and b.item("y").question.model.steps == 2  # its own [model]


@pytest.mark.parametrize(
    "text,needle",
    [
        ('[[question]]\nname = "x"\ntarget = "dL/dW_hh"\nvisibility = "later"\n', "visibility = 'later'"),
        ('[[question]]\nname = "x"\ntarget = "dL/dW_hh"\nfeedback = "all"\n', "feedback = 'all'"),
        ('[[question]]\nname = "x"\ntarget = "dL/dW_hh"\npoints = 0\n', "points = 0"),
        ('[[question]]\nname = "x y"\ntarget = "dL/dW_hh"\n', "question name 'x y'"),
        ('[[question]]\nname = "x"\ntarget = "dL/dW_hh"\n[[question]]\nname = "x"\ntarget = "dL/dW_hy"\n', "two questions"),
        ('[[question]]\nname = "x"\ntarget = "dL/dW_hh"\npoint = 2\n', "unknown key 'point'"),
        ('title = "no questions"\n', "no [[question]]"),
    ],
)
def test_a_bad_assignment_names_the_problem(tmp_path: Path, text: str, needle: str):
    path = tmp_path / "assignment.toml"
    path.write_text(text)
    with pytest.raises(FileFormatError) as err:
        Assignment.load(path)
    assert needle in err.value.message


def test_labelled_answers_in_tex_md_txt_and_toml(tmp_path: Path):
    tex, notes = read_answers(SUBS / "right.tex", NAMES)
    assert set(tex) == set(NAMES) and notes == [] and tex["dW_hy"].text == r"h_2^\top (\hat y_2 - y_2)"
    assert tex["dW_hy"].syntax == "latex" and "\\begin" not in tex["dh_1"].text
    md, _ = read_answers(SUBS / "one_wrong.md", NAMES)
    assert md["dW_hy"].text == "h_1.T @ (yhat_1 - y_1) + h_2.T @ (yhat_2 - y_2)"  # the code fence dropped
    toml, _ = read_answers(SUBS / "answers.toml", NAMES)
    assert toml["dW_hy"].text == "h_2.T @ (yhat_2 - y_2)"
    answers, notes = parse_labelled("intro\n% question: a\nx\n% a comment\n\n% question: a\ny\n# Question: zz\nz\n")
    assert answers["a"].text == "y" and answers["a"].line == 6 and answers["zz"].text == "z"
    assert "answered twice (lines 2 and 6)" in notes[0]
    other = tmp_path / "x.txt"
    other.write_text("question: DW_HH\nh_0\nquestion: nope\nh_1\n")
    found, notes = read_answers(other, NAMES)
    assert list(found) == ["dW_hh"] and "'nope' matches no question" in notes[0]
    assert derivation_steps(r"a &= b \\ &= \frac{c}{d}") == ["a", "b", r"\frac{c}{d}"]
    assert derivation_steps("f(x=1) = 2") == ["f(x=1)", "2"]


@pytest.mark.slow
def test_grading_one_student_per_question_with_feedback_levels():
    a = Assignment.load(COURSE)
    graders = a.graders()
    for label, (name, points) in FIVE.items():
        answers, _ = read_answers(SUBS / name, NAMES)
        results = a.grade(answers, graders=graders, id=label)
        assert {i.name: r.score for i, r in zip(a, results)} == points, label
    wrong, _ = read_answers(SUBS / "one_wrong.md", NAMES)
    r = a.grade(wrong, graders=graders)[1]
    assert r.codes == ("extra_term",)
    shown = a.item("dW_hy").student_message(r)
    assert "extra_term" in shown and "counterexample" not in shown and "numeric:" not in shown
    assert feedback_text(r, "verdict") == "dL/dW_hy: not_equivalent (0/2 points)"
    assert feedback_text(r, "score") == "0/2 points"
    missing, _ = read_answers(SUBS / "missing_one.txt", NAMES)
    gone = a.grade(missing, graders=graders)[1]
    assert gone.codes == ("missing",) and "% question: dW_hy" in gone.message
    # a derivation: its result earns the credit, and the first wrong step is named
    from bptt_check.grading.assignment import grade_answer

    chain = grade_answer(graders["dh_1"], "dL/dh_1 = (yhat_1 - y_1) @ W_hy.T = (yhat_1 - y_1) @ W_hy.T"
                         " + (dL/dh_2 * (1 - h_2**2)) @ W_hh.T")
    assert chain.verdict == "equivalent" and "derivation: step 1 of 2" in chain.message
    two = grade_answer(graders["dh_1"], "(yhat_1 - y_1) @ W_hy.T + dL/da_2 @ W_hh.T = (yhat_1 - y_1) @ W_hy.T")
    assert two.verdict == "not_equivalent" and "derivation: the step before the result equals the target" in two.message


def test_a_check_past_its_hard_budget_is_interrupted_in_process(monkeypatch: pytest.MonkeyPatch):
    import signal
    import time as _time

    from bptt_check.grading import Grader, Question, Rubric
    from bptt_check.grading.assignment import grade_answer

    grader = Grader(Question("dL/dW_hh", rubric=Rubric(budget=0.05)))
    _ = grader.checker
    stuck: list[str] = []

    def never_returns(answer: str, syntax: str) -> object:
        stuck.append(answer)
        _time.sleep(30)  # code that never reaches the checker's own deadline
        raise AssertionError("not interrupted")

    monkeypatch.setattr(grader, "check_text", never_returns)
    before = signal.getsignal(signal.SIGALRM)
    result = grade_answer(grader, "h_0.T @ dL/da_1 + h_1.T @ dL/da_2")
    assert stuck and (result.verdict, result.codes) == ("invalid", ("time_budget",))
    assert "time budget of 0.05 s exceeded" in result.message and not result.internal_error
    assert signal.getsignal(signal.SIGALRM) is before and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
