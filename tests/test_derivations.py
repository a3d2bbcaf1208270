"""Derivation files and ``bptt-check verify``: loading, verifying, output, exit codes.

The bundled ``derivations/`` folder is verified here too: every claim in it
must get the verdict (and diagnosis) it expects.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from bptt_check.derivations import (
    ClaimOutcome,
    VerifyReport,
    add_verify_command,
    load_file,
    load_text,
    verify,
)
from bptt_check.results import VERDICTS

ROOT = Path(__file__).resolve().parent.parent
DERIVATIONS = ROOT / "derivations"

GOOD = '''
title = "two small claims"

[model]
steps = 2
loss_at = "all"
sizes = { input = 2, hidden = 2, output = 2 }

[[claim]]
name = "L_1 written out"
expr = "L_1 = -sum(y_1 * log(yhat_1))"
expect = "equivalent"

[[claim]]
name = "dL/dz_1 with the sign flipped"
target = "dL/dz_1"
expr = "y_1 - yhat_1"
expect = "not_equivalent"
'''


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _run(argv: list[str]) -> int:
    """``bptt-check verify ARGV`` through the command function (as cli.main will call it)."""
    parser = argparse.ArgumentParser(prog="bptt-check")
    add_verify_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["verify", *argv])
    return int(args.run(args))


# -- loading errors: reported with the file, the claim and the key ---------------------------


def _only_problem(text: str, source: str = "broken.toml") -> ClaimOutcome:
    f = load_text(text, source=source)
    assert len(f.problems) == 1, f.problems
    return f.problems[0]


CLAIM_HEAD = '[[claim]]\nname = "first"\ntarget = "L_1"\nexpr = "-sum(y_1 * log(yhat_1))"\nexpect = "equivalent"\n\n'


@pytest.mark.parametrize(
    "claim, key, words",
    [
        ('name = "typo"\ntarget = "L_1"\nexpr = "x"\nexpect = "equivalent"\nexpected = "equivalent"\n', "expected",
         ["unknown key 'expected'", "did you mean 'expect'"]),
        ('name = "no target"\nexpr = "h_1.T @ (yhat_1 - y_1)"\nexpect = "equivalent"\n', "target",
         ["missing key 'target'"]),
        ('name = "both"\ntarget = "L_1"\nexpr = "x"\nlatex = "x"\nexpect = "equivalent"\n', "latex",
         ["both 'expr' and 'latex'"]),
        ('name = "neither"\ntarget = "L_1"\nexpect = "equivalent"\n', "expr", ["missing key 'expr'"]),
        ('name = "bad expect"\ntarget = "L_1"\nexpr = "x"\nexpect = "equivalnet"\n', "expect",
         ["is not a verdict", "did you mean 'equivalent'"]),
        ('name = "no expect"\ntarget = "L_1"\nexpr = "x"\n', "expect", ["missing key 'expect'"]),
        ('name = "bad reading"\ntarget = "L_1"\nexpr = "x"\nexpect = "equivalent"\nreading = "partial"\n', "reading",
         ["is not a reading"]),
        ('name = "bad target"\ntarget = "dL/dW_hu"\nexpr = "x"\nexpect = "equivalent"\n', "target",
         ["target = 'dL/dW_hu'", "did you mean W_hy?"]),
        ('name = "bad code"\ntarget = "L_1"\nexpr = "x"\nexpect = "invalid"\ndiagnosis = "Missing Term"\n', "diagnosis",
         ["is not a diagnosis code"]),
        ('name = 3\ntarget = "L_1"\nexpr = "x"\nexpect = "equivalent"\n', "name", ["must be a string"]),
    ],
)
def test_a_broken_claim_names_the_file_the_claim_and_the_key(claim: str, key: str, words: list[str]) -> None:
    problem = _only_problem(CLAIM_HEAD + "[[claim]]\n" + claim)
    assert problem.status == "error" and not problem.ok and not problem.fatal
    assert problem.file == "broken.toml"
    assert problem.index == 2
    assert problem.key == key
    assert problem.error.startswith("broken.toml: claim 2 (")
    for word in words:
        assert word in problem.error, problem.error


def test_a_broken_claim_without_a_name_is_named_by_its_index() -> None:
    problem = _only_problem(CLAIM_HEAD + '[[claim]]\ntarget = "L_1"\nexpr = "x"\nexpect = "equivalent"\n')
    assert problem.name == "claim 2" and problem.key == "name"
    assert "missing key 'name'" in problem.error


@pytest.mark.parametrize(
    "text, key, words",
    [
        ('title = "x"\n[[claim]\nname = "a"', None, ["not valid TOML"]),
        ('titel = "x"\n' + CLAIM_HEAD, "titel", ["unknown key 'titel'", "did you mean 'title'"]),
        ('[model]\nstep = 2\n' + CLAIM_HEAD, "model.step", ["unknown key model.step", "did you mean 'steps'"]),
        ('[model]\nsizes = { input = 2, hidden = 0, output = 2 }\n' + CLAIM_HEAD, "model.sizes.hidden",
         ["[model]", "hidden_size"]),
        ('[model]\nloss_at = "first"\n' + CLAIM_HEAD, "model.loss_at", ["loss_at"]),
        ('model = 3\n' + CLAIM_HEAD, "model", ["model must be a table"]),
        ('[notation]\nt = "hidden"\n' + CLAIM_HEAD, "notation", ["[notation] t"]),
        ('title = "no claims"\n', "claim", ["no claims"]),
    ],
)
def test_a_broken_file_is_fatal_and_names_the_file_and_the_key(text: str, key: str | None, words: list[str]) -> None:
    problem = _only_problem(text)
    assert problem.fatal and problem.status == "error" and problem.index is None
    assert problem.key == key
    assert problem.error.startswith("broken.toml: ")
    for word in words:
        assert word in problem.error, problem.error


def test_the_target_can_come_from_the_left_hand_side() -> None:
    f = load_text(GOOD, source="good.toml")
    assert not f.problems
    first, second = f.claims
    assert str(first.target) == "L_1" and first.target_text == "L_1"
    assert str(second.target) == "dL/dz_1"
    assert first.syntax == "auto" and first.reading == "total"


def test_latex_forces_the_latex_syntax() -> None:
    latex = r"\frac{\partial L_1}{\partial z_1} = \hat{y}_1 - y_1"
    f = load_text(f'[[claim]]\nname = "n"\nlatex = \'{latex}\'\nexpect = "equivalent"\n')
    (claim,) = f.claims
    assert claim.syntax == "latex" and str(claim.target) == "dL_1/dz_1"


def test_other_claims_and_files_still_run_next_to_broken_ones(tmp_path: Path) -> None:
    broken_claim = GOOD + '\n[[claim]]\nname = "oops"\ntarget = "L_1"\nexpr = "x"\nexpect = "right"\n'
    _write(tmp_path, "a_claims.toml", broken_claim)
    _write(tmp_path, "b_bad.toml", "this is = = not toml")
    _write(tmp_path, "c_good.toml", GOOD)
    report = verify([tmp_path])
    assert [Path(f).name for f in report.files] == ["a_claims.toml", "b_bad.toml", "c_good.toml"]
    statuses = [(Path(o.file).name, o.index, o.status) for o in report.outcomes]
    assert statuses == [
        ("a_claims.toml", 1, "ok"),
        ("a_claims.toml", 2, "ok"),
        ("a_claims.toml", 3, "error"),
        ("b_bad.toml", None, "error"),
        ("c_good.toml", 1, "ok"),
        ("c_good.toml", 2, "ok"),
    ]
    assert report.exit_code == 2  # a file that cannot be read at all
    totals = report.totals
    assert (totals.files, totals.claims, totals.ok, totals.failed, totals.errors) == (3, 5, 4, 0, 2)
    text = str(report)
    assert "ERROR" in text and "expect = 'right' is not a verdict" in text and "not valid TOML" in text


def test_a_verdict_or_diagnosis_that_differs_fails_the_claim(tmp_path: Path) -> None:
    flip = 'target = "dL/dW_hy"\nexpr = "h_1.T @ (y_1 - yhat_1) + h_2.T @ (y_2 - yhat_2)"\n'
    path = _write(
        tmp_path,
        "d.toml",
        f'[[claim]]\nname = "flip"\n{flip}expect = "not_equivalent"\ndiagnosis = "sign_flip"\n\n'
        f'[[claim]]\nname = "flip, wrong code"\n{flip}expect = "not_equivalent"\ndiagnosis = "missing_term"\n\n'
        f'[[claim]]\nname = "flip, wrong verdict"\n{flip}expect = "equivalent"\n',
    )
    report = verify([path])
    assert [o.status for o in report.outcomes] == ["ok", "failed", "failed"]
    assert report.exit_code == 1
    text = str(report)
    assert "claims that did not match" in text
    assert "expected not_equivalent with diagnosis missing_term; got:" in text


def test_one_checker_is_shared_per_model_notation_target_and_reading(tmp_path: Path) -> None:
    from bptt_check.derivations import Verifier

    same = 'target = "dL/dz_1"\nexpr = "yhat_1 - y_1"\nexpect = "equivalent"\n'
    f = load_text(
        GOOD
        + f'\n[[claim]]\nname = "again"\n{same}'
        + f'\n[[claim]]\nname = "either"\n{same}reading = "either"\n'
    )
    verifier = Verifier()
    outcomes = verifier.run_file(f)
    assert all(o.ok for o in outcomes), [str(o.result) for o in outcomes]
    assert len(verifier._checkers) == 3  # L_1; dL/dz_1 (total); dL/dz_1 (either)


# -- output ---------------------------------------------------------------------------------------


def test_json_is_a_list_of_check_results_with_the_claims_name_expect_file_and_ok(tmp_path: Path) -> None:
    path = _write(tmp_path, "good.toml", GOOD + '\n[[claim]]\nname = "broken"\nexpr = "x"\nexpect = "invalid"\n')
    report = verify([path])
    items = json.loads(report.to_json())
    assert isinstance(items, list) and len(items) == 3
    first, second, broken = items
    for item in (first, second):
        keys = ("verdict", "target", "score", "diagnoses", "counterexample", "message", "name", "expect", "file", "ok")
        assert set(keys) <= set(item), set(keys) - set(item)
        assert item["file"] == str(path) and item["ok"] is True
    assert first["name"] == "L_1 written out" and first["verdict"] == "equivalent" and first["counterexample"] is None
    assert second["verdict"] == "not_equivalent" and second["counterexample"] is not None
    assert all(set(d) == {"code", "message"} for d in second["diagnoses"])
    assert broken["ok"] is False and broken["status"] == "error" and broken["verdict"] is None
    assert broken["key"] == "target" and "missing key 'target'" in broken["error"]
    assert report.to_dict()["totals"]["claims"] == 3


def test_the_table_has_the_columns_and_no_colours_when_not_a_terminal(tmp_path: Path) -> None:
    report = verify([_write(tmp_path, "good.toml", GOOD)])
    text = str(report)
    assert "\x1b[" not in text
    header = text.splitlines()[1]
    for column in ("claim", "target", "verdict", "diagnosis", "expected", "ok"):
        assert column in header
    assert "two small claims" in text  # the file's title
    assert "2 claims in 1 file: 2 ok, 0 failed, 0 errors" in text
    assert "\x1b[" in report.render(color=True)


# -- exit codes ---------------------------------------------------------------------------------


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, "good.toml", GOOD)
    wrong = _write(tmp_path, "wrong.toml", GOOD.replace('expect = "not_equivalent"', 'expect = "transposed"'))
    broken_claim = _write(tmp_path, "claim.toml", GOOD + '\n[[claim]]\nname = "x"\nexpr = "x"\nexpect = "invalid"\n')
    not_toml = _write(tmp_path, "bad.toml", "[[claim]\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run([str(good)]) == 0
    assert _run([str(good), str(wrong)]) == 1
    assert _run([str(broken_claim)]) == 1
    assert _run([str(good), str(not_toml)]) == 2
    assert _run([str(tmp_path / "missing.toml")]) == 2
    assert _run([str(empty)]) == 2
    assert "no derivation files" in capsys.readouterr().err
    assert _run(["--json", str(good)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["name"] == "L_1 written out"


def _cli_has_verify() -> bool:
    from bptt_check.cli import build_parser

    try:
        build_parser().parse_args(["verify", "x.toml"])
    except SystemExit:
        return False
    return True


@pytest.mark.skipif(not _cli_has_verify(), reason="verify is not registered in cli.build_parser yet")
def test_cli_main_runs_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bptt_check.cli import main

    good = _write(tmp_path, "good.toml", GOOD)
    assert main(["verify", str(good)]) == 0
    assert "2 claims in 1 file" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "missing.toml")]) == 2
    assert main(["verify", "--json", str(good)]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


# -- the bundled derivations ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled() -> VerifyReport:
    return verify([DERIVATIONS])


def _outcome(report: VerifyReport, file: str, name: str) -> ClaimOutcome:
    matches = [o for o in report.outcomes if Path(o.file).name == file and o.name == name]
    assert len(matches) == 1, (file, name)
    return matches[0]


def test_every_bundled_claim_gets_the_verdict_it_expects(bundled: VerifyReport) -> None:
    bad = [o for o in bundled.outcomes if not o.ok]
    assert not bad, bundled.render(details=True)
    assert bundled.exit_code == 0


def test_the_bundled_derivations_are_many_and_cover_every_verdict(bundled: VerifyReport) -> None:
    assert bundled.totals.claims >= 60
    kinds = {o.result.verdict for o in bundled.outcomes if o.result is not None}
    assert kinds == set(VERDICTS)
    names = {Path(f).name for f in bundled.files}
    assert {"seed_problem3a.toml", "seed_problem3b.toml", "mistakes.toml"} <= names


def test_the_seeds_W_hu_says_did_you_mean_W_hy(bundled: VerifyReport) -> None:
    o = _outcome(bundled, "seed_problem3b.toml", "3b: L_2 as the seed writes it (W_hu)")
    assert o.result is not None and o.result.verdict == "invalid"
    assert "did you mean W_hy?" in o.result.message
    assert any("did you mean W_hy?" in d.message for d in o.result.diagnoses)
    assert "did you mean W_hy?" in str(bundled)


def test_the_seeds_3b_L2_misses_the_tanh_of_step_2(bundled: VerifyReport) -> None:
    o = _outcome(bundled, "seed_problem3b.toml", "3b: L_2 without the tanh of step 2 (the seed's slip)")
    assert o.result is not None and o.result.verdict == "not_equivalent"
    (d,) = [d for d in o.result.diagnoses if d.code == "missing_activation"]
    assert "tanh of step 2" in d.message
    fixed = _outcome(bundled, "seed_problem3b.toml", "3b: L_2 corrected (t_2 and W_hy)")
    assert fixed.result is not None and fixed.result.verdict == "equivalent"


def test_the_seeds_3a_answer_is_equivalent(bundled: VerifyReport) -> None:
    o = _outcome(bundled, "seed_problem3a.toml", "3a: dL_total/dW_hy, the seed's final answer")
    assert o.result is not None and o.result.verdict == "equivalent"
    element = _outcome(bundled, "seed_problem3a.toml",
                       "3a: the element W_hy^{00}: the sum of the two step losses' gradients")
    assert element.result is not None and element.result.target == "dL/dW_hy[0,0]"


def test_every_seed_claim_cites_its_line() -> None:
    for name in ("seed_problem3a.toml", "seed_problem3b.toml"):
        f = load_file(DERIVATIONS / name)
        assert not f.problems
        assert all("seed line" in c.source for c in f.claims), name
        chunks = (DERIVATIONS / name).read_text(encoding="utf-8").split("[[claim]]")
        for chunk in chunks[:-1]:  # the text before each [[claim]] ends with its comment
            comment = [line for line in chunk.strip().splitlines() if line.startswith("#")][-1]
            assert "seed" in comment.lower(), (name, comment)


# -- model breadth (issue 8): the textbook's BPTT, other activations and losses, min-char-rnn ------------


def test_the_textbook_file_verifies_in_full_in_the_books_names(bundled: VerifyReport) -> None:
    f = load_file(DERIVATIONS / "goodfellow_10_2_2.toml")
    assert not f.problems
    assert f.model.column and f.model.biases and f.model.steps == 3 and f.model.activation == "tanh"
    assert f.model.loss == "cross_entropy" and f.notation is not None and f.notation.get("V") == "W_hy"
    outcomes = [o for o in bundled.outcomes if Path(o.file).name == "goodfellow_10_2_2.toml"]
    assert len(outcomes) == len(f.claims) >= 20 and all(o.ok for o in outcomes)
    # one claim or more for every equation 10.17 to 10.28, in LaTeX, in the book's names
    sources = " ".join(c.source for c in f.claims)
    for eq in range(17, 29):
        assert f"eq. 10.{eq}" in sources, eq
    assert all(c.syntax == "latex" for c in f.claims)
    texts = " ".join(c.text for c in f.claims)
    for book in (r"\boldsymbol{V}^\top", r"\nabla_{\boldsymbol{o}^{(t)}} L", r"\boldsymbol{h}^{(t-1)\top}",
                 r"\boldsymbol{x}^{(t)\top}", r"\nabla_{\boldsymbol{W}^{(t)}}", r"\operatorname{diag}", r"^{(\tau)}"):
        assert book in texts, book
    assert "W_" not in texts and "h_" not in texts  # no canonical names: the book's own


def test_the_wrong_copy_of_10_26_is_diagnosed(bundled: VerifyReport) -> None:
    o = _outcome(bundled, "goodfellow_10_2_2.toml", "10.26 copied without diag(1 - h^2)")
    assert o.ok and o.result is not None and o.result.verdict == "not_equivalent"
    assert "missing_activation_derivative" in {d.code for d in o.result.diagnoses}
    assert o.result.counterexample is not None


def test_the_books_per_step_copies_need_no_reading_policy() -> None:
    # W^{(t)} is the copy of W used at step t: ∇_{W^{(t)}} h^{(t)} is immediate by definition (issue 14).
    f = load_file(DERIVATIONS / "goodfellow_10_2_2.toml")
    from bptt_check.derivations import Verifier

    for name in ("10.23, first form", "10.25:", "10.27"):
        claim = next(c for c in f.claims if c.name.startswith(name))
        assert claim.reading == "total"
        outcome = Verifier().run(claim)
        assert outcome.ok and outcome.result is not None and outcome.result.verdict == "equivalent", name
    whole = next(c for c in f.claims if c.name.startswith("10.25 with W"))
    strict = Verifier().run(whole)
    assert strict.ok and strict.result is not None and strict.result.verdict == "not_equivalent"
    assert "wrong_reading" in {d.code for d in strict.result.diagnoses}
    credited = Verifier().run(dataclasses.replace(whole, reading="either", expect="equivalent", diagnosis=None))
    assert credited.ok and any("textbook reading" in r.message for r in credited.result.readings)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name, field, value, mistake",
    [
        ("activation_sigmoid.toml", "activation", "sigmoid", "wrong_activation_derivative"),
        ("activation_relu.toml", "activation", "relu", "missing_activation_derivative"),
        ("loss_squared_error.toml", "loss", "squared_error", "extra_factor"),
        ("min_char_rnn.toml", "convention", "column", "missing_path"),
    ],
)
def test_the_other_models_files(bundled: VerifyReport, name: str, field: str, value: str, mistake: str) -> None:
    f = load_file(DERIVATIONS / name)
    assert not f.problems and getattr(f.model, field) == value
    outcomes = [o for o in bundled.outcomes if Path(o.file).name == name]
    assert outcomes and all(o.ok for o in outcomes)
    verdicts = [o.result.verdict for o in outcomes if o.result is not None]
    assert verdicts.count("equivalent") >= 4 and "not_equivalent" in verdicts
    assert any(c.diagnosis == mistake for c in f.claims)


def test_the_min_char_rnn_file_uses_the_codes_names() -> None:
    f = load_file(DERIVATIONS / "min_char_rnn.toml")
    assert f.notation is not None and f.notation.get("Why") == "W_hy" and f.notation.get("ys") == "z"
    assert any(c.target_text == "dL/dWhy" and "hs_t.T" in c.text for c in f.claims)


MODEL_OPTIONS = '''
[model]
steps = 3
convention = "column"
activation = "relu"
loss = "squared-error"
biases = true

[notation]
use = "textbook"

[[claim]]
name = "o_2 in the book's names"
latex = 'o^{(2)} = V h^{(2)} + c'
expect = "equivalent"

[[claim]]
name = "the relu derivative through the copy of W"
target = "dL/dW_hh"
latex = '\\sum_t \\left(\\nabla_{h^{(t)}} L \\odot \\operatorname{step}\\left(a^{(t)}\\right)\\right) h^{(t-1)\\top}'
expect = "equivalent"
'''


def test_a_model_table_carries_the_new_options_and_a_notation_its_built_in() -> None:
    f = load_text(MODEL_OPTIONS, source="options.toml")
    assert not f.problems
    assert (f.model.convention, f.model.activation, f.model.loss, f.model.biases) == (
        "column", "relu", "squared_error", True)
    report = verify_text(f)
    assert all(o.ok for o in report), [o.result.message if o.result else o.error for o in report]


def verify_text(f):  # type: ignore[no-untyped-def]
    from bptt_check.derivations import Verifier

    return Verifier().run_file(f)


@pytest.mark.parametrize(
    "model, key, words",
    [
        ('convention = "diagonal"', "model.convention", ["model.convention", "'row' or 'column'"]),
        ('activation = "gelu"', "model.activation", ["model.activation", "'relu'"]),
        ('loss = "hinge"', "model.loss", ["model.loss", "'squared_error'"]),
    ],
)
def test_a_bad_model_option_is_fatal_and_names_the_key(model: str, key: str, words: list[str]) -> None:
    f = load_text(f"[model]\n{model}\n\n" + CLAIM_HEAD, source="bad.toml")
    (problem,) = f.problems
    assert problem.fatal and problem.key == key
    for w in words:
        assert w in problem.error


def test_model_changes_override_the_files_model(tmp_path: Path) -> None:
    f = load_text(GOOD, source="good.toml", model_changes={"steps": 4, "activation": "sigmoid"})
    assert f.model.steps == 4 and f.model.activation == "sigmoid" and f.model.loss_at == "all"
    bad = load_text(GOOD, source="good.toml", model_changes={"loss": "squared_error", "output_size": 0})
    (problem,) = bad.problems
    assert problem.fatal and "command line's model options" in problem.error
    path = _write(tmp_path, "good.toml", GOOD)
    report = verify([path], model_changes={"convention": "column", "biases": True})
    assert report.ok, report.render(details=True)
    assert all("column vectors" in (o.result.model if o.result else "") for o in report.outcomes)
