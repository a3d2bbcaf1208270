"""Assignments, Gradescope's autograder and PrairieLearn's graders (issue 18 items 2-5)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from bptt_check.errors import FileFormatError
from bptt_check.grading.assignment import Assignment, derivation_steps, feedback_text, parse_labelled, read_answers

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "examples" / "course"
SUBS = COURSE / "submissions"
NAMES = ("dW_hh", "dW_hy", "dh_1")

# The five submissions of the issue, with the points each question earns (dW_hh 4, dW_hy 2, dh_1 4).
FIVE = {
    "right": ("right.tex", {"dW_hh": 4, "dW_hy": 2, "dh_1": 4}),
    "one_wrong": ("one_wrong.md", {"dW_hh": 4, "dW_hy": 0, "dh_1": 4}),
    "garbage": ("garbage.txt", {"dW_hh": 0, "dW_hy": 0, "dh_1": 0}),
    "missing": ("missing_one.txt", {"dW_hh": 2, "dW_hy": 0, "dh_1": 2}),
    "empty": ("empty.tex", {"dW_hh": 0, "dW_hy": 0, "dh_1": 0}),
}


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


# -- Gradescope -----------------------------------------------------------------------------------------


def _check_results(doc: dict, expect: dict[str, float], label: str) -> None:
    assert set(doc) >= {"score", "tests", "visibility", "stdout_visibility", "output"}, label
    assert doc["visibility"] == "visible" and doc["stdout_visibility"] == "hidden"
    tests = doc["tests"]
    assert [t["name"].split(":")[0] for t in tests] == list(NAMES), label  # one test per question
    for t in tests:
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= t["max_score"]
        assert t["status"] in ("passed", "failed") and t["status"] == ("passed" if t["score"] == t["max_score"] else "failed")
        assert isinstance(t["output"], str) and t["output"] and t["output_format"] == "text"
        assert t["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
        assert isinstance(t["tags"], list) and all(isinstance(x, str) for x in t["tags"])
    assert {t["name"].split(":")[0]: t["score"] for t in tests} == expect, label
    assert abs(doc["score"] - sum(t["score"] for t in tests)) < 1e-9
    assert [t["visibility"] for t in tests] == ["visible", "visible", "after_due_date"]
    text = json.dumps(doc)
    for word in ("most common mistakes", "mean score", "verdicts:", "answers/s"):  # no class data
        assert word not in text, (label, word)


@pytest.mark.slow
def test_the_gradescope_zip_installs_into_a_fresh_venv_and_grades_five_submissions(tmp_path: Path):
    zip_path = tmp_path / "autograder.zip"
    build = subprocess.run(
        [sys.executable, "-m", "bptt_check", "gradescope", "build", str(COURSE), "--out", str(zip_path)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert build.returncode == 0, build.stderr
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
        assert {"setup.sh", "run_autograder", "assignment/assignment.toml", "assignment/questions/dW_hy.toml"} <= set(names)
        assert any(n.startswith("bptt_check-") and n.endswith(".whl") for n in names)
        assert (z.getinfo("run_autograder").external_attr >> 16) & 0o111
        root = tmp_path / "autograder"
        z.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):
        (root / "source" / script).chmod(0o755)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)  # a real fresh environment: nothing from this one
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(BPTT_PYTHON=str(python), BPTT_AUTOGRADER_ROOT=str(root), PATH=f"{env_dir / 'bin'}:{env['PATH']}")
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], capture_output=True, text=True,
                           env=env, timeout=600, cwd=tmp_path)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    where = subprocess.run([str(python), "-c", "import bptt_check; print(bptt_check.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert str(env_dir) in where.stdout  # installed from the zip's wheel, not this checkout

    for label, (name, expect) in FIVE.items():
        sub = root / "submission"
        shutil.rmtree(sub, ignore_errors=True)
        shutil.rmtree(root / "results", ignore_errors=True)
        sub.mkdir()
        shutil.copy(SUBS / name, sub / name)
        run = subprocess.run(["bash", str(root / "run_autograder")], capture_output=True, text=True,
                             env=env, timeout=300, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        doc = json.loads((root / "results" / "results.json").read_text())
        _check_results(doc, expect, label)
        if label in ("garbage", "empty"):
            assert "no labelled answers" in doc["output"] and "% question: NAME" in doc["output"]

    # an internal error still writes a results file that says so
    shutil.rmtree(root / "results")
    (root / "source" / "assignment" / "assignment.toml").write_text("[[question]]\nname = 1\n")
    run = subprocess.run(["bash", str(root / "run_autograder")], capture_output=True, text=True, env=env,
                         timeout=300, cwd=tmp_path)
    doc = json.loads((root / "results" / "results.json").read_text())
    assert doc["score"] == 0 and "internal error" in doc["output"] and run.returncode == 0


def test_run_writes_a_results_file_even_when_grading_crashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from bptt_check import gradescope

    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "a.txt").write_text("question: dW_hh\nh_0\n")

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(gradescope, "grade_submission", boom)
    doc = gradescope.run(tmp_path, COURSE)
    saved = json.loads((tmp_path / "results" / "results.json").read_text())
    assert saved == doc and doc["score"] == 0 and "disk on fire" in doc["output"]
    assert [t["max_score"] for t in doc["tests"]] == [4, 2, 4] and all(t["score"] == 0 for t in doc["tests"])


def test_the_class_report_is_for_the_ta(tmp_path: Path):
    from bptt_check.gradescope import class_report

    docs = []
    for n, tags in enumerate((["equivalent"], ["not_equivalent", "sign_flip"], ["not_equivalent", "sign_flip"])):
        doc = {"score": 1, "tests": [{"name": "dW_hh: q", "score": 4 if n == 0 else 2, "max_score": 4, "tags": tags}]}
        (tmp_path / f"{n}.json").write_text(json.dumps(doc))
        docs.append(tmp_path / f"{n}.json")
    report = class_report(docs)
    assert "3 submissions" in report and "mean 2.67 / 4 over 3" in report and "sign_flip 2" in report


# -- PrairieLearn ------------------------------------------------------------------------------------------


def _pl_tree(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    (root / "data").mkdir(parents=True)
    (root / "student").mkdir()
    shutil.copytree(COURSE, root / "tests", ignore=shutil.ignore_patterns("submissions", "prairielearn", "*.md"))
    shutil.copy(SUBS / FIVE[name][0], root / "student" / FIVE[name][0])
    (root / "data" / "data.json").write_text(json.dumps({"submitted_answers": {}, "params": {}}))
    return root


@pytest.mark.slow
def test_the_prairielearn_external_grader_on_the_five_submissions(tmp_path: Path):
    from bptt_check.prairielearn import external_grade

    for label, (name, expect) in FIVE.items():
        root = _pl_tree(tmp_path, label)
        doc = external_grade(root)
        assert json.loads((root / "results" / "results.json").read_text()) == doc
        assert set(doc) == {"gradable", "score", "message", "format_errors", "tests"}
        assert isinstance(doc["score"], float) and 0 <= doc["score"] <= 1
        if label in ("garbage", "empty"):  # nothing labelled: a format error, the attempt does not count
            assert doc["gradable"] is False and doc["tests"] == [] and "question: NAME" in doc["format_errors"]["submission"]
            continue
        assert doc["gradable"] is True
        assert {t["name"].split(":")[0]: t["points"] for t in doc["tests"]} == expect, label
        assert all(set(t) >= {"name", "points", "max_points", "message", "output"} for t in doc["tests"])
        assert doc["score"] == pytest.approx(sum(expect.values()) / 10)


_NO_JAX = """
import importlib.util, json, sys
sys.modules["jax"] = None  # jax unimportable, as in PrairieLearn's question runtime
sys.modules["jaxlib"] = None
question, course = sys.argv[2], sys.argv[3]
spec = importlib.util.spec_from_file_location("server", question + "/server.py")  # the example's server.py
server = importlib.util.module_from_spec(spec)
spec.loader.exec_module(server)
data = {"submitted_answers": json.loads(sys.argv[1]), "format_errors": {}, "partial_scores": {},
        "options": {"question_path": question, "server_files_course_path": course}}
server.parse(data)
if not data["format_errors"]:  # PrairieLearn grades only answers without format errors
    server.grade(data)
print(json.dumps({k: data.get(k) for k in ("format_errors", "partial_scores", "score")}))
print(sys.modules["bptt_check"].__file__)
print("jax" in sys.modules and sys.modules["jax"] is not None)
"""


@pytest.mark.slow
def test_prairielearn_grade_works_with_jax_unimportable():
    def run(answers: dict[str, str]) -> tuple[dict, str]:
        question = COURSE / "prairielearn" / "questions" / "bpttHW2"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # bptt_check from "serverFilesCourse"
        done = subprocess.run([sys.executable, "-c", _NO_JAX, json.dumps(answers), str(question), str(ROOT)],
                              capture_output=True, text=True, timeout=300, env=env, cwd=question)
        assert done.returncode == 0, done.stderr
        out, package, jax_loaded = done.stdout.strip().splitlines()[-3:]
        assert Path(package).resolve().is_relative_to(ROOT)  # imported from "serverFilesCourse"
        return json.loads(out), jax_loaded

    answers, _ = read_answers(SUBS / "one_wrong.md", NAMES)
    data, jax_loaded = run({k: v.text for k, v in answers.items()})
    assert jax_loaded == "False" and data["format_errors"] == {}
    scores = {k: (v["score"], v["weight"]) for k, v in data["partial_scores"].items()}
    assert scores == {"dW_hh": (1.0, 4.0), "dW_hy": (0.0, 2.0), "dh_1": (1.0, 4.0)}
    assert data["score"] == pytest.approx(0.8)
    assert "sympy only" in data["partial_scores"]["dW_hh"]["feedback"]  # full feedback says jax is absent
    assert "extra_term" in data["partial_scores"]["dW_hy"]["feedback"]
    bad, _ = run({"dW_hh": "h_0.T @ (dL/dh_1", "dW_hy": "", "dh_1": "dL/dh_1"})
    assert "never closed at column" in bad["format_errors"]["dW_hh"] and "dW_hy" in bad["format_errors"]
    assert bad["score"] is None and bad["partial_scores"] == {}


def test_the_prairielearn_example_question_is_complete():
    q = COURSE / "prairielearn" / "questions" / "bpttHW2"
    info = json.loads((q / "info.json").read_text())
    assert {"uuid", "title", "topic", "type"} <= set(info) and info["type"] == "v3"
    html = (q / "question.html").read_text()
    for name in NAMES:
        assert f'answers-name="{name}"' in html
    server = (q / "server.py").read_text()
    assert ".parse(data)" in server and ".grade(data)" in server
    assert Assignment.load(q / "assignment.toml").names == NAMES


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


def test_the_examples_gradescope_scripts_are_the_ones_the_zip_gets():
    from bptt_check.gradescope import RUN_AUTOGRADER, SETUP_SH

    folder = COURSE / "gradescope"
    assert (folder / "setup.sh").read_text() == SETUP_SH
    assert (folder / "run_autograder").read_text() == RUN_AUTOGRADER
    assert all(os.access(folder / f, os.X_OK) for f in ("setup.sh", "run_autograder"))


def test_platform_commands_fail_in_one_line_and_always_leave_results(tmp_path: Path):
    bad = tmp_path / "assignment.toml"
    bad.write_text('[[question]]\nname = "x"\ntarget = "dL/dW_hh"\nvisibility = "soon"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    build = subprocess.run([sys.executable, "-m", "bptt_check", "gradescope", "build", str(bad), "--out",
                            str(tmp_path / "a.zip")], capture_output=True, text=True, timeout=120, env=env)
    assert build.returncode == 2 and "Traceback" not in build.stderr and "visibility = 'soon'" in build.stderr
    assert not (tmp_path / "a.zip").exists()
    grade_root = tmp_path / "grade"  # no tests/ folder: the grader still writes a results file
    run = subprocess.run([sys.executable, "-m", "bptt_check", "prairielearn-grade", str(grade_root)],
                         capture_output=True, text=True, timeout=120, env=env)
    doc = json.loads((grade_root / "results" / "results.json").read_text())
    assert run.returncode == 0 and doc["gradable"] is False and "internal error" in doc["message"]
