"""Grading at scale: question files and rubrics, the :class:`Grader`, batch runs, result files.

>>> from bptt_check.grading import Grader, Question
>>> grader = Grader(Question("dL/dW_hh"))
>>> grader.grade("h_0.T @ (dL/dh_1 * (1 - h_1**2)) + h_1.T @ (dL/dh_2 * (1 - h_2**2))").score
1.0

* :class:`Question` / :class:`Rubric` — a question file (``Question.from_file``)
  or the same in Python.
* :class:`Grader` — the truth computed once per question; ``grade`` one
  answer, ``grade_many`` / ``grade_iter`` a batch in worker processes under a
  hard time budget.
* :class:`GradeResult` — one graded answer; :class:`Summary` — a batch's counts.
* :func:`read_submissions` and :func:`run_grade` — the pieces of ``bptt-check
  grade`` (the command itself is :mod:`bptt_check.grading.command`).

Importing this package is cheap: sympy and jax load when a truth is built.
"""

from .batch import Submission
from .command import run_grade
from .grader import Grader
from .question import Question, Rubric
from .result import GradeResult, Summary
from .submissions import read_submissions

__all__ = [
    "GradeResult",
    "Grader",
    "Question",
    "Rubric",
    "Submission",
    "Summary",
    "read_submissions",
    "run_grade",
]
