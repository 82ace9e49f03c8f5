"""What the registry records about each op and cell: ``OpInfo``, ``CellInfo``, ``ScalarRule``.

Split from ``registry.py``, which keeps the tables, the ``register_op``/``register_cell``
decorators, the lookups and plugin loading, and re-exports every name defined here. These are
the frozen records those decorators build from a plugin's metadata (and ``RegistryError``, for
metadata they cannot use); a generic property test or a code generator reads them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:  # the engine sits above the registry: its classes are only named here
    from .autograd import Function
    from .module import Module

__all__ = [
    "OP_KINDS",
    "SCALAR_FUNCTIONS",
    "CellInfo",
    "OpInfo",
    "OpKind",
    "RegistryError",
    "ScalarRule",
]

OpKind = Literal["elementwise", "reduction", "shape", "linalg", "loss", "fused", "other"]
OP_KINDS: tuple[str, ...] = get_args(OpKind)


class RegistryError(LookupError):
    """A name is unknown, taken already, or registered with unusable metadata."""


# Names a scalar rule may call, besides its inputs, ``y``, ``g`` and the op's attributes.
SCALAR_FUNCTIONS = ("exp", "log", "log1p", "expm1", "tanh", "sqrt", "abs", "min", "max")


@dataclass(frozen=True)
class ScalarRule:
    """An elementwise op's math on one element: its forward and one derivative per input.

    Declared at registration as one dict, e.g. for sigmoid
    ``{"y": "1 / (1 + exp(-x))", "dx": "g * y * (1 - y)"}``: ``"y"`` is the forward, each
    ``"d<name>"`` the gradient for input ``<name>`` (inputs in the order the keys give), in
    terms of the inputs, the output ``y``, the upstream gradient ``g`` and the op's
    attributes; ``None`` for an input that takes no gradient. Expressions are Python
    (``a if c else b`` included) over ``SCALAR_FUNCTIONS``. Code generators (the fused-cell
    compiler, the ufunc builder) read these; an op without one is not fused.
    """

    inputs: tuple[str, ...]
    forward: str
    grads: tuple[str | None, ...]

    @classmethod
    def parse(
        cls, op_name: str, rule: dict[str, str | None], arity: int | None, attrs: Sequence[str]
    ) -> ScalarRule:
        """Check and normalise a ``scalar=`` dict given to ``register_op``."""
        where = f"register_op({op_name!r}): scalar="
        if not isinstance(rule, dict) or not isinstance(rule.get("y"), str):
            raise RegistryError(
                f'{where} must be a dict with a "y" forward expression, got {rule!r}'
            )
        keys = [k for k in rule if k != "y"]
        if any(not (k.startswith("d") and k[1:].isidentifier()) for k in keys):
            raise RegistryError(f'{where} keys are "y" and "d<input>", got {list(rule)}')
        inputs = tuple(k[1:] for k in keys)
        if arity is None or len(inputs) != arity:
            raise RegistryError(
                f"{where} gives {len(inputs)} derivatives for an op of arity {arity}"
            )
        known = {*inputs, "y", "g", *attrs, *SCALAR_FUNCTIONS}
        for key, expr in rule.items():
            if expr is None and key != "y":
                continue
            try:
                code = compile(expr, f"<{op_name} {key}>", "eval")
            except (SyntaxError, TypeError) as exc:
                raise RegistryError(
                    f"{where} {key}: {expr!r} is not an expression: {exc}"
                ) from None
            unknown = sorted(set(code.co_names) - known)
            if unknown:
                raise RegistryError(
                    f"{where} {key}: {expr!r} uses unknown names {unknown} "
                    f"(known: inputs {list(inputs)}, y, g, attributes "
                    f"{list(attrs)}, functions {list(SCALAR_FUNCTIONS)})"
                )
        return cls(inputs, rule["y"], tuple(rule[k] for k in keys))


@dataclass(frozen=True)
class OpInfo:
    """What a generic test needs to know about an op, besides its code.

    - ``arity``: number of tensor inputs, or None for variadic ops (concat, stack).
    - ``kind``: one of ``OP_KINDS``.
    - ``domain``: open interval ``(low, high)`` valid for every input, or one interval per
      input, e.g. ``log`` has ``(0, inf)``.
    - ``avoid``: points where the op has a kink or a pole (relu at 0, div's denominator at 0);
      test values are kept at least ``margin`` away from them.
    - ``attrs``: attribute name -> the choices a test should try, e.g. ``{"axis": [0, -1]}``.
    - ``shapes``: ``shapes(dims, attrs) -> list of input shapes`` given a few small positive
      ints ``dims``; None for elementwise ops, whose tests draw broadcastable shapes.
    - ``n_inputs``: for variadic ops, how many inputs a test should pass.
    - ``differentiable``: False for ops with no gradient (comparisons).
    - ``scalar``: the op's ``ScalarRule`` (elementwise ops), or None: what makes it fusible.
    """

    name: str
    fn: type[Function]
    arity: int | None
    kind: OpKind
    domain: tuple = (-math.inf, math.inf)
    avoid: tuple[float, ...] = ()
    margin: float = 1e-2
    attrs: dict[str, list] = field(default_factory=dict)
    shapes: Callable[[Sequence[int], dict], list[tuple[int, ...]]] | None = None
    n_inputs: int | None = None
    differentiable: bool = True
    scalar: ScalarRule | None = None
    origin: str = "?"
    doc: str = ""

    def input_domain(self, i: int) -> tuple[float, float]:
        """The open interval valid for input ``i``."""
        if self.domain and isinstance(self.domain[0], (tuple, list)):
            return tuple(self.domain[i])
        return tuple(self.domain)


@dataclass(frozen=True)
class CellInfo:
    """A registered recurrent cell class and where it came from."""

    name: str
    cls: type[Module]
    origin: str = "?"
    doc: str = ""
