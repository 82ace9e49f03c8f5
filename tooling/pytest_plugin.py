"""pytest fixtures for plugin authors, registered through the ``pytest11`` entry point.

Installing tinygrad-lstm makes these fixtures available to every test suite, so a plugin
package's tests need no conftest.py::

    def test_my_op(assert_op_gradients):
        assert_op_gradients("softsign")            # hypothesis-drawn cases, float64 gradcheck

    def test_my_cell(assert_cell_gradients):
        assert_cell_gradients("indrnn")            # drawn layers of the cell, compiled too

    def test_what_i_register(registered_by):
        assert registered_by("my-distribution") == (["softsign"], ["indrnn"])

Importing this module has no other effect: tinygrad_lstm (and with it every plugin) is
imported only when a test asks for one of these fixtures. Disable with ``-p no:tinygrad_lstm``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

__all__ = ["assert_cell_gradients", "assert_op_gradients", "registered_by"]


@pytest.fixture
def assert_op_gradients() -> Callable:
    """``tinygrad_lstm.testing.assert_op_gradients(name, max_examples=25, seed=0)``: checks a
    registered op on hypothesis-drawn inputs (gradients against central differences in
    float64, dtype preservation, inputs left as drawn, graph freed, and a declared scalar
    rule against forward and backward); raises ``AssertionError`` naming the failing case,
    returns a ``CheckReport`` otherwise."""
    from tinygrad_lstm.tooling.testing import assert_op_gradients as check

    return check


@pytest.fixture
def assert_cell_gradients() -> Callable:
    """``tinygrad_lstm.testing.assert_cell_gradients(cell, **options)``: on hypothesis-drawn
    configurations of a sequence layer built from a registered cell (sizes, layers,
    directions, lengths, initial state), gradchecks it with respect to every parameter, the
    input and the initial state, and compares its compiled layer with the composed one;
    raises ``AssertionError`` naming the case and what is wrong."""
    from tinygrad_lstm.tooling.testing import assert_cell_gradients as check

    return check


@pytest.fixture
def registered_by() -> Callable[[str], tuple[list[str], list[str]]]:
    """``registered_by(distribution) -> (op names, cell names)`` that the installed
    distribution registered through its ``tinygrad_lstm.plugins`` entry points, sorted."""
    import tinygrad_lstm as tg

    def names(distribution: str) -> tuple[list[str], list[str]]:
        def mine(origin: str) -> bool:
            return origin.split(":")[0] == distribution

        return (
            [i.name for i in tg.list_ops() if mine(i.origin)],
            [c.name for c in tg.list_cells() if mine(c.origin)],
        )

    return names
