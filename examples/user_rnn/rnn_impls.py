"""numpy BPTT implementations in the style of Karpathy's min-char-rnn ``lossFun``.

Column vectors (``RNN(convention="column")``): ``h_t = act(Wxh x_t + Whh h_{t-1} + bh)``,
``y_t = Why h_t + by`` and a loss at every step: softmax cross-entropy,
``-sum_t targets_t · log softmax(y_t)``, or squared error on the linear
output, ``sum_t 1/2 ||y_t - targets_t||**2``. Unlike the original, the inputs
come as vectors ``xs[t]`` (D, 1) and the targets as vectors ``ts[t]`` (O, 1)
(one-hot or soft distributions for cross-entropy, any real vector for
squared error), and there is no gradient clipping (it would change the
gradients).

Correct:

* ``lossFun`` — min-char-rnn itself: tanh, softmax cross-entropy;
* ``lossFun_sigmoid`` — a sigmoid hidden layer (``dhraw = h * (1 - h) * dh``);
* ``lossFun_squared_error`` — tanh, a linear output and squared error (``dy = y - t``).

Each ``lossFun_*`` below has one classic mistake:

* ``lossFun_forgets_dhnext`` — ``dh = Why.T @ dy`` without ``+ dhnext``: the
  gradient never flows back through time (dWhh, dWxh and dbh miss every
  recurrent path);
* ``lossFun_tanh_derivative`` — ``(1 - h)`` where tanh' is ``(1 - h**2)``;
* ``lossFun_sign_flip`` — ``dy = t - p`` where ``dy = p - t`` (every gradient
  has the opposite sign);
* ``lossFun_sigmoid_forgets_derivative`` — the sigmoid version with
  ``dhraw = dh``: the derivative ``h * (1 - h)`` is dropped.

Each takes ``(params, xs, ts, hprev)`` with ``params`` keyed ``Wxh, Whh, Why,
bh, by`` and returns ``(loss, grads)`` with ``grads`` keyed ``dWxh, ...``.
"""

from __future__ import annotations

import numpy as np


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


_ACT = {"tanh": np.tanh, "sigmoid": _sigmoid}


def _forward(params, xs, ts, hprev, *, act="tanh", loss="cross_entropy"):
    Wxh, Whh, Why, bh, by = (params[k] for k in ("Wxh", "Whh", "Why", "bh", "by"))
    hs, ps = {-1: np.copy(hprev)}, {}
    total = 0.0
    for t in range(len(xs)):
        hs[t] = _ACT[act](Wxh @ xs[t] + Whh @ hs[t - 1] + bh)
        y = Why @ hs[t] + by
        if loss == "squared_error":
            ps[t] = y  # a linear output
            total += 0.5 * float(np.sum((y - ts[t]) ** 2))
        else:
            e = np.exp(y - y.max())
            ps[t] = e / e.sum()
            total += -float(np.sum(ts[t] * np.log(ps[t])))
    return total, hs, ps


def _backward(params, xs, ts, hs, ps, *, act_grad, sign=1.0, use_dhnext=True):
    Whh, Why = params["Whh"], params["Why"]
    grads = {f"d{k}": np.zeros_like(v) for k, v in params.items()}
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(xs))):
        dy = sign * (ps[t] - ts[t])  # softmax with cross-entropy, or a linear output with squared error
        grads["dWhy"] += dy @ hs[t].T
        grads["dby"] += dy
        dh = Why.T @ dy + (dhnext if use_dhnext else 0.0)
        dhraw = act_grad(hs[t]) * dh
        grads["dbh"] += dhraw
        grads["dWxh"] += dhraw @ xs[t].T
        grads["dWhh"] += dhraw @ hs[t - 1].T
        dhnext = Whh.T @ dhraw
    return grads


def _tanh_grad(h):
    return 1 - h * h


def _sigmoid_grad(h):
    return h * (1 - h)


def lossFun(params, xs, ts, hprev):
    """The correct BPTT."""
    loss, hs, ps = _forward(params, xs, ts, hprev)
    return loss, _backward(params, xs, ts, hs, ps, act_grad=_tanh_grad)


def lossFun_sigmoid(params, xs, ts, hprev):
    """The correct BPTT of a sigmoid hidden layer."""
    loss, hs, ps = _forward(params, xs, ts, hprev, act="sigmoid")
    return loss, _backward(params, xs, ts, hs, ps, act_grad=_sigmoid_grad)


def lossFun_squared_error(params, xs, ts, hprev):
    """The correct BPTT of a linear output with squared error: the output error is y - t, as with softmax."""
    loss, hs, ps = _forward(params, xs, ts, hprev, loss="squared_error")
    return loss, _backward(params, xs, ts, hs, ps, act_grad=_tanh_grad)


def lossFun_forgets_dhnext(params, xs, ts, hprev):
    """Bug: the gradient from step t+1 (dhnext) is never added to dh."""
    loss, hs, ps = _forward(params, xs, ts, hprev)
    return loss, _backward(params, xs, ts, hs, ps, act_grad=_tanh_grad, use_dhnext=False)


def lossFun_tanh_derivative(params, xs, ts, hprev):
    """Bug: tanh'(a) written as 1 - h instead of 1 - h**2."""
    loss, hs, ps = _forward(params, xs, ts, hprev)
    return loss, _backward(params, xs, ts, hs, ps, act_grad=lambda h: 1 - h)


def lossFun_sign_flip(params, xs, ts, hprev):
    """Bug: dy = t - p (the gradient of the log-likelihood, not of the loss)."""
    loss, hs, ps = _forward(params, xs, ts, hprev)
    return loss, _backward(params, xs, ts, hs, ps, act_grad=_tanh_grad, sign=-1.0)


def lossFun_sigmoid_forgets_derivative(params, xs, ts, hprev):
    """Bug: a sigmoid hidden layer whose derivative h * (1 - h) is dropped (dhraw = dh)."""
    loss, hs, ps = _forward(params, xs, ts, hprev, act="sigmoid")
    return loss, _backward(params, xs, ts, hs, ps, act_grad=lambda h: 1.0)


# -- one step, CS231n style (row vectors, a minibatch of N rows) -------------------------


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """next_h = tanh(x @ Wx + prev_h @ Wh + b), and the cache the backward pass needs."""
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    """Gradients of one step: (dx, dprev_h, dWx, dWh, db)."""
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)
