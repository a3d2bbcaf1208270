"""Benchmark of ``bptt-check grade``: answers per second for a class of 1 000 answers to dL/dW_hh (T=2).

The class is realistic: ~60 % of the answers are exact copies of a dozen
common forms (right, and the usual mistakes), the rest are students' own
spellings of the same forms (spacing, term order, brackets, LaTeX), some
garbage, and 2 % hostile answers (a megabyte of text, 100 000 parentheses,
``__import__('os')``, ``9**9**9**9`` …). Every answer's verdict and score
are known in advance, and checked.

Three runs:

* **cold**: ``bptt-check grade`` in a fresh process, start-up, worker
  start-up (each worker builds its truth) and writing results included;
* **warm**: the same class through a :class:`~bptt_check.grading.Grader`
  whose workers are up and whose cache of identical answers is cleared;
* **kill and resume**: the cold command killed after ~300 results, then run
  again with the same ``--out``: every id must appear exactly once.

Prints answers per second, the per-answer median time, and the checks.
Target: ≥ 100 answers/s on the 2-core reference machine.

    python benchmarks/bench_grading.py [--answers 1000] [--jobs 2] [--no-resume] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bptt_check.grading import Grader, Question  # noqa: E402

MAX = 1.0
PLAIN = "h_0.T @ (dL/dh_1 * (1 - h_1**2)) + h_1.T @ (dL/dh_2 * (1 - h_2**2))"
WRITTEN = (
    "h_1.T @ ((yhat_2 - y_2) @ W_hy.T * (1 - h_2**2)) + h_0.T @ (((yhat_1 - y_1) @ W_hy.T"
    " + ((yhat_2 - y_2) @ W_hy.T * (1 - h_2**2)) @ W_hh.T) * (1 - h_1**2))"
)
LATEX = r"\sum_{t=1}^{2} h_{t-1}^T \left(\frac{\partial L}{\partial h_t} \odot (1 - h_t^2)\right)"

# (answer, expected verdict, share of the copied answers)
COMMON = [
    (PLAIN, "equivalent", 0.22),
    (WRITTEN, "equivalent", 0.08),
    (LATEX, "equivalent", 0.08),
    ("sum_{t=1}^{2} h_{t-1}.T @ (dL/dh_t * (1 - h_t**2))", "equivalent", 0.08),
    ("h_0.T @ dL/da_1 + h_1.T @ dL/da_2", "equivalent", 0.05),
    ("h_1.T @ (dL/dh_2 * (1 - h_2**2))", "not_equivalent", 0.12),  # the t=1 term dropped
    (WRITTEN.replace("(yhat_1 - y_1)", "(y_1 - yhat_1)").replace("(yhat_2 - y_2)", "(y_2 - yhat_2)"),
     "not_equivalent", 0.07),  # y - yhat
    ("(dL/dh_1 * (1 - h_1**2)).T @ h_0 + (dL/dh_2 * (1 - h_2**2)).T @ h_1", "transposed", 0.08),
    ("h_0.T @ (dL/dh_1 * (1 - h_1)) + h_1.T @ (dL/dh_2 * (1 - h_2))", "not_equivalent", 0.07),
    ("h_1.T @ (dL/dh_1 * (1 - h_1**2)) + h_2.T @ (dL/dh_2 * (1 - h_2**2))", "not_equivalent", 0.05),
    ("h_1.T @ ((yhat_2 - y_2) @ W_hy.T * (1 - h_2**2)) + h_0.T @ ((yhat_1 - y_1) @ W_hy.T * (1 - h_1**2))",
     "not_equivalent", 0.05),
    ("h_0.T @ (dL/dh_1 * (1 - h_1**2)", "invalid", 0.05),
]
GARBAGE = ["h_0 @", "W_hu @ h_1", "h_0 @ h_1", "dL/dW_hh[0,0]", "h_0.T @ dL/dh_1 * (1 - h_1**2)", "tanh", "1 +"]
CREDIT = {"equivalent": 1.0, "equivalent_numerically": 1.0, "transposed": 0.5, "not_equivalent": 0.0, "invalid": 0.0}


def _respace(text: str, rng: random.Random) -> str:
    for op in (" @ ", " + ", " * ", " - "):
        text = text.replace(op, rng.choice((op, op.strip(), "  " + op.strip() + " ")))
    return text


def _own_spelling(text: str, verdict: str, rng: random.Random) -> str:
    """A student's own spelling of a form: the same verdict, another text."""
    if "\\" in text or verdict == "invalid":
        return _respace(text, rng) + " " * rng.randint(0, 2)
    moves = [
        lambda t: "(" + t + ")",
        lambda t: t + " + 0 * W_hh",
        lambda t: "2 * (" + t + ") / 2",
        lambda t: "1 * (" + t + ")",
        lambda t: "(" + t + ").T.T",
    ]
    for move in rng.sample(moves, rng.randint(1, 2)):
        text = move(text)
    return _respace(text, rng)


def hostile(n: int) -> list[str]:
    kinds = [
        lambda k: "h_0 " * 250_000 + str(k),  # a megabyte
        lambda k: "(" * 100_000 + f"h_{k % 3}" + ")" * 100_000,  # 100 000 parentheses
        lambda k: f"__import__('os').system('echo {k}')",
        lambda k: "9**9**9**9" + " + 1" * (k % 3),
        lambda k: "(" * (70 + k) + "h_0" + ")" * (70 + k),
        lambda k: f"sum_{{t=1}}^{{{10**9 + k}}} h_t",
        lambda k: "\x00\x01" * (k + 1) + " h_0",
        lambda k: "exp(" * 300 + "W_hh" + ")" * 300,
    ]
    return [kinds[k % len(kinds)](k) for k in range(n)]


Answer = tuple[str, str, str, bool]
"""(id, text, expected verdict, hostile)"""


def make_class(size: int, *, hostile_share: float = 0.02, seed: int = 1) -> list[Answer]:
    """``size`` answers with their expected verdicts."""
    rng = random.Random(seed)
    n_hostile = round(size * hostile_share)
    n_copies = round(size * 0.6)
    n_own = size - n_hostile - n_copies
    texts, weights = [(t, v) for t, v, _ in COMMON], [w for _, _, w in COMMON]
    answers = [(*rng.choices(texts, weights)[0], False) for _ in range(n_copies)]
    for i in range(n_own):
        if i % 12 == 0:
            answers.append((_respace(rng.choice(GARBAGE), rng) + " " * (i % 5), "invalid", False))
        else:
            text, verdict = rng.choices(texts, weights)[0]
            answers.append((_own_spelling(text, verdict, rng), verdict, False))
    answers += [(h, "invalid", True) for h in hostile(n_hostile)]
    rng.shuffle(answers)
    return [(f"student{i:04d}", text, verdict, bad) for i, (text, verdict, bad) in enumerate(answers)]


QUESTION = """\
title = "dL/dW_hh, T = 2"
target = "dL/dW_hh"
[model]
steps = 2
loss_at = "all"
[rubric]
partial_credit = false   # scores known from the verdicts alone
budget = 10
"""

def command(*args: object) -> list[str]:
    """``bptt-check ARGS`` in a fresh interpreter."""
    return [sys.executable, "-m", "bptt_check", *map(str, args)]


def check_results(records: list[dict], klass: list[Answer]) -> list[str]:
    """Problems: ids missing or repeated, verdicts or scores not the known ones."""
    problems = []
    seen: dict[str, int] = {}
    for r in records:
        seen[r["id"]] = seen.get(r["id"], 0) + 1
    for id_, *_ in klass:
        if seen.get(id_, 0) != 1:
            problems.append(f"{id_} appears {seen.get(id_, 0)} times")
    by_id = {r["id"]: r for r in records}
    for id_, text, verdict, _ in klass:
        r = by_id.get(id_)
        if r is not None and (r["verdict"], r["score"]) != (verdict, CREDIT[verdict] * MAX):
            problems.append(f"{id_}: {r['verdict']} {r['score']} (expected {verdict}) for {text[:60]!r}")
    return problems


def run_cold(workdir: Path, klass: list[Answer], jobs: int) -> dict:
    out = workdir / "cold.jsonl"
    start = time.perf_counter()
    proc = subprocess.run(command("grade", "--question", workdir / "q.toml", workdir / "class.csv",
                                  "--out", out, "--jobs", jobs), capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"cold run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    hostile_ids = {i for i, _, _, bad in klass if bad}
    return {
        "seconds": wall,
        "answers_per_second": len(klass) / wall,
        "median_seconds_all": statistics.median(r["seconds"] for r in records),
        "median_seconds_checked": statistics.median(r["seconds"] for r in records if r["seconds"] > 0),
        "problems": check_results(records, klass),
        "hostile_invalid": all(r["verdict"] == "invalid" for r in records if r["id"] in hostile_ids),
        "summary": proc.stdout.strip(),
    }


def run_warm(workdir: Path, klass: list[Answer], jobs: int) -> dict:
    question = Question.from_file(workdir / "q.toml")
    subs = [(i, a) for i, a, _, _ in klass]
    with Grader(question) as grader:
        grader.grade_many(subs[:100], jobs=jobs)  # workers up, the usual forms seen once
        grader._cache.clear()  # every answer is checked again, duplicates once
        start = time.perf_counter()
        results = grader.grade_many(subs, jobs=jobs)
        wall = time.perf_counter() - start
    records = [r.to_dict() for r in results]
    return {
        "seconds": wall,
        "answers_per_second": len(klass) / wall,
        "median_seconds_all": statistics.median(r.seconds for r in results),
        "median_seconds_checked": statistics.median(r.seconds for r in results if r.seconds > 0),
        "problems": check_results(records, klass),
    }


def run_kill_and_resume(workdir: Path, klass: list[Answer], jobs: int) -> dict:
    out = workdir / "resume.json"
    journal = workdir / "resume.partial.jsonl"
    args = ("grade", "--question", workdir / "q.toml", workdir / "class.csv", "--out", out, "--jobs", jobs)
    proc = subprocess.Popen(command(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and not (journal.exists() and journal.read_text().count("\n") >= 300):
        time.sleep(0.01)
    killed = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = journal.read_text().count("\n") if journal.exists() else 0
    done = subprocess.run(command(*args), capture_output=True, text=True)
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    document = json.loads(out.read_text())
    return {
        "killed_mid_run": killed,
        "results_before_kill": before,
        "exit_code": done.returncode,
        "problems": check_results(records, klass)
        + ([] if len(document["tests"]) == len(klass) else [f"results.json has {len(document['tests'])} tests"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--hostile", type=float, default=0.02, help="share of hostile answers")
    parser.add_argument("--no-resume", action="store_true", help="skip the kill-and-resume run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    klass = make_class(args.answers, hostile_share=args.hostile)
    with tempfile.TemporaryDirectory(prefix="bench_grading_") as tmp:
        workdir = Path(tmp)
        (workdir / "q.toml").write_text(QUESTION)
        with open(workdir / "class.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "answer"])
            writer.writerows((i, a) for i, a, _, _ in klass)
        distinct = len({a for _, a, _, _ in klass})
        figures = {
            "answers": len(klass),
            "distinct_texts": distinct,
            "hostile": round(len(klass) * args.hostile),
            "jobs": args.jobs,
            "cold": run_cold(workdir, klass, args.jobs),
            "warm": run_warm(workdir, klass, args.jobs),
        }
        if not args.no_resume:
            figures["kill_and_resume"] = run_kill_and_resume(workdir, klass, args.jobs)

    ok = not figures["cold"]["problems"] and not figures["warm"]["problems"] and figures["cold"]["hostile_invalid"]
    if "kill_and_resume" in figures:
        ok = ok and not figures["kill_and_resume"]["problems"] and figures["kill_and_resume"]["exit_code"] == 0
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        cold, warm = figures["cold"], figures["warm"]
        print(f"class: {figures['answers']} answers to dL/dW_hh (T=2), {distinct} distinct texts,"
              f" {figures['hostile']} hostile; at most {args.jobs} workers")
        for name, run in (("cold", cold), ("warm", warm)):
            print(f"{name}:  {run['answers_per_second']:6.0f} answers/s  ({run['seconds']:.2f} s;"
                  f" median per answer {run['median_seconds_all'] * 1e6:.0f} µs,"
                  f" per checked (distinct) answer {run['median_seconds_checked'] * 1e3:.1f} ms)")
        print(f"every answer scored as known: cold {'yes' if not cold['problems'] else 'NO'},"
              f" warm {'yes' if not warm['problems'] else 'NO'}; hostile all invalid:"
              f" {'yes' if cold['hostile_invalid'] else 'NO'}")
        for problem in (cold["problems"] + warm["problems"])[:10]:
            print("  " + problem)
        if "kill_and_resume" in figures:
            kr = figures["kill_and_resume"]
            print(f"kill and resume: killed after {kr['results_before_kill']} results"
                  f" (mid-run: {'yes' if kr['killed_mid_run'] else 'no'}), rerun exit {kr['exit_code']},"
                  f" every id exactly once with its known score: {'yes' if not kr['problems'] else 'NO'}")
            for problem in kr["problems"][:10]:
                print("  " + problem)
        print(f"target ≥ 100 answers/s (cold): {'met' if cold['answers_per_second'] >= 100 else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
