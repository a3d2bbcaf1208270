"""A character-level RNN in the style of Karpathy's min-char-rnn (written for bptt_check's examples).

Column vectors: ``h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)``, ``y_t = Why h_t + by``,
``p_t = softmax(y_t)``, loss ``-sum_t log p_t[targets[t]]``. ``inputs`` and
``targets`` are lists of integer indices (``x_t`` is the one-hot vector of
``inputs[t]``), and every gradient is clipped to ``[-clip, clip]`` before it is
returned, as min-char-rnn does against exploding gradients.

``loss_fun`` is correct. ``loss_fun_hs_list`` has a bug seen in a real
rewrite: it keeps the hidden states in a list whose last slot holds ``hprev``,
so the forward pass overwrites ``hprev`` with ``h_T`` and the backward pass
uses ``h_T`` where step 1 needs ``h_0``.
"""

from __future__ import annotations

import numpy as np


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def loss_fun(inputs, targets, hprev, Wxh, Whh, Why, bh, by, clip=5.0):
    """(loss, dWxh, dWhh, dWhy, dbh, dby, h_T) of one sequence."""
    vocab = Wxh.shape[1]
    xs, hs, ps = {}, {-1: np.copy(hprev)}, {}
    loss = 0.0
    for t, (i, k) in enumerate(zip(inputs, targets)):
        xs[t] = np.zeros((vocab, 1))
        xs[t][i] = 1.0
        hs[t] = np.tanh(Wxh @ xs[t] + Whh @ hs[t - 1] + bh)
        ps[t] = _softmax(Why @ hs[t] + by)
        loss -= float(np.log(ps[t][k, 0]))
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dh_next = np.zeros_like(hprev)
    for t in reversed(range(len(inputs))):
        dy = ps[t].copy()
        dy[targets[t]] -= 1.0  # softmax cross-entropy: p - onehot(target)
        dWhy += dy @ hs[t].T
        dby += dy
        dh = Why.T @ dy + dh_next
        da = (1.0 - hs[t] ** 2) * dh
        dbh += da
        dWxh += da @ xs[t].T
        dWhh += da @ hs[t - 1].T
        dh_next = Whh.T @ da
    for g in (dWxh, dWhh, dWhy, dbh, dby):
        np.clip(g, -clip, clip, out=g)
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


def loss_fun_hs_list(inputs, targets, hprev, Wxh, Whh, Why, bh, by, clip=5.0):
    """The same with the hidden states in a list: ``hs[-1]`` is ``hprev`` only until step T overwrites it."""
    vocab, T = Wxh.shape[1], len(inputs)
    hs = [None] * T
    hs[-1] = np.copy(hprev)  # the slot of h_T doubles as h_0
    xs, ps = [], []
    loss = 0.0
    for t in range(T):
        x = np.zeros((vocab, 1))
        x[inputs[t]] = 1.0
        xs.append(x)
        hs[t] = np.tanh(Wxh @ x + Whh @ hs[t - 1] + bh)
        ps.append(_softmax(Why @ hs[t] + by))
        loss -= float(np.log(ps[t][targets[t], 0]))
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dh_next = np.zeros_like(hprev)
    for t in reversed(range(T)):
        dy = ps[t].copy()
        dy[targets[t]] -= 1.0
        dWhy += dy @ hs[t].T
        dby += dy
        da = (1.0 - hs[t] ** 2) * (Why.T @ dy + dh_next)
        dbh += da
        dWxh += da @ xs[t].T
        dWhh += da @ hs[t - 1].T  # at t = 0 this is h_T, not h_0
        dh_next = Whh.T @ da
    for g in (dWxh, dWhh, dWhy, dbh, dby):
        np.clip(g, -clip, clip, out=g)
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[-1]
