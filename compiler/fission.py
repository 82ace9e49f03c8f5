"""Loop fission at the float32 fast sigmoid/tanh of a generated forward kernel.

One column loop that computes everything of a stage does not vectorize: it reads and
writes too many arrays for LLVM's runtime alias checks, so each fast sigmoid/tanh runs one
lane at a time. The hand-written kernels run each activation as its own pass over a row,
in place; this does the same to a generated loop. Every scalar of the loop gets a *depth*,
the number of fast activations on its path from the loads; sub-loop k computes the scalars
of depth k, and before it each activation of depth k runs as one vectorized pass over a
scratch row that sub-loop k - 1 filled with its argument:

    for j: ... w3[j] = x2                 (sub-loop 0: the argument of x3 = sigmoid(x2))
    for j: w3[j] = sigmoid_fast(w3[j])    (the pass)
    for j: x3 = w3[j] ...                 (sub-loop 1)

A scalar of an earlier sub-loop that a later one reads goes through a scratch row too;
loads are simply read again.
"""

from __future__ import annotations

from collections.abc import Callable

from .kernel_ir import Local, Loop

__all__ = ["fissioned_loop"]


class _SubLoops:
    """The scalars of one loop by depth, and the sub-loop bodies that compute them."""

    def __init__(self, loop: Loop, value: Callable[[Local], str], fast: dict):
        self.by_var = {loc.var: loc for loc in loop.locals}
        self.value, self.fast = value, fast
        self.depth: dict[str, int] = {}
        for loc in loop.locals:
            below = max((self.depth[v] for v in loc.operands if v in self.depth), default=0)
            self.depth[loc.var] = below + (loc.var in fast)
        self.stored: set[str] = set()

    def ensure(self, var: str, k: int, done: set, body: list) -> None:
        """Append to ``body`` (sub-loop ``k``) what computes ``var``, operands first."""
        if var not in self.by_var or var in done:
            return
        loc = self.by_var[var]
        done.add(var)
        if loc.load:
            body.append(f"{var} = {self.value(loc)}")
        elif var in self.fast and self.depth[var] <= k:
            body.append(f"{var} = w{var}[j]")
        elif self.depth[var] < k:
            self.stored.add(var)
            body.append(f"{var} = w{var}[j]")
        else:
            for operand in loc.operands:
                if not isinstance(operand, str):
                    continue
                self.ensure(operand, k, done, body)
            body.append(f"{var} = {self.value(loc)}")

    def body(self, k: int, writes: list[tuple[str, str]]) -> list[str]:
        """Sub-loop ``k``: its stores, the arguments of depth-k+1 activations, and the
        scalars a deeper sub-loop reads back from a scratch row."""
        done: set = set()
        body: list = []
        for var, statement in writes:
            if self.depth.get(var, 0) == k:
                self.ensure(var, k, done, body)
                body.append(statement)
        for var in self.fast:
            if self.depth[var] == k + 1:
                argument = self.by_var[var].operands[0]
                self.ensure(argument, k, done, body)
                body.append(f"w{var}[j] = {argument}")
        for var in sorted(self.stored):
            if self.depth[var] == k and not self.by_var[var].load and var not in self.fast:
                self.ensure(var, k, done, body)
                body.append(f"w{var}[j] = {var}")
        return body


def fissioned_loop(
    loop: Loop,
    value: Callable[[Local], str],
    fast: dict,
    width: str,
    dtype: str,
    writes: list[tuple[str, str]],
) -> tuple[list[str], list[str]]:
    """(scratch allocations, loop lines) of ``loop`` split at its fast activations.

    ``value(local)`` is a local's right-hand side; ``fast`` maps a fast local's var to the
    function name; ``writes`` are (var, statement) stores of the loop (targets and saves),
    each placed in the sub-loop that computes its var."""
    sub = _SubLoops(loop, value, fast)
    deepest = max(sub.depth.values(), default=0)
    # Deepest first: a sub-loop may mark scalars of shallower ones as stored.
    bodies = {k: sub.body(k, writes) for k in range(deepest, -1, -1)}
    lines = []
    for k in range(deepest + 1):
        for var, function in fast.items():
            if sub.depth[var] == k and k > 0:
                lines += [
                    f"        for j in range({width}):",
                    f"            w{var}[j] = {function}(w{var}[j])",
                ]
        if bodies[k]:
            lines.append(f"        for j in range({width}):")
            lines += [f"            {line}" for line in bodies[k]]
    scratch = sorted(set(fast) | {v for v in sub.stored if v not in fast})
    allocations = [f"    w{var} = np.empty({width}, np.{dtype})" for var in scratch]
    return allocations, lines
