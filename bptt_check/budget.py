"""The work budget: how much checking an answer costs, counted from its tree, never in seconds.

A verdict must not depend on how busy the machine is, so the checker budgets
*work*: before evaluating an answer it estimates the operations its checks
take, from the answer's distinct nodes (a shared subtree counts once) and the
model's sizes, and refuses an answer whose checks would need more than the
budget (``invalid``, code ``limit``); an exact step that would pass it is
skipped (``equivalent_numerically``, and the result says why). The same answer
against the same model always gets the same decision, on any machine, idle or
loaded. Wall-clock limits exist only as a backstop against hostile input in the
grading workers (:mod:`bptt_check.grading.pool`).

One evaluation at P sample points costs, summed over the answer's distinct nodes,

* a true partial ∂A/∂B: ``PARTIAL_OVERHEAD + P · entries · span``, its Jacobian
  tensor's entries times the steps its paths span (the truth propagates
  Jacobians one step at a time, and jax cross-checks each partial);
* a chain: its factors' partials plus ``P ·`` the multiply-adds of each contraction;
* any other node: ``NODE_OVERHEAD + P ·`` its arithmetic (a matrix product
  ``m×k @ k×n`` is ``m·k·n``, a matrix power ``d³·log₂ n``, the rest their entries).

The overheads are what the Python side costs per node whatever its size. The
checker spends up to three readings and a transposed evaluation in floats and
one exact evaluation (``EXACT_FACTOR`` times dearer per point). A unit is about
half a microsecond of one core today (measured on answers from T = 10 to 40
and H = 2 to 8, within 20 %), so the default budget is about half a minute of work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import LimitError
from .language.ast import Apply, Binary, Call, Chain, Element, Expr, Name, Neg, Number, Partial, Power, Transpose, postorder
from .model import RNN, Reading, Ref, squeeze_shape

DEFAULT_WORK = 50_000_000
"""Operations one answer's checks may take: above any derivation people write
(Pascanu et al.'s double sum over every pair of steps needs about 2.3 × 10⁷ at
T = 40 with H = 2, 4.1 × 10⁷ at T = 20 with H = 8; a sum over T = 256 steps
about 7 × 10⁶). About 2 × 10⁶ are done per second of one core."""

PARTIAL_OVERHEAD = 700
NODE_OVERHEAD = 20
EXACT_FACTOR = 2
"""Exact arithmetic (residues mod p, one Python object per entry) per float operation, at its fewer points."""


def _entries(shape: tuple[int, ...]) -> int:
    return math.prod(shape) if shape else 1


def _span(model: RNN, num: Ref, den: Ref, reading: Reading | None) -> int:
    """How many steps the paths den → num can run through (1 for a partial within one step)."""
    if reading == "immediate":
        return 1
    hi = num.step if num.step is not None else model.steps
    lo = den.step if den.step is not None else 1
    return max(0, hi - lo) + 1


def partial_work(model: RNN, p: Partial, points: int, reading: Reading | None = None) -> int:
    """Operations to produce one true partial at ``points`` points (see the module docstring)."""
    entries = _entries(squeeze_shape(model.shape(p.num)) + squeeze_shape(model.shape(p.den)))
    return PARTIAL_OVERHEAD + points * entries * _span(model, p.num, p.den, p.reading or reading)


def evaluation_work(expr: Expr, model: RNN, points: int) -> int:
    """Operations of one evaluation of ``expr`` at ``points`` points (under the total reading, the dearest)."""
    total = 0
    for node in postorder(expr):
        if isinstance(node, Partial):
            total += partial_work(model, node, points)
            continue
        if isinstance(node, Chain):
            total += sum(partial_work(model, f, points) for f in node.factors)
            lead = _entries(squeeze_shape(model.shape(node.factors[0].num)))
            flops = 0
            for f in node.factors[1:]:
                flops += lead * _entries(squeeze_shape(model.shape(f.num))) * _entries(squeeze_shape(model.shape(f.den)))
            total += points * flops
            continue
        if isinstance(node, (Name, Number)):
            flops = 1
        elif isinstance(node, Binary) and node.op == "@":
            flops = node.left.shape[0] * node.left.shape[-1] * node.right.shape[-1]
        elif isinstance(node, Power) and node.matrix:
            flops = node.shape[0] ** 3 * max(1, abs(node.exponent.numerator).bit_length())
        else:
            kids = [node.left, node.right] if isinstance(node, Binary) else _operands(node)
            flops = max([_entries(node.shape)] + [_entries(k.shape) for k in kids])
        total += NODE_OVERHEAD + points * flops
    return total


def _operands(node: Expr) -> list[Expr]:
    if isinstance(node, (Neg, Transpose, Element)):
        return [node.operand]
    if isinstance(node, Power):
        return [node.base]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, Apply):
        return [node.arg]
    return []


@dataclass
class WorkMeter:
    """Work spent on one answer against its budget; deterministic, so a verdict never depends on load."""

    budget: int
    spent: int = 0

    def charge(self, work: int, what: str) -> None:
        """Spend ``work`` operations, or raise :class:`LimitError` if that would pass the budget."""
        if self.spent + work > self.budget:
            raise LimitError(
                f"checking this answer needs about {self.spent + work:.2g} operations ({what}),"
                f" past the work budget of {self.budget:.2g}",
                hint="write it with fewer terms (e.g. a recursion through dL/dh_t instead of a double sum),"
                " or raise the budget (Settings.work, rubric.work)",
            )
        self.spent += work

    def affords(self, work: int) -> bool:
        """Whether ``work`` more operations stay within the budget."""
        return self.spent + work <= self.budget
