"""NumPy ufuncs generated from the scalar rules elementwise ops declare at registration.

An op's math is written once, in its ``register_op(..., scalar={...})`` line (see
``tinygrad_lstm.registry.ScalarRule``). ``rule_ufunc(op, key, dtype)`` turns one expression
of that rule into a NumPy ufunc with ``numba.vectorize``: for sigmoid's
``"dx": "g * y * (1 - y)"`` a ufunc ``f(g, y) = g * y * (1 - y)`` elementwise, broadcasting
and with ``out=`` like any ufunc. The cell compiler reads the same rules, so a composed op
and a compiled cell run the same math.

- ``key``: ``"y"`` (the forward) or ``"d<input>"`` (that input's derivative).
- Arguments: the names the expression reads, in this order: ``g``, the op's inputs in rule
  order, ``y``, then the op's attributes in registration order (``rule_arguments`` gives
  them). Attributes are passed as numbers, broadcast like any argument.
- dtype: one ufunc per dtype, its constants typed (ops/rule_source.py rewrites ``1`` into
  a float32 constant in a float32 kernel), so float32 arithmetic stays float32. A float16
  array runs the float32 kernel (its result is float32: the op casts it back).
- ``fast=True``: the one switch to an op's float32 fast variant, the same rule with
  ops/rule_source.py's ``FAST_FLOAT32`` substitution (the forward of sigmoid and tanh by
  ops/scalar_math.py's vectorizable float32 functions, a few ulps from libm), as the cell
  compiler's float32 kernels do. Elsewhere (another op, a derivative, float64) it changes
  nothing.
- NaN: ordered comparisons are generated quiet (ops/rule_source.py ``QUIET``), so comparing
  two values raises no invalid flag for NumPy to warn about. Where LLVM turns a compare and
  select against a constant into a max/min instruction (relu's ``0 if x < 0 else x``), that
  instruction still raises it at NaN: NumPy then warns, the values are the rule's.
- NUMBA_DISABLE_JIT=1: the ufunc is still compiled (``numba.vectorize`` ignores it), but
  calls none of our functions, which are plain Python then: the exact rule, plain compares.

Kernels are built on first use (importing tinygrad_lstm must not import numba). The
generated module is written by ops/kernel_cache.py under a name hashing its own text, which
holds the expression: an edited rule gives a new module, so no cached machine code of an
old rule can run. ``rule_source`` prints it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from tinygrad_lstm import op_info

from .kernel_cache import load_module
from .rule_source import FAST_FLOAT32, Module, names_in

__all__ = ["rule_arguments", "rule_source", "rule_ufunc"]

# (op, key, dtype, fast) -> (the ScalarRule it was made from, ufunc): re-registering an op
# with another rule makes a new ScalarRule, so the ufunc of the old one is never returned.
_BOUND: dict = {}
# Names of the generated module itself, which a rule's name must not shadow.
_RESERVED = {"math", "numba", "np", "kernel_functions", "register_jitable", "jit_helpers"}
_RESERVED.update(FAST_FLOAT32.values())


def _expression(op: str, key: str) -> str:
    """The text of ``key`` in op ``op``'s rule; ValueError naming the keys it has."""
    rule = op_info(op).scalar
    if rule is None:
        raise ValueError(f"rule_ufunc: op {op!r} declares no scalar rule (scalar= at register_op)")
    exprs = {"y": rule.forward, **{f"d{n}": e for n, e in zip(rule.inputs, rule.grads)}}
    expr = exprs.get(key)
    if expr is None:
        have = [k for k, e in exprs.items() if e is not None]
        raise ValueError(
            f"rule_ufunc: op {op!r} has no expression {key!r} in its rule; expected one of {have}"
        )
    return expr


def rule_arguments(op: str, key: str) -> tuple[str, ...]:
    """The ufunc's arguments: the names expression ``key`` of ``op``'s rule reads, as ``g``,
    the inputs (rule order), ``y``, the attributes (registration order)."""
    info = op_info(op)
    read = names_in(_expression(op, key))
    order = ["g", *info.scalar.inputs, "y", *info.attrs]
    arguments = tuple(name for name in order if name in read)
    if not arguments:
        raise ValueError(
            f"rule_ufunc: {op} {key} = {_expression(op, key)!r} reads no "
            f"argument (a ufunc needs one of {order})"
        )
    return arguments


def _kernel_dtype(dtype: DTypeLike) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype not in (np.float32, np.float64):
        raise TypeError(
            f"rule_ufunc: kernels are float32 or float64 (float16 runs the "
            f"float32 one), got {dtype}"
        )
    return dtype


def _function_name(op: str, key: str) -> str:
    """``sigmoid_dx``: the ufunc's ``__name__``, what NumPy's messages about it show."""
    name = f"{op}_{key}"
    return name if name.isidentifier() else f"rule_{key}"


def _jit_disabled() -> bool:
    """NUMBA_DISABLE_JIT=1: ``numba.vectorize`` compiles even then, but nothing can be
    compiled for the ufunc to call, so it calls no function of ours (neither the fast
    variant nor a quiet compare): the exact rule, comparing plainly."""
    import numba

    return bool(numba.config.DISABLE_JIT)


def _is_fast(op: str, key: str, dtype: np.dtype, fast: bool) -> bool:
    return (
        fast and key == "y" and op in FAST_FLOAT32 and dtype == np.float32 and not _jit_disabled()
    )


def rule_source(op: str, key: str, dtype: DTypeLike, fast: bool = False) -> str:
    """The text of the generated module behind ``rule_ufunc(op, key, dtype, fast)``: typed
    constants, then one ``numba.vectorize`` function named ``<op>_<key>``."""
    dtype = _kernel_dtype(dtype)
    expr, arguments = _expression(op, key), rule_arguments(op, key)
    shown = " ".join(expr.split())  # on one line: it is quoted in a comment and a docstring
    local = {
        name: name if name not in _RESERVED and not name.startswith("_") else f"arg_{name}"
        for name in arguments
    }
    module = Module(dtype, [], recurrent_helpers=False)
    if _is_fast(op, key, dtype, fast):
        (x,) = op_info(op).scalar.inputs
        v = local[x]
        # NaN passes through, kept out of the fast function, whose min, compare and
        # float-to-int steps would raise the invalid flag on it (and NumPy warn): == is a quiet
        # compare. (Testing _number == v, not v == v, stops LLVM from folding the guard away.)
        body = [
            f"_number = {v} if {v} == {v} else {module.zero}",
            f"return {FAST_FLOAT32[op]}(_number) if _number == {v} else {v}"
            f"  # the float32 fast variant of {shown}",
        ]
    else:
        style = "plain" if _jit_disabled() else "quiet"
        body = [f"return {module.rewrite(expr, local, ufunc=style)}"]
    kind = dtype.name
    signature = f"{kind}({', '.join([kind] * len(arguments))})"
    lines = [
        f'"""{op}: {key} = {shown}, in {kind}; generated from its scalar rule by '
        'tinygrad_lstm.ops.rule_ufuncs."""',
        "",
        *module.header(),
        "",
        "",
        f'@numba.vectorize(["{signature}"], cache=True)',
        f"def {_function_name(op, key)}({', '.join(local.values())}):",
        *(f"    {line}" for line in body),
    ]
    return "\n".join(lines) + "\n"


def rule_ufunc(op: str, key: str, dtype: DTypeLike, fast: bool = False) -> np.ufunc:
    """A NumPy ufunc computing expression ``key`` (``"y"`` or ``"d<input>"``) of op ``op``'s
    scalar rule elementwise in ``dtype`` (float16 runs in float32), built (or loaded from the
    on-disk cache) on first use; ``fast`` picks the float32 fast variant where there is one.

    For sigmoid, ``rule_ufunc("sigmoid", "dx", y.dtype)(g, y) = g * y * (1 - y)``.
    Arguments are ``rule_arguments(op, key)``, arrays of any shapes that broadcast together
    (attributes as scalars); the result has their broadcast shape, ``out=`` works."""
    rule = op_info(op).scalar
    bound = _BOUND.get((op, key, dtype, fast))
    if bound is not None and bound[0] is rule:
        return bound[1]
    kernel_dtype = _kernel_dtype(dtype)
    variant = "fast" if _is_fast(op, key, kernel_dtype, fast) else "exact"
    module = load_module(
        f"{_function_name(op, key)}_{kernel_dtype.name}_{variant}",
        rule_source(op, key, kernel_dtype, fast),
    )
    built = getattr(module, _function_name(op, key))
    # A DUFunc wrapper adds a per-call cost over the plain NumPy ufunc it holds.
    ufunc = getattr(built, "ufunc", built)
    _BOUND[(op, key, dtype, fast)] = (rule, ufunc)
    return ufunc
