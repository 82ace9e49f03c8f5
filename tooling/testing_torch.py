"""The built-in ops in PyTorch's words, so a drawn ``Program`` can be rerun in torch.

``TORCH_OPS`` maps an op name to a function ``(operands, attrs, shapes) -> torch expression``
(operands are Python expressions; shapes the operands' shapes). ``torch_source(program)``
writes the program as a function on torch tensors, and ``run_in_torch`` runs it with the
same leaves and upstream gradients. A program using an op outside the table (a plugin's
op, a whole fused sequence layer) has no torch twin and is checked by central differences
only; a plugin author adds an entry to compare theirs. The table names only the built-in
ops' implementations (``tinygrad_lstm.ops``): a plugin that replaces one is not assumed to
keep PyTorch's meaning. torch is not a dependency: it is imported when a program is run in it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

import tinygrad_lstm as tg

from .testing_program import Program, python_literal

__all__ = ["TORCH_OPS", "TorchExpression", "run_in_torch", "torch_source", "torch_twin"]

# (operand expressions, attributes, operand shapes) -> one torch expression
TorchExpression = Callable[[list[str], dict[str, Any], list[tuple[int, ...]]], str]


def _dims(axis: Any, ndim: int) -> str:
    return python_literal(tuple(range(ndim)) if axis is None else axis)


def _reduction(fn: str) -> TorchExpression:
    return lambda a, k, s: (
        f"{fn}({a[0]}, dim={_dims(k['axis'], len(s[0]))}, keepdim={k['keepdims']})"
    )


def _call(fn: str, *names: str) -> TorchExpression:
    """``fn(operands..., name=attr...)`` for the attributes ``names``."""

    def expression(a: list[str], k: dict[str, Any], s: list) -> str:
        return f"{fn}({', '.join(a + [f'{n}={python_literal(k[n])}' for n in names])})"

    return expression


def _index(index: Any) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    written = [
        f"torch.tensor({python_literal(p.tolist())})"
        if isinstance(p, np.ndarray)
        else python_literal(p)
        for p in parts
    ]
    return ", ".join(written) + ("," if len(written) == 1 and isinstance(index, tuple) else "")


def _split(a: list[str], k: dict[str, Any], s: list) -> str:
    sections, axis = k["sections"], k["axis"]
    sizes = s[0][axis] // sections if isinstance(sections, int) else list(sections)
    return f"torch.split({a[0]}, {python_literal(sizes)}, dim={axis})"


def _transpose(a: list[str], k: dict[str, Any], s: list) -> str:
    axes = k["axes"] if k["axes"] is not None else tuple(reversed(range(len(s[0]))))
    return f"{a[0]}.permute({python_literal(tuple(axes))})"


def _cast(a: list[str], k: dict[str, Any], s: list) -> str:
    if k["dtype"] is None:
        return f"{a[0]}.clone()"
    return f"{a[0]}.to(torch.{np.dtype(k['dtype']).name})"


TORCH_OPS: dict[str, TorchExpression] = {
    "add": lambda a, k, s: f"({a[0]} + {a[1]})",
    "sub": lambda a, k, s: f"({a[0]} - {a[1]})",
    "mul": lambda a, k, s: f"({a[0]} * {a[1]})",
    "div": lambda a, k, s: f"({a[0]} / {a[1]})",
    "neg": lambda a, k, s: f"(-{a[0]})",
    "pow": lambda a, k, s: f"torch.pow({a[0]}, {python_literal(k['exponent'])})",
    **{n: _call(f"torch.{n}") for n in ("exp", "log", "sigmoid", "tanh", "relu", "abs")},
    "maximum": _call("torch.maximum"),
    "minimum": _call("torch.minimum"),
    "where": lambda a, k, s: f"torch.where({a[0]} != 0, {a[1]}, {a[2]})",
    "clip": _call("torch.clamp", "min", "max"),
    # F.hardsigmoid's backward multiplies by 1/6 rounded to float32 (3e-8 off in float64):
    # its definition, which torch differentiates in float64, is the twin.
    "hardsigmoid": lambda a, k, s: f"(torch.clamp({a[0]} + 3, 0, 6) / 6)",
    "hardtanh": _call("F.hardtanh", "min_val", "max_val"),
    "leaky_relu": _call("F.leaky_relu", "negative_slope"),
    "softplus": _call("F.softplus", "beta", "threshold"),
    "sum": _reduction("torch.sum"),
    "mean": _reduction("torch.mean"),
    "max": _reduction("torch.amax"),  # amax: ties share the gradient, as the max op does
    "logsumexp": _reduction("torch.logsumexp"),
    "softmax": lambda a, k, s: f"torch.softmax({a[0]}, dim={k['axis']})",
    "log_softmax": lambda a, k, s: f"torch.log_softmax({a[0]}, dim={k['axis']})",
    "matmul": lambda a, k, s: f"torch.matmul({a[0]}, {a[1]})",
    "concat": lambda a, k, s: f"torch.cat([{', '.join(a)}], dim={k['axis']})",
    "stack": lambda a, k, s: f"torch.stack([{', '.join(a)}], dim={k['axis']})",
    "unstack": lambda a, k, s: f"torch.unbind({a[0]}, dim={k['axis']})",
    "split": _split,
    "getitem": lambda a, k, s: f"{a[0]}[{_index(k['index'])}]",
    "reshape": lambda a, k, s: f"{a[0]}.reshape({python_literal(tuple(k['shape']))})",
    "transpose": _transpose,
    "cast": _cast,
}


def torch_twin(program: Program, table: dict[str, TorchExpression] | None = None) -> bool:
    """Whether every op of ``program`` has a torch expression in ``table`` (``TORCH_OPS``
    for the built-in implementations)."""
    return all(_expression(name, table) is not None for name in program.ops)


def _expression(name: str, table: dict[str, TorchExpression] | None) -> TorchExpression | None:
    if table is not None:
        return table.get(name)
    builtin = tg.op_info(name).fn.__module__.startswith("tinygrad_lstm.ops")
    return TORCH_OPS.get(name) if builtin else None


def torch_source(program: Program, table: dict[str, TorchExpression] | None = None) -> str:
    """``def program_torch(<leaves>): ...`` on torch tensors (needs ``torch`` and
    ``torch.nn.functional as F`` in scope)."""
    shapes = program.shapes()
    lines = [f"def program_torch({', '.join(leaf.name for leaf in program.leaves)}):"]
    for step in program.steps:
        operands = [
            a
            if isinstance(a, str)
            else f"torch.tensor({python_literal(a.value)}, dtype=torch.float64)"
            for a in step.args
        ]
        arg_shapes = [shapes[a] if isinstance(a, str) else () for a in step.args]
        text = _expression(step.op, table)(operands, step.attrs, arg_shapes)
        target = ", ".join(step.outputs) + ("," if step.multi and len(step.outputs) == 1 else "")
        lines.append(f"    {target} = {text}")
    lines.append(
        f"    return {', '.join(program.outputs)}" + ("," if len(program.outputs) == 1 else "")
    )
    return "\n".join(lines)


def run_in_torch(
    program: Program, upstream: list[np.ndarray], table: dict[str, TorchExpression] | None = None
) -> tuple[list[np.ndarray], dict[str, np.ndarray | None]]:
    """(outputs, gradient of sum(upstream * outputs) per leaf that requires grad) in torch."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - PyTorch's own spelling

    scope: dict[str, Any] = {"torch": torch, "F": F, "math": math}
    exec(compile(torch_source(program, table), "<program_torch>", "exec"), scope)  # noqa: S102
    leaves = [
        torch.tensor(leaf.array, dtype=torch.float64, requires_grad=leaf.requires_grad)
        for leaf in program.leaves
    ]
    outs = scope["program_torch"](*leaves)
    loss = sum((o * torch.from_numpy(v)).sum() for o, v in zip(outs, upstream))
    loss.backward()
    grads = {
        leaf.name: (None if t.grad is None else t.grad.numpy())
        for leaf, t in zip(program.leaves, leaves)
        if leaf.requires_grad
    }
    return [o.detach().numpy() for o in outs], grads
