"""What the registry records about each op and cell: ``OpInfo``, ``CellInfo``, ``ScalarRule``.

These are the frozen records that ``registry.py``'s ``register_op``/``register_cell`` build
from a plugin's metadata, checked as they are made (``RegistryError`` for metadata they
cannot use; a scalar rule is parsed as code here), and that a generic property test or a
code generator reads (the records are importable from ``registry.py`` too, which holds the
tables, the decorators, the lookups and plugin loading).
"""

from __future__ import annotations

import ast
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


# The functions a scalar rule may call, and how many arguments each takes. The registry owns
# this list; a code generator maps each name to its own code (ops/rule_source.py: to Numba).
SCALAR_FUNCTIONS: dict[str, int] = {
    "exp": 1,
    "log": 1,
    "log1p": 1,
    "expm1": 1,
    "tanh": 1,
    "sqrt": 1,
    "abs": 1,
    "min": 2,
    "max": 2,
}
# The syntax of a rule: arithmetic, comparisons, and/or/not, ``a if c else b``, calls.
_OPERATORS = (
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or,
    ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq,
)  # fmt: skip
_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Load)


def _rule_problem(tree: ast.Expression, names: set[str]) -> str | None:
    """What makes ``tree`` no scalar rule over the variables ``names``, or None: every node
    is one of the syntax above, a call of a listed function (not shadowed by a variable), a
    variable of ``names`` or a finite int or float constant."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func.id if isinstance(node.func, ast.Name) else None
            if func not in SCALAR_FUNCTIONS or func in names:
                return f"calls {ast.unparse(node.func)}, not one of {list(SCALAR_FUNCTIONS)}"
            if node.keywords or len(node.args) != SCALAR_FUNCTIONS[func]:
                return f"calls {func} with other than {SCALAR_FUNCTIONS[func]} plain argument(s)"
            if any(isinstance(a, ast.Starred) for a in node.args):
                return f"unpacks arguments into {func}"
        elif isinstance(node, ast.Name):
            if node.id not in names and node.id not in SCALAR_FUNCTIONS:
                return f"reads {node.id!r}, not one of {sorted(names)}"
        elif isinstance(node, ast.Constant):
            value = node.value
            if type(value) not in (int, float):
                return f"holds the constant {value!r} ({type(value).__name__}), not a number"
            if not math.isfinite(value):
                return f"holds the constant {value!r}, not a finite number"
        elif not isinstance(node, _NODES + _OPERATORS):
            return f"uses {type(node).__name__} ({ast.unparse(node)!r}), not rule syntax"
    # A function name is only called: read as a value it would mean nothing.
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in names and id(node) not in called:
            return f"reads the function {node.id} as a value"
    return None


@dataclass(frozen=True)
class ScalarRule:
    """An elementwise op's math on one element: its forward and one derivative per input.

    Declared at registration as one dict, e.g. for sigmoid
    ``{"y": "1 / (1 + exp(-x))", "dx": "g * y * (1 - y)"}``: ``"y"`` is the forward, each
    ``"d<name>"`` the gradient for input ``<name>`` (inputs in the order the keys give), in
    terms of the inputs, the output ``y``, the upstream gradient ``g`` and the op's
    attributes; ``None`` for an input that takes no gradient. The forward reads the inputs
    and attributes only.

    A rule is one Python expression, parsed as code at registration: numbers, those names,
    ``+ - * / **``, comparisons, ``and or not``, ``a if c else b`` and calls of
    ``SCALAR_FUNCTIONS``; anything else (a string, an attribute, a subscript, a lambda...)
    is refused. Code generators (the fused-cell compiler, the ufunc builder) read these; an
    op without one is not fused.
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
        if any(not (isinstance(k, str) and k[:1] == "d" and k[1:].isidentifier()) for k in keys):
            raise RegistryError(f'{where} keys are "y" and "d<input>", got {list(rule)}')
        inputs = tuple(k[1:] for k in keys)
        if arity is None or len(inputs) != arity:
            raise RegistryError(
                f"{where} gives {len(inputs)} derivatives for an op of arity {arity}"
            )
        clash = sorted(({*inputs} & {*attrs}) | ({*inputs, *attrs} & {"y", "g"}))
        if clash:
            raise RegistryError(
                f"{where} names {clash} are taken (inputs {list(inputs)}, attributes "
                f"{list(attrs)}; y and g are the output and the upstream gradient)"
            )
        forward_names = {*inputs, *attrs}
        for key, expr in rule.items():
            if expr is None and key != "y":
                continue
            problem = "is not a string"
            if isinstance(expr, str):
                try:
                    tree = ast.parse(expr, mode="eval")
                except SyntaxError as exc:
                    problem = f"is not an expression: {exc.msg}"
                else:
                    names = forward_names if key == "y" else {*forward_names, "y", "g"}
                    problem = _rule_problem(tree, names)
            if problem is not None:
                raise RegistryError(f"{where} {key}: {expr!r} {problem}")
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
