"""Layers in the style of "Deep Learning from Scratch 2" (``TimeRNN``), written for bptt_check's examples.

Row vectors, a minibatch ``xs`` (N, T, D) and integer targets ``ts`` (N, T).
``TimeRNN`` runs ``h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b)`` over the
sequence from a given ``h0``; ``TimeAffine`` maps every ``h_t`` to scores;
``TimeSoftmaxWithLoss`` averages the cross-entropy over all N·T steps. Each
layer's ``backward`` takes the upstream gradient and stores its parameter
gradients in ``grads``.

``RnnClassifier`` (TimeRNN → TimeAffine → TimeSoftmaxWithLoss) is correct.
``RnnClassifierUnscaled`` has a bug: its loss layer's backward forgets the
``1 / (N·T)`` of the mean, so the gradients are those of the summed loss
while the loss it reports is the mean.
"""

from __future__ import annotations

import numpy as np


class TimeRNN:
    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.dh = None

    def forward(self, xs, h0):
        Wx, Wh, b = self.params
        N, T, _ = xs.shape
        self.xs, self.hs = xs, np.zeros((N, T + 1, Wh.shape[0]))
        self.hs[:, 0] = h0
        for t in range(T):
            self.hs[:, t + 1] = np.tanh(xs[:, t] @ Wx + self.hs[:, t] @ Wh + b)
        return self.hs[:, 1:]

    def backward(self, dhs):
        Wx, Wh, _ = self.params
        N, T, _ = dhs.shape
        dxs = np.zeros_like(self.xs)
        dWx, dWh, db = (np.zeros_like(p) for p in self.params)
        dh = np.zeros((N, Wh.shape[0]))
        for t in reversed(range(T)):
            da = (dhs[:, t] + dh) * (1.0 - self.hs[:, t + 1] ** 2)
            dWx += self.xs[:, t].T @ da
            dWh += self.hs[:, t].T @ da
            db += da.sum(axis=0)
            dxs[:, t] = da @ Wx.T
            dh = da @ Wh.T
        self.grads = [dWx, dWh, db]
        self.dh = dh
        return dxs


class TimeAffine:
    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]

    def forward(self, hs):
        self.hs = hs
        return hs @ self.params[0] + self.params[1]

    def backward(self, dout):
        W, _ = self.params
        N, T, H = self.hs.shape
        self.grads = [self.hs.reshape(N * T, H).T @ dout.reshape(N * T, -1), dout.sum(axis=(0, 1))]
        return dout @ W.T


class TimeSoftmaxWithLoss:
    def __init__(self, scale_gradient=True):
        self.scale_gradient = scale_gradient

    def forward(self, scores, ts):
        N, T, _ = scores.shape
        e = np.exp(scores - scores.max(axis=2, keepdims=True))
        self.ps, self.ts = e / e.sum(axis=2, keepdims=True), ts
        picked = np.take_along_axis(self.ps, ts[..., None], axis=2)
        return float(-np.log(picked).sum() / (N * T))

    def backward(self, dout=1.0):
        N, T, _ = self.ps.shape
        dscores = self.ps.copy()
        np.put_along_axis(dscores, self.ts[..., None], np.take_along_axis(dscores, self.ts[..., None], axis=2) - 1.0, axis=2)
        return dscores * dout / (N * T) if self.scale_gradient else dscores * dout


class RnnClassifier:
    """TimeRNN → TimeAffine → TimeSoftmaxWithLoss; ``grads`` in the order Wx, Wh, b, W_out, b_out."""

    scale_gradient = True

    def __init__(self, Wx, Wh, b, W_out, b_out):
        self.rnn, self.affine = TimeRNN(Wx, Wh, b), TimeAffine(W_out, b_out)
        self.loss_layer = TimeSoftmaxWithLoss(self.scale_gradient)

    def forward(self, xs, ts, h0):
        return self.loss_layer.forward(self.affine.forward(self.rnn.forward(xs, h0)), ts)

    def backward(self):
        dxs = self.rnn.backward(self.affine.backward(self.loss_layer.backward()))
        self.grads = self.rnn.grads + self.affine.grads
        return dxs


class RnnClassifierUnscaled(RnnClassifier):
    scale_gradient = False
