"""An RNN language model in the style of WildML's ``RNNNumpy`` tutorial, written for bptt_check's examples.

Vectors are 1-d: ``s_t = tanh(U[:, x_t] + W s_{t-1})`` from ``s_0 = 0``,
``o_t = softmax(V s_t)``, with word indices ``x`` and targets ``y``; the loss
is ``-sum_t log o_t[y_t]`` (``U`` (H, vocab), ``W`` (H, H), ``V`` (O, H):
Goodfellow et al.'s names). ``bptt`` is truncated backpropagation through
time: the loss of step t flows back through at most ``bptt_truncate`` earlier
steps (``s_t`` … ``s_{t-k}``), the tutorial's definition.

``RNNNumpy`` is correct. ``RNNNumpyShortWindow`` has an off-by-one in the
truncation window (``t - k + 1`` where ``t - k`` belongs): it truncates one
step earlier than it says.
"""

from __future__ import annotations

import numpy as np


class RNNNumpy:
    window_offset = 0

    def __init__(self, U, V, W, bptt_truncate=4):
        self.U, self.V, self.W, self.bptt_truncate = U, V, W, bptt_truncate

    def forward_propagation(self, x):
        T, H = len(x), self.W.shape[0]
        s = np.zeros((T + 1, H))  # s[-1] is the initial state 0
        o = np.zeros((T, self.V.shape[0]))
        for t in range(T):
            s[t] = np.tanh(self.U[:, x[t]] + self.W @ s[t - 1])
            z = self.V @ s[t]
            o[t] = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        return o, s

    def bptt(self, x, y):
        T = len(y)
        o, s = self.forward_propagation(x)
        dLdU, dLdV, dLdW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        delta_o = o.copy()
        delta_o[np.arange(T), y] -= 1.0
        for t in reversed(range(T)):
            dLdV += np.outer(delta_o[t], s[t])
            delta_t = (self.V.T @ delta_o[t]) * (1.0 - s[t] ** 2)
            for step in reversed(range(max(0, t - self.bptt_truncate + self.window_offset), t + 1)):
                dLdW += np.outer(delta_t, s[step - 1])
                dLdU[:, x[step]] += delta_t
                delta_t = (self.W.T @ delta_t) * (1.0 - s[step - 1] ** 2)
        return dLdU, dLdV, dLdW


class RNNNumpyShortWindow(RNNNumpy):
    window_offset = 1
