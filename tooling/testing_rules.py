"""An elementwise op's scalar rule, evaluated element by element and held to the op itself.

A rule (``OpInfo.scalar``) is what code generators trust: the cell compiler emits kernels
from it, the ufunc builder too. ``rule_values`` evaluates it in plain Python on every
element (broadcast as the op broadcasts), and ``check_rule`` compares the value ``y`` and
every declared derivative with the op's own ``forward`` and ``backward``, so a rule that
says one thing while the op computes another fails ``check_op``.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from tinygrad_lstm.backward import unbroadcast
from tinygrad_lstm.registry import OpInfo, ScalarRule
from tinygrad_lstm.registry_records import SCALAR_FUNCTIONS
from tinygrad_lstm.tensor import Tensor

__all__ = ["RULE_ATOL", "RULE_RTOL", "check_rule", "rule_values"]

# A rule is the op's own math in other words: evaluated in Python (libm) against the op's
# NumPy/Numba arrays it agrees to a few ulps. Measured on every built-in rule (check_op,
# 100 cases each, all scales): the worst is 2e-16 relative; a wrong rule is off by O(1).
RULE_RTOL = 1e-12
RULE_ATOL = 1e-14

_FUNCTIONS: dict[str, Any] = {
    name: getattr(math, name, None) or getattr(builtins, name) for name in SCALAR_FUNCTIONS
}
_FUNCTIONS.update(abs=abs, min=min, max=max)


def _evaluate(expr: str, names: dict[str, float]) -> float:
    return eval(expr, {"__builtins__": {}}, {**_FUNCTIONS, **names})  # noqa: S307 - a rule


def rule_values(
    rule: ScalarRule, attrs: dict, arrays: list[np.ndarray], g: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """``(y, [d_input, ...])`` of ``rule`` at ``arrays`` (broadcast together) under the
    upstream gradient ``g``: arrays of the broadcast shape, None for an input without a
    derivative."""
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    xs = [np.broadcast_to(a, shape).ravel() for a in arrays]
    gs = np.broadcast_to(g, shape).ravel()
    ys, grads = [], [[] for _ in rule.inputs]
    for k in range(gs.size):
        names = {**attrs, **{n: float(x[k]) for n, x in zip(rule.inputs, xs)}}
        y = _evaluate(rule.forward, names)
        ys.append(y)
        for i, expr in enumerate(rule.grads):
            if expr is not None:
                grads[i].append(_evaluate(expr, {**names, "y": y, "g": float(gs[k])}))
    return (
        np.array(ys, dtype=np.float64).reshape(shape),
        [
            np.array(d, dtype=np.float64).reshape(shape) if e else None
            for d, e in zip(grads, rule.grads)
        ],
    )


def _differs(got: np.ndarray, want: np.ndarray) -> bool:
    return got.shape != want.shape or not np.allclose(
        got, want, rtol=RULE_RTOL, atol=RULE_ATOL, equal_nan=True
    )


def check_rule(info: OpInfo, attrs: dict, arrays: list[np.ndarray], seed: int) -> None:
    """``AssertionError`` naming the expression when ``info.scalar`` disagrees with the
    op's forward (``y``) or backward (each ``d<input>``) at ``arrays`` (float64)."""
    rule = info.scalar
    inputs = [Tensor(a.copy(), requires_grad=d is not None) for a, d in zip(arrays, rule.grads)]
    out = info.fn.apply(*inputs, **attrs)
    g = np.random.default_rng(seed).standard_normal(out.shape)
    y, grads = rule_values(rule, attrs, arrays, g)
    if _differs(out.data, y):
        raise AssertionError(
            f"{info.name}: its scalar rule y = {rule.forward} gives {y!r}, its forward "
            f"{out.data!r}; code generated from the rule would compute something else"
        )
    if not out.requires_grad:
        return
    out.backward(g)
    for i, (t, expr, d) in enumerate(zip(inputs, rule.grads, grads)):
        if d is None:
            continue
        want = unbroadcast(d, t.shape)
        got = np.zeros(t.shape) if t.grad is None else t.grad
        if _differs(got, want):
            raise AssertionError(
                f"{info.name}: its scalar rule d{rule.inputs[i]} = {expr} gives {want!r} "
                f"for input {i}, its backward {got!r} (upstream g drawn from seed {seed}); "
                "the fused kernels generated from the rule would train on other gradients"
            )
