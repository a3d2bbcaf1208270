"""The work budget: counted from the answer, so a verdict never depends on the machine's speed or load."""

import time

import pytest

from bptt_check import RNN
from bptt_check.budget import DEFAULT_WORK, EXACT_FACTOR, WorkMeter, evaluation_work
from bptt_check.compare import Checker, Settings, check
from bptt_check.errors import LimitError
from bptt_check.language import Notation, parse

PASCANU = (r"\sum_{t=1}^{T} \sum_{k=1}^{t} \frac{\partial L_t}{\partial h_t} \frac{\partial h_t}{\partial h_k}"
           r" \frac{\partial h_k}{\partial W_{hh}}")
ONE_SUM = r"\sum_{t=1}^{T} h_{t-1}^T (\frac{\partial L}{\partial h_t} * (1 - h_t^2))"


def _work(text: str, model: RNN, points: int = 5, notation: Notation | None = None) -> int:
    return evaluation_work(parse(text, model, notation=notation).expr, model, points)


def test_work_grows_with_the_answer_and_the_model_not_with_anything_else():
    small, large = RNN(steps=10), RNN(steps=20)
    assert _work(PASCANU, small) < _work(PASCANU, large) < 10 * _work(PASCANU, small)
    assert _work(PASCANU, RNN(steps=10, hidden_size=8)) > _work(PASCANU, small)
    assert _work(ONE_SUM, small) == _work(ONE_SUM, small)  # a function of the answer alone
    assert _work(ONE_SUM, small, points=10) > _work(ONE_SUM, small, points=5)


def test_a_per_step_copy_costs_one_step_and_a_whole_parameter_all_of_them():
    m = RNN(steps=6, convention="column")
    tb = Notation.TEXTBOOK
    copy = _work(r"\frac{\partial L}{\partial h^{(6)}} \nabla_{W^{(6)}} h^{(6)}", m, notation=tb)
    whole = _work(r"\frac{\partial L}{\partial h^{(6)}} \nabla_{W} h^{(6)}", m, notation=tb)
    assert copy < whole


def test_the_default_budget_admits_what_people_write_and_refuses_the_rest():
    need = lambda text, T, H=2: 3 * _work(text, RNN(steps=T, hidden_size=H))  # three readings  # noqa: E731
    assert need(PASCANU, 40) < DEFAULT_WORK / 2  # the example, with room for the exact step
    assert need(PASCANU, 20, 8) < DEFAULT_WORK
    assert need(ONE_SUM, 256, 8) < DEFAULT_WORK / 5
    assert need(PASCANU, 100) > DEFAULT_WORK  # about a minute of one core: refused before it starts


def test_the_meter_refuses_before_spending_and_says_how_much():
    meter = WorkMeter(100)
    meter.charge(60, "a")
    assert meter.affords(40) and not meter.affords(41)
    with pytest.raises(LimitError, match=r"needs about 1\.2e\+02 operations \(b\), past the work budget of 1e\+02"):
        meter.charge(60, "b")
    assert meter.spent == 60


def test_the_verdict_is_decided_by_work_alone():
    m = RNN(steps=5)
    one = _work(PASCANU, m)
    readings = 3  # total, immediate and textbook: ∂L_t/∂h_t and ∂h_t/∂h_k are states, ∂h_k/∂W_hh a parameter
    exact = EXACT_FACTOR * _work(PASCANU, m, points=2)
    refused = check(PASCANU, "dL/dW_hh", model=m, reading="either", settings=Settings(work=readings * one - 1))
    assert refused.verdict == "invalid" and refused.diagnoses[0].code == "limit"
    assert "past the work budget" in refused.message
    numeric = check(PASCANU, "dL/dW_hh", model=m, reading="either", settings=Settings(work=readings * one + exact - 1))
    assert numeric.verdict == "equivalent_numerically"
    assert "the exact step would need about" in numeric.message
    proved = check(PASCANU, "dL/dW_hh", model=m, reading="either", settings=Settings(work=readings * one + exact))
    assert proved.verdict == "equivalent"


def test_a_slow_or_busy_machine_gets_the_same_verdict(monkeypatch: pytest.MonkeyPatch):
    # Issue 14, finding 5: Pascanu's double sum was `equivalent` on an idle machine and `invalid`
    # ("ran past its budget of 10 s") under load. Every clock running ten thousand times slower than
    # real time (a machine that busy) changes nothing.
    m = RNN(steps=8)
    checker = Checker("dL/dW_hh", model=m, settings=Settings(reading="either"))
    idle = checker.check(PASCANU)
    assert idle.verdict == "equivalent"
    for name in ("monotonic", "perf_counter", "time", "process_time"):
        real = getattr(time, name)
        monkeypatch.setattr(time, name, lambda real=real: real() * 10_000.0)
    busy = Checker("dL/dW_hh", model=m, settings=Settings(reading="either")).check(PASCANU)
    monkeypatch.undo()
    assert (busy.verdict, busy.message, busy.evidence) == (idle.verdict, idle.message, idle.evidence)


@pytest.mark.slow
def test_pascanus_double_sum_at_t40_gets_one_verdict_idle_and_beside_two_busy_processes():
    # Issue 14's own case: `equivalent` in 11 s on an idle machine, `invalid` under load before.
    import subprocess
    import sys

    m = RNN(steps=40)
    idle = check(PASCANU, "dL/dW_hh", model=m, reading="either")
    spin = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        busy = check(PASCANU, "dL/dW_hh", model=m, reading="either")
    finally:
        for p in spin:
            p.kill()
            p.wait()
    assert idle.verdict == busy.verdict == "equivalent"
    assert idle.evidence == busy.evidence
