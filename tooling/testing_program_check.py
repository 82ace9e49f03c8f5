"""The property a drawn ``Program`` must satisfy: its gradients are right.

``check_program(program)``:

0. backward gives no ``.grad`` to a leaf that does not require grad;
1. where torch is installed and every op of the program has a torch twin
   (``testing_torch``), the outputs and the gradient of ``sum(v * outputs)`` for every
   leaf, under a random upstream ``v``, equal torch's in float64 (``TORCH_RTOL``,
   ``TORCH_ATOL``);
2. the program is differentiable at its leaves (``kinks`` finds none) and no op of it sits
   on a kink of its own (``ties``: a tie of maximum, a bound of clip); a program that is
   not is no counterexample, as central differences mean nothing on a kink: inside a
   hypothesis test it is discarded (``hypothesis.assume``), outside one ``NotComparableError``
   is raised;
3. backward equals float64 central differences (``tinygrad_lstm.gradcheck``) at the
   library's tolerances, ``OP_RTOL`` / ``OP_ATOL``.

A failure raises ``AssertionError`` whose message is the program as code to paste.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from tinygrad_lstm.gradcheck import GradcheckError, gradcheck
from tinygrad_lstm.recording import recording
from tinygrad_lstm.registry import OPS, op_info
from tinygrad_lstm.tensor import Tensor

from .testing_program import Program
from .testing_report import discard_unless
from .testing_torch import TorchExpression, run_in_torch, torch_source, torch_twin

__all__ = [
    "KINK_STEP",
    "TORCH_ATOL",
    "TORCH_RTOL",
    "check_program",
    "compare_with_torch",
    "kinks",
    "ties",
]

# Measured on drawn programs of the built-in ops (check_program, 2,000 examples): outputs
# and gradients agree with torch to 4e-15 relative; a wrong backward is off by O(1).
TORCH_RTOL = 1e-10
TORCH_ATOL = 1e-12
# One-sided differences of this step find a kink (a jump in the slope) within it.
KINK_STEP = 1e-5


def _loss(fn: object, inputs: list[Tensor], upstream: list[np.ndarray]) -> float:
    return float(sum(np.sum(o.data * v) for o, v in zip(fn(*inputs), upstream)))


def kinks(program: Program, seed: int = 0) -> list[str]:
    """The leaf elements near which ``program`` is not differentiable, as ``"x0[1, 2]"``.

    Along each element, with L = sum(v * outputs) and h = ``KINK_STEP``, the second
    difference J(h) = (L(x+h) - 2 L(x) + L(x-h)) / h is h L'' for a smooth L but the jump
    s of the slope at a kink within h; so J(h) - 2 J(h/2) is O(h^3) where L is smooth and
    about s where it is not. A kink counts when s could move a central difference by more
    than the gradient check allows.
    """
    fn, inputs = program.function(), program.inputs()
    rng = np.random.default_rng(seed)
    with_grad = [(leaf, t) for leaf, t in zip(program.leaves, inputs) if leaf.requires_grad]
    upstream = [rng.standard_normal(o.shape) for o in fn(*inputs)]
    centre, h, found = _loss(fn, inputs, upstream), KINK_STEP, []
    for leaf, t in with_grad:
        x = t.data
        for at in np.ndindex(x.shape):
            old = x[at]
            second = []
            for step in (h, h / 2):
                x[at] = old + step
                plus = _loss(fn, inputs, upstream)
                x[at] = old - step
                minus = _loss(fn, inputs, upstream)
                second.append((plus - 2 * centre + minus) / step)
                slope = (plus - minus) / (2 * step)
            x[at] = old
            allowed = 2 * (program.atol + program.rtol * abs(slope))
            if abs(second[0] - 2 * second[1]) > allowed:
                found.append(f"{leaf.name}[{', '.join(map(str, at))}]")
    return found


class _Calls:
    """A recorder (``tinygrad_lstm.recording``) keeping each op call's arrays."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[np.ndarray], dict]] = []

    def op(self, fn: type, inputs: tuple, attrs: dict, out: object) -> None:
        name = getattr(fn, "op_name", fn.__name__)
        self.calls.append((name, [t._data for t in inputs], attrs))

    def value_read(self, tensor: Tensor, how: str) -> None:
        pass


def _at_kink(name: str, arrays: list[np.ndarray], attrs: dict) -> bool:
    """True when op ``name`` meets one of its kinks at some element of ``arrays``: a tie
    of maximum/minimum or of a max reduction, a bound of clip/hardtanh, a point the op's
    registration avoids."""
    if name in ("maximum", "minimum"):
        return bool(np.any(arrays[0] == arrays[1]))
    if name == "max":
        x, axis = arrays[0], attrs.get("axis")
        return bool(np.any(np.sum(x == np.max(x, axis=axis, keepdims=True), axis=axis) > 1))
    bounds = {"clip": ("min", "max"), "hardtanh": ("min_val", "max_val")}.get(name, ())
    points = [attrs[b] for b in bounds if attrs.get(b) is not None]
    if name in OPS and not bounds:
        points += list(op_info(name).avoid)
    return any(bool(np.any(a == p)) for a in arrays[-1:] if a.dtype.kind == "f" for p in points)


def ties(program: Program) -> list[str]:
    """The ops of ``program`` that meet a kink of their own at some element (``_at_kink``),
    as ``"maximum (op 3)"``. There the program may be smooth while autograd follows the op's
    convention at the kink (a tie's gradient to one side): no counterexample either."""
    recorder = _Calls()
    with recording(recorder):
        program.function()(*program.inputs())
    return [
        f"{name} (op {k})"
        for k, (name, arrays, attrs) in enumerate(recorder.calls)
        if _at_kink(name, arrays, attrs)
    ]


def _our_gradients(
    program: Program, upstream: list[np.ndarray]
) -> tuple[list[np.ndarray], dict[str, np.ndarray | None]]:
    """(outputs, gradient per leaf that requires grad) from one backward of
    sum(upstream * outputs); a leaf that does not require grad must get no ``.grad``."""
    inputs = program.inputs()
    outs = program.function()(*inputs)
    loss = None
    for o, v in zip(outs, upstream):
        if o.requires_grad:
            term = (o * Tensor(v)).sum()
            loss = term if loss is None else loss + term
    loss.backward()
    for leaf, t in zip(program.leaves, inputs):
        if not leaf.requires_grad and t.grad is not None:
            raise AssertionError(
                f"program: {leaf.name} does not require grad, yet backward gave it a .grad"
                f"\n\n{program.source()}"
            )
    grads = {leaf.name: t.grad for leaf, t in zip(program.leaves, inputs) if leaf.requires_grad}
    return [o.data for o in outs], grads


def _upstream(program: Program, seed: int) -> list[np.ndarray]:
    rng, shapes = np.random.default_rng(seed), program.shapes()
    return [rng.standard_normal(shapes[name]) for name in program.outputs]


def compare_with_torch(
    program: Program, seed: int = 0, torch_ops: dict[str, TorchExpression] | None = None
) -> None:
    """Step 1 of ``check_program``: outputs and leaf gradients equal torch's (torch must be
    installed and every op of the program have a twin in ``torch_ops``)."""
    table, shapes = torch_ops, program.shapes()
    upstream = _upstream(program, seed)
    ours, our_grads = _our_gradients(program, upstream)
    theirs, their_grads = run_in_torch(program, upstream, table)
    pairs = [(f"output {name}", a, b) for name, a, b in zip(program.outputs, ours, theirs)]
    for name, g in our_grads.items():
        t = their_grads[name]
        zeros = np.zeros(shapes[name])
        pairs.append((f"gradient of {name}", zeros if g is None else g, zeros if t is None else t))
    for what, a, b in pairs:
        if a.shape != b.shape or not np.allclose(a, b, rtol=TORCH_RTOL, atol=TORCH_ATOL):
            raise AssertionError(
                f"program: {what} differs from torch's (rtol {TORCH_RTOL}, atol {TORCH_ATOL})"
                f"\nours:  {np.array2string(np.asarray(a), precision=17)}"
                f"\ntorch: {np.array2string(np.asarray(b), precision=17)}"
                f"\n(upstream v: numpy.random.default_rng({seed}).standard_normal per output)"
                f"\n\n{program.source(seed)}\n\n# in torch:\n{torch_source(program, table)}\n"
            )


def check_program(
    program: Program,
    torch: bool | None = None,
    torch_ops: dict[str, TorchExpression] | None = None,
    seed: int = 0,
) -> float:
    """Check ``program`` (see the module docstring); returns the worst relative error
    against central differences. ``torch``: compare with torch (None: when installed and
    the program's ops all have a torch twin in ``torch_ops``, by default ``TORCH_OPS``).
    A program that is not differentiable at its leaves is discarded (``discard_unless``)."""
    if torch is None:
        torch = importlib.util.find_spec("torch") is not None and torch_twin(program, torch_ops)
    if torch:
        compare_with_torch(program, seed, torch_ops)
    else:
        _our_gradients(program, _upstream(program, seed))
    near = kinks(program, seed) + ties(program)
    discard_unless(not near, f"program: not differentiable near {', '.join(near)}")
    names = [leaf.name for leaf in program.leaves]
    try:
        result = gradcheck(
            program.function(),
            *program.inputs(),
            rtol=program.rtol,
            atol=program.atol,
            seed=seed,
            names=names,
        )
    except GradcheckError as exc:
        raise AssertionError(f"program: {exc}\n\n{program.source(seed)}") from None
    return result.worst_rel_error
