"""Checking your own BPTT code with bptt_check's pytest fixture.

``rnn_impls.py`` holds min-char-rnn style implementations (column vectors,
parameters ``Wxh, Whh, Why, bh, by``, a loss at every step): three correct
ones (tanh with softmax cross-entropy as in min-char-rnn, a sigmoid hidden
layer, and a linear output with squared error) and four with a classic
mistake each, plus a CS231n-style ``rnn_step_backward``. The
``bptt_gradients`` fixture comes with the package (no conftest needed); run::

    pytest examples/user_rnn                              # 200 examples for the correct ones
    pytest examples/user_rnn --bptt-max-examples 20       # a quicker run

Each check draws column-vector models (steps and sizes), parameters and
sequences with hypothesis, calls the implementation in the model's layout
(``Wxh`` is H×D, ``xs[t]`` is D×1), compares every gradient with the jax truth
(and sympy's, for small models), and on a mismatch shrinks to the smallest
failing case and explains it. Remove the ``pytest.raises`` around a buggy one
to see the whole report; for the sigmoid layer that drops its derivative::

    dWxh (dL/dW_xh) does not match the true gradient
      worst entry dWxh[0, 0]: yours = 0.02674264832, jax = 0.006679748341, sympy = 0.006679748341
      tolerance rule: |yours - jax| <= atol + rtol*|jax| = 1e-08 + 1e-06*0.00668 = 1.67e-08, but |yours - jax| = 0.0201
      likely mistake: dWxh drops the sigmoid derivative h_1 * (1 - h_1) at step 1 [missing_activation_derivative]
    also wrong: dWhh (dL/dW_hh), worst entry dWhh[0, 0]: yours = 0.02406838349, jax = 0.006011773507 (|diff| = 0.0181 > 1.6e-08)
      likely mistake: dWhh drops the sigmoid derivative h_1 * (1 - h_1) at step 1 [missing_activation_derivative]
    also wrong: dbh (dL/db_h), worst entry dbh[0, 0]: yours = 0.2674264832, jax = 0.06679748341 (|diff| = 0.201 > 7.68e-08)
      likely mistake: dbh drops the sigmoid derivative h_1 * (1 - h_1) at step 1 [missing_activation_derivative]
    smallest failing case (found by hypothesis):
    Case(T=1, D=1, H=1, O=2, loss at every step, biases, column vectors, sigmoid
      W_xh = [[0.05]]
      W_hh = [[0.05]]
      W_hy = [[0.15], [0.6 ]]
      b_h = [0.05]
      b_y = [0.05, 0.2 ]
      xs = [[0.1]]
      ys = [[1., 0.]]
      h0 = [0.09])
"""

import pytest

import rnn_impls

# min-char-rnn's names for our W_xh, W_hh, W_hy, b_h, b_y (names="min-char-rnn" is the same);
# the gradients come back as dWxh, ...
NAMES = {"Wxh": "W_xh", "Whh": "W_hh", "Why": "W_hy", "bh": "b_h", "by": "b_y"}


def check(bptt_gradients, fn, activation="tanh", loss="cross_entropy", **kwargs):
    """The implementations have biases and a loss at every step, in column vectors."""
    model = bptt_gradients.models(convention="column", biases=True, loss_at="all", activation=activation, loss=loss)
    bptt_gradients.assert_gradients_match(fn, model, names=NAMES, **kwargs)


def test_correct_bptt_passes(bptt_gradients):
    check(bptt_gradients, rnn_impls.lossFun, max_examples=200)


def test_sigmoid_hidden_layer_passes(bptt_gradients):
    check(bptt_gradients, rnn_impls.lossFun_sigmoid, activation="sigmoid", max_examples=200)


def test_squared_error_with_a_linear_output_passes(bptt_gradients):
    check(bptt_gradients, rnn_impls.lossFun_squared_error, loss="squared_error", max_examples=200)


def test_forgetting_dhnext_misses_the_recurrent_paths(bptt_gradients):
    with pytest.raises(AssertionError, match=r"(?s)does not match the true gradient.*drops the path from L_\d back through h_\d.*\[missing_path\]"):
        check(bptt_gradients, rnn_impls.lossFun_forgets_dhnext)


def test_wrong_tanh_derivative(bptt_gradients):
    with pytest.raises(AssertionError, match=r"(?s)dWxh \(dL/dW_xh\) does not match.*uses 1 - h_\d where the tanh derivative 1 - h_\d\*\*2 belongs"):
        check(bptt_gradients, rnn_impls.lossFun_tanh_derivative)


def test_sign_flip(bptt_gradients):
    with pytest.raises(AssertionError, match=r"(?s)does not match the true gradient.*opposite sign.*\[sign_flip\]"):
        check(bptt_gradients, rnn_impls.lossFun_sign_flip)


def test_sigmoid_derivative_dropped(bptt_gradients):
    with pytest.raises(AssertionError, match=r"(?s)dWxh \(dL/dW_xh\) does not match.*drops the sigmoid derivative h_\d \* \(1 - h_\d\)"):
        check(bptt_gradients, rnn_impls.lossFun_sigmoid_forgets_derivative, activation="sigmoid")


def test_cs231n_step_backward(bptt_gradients):
    def step(dnext_h, x, prev_h, Wx, Wh, next_h):
        return rnn_impls.rnn_step_backward(dnext_h, (x, prev_h, Wx, Wh, next_h))

    bptt_gradients.assert_step_gradients_match(step, bptt_gradients.models(biases=True))
