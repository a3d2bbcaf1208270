"""A vanilla RNN layer in the style of CS231n's ``rnn_layers.py`` (written for bptt_check's examples).

Row vectors and a minibatch: ``x`` (N, T, D), ``h0`` (N, H), ``Wx`` (D, H),
``Wh`` (H, H), ``b`` (H,); ``h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b)``, the
hidden states ``h`` (N, T, H). The backward passes take the upstream gradient
``dh`` of every hidden state, not a loss.

``rnn_backward_mean_db`` has a bug: it divides ``db`` by the batch size (a
habit from losses averaged over the batch), though the upstream gradient
already carries whatever averaging the loss did.
"""

from __future__ import annotations

import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1.0 - next_h**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    caches, prev = [], h0
    for t in range(T):
        prev, cache = rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        h[:, t] = prev
        caches.append(cache)
    return h, caches


def rnn_backward(dh, cache):
    N, T, H = dh.shape
    x0, _, Wx, Wh, _ = cache[0]
    dx = np.zeros((N, T, x0.shape[1]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H)
    dprev = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev, cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev, dWx, dWh, db


def rnn_backward_mean_db(dh, cache):
    dx, dh0, dWx, dWh, db = rnn_backward(dh, cache)
    return dx, dh0, dWx, dWh, db / dh.shape[0]
