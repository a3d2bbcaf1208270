"""The command line: outputs, exit codes, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

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


class _GoneReader:
    """A stdout whose reader has left (``| head -0``): every write is a broken pipe."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize(
    "answer, code",
    [(RIGHT, 0), ("h_2.T @ (yhat_2 - y_2)", 1), ("W_hu", 2)],
)
def test_a_closed_pipe_keeps_the_verdicts_exit_code(monkeypatch, answer, code):
    monkeypatch.setattr(sys, "stdout", _GoneReader())
    assert main(["check", answer, "--target", "dL/dW_hy"]) == code


def test_a_failed_check_piped_into_head_exits_1():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bptt_check", "check", "h_2.T @ (yhat_2 - y_2)", "--target", "dL/dW_hy"],
            stdout=write, stderr=subprocess.PIPE, env=env, timeout=300, check=False,
        )
    finally:
        os.close(write)
    assert proc.returncode == 1
    assert b"Traceback" not in proc.stderr and b"BrokenPipeError" not in proc.stderr


def test_version(capsys):
    from bptt_check import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"bptt-check {__version__}"


def test_check_invalid_exits_2_with_caret(capsys):
    code, out, _ = run(capsys, "check", "W_hu", "--target", "dL/dW_hy")
    assert code == 2
    assert "did you mean W_hy?" in out and "^" in out


def test_check_cite_says_which_true_partials_an_answer_may_use(capsys):
    loophole = "dL_1/dW_hh + dL_2/dW_hh"
    assert run(capsys, "check", loophole, "--target", "dL/dW_hh")[0] == 0  # check's default: any partial
    code, out, _ = run(capsys, "check", loophole, "--target", "dL/dW_hh", "--cite", "state_gradients")
    assert code == 2 and "diagnosis cited_partial: the answer cites ∂L_1/∂W_hh" in out


def test_a_bias_in_a_model_without_biases_points_to_the_option(capsys):
    code, out, _ = run(capsys, "check", "h_1", "--target", "dL/db_h")
    assert code == 2
    assert "has no biases" in out and "--biases" in out
    assert run(capsys, "check", "b_h", "--target", "dL/db_h", "--biases")[0] == 1


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


@pytest.mark.parametrize("fmt", ["plain", "latex", "chain"])
def test_derive_at_long_T_summarizes_the_paths_unless_asked(capsys, fmt):
    code, out, _ = run(capsys, "derive", "--target", "dL/dW_hh", "--steps", "40", "--format", fmt)
    assert code == 0
    assert "per path (820 paths; the first 6 shown, --paths lists all):" in out
    assert "… 814 more: the paths of L_4 … L_40" in out
    assert out.count("back through") == 3 * (2 if fmt == "chain" else 1)
    if fmt == "latex":  # steps that differ only in t are written once, in t; the recursion's left sides in LaTeX
        assert r"[step t = 1 … 40]  h_{t-1}^{\top}" in out
        assert r"\frac{\partial L}{\partial h_{t}} = " in out and "(t = 39 … 1)" in out
        assert "dL/dh" not in out
    else:
        assert "[step t = 1 … 40]  h_{t-1}.T @ (dL/dh_t * (1 - h_t**2))" in out
        assert "dL/dh_t = (yhat_t - y_t) @ W_hy.T + (dL/dh_{t+1} * (1 - h_{t+1}**2)) @ W_hh.T   (t = 39 … 1)" in out
    assert "dL/dh_40 = " in out or r"\partial h_{40}} = " in out  # the last step has no carried term: its own line
    assert len(out) < 6_000  # O(1) lines for the steps, six paths shown
    code, out, _ = run(capsys, "derive", "--target", "dL/dW_hh", "--steps", "5", "--paths", "--format", fmt)
    assert code == 0 and "[L_5 back through h_4, h_3, h_2, h_1]" in out and "more" not in out


def test_derive_latex(capsys):
    code, out, _ = run(capsys, "derive", "--target", "dL/dW_hy", "--format", "latex")
    assert code == 0 and r"\hat{y}" in out


def test_selfcheck_one_model(capsys):
    code, out, _ = run(capsys, "selfcheck", "--steps", "2", "--sizes", "2,2,2", "--points", "2")
    assert code == 0, out


# -- model options (issue 8): convention, biases, activation, loss; notations by name ----------------


def test_column_convention_with_the_textbook_notation_by_name(capsys):
    code, out, _ = run(capsys, "check", r"\boldsymbol{V} \boldsymbol{h}^{(1)} + \boldsymbol{c}", "--target", "o_1",
                       "--convention", "column", "--biases", "--notation", "textbook")
    assert code == 0, out
    assert out.splitlines()[0] == "z_1: equivalent (score 1)"
    assert "column vectors" in out and "biases" in out


def test_the_row_layout_is_wrong_in_the_column_convention(capsys):
    code, out, _ = run(capsys, "check", "h_1 @ W_hy", "--target", "z_1", "--convention", "column")
    assert code == 2 and "invalid" in out.splitlines()[0]


def test_min_char_rnn_notation_by_name(capsys):
    code, out, _ = run(capsys, "check", "sum_{t=1}^{T} (ps_t - y_t) @ hs_t.T", "--target", "dL/dWhy",
                       "--convention", "column", "--notation", "min-char-rnn")
    assert code == 0, out


@pytest.mark.parametrize("spelling", ["squared-error", "squared_error", "Squared-Error"])
def test_loss_option_accepts_dashes_and_underscores(capsys, spelling):
    code, out, _ = run(capsys, "check", "yhat_1 - y_1", "--target", "dL/dz_1", "--loss", spelling, "--json")
    assert code == 0
    assert "squared error" in json.loads(out)["model"]


def test_squared_error_loss_changes_the_truth(capsys):
    forward = "L_1 = 1/2 * sum((h_1 @ W_hy - y_1)**2)"
    assert run(capsys, "check", forward, "--loss", "squared-error")[0] == 0
    assert run(capsys, "check", forward, "--loss", "cross-entropy")[0] == 1


@pytest.mark.parametrize("activation, derivative", [("sigmoid", "h_2 * (1 - h_2)"), ("relu", "step(a_2)"),
                                                    ("tanh", "(1 - h_2**2)")])
def test_activation_option(capsys, activation, derivative):
    answer = f"dL/dh_2 * {derivative}"
    code, out, _ = run(capsys, "check", answer, "--target", "dL/da_2", "--activation", activation)
    assert code == 0, out
    other = "tanh" if activation != "tanh" else "sigmoid"
    code, out, _ = run(capsys, "check", answer, "--target", "dL/da_2", "--activation", other)
    assert code == 1, out


def test_biases_can_be_turned_off(capsys):
    code, out, _ = run(capsys, "check", "x_1 @ W_xh + h_0 @ W_hh + b_h", "--target", "a_1", "--biases", "--no-biases")
    assert code == 2 and "no biases" in out
    code, out, _ = run(capsys, "check", "x_1 @ W_xh + h_0 @ W_hh + b_h", "--target", "a_1", "--no-biases", "--biases")
    assert code == 0, out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["check", "h_1", "--target", "h_1", "--convention", "diagonal"],
         "argument --convention: 'diagonal' is not a known convention: use row or column"),
        (["check", "h_1", "--target", "h_1", "--activation", "softplus"],
         "argument --activation: 'softplus' is not a known activation: use tanh, sigmoid or relu"),
        (["derive", "--target", "dL/dW_hh", "--loss", "mse"],
         "argument --loss: 'mse' is not a known loss: use cross-entropy or squared-error"),
        (["selfcheck", "--convention", "col"], "'col' is not a known convention: did you mean column?"),
        (["verify", "derivations", "--activation", "gelu"], "'gelu' is not a known activation"),
        (["grade", "x.csv", "--question", "q.toml", "--loss", "hinge"], "'hinge' is not a known loss"),
        (["check", "h_1", "--target", "h_1", "--notation", "texbook"], "did you mean textbook?"),
        (["check", "h_1", "--target", "h_1", "--loss", "squared-error", "--sizes", "2,2,0"], "output_size = 0"),
    ],
)
def test_bad_model_options_are_one_line_and_exit_2(capsys, argv, fragment):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_notation_file_may_use_a_built_in_notation(tmp_path, capsys):
    table = tmp_path / "book.toml"
    table.write_text('[notation]\nuse = "textbook"\nS = "yhat"\n')
    code, out, _ = run(capsys, "check", "V h_1", "--target", "S_1", "--convention", "column", "--notation",
                       str(table), "--loss", "squared-error")
    assert code == 0, out
    bad = tmp_path / "bad.toml"
    bad.write_text('[notation]\nuse = "textbok"\n')
    code, _, err = run(capsys, "check", "h_1", "--target", "h_1", "--notation", str(bad))
    assert code == 2 and "did you mean 'textbook'" in err and str(bad) in err


def test_derive_in_the_column_convention_with_sigmoid(capsys):
    code, out, _ = run(capsys, "derive", "--target", "dL/dW_hh", "--convention", "column", "--activation", "sigmoid")
    assert code == 0
    assert "column vectors, sigmoid" in out.splitlines()[0]
    assert "h_1 * (1 - h_1)" in out and "@ h_0.T" in out


def test_selfcheck_one_model_with_the_new_options(capsys):
    code, out, _ = run(capsys, "selfcheck", "--steps", "2", "--sizes", "2,3,2", "--points", "2", "--convention",
                       "column", "--activation", "relu", "--loss", "squared-error", "--biases")
    assert code == 0, out
    assert "1 configuration" in out and "column" in out and "relu" in out


def test_verify_overrides_every_files_model(tmp_path, capsys):
    f = tmp_path / "general.toml"
    f.write_text(
        '[model]\nsteps = 2\n\n'
        '[[claim]]\nname = "dL/dW_hh for any T"\ntarget = "dL/dW_hh"\n'
        'expr = "sum_{t=1}^{T} h_{t-1}.T @ (dL/dh_t * (1 - h_t**2))"\nexpect = "equivalent"\n'
    )
    assert main(["verify", str(f)]) == 0
    assert main(["verify", str(f), "--steps", "4", "--biases", "--sizes", "2,3,4"]) == 0
    capsys.readouterr()
    assert main(["verify", str(f), "--activation", "sigmoid", "--no-details"]) == 1
    out = capsys.readouterr().out
    assert "sigmoid" in out or "FAIL" in out
    assert main(["verify", str(f), "--json", "--convention", "column"]) == 1  # the row layout is invalid there
    (item,) = json.loads(capsys.readouterr().out)
    assert item["verdict"] == "invalid" and "column vectors" in item["model"]
