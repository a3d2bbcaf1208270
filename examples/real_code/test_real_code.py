"""bptt_check's testing helpers on code written the way courses write it; each check needs at most 5 lines of glue.

Run with ``pytest examples/real_code``. Each correct implementation passes;
each buggy variant fails, and the test pins the diagnosis it gets.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cs231n_rnn import rnn_backward, rnn_backward_mean_db, rnn_forward, rnn_step_backward, rnn_step_forward  # noqa: E402
from min_char_rnn import loss_fun, loss_fun_hs_list  # noqa: E402
from time_rnn import RnnClassifier, RnnClassifierUnscaled  # noqa: E402
from wildml_rnn import RNNNumpy, RNNNumpyShortWindow  # noqa: E402

from bptt_check.testing import assert_backward_match, assert_gradients_match, assert_step_gradients_match, models  # noqa: E402

SEED = dict(seed=0, max_examples=50)


def failure(check, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        check(*args, **kwargs)
    return str(info.value)


# -- min-char-rnn: class targets, token inputs, clipping --------------------------------------


def min_char(loss_fun):
    def fn(params, xs, ys, h0):  # glue: 3 lines
        loss, dWxh, dWhh, dWhy, dbh, dby, _ = loss_fun(xs, ys, h0, **params)
        return loss, {"dWxh": dWxh, "dWhh": dWhh, "dWhy": dWhy, "dbh": dbh, "dby": dby}

    return fn


MIN_CHAR = models(convention="column", biases=True, loss_at="all", max_steps=12)


def test_min_char_rnn_with_clipping_passes_at_12_steps():
    assert_gradients_match(min_char(loss_fun), MIN_CHAR, names="min-char-rnn", targets="class", inputs="index", clip=5, **SEED)


def test_min_char_rnn_without_clip_is_diagnosed_as_clipped():
    msg = failure(assert_gradients_match, min_char(loss_fun), MIN_CHAR, names="min-char-rnn", targets="class", inputs="index", **SEED)
    assert re.search(r"likely mistake: d\w+ is clipped to \[-5, 5\]: every wrong entry is ±5 where the truth is beyond it .*pass clip=5", msg)


def test_min_char_rnn_keeping_hs_in_a_list_uses_h_T_for_h_0():
    msg = failure(
        assert_gradients_match, min_char(loss_fun_hs_list), MIN_CHAR, names="min-char-rnn", targets="class", inputs="index", clip=5, **SEED
    )
    assert "dWhh uses h_1 where h_0 belongs (the outer product of step 1) [off_by_one]" in msg
    assert "Case(T=1," in msg and "(class indices)" in msg and "(token indices)" in msg


# -- CS231n: a layer's backward pass given dh (N, T, H), and the step functions ------------


def forward(p, x, h0):  # glue: 1 line
    return rnn_forward(x, h0, p["Wx"], p["Wh"], p["b"])


def test_cs231n_rnn_backward_passes_with_a_batch_of_3():
    assert_backward_match(forward, rnn_backward, models(biases=True), names="cs231n", batch=3, **SEED)


def test_cs231n_rnn_backward_dividing_db_by_n_is_named():
    msg = failure(assert_backward_match, forward, rnn_backward_mean_db, models(biases=True), names="cs231n", batch=3, **SEED)
    assert msg.startswith("db (dL/db_h) does not match the true gradient")
    assert "db is the mean over the batch of 3 where the upstream gradient dhs already carries the loss's reduction" in msg
    assert "a stray division by 3 [reduction]" in msg


def test_cs231n_step_functions_pass_with_their_own_cache():
    def forward_step(p, x, h):  # glue: 1 line
        return rnn_step_forward(x, h, p["Wx"], p["Wh"], p["b"])

    assert_step_gradients_match(forward_step, rnn_step_backward, models(biases=True), names="cs231n", **SEED)


# -- a TimeRNN-style network: batches, class targets, the loss averaged over N·T -----------


def time_rnn(cls):
    def fn(params, xs, ys, h0):  # glue: 4 lines
        net = cls(*(params[k] for k in ("W_xh", "W_hh", "b_h", "W_hy", "b_y")))
        loss = net.forward(xs, ys, h0)
        dxs = net.backward()
        return loss, dict(zip(("W_xh", "W_hh", "b_h", "W_hy", "b_y"), net.grads), h0=net.rnn.dh, x=dxs)

    return fn


TIME_RNN = models(biases=True, loss_at="all", max_steps=6)


def test_time_rnn_with_a_mean_loss_passes():
    assert_gradients_match(time_rnn(RnnClassifier), TIME_RNN, targets="class", batch=(1, 2, 3), reduction="mean_all", **SEED)


def test_time_rnn_whose_gradients_miss_the_mean_is_named():
    msg = failure(assert_gradients_match, time_rnn(RnnClassifierUnscaled), TIME_RNN, targets="class", batch=(1, 2, 3), reduction="mean_all", **SEED)
    assert re.search(
        r"likely mistake: your gradients are the sum, but your loss is the mean over the batch of \d and the \d loss steps,"
        r" as checked: the backward pass misses the loss's division by \d+ \[reduction\]",
        msg,
    )


# -- WildML: truncated BPTT -----------------------------------------------------------------------


def wildml(cls):
    return lambda p, xs, ys, h0: dict(zip(("dU", "dV", "dW"), cls(p["U"], p["V"], p["W"], bptt_truncate=4).bptt(xs, ys)))  # glue: 1 line


WILDML = models(convention="column", biases=False, h0="zeros", loss_at="all", max_steps=10)


def test_wildml_truncated_bptt_passes_with_truncate_4():
    assert_gradients_match(wildml(RNNNumpy), WILDML, names="textbook", targets="class", inputs="index", truncate=4, **SEED)


def test_wildml_without_truncate_names_the_4():
    msg = failure(assert_gradients_match, wildml(RNNNumpy), WILDML, names="textbook", targets="class", inputs="index", **SEED)
    assert "your gradients are those of 4-step truncated BPTT (WildML's bptt_truncate=4" in msg and "pass truncate=4 [truncated]" in msg
    assert "Case(T=6," in msg  # the shortest sequence where truncating after 4 steps shows


def test_wildml_with_a_window_one_step_short_is_named():
    msg = failure(assert_gradients_match, wildml(RNNNumpyShortWindow), WILDML, names="textbook", targets="class", inputs="index", truncate=4, **SEED)
    assert "your gradients are those of 3-step truncated BPTT" in msg and "pass truncate=3 [truncated]" in msg
    assert "hint: every error is at float32 resolution" not in msg
