"""PrairieLearn's graders (bptt_check.prairielearn): the external grader, grading without jax, the example question, failing commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bptt_check.grading.assignment import Assignment, read_answers

from .conftest import COURSE, FIVE, NAMES, ROOT, SUBS


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
