"""The command line: outputs, exit codes, one-line errors."""

import json

import pytest

from bptt_check.cli import main

RIGHT = "h_1.T @ (yhat_1 - y_1) + h_2.T @ (yhat_2 - y_2)"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_equivalent_exits_0_and_says_the_verdict_first(capsys):
    code, out, _ = run(capsys, "check", RIGHT, "--target", "dL/dW_hy")
    assert code == 0
    assert out.splitlines()[0] == "dL/dW_hy: equivalent (score 1)"
    assert "false-positive probability" in out


def test_check_wrong_exits_1_with_counterexample(capsys):
    code, out, _ = run(capsys, "check", "h_2.T @ (yhat_2 - y_2)", "--target", "dL/dW_hy")
    assert code == 1
    assert "not_equivalent" in out.splitlines()[0]
    assert "missing_term" in out and "counterexample" in out


def test_check_invalid_exits_2_with_caret(capsys):
    code, out, _ = run(capsys, "check", "W_hu", "--target", "dL/dW_hy")
    assert code == 2
    assert "did you mean W_hy?" in out and "^" in out


def test_check_json_has_the_spec_keys(capsys):
    code, out, _ = run(capsys, "check", "h_2.T @ (yhat_2 - y_2)", "--target", "dL/dW_hy", "--json")
    data = json.loads(out)
    assert code == 1
    assert {"verdict", "target", "score", "diagnoses", "counterexample", "message"} <= set(data)
    assert data["diagnoses"][0]["code"] == "missing_term"


def test_check_reads_an_equation_without_target(capsys):
    code, out, _ = run(capsys, "check", "dL/dW_hy = " + RIGHT)
    assert code == 0 and out.startswith("dL/dW_hy: equivalent")


def test_notation_file(tmp_path, capsys):
    table = tmp_path / "seed.toml"
    table.write_text('[notation]\nt = "h"\ns = "yhat"\nc = "L"\n')
    code, out, _ = run(
        capsys, "check", "dL_1/dc_1 * dc_1/ds_1 * ds_1/dW_hy + dL_2/dc_2 * dc_2/ds_2 * ds_2/dW_hy",
        "--target", "dL/dW_hy", "--notation", str(table),
    )
    assert code == 0, out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["check", "h_1", "--target", "dL/dW_hy", "--steps", "0"], "'0' must be at least 1"),
        (["check", "h_1", "--target", "dL/dW_hy", "--sizes", "2,x,2"], "size H = 'x'"),
        (["derive", "--target", "dL/dW_hu"], "did you mean W_hy?"),
        (["check", "h_1", "--target", "dL/dW_hy", "--notation", "/nonexistent.toml"], "cannot read notation file"),
        (["selfcheck", "--loss-at", "first"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, fragment):
    try:
        code = main(argv)  # errors of bptt_check return 2 ...
    except SystemExit as exc:  # ... argparse's exit with 2
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err


def test_errors_from_the_model_are_one_line(capsys):
    code, _, err = run(capsys, "derive", "--target", "dL/dW_hh", "--sizes", "2,0,2")
    assert code == 2
    assert err.count("\n") == 1 and "hidden_size = 0" in err


def test_derive_prints_the_path_from_L2_back_through_h1(capsys):
    code, out, _ = run(capsys, "derive", "--target", "dL/dW_hh")
    assert code == 0
    assert "[L_2 back through h_1]" in out
    assert "h_0.T @ (dL/dh_1 * (1 - h_1**2))" in out


def test_derive_latex(capsys):
    code, out, _ = run(capsys, "derive", "--target", "dL/dW_hy", "--format", "latex")
    assert code == 0 and r"\hat{y}" in out


def test_selfcheck_one_model(capsys):
    code, out, _ = run(capsys, "selfcheck", "--steps", "2", "--sizes", "2,2,2", "--points", "2")
    assert code == 0, out
