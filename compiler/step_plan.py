"""What one time step of a compiled pass does, forward and backward, as a list of actions.

The same lists run inside a generated whole-pass driver (drivers.py: one Numba call per
pass, products by BLAS ``gemm`` or, without it, ``matmul_rows``) or in a Python loop over
BLAS calls (passes.py: variable lengths, and large steps where the drivers have no BLAS).

Forward, per stage: its kernel, then its matmuls, ``out = left @ W``. Backward, per stage
from the last: its matmuls' backward, ``d left (=|+=) d out @ W^T``, then its backward
kernel; first, the one-step gradient arrays that need it are zeroed (memory.py). After the
step the carried gradients swap: what the step wrote for the state it read is what the
step before receives for its new state.
"""

from __future__ import annotations

from dataclasses import dataclass

from .memory import Arg, Layout, Role
from .schedule import Schedule

__all__ = ["Action", "KernelCall", "Product", "Zero", "backward_actions", "forward_actions"]


@dataclass(frozen=True)
class KernelCall:
    """Call the generated stage function ``function`` (its arguments: Source.args)."""

    function: str


@dataclass(frozen=True)
class Product:
    """``out[out_at] (=, or += with add) left[left_at] @ rows^T``: ``rows`` holds the
    matrix as (N, K) rows, so the product reads each row once for several rows of left."""

    left: Arg
    left_at: str
    rows: Arg
    out: Arg
    out_at: str
    add: bool

    @property
    def matrix(self) -> Arg:
        """The matrix itself as (K, N) rows, the other of the two layouts: what BLAS reads
        (a transposed operand costs OpenBLAS 2-4x at these sizes)."""
        role = Role.WEIGHT_T if self.rows.role is Role.WEIGHT else Role.WEIGHT
        return Arg(role, self.rows.node)


@dataclass(frozen=True)
class Zero:
    """Zero the one-step array ``arg``."""

    arg: Arg


Action = KernelCall | Product | Zero


def _left(schedule: Schedule, m: int) -> tuple[int, str]:
    a = schedule.program.nodes[m].inputs[0]
    return a, ("tp" if schedule.program.nodes[a].kind == "state" else "t")


def forward_actions(schedule: Schedule, layout: Layout) -> list[Action]:
    """One forward step."""
    actions: list[Action] = []
    for s, kernel in enumerate(layout.kernels):
        if kernel is not None:
            actions.append(KernelCall(f"stage{s}_forward"))
        for m in schedule.matmuls[s]:
            a, at = _left(schedule, m)
            actions.append(
                Product(layout.value(a), at, Arg(Role.WEIGHT, m), Arg(Role.VALUE, m), "t", False)
            )
    return actions


def backward_actions(schedule: Schedule, layout: Layout) -> list[Action]:
    """One backward step (the carried gradients swap after it)."""
    actions: list[Action] = [Zero(arg) for arg in layout.zero_each_step]
    for s in range(len(layout.kernels) - 1, -1, -1):
        for m in schedule.matmuls[s]:
            a, at = _left(schedule, m)
            out, add = layout.grad(a, at), layout.adds[("matmul", m)]
            actions.append(Product(Arg(Role.GRAD, m), "t", Arg(Role.WEIGHT_T, m), out, at, add))
        if layout.kernels[s] is not None:
            actions.append(KernelCall(f"stage{s}_backward"))
    return actions
