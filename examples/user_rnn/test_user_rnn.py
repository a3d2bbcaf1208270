"""Checking your own BPTT code with bptt_check's pytest fixture.

``rnn_impls.py`` holds four min-char-rnn style implementations (column
vectors, parameters ``Wxh, Whh, Why, bh, by``, a loss at every step): a
correct one and three with a classic mistake each, plus a CS231n-style
``rnn_step_backward``. The ``bptt_gradients`` fixture comes with the package
(no conftest needed); run::

    pytest examples/user_rnn                              # 200 examples for the correct one
    pytest examples/user_rnn --bptt-max-examples 20       # a quicker run

Each check draws models (steps and sizes), parameters and sequences with
hypothesis, compares every gradient with the jax truth (and sympy's, for small
models), and on a mismatch shrinks to the smallest failing case and explains
it. Remove the ``pytest.raises`` around a buggy one to see the whole report,
for instance::

    dWxh (dL/dW_xh) does not match the true gradient
      worst entry dWxh[0, 0]: yours = 0.01501555456, jax = 0.01538979053, sympy = 0.01538979053
      tolerance rule: |yours - jax| <= atol + rtol*|jax| = 1e-08 + 1e-06*0.01539 = 2.54e-08, but |yours - jax| = 0.000374
      likely mistake: dWxh drops the path from L_2 back through h_1 (where the gradient reaches step 1) [missing_path]
    ...
    smallest failing case (found by hypothesis):
    Case(T=2, D=1, H=1, O=2, loss at all steps, biases, h_0 = 0
      ...)
"""

import pytest

import rnn_impls

# min-char-rnn's names for our W_xh, W_hh, W_hy, b_h, b_y; the gradients come back as dWxh, ...
NAMES = {"Wxh": "W_xh", "Whh": "W_hh", "Why": "W_hy", "bh": "b_h", "by": "b_y"}


def check(bptt_gradients, fn, **kwargs):
    """The implementations have biases and a loss at every step, in column vectors."""
    model = bptt_gradients.models(biases=True, loss_at="all")
    bptt_gradients.assert_gradients_match(fn, model, names=NAMES, layout="column", **kwargs)


def test_correct_bptt_passes(bptt_gradients):
    check(bptt_gradients, rnn_impls.lossFun, max_examples=200)


def test_forgetting_dhnext_misses_the_recurrent_paths(bptt_gradients):
    with pytest.raises(AssertionError, match=r"(?s)does not match the true gradient.*drops the path from L_\d back through h_\d.*\[missing_path\]"):
        check(bptt_gradients, rnn_impls.lossFun_forgets_dhnext)


def test_wrong_tanh_derivative(bptt_gradients):
    with pytest.raises(AssertionError, match=r"(?s)dWxh \(dL/dW_xh\) does not match.*uses 1 - h_\d where the tanh derivative 1 - h_\d\*\*2 belongs"):
        check(bptt_gradients, rnn_impls.lossFun_tanh_derivative)


def test_sign_flip(bptt_gradients):
    with pytest.raises(AssertionError, match=r"(?s)does not match the true gradient.*opposite sign.*\[sign_flip\]"):
        check(bptt_gradients, rnn_impls.lossFun_sign_flip)


def test_cs231n_step_backward(bptt_gradients):
    def step(dnext_h, x, prev_h, Wx, Wh, next_h):
        return rnn_impls.rnn_step_backward(dnext_h, (x, prev_h, Wx, Wh, next_h))

    bptt_gradients.assert_step_gradients_match(step, bptt_gradients.models(biases=True))
