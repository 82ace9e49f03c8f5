"""A straight-line program over registered ops: what ``programs()`` draws, as data and as code.

A ``Program`` is leaves (arrays that are the function's arguments; the ones that require
grad are what the gradients are taken with respect to), steps (one registered op each,
applied to earlier values, Python numbers and attributes) and outputs. Its ``source()`` is
Python a user can paste: a function ``program(x0, x1, ...)`` made of ``tg.op(name).apply``
calls, the leaves, and the check that failed. ``function()`` runs exactly that source, so
what is checked is what is printed. ``python_literal`` writes a value as Python that
rebuilds it (``cells()`` prints its cells with it too).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_lstm.tensor import Tensor

from .testing_report import OP_ATOL, OP_RTOL

__all__ = ["Leaf", "Number", "Program", "Step", "python_literal"]


def python_literal(value: Any) -> str:
    """``value`` (None, bool, int, float with inf/nan, str, slice, Ellipsis, a NumPy dtype,
    and tuples, lists and arrays of these) as Python source that evaluates to it, given
    ``import math`` and ``import numpy as np``; floats are written to round-trip exactly."""
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "math.nan"
        if math.isinf(v):
            return "math.inf" if v > 0 else "-math.inf"
        return repr(v)
    if value is Ellipsis:
        return "..."
    if isinstance(value, slice):
        parts = (value.start, value.stop, value.step)
        return f"slice({', '.join(python_literal(p) for p in parts)})"
    if isinstance(value, np.ndarray):
        body = python_literal(value.tolist())
        default = {"f": np.float64, "i": np.int64, "b": np.bool_}.get(value.dtype.kind)
        dtype = "" if value.dtype == default else f", dtype=np.{value.dtype.name}"
        return f"np.array({body}{dtype})"
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return f"np.{np.dtype(value).name}"
    if isinstance(value, tuple):
        items = [python_literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(python_literal(v) for v in value)}]"
    raise TypeError(f"python_literal: cannot write a {type(value).__name__} as Python: {value!r}")


@dataclass(frozen=True)
class Leaf:
    """An argument of the program: ``x<k>`` when it requires grad, ``c<k>`` (a constant,
    such as a mask) when not."""

    name: str
    array: np.ndarray
    requires_grad: bool


@dataclass(frozen=True)
class Number:
    """A Python number given to an op in place of a tensor (``2.0 - v0``)."""

    value: float


@dataclass(frozen=True)
class Step:
    """``outputs = tg.op(op).apply(*args, **attrs)``; an arg is a value's name or a Number."""

    op: str
    args: tuple[str | Number, ...]
    attrs: dict[str, Any]
    outputs: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]  # of the outputs
    multi: bool = False  # the op returns a tuple (split, unstack): unpacked into ``outputs``

    def call(self, module: str = "tg") -> str:
        args = [a if isinstance(a, str) else python_literal(a.value) for a in self.args]
        args += [f"{k}={python_literal(v)}" for k, v in self.attrs.items()]
        return f"{module}.op({self.op!r}).apply({', '.join(args)})"


@dataclass(frozen=True)
class Program:
    """A drawn program; ``source()`` (also its ``repr``, which hypothesis prints for a
    falsifying example) is the code that reproduces it."""

    leaves: tuple[Leaf, ...]
    steps: tuple[Step, ...]
    outputs: tuple[str, ...]
    rtol: float = OP_RTOL
    atol: float = OP_ATOL
    _compiled: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def ops(self) -> list[str]:
        """The ops the steps apply, in order."""
        return [s.op for s in self.steps]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every value's shape, by name."""
        shapes = {leaf.name: leaf.array.shape for leaf in self.leaves}
        for step in self.steps:
            shapes.update(zip(step.outputs, step.shapes))
        return shapes

    def function_source(self) -> str:
        """``def program(<leaves>): ...; return <outputs>`` on tinygrad_lstm tensors."""
        lines = [f"def program({', '.join(leaf.name for leaf in self.leaves)}):"]
        for step in self.steps:
            target = ", ".join(step.outputs) + (
                "," if step.multi and len(step.outputs) == 1 else ""
            )
            lines.append(f"    {target} = {step.call()}")
        lines.append(
            f"    return {', '.join(self.outputs)}" + ("," if len(self.outputs) == 1 else "")
        )
        return "\n".join(lines)

    def leaves_source(self, tensor: str = "tg.Tensor") -> str:
        """One line per leaf: ``x0 = tg.Tensor(np.array(...), requires_grad=True)``."""
        return "\n".join(
            f"{leaf.name} = {tensor}({python_literal(leaf.array)}"
            + (", requires_grad=True)" if leaf.requires_grad else ")")
            for leaf in self.leaves
        )

    def source(self, seed: int = 0) -> str:
        """The whole program and its gradient check (upstream gradients drawn from
        ``seed``), ready to paste and run."""
        names = ", ".join(leaf.name for leaf in self.leaves)
        return (
            "import math\n\nimport numpy as np\n\nimport tinygrad_lstm as tg\n"
            "from tinygrad_lstm.gradcheck import gradcheck\n\n\n"
            f"{self.function_source()}\n\n\n{self.leaves_source()}\n"
            f"gradcheck(program, {names}, rtol={self.rtol!r}, atol={self.atol!r}, seed={seed})\n"
        )

    def __repr__(self) -> str:
        return f"Program, as code:\n{self.source()}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # hypothesis prints a falsifying example with this (IPython's protocol), not repr.
        printer.text(repr(self))

    def function(self) -> Callable[..., tuple[Tensor, ...]]:
        """The program as a Python function, compiled from ``function_source()``."""
        if "fn" not in self._compiled:
            import tinygrad_lstm as tg

            scope: dict[str, Any] = {"tg": tg, "np": np, "math": math}
            exec(compile(self.function_source(), "<program>", "exec"), scope)  # noqa: S102
            self._compiled["fn"] = scope["program"]
        return self._compiled["fn"]

    def inputs(self) -> list[Tensor]:
        """Fresh leaf tensors (copies of the leaves' arrays), in argument order."""
        return [Tensor(leaf.array.copy(), requires_grad=leaf.requires_grad) for leaf in self.leaves]
