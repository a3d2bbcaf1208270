"""The shared vocabulary: the diagnosis-code registry, its docs, and the one "did you mean"."""

import ast
from pathlib import Path

import pytest

import bptt_check
from bptt_check import errors
from bptt_check.errors import ConfigError
from bptt_check.vocabulary import (
    DIAGNOSES,
    READING_POLICIES,
    SYNTAXES,
    VERDICTS,
    diagnoses_markdown,
    diagnosis_code,
    did_you_mean,
    suggest,
)

PACKAGE = Path(bptt_check.__file__).parent
ROOT = PACKAGE.parent

EMITTERS = {"Diagnosis": 0, "_Mutation": 0, "mutation": 0, "invalid": 0, "_invalid_check": 0, "_finish_invalid": 1}
"""Calls whose argument at this position is a diagnosis code (results, diagnose's mutations, graders' refusals)."""


def emitted_codes() -> dict[str, str]:
    """Every diagnosis code written as a literal in the package, with where it is written."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            position = EMITTERS.get(name or "")
            if position is None or len(node.args) <= position:
                continue
            arg = node.args[position]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.setdefault(arg.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_code_the_package_emits_is_registered() -> None:
    found = emitted_codes()
    assert len(found) >= 20, "the scan no longer finds the emitted codes: update EMITTERS"
    unregistered = {code: where for code, where in found.items() if code not in DIAGNOSES}
    assert not unregistered, f"register these in bptt_check/vocabulary.py DIAGNOSES: {unregistered}"


def test_no_code_is_registered_twice() -> None:
    from bptt_check.vocabulary import _ENTRIES

    codes = [code for code, _, _ in _ENTRIES]
    assert sorted(c for c in set(codes) if codes.count(c) > 1) == []
    assert list(DIAGNOSES) == list(dict.fromkeys(codes))


def test_every_error_class_code_is_registered() -> None:
    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert {cls.code for cls in classes} <= set(DIAGNOSES)
    assert "parse_error" in {cls.code for cls in classes}


def test_the_docs_list_every_code_with_its_meaning() -> None:
    text = (ROOT / "docs" / "diagnoses.md").read_text(encoding="utf-8")
    assert text == diagnoses_markdown(), "regenerate docs/diagnoses.md from vocabulary.diagnoses_markdown()"
    for entry in DIAGNOSES.values():
        assert f"| `{entry.code}` | {entry.meaning} |" in text
        assert entry.meaning and "\n" not in entry.meaning


def test_the_fixed_vocabularies() -> None:
    assert VERDICTS[0] == "equivalent" and "invalid" in VERDICTS
    assert SYNTAXES == ("auto", "plain", "latex")
    assert READING_POLICIES == ("total", "immediate", "either")
    assert not set(VERDICTS) & (set(DIAGNOSES) - {"transposed", "invalid"})


def test_an_unknown_diagnosis_code_is_an_error_with_a_suggestion() -> None:
    assert diagnosis_code("sign_flip") == "sign_flip"
    with pytest.raises(ConfigError, match=r"'sign_flipped' is not a diagnosis code \(hint: did you mean sign_flip\?"):
        diagnosis_code("sign_flipped", "rubric.diagnoses:")
    with pytest.raises(ConfigError, match="is a verdict, not a diagnosis"):
        diagnosis_code("not_equivalent")
    with pytest.raises(ConfigError, match="docs/diagnoses.md") as info:
        diagnosis_code("qqqq")
    assert "did you mean" not in str(info.value)
    with pytest.raises(ConfigError, match="'int' is not a diagnosis code"):
        diagnosis_code(3)


def test_a_rubric_naming_an_unknown_code_is_refused() -> None:
    from bptt_check.grading import Rubric

    assert Rubric(diagnoses={"sign_flip": 0.5}).diagnoses == {"sign_flip": 0.5}
    with pytest.raises(ConfigError, match="did you mean sign_flip"):
        Rubric(diagnoses={"sign_flipped": 0.5})
    with pytest.raises(ConfigError, match="did you mean missing_term"):
        Rubric.from_table({"diagnoses": {"missing_terms": 0.2}})


def test_grade_with_an_unknown_rubric_code_exits_2_with_did_you_mean(tmp_path, capsys) -> None:
    from bptt_check.cli import main

    question = tmp_path / "q.toml"
    question.write_text('target = "dL/dW_hy"\n\n[rubric.diagnoses]\nsign_flipped = 0.5\n', encoding="utf-8")
    answers = tmp_path / "answers.csv"
    answers.write_text("id,answer\na,h_1.T @ (yhat_1 - y_1)\n", encoding="utf-8")
    code = main(["grade", "--question", str(question), str(answers), "--out", str(tmp_path / "r.jsonl")])
    _, err = capsys.readouterr()
    assert code == 2
    assert "sign_flipped" in err and "did you mean sign_flip?" in err
    assert len(err.strip().splitlines()) == 1


def test_a_derivation_claim_naming_an_unknown_code_is_a_problem_with_a_suggestion(tmp_path) -> None:
    from bptt_check.derivations import load_file

    path = tmp_path / "claims.toml"
    path.write_text(
        '[[claim]]\nname = "typo"\ntarget = "dL/dW_hy"\nexpr = "h_2.T @ (yhat_2 - y_2)"\nexpect = "not_equivalent"\n'
        'diagnosis = "missing_trem"\n',
        encoding="utf-8",
    )
    loaded = load_file(path)
    assert not loaded.claims
    assert any("did you mean missing_term?" in (p.error or "") for p in loaded.problems)


@pytest.mark.parametrize(
    ("word", "candidates", "expected"),
    [
        ("W_hu", ["W_hh", "W_hy", "W_xh"], "W_hy"),  # a same-row keyboard neighbour beats a diagonal one
        ("w_hy", ["W_hh", "W_hy"], "W_hy"),  # case only ranks first
        ("sign_flipped", list(DIAGNOSES), "sign_flip"),
        ("textbok", ["seed", "textbook", "min-char-rnn"], "textbook"),
    ],
)
def test_suggest_ranks_the_nearest_first(word, candidates, expected) -> None:
    assert suggest(word, candidates)[0] == expected


def test_did_you_mean_says_nothing_when_nothing_is_near() -> None:
    assert did_you_mean("zzzzzz", ["total", "immediate"]) == ""
    assert did_you_mean("totl", ["total", "immediate"]) == "did you mean 'total'?"
    assert did_you_mean("totl", ["total", "immediate"], quote=False) == "did you mean total?"
    assert suggest("tot", ["total"], cutoff=0.9) == []
