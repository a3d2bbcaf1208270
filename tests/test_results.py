"""Text summaries of results: step lists in numeric order, runs as ranges."""

from hypothesis import given
from hypothesis import strategies as st

from bptt_check.results import fold_steps, step_range


def test_steps_are_listed_in_numeric_order_with_runs_as_ranges():
    assert step_range([f"h_{k}" for k in (10, 11, 2, 3, 4, 7)]) == "h_2 … h_4, h_7, h_10 or h_11"
    assert step_range([f"h_{k}" for k in range(49, 1, -1)]) == "h_2 … h_49"
    assert step_range(["h_3", "h_2"], conj="and") == "h_2 and h_3"
    assert step_range(["h_1"]) == "h_1"
    assert step_range([]) == ""


def test_families_stay_apart_and_names_without_steps_come_last():
    assert step_range(["x_2", "h_1", "x_1", "x_3", "h_2", "other"]) == "x_1 … x_3, h_1, h_2 or other"
    assert step_range(["W_hh", "W_hh"]) == "W_hh"


def test_readings_of_one_kind_are_summarized_past_three():
    from bptt_check.results import CheckResult, Reading

    def reading(k):
        through = tuple(f"h_{j}" for j in range(k + 1, 51))
        return Reading(f"∂L/∂h_{k}", True, False, f"right if ∂L/∂h_{k} is the total derivative …", through)

    many = CheckResult("equivalent", "dL/dW_hh", "…", 1.0, "right", readings=tuple(reading(k) for k in range(1, 50)))
    lines = [line for line in str(many).splitlines() if "reading:" in line]
    assert lines == ["  reading: right if each of ∂L/∂h_1 … ∂L/∂h_49 is the total derivative;"
                     " with the immediate reading they miss the paths through h_2 … h_50"]
    few = CheckResult("equivalent", "dL/dW_hh", "…", 1.0, "right", readings=tuple(reading(k) for k in range(1, 4)))
    assert [line for line in str(few).splitlines() if "reading:" in line] == [
        f"  reading: right if ∂L/∂h_{k} is the total derivative …" for k in (1, 2, 3)]
    assert len(many.to_dict()["readings"]) == 49  # the JSON keeps one entry per partial


def test_rows_that_differ_only_in_their_step_fold_into_one_in_t():
    rows = [(s, f"dL/dh_{s} = (yhat_{s} - y_{s}) @ W_hy.T" + ("" if s == 9 else f" + dL/dh_{s + 1} @ W_hh.T"))
            for s in range(9, 0, -1)]
    assert fold_steps(rows) == [
        (9, 9, "dL/dh_9 = (yhat_9 - y_9) @ W_hy.T"),
        (8, 1, "dL/dh_t = (yhat_t - y_t) @ W_hy.T + dL/dh_{t+1} @ W_hh.T"),
    ]
    latex = [(s, rf"h_{{{s - 1}}}^{{\top}} \hat{{y}}_{{{s}}} W_{{hh}}") for s in range(1, 9)]
    assert fold_steps(latex) == [(1, 8, r"h_{t-1}^{\top} \hat{y}_{t} W_{hh}")]


def test_short_runs_and_numbers_that_are_not_subscripts_stay_as_written():
    rows = [(s, f"h_{s} * (1 - h_{s}**2)[0,1]") for s in range(1, 5)]
    assert fold_steps(rows) == [(s, s, text) for s, text in rows]  # fewer than 8
    assert fold_steps(rows, least=4) == [(1, 4, "h_t * (1 - h_t**2)[0,1]")]
    mixed = [(1, "h_0 + h_1"), (2, "h_1 + h_2"), (3, "h_0 + h_3"), (4, "h_3 + h_4")]
    assert fold_steps(mixed, least=2) == [(1, 2, "h_{t-1} + h_t"), (3, 3, "h_0 + h_3"), (4, 4, "h_3 + h_4")]


@given(st.lists(st.sampled_from(["h_{t-1} @ W", "yhat_t - y_t", "h_0 + h_t", "x_{t+1}"]), min_size=1, max_size=30),
       st.integers(1, 40), st.booleans())
def test_folding_loses_no_row(kinds, start, falling):
    """Unfolding every (first, last, template) gives back exactly the rows, in order."""
    def spell(template: str, step: int) -> str:
        """Step subscripts in t written out at ``step``, as the printers write them (``h_4``)."""
        for word, k in (("_{t-1}", -1), ("_{t+1}", 1), ("_t", 0)):
            template = template.replace(word, f"_{step + k}")
        return template

    steps = [start - i if falling else start + i for i in range(len(kinds))]
    rows = [(s, spell(k, s)) for s, k in zip(steps, kinds) if s - 1 >= 0]
    out = fold_steps(rows, least=2)
    unfolded = []
    for first, last, text in out:
        step = 1 if last >= first else -1
        for s in range(first, last + step, step):
            unfolded.append((s, spell(text, s) if first != last else text))
    assert unfolded == rows
