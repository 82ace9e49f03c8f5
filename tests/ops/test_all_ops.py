"""Every registered op, built-in or from an installed plugin, passes the generic property check.

The op list is read at collection time, so a new op (a third party's included) is covered
without a line of new test code.
"""

import pytest
from hypothesis import settings
from tinygrad_lstm.tooling.testing import assert_op_gradients

import tinygrad_lstm as tg


@pytest.mark.parametrize("name", [info.name for info in tg.list_ops()])
def test_op_passes_generic_checks(name):
    report = assert_op_gradients(name, max_examples=settings.default.max_examples)
    assert report.cases >= settings.default.max_examples
