"""The pytest plugin of bptt_check: the ``bptt_gradients`` fixture.

Installed with the package (entry point ``pytest11``), so any test can ask for
it without a conftest::

    def test_my_rnn(bptt_gradients):
        bptt_gradients.assert_gradients_match(
            my_gradients,
            bptt_gradients.models(convention="column", biases=True, loss_at="all", activation="sigmoid"),
            names="min-char-rnn",  # Wxh, Whh, Why, bh, by; or a dict {yours: ours}
        )

The fixture exposes :func:`~bptt_check.testing.assert_gradients_match`,
:func:`~bptt_check.testing.assert_backward_match`,
:func:`~bptt_check.testing.assert_step_gradients_match`, the strategies
(``models``, ``parameters``, ``sequences``, ``cases``), ``RNN`` and the name
presets ``MIN_CHAR_RNN_NAMES`` and ``TEXTBOOK_NAMES``.

Command-line options:

* ``--bptt-max-examples N`` runs every check of the fixture with N examples
  (whatever the test passes): fewer for a quick run, more for a thorough one;
* ``--bptt-seed S`` fixes hypothesis's randomness for the checks that pass no seed.

This module imports only pytest: bptt_check.testing (and with it jax and sympy)
is imported when a test first uses the fixture, so the plugin costs nothing in
test runs that do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from hypothesis.strategies import SearchStrategy

    from .model import RNN

__all__ = ["BpttGradients", "bptt_gradients"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bptt_check", "bptt_check: checking BPTT implementations")
    group.addoption(
        "--bptt-max-examples",
        type=int,
        default=None,
        metavar="N",
        help="run every bptt_gradients check with N hypothesis examples (overrides max_examples)",
    )
    group.addoption(
        "--bptt-seed",
        type=int,
        default=None,
        metavar="S",
        help="hypothesis seed for the bptt_gradients checks that pass none",
    )


class BpttGradients:
    """What the ``bptt_gradients`` fixture gives a test: the checks and strategies of :mod:`bptt_check.testing`.

    The checks take the same arguments as the functions they wrap; the
    command-line options ``--bptt-max-examples`` and ``--bptt-seed`` override
    ``max_examples`` and fill in a missing ``seed``.
    """

    def __init__(self, max_examples: int | None = None, seed: int | None = None) -> None:
        from . import testing
        from .model import RNN

        self._testing = testing
        self._max_examples = max_examples
        self._seed = seed
        self.RNN = RNN
        self.models = testing.models
        self.parameters = testing.parameters
        self.sequences = testing.sequences
        self.cases = testing.cases
        self.MIN_CHAR_RNN_NAMES = testing.MIN_CHAR_RNN_NAMES
        self.TEXTBOOK_NAMES = testing.TEXTBOOK_NAMES
        self.CS231N_NAMES = testing.CS231N_NAMES

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._max_examples is not None:
            kwargs["max_examples"] = self._max_examples
        if self._seed is not None and kwargs.get("seed") is None:
            kwargs["seed"] = self._seed
        return kwargs

    def assert_gradients_match(self, fn: Any, model: "RNN | SearchStrategy[RNN]", **kwargs: Any) -> None:
        """:func:`bptt_check.testing.assert_gradients_match` with the command-line options applied."""
        __tracebackhide__ = True  # a failure shows the user's test line and the report, not our frames
        self._testing.assert_gradients_match(fn, model, **self._options(kwargs))

    def assert_step_gradients_match(self, step_fn: Any, *args: Any, **kwargs: Any) -> None:
        """:func:`bptt_check.testing.assert_step_gradients_match` with the command-line options applied."""
        __tracebackhide__ = True
        self._testing.assert_step_gradients_match(step_fn, *args, **self._options(kwargs))

    def assert_backward_match(self, forward: Any, backward: Any, model: "RNN | SearchStrategy[RNN] | None" = None, **kwargs: Any) -> None:
        """:func:`bptt_check.testing.assert_backward_match` with the command-line options applied."""
        __tracebackhide__ = True
        self._testing.assert_backward_match(forward, backward, model, **self._options(kwargs))

    def __repr__(self) -> str:
        return f"<bptt_gradients max_examples={self._max_examples} seed={self._seed}>"


@pytest.fixture
def bptt_gradients(request: pytest.FixtureRequest) -> BpttGradients:
    """bptt_check's checks of a BPTT implementation: ``bptt_gradients.assert_gradients_match(fn, model, names=...)``.

    Also ``assert_step_gradients_match`` (CS231n's ``rnn_step_backward``), the
    hypothesis strategies ``models``, ``parameters``, ``sequences``, ``cases``
    and ``RNN``. Options: ``--bptt-max-examples N``, ``--bptt-seed S``.
    """
    config = request.config
    return BpttGradients(config.getoption("bptt_max_examples"), config.getoption("bptt_seed"))
