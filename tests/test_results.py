"""Text summaries of results: step lists in numeric order, runs as ranges."""

from bptt_check.results import step_range


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
