# PrairieLearn question code: bptt-check reads assignment.toml in this folder and grades
# data["submitted_answers"]["dW_hh"|"dW_hy"|"dh_1"]. bptt_check (and lark) must be importable:
# copy them into the course's serverFilesCourse/ (see examples/course/README.md). jax is not needed.
import sys


def _prairielearn(data):
    course_files = data["options"].get("server_files_course_path")
    if course_files and course_files not in sys.path:
        sys.path.insert(0, course_files)
    from bptt_check import prairielearn

    return prairielearn


def parse(data):
    # Unreadable answers become format errors: the student sees where, and the attempt does not count.
    _prairielearn(data).parse(data)


def grade(data):
    # partial_scores[name] = {"score", "weight", "feedback"} per answer, and data["score"] in [0, 1].
    _prairielearn(data).grade(data)
