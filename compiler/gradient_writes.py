"""How the backward writes gradients: stored or added, zeroed or not, and which arrays are one.

Nothing is zero-filled that the backward overwrites. Its writes run in a fixed order (the
stages from the last, each stage's matmuls before its kernel, the loops in order); the
first write to a range of a gradient array's columns stores (``=``), later ones add
(``+=``), and an array only some of whose columns are written, or that receives a sum over
its columns (a fixed column), is zeroed: once when it spans the pass, at each step when it
is one step's.

Two gradients that are the same numbers are one array: a hoisted row whose loads receive,
at every column, the adjoint a matmul's output receives (``x W + h U``: both get the
adjoint of the sum) shares that matmul's gradient array (``alias``); a parameter vector
added the same way has as its gradient the sum over steps and rows of that array
(``sums``), not a sum made inside the kernel.
"""

from __future__ import annotations

from collections import Counter

from .memory import Arg, Layout, Role, Space, WriteKey
from .schedule import Schedule

__all__ = ["plan_gradient_writes"]


def _signature(layout: Layout, arg: Arg) -> Counter:
    """The loads whose gradients go to ``arg``: (stage, loop, offset, fixed, adjoint owner)."""
    found: Counter = Counter()
    for kernel in layout.kernels:
        if kernel is None:
            continue
        for k, loop in enumerate(kernel.loops):
            owners = loop.adjoint_owners(layout.program)
            for loc in loop.locals:
                if loc.load and loc.takes_grad and Arg(Role.GRAD, loc.node) == arg:
                    found[(kernel.stage, k, loc.offset, loc.fixed, owners[loc.var])] += 1
    return found


def _share_gradients(layout: Layout) -> None:
    """``alias``: rows whose gradient a matmul's gradient is; ``sums``: vectors whose
    gradient is the sum over steps and rows of a matmul's or (unshared) row's."""
    program = layout.program
    lefts = {program.nodes[m].inputs[0] for m in program.leaves("matmul")}
    matmuls = [m for m in program.leaves("matmul") if m not in lefts]
    signatures = {m: _signature(layout, Arg(Role.GRAD, m)) for m in matmuls}

    def partner(i: int, candidates: list[int]) -> Arg | None:
        mine = _signature(layout, Arg(Role.GRAD, i))
        for m in candidates if mine else ():
            if program.nodes[m].width == program.nodes[i].width and signatures[m] == mine:
                return Arg(Role.GRAD, m)
        return None

    for i in program.leaves("row"):
        shared = partner(i, matmuls)
        if shared is not None:
            layout.alias[Arg(Role.GRAD, i)] = shared
    rows = [i for i in program.leaves("row") if Arg(Role.GRAD, i) not in layout.alias]
    signatures.update({i: _signature(layout, Arg(Role.GRAD, i)) for i in rows})
    for i in program.leaves("vector"):
        shared = partner(i, matmuls + rows)
        if shared is not None:
            layout.sums[Arg(Role.GRAD, i)] = shared


def _writes(layout: Layout, schedule: Schedule) -> list[tuple[WriteKey, Arg, tuple | None]]:
    """The backward's gradient writes of one step, in order: (key, array, columns or None
    for a sum over the loop's columns)."""
    program, out = layout.program, []
    for s in range(len(schedule.kernels) - 1, -1, -1):
        for m in schedule.matmuls[s]:
            a = program.nodes[m].inputs[0]
            at = "tp" if program.nodes[a].kind == "state" else "t"
            out.append((("matmul", m), layout.grad(a, at), (0, program.nodes[a].width)))
        kernel = layout.kernels[s]
        for loop in kernel.loops if kernel is not None else ():
            for loc in loop.locals:
                if not (loc.load and loc.takes_grad):
                    continue
                arg = Arg(Role.GRAD, loc.node)
                if arg in layout.alias or arg in layout.sums:
                    continue
                columns = None if loc.fixed else (loc.offset, loc.offset + loop.width)
                out.append((("kernel", s, loc.var), layout.grad(loc.node, loc.at), columns))
    return out


def _covers(columns: list[tuple[int, int]], width: int) -> bool:
    reach = 0
    for a, b in sorted(columns):
        if a > reach:
            return False
        reach = max(reach, b)
    return reach >= width


def _write_modes(layout: Layout, schedule: Schedule) -> None:
    """``adds``, ``zero_each_step``, ``zero_once`` from the order of the writes."""
    writes = _writes(layout, schedule)
    layout.written = {arg for _, arg, _ in writes}
    # Every state part's gradient is carried, written or not (a part the step ignores).
    carried = [Arg(Role.GRAD_PREV, s) for s in layout.program.states]
    for arg in dict.fromkeys([arg for _, arg, _ in writes] + carried):
        mine = [(key, columns) for key, a, columns in writes if a == arg]
        if arg.role is Role.GRAD and arg.node in layout.program.states:
            # The gradient of a new state part arrives filled (from the step after).
            layout.adds.update((key, True) for key, _ in mine)
            continue
        done: list[tuple[int, int]] = []
        messy = layout.space(arg) is Space.FIXED
        for key, columns in mine:
            if columns is None:
                messy = True
            elif all(columns[1] <= a or b <= columns[0] for a, b in done):
                layout.adds[key] = False
                done.append(columns)
            else:
                messy = messy or columns not in done
                layout.adds[key] = True
        if messy:
            layout.adds.update((key, True) for key, _ in mine)
        if messy or not _covers(done, layout.width(arg)):
            if layout.space(arg) is Space.ROWS:
                layout.zero_each_step.append(arg)
            else:
                layout.zero_once.add(arg)


def plan_gradient_writes(layout: Layout, schedule: Schedule) -> None:
    """Fill ``layout``'s ``alias``, ``sums``, ``adds``, ``written`` and zeroing lists."""
    _share_gradients(layout)
    _write_modes(layout, schedule)
