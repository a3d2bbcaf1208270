"""Gradescope's autograder: build the zip, and grade one student's submission inside it.

``bptt-check gradescope build ASSIGNMENT --out autograder.zip`` writes the
zip Gradescope asks for::

    setup.sh            installs the wheel below and its dependencies (pip)
    run_autograder      grades /autograder/submission into /autograder/results/results.json
    bptt_check-*.whl    this package
    assignment/         the assignment file and its question files

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh``
once when the image is built, and ``run_autograder`` once per submission.
``run_autograder`` runs ``python3 -m bptt_check.gradescope run``: it reads
the student's ``.tex``, ``.md``, ``.txt`` or ``.toml`` files in
``/autograder/submission`` (answers labelled per question, see
:func:`bptt_check.grading.assignment.read_answers`), grades every question
and writes ``results.json``: one test per question with ``name``,
``score``, ``max_score``, ``status``, ``output``, ``output_format``,
``visibility`` (the question's) and ``tags`` (the verdict and diagnosis
codes), the total ``score``, ``visibility`` and ``stdout_visibility``. A
missing or unreadable answer is that test's 0 with a message; an error
inside bptt-check still writes a results file that says so. Nothing about
other students is in it: the class summary is :func:`class_report`'s, for
the TA (``bptt-check gradescope report``).

The root (``/autograder``) can be moved with the environment variable
``BPTT_AUTOGRADER_ROOT`` (for tests, or a dry run on a laptop).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import BpttCheckError, FileFormatError, InternalError

ROOT_ENV = "BPTT_AUTOGRADER_ROOT"
DEFAULT_ROOT = "/autograder"

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image: install bptt-check from the wheel
# in this zip, and its dependencies (sympy, numpy, jax, lark, rich, hypothesis) from PyPI.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${BPTT_PYTHON:-python3}"
"$PYTHON" -m pip install --upgrade pip >/dev/null 2>&1 || true
"$PYTHON" -m pip install ./bptt_check-*.whl
"$PYTHON" -c "import bptt_check; print('bptt-check', bptt_check.__version__, 'installed')"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this once per submission. It never fails without a results.json.
ROOT="${BPTT_AUTOGRADER_ROOT:-/autograder}"
PYTHON="${BPTT_PYTHON:-python3}"
"$PYTHON" -m bptt_check.gradescope run --root "$ROOT" --assignment "$ROOT/source/assignment"
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
  mkdir -p "$ROOT/results"
  printf '{"score": 0, "output": "The autograder could not start (exit code %s). Please tell the course staff.", "tests": []}\\n' \\
    "$status" > "$ROOT/results/results.json"
fi
exit 0
"""

SUBMISSION_HINT = (
    "Submit one .tex, .md, .txt or .toml file. Start each answer with a line '% question: NAME'"
    " (in .md: '<!-- question: NAME -->'; in .txt: 'question: NAME'), or in .toml give one key per question."
)


# -- building the zip ---------------------------------------------------------------------------


def build(assignment: str | Path, out: str | Path, *, wheel: str | Path | None = None) -> Path:
    """Write the autograder zip for ``assignment`` (a file or folder) to ``out``; return its path.

    ``wheel`` is a built ``bptt_check`` wheel; by default one is built from
    this package's source tree with ``pip wheel``.
    """
    from .grading.assignment import Assignment

    source = Path(assignment)
    loaded = Assignment.load(source)  # refuse a broken assignment before building anything
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="bptt-gradescope-") as tmp:
        whl = Path(wheel) if wheel is not None else build_wheel(Path(tmp))
        if not whl.is_file() or whl.suffix != ".whl":
            raise FileFormatError(f"{whl}: not a wheel file")
        files = _assignment_files(source, loaded)
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
            _add(z, "setup.sh", SETUP_SH, executable=True)
            _add(z, "run_autograder", RUN_AUTOGRADER, executable=True)
            z.write(whl, whl.name)
            for arcname, path in files:
                z.write(path, f"assignment/{arcname}")
    return out


def build_wheel(into: Path) -> Path:
    """Build this package's wheel with ``pip wheel`` from its source tree; its path."""
    project = Path(__file__).resolve().parent.parent
    if not (project / "pyproject.toml").is_file():
        raise FileFormatError(
            "bptt_check's source tree is not here (installed from a wheel?)",
            hint="pass --wheel with a bptt_check wheel",
        )
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(into), str(project)],
        capture_output=True,
        text=True,
    )
    wheels = sorted(into.glob("bptt_check-*.whl"))
    if run.returncode != 0 or not wheels:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise FileFormatError(f"could not build bptt_check's wheel: {last}", hint="pass --wheel with a built wheel")
    return wheels[-1]


def _assignment_files(source: Path, loaded: Any) -> list[tuple[str, Path]]:
    """(name in the zip, path): the assignment file and the question files it uses, relative to its folder."""
    from .grading.assignment import ASSIGNMENT_FILE

    if source.is_dir() and not (source / ASSIGNMENT_FILE).is_file():
        return [(p.name, p) for p in sorted(source.glob("*.toml"))]
    main = source / ASSIGNMENT_FILE if source.is_dir() else source
    base = main.parent.resolve()
    files = [(ASSIGNMENT_FILE, main)]
    for item in loaded:
        src = item.question.source
        if src and Path(src).is_file():
            path = Path(src).resolve()
            try:
                rel = path.relative_to(base)
            except ValueError:
                raise FileFormatError(
                    f"{src}: a question file outside the assignment's folder {base}",
                    hint="keep question files next to (or below) the assignment file",
                ) from None
            files.append((rel.as_posix(), path))
    return files


def _add(z: zipfile.ZipFile, name: str, text: str, *, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
    z.writestr(info, text)


# -- grading one submission ------------------------------------------------------------------------


def run(root: str | Path, assignment: str | Path) -> dict[str, Any]:
    """Grade ``root/submission`` against ``assignment`` into ``root/results/results.json``; the document.

    Never raises: an error inside bptt-check is written as a results file
    that says so (and the traceback goes to standard output, which
    students do not see: ``stdout_visibility`` is ``hidden``).
    """
    root = Path(root)
    start = time.perf_counter()
    try:
        document = grade_submission(root / "submission", assignment)
    except Exception as err:  # noqa: BLE001 - the student must get a results file whatever happened
        traceback.print_exc(file=sys.stdout)
        document = _error_document(err, assignment)
    document["execution_time"] = round(time.perf_counter() - start)
    _write_results(root / "results" / "results.json", document)
    return document


def grade_submission(folder: str | Path, assignment: str | Path) -> dict[str, Any]:
    """The results.json document of one student's submission folder (see the module docstring)."""
    from .grading.assignment import SUBMISSION_SUFFIXES, Answer, Assignment, read_answers

    spec = Assignment.load(assignment)
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUBMISSION_SUFFIXES)
    answers: dict[str, Answer] = {}
    notes: list[str] = []
    for path in files:
        name = path.relative_to(folder).as_posix()
        try:
            found, said = read_answers(path, spec.names)
        except BpttCheckError as err:
            notes.append(f"{name}: {err.message}" + (f" ({err.hint})" if err.hint else ""))
            continue
        notes += [f"{name}: {n}" for n in said if not (len(files) > 1 and n.startswith("no labelled answers"))]
        for label, answer in found.items():
            if label in answers:
                notes.append(f"{name}: question {label!r} was answered in an earlier file too: this one is graded")
            answers[label] = answer
    if not files:
        others = sorted(p.name for p in folder.rglob("*") if p.is_file())[:5] if folder.is_dir() else []
        notes.append(
            "no .tex, .md, .txt or .toml file in the submission"
            + (f" (found: {', '.join(others)})" if others else "")
        )
    if not answers:
        notes.append(SUBMISSION_HINT)
    results = spec.grade(answers)
    tests = []
    for item, result in zip(spec, results):
        output = item.student_message(result)
        if item.name not in answers:
            output = f"{result.score:g}/{result.max_score:g} points: no answer labelled {item.name!r} was found.\n{SUBMISSION_HINT}"
        tests.append(
            {
                "name": f"{item.name}: {item.question.name}",
                "score": result.score,
                "max_score": result.max_score,
                "status": "passed" if result.full_credit else "failed",
                "output": output,
                "output_format": "text",
                "visibility": item.visibility,
                "tags": [result.verdict, *dict.fromkeys(result.codes)],
                # For the TA's export, never shown to the student: no message (the feedback setting decides that).
                "extra_data": {"bptt_check": {**result.to_dict(), "message": "", "question": item.name}},
            }
        )
    return {
        "score": round(sum(t["score"] for t in tests), 9),
        "output": "\n".join(notes),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def _error_document(err: BaseException, assignment: str | Path) -> dict[str, Any]:
    what = err.message if isinstance(err, BpttCheckError) else f"{type(err).__name__}: {err}"
    tests: list[dict[str, Any]] = []
    try:
        from .grading.assignment import Assignment

        for item in Assignment.load(assignment):
            tests.append(
                {
                    "name": f"{item.name}: {item.question.name}",
                    "score": 0.0,
                    "max_score": item.points,
                    "status": "failed",
                    "output": "not graded: the autograder hit an internal error (see above)",
                    "output_format": "text",
                    "visibility": item.visibility,
                    "tags": ["internal_error"],
                }
            )
    except Exception:  # noqa: BLE001 - the assignment itself is broken: no tests to list
        pass
    return {
        "score": 0.0,
        "output": (
            "The autograder hit an internal error and could not grade this submission; this is not your"
            f" mistake. Please tell the course staff. ({what})"
        ),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def _write_results(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# -- the TA's report ----------------------------------------------------------------------------------


def class_report(paths: Iterable[str | Path]) -> str:
    """A class summary from many students' results.json files (e.g. Gradescope's export): per question,
    the mean score, the verdicts and the most common diagnoses. For the TA, never for students."""
    from collections import Counter, defaultdict

    per: dict[str, list[dict[str, Any]]] = defaultdict(list)
    students = 0
    for p in paths:
        try:
            document = json.loads(Path(p).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise FileFormatError(f"{p}: not a readable results.json ({err})") from None
        students += 1
        for t in document.get("tests", []):
            per[t.get("name", "?")].append(t)
    lines = [f"{students} submissions"]
    for name, tests in per.items():
        mean = sum(float(t.get("score", 0)) for t in tests) / len(tests)
        top = max(float(t.get("max_score", 0)) for t in tests)
        verdicts = Counter(t.get("tags", ["?"])[0] if t.get("tags") else "?" for t in tests)
        codes = Counter(c for t in tests for c in t.get("tags", [])[1:])
        lines.append(f"{name}: mean {mean:.3g} / {top:g} over {len(tests)}")
        lines.append("  verdicts:  " + "  ".join(f"{v} {n}" for v, n in verdicts.most_common()))
        if codes:
            lines.append("  diagnoses: " + "  ".join(f"{c} {n}" for c, n in codes.most_common(8)))
    return "\n".join(lines)


# -- command line -----------------------------------------------------------------------------------


def add_gradescope_command(subparsers: Any) -> None:
    """Add ``gradescope build|run|report`` to the ``bptt-check`` sub-commands."""
    g = subparsers.add_parser("gradescope", help="build a Gradescope autograder zip; run it; a TA's class report")
    sub = g.add_subparsers(dest="gradescope_command", metavar="build|run|report", required=True)
    b = sub.add_parser("build", help="write the autograder zip of an assignment")
    b.add_argument("assignment", type=Path, metavar="ASSIGNMENT", help="an assignment file or folder")
    b.add_argument("--out", type=Path, default=Path("autograder.zip"), metavar="ZIP")
    b.add_argument("--wheel", type=Path, default=None, help="a bptt_check wheel (default: built from this source)")
    b.set_defaults(run=_cmd_build)
    r = sub.add_parser("run", help="grade ROOT/submission into ROOT/results/results.json (what run_autograder does)")
    r.add_argument("--root", type=Path, default=Path(os.environ.get(ROOT_ENV, DEFAULT_ROOT)))
    r.add_argument("--assignment", type=Path, default=None, help="default: ROOT/source/assignment")
    r.set_defaults(run=_cmd_run)
    t = sub.add_parser("report", help="a class summary from many results.json files (for the TA)")
    t.add_argument("results", type=Path, nargs="+", metavar="RESULTS.json")
    t.set_defaults(run=_cmd_report)


def _cmd_build(args: argparse.Namespace) -> int:
    out = build(args.assignment, args.out, wheel=args.wheel)
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
    print(f"wrote {out} ({len(names)} files: {', '.join(names)})")
    print("upload it as the autograder of a Gradescope programming assignment (see examples/course/README.md)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    document = run(args.root, args.assignment or args.root / "source" / "assignment")
    print(f"score {document['score']:g}: {args.root / 'results' / 'results.json'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    print(class_report(args.results))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bptt_check.gradescope run|build|report`` (what ``run_autograder`` calls)."""
    parser = argparse.ArgumentParser(prog="python -m bptt_check.gradescope")
    sub = parser.add_subparsers(dest="command", required=True)
    add_gradescope_command(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(["gradescope", *argv])
    try:
        return int(args.run(args))
    except InternalError as err:  # a bug, not the user's: not a BpttCheckError, exit 3 as bptt-check does
        print(f"bptt-check: internal error: {err}", file=sys.stderr)
        return 3
    except BpttCheckError as err:
        print(f"bptt-check: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["add_gradescope_command", "build", "build_wheel", "class_report", "grade_submission", "run"]
