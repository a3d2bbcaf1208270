"""Shared models and helpers of the expression-language tests (bptt_check.language)."""

from __future__ import annotations

from bptt_check.language import Name, Notation, parse, to_latex, to_plain
from bptt_check.model import RNN, Ref


M = RNN()  # the seed's model: T=2, D=H=O=2
M345 = RNN(input_size=3, hidden_size=4, output_size=5)  # shapes that can be told apart
SEED = Notation.SEED


def P(text: str, model: RNN = M345, **kw: object):  # type: ignore[no-untyped-def]
    return parse(text, model, **kw).expr  # type: ignore[arg-type]


def N(family: str, step: int | None = None, model: RNN = M345) -> Name:
    ref = Ref(family, step)
    return Name(ref, model.shape(ref))


def roundtrip(expr, model: RNN = M345) -> None:  # type: ignore[no-untyped-def]
    assert parse(to_plain(expr), model, syntax="plain").expr == expr, to_plain(expr)
    assert parse(to_latex(expr), model, syntax="latex").expr == expr, to_latex(expr)


PLAIN_SHAPES = [
    ("2", (1, 1)),
    ("0.5", (1, 1)),
    ("1e-3", (1, 1)),
    ("W_hy", (4, 5)),
    ("W_hy[0,0]", (1, 1)),
    ("h_1[1]", (1, 1)),
    ("(dL/dh_1 * (1 - h_1**2))[3]", (1, 1)),
    ("x_1 @ W_xh + h_0 @ W_hh", (1, 4)),
    ("x_1 W_xh + h_0 W_hh", (1, 4)),
    ("h_1 * h_2 - h_1 / h_2", (1, 4)),
    ("h_1 ** 2", (1, 4)),
    ("h_1.T", (4, 1)),
    ("h_1^T", (4, 1)),
    ("h_1.T @ h_2", (4, 4)),
    ("tanh(a_1)", (1, 4)),
    ("sigmoid(a_1)", (1, 4)),
    ("exp(z_1)", (1, 5)),
    ("log(yhat_1)", (1, 5)),
    ("softmax(z_1)", (1, 5)),
    ("sech(a_1)**2", (1, 4)),
    ("diag(h_1)", (4, 4)),
    ("diag(W_hh)", (1, 4)),
    ("sum(h_1)", (1, 1)),
    ("outer(h_1, z_1)", (4, 5)),
    ("ones(2, 3)", (2, 3)),
    ("ones(3)", (1, 3)),
    ("sum_{t=1}^{2} (L_t)", (1, 1)),
    ("sum_{t=1}^{T} (dL/dz_t.T @ h_t)", (5, 4)),
    ("sum_t (dL_t/dW_hy)", (4, 5)),
    ("dL/dW_hy", (4, 5)),
    ("∂L/∂W_hy", (4, 5)),
    ("d(L)/d(W_hy)", (4, 5)),
    ("dL/dW_hy[0,0]", (1, 1)),
    ("d(yhat_1[0])/d(z_1)", (1, 5)),
    ("dL/dh_2", (1, 4)),
    ("dh_2/dh_1", (4, 4)),
    ("dL/dh_2 * (1 - h_2**2) @ W_hh.T", (1, 4)),
    ("(yhat_2 - y_2).T @ h_2", (5, 4)),
    ("W_hh^2", (4, 4)),
    ("1 - h_2^2", (1, 4)),
    ("L_total", (1, 1)),
    ("h_{t-1}", None),  # unbound: see the error tests
]


LATEX_SAME_AS_PLAIN = [
    (r"\frac{\partial L_1}{\partial W_{hy}}", "dL_1/dW_hy"),
    (r"\frac{\partial L}{\partial W_{hy}^{00}}", "dL/dW_hy[0,0]"),
    (r"\frac{\partial L}{\partial W_{hy}^{0,3}}", "dL/dW_hy[0,3]"),
    (r"\frac{\partial L}{\partial W_{hy}[1,2]}", "dL/dW_hy[1,2]"),
    (r"\frac{dL}{dW_{hy}}", "dL/dW_hy"),
    (r"\frac{\mathrm{d} L}{\mathrm{d} W_{hy}}", "dL/dW_hy"),
    (r"\nabla_{h_2} L", "dL/dh_2"),
    (r"\nabla_{W_{hy}} L_1", "dL_1/dW_hy"),
    (r"\hat{y}_1 - y_1", "yhat_1 - y_1"),
    (r"\hat y_{1} - y_{1}", "yhat_1 - y_1"),
    (r"\hat{\mathbf{y}}_1", "yhat_1"),
    (r"\sum_{t=1}^{T} h_{t-1}", "h_0 + h_1"),
    (r"\sum_{t=1}^{2} L_t", "L_1 + L_2"),
    (r"\sum_t L_t", "L_1 + L_2"),
    (r"L_{total}", "L"),
    (r"L_{\text{total}}", "L"),
    (r"\mathcal{L}", "L"),
    (r"h_1^T", "h_1.T"),
    (r"h_1^\top", "h_1.T"),
    (r"h_1^{T}", "h_1.T"),
    (r"h_1^{\top}", "h_1.T"),
    (r"h_1 \odot h_2", "h_1 * h_2"),
    (r"h_1 \circ h_2", "h_1 * h_2"),
    (r"h_1 \cdot W_{hh}", "h_1 @ W_hh"),
    (r"h_1 \times W_{hh}", "h_1 @ W_hh"),
    (r"h_1 * W_{hh}", "h_1 @ W_hh"),  # in LaTeX * is the ordinary product
    (r"h_1 W_{hh}", "h_1 @ W_hh"),
    (r"2 \cdot h_1", "2 * h_1"),
    (r"\tanh(a_1)", "tanh(a_1)"),
    (r"\tanh a_1", "tanh(a_1)"),
    (r"\exp(z_1)", "exp(z_1)"),
    (r"\log \hat{y}_1", "log(yhat_1)"),
    (r"y_1 \log \hat{y}_1", "y_1 @ log(yhat_1)") if False else (r"\log(\hat{y}_1) \odot y_1", "log(yhat_1) * y_1"),
    (r"\operatorname{diag}(h_1)", "diag(h_1)"),
    (r"\mathrm{diag}(h_1)", "diag(h_1)"),
    (r"\operatorname{softmax}(z_1)", "softmax(z_1)"),
    (r"\sigma(a_1)", "sigmoid(a_1)"),
    (r"\operatorname{sech}^2(a_1)", "sech(a_1)**2"),
    (r"\tanh^2(a_1)", "tanh(a_1)**2"),
    (r"\left( h_1 + h_2 \right) W_{hh}", "(h_1 + h_2) @ W_hh"),
    (r"\left[ h_1 + h_2 \right] W_{hh}", "(h_1 + h_2) @ W_hh"),
    (r"\mathbf{h}_1 \boldsymbol{W}_{hh} \bm{W}_{hh}", "h_1 @ W_hh @ W_hh"),
    (r"\mathbf{h_1}", "h_1"),
    (r"\frac{1}{2} h_1", "1 / 2 * h_1"),
    (r"\frac{h_1}{h_2}", "h_1 / h_2"),
    (r"{h_1 + h_2}^T", "(h_1 + h_2).T"),
    (r"h_1 \, W_{hh} \; \! \quad", "h_1 @ W_hh"),
    (r"1 - h_2^2", "1 - h_2**2"),
    (r"W_{hh}^2", "W_hh^2"),
    (r"W_{hh}^{\circ 2}", "W_hh**2"),
    (r"W_{hh}^{-1}", "W_hh^(-1)"),
    (r"h^{(1)}", "h_1"),
    (r"\hat{y}^{(2)} - y^{(2)}", "yhat_2 - y_2"),
    (r"\nabla_{\mathbf{h}^{(1)}} L", "dL/dh_1"),
    (r"$h_1 + h_2$", "h_1 + h_2"),
    (r"&= h_1 + h_2 \\", "h_1 + h_2"),  # an align continuation line
    (r"& h_1 + h_2 \\", "h_1 + h_2"),
    (r"\begin{equation} h_1 + h_2 \end{equation}", "h_1 + h_2"),
    (r"h_1 + h_2.", "h_1 + h_2"),
    (r"\frac{\partial L}{\partial h_2} \odot (1 - h_2^2) W_{hh}^\top", "dL/dh_2 * (1 - h_2**2) @ W_hh.T"),
    (r"\sum_{t=1}^{T} (\hat{y}_t - y_t)^T h_t", "sum_{t=1}^{T} (yhat_t - y_t).T @ h_t"),
    (r"\left(\frac{\partial L}{\partial h_1}\right)[3]", "(dL/dh_1)[3]"),
    (r"W_{hy}[0,1]", "W_hy[0,1]"),
    (r"W_{hy}^{01}", "W_hy[0,1]"),
    (r"\frac{\partial L}{\partial z_1} W_{hy}^T", "dL/dz_1 @ W_hy.T"),
]


# ---------------------------------------------------------------------------
# Model breadth (issue 8): relu and step, Goodfellow's superscript steps,
# parameter copies, built-in notations by name, node functions of the model
# ---------------------------------------------------------------------------

COLUMN = RNN(steps=3, input_size=2, hidden_size=3, output_size=4, biases=True, convention="column")
TB = Notation.TEXTBOOK


def PC(text: str, **kw: object):  # type: ignore[no-untyped-def]
    """Parse in the textbook's column model with its notation."""
    return parse(text, COLUMN, notation=kw.pop("notation", TB), **kw).expr  # type: ignore[arg-type]


COL = RNN(convention="column")
