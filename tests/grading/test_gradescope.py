"""Gradescope's autograder (bptt_check.gradescope): the zip in a fresh venv, results.json even on a crash, the TA's class report."""

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

from .conftest import COURSE, FIVE, NAMES, ROOT, SUBS


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


def test_the_examples_gradescope_scripts_are_the_ones_the_zip_gets():
    from bptt_check.gradescope import RUN_AUTOGRADER, SETUP_SH

    folder = COURSE / "gradescope"
    assert (folder / "setup.sh").read_text() == SETUP_SH
    assert (folder / "run_autograder").read_text() == RUN_AUTOGRADER
    assert all(os.access(folder / f, os.X_OK) for f in ("setup.sh", "run_autograder"))
