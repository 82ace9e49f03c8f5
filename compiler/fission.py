"""Loop fission at the float32 fast sigmoid/tanh of a generated forward kernel.

One column loop that computes everything of a stage does not vectorize: it reads and
writes too many arrays for LLVM's runtime alias checks, so each fast sigmoid/tanh runs one
lane at a time. The hand-written kernels this replaced ran each activation as its own pass
over a row, in place; this does the same to a generated loop. Every scalar of the loop
gets a *depth*, the number of fast activations on its path from the loads; sub-loop k
computes the scalars of depth k, and before it each activation of depth k runs as one
vectorized pass over its *home*, a row that sub-loop k - 1 filled with its argument:

    for j: ... S_t_0[j] = x2              (sub-loop 0: the argument of x3 = sigmoid(x2))
    for j: S_t_0[j] = sigmoid_fast(S_t_0[j])    (the pass)
    for j: x3 = S_t_0[j] ...              (sub-loop 1)

A scalar's home is where it is written anyway (a target, or its slot among the saved
values), else a scratch row: so an activation the backward reads is computed in place in
its saved slot, as the hand-written kernels did. A scalar of an earlier sub-loop that a
later one reads goes through its home too; loads, and what is computed from loads alone,
are simply read and computed again.
"""

from __future__ import annotations

from collections.abc import Callable

from .kernel_ir import Local, Loop

__all__ = ["fissioned_loop"]


class _SubLoops:
    """The scalars of one loop by depth, and the sub-loop bodies that compute them."""

    def __init__(
        self,
        loop: Loop,
        value: Callable[[Local], str],
        fast: dict[str, str],
        home: Callable[[str], str],
    ):
        self.by_var = {loc.var: loc for loc in loop.locals}
        self.value, self.fast, self.home = value, fast, home
        self.depth: dict[str, int] = {}
        # Scalars of loads alone (x + b): cheaper to compute again than to keep in a row.
        self.of_loads: set[str] = set()
        for loc in loop.locals:
            below = max((self.depth[v] for v in loc.operands if v in self.depth), default=0)
            self.depth[loc.var] = below + (loc.var in fast)
            if loc.load or (
                loc.var not in fast
                and all(not isinstance(v, str) or v in self.of_loads for v in loc.operands)
            ):
                self.of_loads.add(loc.var)
        self.stored: set[str] = set()  # scalars a deeper sub-loop reads from their home
        # The element an activation's pass reads, where not its home: its argument's first
        # store, when the argument is written elsewhere anyway (c_t, then tanh(c_t)).
        self.sources: dict[str, str] = {}

    def ensure(self, var: str, k: int, done: set, body: list) -> None:
        """Append to ``body`` (sub-loop ``k``) what computes ``var``, operands first."""
        if var not in self.by_var or var in done:
            return
        loc = self.by_var[var]
        done.add(var)
        if loc.load:
            body.append(f"{var} = {self.value(loc)}")
        elif var in self.fast or (self.depth[var] < k and var not in self.of_loads):
            if var not in self.fast:
                self.stored.add(var)
            body.append(f"{var} = {self.home(var)}")
        else:
            for operand in loc.operands:
                if isinstance(operand, str):
                    self.ensure(operand, k, done, body)
            body.append(f"{var} = {self.value(loc)}")

    def stores(self, k: int, writes: list[tuple[str, str]], constant: Callable) -> list:
        """Sub-loop ``k``'s stores, (scalar or constant text, element): its writes, the
        arguments of depth-k+1 activations, and the scalars a deeper sub-loop reads back
        from their home."""
        homed = self.stored | set(self.fast)
        found = [
            (var, where)
            for var, where in writes
            if self.depth.get(var, 0) == k and not (var in homed and where == self.home(var))
        ]
        for var in self.fast:
            if self.depth[var] == k + 1:
                argument = self.by_var[var].operands[0]
                if not isinstance(argument, str):
                    argument = constant(argument.value)
                found.append((argument, self.home(var)))
        found += [
            (var, self.home(var))
            for var in sorted(self.stored)
            if self.depth[var] == k and var not in self.fast
        ]
        return found

    def bodies(self, k: int, writes: list[tuple[str, str]], constant: Callable) -> list:
        """Sub-loop ``k`` as loop bodies. Without fast activations (float64), one loop of all
        its stores. With them (float32), one loop per store, each computing again what it
        needs: a loop that writes one row vectorizes, one that writes several has too many
        pairs of rows for LLVM's run-time alias checks and runs a lane at a time. A scalar
        stored twice is computed once, and copied from its first element (or, as an
        activation's argument, read from there by the activation's pass)."""
        stores = self.stores(k, writes, constant)
        if not self.fast:
            done: set = set()
            body: list = []
            for var, where in stores:
                self.ensure(var, k, done, body)
                body.append(f"{where} = {var}")
            return [body] if body else []
        first: dict[str, str] = {}
        loops = []
        for var, where in stores:
            if var not in first:
                body = []
                self.ensure(var, k, set(), body)
                loops.append([*body, f"{where} = {var}"])
                first[var] = where
                continue
            reader = self._activation_at(k + 1, var, where)
            # (Not from an element that an activation's pass overwrites in place.)
            if reader is None or any(first[var] == self.home(f) for f in self.fast):
                loops.append([f"{where} = {first[var]}"])
            else:
                self.sources[reader] = first[var]
        return loops

    def _activation_at(self, depth: int, argument: str, home: str) -> str | None:
        """The fast activation of ``depth`` whose argument is ``argument`` and whose home is
        ``home``, if any."""
        for var in self.fast:
            loc = self.by_var[var]
            if self.depth[var] == depth and loc.operands[0] == argument and self.home(var) == home:
                return var
        return None


def fissioned_loop(
    loop: Loop,
    value: Callable[[Local], str],
    fast: dict[str, str],
    home: Callable[[str], str],
    writes: list[tuple[str, str]],
    width: str,
    constant: Callable[[float], str],
) -> list[str]:
    """The lines (inside ``for b``) of ``loop`` split at its fast activations.

    ``value(local)`` is a local's right-hand side; ``fast`` maps a fast local's var to the
    function name; ``home(var)`` is the element (``row[j]``) a scalar is kept in between
    sub-loops; ``writes`` are (var, element) stores of the loop (targets and saves), each
    placed in the sub-loop that computes its var. Without fast activations this is one
    loop."""
    sub = _SubLoops(loop, value, fast, home)
    deepest = max(sub.depth.values(), default=0)
    # Deepest first: a sub-loop may mark scalars of shallower ones as stored.
    bodies = {k: sub.bodies(k, writes, constant) for k in range(deepest, -1, -1)}
    lines = []
    for k in range(deepest + 1):
        for var, function in fast.items():
            if sub.depth[var] == k and k > 0:
                element = home(var)
                lines += [
                    f"        for j in range({width}):",
                    f"            {element} = {function}({sub.sources.get(var, element)})",
                ]
        for body in bodies[k]:
            lines.append(f"        for j in range({width}):")
            lines += [f"            {line}" for line in body]
    return lines
