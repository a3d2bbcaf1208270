"""The exception family: users' errors vs bugs, and the diagnosis code each carries."""

import pytest

from bptt_check import errors
from bptt_check.errors import (
    BpttCheckError,
    BudgetExceeded,
    ChainError,
    CircularError,
    ConfigError,
    ExpressionError,
    FileFormatError,
    InternalError,
    LimitError,
    ParseError,
    ShapeError,
    UnknownNameError,
)


def test_an_internal_error_is_a_bug_not_a_user_error() -> None:
    assert not issubclass(InternalError, BpttCheckError)
    assert issubclass(InternalError, RuntimeError)
    with pytest.raises(InternalError):
        try:
            raise InternalError("the truths disagree", hint="report it")
        except BpttCheckError:  # a handler of users' mistakes lets it through
            pytest.fail("InternalError was caught as a user error")
    err = InternalError("the truths disagree", hint="report it")
    assert str(err) == "the truths disagree (hint: report it)"
    assert (err.message, err.hint) == ("the truths disagree", "report it")


def test_a_config_error_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="hidden_size"):
        raise ConfigError("hidden_size must be at least 1")
    assert issubclass(ConfigError, BpttCheckError)


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (BpttCheckError, "invalid"),
        (ConfigError, "invalid"),
        (FileFormatError, "invalid"),
        (ExpressionError, "invalid"),
        (ParseError, "parse_error"),
        (UnknownNameError, "unknown_name"),
        (ShapeError, "shape_error"),
        (ChainError, "chain_break"),
        (CircularError, "circular"),
        (LimitError, "limit"),
        (BudgetExceeded, "time_budget"),
        (InternalError, "internal_error"),
    ],
)
def test_every_error_class_carries_its_diagnosis_code(cls: type, code: str) -> None:
    assert cls.code == code


def test_every_public_error_is_exported_by_the_package() -> None:
    import bptt_check

    public = {name for name, value in vars(errors).items() if isinstance(value, type) and not name.startswith("_")}
    public = {name for name in public if issubclass(getattr(errors, name), Exception)}
    assert public <= set(bptt_check.__all__)


def test_an_expression_error_shows_its_column_and_a_caret() -> None:
    err = ParseError("unexpected ')'", text="h_1 + )", position=6, hint="remove it")
    assert str(err) == "unexpected ')' at column 7 (hint: remove it)"
    assert err.caret().splitlines()[1].index("^") == 2 + 6
