"""The model configuration: defaults, names, shapes, validation."""

import pytest

from bptt_check import RNN, ConfigError, Ref, Target
from bptt_check.model import L_TOTAL, jacobian_shape, squeeze_shape


def test_defaults_are_the_seeds_model():
    m = RNN()
    assert (m.steps, m.sizes, m.loss_at, m.h0, m.biases) == (2, (2, 2, 2), "all", "input", False)
    assert m.loss_steps == (1, 2)
    assert RNN(loss_at="last").loss_steps == (2,)


def test_shapes_follow_the_row_convention():
    m = RNN(steps=3, input_size=3, hidden_size=4, output_size=5)
    assert m.shape(Ref("W_xh")) == (3, 4)
    assert m.shape(Ref("W_hh")) == (4, 4)
    assert m.shape(Ref("W_hy")) == (4, 5)
    assert m.shape(Ref("x", 2)) == (1, 3)
    assert m.shape(Ref("h", 0)) == (1, 4)
    assert m.shape(Ref("yhat", 3)) == (1, 5)
    assert m.shape(L_TOTAL) == (1, 1)


def test_names_cover_leaves_and_nodes_in_order():
    m = RNN()
    assert [str(r) for r in m.leaves()] == ["W_xh", "W_hh", "W_hy", "x_1", "x_2", "y_1", "y_2", "h_0"]
    assert [str(r) for r in m.nodes()][:5] == ["a_1", "h_1", "z_1", "yhat_1", "L_1"]
    assert m.nodes()[-1] == L_TOTAL
    assert Ref("h", 3) not in m and Ref("h", 2) in m and Ref("b_h") not in m
    assert Ref("b_h") in RNN(biases=True)


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("steps", 0, "steps = 0"),
        ("hidden_size", -1, "hidden_size = -1"),
        ("output_size", 1, "softmax needs at least two classes"),
        ("loss_at", "first", "'all' or 'last'"),
        ("h0", "random", "'input' or 'zeros'"),
        ("steps", 2.5, "steps = 2.5"),
    ],
)
def test_invalid_configurations_name_the_field(field, value, fragment):
    with pytest.raises(ConfigError) as err:
        RNN(**{field: value})
    assert fragment in str(err.value)


def test_jacobian_layout():
    assert squeeze_shape((1, 1)) == ()
    assert squeeze_shape((1, 3)) == (3,)
    assert jacobian_shape((1, 1), (2, 3)) == (2, 3)
    assert jacobian_shape((1, 3), (1, 4)) == (3, 4)
    assert jacobian_shape((1, 3), (2, 4)) == (3, 2, 4)


def test_target_text_and_shape():
    m = RNN(input_size=3, hidden_size=4, output_size=5)
    assert str(Target(L_TOTAL, Ref("W_hy"), (0, 0))) == "dL/dW_hy[0,0]"
    assert Target(L_TOTAL, Ref("W_hy")).shape(m) == (4, 5)
    assert Target(Ref("L", 2)).shape(m) == (1, 1)
    assert Target(Ref("h", 1), Ref("h", 0)).shape(m) == (4, 4)


def test_from_table_reads_a_model_section():
    m = RNN.from_table({"steps": 3, "loss_at": "last", "sizes": {"input": 1, "hidden": 4, "output": 3}, "biases": True})
    assert (m.steps, m.sizes, m.loss_at, m.biases) == (3, (1, 4, 3), "last", True)


@pytest.mark.parametrize(
    "table, fragment",
    [
        ({"step": 2}, "unknown key model.step (hint: did you mean 'steps'?"),
        ({"steps": "two"}, "model.steps = 'two' must be a whole number"),
        ({"sizes": {"hidden": 0}}, "model.sizes.hidden (hidden_size) = 0 is invalid"),
        ({"sizes": {"hiden": 2}}, "unknown key model.sizes.hiden"),
        ({"loss_at": "first"}, "model.loss_at = 'first' is invalid"),
    ],
)
def test_from_table_names_the_key(table, fragment):
    with pytest.raises(ConfigError) as err:
        RNN.from_table(table)
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "target, fragment",
    [
        (lambda: Target(Ref("L"), Ref("W_hy"), (5, 5)), "index (5, 5) is outside the 2×2 shape"),
        (lambda: Target(Ref("h", 5)), "h_5 is not a name of this model"),
        (lambda: Target(Ref("L"), Ref("b_h")), "no biases"),
        (lambda: Target(Ref("L"), Ref("W_hh", 1)), "parameters have no step"),
        (lambda: Target(Ref("hh", 1)), "did you mean 'h'?"),
        (lambda: Target(Ref("h", 2), Ref("h", 1), (0, 1)), "needs a scalar numerator"),
    ],
)
def test_targets_outside_the_model_are_config_errors(target, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        target().validate(RNN())


@pytest.mark.parametrize("kwargs", [dict(of="L"), dict(of=Ref("L"), wrt="W_hh"), dict(of=Ref("L"), index=(0, -1)),
                                    dict(of=Ref("L"), index=(0,)), dict(of=Ref("L"), index=(True, 0))])
def test_malformed_targets_are_refused_on_construction(kwargs):
    with pytest.raises(ConfigError):
        Target(**kwargs)


def test_reading_policies_are_validated_with_the_nearest_one():
    from bptt_check.model import reading_policy

    assert reading_policy(" Either ") == "either"
    with pytest.raises(ConfigError, match="did you mean 'either'"):
        reading_policy("eithr", "rubric.reading")
    with pytest.raises(ConfigError, match="rubric.reading = 'bogus' is not a reading policy"):
        reading_policy("bogus", "rubric.reading")
    assert isinstance(ConfigError("x"), Exception)
