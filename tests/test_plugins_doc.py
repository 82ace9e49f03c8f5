"""docs/plugins.md, section 5: the JANET cell written with a plain ``forward`` and with the
split-step protocol computes the same thing, and ``Recurrent`` does use the split."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from tinygrad_lstm.layers import Recurrent

import tinygrad_lstm as tg
from tinygrad_lstm import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


@pytest.fixture
def janet():
    """The docs' code block, run as a reader would paste it; its cells unregistered after."""
    block = re.search(r"<!-- janet-cells:.*?-->\s*```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert block, "docs/plugins.md lost its JANET code block"
    saved = dict(registry._CELLS)
    namespace: dict = {}
    exec(compile(block.group(1), str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    yield namespace
    registry._CELLS.clear()
    registry._CELLS.update(saved)


def test_both_janets_are_registered_and_pass_the_generic_gradient_check(janet):
    from tinygrad_lstm.tooling.testing import assert_cell_gradients

    assert {"janet", "janet_split"} <= {c.name for c in tg.list_cells()}
    assert_cell_gradients("janet_split")


def test_split_and_plain_give_the_same_outputs_and_gradients(janet):
    rng = np.random.default_rng(0)
    plain = Recurrent("janet", 3, 5, dtype=np.float64, rng=rng)
    split = Recurrent("janet_split", 3, 5, dtype=np.float64)
    split.load_state_dict(plain.state_dict())
    x = rng.standard_normal((6, 2, 3))
    results = []
    for layer in (plain, split):
        out, h = layer(tg.Tensor(x))
        (out * out).sum().backward()
        results.append((out.data, h.data, {k: p.grad for k, p in layer.named_parameters()}))
    (out_a, h_a, g_a), (out_b, h_b, g_b) = results
    np.testing.assert_allclose(out_a, out_b, rtol=1e-12)
    np.testing.assert_allclose(h_a, h_b, rtol=1e-12)
    for name in g_a:
        np.testing.assert_allclose(g_a[name], g_b[name], rtol=1e-12, err_msg=name)


class CountingTranspose(tg.Parameter):
    """A parameter that counts how often ``.T`` is read (each read records a transpose)."""

    __slots__ = ()
    reads: ClassVar[list[int]] = []

    @property
    def T(self):
        CountingTranspose.reads.append(1)
        return super().T


def test_the_layer_projects_all_inputs_at_once_for_the_split_cell(janet):
    """What makes it faster: one input matmul per sequence, not one per step."""
    x = tg.Tensor(np.ones((7, 2, 3)))
    for name, expected in (("janet", 7), ("janet_split", 1)):
        layer = Recurrent(name, 3, 4, dtype=np.float64)
        CountingTranspose.reads.clear()
        layer.cell_l0.weight_ih = CountingTranspose(layer.cell_l0.weight_ih.data)
        layer(x)
        assert len(CountingTranspose.reads) == expected, (name, CountingTranspose.reads)
